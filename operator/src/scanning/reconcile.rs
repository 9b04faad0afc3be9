//! One reconcile of an ImageScanReport: scan when due, write the status and an Event; API
//! errors back off per report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use palisade_crds::{ImageScanReport, ScanPhase, ScanPolicy};
use palisade_imageref::ImageRef;
use palisade_kube_plumbing::backoff::PerObject;
use palisade_kube_plumbing::events::Publisher;
use palisade_scanner::layers::Limits;
use palisade_scanner::oci::Platform;
use palisade_scanner::osv::needed_ecosystems;
use palisade_scanner::scan::{
    ImageInventory, InventoryCache, ScanReport, inventory_image_cached, report,
};
use tracing::{debug, info, warn};

use super::config::Config;
use super::db::ScanDb;
use super::files::{ReportFiles, StoredInventory};
use super::plan::{
    Decision, RETRY, decide, failed_status, parse_age, rescan_requested, scanned_status,
};
use super::registry::RegistryAccess;
use crate::FIELD_MANAGER;
use crate::error::{Error, report as error_report};
use crate::metrics::Metrics;

/// The `controller` label of this controller's metrics.
pub const CONTROLLER: &str = "imagescanreport";

/// A scan (download, inventory, matching) that takes longer fails.
const SCAN_TIMEOUT: Duration = Duration::from_secs(600);

/// Retry delays after API errors: doubling from 1 s, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a scan did not produce a report. Written on the status as one line.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("spec.image {image:?} is not a valid image reference")]
    BadImage {
        image: String,
        #[source]
        source: palisade_imageref::Error,
    },
    #[error("spec.image {image} is pinned to {pinned}, but spec.digest is {digest}")]
    PinMismatch {
        image: String,
        pinned: String,
        digest: String,
    },
    #[error("spec.platform {platform:?} is not os/arch[/variant]")]
    BadPlatform { platform: String },
    #[error("{image} resolved to {got}, not to spec.digest")]
    DigestMismatch { image: String, got: String },
    #[error("cannot scan {image}")]
    Scan {
        image: String,
        #[source]
        source: palisade_scanner::Error,
    },
    #[error("cannot load the vulnerability database for {ecosystem}")]
    Database {
        ecosystem: String,
        #[source]
        source: palisade_scanner::Error,
    },
    #[error("scanning {image} took longer than {}s", SCAN_TIMEOUT.as_secs())]
    Timeout { image: String },
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    events: Publisher,
    registry: Arc<RegistryAccess>,
    db: Arc<ScanDb>,
    inventories: InventoryCache,
    files: ReportFiles,
    policies: Store<ScanPolicy>,
    reports: Store<ImageScanReport>,
    max_report_age: Duration,
    /// Scanned for reports without spec.platform.
    platform: Platform,
    metrics: Arc<Metrics>,
    /// When a Failed report may be retried (in memory: a restart retries at once).
    retry_at: Mutex<HashMap<String, Instant>>,
    /// Consecutive API failures per report, for [`error_policy`].
    backoff: PerObject,
}

impl Context {
    /// What scanning by `config` shares, publishing Events as [`FIELD_MANAGER`].
    pub fn new(
        client: Client,
        config: &Config,
        registry: Arc<RegistryAccess>,
        db: Arc<ScanDb>,
        policies: Store<ScanPolicy>,
        reports: Store<ImageScanReport>,
        metrics: Arc<Metrics>,
    ) -> Context {
        let events = Publisher::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: Some(config.instance.clone()),
            },
        );
        Context {
            client,
            events,
            registry,
            db,
            inventories: InventoryCache::new(config.cache_dir.join("inventories")),
            files: ReportFiles::new(config.reports_dir()),
            policies,
            reports,
            max_report_age: config.max_report_age,
            platform: config.platform.clone(),
            metrics,
            retry_at: Mutex::default(),
            backoff: PerObject::new(MAX_BACKOFF),
        }
    }
    fn api(&self) -> Api<ImageScanReport> {
        Api::all(self.client.clone())
    }

    /// The flag's max age, or the shortest ScanPolicy spec.maxReportAge when shorter.
    fn max_report_age(&self) -> Duration {
        self.policies
            .state()
            .iter()
            .filter_map(|p| p.spec.max_report_age.as_deref().and_then(parse_age))
            .fold(self.max_report_age, Duration::min)
    }

    fn count_phases(&self) {
        let (mut pending, mut scanned, mut failed) = (0, 0, 0);
        for r in self.reports.state() {
            match r.status.as_ref().map(|s| s.phase) {
                None | Some(ScanPhase::Pending) => pending += 1,
                Some(ScanPhase::Scanned) => scanned += 1,
                Some(ScanPhase::Failed) => failed += 1,
            }
        }
        self.metrics.set_reports(pending, scanned, failed);
    }
}

