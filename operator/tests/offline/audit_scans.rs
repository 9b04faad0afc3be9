//! The audit's judgement of running workloads' images by ScanPolicies: from reports and
//! the digests seen running, with no registry call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::core::DynamicObject;
use palisade_crds::{
    ImageScanReport, ImageScanReportSpec, ImageScanReportStatus, ReportFinding, ScanPhase,
    SeveritySummary, report_name,
};
use palisade_operator::audit::policy_report::Outcome;
use palisade_operator::audit::{self, Judged, ScanAudit};
use palisade_policy::PolicySet;
use palisade_policy::scan::ImageTally;

const BAD: &str = "sha256:badbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadb";
const GOOD: &str = "sha256:600d600d600d600d600d600d600d600d600d600d600d600d600d600d600d600d";

fn objects(values: Vec<serde_json::Value>) -> Vec<DynamicObject> {
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("an object"))
        .collect()
}

fn scan_policy(name: &str, spec: serde_json::Value, status: Option<i64>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "ScanPolicy",
        "metadata": {"name": name, "generation": 1},
        "spec": spec,
    });
    if let Some(n) = status {
        v["status"] = serde_json::json!({"imagesFailing": n});
    }
    v
}

fn deployment(ns: &str, name: &str, uid: &str, images: &[&str]) -> serde_json::Value {
    let containers: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
        .collect();
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": uid},
        "spec": {"template": {"spec": {"containers": containers}}}
    })
}

fn report(digest: &str, critical: u32) -> Arc<ImageScanReport> {
    let findings = (0..critical)
        .map(|i| ReportFinding {
            id: format!("DEBIAN-CVE-2024-000{i}"),
            aliases: vec![format!("CVE-2024-000{i}")],
            package: "openssl".into(),
            installed_version: "3.0.11-1".into(),
            fixed_version: Some("3.0.13-1".into()),
            severity: "Critical".into(),
            ..ReportFinding::default()
        })
        .collect();
    let mut r = ImageScanReport::new(
        &report_name(digest),
        ImageScanReportSpec {
            image: "registry.example/app".into(),
            digest: digest.into(),
            platform: None,
        },
    );
    let summary = SeveritySummary {
        critical,
        ..SeveritySummary::default()
    };
    r.status = Some(ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        ecosystem: Some("Debian:12".into()),
        coverage: Some(palisade_crds::Coverage::Full),
        summary: Some(summary),
        fixable: Some(summary),
        findings,
        ..ImageScanReportStatus::default()
    });
    Arc::new(r)
}

/// Audit `objs` with the ScanPolicies `policies`, reports for BAD (2 Critical) and GOOD
/// (none), and `registry.example/app:1` last seen running as BAD.
fn audit(objs: &[DynamicObject], policies: &[DynamicObject]) -> (Vec<Judged>, audit::Findings) {
    let set = audit::compile_scan_policies(policies);
    let reports: HashMap<String, Arc<ImageScanReport>> = HashMap::from([
        (BAD.to_owned(), report(BAD, 2)),
        (GOOD.to_owned(), report(GOOD, 0)),
    ]);
    let report = |d: &str| reports.get(d).cloned();
    let digest = |image: &str| (image == "registry.example/app:1").then(|| BAD.to_owned());
    let mut scans = ScanAudit {
        set: &set,
        report: &report,
        digest: &digest,
        tally: BTreeMap::new(),
    };
    let labels = HashMap::new();
    let judged: Vec<Judged> = audit::top_level(objs, &[])
        .into_iter()
        .filter_map(|o| {
            audit::judge_with_scans(
                o,
                &PolicySet::default(),
                Some(&mut scans),
                &labels,
                Timestamp::UNIX_EPOCH,
            )
        })
        .collect();
    let mut findings = audit::build_reports(
        &judged,
        &PolicySet::default(),
        100,
        Timestamp::UNIX_EPOCH,
        &palisade_policy::RuleDocs::default(),
    );
    findings.scan_images = scans.tally;
    (judged, findings)
}

fn strict() -> serde_json::Value {
    serde_json::json!({"mode": "Audit", "failOn": {"severity": "High"}, "onUnscanned": "Deny"})
}

