//! The SecurityPolicy controller's run loop: the watch, the store, readiness once the first
//! list is in.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::watcher;
use kube::{Api, Client};
use palisade_crds::SecurityPolicy;
use palisade_kube_plumbing::controller::log_result;
use palisade_kube_plumbing::events::Publisher;
use palisade_kube_plumbing::lease::Health;
use tokio::sync::watch;
use tracing::info;

use super::reconcile::{Context, error_policy, reconcile};
use crate::FIELD_MANAGER;
use crate::agent::fleet::Fleet;
use crate::metrics::Metrics;

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Config {
    /// `reportingInstance` of Events: the pod name or host and pid.
    pub instance: String,
}

/// Run the controller until `shutdown` fires, then finish in-flight reconciles. `health`
/// is told once the first list of SecurityPolicies is in the controller's store.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    health: Health,
    fleet: watch::Receiver<Option<Fleet>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let resource = ApiResource::erase::<SecurityPolicy>(&());
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    // Every policy is looked at again when the node agents change (RuntimeSensors).
    let fleet_changes = futures::stream::unfold(fleet.clone(), |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    });
    let controller = Controller::new_with(api, watcher::Config::default(), resource.clone())
        .reconcile_all_on(fleet_changes)
        .graceful_shutdown_on(shutdown);
    let store = controller.store();
    let events = Publisher::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(config.instance),
        },
    );
    let context = Arc::new(Context::new(
        client,
        resource,
        events,
        metrics,
        store.clone(),
        fleet,
    ));
    let readiness = async move {
        if store.wait_until_ready().await.is_ok() {
            info!(policies = store.len(), "SecurityPolicies listed");
            health.set_synced(true);
        }
    };
    let controller = controller
        .run(reconcile, error_policy, context)
        .for_each(|result| {
            log_result("SecurityPolicy controller", result);
            futures::future::ready(())
        });
    tokio::join!(controller, readiness);
    info!("SecurityPolicy controller stopped");
}
