//! The operator against a real kube-apiserver. Run with a cluster in
//! `PALISADE_E2E_KUBECONFIG` (e.g. from `hack/local-cluster.sh up`):
//!
//! ```sh
//! PALISADE_E2E_KUBECONFIG=$KUBECONFIG cargo test -p palisade-operator --test api_server -- --ignored
//! ```
//!
//! Each test uses objects of its own names, so tests and repeated runs do not interfere.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{WAIT, client, eventually, install_crds, unique};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use palisade_crds::SecurityPolicy;
use palisade_kube_plumbing::lease::{self, Health};
use palisade_kube_plumbing::shutdown;
use palisade_operator::agent::fleet::{Fleet, RUNTIME_SENSORS};
use palisade_operator::controllers::security_policy as policy_controller;
use palisade_operator::metrics::Metrics;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const MANAGER: &str = "palisade-operator-tests";

/// The SecurityPolicy controller running in this process.
struct Operator {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    metrics: Arc<Metrics>,
    health: Health,
    /// The node agents as the controller is told of them.
    fleet: watch::Sender<Option<Fleet>>,
}

impl Operator {
    fn start(client: &Client) -> Operator {
        let (stop, stop_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::new());
        let health = Health::default();
        let (fleet, fleet_rx) = watch::channel(None);
        let task = tokio::spawn(policy_controller::run(
            client.clone(),
            policy_controller::Config {
                instance: "tests".into(),
            },
            metrics.clone(),
            health.clone(),
            fleet_rx,
            shutdown::triggered(stop_rx),
        ));
        Operator {
            stop,
            task,
            metrics,
            health,
            fleet,
        }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the controller stops when told")
            .expect("no panic");
    }

