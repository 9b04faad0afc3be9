//! In-process decision cost: `cargo bench -p palisade-policy --bench decision`.
//!
//! Reports nanoseconds per decision (median of rounds) for the stages of the hot path, so a
//! regression shows where it comes from. It measures and prints; it asserts nothing.
//!
//! The ScanPolicy cases add what the webhook's scan gate does once the image's report is in
//! memory (`images_to_judge`, then `review_scans` over a 100-finding report), so they can be
//! read against the SecurityPolicy-only case above them.

use std::hint::black_box;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use palisade_crds::{
    FailOn, IgnoreEntry, ImageScanReportStatus, Mode, ReportFinding, ScanPhase, ScanPolicy,
    ScanPolicySpec, SeveritySummary, SeverityThreshold,
};
use palisade_policy::scan::ImageFacts;
use palisade_policy::{
    Decision, Facts, PolicySet, ScanPolicySet, Subject, parse_policies, review, review_request,
    review_scans,
};
use serde_json::json;

const POLICY: &str = "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: restricted}
spec:
  mode: Enforce
  podSecurity: {level: restricted, version: latest}
";

fn pod(privileged: bool) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-7d9f8", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d9f8"}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "serviceAccountName": "web",
            "containers": [{
                "name": "app", "image": "registry.example.com/shop/web:2.4.1",
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "MODE", "value": "prod"}],
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "privileged": privileged,
                                    "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
            }, {
                "name": "proxy", "image": "registry.example.com/mesh/proxy:1.30",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "web"}}]
        }
    })
}

/// An Enforce ScanPolicy failing on High, fixable findings only (the usual production
/// setting), with one ignore entry; with `only_fixable: false` the report below fails it.
fn scan_policy(only_fixable: bool) -> ScanPolicy {
    ScanPolicy::new(
        "prod",
        ScanPolicySpec {
            mode: Mode::Enforce,
            fail_on: FailOn {
                severity: SeverityThreshold::High,
                only_fixable,
            },
            ignore: vec![IgnoreEntry {
                id: "CVE-2023-5363".into(),
                images: vec!["registry.example.com/*".into()],
                reason: Some("the cipher is not used".into()),
                owner: Some("team-shop".into()),
                expires: Some(Time(
                    Timestamp::now() + SignedDuration::from_hours(24 * 365),
                )),
            }],
            ..ScanPolicySpec::default()
        },
    )
}

/// A Debian bookworm image's report as the operator writes it: the 100 worst findings
/// (2 Critical, 18 High, 50 Medium, 30 Low) of 137. The only fixable High one is the ignored
/// CVE-2023-5363, so the image passes with `onlyFixable` and fails without it.
fn report_status() -> ImageScanReportStatus {
    const PACKAGES: [(&str, &str, &str); 8] = [
        ("openssl", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"),
        ("glibc", "2.36-9+deb12u3", "2.36-9+deb12u4"),
        ("curl", "7.88.1-10+deb12u4", "7.88.1-10+deb12u5"),
        (
            "libxml2",
            "2.9.14+dfsg-1.3~deb12u1",
            "2.9.14+dfsg-1.3~deb12u2",
        ),
        ("systemd", "252.19-1~deb12u1", "252.22-1~deb12u1"),
        ("perl", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2"),
        ("krb5", "1.20.1-2+deb12u1", "1.20.1-2+deb12u2"),
        ("gnutls28", "3.7.9-2+deb12u1", "3.7.9-2+deb12u2"),
    ];
    let findings = (0..100)
        .map(|i| {
            let (package, installed, fixed) = PACKAGES[i % PACKAGES.len()];
            let severity = match i {
                0..2 => "Critical",
                2..20 => "High",
                20..70 => "Medium",
                _ => "Low",
            };
            let cve = if i == 2 {
                "CVE-2023-5363".to_owned()
            } else {
                format!("CVE-2023-{}", 40_000 + i * 37)
            };
            ReportFinding {
                id: format!("DEBIAN-{cve}"),
                aliases: vec![cve],
                package: package.into(),
                installed_version: installed.into(),
                // Medium and Low ones have fixes; of the worse ones only the ignored one does.
                fixed_version: (i >= 20 || i == 2).then(|| fixed.to_owned()),
                severity: severity.into(),
                ..ReportFinding::default()
            }
        })
        .collect();
    ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        os: Some("Debian GNU/Linux 12 (bookworm)".into()),
        ecosystem: Some("Debian:12".into()),
        packages: Some(128),
        summary: Some(SeveritySummary {
            critical: 2,
            high: 18,
            medium: 50,
            low: 67,
            unknown: 0,
        }),
        fixable: Some(SeveritySummary {
            critical: 0,
            high: 1,
            medium: 50,
            low: 60,
            unknown: 0,
        }),
        findings,
        findings_omitted: Some(37),
        scanner_version: Some("palisade-scanner/0.1.0".into()),
        database_version: Some("Debian:12@0123456789ab".into()),
        scanned_at: Some(Time(Timestamp::now())),
        scan_duration_ms: Some(840),
        ..ImageScanReportStatus::default()
    }
}

const DIGEST: &str = "sha256:6f1c0a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f";

/// SecurityPolicies, then ScanPolicies judging every image from its report: the webhook's
/// work for one pod once the reports are in memory.
fn review_with_scans(
    set: &PolicySet,
    scans: &ScanPolicySet,
    subject: &Subject,
    facts: &Facts<'_>,
    status: &ImageScanReportStatus,
) -> Decision {
    let mut decision = review(set, subject, facts);
    let needs = scans.images_to_judge(subject, facts);
    let lookup = |image: &str| {
        needs
            .images
            .iter()
            .any(|n| n.image == image)
            .then_some(ImageFacts::Digest {
                digest: DIGEST,
                platform: None,
                report: Some(status),
            })
    };
    review_scans(scans, subject, facts, &lookup, &mut decision);
    decision
}

fn review_json(pod: &serde_json::Value) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web-7d9f8", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod, "dryRun": false
        }
    })
    .to_string()
}

