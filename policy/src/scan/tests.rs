use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use palisade_crds::{
    FailOn, IgnoreEntry, ImageSelection, MatchResources, ScanPolicySpec, SeveritySummary,
};

use super::*;
use crate::subject::Subject;

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn policy(name: &str, spec: ScanPolicySpec) -> ScanPolicy {
    let mut p = ScanPolicy::new(name, spec);
    p.metadata.generation = Some(1);
    p
}

fn compiled(spec: ScanPolicySpec) -> CompiledScanPolicy {
    CompiledScanPolicy::compile(&policy("prod", spec)).expect("valid")
}

fn finding(id: &str, cve: &str, sev: &str, fixed: Option<&str>) -> ReportFinding {
    ReportFinding {
        id: id.into(),
        aliases: vec![cve.into()],
        package: "openssl".into(),
        installed_version: "3.1.2-r0".into(),
        fixed_version: fixed.map(str::to_owned),
        severity: sev.into(),
        ..ReportFinding::default()
    }
}

/// One Critical (fixed), one High (no fix), one Medium (fixed).
fn scanned() -> ImageScanReportStatus {
    ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        ecosystem: Some("Alpine:v3.18".into()),
        coverage: Some(Coverage::Full),
        summary: Some(SeveritySummary {
            critical: 1,
            high: 1,
            medium: 1,
            low: 0,
            unknown: 0,
        }),
        fixable: Some(SeveritySummary {
            critical: 1,
            medium: 1,
            ..SeveritySummary::default()
        }),
        findings: vec![
            finding(
                "ALPINE-CVE-2023-5363",
                "CVE-2023-5363",
                "Critical",
                Some("3.1.4-r0"),
            ),
            finding("ALPINE-CVE-2023-9999", "CVE-2023-9999", "High", None),
            finding(
                "ALPINE-CVE-2024-0727",
                "CVE-2024-0727",
                "Medium",
                Some("3.1.4-r5"),
            ),
        ],
        ..ImageScanReportStatus::default()
    }
}

fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("time")
}

fn ignore(id: &str, images: &[&str], expires: Option<&str>) -> IgnoreEntry {
    IgnoreEntry {
        id: id.into(),
        images: images.iter().map(|s| (*s).to_owned()).collect(),
        reason: Some("accepted".into()),
        owner: Some("team-a".into()),
        // Every entry needs an expiry; one after `now()` unless the case says otherwise.
        expires: Some(Time(
            expires
                .unwrap_or("2026-08-01T00:00:00Z")
                .parse()
                .expect("time"),
        )),
    }
}

const IMAGE: &str = "docker.io/library/alpine:3.18";

#[test]
fn thresholds_and_fixability_decide_the_verdict() {
    let status = scanned();
    let facts = ImageFacts::Digest {
        digest: DIGEST,
        platform: None,
        report: Some(&status),
    };
    // (failOn, onlyFixable, failing counts C/H/M/L/U or None for pass)
    let table: [(SeverityThreshold, bool, Option<[u32; 5]>); 6] = [
        (SeverityThreshold::Critical, false, Some([1, 0, 0, 0, 0])),
        (SeverityThreshold::High, false, Some([1, 1, 0, 0, 0])),
        (SeverityThreshold::Medium, false, Some([1, 1, 1, 0, 0])),
        (SeverityThreshold::High, true, Some([1, 0, 0, 0, 0])),
        (SeverityThreshold::Low, true, Some([1, 0, 1, 0, 0])),
        (SeverityThreshold::Critical, true, Some([1, 0, 0, 0, 0])),
    ];
    for (severity, only_fixable, want) in table {
        let p = compiled(ScanPolicySpec {
            fail_on: FailOn {
                severity,
                only_fixable,
            },
            ..ScanPolicySpec::default()
        });
        match (p.judge(IMAGE, &facts, now()), want) {
            (Verdict::Fail(f), Some(counts)) => {
                assert_eq!(f.counts, counts, "{severity:?} {only_fixable}")
            }
            (Verdict::Pass { .. }, None) => {}
            (got, want) => panic!("{severity:?} {only_fixable}: {got:?}, want {want:?}"),
        }
    }
    // A clean report passes.
    let clean = ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        ecosystem: Some("Alpine:v3.18".into()),
        coverage: Some(Coverage::Full),
        summary: Some(SeveritySummary::default()),
        ..ImageScanReportStatus::default()
    };
    let p = compiled(ScanPolicySpec::default());
    let facts = ImageFacts::Digest {
        digest: DIGEST,
        platform: None,
        report: Some(&clean),
    };
    assert!(matches!(
        p.judge(IMAGE, &facts, now()),
        Verdict::Pass { .. }
    ));
}

