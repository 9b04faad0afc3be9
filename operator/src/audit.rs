//! The background audit: the engine the webhook runs, over what already runs in the cluster.
//!
//! On every SecurityPolicy generation change and every interval, the audit lists pods and the
//! workload kinds, judges the top-level objects (a workload, or a pod no judged workload
//! owns, so one bad template is counted once), and writes:
//! - one `PolicyReport` per namespace (`palisade-<namespace>`): counts plus the most severe
//!   results, bounded in size;
//! - each SecurityPolicy's `status.violations` and `status.lastAuditTime`, under a field
//!   manager of its own ([`FIELD_MANAGER`]) so that server-side apply never removes the
//!   controller's `conditions`, `observedGeneration` or `enforced`, nor they these;
//! - `palisade_audit_violations{policy,rule}`;
//! - an Event on a policy whose violation count changed (at most one per policy per audit).
//!
//! Audit-mode policies surface only here. The report building is pure ([`build_reports`]);
//! [`audit_once`] does the I/O around it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp as Instant;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, TypeMeta};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use palisade_crds::{ImageScanReport, ScanPolicy, report_name as scan_report_name};
use palisade_kube_plumbing::events::{core_event, create_core};
use palisade_policy::scan::{ImageFacts, ImageTally, tally_scans};
use palisade_policy::{
    CompiledPolicy, Decision, Facts, Framework, Mode, PolicyKind, PolicySet, RuleDocs, RuleId,
    ScanPolicySet, Subject, Violation, Waiver, Waivers, review_scans,
};
use tracing::{debug, info, warn};

use crate::controllers::security_policy as policy_controller;
use crate::error::{Error, report};
use crate::metrics::Metrics;
use crate::policy_report::{self, Outcome, PolicyReport, ReportBody, ReportResult, Severity};
use crate::scanning::ScanView;

/// The field manager of the audit's writes (reports and the policies' audit status fields).
pub const FIELD_MANAGER: &str = palisade_kube_plumbing::field_manager::OPERATOR_AUDIT;
/// Label on every report the audit writes; stale ones are found and deleted by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "palisade-operator");
/// `source` of every result.
pub const SOURCE: &str = "palisade";
/// Reason of the Event emitted when a policy's violation count changes.
pub const EVENT_REASON: &str = "AuditViolations";
/// Reason of the Event emitted when a ScanPolicy's count of failing images changes.
pub const SCAN_EVENT_REASON: &str = "FailingImages";
/// Page size of the lists, so a large cluster is read in bounded pieces.
const PAGE: u32 = 500;
/// A result's message is cut here; reports stay small whatever the policies say.
const MAX_MESSAGE: usize = 1024;
/// Policy changes arriving together are audited once.
const DEBOUNCE: Duration = Duration::from_secs(2);

/// Settings of the audit.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time between two audits with no policy change.
    pub interval: Duration,
    /// At most this many results per report (the summary counts them all).
    pub max_results: usize,
    /// Create the PolicyReport CRDs when the cluster has none.
    pub install_crds: bool,
    /// Namespaces never judged (the webhook's exclusions: kube-system, its own, configured).
    pub excluded_namespaces: Vec<String>,
    /// Where results link each rule's page.
    pub rule_docs: RuleDocs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(600),
            max_results: 100,
            install_crds: true,
            excluded_namespaces: vec!["kube-system".into()],
            rule_docs: RuleDocs::default(),
        }
    }
}

/// One judged object: where it is, how to refer to it, and the engine's decision (or why the
/// engine could not read it).
#[derive(Debug, Clone)]
pub struct Judged {
    pub namespace: String,
    pub reference: ObjectReference,
    pub outcome: Result<Decision, String>,
}

/// What judging images by ScanPolicies takes, and what it counts. The lookups answer from
/// memory: the audit makes no registry call.
pub struct ScanAudit<'a> {
    pub set: &'a ScanPolicySet,
    /// The report of a digest.
    pub report: &'a dyn Fn(&str) -> Option<Arc<ImageScanReport>>,
    /// The digest last seen running for a normalized image reference.
    pub digest: &'a dyn Fn(&str) -> Option<String>,
    /// Per ScanPolicy, the images judged from a report and those failing.
    pub tally: BTreeMap<String, ImageTally>,
}

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