/// Median ns per call over `rounds` rounds of `iters` calls.
fn measure(name: &str, iters: u32, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let mut rounds: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    println!(
        "{name:<58} median {:>9.0} ns   min {:>9.0} ns",
        rounds[rounds.len() / 2],
        rounds[0]
    );
}

fn main() {
    let parsed = parse_policies(POLICY).expect("policy");
    let (set, errors) = PolicySet::compile_all(&parsed);
    assert!(errors.is_empty());
    let now = Timestamp::now();
    let facts = Facts::new(None, now);

    let pass_obj: DynamicObject = serde_json::from_value(pod(false)).expect("pod");
    let fail_obj: DynamicObject = serde_json::from_value(pod(true)).expect("pod");
    let pass = Subject::from_manifest(&pass_obj, "default")
        .expect("ok")
        .expect("pod");
    let fail = Subject::from_manifest(&fail_obj, "default")
        .expect("ok")
        .expect("pod");
    assert!(review(&set, &pass, &facts).allowed());
    assert!(!review(&set, &fail, &facts).allowed());

    let status = report_status();
    let (scans_pass, errors) = ScanPolicySet::compile_all(&[scan_policy(true)]);
    assert!(errors.is_empty(), "{errors:?}");
    let (scans_fail, errors) = ScanPolicySet::compile_all(&[scan_policy(false)]);
    assert!(errors.is_empty(), "{errors:?}");
    let d = review_with_scans(&set, &scans_pass, &pass, &facts, &status);
    assert!(d.allowed(), "{:?}", d.denial_message());
    assert!(
        !d.waived.is_empty(),
        "the ignore entry waives CVE-2023-5363"
    );
    assert!(!review_with_scans(&set, &scans_fail, &pass, &facts, &status).allowed());

    let pass_json = review_json(&pod(false));
    let fail_json = review_json(&pod(true));
    let req: AdmissionRequest<DynamicObject> =
        serde_json::from_str::<AdmissionReview<DynamicObject>>(&pass_json)
            .expect("review")
            .try_into()
            .expect("request");

    println!(
        "restricted preset, 2-container pod ({} bytes of AdmissionReview)",
        pass_json.len()
    );
    measure(
        "review: passing pod (policy evaluation only)",
        200_000,
        || {
            black_box(review(&set, black_box(&pass), &facts));
        },
    );
    measure(
        "review + ScanPolicy, report of 100 findings: passes",
        100_000,
        || {
            black_box(review_with_scans(
                &set,
                &scans_pass,
                black_box(&pass),
                &facts,
                &status,
            ));
        },
    );
    measure(
        "review + ScanPolicy, 100 findings: fails, denial text",
        50_000,
        || {
            let d = review_with_scans(&set, &scans_fail, black_box(&pass), &facts, &status);
            black_box(d.denial_message());
        },
    );
    measure("review + denial text: privileged pod", 100_000, || {
        let d = review(&set, black_box(&fail), &facts);
        black_box(d.denial_message());
    });
    measure(
        "review_request: pod spec extraction + evaluation",
        50_000,
        || {
            black_box(review_request(&set, black_box(&req), &facts).expect("ok"));
        },
    );
    measure(
        "parse AdmissionReview JSON + review_request (passing)",
        20_000,
        || {
            let r: AdmissionReview<DynamicObject> =
                serde_json::from_str(black_box(&pass_json)).expect("json");
            let req: AdmissionRequest<DynamicObject> = r.try_into().expect("request");
            black_box(review_request(&set, &req, &facts).expect("ok"));
        },
    );
    measure(
        "parse AdmissionReview JSON + review_request + denial",
        20_000,
        || {
            let r: AdmissionReview<DynamicObject> =
                serde_json::from_str(black_box(&fail_json)).expect("json");
            let req: AdmissionRequest<DynamicObject> = r.try_into().expect("request");
            let d = review_request(&set, &req, &facts).expect("ok");
            black_box(d.denial_message());
        },
    );
}