#[test]
fn ignore_entries_waive_by_id_or_alias_until_they_expire() {
    let status = scanned();
    let facts = ImageFacts::Digest {
        digest: DIGEST,
        platform: None,
        report: Some(&status),
    };
    let critical_only = |ignore: Vec<IgnoreEntry>| {
        compiled(ScanPolicySpec {
            fail_on: FailOn {
                severity: SeverityThreshold::Critical,
                only_fixable: false,
            },
            ignore,
            ..ScanPolicySpec::default()
        })
    };
    // (entries, passes, expired entry named)
    let table = [
        (vec![ignore("CVE-2023-5363", &[], None)], true, None),
        (vec![ignore("alpine-cve-2023-5363", &[], None)], true, None),
        (
            vec![ignore(
                "CVE-2023-5363",
                &["docker.io/library/alpine:*"],
                None,
            )],
            true,
            None,
        ),
        (
            vec![ignore(
                "CVE-2023-5363",
                &["docker.io/library/nginx:*"],
                None,
            )],
            false,
            None,
        ),
        (
            vec![ignore("CVE-2023-5363", &[], Some("2026-07-01T00:00:00Z"))],
            true,
            None,
        ),
        (
            vec![ignore("CVE-2023-5363", &[], Some("2026-05-01T00:00:00Z"))],
            false,
            Some("CVE-2023-5363"),
        ),
        (vec![ignore("CVE-2000-0001", &[], None)], false, None),
    ];
    for (entries, passes, expired) in table {
        let label = format!("{entries:?}");
        match critical_only(entries).judge(IMAGE, &facts, now()) {
            Verdict::Pass { ignored, .. } => {
                assert!(passes, "{label}");
                assert_eq!(ignored.len(), 1, "{label}");
            }
            Verdict::Fail(f) => {
                assert!(!passes, "{label}");
                assert_eq!(f.expired.map(|e| e.name).as_deref(), expired, "{label}");
            }
            other => panic!("{label}: {other:?}"),
        }
    }
}

#[test]
fn images_without_a_usable_report_are_unscanned() {
    let p = compiled(ScanPolicySpec::default());
    let pending = ImageScanReportStatus::default();
    let failed = ImageScanReportStatus {
        phase: ScanPhase::Failed,
        message: Some("registry said 404".into()),
        ..ImageScanReportStatus::default()
    };
    let table = [
        (
            ImageFacts::Digest {
                digest: DIGEST,
                platform: None,
                report: None,
            },
            "Queued",
        ),
        (
            ImageFacts::Digest {
                digest: DIGEST,
                platform: None,
                report: Some(&pending),
            },
            "Queued",
        ),
        (
            ImageFacts::Digest {
                digest: DIGEST,
                platform: None,
                report: Some(&failed),
            },
            "Failed",
        ),
        (ImageFacts::Unresolved { reason: "timeout" }, "Unresolved"),
    ];
    for (facts, want) in table {
        let got = p.judge(IMAGE, &facts, now());
        let kind = match &got {
            Verdict::Unscanned(Unscanned::Queued { .. }) => "Queued",
            Verdict::Unscanned(Unscanned::Failed { .. }) => "Failed",
            Verdict::Unscanned(Unscanned::Unresolved(_)) => "Unresolved",
            _ => "judged",
        };
        assert_eq!(kind, want, "{got:?}");
    }
}

