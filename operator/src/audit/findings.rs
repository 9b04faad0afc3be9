//! What one audit found, as pure functions of the judged objects: the PolicyReports, the
//! counts per policy, and the Events for counts that changed.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp as Instant;
use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::runtime::events::{Event, EventType};
use palisade_policy::scan::ImageTally;
use palisade_policy::{Mode, PolicyKind, PolicySet, RuleDocs, Violation, Waiver};

use super::judge::Judged;
use palisade_crds::policy_report::{self, Outcome, ReportBody, ReportResult, Severity};

/// `source` of every result.
pub const SOURCE: &str = "palisade";
/// Reason of the Event emitted when a policy's violation count changes.
pub const EVENT_REASON: &str = "AuditViolations";
/// Reason of the Event emitted when a ScanPolicy's count of failing images changes.
pub const SCAN_EVENT_REASON: &str = "FailingImages";

/// A result's message is cut here; reports stay small whatever the policies say.
const MAX_MESSAGE: usize = 1024;

/// What one audit found, besides the reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Per namespace, the report body.
    pub reports: BTreeMap<String, ReportBody>,
    /// Per SecurityPolicy (every policy of the set, found or not), violations by rule.
    pub by_policy: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per ScanPolicy in force, the distinct images judged from a report and those failing
    /// (empty when scanning is off).
    pub scan_images: BTreeMap<String, ImageTally>,
}

impl Findings {
    /// All violations of one policy.
    pub fn violations(&self, policy: &str) -> u64 {
        self.by_policy
            .get(policy)
            .map_or(0, |rules| rules.values().sum())
    }
}

/// Most severe first: Enforce, then Warn, then Audit.
fn mode_rank(mode: Mode) -> u8 {
    match mode {
        Mode::Enforce => 0,
        Mode::Warn => 1,
        _ => 2,
    }
}