    fn successes(&self) -> u64 {
        let text = self.metrics.encode().expect("metrics");
        text.lines()
            .find(|l| {
                l.starts_with("palisade_operator_reconciliations_total{")
                    && l.contains("result=\"success\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

fn ready_condition(
    p: &SecurityPolicy,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Wait until the policy's status describes `generation` with Ready = `ready`.
async fn status_for(
    api: &Api<SecurityPolicy>,
    name: &str,
    generation: i64,
    ready: &str,
) -> SecurityPolicy {
    eventually(
        &format!("Ready={ready} for generation {generation}"),
        || {
            let api = api.clone();
            let name = name.to_owned();
            async move {
                let p = api.get(&name).await.ok()?;
                let c = ready_condition(&p)?;
                let observed = p.status.as_ref()?.observed_generation;
                (observed == Some(generation) && c.status == ready).then_some(p)
            }
        },
    )
    .await
}

async fn apply_policy(api: &Api<SecurityPolicy>, name: &str, spec: serde_json::Value) -> i64 {
    let body = serde_json::json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "SecurityPolicy",
        "metadata": {"name": name},
        "spec": spec,
    });
    let p = api
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("policy applied");
    p.metadata.generation.expect("a generation")
}

async fn warning_events(client: &Client, policy: &str) -> Vec<Event> {
    // Events about cluster-scoped objects go to `default`.
    let api = Api::<Event>::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .expect("events listed")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(policy)
                && e.type_.as_deref() == Some("Warning")
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn status_follows_valid_invalid_and_fixed_generations_across_restarts() {
    let client = client().await;
    install_crds(&client, MANAGER).await;
    let api = Api::<SecurityPolicy>::all(client.clone());
    let name = unique("op-status");
    let operator = Operator::start(&client);

    // A valid policy: Ready, and its generation is the one enforced.
    let strict = serde_json::json!({
        "privileged": "Deny",
        "podSecurity": {"level": "restricted", "version": "v1.20"}
    });
    let g1 = apply_policy(&api, &name, strict.clone()).await;
    let p = status_for(&api, &name, g1, "True").await;
    let c = ready_condition(&p).expect("Ready");
    assert_eq!(c.reason, "Valid");
    assert!(
        c.message
            .contains("in force (Enforce mode; restricted v1.20 preset"),
        "{}",
        c.message
    );
    let status = p.status.as_ref().expect("status");
    assert_eq!(status.enforced.as_ref().map(|e| e.generation), Some(g1));
    assert!(warning_events(&client, &name).await.is_empty());

    // An invalid update: not ready, says why and which generation stays in force.
    let mut broken = strict.clone();
    broken["exceptions"] = serde_json::json!([{"name": "typo", "rules": ["privilegd"]}]);
    let g2 = apply_policy(&api, &name, broken).await;
    assert!(g2 > g1);
    let p = status_for(&api, &name, g2, "False").await;
    let c = ready_condition(&p).expect("Ready");
    assert_eq!(c.reason, "Invalid");
    assert!(
        c.message.contains("spec.exceptions[0].rules[0]"),
        "{}",
        c.message
    );
    assert!(
        c.message.contains(&format!(
            "generation {g2} is invalid; generation {g1} stays in force"
        )),
        "{}",
        c.message
    );
    let status = p.status.as_ref().expect("status");
    assert_eq!(
        status.enforced.as_ref().map(|e| (e.generation, &e.spec)),
        Some((g1, &serde_json::from_value(strict.clone()).expect("spec"))),
        "the last valid generation stays recorded for the webhook"
    );
    let warnings = eventually("a Warning Event", || {
        let client = client.clone();
        let name = name.clone();
        async move {
            let w = warning_events(&client, &name).await;
            (!w.is_empty()).then_some(w)
        }
    })
    .await;
    assert_eq!(warnings[0].reason.as_deref(), Some("InvalidPolicy"));
    assert!(
        warnings[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("spec.exceptions[0].rules[0]")),
        "{:?}",
        warnings[0].note
    );
    let invalid_since = c.last_transition_time.clone();

    // Fixed: ready again, the new generation enforced, the transition time moved.
    let mut fixed = strict.clone();
    // Owned, explained and dated, within maxExceptionDays of today.
    let expires = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_hours(24 * 30))
        .expect("a time")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    fixed["exceptions"] = serde_json::json!([{"name": "typo", "rules": ["privileged"],
        "namespaces": ["legacy"], "owner": "team-legacy", "reason": "migration",
        "expires": expires}]);
    let g3 = apply_policy(&api, &name, fixed).await;
    let p = status_for(&api, &name, g3, "True").await;
    let c = ready_condition(&p).expect("Ready");
    assert!(c.last_transition_time.0 >= invalid_since.0);
    assert_eq!(
        p.status
            .as_ref()
            .and_then(|s| s.enforced.as_ref())
            .map(|e| e.generation),
        Some(g3)
    );

    // Restart: a new controller finds everything in order and writes nothing.
    operator.stop().await;
    let before = api.get(&name).await.expect("policy");
    let events_before = warning_events(&client, &name).await.len();
    let operator = Operator::start(&client);
    eventually("the restarted controller to reconcile", || {
        let done = operator.health.is_synced() && operator.successes() > 0;
        async move { done.then_some(()) }
    })
    .await;
    // Let any write it might (wrongly) make land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = api.get(&name).await.expect("policy");
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "a restart rewrites nothing"
    );
    assert_eq!(after.status, before.status);
    assert_eq!(warning_events(&client, &name).await.len(), events_before);
    operator.stop().await;

    api.delete(&name, &DeleteParams::default())
        .await
        .expect("deleted");
}

/// The policy's RuntimeSensors condition once it says `status` with a message containing
/// `fragment`.
async fn runtime_sensors(
    api: &Api<SecurityPolicy>,
    name: &str,
    status: &str,
    fragment: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    eventually(
        &format!("RuntimeSensors={status} saying {fragment:?}"),
        || {
            let api = api.clone();
            let name = name.to_owned();
            async move {
                let p = api.get(&name).await.ok()?;
                let c = p
                    .status?
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == RUNTIME_SENSORS)?;
                (c.status == status && c.message.contains(fragment)).then_some(c)
            }
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn runtime_policies_say_how_many_nodes_run_a_sensor_and_follow_the_agents() {
    let client = client().await;
    install_crds(&client, MANAGER).await;
    let api = Api::<SecurityPolicy>::all(client.clone());
    let name = unique("op-runtime");
    let operator = Operator::start(&client);
    let g = apply_policy(
        &api,
        &name,
        serde_json::json!({"runtime": {"rules": ["runtime.terminalShell", "runtime.packetSocket"]}}),
    )
    .await;
    status_for(&api, &name, g, "True").await;
    // No agent deployed: said as such.
    operator.fleet.send_replace(Some(Fleet::disabled()));
    let c = runtime_sensors(&api, &name, "False", "agent.enabled=false").await;
    assert_eq!(c.reason, "AgentDisabled");

    let mut fleet = Fleet {
        enabled: true,
        desired: 2,
        ..Fleet::default()
    };
    fleet.ready.insert("ebpf".into(), 1);
    fleet.ready.insert("fallback".into(), 1);
    fleet.uncovered.insert("runtime.packetSocket".into(), 1);
    operator.fleet.send_replace(Some(fleet.clone()));
    let c = runtime_sensors(
        &api,
        &name,
        "False",
        "cannot see runtime.packetSocket on 1 node",
    )
    .await;
    assert_eq!(c.reason, "PartialCoverage");
    assert!(
        c.message
            .starts_with("2 of 2 nodes run a ready sensor (eBPF 1, fallback 1)"),
        "{}",
        c.message
    );

    fleet.ready = [("ebpf".to_string(), 2)].into();
    fleet.uncovered.clear();
    operator.fleet.send_replace(Some(fleet));
    let c = runtime_sensors(&api, &name, "True", "2 of 2 nodes").await;
    assert_eq!(c.reason, "AllNodesCovered");
    let p = api.get(&name).await.expect("policy");
    let ready = ready_condition(&p).expect("Ready kept beside it");
    assert!(
        ready.message.contains("2 runtime rules in Audit mode"),
        "{}",
        ready.message
    );

    // Without runtime rules the condition goes.
    let g = apply_policy(&api, &name, serde_json::json!({"privileged": "Deny"})).await;
    let p = status_for(&api, &name, g, "True").await;
    assert!(
        p.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().all(|c| c.type_ != RUNTIME_SENSORS)),
        "{:?}",
        p.status
    );
    operator.stop().await;
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("deleted");
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn an_unreadable_first_generation_is_reported_not_retried_forever() {
    let client = client().await;
    install_crds(&client, MANAGER).await;
    let api = Api::<SecurityPolicy>::all(client.clone());
    let name = unique("op-bad-selector");
    let operator = Operator::start(&client);
    // The schema lets this through; the engine does not.
    let g = apply_policy(
        &api,
        &name,
        serde_json::json!({"match": {"namespaceSelector": {
            "matchExpressions": [{"key": "team", "operator": "Within", "values": ["a"]}]}}}),
    )
    .await;
    let p = status_for(&api, &name, g, "False").await;
    let c = ready_condition(&p).expect("Ready");
    assert!(
        c.message.starts_with(&format!(
            "generation {g} is invalid and not enforced: spec.match.namespaceSelector"
        )),
        "{}",
        c.message
    );
    assert!(p.status.as_ref().is_some_and(|s| s.enforced.is_none()));
    operator.stop().await;
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("deleted");
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn one_replica_leads_and_hands_over_on_shutdown() {
    let client = client().await;
    let namespace = unique("op-lease");
    let ns = Api::<Namespace>::all(client.clone());
    ns.patch(
        &namespace,
        &PatchParams::apply(MANAGER),
        &Patch::Apply(&serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}
        })),
    )
    .await
    .expect("namespace");

    let (lead_tx, mut lead_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let replica = |identity: &'static str| {
        let client = client.clone();
        let namespace = namespace.clone();
        let lead_tx = lead_tx.clone();
        let (stop, stop_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::new());
        let health = Health::default();
        let task = tokio::spawn(async move {
            lease::run(
                client,
                lease::Config::new(namespace, palisade_operator::LEASE_NAME, identity),
                &health,
                |leading| metrics.set_leader(leading),
                stop_rx,
                move |mut stop: watch::Receiver<bool>| async move {
                    let _ = lead_tx.send(identity);
                    let _ = stop.wait_for(|s| *s).await;
                },
            )
            .await
        });
        (stop, task)
    };

    let (stop_a, task_a) = replica("replica-a");
    let first = tokio::time::timeout(WAIT, lead_rx.recv())
        .await
        .expect("someone leads")
        .expect("channel open");
    assert_eq!(first, "replica-a");
    let (stop_b, task_b) = replica("replica-b");
    // B stands by while A holds the Lease (renewed every 10 s; wait past one renewal).
    assert!(
        tokio::time::timeout(Duration::from_secs(12), lead_rx.recv())
            .await
            .is_err(),
        "only one replica leads"
    );
    let lease = Api::<Lease>::namespaced(client.clone(), &namespace)
        .get("palisade-operator")
        .await
        .expect("the Lease exists");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("replica-a")
    );

    // A shuts down and releases the Lease: B takes over.
    stop_a.send_replace(true);
    tokio::time::timeout(WAIT, task_a)
        .await
        .expect("A stops")
        .expect("no panic")
        .expect("a clean stop");
    let second = tokio::time::timeout(WAIT, lead_rx.recv())
        .await
        .expect("B takes over")
        .expect("channel open");
    assert_eq!(second, "replica-b");
    stop_b.send_replace(true);
    tokio::time::timeout(WAIT, task_b)
        .await
        .expect("B stops")
        .expect("no panic")
        .expect("a clean stop");
    let _ = ns.delete(&namespace, &DeleteParams::default()).await;
}
