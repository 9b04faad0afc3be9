//! What the audit judges and how, as pure functions: the top-level objects of what runs,
//! each judged by the engine the webhook runs (and, with scanning, its images by the
//! ScanPolicies), from the policies in force.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp as Instant;
use kube::ResourceExt;
use kube::core::DynamicObject;
use palisade_crds::{ImageScanReport, ScanPolicy};
use palisade_policy::scan::{ImageFacts, ImageTally, tally_scans};
use palisade_policy::{
    CompiledPolicy, Decision, Facts, PolicySet, RuleId, ScanPolicySet, Subject, Waivers,
    review_scans,
};

use crate::error::report;

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
                platform: None,
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
