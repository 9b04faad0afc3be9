//! The background audit against a real kube-apiserver. Run with a cluster in
//! `PALISADE_E2E_KUBECONFIG` (e.g. from `hack/local-cluster.sh up`):
//!
//! ```sh
//! PALISADE_E2E_KUBECONFIG=$KUBECONFIG cargo test -p palisade-operator --test api_server -- --ignored
//! ```
//!
//! Objects have names of their own, so the test can run beside others and again.

use std::sync::Arc;

use crate::common::{WAIT, client, eventually, install_crds, unique};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use palisade_crds::SecurityPolicy;
use palisade_kube_plumbing::lease::Health;
use palisade_kube_plumbing::shutdown;
use palisade_operator::audit;
use palisade_operator::audit::policy_report::{Outcome, PolicyReport};
use palisade_operator::controllers::security_policy as policy_controller;
use palisade_operator::metrics::Metrics;
use tokio::sync::watch;

const MANAGER: &str = "palisade-audit-tests";

async fn apply_policy(api: &Api<SecurityPolicy>, name: &str, spec: serde_json::Value) -> i64 {
    let body = serde_json::json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "SecurityPolicy",
        "metadata": {"name": name},
        "spec": spec,
    });
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("policy applied")
    .metadata
    .generation
    .expect("a generation")
}

/// The policy once its status describes `generation` as Ready.
async fn ready(api: &Api<SecurityPolicy>, name: &str, generation: i64) -> SecurityPolicy {
    eventually(&format!("Ready for generation {generation}"), || {
        let api = api.clone();
        let name = name.to_owned();
        async move {
            let p = api.get(&name).await.ok()?;
            let s = p.status.as_ref()?;
            let ok = s.observed_generation == Some(generation)
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
            ok.then_some(p)
        }
    })
    .await
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn an_audit_pass_reports_a_privileged_deployment_and_counts_it_on_the_policy() {
    let client = client().await;
    install_crds(&client, MANAGER).await;
    let ns = unique("audit");
    let policy_name = unique("audit-priv");

    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))
                .expect("a namespace"),
        )
        .await
        .expect("namespace created");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
                    "securityContext": {"privileged": true}}]}
            }
        }
    }))
    .expect("a deployment");
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("deployment created");

    // The SecurityPolicy controller writes Ready; the audit must leave it alone.
    let (stop, stop_rx) = watch::channel(false);
    let controller = tokio::spawn(policy_controller::run(
        client.clone(),
        policy_controller::Config {
            instance: "audit-tests".into(),
        },
        Arc::new(Metrics::new()),
        Health::default(),
        watch::channel(None).1,
        shutdown::triggered(stop_rx),
    ));
    let policies = Api::<SecurityPolicy>::all(client.clone());
    let spec = serde_json::json!({
        "mode": "Audit",
        "match": {"namespaces": [ns]},
        "privileged": "Deny",
    });
    let g1 = apply_policy(&policies, &policy_name, spec.clone()).await;
    let before = ready(&policies, &policy_name, g1).await;
    let before_status = before.status.clone().expect("status");

    // One audit pass, in-process.
    audit::ensure_crds(&client)
        .await
        .expect("PolicyReport CRDs");
    let metrics = Metrics::new();
    let config = audit::Config::default();
    let findings = audit::audit_once(&client, &config, &metrics, None)
        .await
        .expect("audit pass");
    assert_eq!(findings.violations(&policy_name), 1, "{findings:?}");

    // The report of the namespace names the policy, the rule and the field.
    let report = Api::<PolicyReport>::namespaced(client.clone(), &ns)
        .get(&audit::report_name(&ns))
        .await
        .expect("the namespace's PolicyReport");
    assert_eq!(
        report
            .labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("palisade-operator")
    );
    let result = report
        .body
        .results
        .iter()
        .find(|r| r.policy == policy_name)
        .unwrap_or_else(|| panic!("no result of {policy_name}: {report:?}"));
    assert_eq!(result.result, Some(Outcome::Fail));
    assert_eq!(result.rule.as_deref(), Some("privileged"));
    assert_eq!(
        result.properties.get("field").map(String::as_str),
        Some("spec.template.spec.containers[0].securityContext.privileged")
    );
    assert_eq!(
        result.properties.get("mode").map(String::as_str),
        Some("Audit")
    );
    let resource = &result.resources[0];
    assert_eq!(resource.kind.as_deref(), Some("Deployment"));
    assert_eq!(resource.name.as_deref(), Some("web"));
    assert!(report.body.summary.fail >= 1, "{:?}", report.body.summary);
    // The pods and ReplicaSet of the Deployment are not counted again.
    assert!(
        report.body.results.iter().all(|r| r
            .resources
            .iter()
            .all(|res| res.kind.as_deref() != Some("Pod") || r.policy != policy_name)),
        "{report:?}"
    );

    // The policy's status: the count, and the controller's fields as they were.
    let after = policies.get(&policy_name).await.expect("policy");
    let status = after.status.clone().expect("status");
    assert_eq!(status.violations, Some(1));
    assert!(status.last_audit_time.is_some());
    assert_eq!(status.conditions, before_status.conditions);
    assert_eq!(
        status.observed_generation,
        before_status.observed_generation
    );
    assert_eq!(status.enforced, before_status.enforced);

    // And the controller's next write of its fields leaves the audit's in place.
    let mut spec2 = spec;
    spec2["readOnlyRootFilesystem"] = true.into();
    let g2 = apply_policy(&policies, &policy_name, spec2).await;
    let p = ready(&policies, &policy_name, g2).await;
    let status = p.status.expect("status");
    assert_eq!(status.violations, Some(1), "the controller kept violations");
    assert!(status.last_audit_time.is_some());

    // Its count went from none to 1: one Event says so.
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), "default")
        .list(&kube::api::ListParams::default())
        .await
        .expect("events");
    let ours: Vec<_> = events
        .items
        .iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(policy_name.as_str())
                && e.reason.as_deref() == Some(audit::EVENT_REASON)
        })
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    let message = ours[0].message.as_deref().unwrap_or("");
    assert!(
        message.contains("1 violation in running workloads: privileged 1"),
        "{message}"
    );

    let text = metrics.encode().expect("metrics");
    let line =
        format!("palisade_audit_violations{{policy=\"{policy_name}\",rule=\"privileged\"}} 1");
    assert!(text.contains(&line), "missing {line} in\n{text}");

    stop.send_replace(true);
    let _ = tokio::time::timeout(WAIT, controller).await;
    let _ = policies
        .delete(&policy_name, &DeleteParams::default())
        .await;
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
}