#[test]
fn unscanned_images_name_the_report_of_their_platform() {
    let p = compiled(ScanPolicySpec::default());
    let failed = ImageScanReportStatus {
        phase: ScanPhase::Failed,
        message: Some("no linux/arm64 image in the index".into()),
        ..ImageScanReportStatus::default()
    };
    let name = DIGEST.replace(':', "-");
    let table = [
        (None, None, format!("(kubectl get isr {name} shows")),
        (
            Some("linux/arm64"),
            None,
            format!("(kubectl get isr {name}-linux-arm64 shows"),
        ),
        (
            Some("linux/arm64"),
            Some(&failed),
            format!("(kubectl describe isr {name}-linux-arm64)"),
        ),
    ];
    for (platform, report, want) in table {
        let facts = ImageFacts::Digest {
            digest: DIGEST,
            platform,
            report,
        };
        let Verdict::Unscanned(why) = p.judge(IMAGE, &facts, now()) else {
            panic!("{platform:?}: judged");
        };
        let message = unscanned_message(IMAGE, &why);
        assert!(message.contains(&want), "{platform:?}: {message}");
    }
}

#[test]
fn invalid_policies_name_every_field() {
    let bad = policy(
        "bad",
        ScanPolicySpec {
            scan_wait: Some("20s".into()),
            max_report_age: Some("soon".into()),
            ignore: vec![IgnoreEntry {
                id: " ".into(),
                images: vec![String::new()],
                ..IgnoreEntry::default()
            }],
            images: Some(ImageSelection {
                include: vec![String::new()],
                exclude: vec![],
            }),
            ..ScanPolicySpec::default()
        },
    );
    let Err(Error::InvalidScanPolicy { policy, problems }) = CompiledScanPolicy::compile(&bad)
    else {
        panic!("accepted");
    };
    assert_eq!(policy, "bad");
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.images.include[0]",
            "spec.ignore[0].id",
            "spec.ignore[0].images[0]",
            "spec.ignore[0].owner",
            "spec.ignore[0].reason",
            "spec.ignore[0].expires",
            "spec.scanWait",
            "spec.maxReportAge"
        ]
    );
}

#[test]
fn durations() {
    let table = [
        ("3s", Some(3_000)),
        ("500ms", Some(500)),
        ("1.5s", Some(1_500)),
        ("1h30m", Some(5_400_000)),
        ("7d", Some(604_800_000)),
        ("", None),
        ("5", None),
        ("5x", None),
        ("-1s", None),
    ];
    for (text, want) in table {
        assert_eq!(
            parse_duration(text).map(|d| d.as_millis() as u64),
            want,
            "{text}"
        );
    }
}

fn pod(namespace: &str, images: &[&str]) -> Subject {
    let containers: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(i, img)| serde_json::json!({"name": format!("c{i}"), "image": img}))
        .collect();
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"containers": containers}
    });
    let object: kube::core::DynamicObject = serde_json::from_value(manifest).expect("object");
    Subject::from_manifest(&object, "default")
        .expect("pod")
        .expect("a pod carrier")
}

fn facts() -> Facts<'static> {
    Facts::new(None, now())
}

