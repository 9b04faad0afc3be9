//! The audit's loop: an audit at start, after policy changes (debounced) and every
//! interval.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use palisade_crds::ScanPolicy;
use tracing::{debug, info, warn};

use super::api::{audit_once, ensure_crds};
use super::config::Config;
use super::trigger::generation_changed;
use crate::controllers::security_policy;
use crate::error::report;
use crate::metrics::Metrics;
use crate::scanning::ScanView;

/// Policy changes arriving together are audited once.
const DEBOUNCE: Duration = Duration::from_secs(2);

/// Run audits until `shutdown` fires: once at start, after every SecurityPolicy (and, with
/// scanning on, ScanPolicy) generation change (creation, update, deletion; not status
/// writes, which would loop), and every
/// `config.interval`. A failed audit is logged and retried at the next trigger.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    scans: Option<ScanView>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    if config.install_crds
        && let Err(e) = ensure_crds(&client).await
    {
        warn!(error = %report(&e), "cannot install the PolicyReport CRDs");
    }
    let api = Api::<DynamicObject>::all_with(client.clone(), &security_policy::resource());
    let changes = watcher::watcher(api, watcher::Config::default());
    tokio::pin!(changes);
    // ScanPolicy generations trigger an audit too, when scanning is on.
    let mut scan_changes = match &scans {
        Some(_) => watcher::watcher(
            Api::<DynamicObject>::all_with(client.clone(), &ApiResource::erase::<ScanPolicy>(&())),
            watcher::Config::default(),
        )
        .default_backoff()
        .boxed(),
        None => futures::stream::pending().boxed(),
    };
    let mut generations: HashMap<String, i64> = HashMap::new();
    let mut scan_generations: HashMap<String, i64> = HashMap::new();
    // The watch's first listing is what the audit at start already sees.
    let mut primed = false;
    let mut scan_primed = false;
    let mut audited: BTreeSet<String> = BTreeSet::new();
    let mut scan_audited: BTreeSet<String> = BTreeSet::new();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut due = true;
    let mut changed = false;
    loop {
        if due {
            // Let a burst of policy changes settle.
            if changed {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(DEBOUNCE) => {}
                }
            }
            let result = audit_once(&client, &config, &metrics, scans.as_ref()).await;
            metrics.audited(result.is_ok(), jiff::Timestamp::now());
            match result {
                Ok(findings) => {
                    for gone in scan_audited
                        .iter()
                        .filter(|p| !findings.scan_images.contains_key(*p))
                    {
                        metrics.forget_scan_policy(gone);
                    }
                    scan_audited = findings.scan_images.keys().cloned().collect();
                    // Series of policies gone since the last audit are dropped.
                    for gone in audited
                        .iter()
                        .filter(|p| !findings.by_policy.contains_key(*p))
                    {
                        metrics.set_audit_violations(gone, []);
                    }
                    audited = findings.by_policy.keys().cloned().collect();
                }
                Err(e) => {
                    warn!(error = %report(&e), "audit failed; retrying at the next change or interval")
                }
            }
            due = false;
            changed = false;
            ticker.reset();
        }
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => due = true,
            event = changes.next() => match event {
                Some(Ok(event)) => {
                    changed |= generation_changed(&mut generations, &mut primed, event);
                    due |= changed;
                }
                Some(Err(e)) => debug!(error = %report(&e), "SecurityPolicy watch (retried)"),
                None => break,
            },
            Some(event) = scan_changes.next() => match event {
                Ok(event) => {
                    changed |= generation_changed(&mut scan_generations, &mut scan_primed, event);
                    due |= changed;
                }
                Err(e) => debug!(error = %report(&e), "ScanPolicy watch (retried)"),
            },
        }
    }
    info!("audit stopped");
}