/// The rule's compliance references as result properties, one per framework, ids joined
/// by `, ` (`cis-kubernetes: 5.2.2`, `nist-sp-800-53: AC-6`, `mitre-attack: T1611`), so
/// report consumers can filter on them without knowing Palisade's rules.
pub fn compliance_properties(rule: RuleId, properties: &mut BTreeMap<String, String>) {
    for r in palisade_policy::compliance_refs(rule) {
        let key = match r.framework {
            Framework::CisKubernetes => "cis-kubernetes",
            Framework::Nist80053 => "nist-sp-800-53",
            Framework::Nist800190 => "nist-sp-800-190",
            Framework::MitreAttack => "mitre-attack",
        };
        properties
            .entry(key.to_owned())
            .and_modify(|ids| {
                ids.push_str(", ");
                ids.push_str(r.id);
            })
            .or_insert_with(|| r.id.to_owned());
    }
}

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

/// The kinds the audit lists, with the versions to try in order (CronJob is `batch/v1` from
/// Kubernetes 1.21, `batch/v1beta1` before).
pub const KINDS: &[(&str, &[&str], &str, &str)] = &[
    ("", &["v1"], "Pod", "pods"),
    ("apps", &["v1"], "Deployment", "deployments"),
    ("apps", &["v1"], "ReplicaSet", "replicasets"),
    ("apps", &["v1"], "StatefulSet", "statefulsets"),
    ("apps", &["v1"], "DaemonSet", "daemonsets"),
    ("batch", &["v1"], "Job", "jobs"),
    ("batch", &["v1", "v1beta1"], "CronJob", "cronjobs"),
    (
        "",
        &["v1"],
        "ReplicationController",
        "replicationcontrollers",
    ),
];

/// Objects that are judged: those in a namespace not excluded, and not controlled by another
/// listed object (its owner is judged instead: Pod → ReplicaSet → Deployment counts once).
pub fn top_level<'a>(
    objects: &'a [DynamicObject],
    excluded_namespaces: &[String],
) -> Vec<&'a DynamicObject> {
    let uids: HashSet<&str> = objects
        .iter()
        .filter_map(|o| o.metadata.uid.as_deref())
        .collect();
    objects
        .iter()
        .filter(|o| {
            let ns = o.metadata.namespace.as_deref().unwrap_or("");
            !excluded_namespaces.iter().any(|e| e == ns)
        })
        .filter(|o| {
            !o.owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && uids.contains(r.uid.as_str()))
        })
        .collect()
}

/// Judge one object with the engine.
pub fn judge(
    object: &DynamicObject,
    set: &PolicySet,
    namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    now: Instant,
) -> Option<Judged> {
    judge_with_scans(object, set, None, namespace_labels, now)
}