#[test]
fn a_denial_line_names_policy_image_digest_counts_fixes_and_the_way_out() {
    let (set, errors) = ScanPolicySet::compile_all(&[policy(
        "prod",
        ScanPolicySpec {
            mode: Mode::Enforce,
            ..ScanPolicySpec::default()
        },
    )]);
    assert!(errors.is_empty());
    let subject = pod("shop", &["alpine:3.18", "alpine:3.18", "busybox:1.36"]);
    let needs = set.images_to_judge(&subject, &facts());
    let names: Vec<&str> = needs.images.iter().map(|i| i.written.as_str()).collect();
    assert_eq!(names, ["alpine:3.18", "busybox:1.36"]);
    assert_eq!(needs.wait, DEFAULT_SCAN_WAIT);

    let status = scanned();
    let lookup = |image: &str| match image {
        "docker.io/library/alpine:3.18" => Some(ImageFacts::Digest {
            digest: DIGEST,
            platform: None,
            report: Some(&status),
        }),
        _ => Some(ImageFacts::Digest {
            digest: DIGEST,
            platform: None,
            report: None,
        }),
    };
    let mut decision = Decision::default();
    review_scans(&set, &subject, &facts(), &lookup, &mut decision);
    let lines: Vec<String> = decision.violations.iter().map(Violation::line).collect();
    assert_eq!(
        lines[0],
        "ScanPolicy/prod: image alpine:3.18 (sha256:111111111111…): 1 Critical, 1 High vulnerabilities \
         (CVE-2023-5363 in openssl 3.1.2-r0 fixed in 3.1.4-r0, CVE-2023-9999 in openssl 3.1.2-r0 with no fix yet); \
         this policy allows at most Medium; update the image, or ask the owner of ScanPolicy/prod for an ignore entry \
         (spec.ignore: id, reason, owner, expires) (rule scan.vulnerabilities at spec.containers[0].image; \
         https://github.com/palisade-dev/palisade/blob/main/docs/rules/scan.vulnerabilities.md)"
    );
    assert_eq!(decision.violations[0].field, "spec.containers[0].image");
    assert!(
        lines[1].starts_with("ScanPolicy/prod: image busybox:1.36 (sha256:111111111111…): not scanned yet; a scan is queued"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("this policy admits only scanned images (onUnscanned: Deny) (rule scan.unscanned at spec.containers[2].image; "), "{}", lines[1]);
    assert_eq!(decision.violations[1].field, "spec.containers[2].image");
    assert!(!decision.allowed());
}

#[test]
fn scope_image_selection_and_on_unscanned_pick_mode_or_silence() {
    let spec = |on_unscanned, mode| ScanPolicySpec {
        mode,
        on_unscanned,
        match_: Some(MatchResources {
            namespaces: vec!["shop".into()],
            ..MatchResources::default()
        }),
        images: Some(ImageSelection {
            include: vec!["docker.io/*".into()],
            exclude: vec!["docker.io/library/busybox:*".into()],
        }),
        ..ScanPolicySpec::default()
    };
    let lookup = |_: &str| {
        Some(ImageFacts::Unresolved {
            reason: "registry unreachable",
        })
    };
    // (onUnscanned, policy mode, namespace, image, violation mode or None)
    let table = [
        (
            OnUnscanned::Deny,
            Mode::Enforce,
            "shop",
            "alpine:3.18",
            Some(Mode::Enforce),
        ),
        (
            OnUnscanned::Warn,
            Mode::Enforce,
            "shop",
            "alpine:3.18",
            Some(Mode::Warn),
        ),
        (
            OnUnscanned::Allow,
            Mode::Enforce,
            "shop",
            "alpine:3.18",
            None,
        ),
        (
            OnUnscanned::Deny,
            Mode::Audit,
            "shop",
            "alpine:3.18",
            Some(Mode::Audit),
        ),
        (
            OnUnscanned::Deny,
            Mode::Enforce,
            "other",
            "alpine:3.18",
            None,
        ),
        (
            OnUnscanned::Deny,
            Mode::Enforce,
            "shop",
            "busybox:1.36",
            None,
        ),
        (
            OnUnscanned::Deny,
            Mode::Enforce,
            "shop",
            "ghcr.io/org/app:1",
            None,
        ),
    ];
    for (on_unscanned, mode, ns, image, want) in table {
        let (set, _) = ScanPolicySet::compile_all(&[policy("p", spec(on_unscanned, mode))]);
        let subject = pod(ns, &[image]);
        let mut decision = Decision::default();
        review_scans(&set, &subject, &facts(), &lookup, &mut decision);
        let got = decision.violations.first().map(|v| v.mode);
        assert_eq!(got, want, "{on_unscanned:?} {mode:?} {ns} {image}");
        if let Some(v) = decision.violations.first() {
            assert!(
                v.line().contains("cannot be scanned: registry unreachable"),
                "{}",
                v.line()
            );
        }
    }
}

#[test]
fn the_tally_counts_distinct_scanned_and_failing_digests_per_policy() {
    const CLEAN: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let strict = policy("strict", ScanPolicySpec::default());
    let lenient = policy(
        "lenient",
        ScanPolicySpec {
            fail_on: FailOn {
                severity: SeverityThreshold::Critical,
                only_fixable: false,
            },
            ignore: vec![ignore("CVE-2023-5363", &[], None)],
            ..ScanPolicySpec::default()
        },
    );
    let shop_only = policy(
        "shop-only",
        ScanPolicySpec {
            match_: Some(MatchResources {
                namespaces: vec!["shop".into()],
                ..MatchResources::default()
            }),
            ..ScanPolicySpec::default()
        },
    );
    let (set, errors) = ScanPolicySet::compile_all(&[strict, lenient, shop_only]);
    assert!(errors.is_empty(), "{errors:?}");
    let vulnerable = scanned();
    let clean = ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        ecosystem: Some("Alpine:v3.18".into()),
        coverage: Some(Coverage::Full),
        summary: Some(SeveritySummary::default()),
        ..ImageScanReportStatus::default()
    };
    let lookup = |image: &str| match image {
        "docker.io/library/alpine:3.18" => Some(ImageFacts::Digest {
            digest: DIGEST,
            platform: None,
            report: Some(&vulnerable),
        }),
        "docker.io/library/alpine:3.20" => Some(ImageFacts::Digest {
            digest: CLEAN,
            platform: None,
            report: Some(&clean),
        }),
        // Known digest, no report yet: not counted.
        "docker.io/library/busybox:1.36" => Some(ImageFacts::Digest {
            digest: CLEAN,
            platform: None,
            report: None,
        }),
        _ => None,
    };
    let mut tally = std::collections::BTreeMap::new();
    // The same vulnerable image in two workloads counts once.
    for (ns, images) in [
        ("shop", &["alpine:3.18", "busybox:1.36"][..]),
        ("web", &["alpine:3.18", "alpine:3.20"][..]),
        ("web", &["nginx:1.27"][..]),
    ] {
        tally_scans(&set, &pod(ns, images), &facts(), &lookup, &mut tally);
    }
    let counts = |name: &str| {
        tally
            .get(name)
            .map(|t: &ImageTally| (t.scanned.len(), t.failing.len()))
    };
    // (policy, images scanned, images failing)
    assert_eq!(counts("strict"), Some((2, 1)));
    // Critical only, and the one Critical is ignored.
    assert_eq!(counts("lenient"), Some((2, 0)));
    // Only the shop workload, whose busybox has no report.
    assert_eq!(counts("shop-only"), Some((1, 1)));
}