/// Scan when due and write the status; otherwise requeue at the time it becomes due.
pub async fn reconcile(object: Arc<ImageScanReport>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&object, &ctx).await;
    ctx.metrics
        .reconciled(CONTROLLER, result.is_ok(), started.elapsed());
    if result.is_ok() {
        ctx.backoff.succeeded(&object.name_any());
    }
    ctx.count_phases();
    result
}

async fn reconcile_inner(object: &ImageScanReport, ctx: &Context) -> Result<Action, Error> {
    let name = object.name_any();
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let status = object.status.as_ref();
    let current_db = match status {
        Some(s) if s.phase == ScanPhase::Scanned => {
            // Reports from before `ecosystems` name their OS's alone.
            let ecosystems = if s.ecosystems.is_empty() {
                s.ecosystem.iter().cloned().collect()
            } else {
                s.ecosystems.clone()
            };
            ctx.db.version_for(&ecosystems).await
        }
        _ => None,
    };
    let retry_in = ctx
        .retry_at
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&name)
        .map(|at| at.saturating_duration_since(Instant::now()));
    let max_age = ctx.max_report_age();
    let reason = match decide(
        status,
        current_db.as_deref(),
        jiff::Timestamp::now(),
        max_age,
        retry_in,
    ) {
        // The webhook judges by each ScanPolicy's maxReportAge, which may be shorter than
        // this operator's when the flag is longer than a policy's default.
        Decision::Wait(_) if rescan_requested(object) => "re-scan requested",
        Decision::Wait(d) => return Ok(Action::requeue(d)),
        Decision::Scan(reason) => reason,
    };
    info!(report = %name, image = %object.spec.image, platform = object.spec.platform.as_deref().unwrap_or("default"), reason, "scanning");
    let started = Instant::now();
    let outcome = scan(ctx, object).await;
    ctx.metrics.scanned(outcome.is_ok(), started.elapsed());
    let (desired, event, action) = match outcome {
        Ok((r, inventory)) => {
            ctx.retry_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&name);
            let stored = StoredInventory::new(r.scanned_at, inventory);
            if let Err(e) = ctx.files.write(&name, &r, &stored).await {
                // The status still carries the summary and the worst findings.
                warn!(report = %name, error = %e, "full report and inventory not written");
            }
            let status = scanned_status(&r);
            info!(report = %name, image = %object.spec.image, message = status.message.as_deref().unwrap_or(""), "scanned");
            let event = (EventType::Normal, "Scanned", status.message.clone());
            (status, event, Action::requeue(max_age))
        }
        Err(e) => {
            let message = error_report(&e);
            warn!(report = %name, image = %object.spec.image, error = %message, "scan failed; retrying in {}s", RETRY.as_secs());
            ctx.retry_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.clone(), Instant::now() + RETRY);
            let status = failed_status(status, message.clone());
            (
                status,
                (EventType::Warning, "ScanFailed", Some(message)),
                Action::requeue(RETRY),
            )
        }
    };
    let patch = serde_json::json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "ImageScanReport",
        "status": desired,
    });
    ctx.api()
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::kube(format!(
            "write the status of ImageScanReport {name}"
        )))?;
    let (type_, reason, note) = event;
    let event = Event {
        type_,
        reason: reason.into(),
        note,
        action: "Scan".into(),
        secondary: None,
    };
    let reference = object.object_ref(&());
    // Events are for people; a lost one must not hold up the next scan.
    if let Err(e) = ctx.events.publish(&event, &reference).await {
        warn!(report = %name, error = %error_report(&e), "cannot publish Event");
    }
    Ok(action)
}

