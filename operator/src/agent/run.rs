//! The agent's DaemonSet kept as planned, and the fleet it forms watched: applied at start,
//! again whenever it goes missing and every few minutes (server-side apply undoes edits by
//! hand); removed when the agent is turned off.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::daemonset::{AgentSettings, NAME, plan};
use super::fleet::Fleet;
use crate::FIELD_MANAGER;
use crate::error::{Error, report};

/// The DaemonSet is applied again this often even when nothing was seen to change.
const RESYNC: Duration = Duration::from_secs(300);

/// Changes to the fleet are gathered this long before they are published, so that a node
/// rolling its pod makes one status write per policy, not five.
const SETTLE: Duration = Duration::from_millis(500);

/// Keep the DaemonSet of `settings` in `namespace` (or none, when `settings` is `None`)
/// until `shutdown` fires, publishing the fleet to `fleet`.
pub async fn run(
    client: Client,
    namespace: String,
    settings: Option<AgentSettings>,
    fleet: watch::Sender<Option<Fleet>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let api = Api::<DaemonSet>::namespaced(client.clone(), &namespace);
    let Some(settings) = settings else {
        fleet.send_replace(Some(Fleet::disabled()));
        tokio::select! {
            () = &mut shutdown => {}
            () = remove(&api) => {}
        }
        return;
    };
    let desired = plan(&settings);
    info!(image = %settings.image, namespace = %namespace, "node agent on: keeping its DaemonSet");

    let (daemonsets, ds_writer) = reflector::store();
    let ds_events = reflector::reflector(
        ds_writer,
        watcher::watcher(
            api.clone(),
            watcher::Config::default().fields(&format!("metadata.name={NAME}")),
        )
        .default_backoff(),
    )
    .map(|e| e.map(|_| ()));
    let (pods, pod_writer) = reflector::store();
    let pod_events = reflector::reflector(
        pod_writer,
        watcher::watcher(
            Api::<Pod>::namespaced(client, &namespace),
            watcher::Config::default().labels(&format!("app.kubernetes.io/name={NAME}")),
        )
        .default_backoff(),
    )
    .map(|e| e.map(|_| ()));
    let events = futures::stream::select(ds_events, pod_events);
    tokio::pin!(events);

    let mut ticker = tokio::time::interval(RESYNC);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Duration::from_secs(1);
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut publish_at: Option<tokio::time::Instant> = None;
    let key = ObjectRef::<DaemonSet>::new(NAME).within(&namespace);
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let settle = async {
            match publish_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut apply_now = false;
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => apply_now = true,
            () = retry => apply_now = true,
            () = settle => {
                publish_at = None;
                let ds = daemonsets.get(&key);
                let state = pods.state();
                let now = Fleet::of(ds.as_deref(), state.iter().map(|p| p.as_ref()));
                fleet.send_if_modified(|f| {
                    if f.as_ref() == Some(&now) {
                        false
                    } else {
                        debug!(?now, "node agents changed");
                        *f = Some(now);
                        true
                    }
                });
                // Deleted by hand: put it back at once.
                if ds.is_none() && daemonsets.wait_until_ready().await.is_ok() && retry_at.is_none() {
                    apply_now = true;
                }
            }
            event = events.next() => match event {
                Some(Ok(())) => {
                    publish_at.get_or_insert_with(|| tokio::time::Instant::now() + SETTLE);
                }
                Some(Err(e)) => debug!(error = %report(&e), "agent DaemonSet or pod watch (retried)"),
                None => break,
            },
        }
        if apply_now {
            match apply(&api, &desired).await {
                Ok(()) => {
                    backoff = Duration::from_secs(1);
                    retry_at = None;
                }
                Err(e) => {
                    warn!(error = %report(&e), retry_in = ?backoff, "cannot apply the node agent's DaemonSet");
                    retry_at = Some(tokio::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(RESYNC);
                }
            }
        }
    }
    info!("node agent controller stopped");
}

async fn apply(api: &Api<DaemonSet>, desired: &DaemonSet) -> Result<(), Error> {
    api.patch(
        NAME,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
    )
    .await
    .map_err(Error::kube(format!("apply DaemonSet {NAME}")))?;
    Ok(())
}

/// Delete the DaemonSet if the operator made it (another party's object of the same name is
/// left alone), retrying until done.
async fn remove(api: &Api<DaemonSet>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = match api.get_opt(NAME).await {
            Ok(Some(ds))
                if ds
                    .labels()
                    .get("app.kubernetes.io/managed-by")
                    .map(String::as_str)
                    == Some("palisade-operator") =>
            {
                api.delete(NAME, &DeleteParams::background())
                    .await
                    .map(|_| info!("node agent off: its DaemonSet is deleted"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "cannot remove the node agent's DaemonSet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RESYNC);
            }
        }
    }
}
