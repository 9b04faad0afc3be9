//! When to scan a report and what its status says, as pure functions: the decision, the
//! status of a scan that worked or failed, and the Secrets whose logins to use.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::watcher;
use palisade_crds::{
    Coverage, CoverageGap, GapReason, ImageScanReport, ImageScanReportStatus, MAX_REPORT_FINDINGS,
    ReportFinding, ScanPhase, ScanPolicy, SecretRef, SeveritySummary,
};
use palisade_scanner::coverage::{Coverage as ScannerCoverage, Gap, GapReason as ScannerGapReason};
use palisade_scanner::report::{Finding, SeverityCounts};
use palisade_scanner::scan::ScanReport;

/// Delay before a Failed report is scanned again.
pub const RETRY: Duration = Duration::from_secs(300);

/// Set by the webhook on a report it found older than a ScanPolicy's maxReportAge, to the
/// report's status.scannedAt: a Scanned report scanned at or before this time is scanned
/// again. Both times come from this operator's clock, so the new scan answers it. (The
/// webhook defines the same key.)
pub const RESCAN_ANNOTATION: &str = "palisade.dev/rescan-requested";

/// `30s`, `10m`, `24h`, `7d`, `1h30m` (spec.maxReportAge's pattern); `None` otherwise.
pub fn parse_age(text: &str) -> Option<Duration> {
    // The parser the webhook compiles ScanPolicies with; an age of zero means nothing.
    palisade_policy::scan::parse_duration(text).filter(|d| !d.is_zero())
}

/// What to do with a report now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Scan, for this reason (logged).
    Scan(&'static str),
    /// Nothing until then.
    Wait(Duration),
}

/// The scan decision, from the status, the database version its ecosystem has now (`None`
/// when unknown), the max age, and for a Failed report the time left before its retry.
pub fn decide(
    status: Option<&ImageScanReportStatus>,
    current_db: Option<&str>,
    now: jiff::Timestamp,
    max_age: Duration,
    retry_in: Option<Duration>,
) -> Decision {
    let Some(status) = status else {
        return Decision::Scan("new report");
    };
    match status.phase {
        ScanPhase::Pending => Decision::Scan("pending"),
        ScanPhase::Failed => match retry_in {
            Some(d) if !d.is_zero() => Decision::Wait(d),
            _ => Decision::Scan("retry after failure"),
        },
        ScanPhase::Scanned => {
            if let Some(current) = current_db
                && status.database_version.as_deref() != Some(current)
            {
                return Decision::Scan("database changed");
            }
            if status.scanner_version.as_deref() != Some(palisade_scanner::SCANNER_VERSION) {
                return Decision::Scan("scanner changed");
            }
            let Some(Time(scanned_at)) = status.scanned_at else {
                return Decision::Scan("no scan time");
            };
            let age = now.duration_since(scanned_at);
            let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
            match max_age.checked_sub(age) {
                Some(left) if !left.is_zero() => Decision::Wait(left),
                _ => Decision::Scan("report too old"),
            }
        }
    }
}

/// Whether the webhook asked for a new scan of this Scanned report and it has not been
/// done: [`RESCAN_ANNOTATION`] is at or after the report's scannedAt. A Failed report keeps
/// its retry delay.
pub fn rescan_requested(report: &ImageScanReport) -> bool {
    let Some(status) = report
        .status
        .as_ref()
        .filter(|s| s.phase == ScanPhase::Scanned)
    else {
        return false;
    };
    let Some(Time(scanned_at)) = status.scanned_at else {
        return false;
    };
    report
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESCAN_ANNOTATION))
        .and_then(|v| v.parse::<jiff::Timestamp>().ok())
        .is_some_and(|asked| asked >= scanned_at)
}

