//! One audit against the API server: list, judge, then write the PolicyReports, the
//! policies' counts, the Events and the metrics.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp as Instant;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, TypeMeta};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};
use palisade_crds::{ScanPolicy, report_name as scan_report_name};
use palisade_kube_plumbing::events::{core_event, create_core};
use palisade_policy::PolicySet;
use palisade_policy::scan::ImageTally;
use tracing::{debug, info, warn};

use super::config::Config;
use super::findings::{
    CountChange, Findings, announcement, build_reports, count_changes, failing_changes, report_name,
};
use super::judge::{
    Judged, KINDS, ScanAudit, compile_policies, compile_scan_policies, judge_with_scans, top_level,
};
use crate::controllers::security_policy;
use crate::error::{Error, report};
use crate::metrics::Metrics;
use crate::scanning::ScanView;
use palisade_crds::policy_report::{self, PolicyReport};

/// The field manager of the audit's writes (reports and the policies' audit status fields).
pub const FIELD_MANAGER: &str = palisade_kube_plumbing::field_manager::OPERATOR_AUDIT;
/// Label on every report the audit writes; stale ones are found and deleted by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "palisade-operator");

/// Page size of the lists, so a large cluster is read in bounded pieces.
const PAGE: u32 = 500;

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
    let policy_resource = security_policy::resource();
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
    let event = core_event(
        &change.object.object_ref(resource),
        &announcement(change, scan),
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