fn severity(mode: Mode) -> Severity {
    match mode {
        Mode::Enforce => Severity::High,
        Mode::Warn => Severity::Medium,
        _ => Severity::Low,
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max.saturating_sub(3);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// The result for one violation.
pub fn violation_result(
    v: &Violation,
    resource: &ObjectReference,
    now: Instant,
    docs: &RuleDocs,
) -> ReportResult {
    let mut message = String::with_capacity(160);
    if let Some(c) = &v.container {
        message.push_str(&format!("{} {:?}: ", c.kind.as_str(), c.name));
    }
    message.push_str(&format!("{}; {}", v.message, v.fix));
    let mut properties = BTreeMap::new();
    properties.insert("field".to_owned(), truncate(v.field.clone(), MAX_MESSAGE));
    properties.insert("mode".to_owned(), v.mode.as_str().to_owned());
    if let Some(c) = &v.container {
        properties.insert("container".to_owned(), c.name.clone());
    }
    properties.insert("policyKind".to_owned(), v.kind.as_str().to_owned());
    properties.insert("docs".to_owned(), docs.url(v.rule));
    compliance_properties(v.rule, &mut properties);
    ReportResult {
        source: Some(SOURCE.into()),
        policy: v.policy.clone(),
        rule: Some(v.rule.as_str().to_owned()),
        category: Some(
            match v.kind {
                PolicyKind::SecurityPolicy => "Pod Security",
                PolicyKind::ScanPolicy => "Image Vulnerabilities",
            }
            .into(),
        ),
        severity: Some(severity(v.mode)),
        timestamp: Some(policy_report::Timestamp::from_jiff(now)),
        result: Some(if v.mode == Mode::Warn {
            Outcome::Warn
        } else {
            Outcome::Fail
        }),
        scored: true,
        resources: vec![resource.clone()],
        message: Some(truncate(message, MAX_MESSAGE)),
        properties,
    }
}

pub use palisade_policy::compliance_properties;

/// The `skip` result of a violation an exception waived, naming the exception, its owner,
/// reason and expiry, so the report shows every waiver an auditor must review.
pub fn waiver_result(
    w: &Waiver,
    resource: &ObjectReference,
    now: Instant,
    docs: &RuleDocs,
) -> ReportResult {
    let mut properties = BTreeMap::new();
    properties.insert("field".to_owned(), truncate(w.field.clone(), MAX_MESSAGE));
    properties.insert("policyKind".to_owned(), w.kind.as_str().to_owned());
    properties.insert("exception".to_owned(), w.exception.clone());
    if let Some(o) = &w.owner {
        properties.insert("owner".to_owned(), truncate(o.clone(), MAX_MESSAGE));
    }
    if let Some(r) = &w.reason {
        properties.insert("reason".to_owned(), truncate(r.clone(), MAX_MESSAGE));
    }
    if let Some(at) = w.expires {
        properties.insert(
            "expires".to_owned(),
            at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    properties.insert("docs".to_owned(), docs.url(w.rule));
    compliance_properties(w.rule, &mut properties);
    ReportResult {
        source: Some(SOURCE.into()),
        policy: w.policy.clone(),
        rule: Some(w.rule.as_str().to_owned()),
        category: Some(
            match w.kind {
                PolicyKind::SecurityPolicy => "Pod Security",
                PolicyKind::ScanPolicy => "Image Vulnerabilities",
            }
            .into(),
        ),
        severity: Some(Severity::Info),
        timestamp: Some(policy_report::Timestamp::from_jiff(now)),
        result: Some(Outcome::Skip),
        scored: false,
        resources: vec![resource.clone()],
        message: Some(truncate(format!("waived by {}", w.describe()), MAX_MESSAGE)),
        properties,
    }
}

/// The reports and per-policy counts for what was judged. Every namespace with a judged
/// object gets a report. Summary: `pass` counts (object, matching policy) pairs with no
/// violation; `fail` the violations of Enforce and Audit policies; `warn` those of Warn
/// policies; `error` objects the engine could not read. At most `max_results` results per
/// report, most severe first, then by object, policy and rule, so the same cluster gives
/// the same report.
pub fn build_reports(
    judged: &[Judged],
    policies: &PolicySet,
    max_results: usize,
    now: Instant,
    docs: &RuleDocs,
) -> Findings {
    let mut by_policy: BTreeMap<String, BTreeMap<String, u64>> = policies
        .policies()
        .iter()
        .map(|p| (p.name().to_owned(), BTreeMap::new()))
        .collect();
    // Per namespace: the body and the candidate results with their sort key.
    type Key = (u8, String, String, String, String, String);
    let mut work: BTreeMap<String, (ReportBody, Vec<(Key, ReportResult)>)> = BTreeMap::new();
    for j in judged {
        let (body, results) = work.entry(j.namespace.clone()).or_default();
        let decision = match &j.outcome {
            Ok(d) => d,
            Err(e) => {
                body.summary.error += 1;
                let key = (
                    3,
                    kind_name(&j.reference),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                );
                results.push((
                    key,
                    ReportResult {
                        source: Some(SOURCE.into()),
                        policy: "-".into(),
                        rule: None,
                        category: Some("Pod Security".into()),
                        severity: None,
                        timestamp: Some(policy_report::Timestamp::from_jiff(now)),
                        result: Some(Outcome::Error),
                        scored: false,
                        resources: vec![j.reference.clone()],
                        message: Some(truncate(
                            format!("cannot read the pod spec: {e}"),
                            MAX_MESSAGE,
                        )),
                        properties: BTreeMap::new(),
                    },
                ));
                continue;
            }
        };
        let failing: HashSet<&str> = decision
            .violations
            .iter()
            .map(|v| v.policy.as_str())
            .collect();
        body.summary.pass += decision
            .matched_policies
            .iter()
            .filter(|p| !failing.contains(p.as_str()))
            .count() as u64;
        for v in &decision.violations {
            if v.mode == Mode::Warn {
                body.summary.warn += 1;
            } else {
                body.summary.fail += 1;
            }
            // ScanPolicies are counted by image (Findings::scan_images), not here.
            if v.kind == PolicyKind::SecurityPolicy {
                *by_policy
                    .entry(v.policy.clone())
                    .or_default()
                    .entry(v.rule.as_str().to_owned())
                    .or_insert(0) += 1;
            }
            let key = (
                mode_rank(v.mode),
                kind_name(&j.reference),
                v.policy.clone(),
                v.rule.as_str().to_owned(),
                v.container
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                v.field.clone(),
            );
            results.push((key, violation_result(v, &j.reference, now, docs)));
        }
        for w in &decision.waived {
            body.summary.skip += 1;
            let key = (
                4,
                kind_name(&j.reference),
                w.policy.clone(),
                w.rule.as_str().to_owned(),
                w.exception.clone(),
                w.field.clone(),
            );
            results.push((key, waiver_result(w, &j.reference, now, docs)));
        }
    }
    let reports = work
        .into_iter()
        .map(|(ns, (mut body, mut results))| {
            results.sort_by(|a, b| a.0.cmp(&b.0));
            results.truncate(max_results);
            body.results = results.into_iter().map(|(_, r)| r).collect();
            (ns, body)
        })
        .collect();
    Findings {
        reports,
        by_policy,
        scan_images: BTreeMap::new(),
    }
}

fn kind_name(r: &ObjectReference) -> String {
    format!(
        "{}/{}",
        r.kind.as_deref().unwrap_or(""),
        r.name.as_deref().unwrap_or("")
    )
}

/// The name of the report of a namespace.
pub fn report_name(namespace: &str) -> String {
    format!("palisade-{namespace}")
}

/// A policy whose violation count differs from the one its status shows.
#[derive(Debug)]
pub struct CountChange<'a> {
    pub object: &'a DynamicObject,
    pub before: Option<i64>,
    pub now: u64,
    /// `privileged 2, podSecurity.runAsNonRoot 1`
    pub by_rule: String,
}

/// The policies (of those audited) whose count changed since the last audit wrote it; a
/// first count of zero is not news.
pub fn count_changes<'a>(
    objects: &'a [DynamicObject],
    findings: &Findings,
) -> Vec<CountChange<'a>> {
    changes(objects, "/status/violations", |name| {
        let rules = findings.by_policy.get(name)?;
        let by_rule = rules
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        Some((rules.values().sum(), by_rule))
    })
}

/// The ScanPolicies (of those audited) whose count of failing images changed since the
/// last audit wrote it; a first count of zero is not news.
pub fn failing_changes<'a>(
    objects: &'a [DynamicObject],
    findings: &Findings,
) -> Vec<CountChange<'a>> {
    changes(objects, "/status/imagesFailing", |name| {
        let tally = findings.scan_images.get(name)?;
        Some((tally.failing.len() as u64, String::new()))
    })
}