/// Scan `spec.image` at `spec.digest`, with a bounded time: the report, and the inventory it
/// was judged from (named by spec.image, as the report is).
async fn scan(
    ctx: &Context,
    object: &ImageScanReport,
) -> Result<(ScanReport, ImageInventory), ScanError> {
    let image = object.spec.image.clone();
    match tokio::time::timeout(SCAN_TIMEOUT, scan_unbounded(ctx, object)).await {
        Ok(r) => r,
        Err(_) => Err(ScanError::Timeout { image }),
    }
}

async fn scan_unbounded(
    ctx: &Context,
    object: &ImageScanReport,
) -> Result<(ScanReport, ImageInventory), ScanError> {
    let started = Instant::now();
    let spec = &object.spec;
    let parsed = ImageRef::parse(&spec.image).map_err(|source| ScanError::BadImage {
        image: spec.image.clone(),
        source,
    })?;
    if let Some(pinned) = parsed.digest()
        && pinned != spec.digest
    {
        return Err(ScanError::PinMismatch {
            image: spec.image.clone(),
            pinned: pinned.to_owned(),
            digest: spec.digest.clone(),
        });
    }
    // Whatever tag spec.image names, the content scanned is spec.digest's.
    let pinned = format!(
        "{}/{}@{}",
        parsed.registry(),
        parsed.repository(),
        spec.digest
    );
    let target = ImageRef::parse(&pinned).map_err(|source| ScanError::BadImage {
        image: pinned.clone(),
        source,
    })?;
    let platform = scan_platform(spec.platform.as_deref(), &ctx.platform).ok_or_else(|| {
        ScanError::BadPlatform {
            platform: spec.platform.clone().unwrap_or_default(),
        }
    })?;
    let client = ctx.registry.registry().await;
    let (mut inv, cached) = inventory_image_cached(
        &client,
        &target,
        &platform,
        Limits::default(),
        Some(&ctx.inventories),
    )
    .await
    .map_err(|source| ScanError::Scan {
        image: pinned.clone(),
        source,
    })?;
    if inv.digest != spec.digest {
        return Err(ScanError::DigestMismatch {
            image: pinned,
            got: inv.digest,
        });
    }
    debug!(image = %pinned, %platform, cached, "inventory taken");
    let db = ctx
        .db
        .for_ecosystems(&needed_ecosystems(&inv.inventory))
        .await
        .map_err(|(ecosystem, source)| ScanError::Database { ecosystem, source })?;
    let mut r = report(&inv, &db, started.elapsed());
    // The report names what the object asked for; the SBOM the same, normalised.
    r.image = spec.image.clone();
    inv.image = parsed.to_string();
    Ok((r, inv))
}

/// The platform a report asks for: its spec.platform, or `default` without one; `None` when
/// spec.platform is not `os/arch[/variant]`.
fn scan_platform(asked: Option<&str>, default: &Platform) -> Option<Platform> {
    match asked {
        None | Some("") => Some(default.clone()),
        Some(p) => Platform::parse(p),
    }
}

/// API errors: retry the object with exponential backoff, per object.
pub fn error_policy(object: Arc<ImageScanReport>, _error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER);
    Action::requeue(ctx.backoff.failed(&object.name_any()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_scanned_is_the_reports_or_the_default() {
        let default = Platform::linux_amd64();
        for (what, asked, want) in [
            ("none asked", None, Some("linux/amd64")),
            ("empty", Some(""), Some("linux/amd64")),
            ("arm64", Some("linux/arm64"), Some("linux/arm64")),
            ("variant", Some("linux/arm/v7"), Some("linux/arm/v7")),
            ("no architecture", Some("linux"), None),
            ("too many parts", Some("linux/arm/v7/x"), None),
        ] {
            assert_eq!(
                scan_platform(asked, &default)
                    .map(|p| p.to_string())
                    .as_deref(),
                want,
                "{what}"
            );
        }
    }
}
