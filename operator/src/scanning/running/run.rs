//! The running-images watcher's loop: every pod event, and every pod again each minute.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use palisade_crds::ImageScanReport;
use tracing::{debug, info};

use super::pods::{Config, Watcher};
use crate::error::report;
use crate::scanning::registry::RegistryAccess;
use crate::scanning::view::DigestBook;

/// Every pod is looked at again this often (retries, reports deleted by hand).
const RESYNC: Duration = Duration::from_secs(60);

/// Watch pods and create missing reports until `shutdown` fires.
pub async fn run(
    client: Client,
    config: Config,
    access: Arc<RegistryAccess>,
    reports: Store<ImageScanReport>,
    digests: DigestBook,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let (pods, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher::watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
            .default_backoff(),
    )
    .applied_objects();
    tokio::pin!(events);
    info!(excluded = ?config.excluded_namespaces, "watching pods for running images");
    let mut w = Watcher::new(client, digests, config, access, reports);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {
                for pod in pods.state() {
                    w.pod(&pod).await;
                }
            }
            event = events.next() => match event {
                Some(Ok(pod)) => w.pod(&pod).await,
                Some(Err(e)) => debug!(error = %report(&e), "pod watch (retried)"),
                None => break,
            },
        }
    }
    info!("running-images watcher stopped");
}