/// The objects whose count now (`count` by name, with its breakdown) differs from the one
/// at `pointer` in their status; objects with no count now are skipped.
pub(super) fn changes<'a>(
    objects: &'a [DynamicObject],
    pointer: &str,
    count: impl Fn(&str) -> Option<(u64, String)>,
) -> Vec<CountChange<'a>> {
    objects
        .iter()
        .filter_map(|o| {
            let (now, by_rule) = count(&o.name_any())?;
            let before = o.data.pointer(pointer).and_then(serde_json::Value::as_i64);
            let same = match before {
                Some(b) => u64::try_from(b).ok() == Some(now),
                None => now == 0,
            };
            (!same).then_some(CountChange {
                object: o,
                before,
                now,
                by_rule,
            })
        })
        .collect()
}

/// The Event for a count that changed: a Warning while anything fails, naming the count
/// before and by rule.
pub fn announcement(change: &CountChange<'_>, scan: bool) -> Event {
    let mut message = if scan {
        format!(
            "background audit: {} image{} of running workloads fail{} this policy",
            change.now,
            if change.now == 1 { "" } else { "s" },
            if change.now == 1 { "s" } else { "" }
        )
    } else {
        format!(
            "background audit: {} violation{} in running workloads",
            change.now,
            if change.now == 1 { "" } else { "s" }
        )
    };
    if let Some(before) = change.before {
        message.push_str(&format!(" (was {before})"));
    }
    if !change.by_rule.is_empty() {
        message.push_str(&format!(": {}", change.by_rule));
    }
    message.push_str("; details in the PolicyReports (kubectl get policyreports -A)");
    Event {
        type_: if change.now > 0 {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: if scan {
            SCAN_EVENT_REASON
        } else {
            EVENT_REASON
        }
        .into(),
        note: Some(truncate(message, MAX_MESSAGE)),
        action: "Audit".into(),
        secondary: None,
    }
}