#[test]
fn failing_images_become_results_and_unscanned_ones_are_left_out() {
    let policies = objects(vec![scan_policy("prod", strict(), None)]);
    let objs = objects(vec![
        // A tag whose running digest is known and fails.
        deployment("a", "tagged", "1", &["registry.example/app:1"]),
        // Pinned digests: one failing, one clean.
        deployment(
            "a",
            "pinned",
            "2",
            &[
                &format!("registry.example/app@{BAD}"),
                &format!("registry.example/other@{GOOD}"),
            ],
        ),
        // A tag never seen running, and a digest without a report: not scanned yet, so
        // neither a violation (even with onUnscanned: Deny) nor counted.
        deployment(
            "b",
            "unknown",
            "3",
            &[
                "registry.example/app:2",
                "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ],
        ),
    ]);
    let (judged, findings) = audit(&objs, &policies);

    let violations = |name: &str| {
        let j = judged
            .iter()
            .find(|j| j.reference.name.as_deref() == Some(name))
            .expect("judged");
        let d = j.outcome.as_ref().expect("a decision");
        d.violations
            .iter()
            .map(|v| (v.policy.clone(), v.rule.as_str().to_owned()))
            .collect::<Vec<_>>()
    };
    let failing = vec![("prod".to_owned(), "scan.vulnerabilities".to_owned())];
    assert_eq!(violations("tagged"), failing);
    assert_eq!(violations("pinned"), failing);
    assert_eq!(violations("unknown"), []);

    // Two distinct digests judged from a report (BAD counted once), one failing.
    assert_eq!(
        findings.scan_images,
        BTreeMap::from([(
            "prod".to_owned(),
            ImageTally {
                scanned: BTreeSet::from([BAD.to_owned(), GOOD.to_owned()]),
                failing: BTreeSet::from([BAD.to_owned()]),
                unjudged: BTreeSet::new(),
            }
        )])
    );
    // ScanPolicy results are reported, under their own category, but not counted as
    // SecurityPolicy violations.
    assert!(findings.by_policy.is_empty(), "{:?}", findings.by_policy);
    let a = &findings.reports["a"];
    // Audit mode: the violation is a fail, as Enforce would refuse it.
    assert_eq!((a.summary.fail, a.summary.warn), (2, 0), "{:?}", a.summary);
    let r = &a.results[0];
    assert_eq!(r.policy, "prod");
    assert_eq!(r.rule.as_deref(), Some("scan.vulnerabilities"));
    assert_eq!(r.category.as_deref(), Some("Image Vulnerabilities"));
    assert_eq!(r.result, Some(Outcome::Fail));
    assert_eq!(r.properties["policyKind"], "ScanPolicy");
    let m = r.message.as_deref().unwrap_or_default();
    assert!(m.contains("2 Critical"), "{m}");
    assert!(m.contains("CVE-2024-0000"), "{m}");
    assert_eq!(findings.reports["b"].results, []);
}

#[test]
fn image_selection_and_thresholds_decide_what_is_counted() {
    let policies = objects(vec![
        scan_policy("strict", strict(), None),
        // failOn Critical: the Critical findings fail it too.
        scan_policy(
            "critical",
            serde_json::json!({"mode": "Enforce", "failOn": {"severity": "Critical"}}),
            None,
        ),
        // Only images of another registry: nothing here is judged.
        scan_policy(
            "elsewhere",
            serde_json::json!({"mode": "Enforce", "images": {"include": ["ghcr.io/*"]}}),
            None,
        ),
        // Every finding ignored by id: scanned, none failing.
        scan_policy(
            "waived",
            serde_json::json!({"mode": "Warn", "ignore": [
                {"id": "CVE-2024-0000", "reason": "not reachable"},
                {"id": "CVE-2024-0001", "reason": "not reachable"},
            ]}),
            None,
        ),
    ]);
    let objs = objects(vec![deployment("a", "w", "1", &["registry.example/app:1"])]);
    let (_, findings) = audit(&objs, &policies);
    let counts: BTreeMap<&str, (usize, usize)> = findings
        .scan_images
        .iter()
        .map(|(p, t)| (p.as_str(), (t.scanned.len(), t.failing.len())))
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([("critical", (1, 1)), ("strict", (1, 1)), ("waived", (1, 0))]),
        "a policy that judges nothing has no tally of its own; audit_once adds zeros"
    );
}

#[test]
fn a_failing_count_event_is_due_only_when_it_changes() {
    let policies = objects(vec![
        scan_policy("new-clean", strict(), None),
        scan_policy("new-dirty", strict(), None),
        scan_policy("same", strict(), Some(1)),
        scan_policy("fixed", strict(), Some(3)),
    ]);
    let one = ImageTally {
        scanned: BTreeSet::from([BAD.to_owned()]),
        failing: BTreeSet::from([BAD.to_owned()]),
        unjudged: BTreeSet::new(),
    };
    let findings = audit::Findings {
        scan_images: BTreeMap::from([
            ("new-clean".to_owned(), ImageTally::default()),
            ("new-dirty".to_owned(), one.clone()),
            ("same".to_owned(), one),
            ("fixed".to_owned(), ImageTally::default()),
        ]),
        ..audit::Findings::default()
    };
    let got: Vec<(String, Option<i64>, u64)> = audit::failing_changes(&policies, &findings)
        .iter()
        .map(|c| (c.object.name_any(), c.before, c.now))
        .collect();
    assert_eq!(
        got,
        [
            ("new-dirty".to_owned(), None, 1),
            ("fixed".to_owned(), Some(3), 0),
        ]
    );
}