/// Judge one object with the engine and, given `scans`, its images by the ScanPolicies:
/// images that fail become violations; images without a usable report are left out (a
/// running workload is reported for what is found, not for what is not scanned yet).
pub fn judge_with_scans(
    object: &DynamicObject,
    set: &PolicySet,
    scans: Option<&mut ScanAudit<'_>>,
    namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    now: Instant,
) -> Option<Judged> {
    let types = object.types.as_ref()?;
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let reference = ObjectReference {
        api_version: Some(types.api_version.clone()),
        kind: Some(types.kind.clone()),
        name: object.metadata.name.clone(),
        namespace: Some(namespace.clone()),
        uid: object.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    let outcome = match Subject::from_manifest(object, &namespace) {
        Ok(Some(subject)) => {
            let facts = Facts::new(namespace_labels.get(&namespace), now);
            let mut decision = palisade_policy::review(set, &subject, &facts);
            if let Some(scans) = scans {
                judge_images(&subject, &facts, scans, &mut decision);
            }
            Ok(decision)
        }
        Ok(None) => return None,
        Err(e) => Err(report(&e)),
    };
    Some(Judged {
        namespace,
        reference,
        outcome,
    })
}

fn judge_images(
    subject: &Subject,
    facts: &Facts<'_>,
    scans: &mut ScanAudit<'_>,
    decision: &mut Decision,
) {
    let needs = scans.set.images_to_judge(subject, facts);
    if needs.images.is_empty() {
        return;
    }
    let known: Vec<(String, String, Option<Arc<ImageScanReport>>)> = needs
        .images
        .iter()
        .filter_map(|n| {
            let digest = n
                .pinned_digest()
                .map(str::to_owned)
                .or_else(|| (scans.digest)(&n.image))?;
            let report = (scans.report)(&digest);
            Some((n.image.clone(), digest, report))
        })
        .collect();
    let lookup = |image: &str| {
        known
            .iter()
            .find(|(i, ..)| i == image)
            .map(|(_, digest, report)| ImageFacts::Digest {
                digest,
                report: report.as_deref().and_then(|r| r.status.as_ref()),
            })
    };
    let mut found = Decision::default();
    review_scans(scans.set, subject, facts, &lookup, &mut found);
    decision.violations.extend(
        found
            .violations
            .into_iter()
            .filter(|v| v.rule != RuleId::ScanUnscanned),
    );
    tally_scans(scans.set, subject, facts, &lookup, &mut scans.tally);
}

/// The policies in force, as the webhook compiles them: the current generation, or when it
/// is invalid the one recorded in `status.enforced`. Returns the set and every policy name.
pub fn compile_policies(objects: &[DynamicObject]) -> PolicySet {
    let mut compiled = Vec::with_capacity(objects.len());
    for obj in objects {
        let Ok(value) = serde_json::to_value(obj) else {
            continue;
        };
        match compile_value(&value, Waivers::Checked) {
            Some(p) => compiled.push(p),
            None => {
                if let Some(p) = palisade_policy::enforced_generation(&value)
                    .and_then(|(_, v)| compile_value(&v, Waivers::AsAccepted))
                {
                    compiled.push(p);
                }
            }
        }
    }
    PolicySet::new(compiled)
}

fn compile_value(value: &serde_json::Value, waivers: Waivers) -> Option<CompiledPolicy> {
    palisade_policy::policy_from_value(value)
        .and_then(|p| CompiledPolicy::compile_with(&p, Instant::now(), waivers))
        .ok()
}

/// The ScanPolicies in force, as the webhook compiles them (an invalid one is not; its
/// status says why).
pub fn compile_scan_policies(objects: &[DynamicObject]) -> ScanPolicySet {
    let typed: Vec<ScanPolicy> = objects
        .iter()
        .filter_map(|o| {
            serde_json::to_value(o)
                .and_then(serde_json::from_value)
                .ok()
        })
        .collect();
    ScanPolicySet::compile_for_enforcement(&typed, Instant::now()).0
}

/// Every object of a kind in the cluster, page by page, with `apiVersion` and `kind` set
/// (list items come without them). `None` when the API server serves none of the versions.
async fn list_kind(
    client: &Client,
    group: &str,
    versions: &[&str],
    kind: &str,
    plural: &str,
) -> Result<Option<Vec<DynamicObject>>, Error> {
    for version in versions {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        match list_all(&Api::<DynamicObject>::all_with(client.clone(), &resource)).await {
            Ok(mut items) => {
                for item in &mut items {
                    item.types = Some(TypeMeta {
                        api_version: resource.api_version.clone(),
                        kind: kind.to_owned(),
                    });
                }
                return Ok(Some(items));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(source) => {
                return Err(Error::Kube {
                    action: format!("list {plural}.{group}/{version}"),
                    source,
                });
            }
        }
    }
    Ok(None)
}

async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Create the PolicyReport CRDs that the cluster lacks and wait until they are served.
/// Existing ones (from Kyverno, say) are left as they are.
pub async fn ensure_crds(client: &Client) -> Result<(), Error> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in policy_report::crds() {
        let name = crd.name_any();
        let existing = api
            .get_opt(&name)
            .await
            .map_err(Error::kube(format!("read CRD {name}")))?;
        if existing.is_some() {
            continue;
        }
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => info!(crd = %name, "CRD created"),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(source) => {
                return Err(Error::Kube {
                    action: format!("create CRD {name}"),
                    source,
                });
            }
        }
        for _ in 0..60 {
            let established = api
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// One audit: list, judge, write reports, statuses and metrics. Returns what was found.
/// With `scans` (scanning on), workloads' images are judged by the ScanPolicies too.
pub async fn audit_once(
    client: &Client,
    config: &Config,
    metrics: &Metrics,
    scans: Option<&ScanView>,
) -> Result<Findings, Error> {
    let now = Instant::now();
    let policy_resource = policy_controller::resource();
    let policy_api = Api::<DynamicObject>::all_with(client.clone(), &policy_resource);
    let policy_objects = list_all(&policy_api)
        .await
        .map_err(Error::kube("list SecurityPolicies"))?;
    let set = compile_policies(&policy_objects);

    let namespaces = list_all(&Api::<Namespace>::all(client.clone()))
        .await
        .map_err(Error::kube("list namespaces"))?;
    let namespace_labels: HashMap<String, BTreeMap<String, String>> = namespaces
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();

    let mut objects = Vec::new();
    for (group, versions, kind, plural) in KINDS {
        match list_kind(client, group, versions, kind, plural).await? {
            Some(items) => objects.extend(items),
            None => debug!(kind, "not served by this API server; skipped"),
        }
    }
    let reports = scans.and_then(|v| v.reports.get().cloned());
    let digests = scans.map(|v| v.digests.clone()).unwrap_or_default();
    let scan_resource = ApiResource::erase::<ScanPolicy>(&());
    let scan_objects = match &reports {
        Some(_) => list_all(&Api::<DynamicObject>::all_with(
            client.clone(),
            &scan_resource,
        ))
        .await
        .map_err(Error::kube("list ScanPolicies"))?,
        None => Vec::new(),
    };
    let scan_set = compile_scan_policies(&scan_objects);
    let report_of = |digest: &str| {
        reports
            .as_ref()
            .and_then(|r| r.get(&ObjectRef::new(&scan_report_name(digest))))
    };
    let digest_of = |image: &str| digests.get(image);
    let mut scan_audit = (!scan_set.is_empty()).then(|| ScanAudit {
        set: &scan_set,
        report: &report_of,
        digest: &digest_of,
        // Every policy in force gets a count, zero included.
        tally: scan_set
            .policies()
            .iter()
            .map(|p| (p.name().to_owned(), ImageTally::default()))
            .collect(),
    });

    let judged: Vec<Judged> = top_level(&objects, &config.excluded_namespaces)
        .into_iter()
        .filter_map(|o| judge_with_scans(o, &set, scan_audit.as_mut(), &namespace_labels, now))
        .collect();
    let mut findings = build_reports(&judged, &set, config.max_results, now, &config.rule_docs);
    findings.scan_images = scan_audit.map(|s| s.tally).unwrap_or_default();

    // Without the PolicyReport CRDs (--install-policy-report-crds=false on a cluster that
    // lacks them) the statuses, Events and metrics still say what the audit found.
    if let Err(e) = write_reports(client, &findings).await {
        warn!(error = %report(&e), "cannot write the PolicyReports");
    }
    // Compared with the count on the status before this audit rewrites it, so a restart
    // says nothing new.
    for change in count_changes(&policy_objects, &findings) {
        if let Err(e) = announce(client, &policy_resource, &change, now).await {
            warn!(policy = %change.object.name_any(), error = %report(&e), "cannot publish the audit Event");
        }
    }
    for change in failing_changes(&scan_objects, &findings) {
        if let Err(e) = announce(client, &scan_resource, &change, now).await {
            warn!(policy = %change.object.name_any(), error = %report(&e), "cannot publish the audit Event");
        }
    }
    write_statuses(client, &policy_resource, &set, &findings, now).await;
    write_scan_statuses(client, &scan_resource, &findings, now).await;
    for (policy, rules) in &findings.by_policy {
        metrics.set_audit_violations(policy, rules.iter().map(|(r, n)| (r.as_str(), *n)));
    }
    for (policy, tally) in &findings.scan_images {
        metrics.set_scan_policy_images(
            policy,
            tally.scanned.len(),
            tally.failing.len(),
            tally.unjudged.len(),
        );
    }
    info!(
        objects = judged.len(),
        policies = set.len(),
        scan_policies = findings.scan_images.len(),
        failing_images = findings
            .scan_images
            .values()
            .map(|t| t.failing.len())
            .sum::<usize>(),
        reports = findings.reports.len(),
        violations = findings
            .by_policy
            .values()
            .flat_map(|r| r.values())
            .sum::<u64>(),
        "audit finished"
    );
    Ok(findings)
}

/// Apply the report of each namespace; delete the audit's reports in namespaces that no
/// longer have a judged object.
async fn write_reports(client: &Client, findings: &Findings) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    // One namespace that refuses its report must not cost every other namespace its own.
    let mut failed = Vec::new();
    for (ns, body) in &findings.reports {
        let name = report_name(ns);
        let report = PolicyReport::new(
            ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_owned(),
                    MANAGED_BY.1.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            body.clone(),
        );
        match Api::<PolicyReport>::namespaced(client.clone(), ns)
            .patch(&name, &params, &Patch::Apply(&report))
            .await
        {
            Ok(_) => {}
            // A namespace being deleted takes no new objects; its report would go with it.
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
                debug!(namespace = %ns, "namespace being deleted: no PolicyReport written");
            }
            Err(e) => failed.push(Error::kube(format!("apply PolicyReport {ns}/{name}"))(e)),
        }
    }
    let ours = Api::<PolicyReport>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)))
        .await
        .map_err(Error::kube("list PolicyReports"))?;
    for stale in ours.items.iter().filter(|r| {
        r.metadata
            .namespace
            .as_ref()
            .is_none_or(|ns| !findings.reports.contains_key(ns))
    }) {
        let (Some(ns), Some(name)) = (&stale.metadata.namespace, &stale.metadata.name) else {
            continue;
        };
        match Api::<PolicyReport>::namespaced(client.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => info!(namespace = %ns, report = %name, "stale PolicyReport deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                warn!(namespace = %ns, report = %name, error = %report(&e), "cannot delete stale PolicyReport")
            }
        }
    }
    let count = failed.len();
    match failed.into_iter().next() {
        None => Ok(()),
        Some(first) => {
            if count > 1 {
                warn!(
                    failed = count,
                    "PolicyReports of several namespaces could not be written; the first follows"
                );
            }
            Err(first)
        }
    }
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
fn changes<'a>(
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

