//! The ScanPolicy controller's run loop.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::watcher;
use kube::{Api, Client};
use palisade_crds::ScanPolicy;
use palisade_kube_plumbing::controller::log_result;
use palisade_kube_plumbing::events::Publisher;
use tracing::info;

use super::reconcile::{Context, error_policy, reconcile};
use crate::FIELD_MANAGER;
use crate::metrics::Metrics;

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Config {
    /// `reportingInstance` of Events.
    pub instance: String,
}

/// Run the controller until `shutdown` fires, then finish in-flight reconciles.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = Controller::new(
        Api::<ScanPolicy>::all(client.clone()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(shutdown);
    let events = Publisher::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(config.instance),
        },
    );
    let context = Arc::new(Context::new(client, events, metrics));
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| {
            log_result("ScanPolicy controller", result);
            futures::future::ready(())
        })
        .await;
    info!("ScanPolicy controller stopped");
}
