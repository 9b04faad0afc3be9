//! Scanning's run loop: the ScanPolicy reflector, the database refresh, the ImageScanReport
//! controller, the running-images watcher and the sweep of deleted reports' files, until
//! told to stop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use palisade_crds::{ImageScanReport, ScanPolicy};
use palisade_kube_plumbing::controller::log_result;
use palisade_kube_plumbing::shutdown;
use palisade_scanner::oci::RegistryClient;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::config::Config;
use super::db::ScanDb;
use super::files::ReportFiles;
use super::plan::max_age_changed;
use super::reconcile::{Context, error_policy, reconcile};
use super::registry::RegistryAccess;
use super::view::ScanView;
use crate::error::report as error_report;
use crate::metrics::Metrics;

/// Scanning as a whole, until `stop` turns true: the ScanPolicy reflector (credentials,
/// max age), the database refresh, the ImageScanReport controller and, when `running` is
/// given, the watcher that creates reports for the images pods run.
pub async fn run(
    client: Client,
    config: Config,
    registry: RegistryClient,
    db: Arc<ScanDb>,
    metrics: Arc<Metrics>,
    view: ScanView,
    stop: watch::Receiver<bool>,
) {
    let refresh = config.db_refresh;
    let running = config.running.clone();
    let triggered = || shutdown::triggered(stop.clone());
    let (policies, writer) = reflector::store();
    let ages_tx = watch::Sender::new(0u64);
    let policy_watch = reflector::reflector(
        writer,
        watcher::watcher(Api::<ScanPolicy>::all(client.clone()), Default::default())
            .default_backoff(),
    )
    .for_each({
        let ages = ages_tx.clone();
        let mut seen: HashMap<String, Option<String>> = HashMap::new();
        move |e| {
            match e {
                Ok(event) => {
                    if max_age_changed(&mut seen, &event) {
                        ages.send_modify(|n| *n = n.wrapping_add(1));
                    }
                }
                Err(e) => debug!(error = %error_report(&e), "ScanPolicy watch (retried)"),
            }
            futures::future::ready(())
        }
    });
    let access = Arc::new(RegistryAccess::new(
        client.clone(),
        registry,
        config.namespace.clone(),
        policies.clone(),
    ));
    let refresher = refresh_every(db.clone(), refresh, Box::pin(triggered()));

    // Every database change reconciles every report; those of unchanged ecosystems see
    // their version is current and only requeue.
    // A ScanPolicy's maxReportAge that changed moves every report's due time.
    let changes =
        futures::stream::select(changes_of(db.subscribe()), changes_of(ages_tx.subscribe()));
    let controller = Controller::new(
        Api::<ImageScanReport>::all(client.clone()),
        Default::default(),
    )
    .with_config(kube::runtime::Config::default().concurrency(config.concurrency.max(1)))
    .reconcile_all_on(changes)
    .graceful_shutdown_on(triggered());
    let reports = controller.store();
    let reports_for_sweep = reports.clone();
    // Set once per leadership term: the view is made with the term.
    let _ = view.reports.set(reports.clone());
    let context = Arc::new(Context::new(
        client.clone(),
        &config,
        access.clone(),
        db,
        policies,
        reports.clone(),
        metrics,
    ));
    let controller = controller
        .run(reconcile, error_policy, context)
        .for_each(|result| {
            log_result("ImageScanReport controller", result);
            futures::future::ready(())
        });
    let running = async {
        if let Some(cfg) = running {
            super::running::run(
                client.clone(),
                cfg,
                access,
                reports,
                view.digests.clone(),
                config.platform.clone(),
                triggered(),
            )
            .await;
        }
    };
    let sweeper = sweep_every(
        ReportFiles::new(config.reports_dir()),
        reports_for_sweep,
        SWEEP_EVERY,
        Box::pin(triggered()),
    );
    let background = async {
        tokio::select! {
            () = policy_watch => {}
            () = triggered() => {}
        }
    };
    info!(
        concurrency = config.concurrency,
        max_report_age_secs = config.max_report_age.as_secs(),
        cache_dir = %config.cache_dir.display(),
        "image scanning started"
    );
    tokio::join!(controller, running, refresher, sweeper, background);
    info!("image scanning stopped");
}

/// How often the files of reports deleted from the cluster are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Remove the files of reports no longer in `reports`, once the store holds the first full
/// list (an empty store before it would remove everything) and then every `interval`,
/// until `shutdown` fires. Reports have no finalizer, so their deletion is found this way.
async fn sweep_every(
    files: ReportFiles,
    reports: Store<ImageScanReport>,
    interval: Duration,
    mut shutdown: impl std::future::Future<Output = ()> + Unpin,
) {
    tokio::select! {
        ready = reports.wait_until_ready() => if ready.is_err() { return },
        () = &mut shutdown => return,
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut shutdown => return,
        }
        let keep = |name: &str| reports.get(&ObjectRef::new(name)).is_some();
        match files.sweep(keep).await {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => {
                info!(count = removed.len(), reports = ?removed, "removed the files of deleted reports");
            }
            Err(e) => {
                warn!(dir = %files.dir().display(), error = %e, "cannot remove the files of deleted reports")
            }
        }
    }
}

/// One item per change of a counter.
fn changes_of(rx: watch::Receiver<u64>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

/// Refresh `db` every `interval` until `shutdown` fires.
pub async fn refresh_every(
    db: Arc<ScanDb>,
    interval: Duration,
    mut shutdown: impl std::future::Future<Output = ()> + Unpin,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => { db.refresh().await; }
            () = &mut shutdown => return,
        }
    }
}