/// One Event on the policy, through `core/v1` (which takes Events about cluster-scoped
/// objects on every Kubernetes version), in `default` as the controller's fallback does.
async fn announce(
    client: &Client,
    resource: &ApiResource,
    change: &CountChange<'_>,
    now: Instant,
) -> Result<(), kube::Error> {
    let name = change.object.name_any();
    let scan = resource.kind == ScanPolicy::kind(&());
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
    let event = Event {
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
    };
    let event = core_event(
        &change.object.object_ref(resource),
        &event,
        crate::FIELD_MANAGER,
        format!("{name}.audit.{:x}", now.as_nanosecond()),
        now,
    );
    create_core(client, &event).await
}

/// Write `violations` and `lastAuditTime` of every policy in force, under the audit's own
/// field manager. A policy that cannot be written is logged and the others still are.
async fn write_statuses(
    client: &Client,
    resource: &ApiResource,
    set: &PolicySet,
    findings: &Findings,
    now: Instant,
) {
    let api = Api::<DynamicObject>::all_with(client.clone(), resource);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for policy in set.policies() {
        let name = policy.name();
        let violations = i64::try_from(findings.violations(name)).unwrap_or(i64::MAX);
        let patch = serde_json::json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "status": {
                "violations": violations,
                "lastAuditTime": Time(now),
            },
        });
        match api.patch_status(name, &params, &Patch::Apply(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                warn!(policy = %name, error = %report(&e), "cannot write the audit status")
            }
        }
    }
}