/// The most severe findings (severity descending, then id, then package), at most
/// [`MAX_REPORT_FINDINGS`], and how many were left out.
pub fn top_findings(findings: &[Finding]) -> (Vec<ReportFinding>, u32) {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
    });
    let omitted = sorted.len().saturating_sub(MAX_REPORT_FINDINGS);
    let top = sorted
        .into_iter()
        .take(MAX_REPORT_FINDINGS)
        .map(|f| ReportFinding {
            id: f.id.clone(),
            aliases: f.aliases.clone(),
            package: f.package.clone(),
            installed_version: f.installed_version.clone(),
            fixed_version: f.fixed_version.clone(),
            severity: f.severity.as_str().to_owned(),
            ecosystem: f.ecosystem.clone(),
            location: f.location.clone(),
        })
        .collect();
    (top, u32::try_from(omitted).unwrap_or(u32::MAX))
}

fn summary(c: &SeverityCounts) -> SeveritySummary {
    SeveritySummary {
        critical: c.critical,
        high: c.high,
        medium: c.medium,
        low: c.low,
        unknown: c.unknown,
    }
}

/// One line for people: the counts, and when the coverage is not Full, what could not be
/// judged.
pub fn scanned_message(r: &ScanReport) -> String {
    let s = &r.summary;
    let gaps = || {
        r.gaps
            .iter()
            .map(|g| g.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if r.coverage == ScannerCoverage::None {
        // Nothing was matched, so there are no counts to give: only why.
        return format!(
            "nothing judged (coverage None) in {} packages: {}",
            r.packages,
            gaps()
        );
    }
    let mut msg = if s.total() == 0 {
        format!("no known vulnerabilities in {} packages", r.packages)
    } else {
        format!(
            "{} vulnerabilities in {} packages (Critical {}, High {}, Medium {}, Low {}, Unknown {}; {} fixable)",
            s.total(),
            r.packages,
            s.critical,
            s.high,
            s.medium,
            s.low,
            s.unknown,
            r.fixable.total()
        )
    };
    if r.coverage != ScannerCoverage::Full {
        msg.push_str(&format!("; coverage {}: {}", r.coverage, gaps()));
    }
    msg
}

/// The status's coverage for the scanner's.
pub fn coverage_of(c: ScannerCoverage) -> Coverage {
    match c {
        ScannerCoverage::Full => Coverage::Full,
        ScannerCoverage::Partial => Coverage::Partial,
        ScannerCoverage::None => Coverage::None,
    }
}

/// The status's gap for the scanner's.
pub fn gap_of(g: &Gap) -> CoverageGap {
    CoverageGap {
        reason: match g.reason {
            ScannerGapReason::NoOsRecognised => GapReason::NoOsRecognised,
            ScannerGapReason::NoVulnerabilityData => GapReason::NoVulnerabilityData,
            ScannerGapReason::UnreadablePackageDatabase => GapReason::UnreadablePackageDatabase,
            ScannerGapReason::ArchitectureNotScanned => GapReason::ArchitectureNotScanned,
        },
        message: g.message.clone(),
    }
}

/// The whole status of a successful scan.
pub fn scanned_status(r: &ScanReport) -> ImageScanReportStatus {
    let (findings, omitted) = top_findings(&r.findings);
    ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        message: Some(scanned_message(r)),
        manifest_digest: Some(r.manifest_digest.clone()),
        platform: r.platform.clone(),
        os: r.os.clone(),
        ecosystem: r.ecosystem.clone(),
        ecosystems: r.ecosystems.clone(),
        coverage: Some(coverage_of(r.coverage)),
        gaps: r.gaps.iter().map(gap_of).collect(),
        packages: Some(u32::try_from(r.packages).unwrap_or(u32::MAX)),
        summary: Some(summary(&r.summary)),
        fixable: Some(summary(&r.fixable)),
        findings,
        findings_omitted: Some(omitted),
        scanner_version: Some(r.scanner_version.clone()),
        database_version: Some(r.database_version.clone()),
        scanned_at: Some(Time(r.scanned_at)),
        scan_duration_ms: Some(r.duration_ms),
        failures: Some(0),
    }
}

/// The whole status of a failed scan: the previous results stay (they are still the best
/// known), the phase and message say it failed, the failure count goes up.
pub fn failed_status(
    previous: Option<&ImageScanReportStatus>,
    message: String,
) -> ImageScanReportStatus {
    let mut s = previous.cloned().unwrap_or_default();
    s.failures = Some(s.failures.unwrap_or(0).saturating_add(1));
    s.phase = ScanPhase::Failed;
    s.message = Some(message);
    s
}

/// Track each ScanPolicy's spec.maxReportAge; true when one appeared, changed or went away
/// (status writes and other spec changes are not reported).
pub fn max_age_changed(
    seen: &mut HashMap<String, Option<String>>,
    event: &watcher::Event<ScanPolicy>,
) -> bool {
    match event {
        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
            let age = p.spec.max_report_age.clone();
            match seen.insert(p.name_any(), age.clone()) {
                Some(previous) => previous != age,
                // A new policy matters only with an age; one seen first in a (re)listing
                // does not (reports are reconciled at start).
                None => age.is_some() && matches!(event, watcher::Event::Apply(_)),
            }
        }
        watcher::Event::Delete(p) => seen.remove(&p.name_any()).is_some_and(|age| age.is_some()),
        watcher::Event::Init | watcher::Event::InitDone => false,
    }
}

