//! The running-images watcher's loop: every pod event, and every pod again each minute,
//! with a store of Nodes' metadata (their labels say their platform).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use palisade_crds::ImageScanReport;
use palisade_scanner::oci::Platform;
use tracing::{debug, info};

use super::pods::{Config, Watcher};
use crate::error::report;
use crate::scanning::registry::RegistryAccess;
use crate::scanning::view::DigestBook;

/// Every pod is looked at again this often (retries, reports deleted by hand).
const RESYNC: Duration = Duration::from_secs(60);

/// Watch pods and create missing reports until `shutdown` fires: one per digest and platform
/// of the nodes that run it (`default_platform` for pods without a known node).
pub async fn run(
    client: Client,
    config: Config,
    access: Arc<RegistryAccess>,
    reports: Store<ImageScanReport>,
    digests: DigestBook,
    default_platform: Platform,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    // Labels are all a node is read for: metadata only (an Api of PartialObjectMeta asks
    // for metadata alone).
    let (nodes, node_writer) = reflector::store();
    let node_watch = reflector::reflector(
        node_writer,
        watcher::watcher(
            Api::<PartialObjectMeta<Node>>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .for_each(|e| {
        if let Err(e) = e {
            debug!(error = %report(&e), "node watch (retried)");
        }
        futures::future::ready(())
    });
    tokio::pin!(node_watch);
    // Pods looked at before the nodes are known would get reports for the default platform.
    tokio::select! {
        () = &mut shutdown => return,
        () = &mut node_watch => return,
        ready = nodes.wait_until_ready() => if ready.is_err() { return },
    }
    let (pods, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher::watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
            .default_backoff(),
    )
    .applied_objects();
    tokio::pin!(events);
    info!(excluded = ?config.excluded_namespaces, "watching pods for running images");
    let mut w = Watcher::new(
        client,
        digests,
        config,
        access,
        reports,
        nodes,
        default_platform,
    );
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = &mut node_watch => break,
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