/// Write `imagesScanned`, `imagesFailing` and `lastEvaluationTime` of every ScanPolicy in
/// force, under the audit's field manager (the controller owns the conditions).
async fn write_scan_statuses(
    client: &Client,
    resource: &ApiResource,
    findings: &Findings,
    now: Instant,
) {
    let api = Api::<DynamicObject>::all_with(client.clone(), resource);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for (name, tally) in &findings.scan_images {
        let patch = serde_json::json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "status": {
                "imagesScanned": tally.scanned.len(),
                "imagesFailing": tally.failing.len(),
                "imagesUnjudged": tally.unjudged.len(),
                "lastEvaluationTime": Time(now),
            },
        });
        match api.patch_status(name, &params, &Patch::Apply(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                warn!(policy = %name, error = %report(&e), "cannot write the ScanPolicy's counts")
            }
        }
    }
}

/// Run audits until `shutdown` fires: once at start, after every SecurityPolicy (and, with
/// scanning on, ScanPolicy) generation change (creation, update, deletion; not status
/// writes, which would loop), and every
/// `config.interval`. A failed audit is logged and retried at the next trigger.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    scans: Option<ScanView>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    if config.install_crds
        && let Err(e) = ensure_crds(&client).await
    {
        warn!(error = %report(&e), "cannot install the PolicyReport CRDs");
    }
    let api = Api::<DynamicObject>::all_with(client.clone(), &policy_controller::resource());
    let changes = watcher::watcher(api, watcher::Config::default());
    tokio::pin!(changes);
    // ScanPolicy generations trigger an audit too, when scanning is on.
    let mut scan_changes = match &scans {
        Some(_) => watcher::watcher(
            Api::<DynamicObject>::all_with(client.clone(), &ApiResource::erase::<ScanPolicy>(&())),
            watcher::Config::default(),
        )
        .default_backoff()
        .boxed(),
        None => futures::stream::pending().boxed(),
    };
    let mut generations: HashMap<String, i64> = HashMap::new();
    let mut scan_generations: HashMap<String, i64> = HashMap::new();
    // The watch's first listing is what the audit at start already sees.
    let mut primed = false;
    let mut scan_primed = false;
    let mut audited: BTreeSet<String> = BTreeSet::new();
    let mut scan_audited: BTreeSet<String> = BTreeSet::new();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut due = true;
    let mut changed = false;
    loop {
        if due {
            // Let a burst of policy changes settle.
            if changed {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(DEBOUNCE) => {}
                }
            }
            let result = audit_once(&client, &config, &metrics, scans.as_ref()).await;
            metrics.audited(result.is_ok(), jiff::Timestamp::now());
            match result {
                Ok(findings) => {
                    for gone in scan_audited
                        .iter()
                        .filter(|p| !findings.scan_images.contains_key(*p))
                    {
                        metrics.forget_scan_policy(gone);
                    }
                    scan_audited = findings.scan_images.keys().cloned().collect();
                    // Series of policies gone since the last audit are dropped.
                    for gone in audited
                        .iter()
                        .filter(|p| !findings.by_policy.contains_key(*p))
                    {
                        metrics.set_audit_violations(gone, []);
                    }
                    audited = findings.by_policy.keys().cloned().collect();
                }
                Err(e) => {
                    warn!(error = %report(&e), "audit failed; retrying at the next change or interval")
                }
            }
            due = false;
            changed = false;
            ticker.reset();
        }
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => due = true,
            event = changes.next() => match event {
                Some(Ok(event)) => {
                    changed |= generation_changed(&mut generations, &mut primed, event);
                    due |= changed;
                }
                Some(Err(e)) => debug!(error = %report(&e), "SecurityPolicy watch (retried)"),
                None => break,
            },
            Some(event) = scan_changes.next() => match event {
                Ok(event) => {
                    changed |= generation_changed(&mut scan_generations, &mut scan_primed, event);
                    due |= changed;
                }
                Err(e) => debug!(error = %report(&e), "ScanPolicy watch (retried)"),
            },
        }
    }
    info!("audit stopped");
}

/// Track generations; true when one appeared, changed or went away (after the first
/// listing, which only fills the map).
pub fn generation_changed(
    generations: &mut HashMap<String, i64>,
    primed: &mut bool,
    event: watcher::Event<DynamicObject>,
) -> bool {
    let generation = |o: &DynamicObject| o.metadata.generation.unwrap_or(0);
    match event {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
            let new = generation(&o);
            match generations.insert(o.name_any(), new) {
                Some(old) => old != new,
                None => *primed,
            }
        }
        watcher::Event::Delete(o) => generations.remove(&o.name_any()).is_some(),
        watcher::Event::Init => false,
        watcher::Event::InitDone => {
            *primed = true;
            false
        }
    }
}