/// The Secrets to read, as (namespace, name), each once; no namespace means `default_ns`.
pub fn secret_refs<'a>(
    refs: impl IntoIterator<Item = &'a SecretRef>,
    default_ns: &str,
) -> Vec<(String, String)> {
    let set: BTreeSet<(String, String)> = refs
        .into_iter()
        .filter(|r| !r.name.is_empty())
        .map(|r| {
            (
                r.namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| default_ns.to_owned()),
                r.name.clone(),
            )
        })
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use palisade_scanner::osv::Database;
    use palisade_scanner::report::Severity;
    use palisade_scanner::scan::report;

    use super::*;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).expect("a time")
    }

    fn scanned(db: &str, scanned_at: i64) -> ImageScanReportStatus {
        ImageScanReportStatus {
            phase: ScanPhase::Scanned,
            database_version: Some(db.into()),
            scanner_version: Some(palisade_scanner::SCANNER_VERSION.into()),
            scanned_at: Some(Time(at(scanned_at))),
            ..Default::default()
        }
    }

    /// What, status, current database, retry in, decision.
    type Case<'a> = (
        &'a str,
        Option<&'a ImageScanReportStatus>,
        Option<&'a str>,
        Option<Duration>,
        Decision,
    );

    #[test]
    fn rescans_requested_by_the_webhook() {
        let report = |status: Option<ImageScanReportStatus>, annotation: Option<&str>| {
            let mut r = ImageScanReport::new(
                "sha256-1",
                palisade_crds::ImageScanReportSpec {
                    image: "r/a@sha256:1".into(),
                    digest: "sha256:1".into(),
                    platform: None,
                },
            );
            r.status = status;
            r.metadata.annotations = annotation
                .map(|v| std::collections::BTreeMap::from([(RESCAN_ANNOTATION.into(), v.into())]));
            r
        };
        let scanned_at = at(1_000_000).to_string();
        let before = at(999_999).to_string();
        let mut failed = scanned("A@1", 1_000_000);
        failed.phase = ScanPhase::Failed;
        let cases = [
            (
                "no annotation",
                Some(scanned("A@1", 1_000_000)),
                None,
                false,
            ),
            (
                "asked for this scan",
                Some(scanned("A@1", 1_000_000)),
                Some(scanned_at.as_str()),
                true,
            ),
            (
                "asked for an earlier scan: done",
                Some(scanned("A@1", 1_000_000)),
                Some(before.as_str()),
                false,
            ),
            (
                "not a time",
                Some(scanned("A@1", 1_000_000)),
                Some("yes"),
                false,
            ),
            (
                "failed: its retry delay holds",
                Some(failed),
                Some(scanned_at.as_str()),
                false,
            ),
            ("no status", None, Some(scanned_at.as_str()), false),
        ];
        for (what, status, annotation, want) in cases {
            assert_eq!(
                rescan_requested(&report(status, annotation)),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn scan_decisions() {
        let day = Duration::from_secs(86400);
        let now = at(1_000_000);
        let failed = ImageScanReportStatus {
            phase: ScanPhase::Failed,
            ..Default::default()
        };
        let pending = ImageScanReportStatus::default();
        let mut old_scanner = scanned("A@1", 1_000_000);
        old_scanner.scanner_version = Some("palisade-scanner/0.0.0".into());
        let mut no_time = scanned("A@1", 0);
        no_time.scanned_at = None;
        let cases: [Case; 10] = [
            ("no status", None, None, None, Decision::Scan("new report")),
            (
                "pending",
                Some(&pending),
                None,
                None,
                Decision::Scan("pending"),
            ),
            (
                "failed, retry due",
                Some(&failed),
                None,
                Some(Duration::ZERO),
                Decision::Scan("retry after failure"),
            ),
            (
                "failed after restart",
                Some(&failed),
                None,
                None,
                Decision::Scan("retry after failure"),
            ),
            (
                "failed, waiting",
                Some(&failed),
                None,
                Some(Duration::from_secs(40)),
                Decision::Wait(Duration::from_secs(40)),
            ),
            (
                "fresh",
                Some(&scanned("A@1", 1_000_000 - 3600)),
                Some("A@1"),
                None,
                Decision::Wait(day - Duration::from_secs(3600)),
            ),
            (
                "fresh, database unknown",
                Some(&scanned("A@1", 1_000_000 - 3600)),
                None,
                None,
                Decision::Wait(day - Duration::from_secs(3600)),
            ),
            (
                "database changed",
                Some(&scanned("A@1", 1_000_000)),
                Some("A@2"),
                None,
                Decision::Scan("database changed"),
            ),
            (
                "too old",
                Some(&scanned("A@1", 1_000_000 - 86400)),
                Some("A@1"),
                None,
                Decision::Scan("report too old"),
            ),
            (
                "scanner changed",
                Some(&old_scanner),
                Some("A@1"),
                None,
                Decision::Scan("scanner changed"),
            ),
        ];
        for (what, status, db, retry, want) in cases {
            assert_eq!(decide(status, db, now, day, retry), want, "{what}");
        }
        assert_eq!(
            decide(Some(&no_time), Some("A@1"), now, day, None),
            Decision::Scan("no scan time")
        );
    }

    #[test]
    fn ages_parse_like_max_report_age() {
        for (text, secs) in [
            ("30s", Some(30)),
            ("10m", Some(600)),
            ("24h", Some(86400)),
            ("7d", Some(604800)),
            ("1h30m", Some(5400)),
            ("", None),
            ("0s", None),
            ("5", None),
            ("h", None),
            ("1w", None),
            ("-1h", None),
        ] {
            assert_eq!(parse_age(text), secs.map(Duration::from_secs), "{text:?}");
        }
    }

    fn finding(id: &str, package: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            aliases: vec![],
            package: package.into(),
            installed_version: "1".into(),
            fixed_version: None,
            severity,
            summary: None,
            ecosystem: None,
            location: None,
        }
    }

    #[test]
    fn top_findings_keep_the_most_severe_hundred() {
        let mut all = vec![
            finding("CVE-2", "b", Severity::Low),
            finding("CVE-9", "a", Severity::Critical),
            finding("CVE-1", "a", Severity::Critical),
            finding("CVE-5", "c", Severity::Unknown),
        ];
        let (top, omitted) = top_findings(&all);
        let ids: Vec<_> = top
            .iter()
            .map(|f| (f.id.as_str(), f.severity.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                ("CVE-1", "Critical"),
                ("CVE-9", "Critical"),
                ("CVE-2", "Low"),
                ("CVE-5", "Unknown")
            ]
        );
        assert_eq!(omitted, 0);
        for i in 0..150 {
            all.push(finding(&format!("M-{i:03}"), "m", Severity::Medium));
        }
        let (top, omitted) = top_findings(&all);
        assert_eq!(top.len(), MAX_REPORT_FINDINGS);
        assert_eq!(omitted, 54);
        assert_eq!(top[0].id, "CVE-1");
        assert_eq!(top[2].id, "M-000");
        assert_eq!(top[99].id, "M-097");
        assert!(top.iter().all(|f| f.severity != "Low"));
    }

    /// A report as the scanner makes it, of an image with `os` (none: no os-release) and
    /// `packages` packages, matched against a database holding Alpine 3.20.
    fn scan_report(os: Option<&str>, packages: usize) -> ScanReport {
        use palisade_scanner::inventory::{Inventory, OsRelease, Package, PackageKind};
        use palisade_scanner::osv::{Ecosystem, Index};
        use palisade_scanner::scan::ImageInventory;
        let digest = format!("sha256:{}", "ab".repeat(32));
        let package = |i: usize| Package {
            kind: PackageKind::Apk,
            name: format!("p{i}"),
            version: "1-r0".into(),
            source_name: None,
            source_version: None,
            arch: None,
            location: "lib/apk/db/installed".into(),
        };
        let inv = ImageInventory {
            image: "registry.example/app:1".into(),
            digest: digest.clone(),
            manifest_digest: digest,
            platform: None,
            platform_requested: None,
            layers: 1,
            layer_bytes: 1,
            inventory: Inventory {
                os: os.map(|id| OsRelease {
                    id: id.into(),
                    version_id: Some("3.20.3".into()),
                    ..OsRelease::default()
                }),
                packages: (0..packages).map(package).collect(),
                ..Inventory::default()
            },
        };
        let mut db = Database::new();
        let eco = Ecosystem::from_name("Alpine:v3.20").expect("ecosystem");
        db.insert(Arc::new(Index::from_records(eco, [])), "cd".repeat(32));
        report(&inv, &db, Duration::ZERO)
    }

    #[test]
    fn scanned_status_carries_coverage_and_gaps() {
        let judged = scanned_status(&scan_report(Some("alpine"), 3));
        assert_eq!(judged.phase, ScanPhase::Scanned);
        assert_eq!(judged.coverage, Some(Coverage::Full));
        assert_eq!(judged.gaps, []);
        assert_eq!(judged.ecosystem.as_deref(), Some("Alpine:v3.20"));
        assert_eq!(
            judged.message.as_deref(),
            Some("no known vulnerabilities in 3 packages")
        );

        let mut with_findings = scan_report(Some("alpine"), 3);
        with_findings.findings = vec![finding("CVE-1", "p0", Severity::High)];
        with_findings.summary = SeverityCounts::of(&with_findings.findings);
        let s = scanned_status(&with_findings);
        assert_eq!(s.coverage, Some(Coverage::Full));
        assert_eq!(
            s.message.as_deref(),
            Some(
                "1 vulnerabilities in 3 packages (Critical 0, High 1, Medium 0, Low 0, \
                 Unknown 0; 0 fixable)"
            )
        );
        assert_eq!(s.findings.len(), 1);
    }

    #[test]
    fn no_os_is_coverage_none_with_its_gap() {
        let s = scanned_status(&scan_report(None, 0));
        assert_eq!(s.coverage, Some(Coverage::None));
        assert_eq!(s.coverage(), Coverage::None);
        assert_eq!(s.ecosystem, None);
        assert_eq!(
            s.gaps,
            [CoverageGap {
                reason: GapReason::NoOsRecognised,
                message: "no OS recognised: no /etc/os-release, so OS packages cannot be \
                          matched to advisories"
                    .into(),
            }]
        );
        assert_eq!(
            s.message.as_deref(),
            Some(
                "nothing judged (coverage None) in 0 packages: no OS recognised: no \
                 /etc/os-release, so OS packages cannot be matched to advisories"
            )
        );
        // And as the API server stores it.
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["coverage"], "None");
        assert_eq!(json["gaps"][0]["reason"], "NoOsRecognised");
    }

    #[test]
    fn other_gaps_map_one_to_one() {
        let s = scanned_status(&scan_report(Some("gentoo"), 2));
        assert_eq!(s.coverage, Some(Coverage::None));
        let reasons: Vec<GapReason> = s.gaps.iter().map(|g| g.reason).collect();
        assert_eq!(reasons, [GapReason::NoVulnerabilityData]);

        let mut partial = scan_report(Some("alpine"), 2);
        partial.coverage = ScannerCoverage::Partial;
        partial.gaps = vec![
            Gap {
                reason: ScannerGapReason::UnreadablePackageDatabase,
                message: "lib/apk/db/installed: 1 unreadable record(s) skipped".into(),
            },
            Gap {
                reason: ScannerGapReason::ArchitectureNotScanned,
                message: "the image has no linux/arm/v6 manifest".into(),
            },
        ];
        let s = scanned_status(&partial);
        assert_eq!(s.coverage, Some(Coverage::Partial));
        let reasons: Vec<GapReason> = s.gaps.iter().map(|g| g.reason).collect();
        assert_eq!(
            reasons,
            [
                GapReason::UnreadablePackageDatabase,
                GapReason::ArchitectureNotScanned
            ]
        );
        assert_eq!(
            s.message.as_deref(),
            Some(
                "no known vulnerabilities in 2 packages; coverage Partial: lib/apk/db/installed: \
                 1 unreadable record(s) skipped; the image has no linux/arm/v6 manifest"
            )
        );
    }

    #[test]
    fn only_max_report_age_changes_move_due_times() {
        let policy = |name: &str, age: Option<&str>| {
            let mut p = ScanPolicy::new(name, Default::default());
            p.spec.max_report_age = age.map(str::to_owned);
            p
        };
        let mut seen = HashMap::new();
        let steps = [
            (
                "listed",
                watcher::Event::InitApply(policy("a", Some("12h"))),
                false,
            ),
            (
                "listed without age",
                watcher::Event::InitApply(policy("b", None)),
                false,
            ),
            (
                "status write",
                watcher::Event::Apply(policy("a", Some("12h"))),
                false,
            ),
            (
                "age changed",
                watcher::Event::Apply(policy("a", Some("1h"))),
                true,
            ),
            (
                "age set",
                watcher::Event::Apply(policy("b", Some("2h"))),
                true,
            ),
            (
                "new without age",
                watcher::Event::Apply(policy("c", None)),
                false,
            ),
            (
                "new with age",
                watcher::Event::Apply(policy("d", Some("3h"))),
                true,
            ),
            (
                "deleted without age",
                watcher::Event::Delete(policy("c", None)),
                false,
            ),
            (
                "deleted with age",
                watcher::Event::Delete(policy("a", Some("1h"))),
                true,
            ),
            (
                "relisted, changed",
                watcher::Event::InitApply(policy("b", Some("4h"))),
                true,
            ),
        ];
        for (what, event, want) in steps {
            assert_eq!(max_age_changed(&mut seen, &event), want, "{what}");
        }
    }

    #[test]
    fn failed_status_keeps_results_and_counts_failures() {
        let prev = scanned("A@1", 5);
        let s = failed_status(Some(&prev), "boom".into());
        assert_eq!(s.phase, ScanPhase::Failed);
        assert_eq!(s.failures, Some(1));
        assert_eq!(s.database_version.as_deref(), Some("A@1"));
        let s = failed_status(Some(&s), "again".into());
        assert_eq!((s.failures, s.message.as_deref()), (Some(2), Some("again")));
        assert_eq!(failed_status(None, "x".into()).failures, Some(1));
    }

    #[test]
    fn secret_refs_default_their_namespace_and_dedupe() {
        let r = |name: &str, ns: Option<&str>| SecretRef {
            name: name.into(),
            namespace: ns.map(str::to_owned),
        };
        let refs = [
            r("b", None),
            r("a", Some("team")),
            r("b", Some("palisade")),
            r("", None),
            r("c", Some("")),
        ];
        assert_eq!(
            secret_refs(refs.iter(), "palisade"),
            [
                ("palisade".to_owned(), "b".to_owned()),
                ("palisade".to_owned(), "c".to_owned()),
                ("team".to_owned(), "a".to_owned()),
            ]
        );
    }
}