/// A scratch image: scanned, nothing found, nothing recognised.
fn unjudged_status(coverage: Coverage) -> ImageScanReportStatus {
    ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        coverage: Some(coverage),
        gaps: vec![CoverageGap {
            reason: palisade_crds::GapReason::NoOsRecognised,
            message: "no OS recognised (no /etc/os-release)".into(),
        }],
        packages: Some(0),
        summary: Some(SeveritySummary::default()),
        ..ImageScanReportStatus::default()
    }
}

#[test]
fn images_the_scan_could_not_judge_follow_on_unjudged() {
    let none = unjudged_status(Coverage::None);
    let partial = unjudged_status(Coverage::Partial);
    // A report from before coverage was recorded, with no ecosystem matched.
    let legacy = ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        summary: Some(SeveritySummary::default()),
        ..ImageScanReportStatus::default()
    };
    let mut partial_failing = scanned();
    partial_failing.coverage = Some(Coverage::Partial);
    let waiver =
        |images: &[&str], expires: Option<&str>| vec![ignore(UNJUDGED_IGNORE_ID, images, expires)];
    // (policy mode, onUnjudged, report, ignore entries, expected (rule, mode) or none)
    type Case<'a> = (
        Mode,
        OnUnscanned,
        &'a ImageScanReportStatus,
        Vec<IgnoreEntry>,
        Option<(RuleId, Mode)>,
    );
    let table: Vec<Case<'_>> = vec![
        (
            Mode::Enforce,
            OnUnscanned::Deny,
            &none,
            vec![],
            Some((RuleId::ScanUnjudged, Mode::Enforce)),
        ),
        (
            Mode::Enforce,
            OnUnscanned::Deny,
            &partial,
            vec![],
            Some((RuleId::ScanUnjudged, Mode::Enforce)),
        ),
        (
            Mode::Enforce,
            OnUnscanned::Deny,
            &legacy,
            vec![],
            Some((RuleId::ScanUnjudged, Mode::Enforce)),
        ),
        (
            Mode::Enforce,
            OnUnscanned::Warn,
            &none,
            vec![],
            Some((RuleId::ScanUnjudged, Mode::Warn)),
        ),
        (Mode::Enforce, OnUnscanned::Allow, &none, vec![], None),
        (
            Mode::Audit,
            OnUnscanned::Deny,
            &none,
            vec![],
            Some((RuleId::ScanUnjudged, Mode::Audit)),
        ),
        // Findings in the part that was judged fail the image as usual.
        (
            Mode::Enforce,
            OnUnscanned::Allow,
            &partial_failing,
            vec![],
            Some((RuleId::ScanVulnerabilities, Mode::Enforce)),
        ),
        // Admitted deliberately, for the images the entry names, until it expires.
        (
            Mode::Enforce,
            OnUnscanned::Deny,
            &none,
            waiver(&["docker.io/library/alpine:*"], None),
            None,
        ),
        (
            Mode::Enforce,
            OnUnscanned::Deny,
            &none,
            waiver(&["docker.io/library/nginx:*"], None),
            Some((RuleId::ScanUnjudged, Mode::Enforce)),
        ),
        (
            Mode::Enforce,
            OnUnscanned::Deny,
            &none,
            waiver(&[], Some("2026-05-01T00:00:00Z")),
            Some((RuleId::ScanUnjudged, Mode::Enforce)),
        ),
    ];
    for (mode, on_unjudged, report, ignore, want) in table {
        let label = format!(
            "{mode:?} {on_unjudged:?} {:?} {:?}",
            report.coverage,
            ignore.first().map(|e| &e.images)
        );
        let waived_expected = want.is_none() && !ignore.is_empty();
        let (set, errors) = ScanPolicySet::compile_all(&[policy(
            "prod",
            ScanPolicySpec {
                mode,
                on_unjudged,
                ignore,
                ..ScanPolicySpec::default()
            },
        )]);
        assert!(errors.is_empty(), "{label}: {errors:?}");
        let subject = pod("shop", &["alpine:3.18"]);
        let lookup = |_: &str| {
            Some(ImageFacts::Digest {
                digest: DIGEST,
                platform: None,
                report: Some(report),
            })
        };
        let mut decision = Decision::default();
        review_scans(&set, &subject, &facts(), &lookup, &mut decision);
        let got: Vec<(RuleId, Mode)> = decision
            .violations
            .iter()
            .map(|v| (v.rule, v.mode))
            .collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{label}");
        assert_eq!(
            decision
                .waived
                .iter()
                .any(|w| w.rule == RuleId::ScanUnjudged && w.owner.as_deref() == Some("team-a")),
            waived_expected,
            "{label}: {:?}",
            decision.waived
        );
    }
}

