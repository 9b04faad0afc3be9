//! Leader election on a Lease (`coordination.k8s.io/v1`), so that two replicas are safe:
//! only the holder runs controllers, the other stands by (and is ready, so a rollout
//! proceeds).
//!
//! Losing the Lease, or failing to renew it, ends the process with an error instead of
//! stopping the controllers and competing again. The Pod restarts as a fresh candidate, with
//! no controller task, spawned reconcile or cached state that could still write after
//! another replica took over; with the pod name as identity a restart that finds the Lease
//! still its own resumes at once.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::{Error, report};

/// What this replica is doing, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Not yet in the election, or not yet running controllers.
    Starting = 0,
    /// Another replica leads; this one waits, ready to take over.
    Standby = 1,
    /// Runs the controllers.
    Leader = 2,
    /// Shutting down.
    Stopping = 3,
}

/// Liveness and readiness, shared by the election, the controllers and the admin server.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    role: AtomicU8,
    synced: AtomicBool,
}

impl Health {
    pub fn set_role(&self, role: Role) {
        self.inner.role.store(role as u8, Ordering::Release);
    }

    pub fn role(&self) -> Role {
        match self.inner.role.load(Ordering::Acquire) {
            1 => Role::Standby,
            2 => Role::Leader,
            3 => Role::Stopping,
            _ => Role::Starting,
        }
    }

    /// The controllers' stores hold the first full list.
    pub fn set_synced(&self, synced: bool) {
        self.inner.synced.store(synced, Ordering::Release);
    }

    pub fn is_synced(&self) -> bool {
        self.inner.synced.load(Ordering::Acquire)
    }

    /// Ready when standing by, or leading with synced stores; the text says why not.
    pub fn readiness(&self) -> Result<&'static str, &'static str> {
        match self.role() {
            Role::Standby => Ok("ok: standing by, another replica leads\n"),
            Role::Leader if self.is_synced() => Ok("ok: leading\n"),
            Role::Leader => Err("leading, waiting for the controllers' caches to sync\n"),
            Role::Starting => Err("starting\n"),
            Role::Stopping => Err("shutting down\n"),
        }
    }
}

/// How the election is held.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace of the Lease (the binary's own).
    pub namespace: String,
    /// Lease name.
    pub lease_name: String,
    /// This replica's identity: the pod name, or host and pid.
    pub identity: String,
    /// How long a Lease lasts without renewal (seconds).
    pub duration: u64,
    /// How long before expiry it is renewed (seconds, less than `duration`).
    pub grace: u64,
}

impl Config {
    /// The Lease `lease_name` in `namespace`, held 15 s and renewed every 10 s (the
    /// kube-controller-manager's figures).
    pub fn new(
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Config {
        Config {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            duration: 15,
            grace: 5,
        }
    }
}

/// This replica's identity: `POD_NAME` when set (the Deployment passes it), else host and
/// pid.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}-{}", std::process::id())
}

/// Who holds Lease `name` in `namespace` now (its `holderIdentity`); `None` when nobody
/// does or the Lease does not exist yet.
pub async fn holder(client: Client, namespace: &str, name: &str) -> Result<Option<String>, Error> {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let lease = api.get_opt(name).await.map_err(|source| Error::ApiRead {
        what: format!("Lease {namespace}/{name}"),
        source,
    })?;
    Ok(lease
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// Wait for the Lease, then run `lead` until `shutdown` turns true, releasing the Lease on
/// the way out so the standby takes over at once. `lead` gets a receiver that turns true
/// when it must stop. `health` follows the replica's role; `on_leading` is told when this
/// replica starts leading (true) and when its work has stopped (false), for a metric.
/// Returns an error when leadership is lost or cannot be renewed.
pub async fn run<F, Fut>(
    client: Client,
    config: Config,
    health: &Health,
    on_leading: impl Fn(bool),
    mut shutdown: watch::Receiver<bool>,
    lead: F,
) -> Result<(), Error>
where
    F: FnOnce(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()>,
{
    let lease_error = |source| Error::Lease {
        namespace: config.namespace.clone(),
        name: config.lease_name.clone(),
        source,
    };
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration)
        .with_grace(config.grace)
        .build()
        .await
        .map_err(lease_error)?;

    health.set_role(Role::Standby);
    info!(lease = %config.lease_name, namespace = %config.namespace, identity = %config.identity, "waiting to lead");
    if !acquire(&manager, &mut shutdown).await {
        return Ok(());
    }
    info!(identity = %config.identity, "leading: starting controllers");
    health.set_role(Role::Leader);
    on_leading(true);

    let (stop_tx, stop_rx) = watch::channel(false);
    let work = lead(stop_rx);
    tokio::pin!(work);
    enum End {
        Shutdown,
        WorkEnded,
        Lost(Option<kube_lease_manager::LeaseManagerError>),
    }
    let end = tokio::select! {
        _ = shutdown.wait_for(|s| *s) => End::Shutdown,
        () = &mut work => End::WorkEnded,
        r = manager.changed() => End::Lost(r.err()),
    };
    health.set_role(Role::Stopping);
    match end {
        End::Lost(cause) => {
            // Stop at once: dropping `work` cancels every in-flight reconcile.
            on_leading(false);
            match cause {
                Some(e) => warn!(error = %report(&e), "cannot renew the Lease"),
                None => warn!("another replica holds the Lease"),
            }
            Err(Error::LostLeadership {
                namespace: config.namespace,
                name: config.lease_name,
            })
        }
        End::Shutdown | End::WorkEnded => {
            let _ = stop_tx.send(true);
            // In-flight reconciles finish while the Lease is still ours.
            if tokio::time::timeout(Duration::from_secs(10), &mut work)
                .await
                .is_err()
            {
                warn!("controllers did not stop within 10 s");
            }
            on_leading(false);
            if let Err(e) = manager.release().await {
                warn!(error = %report(&e), "cannot release the Lease; the standby takes over when it expires");
            } else {
                info!("Lease released");
            }
            Ok(())
        }
    }
}

/// Wait until this replica holds the Lease (true) or shutdown is asked (false). API errors
/// while standing by are only retried: a candidate acts on nothing.
async fn acquire(manager: &LeaseManager, shutdown: &mut watch::Receiver<bool>) -> bool {
    let mut delay = Duration::from_secs(1);
    loop {
        let changed = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return false,
            r = manager.changed() => r,
        };
        match changed {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                warn!(error = %report(&e), "leader election; retrying");
                tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return false,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_never_empty() {
        assert!(!default_identity().is_empty());
    }

    #[test]
    fn ready_when_standing_by_or_leading_with_synced_caches() {
        let h = Health::default();
        assert!(h.readiness().is_err(), "starting");
        h.set_role(Role::Standby);
        assert!(h.readiness().is_ok());
        h.set_role(Role::Leader);
        assert_eq!(
            h.readiness(),
            Err("leading, waiting for the controllers' caches to sync\n")
        );
        h.set_synced(true);
        assert!(h.readiness().is_ok());
        h.set_role(Role::Stopping);
        assert!(h.readiness().is_err());
    }
}