/// A namespace being deleted refuses new objects. Its report cannot be written, and that
/// must not keep the namespaces after it (in name order) from getting theirs.
#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn a_namespace_being_deleted_does_not_cost_the_others_their_reports() {
    let client = client().await;
    install_crds(&client, MANAGER).await;
    audit::ensure_crds(&client)
        .await
        .expect("PolicyReport CRDs");
    let suffix = unique("x");
    // In name order the terminating one comes first.
    let (leaving, staying) = (format!("audit-a-{suffix}"), format!("audit-b-{suffix}"));
    const HOLD: &str = "palisade.dev/test-hold";
    for ns in [&leaving, &staying] {
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))
                    .expect("a namespace"),
            )
            .await
            .expect("namespace created");
        // The finalizer keeps the Deployment, and so something to judge, while its
        // namespace is being deleted.
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": ns, "finalizers": [HOLD]},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
                        "securityContext": {"privileged": true}}]}
                }
            }
        }))
        .expect("a deployment");
        Api::<Deployment>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &deployment)
            .await
            .expect("deployment created");
    }
    let policy_name = unique("audit-leaving");
    let policies = Api::<SecurityPolicy>::all(client.clone());
    let spec = serde_json::json!({
        "mode": "Audit",
        "match": {"namespaces": [leaving, staying]},
        "privileged": "Deny",
    });
    apply_policy(&policies, &policy_name, spec).await;
    Api::<Namespace>::all(client.clone())
        .delete(&leaving, &DeleteParams::default())
        .await
        .expect("namespace deletion");
    eventually("the namespace is terminating", || {
        let client = client.clone();
        let leaving = leaving.clone();
        async move {
            let ns = Api::<Namespace>::all(client).get(&leaving).await.ok()?;
            (ns.status?.phase.as_deref() == Some("Terminating")).then_some(())
        }
    })
    .await;

    let findings = audit::audit_once(&client, &audit::Config::default(), &Metrics::new(), None)
        .await
        .expect("audit pass");
    assert_eq!(findings.violations(&policy_name), 2, "{findings:?}");
    Api::<PolicyReport>::namespaced(client.clone(), &staying)
        .get(&audit::report_name(&staying))
        .await
        .expect("the report of the namespace that stays");

    // Let both namespaces go.
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    for ns in [&leaving, &staying] {
        let _ = Api::<Deployment>::namespaced(client.clone(), ns)
            .patch("web", &PatchParams::default(), &Patch::Merge(&release))
            .await;
    }
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&staying, &DeleteParams::default())
        .await;
    let _ = Api::<SecurityPolicy>::all(client)
        .delete(&policy_name, &DeleteParams::default())
        .await;
}