#[test]
fn an_unjudged_denial_says_why_and_how_to_admit_it_deliberately() {
    let (set, _) = ScanPolicySet::compile_all(&[policy("prod", ScanPolicySpec::default())]);
    let report = unjudged_status(Coverage::None);
    let subject = pod(
        "shop",
        &[
            "registry.local:5000/tools/static@sha256:1111111111111111111111111111111111111111111111111111111111111111",
        ],
    );
    let lookup = |_: &str| {
        Some(ImageFacts::Digest {
            digest: DIGEST,
            platform: None,
            report: Some(&report),
        })
    };
    let mut decision = Decision::default();
    review_scans(&set, &subject, &facts(), &lookup, &mut decision);
    let line = decision.violations[0].line();
    for part in [
        "ScanPolicy/prod: image registry.local:5000/tools/static@sha256:1111",
        "its scan could not judge any of it (no OS recognised (no /etc/os-release)), so finding nothing does not make it clean",
        "onUnjudged: Deny",
        "spec.images.exclude, or spec.ignore with id scan.unjudged, images, owner, reason, expires",
        "(rule scan.unjudged at spec.containers[0].image; https://github.com/palisade-dev/palisade/blob/main/docs/rules/scan.unjudged.md)",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
}

#[test]
fn the_tally_counts_unjudged_images_apart() {
    let (set, _) = ScanPolicySet::compile_all(&[policy("prod", ScanPolicySpec::default())]);
    let report = unjudged_status(Coverage::None);
    let lookup = |_: &str| {
        Some(ImageFacts::Digest {
            digest: DIGEST,
            platform: None,
            report: Some(&report),
        })
    };
    let mut tally = std::collections::BTreeMap::new();
    tally_scans(
        &set,
        &pod("shop", &["alpine:3.18"]),
        &facts(),
        &lookup,
        &mut tally,
    );
    let t = &tally["prod"];
    assert!(t.scanned.is_empty() && t.failing.is_empty());
    assert_eq!(t.unjudged.iter().collect::<Vec<_>>(), [DIGEST]);
}

#[test]
fn ignore_entries_need_owner_reason_and_an_expiry_within_the_limit() {
    let at = |t: &str| Some(Time(t.parse().expect("time")));
    let entry = |owner: Option<&str>, reason: Option<&str>, expires: Option<Time>| IgnoreEntry {
        id: "CVE-2023-5363".into(),
        owner: owner.map(str::to_owned),
        reason: reason.map(str::to_owned),
        expires,
        ..IgnoreEntry::default()
    };
    // now() is 2026-06-01; the default limit is 180 days (2026-11-28).
    let table: Vec<(IgnoreEntry, Option<u32>, Vec<&str>)> = vec![
        (
            entry(Some("a"), Some("b"), at("2026-11-28T00:00:00Z")),
            None,
            vec![],
        ),
        (
            entry(Some("a"), Some("b"), at("2026-11-28T00:00:01Z")),
            None,
            vec!["spec.ignore[0].expires"],
        ),
        (
            entry(Some("a"), Some("b"), at("2026-06-30T00:00:00Z")),
            Some(30),
            vec![],
        ),
        (
            entry(Some("a"), Some("b"), at("2026-07-02T00:00:00Z")),
            Some(30),
            vec!["spec.ignore[0].expires"],
        ),
        // Already expired is valid: it simply no longer applies.
        (
            entry(Some("a"), Some("b"), at("2020-01-01T00:00:00Z")),
            None,
            vec![],
        ),
        (
            entry(None, Some(" "), None),
            None,
            vec![
                "spec.ignore[0].owner",
                "spec.ignore[0].reason",
                "spec.ignore[0].expires",
            ],
        ),
    ];
    for (e, max_days, want) in table {
        let label = format!("{e:?} {max_days:?}");
        let p = policy(
            "prod",
            ScanPolicySpec {
                ignore: vec![e],
                max_exception_days: max_days,
                ..ScanPolicySpec::default()
            },
        );
        let fields: Vec<String> = match CompiledScanPolicy::compile_at(&p, now()) {
            Ok(_) => vec![],
            Err(Error::InvalidScanPolicy { problems, .. }) => {
                problems.into_iter().map(|p| p.field).collect()
            }
            Err(other) => panic!("{label}: {other}"),
        };
        assert_eq!(fields, want, "{label}");
    }
}
