//! What the agent mirrors from the API server, and the [`Snapshot`] it rebuilds from it: the
//! pods of this node (by `spec.nodeName`), the namespaces' labels, the SecurityPolicies, and
//! where the API server answers (the `kubernetes` Service and its Endpoints).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use palisade_policy::{ClusterFacts, RuntimePolicySet, SecurityPolicy, compile_in_force};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::detect::Snapshot;
use crate::pods;

/// How often the policies are compiled again with nothing changed, so that exceptions
/// that expired stop waiving.
const RECOMPILE_EVERY: Duration = Duration::from_secs(60);

/// The mirrored state.
#[derive(Clone)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub policies: Store<DynamicObject>,
    pub services: Store<Service>,
    pub endpoints: Store<Endpoints>,
}

/// Policy problems seen while compiling: the operator reports them on the policies; the
/// agent logs them once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems(pub BTreeMap<String, String>);

/// Starts the watches. The returned future drives them and the rebuilds, and never ends;
/// `snapshots` gets a new [`Snapshot`] after every change (coalesced), `ready` turns true
/// once every watch has listed.
pub fn start(
    client: Client,
    node: &str,
) -> (
    watch::Receiver<Snapshot>,
    watch::Receiver<bool>,
    impl Future<Output = ()> + Send + 'static,
) {
    let changed = Arc::new(Notify::new());
    let (snapshot_tx, snapshots) = watch::channel(Snapshot::default());
    let (ready_tx, ready) = watch::channel(false);

    let pods_api = Api::<Pod>::all(client.clone());
    let (pods, pods_w) = reflector::store();
    let pods_cfg = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let pods_events = drive(
        "Pod",
        watcher(pods_api, pods_cfg)
            .default_backoff()
            // Only what the index reads is kept.
            .modify(|p| {
                p.metadata.managed_fields = None;
                p.metadata.annotations = None;
            })
            .reflect(pods_w),
        changed.clone(),
    );

    // Metadata only: labels are all that is used.
    let ns_api = Api::<PartialObjectMeta<Namespace>>::all(client.clone());
    let (namespaces, ns_w) = reflector::store();
    let ns_events = drive(
        "Namespace",
        watcher(ns_api, watcher::Config::default())
            .default_backoff()
            .modify(|n| {
                n.metadata.managed_fields = None;
                n.metadata.annotations = None;
            })
            .reflect(ns_w),
        changed.clone(),
    );

    // Read untyped and converted one by one, so one object this version cannot read is
    // left out instead of failing the whole list.
    let resource = ApiResource::erase::<SecurityPolicy>(&());
    let policies_api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let policies_w = reflector::store::Writer::<DynamicObject>::new(resource);
    let policies = policies_w.as_reader();
    let policy_events = drive(
        "SecurityPolicy",
        watcher(policies_api, watcher::Config::default())
            .default_backoff()
            .reflect(policies_w),
        changed.clone(),
    );

    let svc_api = Api::<Service>::namespaced(client.clone(), "default");
    let (services, svc_w) = reflector::store();
    let svc_events = drive(
        "Service",
        watcher(
            svc_api,
            watcher::Config::default().fields("metadata.name=kubernetes"),
        )
        .default_backoff()
        .reflect(svc_w),
        changed.clone(),
    );
    // The core Endpoints object, not EndpointSlices: the API server writes it itself, and
    // it is served on every version (discovery.k8s.io/v1 only from Kubernetes 1.21).
    let eps_api = Api::<Endpoints>::namespaced(client, "default");
    let (endpoints, eps_w) = reflector::store();
    let eps_events = drive(
        "Endpoints",
        watcher(
            eps_api,
            watcher::Config::default().fields("metadata.name=kubernetes"),
        )
        .default_backoff()
        .reflect(eps_w),
        changed.clone(),
    );

    let stores = Stores {
        pods,
        namespaces,
        policies,
        services,
        endpoints,
    };
    let rebuild = {
        let stores = stores.clone();
        async move {
            let _ = tokio::join!(
                stores.pods.wait_until_ready(),
                stores.namespaces.wait_until_ready(),
                stores.policies.wait_until_ready(),
                stores.services.wait_until_ready(),
                stores.endpoints.wait_until_ready(),
            );
            let mut problems = Problems::default();
            loop {
                let (snapshot, now_problems) = build(&stores, Timestamp::now());
                for (policy, problem) in &now_problems.0 {
                    if problems.0.get(policy) != Some(problem) {
                        warn!(policy = %policy, problem = %problem, "SecurityPolicy not in force as written");
                    }
                }
                problems = now_problems;
                let first = !*ready_tx.borrow();
                if first {
                    info!(
                        pods = stores.pods.state().len(),
                        runtime_policies = snapshot.policies.policy_names().count(),
                        "watches synced"
                    );
                }
                snapshot_tx.send_replace(snapshot);
                if first {
                    ready_tx.send_replace(true);
                }
                // Coalesce bursts (a rollout touches many pods at once).
                let _ = tokio::time::timeout(RECOMPILE_EVERY, changed.notified()).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let driver = async move {
        tokio::join!(
            pods_events,
            ns_events,
            policy_events,
            svc_events,
            eps_events,
            rebuild
        );
    };
    (snapshots, ready, driver)
}

async fn drive<K>(
    what: &'static str,
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    changed: Arc<Notify>,
) {
    events
        .for_each(|event| {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => warn!(error = %e, "{what} watch failed; retrying"),
            }
            futures::future::ready(())
        })
        .await;
}

/// The snapshot the stores describe now, and the policies that are not in force as written.
pub fn build(stores: &Stores, now: Timestamp) -> (Snapshot, Problems) {
    let namespaces: HashMap<String, BTreeMap<String, String>> = stores
        .namespaces
        .state()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    let pods = stores.pods.state();
    let index = pods::index(pods.iter().map(|p| p.as_ref()), &namespaces);

    let mut problems = Problems::default();
    let mut compiled = Vec::new();
    for object in stores.policies.state() {
        let value = match serde_json::to_value(object.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                problems.0.insert(object.name_any(), e.to_string());
                continue;
            }
        };
        let in_force = compile_in_force(&value, now);
        if let Some(p) = in_force.problem {
            problems.0.insert(object.name_any(), p);
        }
        compiled.extend(in_force.policy);
    }
    let policies = RuntimePolicySet::new(compiled);

    let services: Vec<Service> = stores
        .services
        .state()
        .iter()
        .map(|s| s.as_ref().clone())
        .collect();
    let endpoints: Vec<Endpoints> = stores
        .endpoints
        .state()
        .iter()
        .map(|s| s.as_ref().clone())
        .collect();
    let cluster = ClusterFacts {
        api_server: api_server_addresses(&services, &endpoints),
    };
    (
        Snapshot {
            policies: Arc::new(policies),
            index: Arc::new(index),
            cluster: Arc::new(cluster),
            any_container: None,
        },
        problems,
    )
}

/// Where the API server answers: the `kubernetes` Service's cluster IPs on its ports, and
/// every ready endpoint address on the endpoint ports.
pub fn api_server_addresses(services: &[Service], endpoints: &[Endpoints]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ips = spec
            .cluster_ips
            .iter()
            .flatten()
            .chain(spec.cluster_ip.iter())
            .filter_map(|ip| ip.parse::<IpAddr>().ok());
        let ports: Vec<u16> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| u16::try_from(p.port).ok())
            .collect();
        for ip in ips {
            out.extend(ports.iter().map(|port| SocketAddr::new(ip, *port)));
        }
    }
    // Only `addresses`: `notReadyAddresses` are not serving.
    for subset in endpoints.iter().flat_map(|e| e.subsets.iter().flatten()) {
        let ports: Vec<u16> = subset
            .ports
            .iter()
            .flatten()
            .filter_map(|p| u16::try_from(p.port).ok())
            .collect();
        for ip in subset
            .addresses
            .iter()
            .flatten()
            .filter_map(|a| a.ip.parse::<IpAddr>().ok())
        {
            out.extend(ports.iter().map(|port| SocketAddr::new(ip, *port)));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_server_is_its_service_and_its_ready_endpoints() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1", "fd00::1"],
                     "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}
        }))
        .expect("a service");
        let eps: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [
                {"addresses": [{"ip": "192.168.1.10"}, {"ip": "192.168.1.12"}],
                 "notReadyAddresses": [{"ip": "192.168.1.11"}],
                 "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
                {"addresses": [{"ip": "not-an-ip"}],
                 "ports": [{"name": "https", "port": 6443}]}
            ]
        }))
        .expect("endpoints");
        let got: Vec<String> = api_server_addresses(&[svc], &[eps])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "10.0.0.1:443",
                "192.168.1.10:6443",
                "192.168.1.12:6443",
                "[fd00::1]:443"
            ]
        );
        assert!(api_server_addresses(&[], &[]).is_empty());
    }
}
