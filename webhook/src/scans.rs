//! The image-scan gate: ScanPolicies and ImageScanReports held in memory, tag→digest
//! resolution cached, and scans queued through the operator.
//!
//! An image whose digest has a report is judged from memory. For one without, the gate
//! creates a Pending ImageScanReport (the operator scans it; one scanner, one cache, one
//! place with registry credentials for the heavy work), waits for the report at most the
//! policy's `scanWait` (capped by `--max-scan-wait`), then applies `onUnscanned`. Only tag
//! resolution touches the network here, bounded by the same budget and cached; it logs in
//! with the pod's pull Secrets first, as the kubelet would ([`palisade_kube_plumbing::registry_credentials`]).
//!
//! A report older than the smallest `maxReportAge` of the policies judging its image still
//! decides, with a warning, and the gate asks the operator to scan it again by annotating it
//! [`RESCAN_ANNOTATION`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use palisade_crds::{
    ImageScanReport, ImageScanReportSpec, ImageScanReportStatus, ScanPhase, ScanPolicy,
    pinned_platform, report_name_for,
};
use palisade_imageref::ImageRef;
use palisade_kube_plumbing::registry_credentials::reader::{PullSecretReader, read_docker_configs};
use palisade_kube_plumbing::registry_credentials::{LoginSource, logins_for};
use palisade_policy::scan::{ImageFacts, ImageNeed};
use palisade_policy::{Decision, Facts, ScanPolicySet, Subject, review_scans};
use palisade_scanner::oci::RegistryClient;
use palisade_scanner::oci::auth::Credentials;
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

/// Set on an ImageScanReport the gate found older than a ScanPolicy's `maxReportAge`, to
/// the report's `status.scannedAt`: the operator scans again a report scanned at or before
/// this time. The value is the report's own time, not the webhook's clock, so the new scan
/// answers it whatever the clocks say and nobody has to remove it. (The operator defines
/// the same key.)
pub const RESCAN_ANNOTATION: &str = "palisade.dev/rescan-requested";

/// A re-scan of one report is asked for at most once in this long (or its `maxReportAge`
/// when shorter), however many requests judge the image meanwhile.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(300);

/// How the gate behaves.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// The longest any request waits for scans and tag resolution, whatever a ScanPolicy's
    /// `scanWait` says: keep it below the webhook's timeoutSeconds.
    pub max_wait: Duration,
    /// How long a resolved tag→digest pair is trusted.
    pub digest_ttl: Duration,
    /// How long a failed resolution is remembered, so a registry that is down costs one
    /// wait, not one per request.
    pub failure_ttl: Duration,
    /// The namespace of `registryCredentials` Secrets that name none.
    pub namespace: String,
    /// How often the Secrets named by `registryCredentials` are read again, and how long a
    /// pod's pull Secret or ServiceAccount read at admission is trusted.
    pub credentials_ttl: Duration,
    /// Log in to registries with the pod's pull Secrets (its own, then its
    /// ServiceAccount's) before the ScanPolicies' `registryCredentials`, as the kubelet does.
    /// Needs get on Secrets and ServiceAccounts in the pods' namespaces.
    pub pod_pull_secrets: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_wait: Duration::from_secs(3),
            digest_ttl: Duration::from_secs(300),
            failure_ttl: Duration::from_secs(10),
            namespace: crate::namespaces::DEFAULT_NAMESPACE.to_owned(),
            credentials_ttl: Duration::from_secs(60),
            pod_pull_secrets: true,
        }
    }
}

/// Cheap to clone; every clone is the same gate.
#[derive(Clone)]
pub struct ScanGate {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ScanGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanGate")
            .field("policies", &self.inner.policies.borrow().len())
            .field("reports", &self.inner.reports.state().len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: GateConfig,
    policies: watch::Sender<Arc<ScanPolicySet>>,
    reports: Store<ImageScanReport>,
    /// Woken on every report change, for requests waiting on a queued scan.
    changed: Notify,
    /// Without logins: each resolution adds the ones it tries.
    registry: RegistryClient,
    /// The logins of the ScanPolicies' `registryCredentials`, tried after the pod's own.
    policy_credentials: RwLock<Arc<Credentials>>,
    /// A pod's pull Secrets and ServiceAccount; `None` without a client or when disabled.
    pull_secrets: Option<PullSecretReader>,
    /// Resolved digests by image, shared by every pod whatever its logins: a digest names
    /// content and gives no access to it (the kubelet still pulls with the pod's own
    /// credentials), and the same tag names the same content for every pod.
    digests: Mutex<HashMap<String, (String, Instant)>>,
    /// Failed resolutions by image and the logins tried: a failure without credentials is
    /// not served to a pod that brings some.
    failures: Mutex<HashMap<(String, String), (String, Instant)>>,
    /// Digests whose report this replica created lately: not created again per request.
    queued: Mutex<HashMap<String, Instant>>,
    /// Reports this replica asked to scan again lately, by name.
    rescans: Mutex<HashMap<String, Instant>>,
    client: Option<Client>,
    ready: AtomicBool,
}

/// Feeds a gate built with [`ScanGate::new`] (tests, or another source of objects).
pub struct GateFeeder {
    gate: ScanGate,
    writer: reflector::store::Writer<ImageScanReport>,
}

impl GateFeeder {
    pub fn set_policies(&self, policies: &[ScanPolicy]) {
        let (set, errors) = ScanPolicySet::compile_for_enforcement(policies, Timestamp::now());
        for e in errors {
            warn!(error = %e, "ScanPolicy not in force");
        }
        self.gate.inner.policies.send_replace(Arc::new(set));
    }

    /// Add or replace a report, waking waiting requests.
    pub fn apply_report(&mut self, report: ImageScanReport) {
        self.writer
            .apply_watcher_event(&watcher::Event::Apply(report));
        self.gate.inner.changed.notify_waiters();
    }

    pub fn gate(&self) -> ScanGate {
        self.gate.clone()
    }
}

impl ScanGate {
    /// A gate fed by hand; ready at once, queues nothing unless given a client.
    pub fn new(
        config: GateConfig,
        registry: RegistryClient,
        client: Option<Client>,
    ) -> (ScanGate, GateFeeder) {
        let mut writer = reflector::store::Writer::<ImageScanReport>::default();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let gate = ScanGate::with_store(config, registry, client, writer.as_reader());
        gate.inner.ready.store(true, Ordering::Release);
        let feeder = GateFeeder {
            gate: gate.clone(),
            writer,
        };
        (gate, feeder)
    }

    fn with_store(
        config: GateConfig,
        registry: RegistryClient,
        client: Option<Client>,
        reports: Store<ImageScanReport>,
    ) -> ScanGate {
        let pull_secrets = client
            .as_ref()
            .filter(|_| config.pod_pull_secrets)
            .map(|c| PullSecretReader::new(c.clone(), config.credentials_ttl));
        ScanGate {
            inner: Arc::new(Inner {
                config,
                policies: watch::Sender::new(Arc::new(ScanPolicySet::default())),
                reports,
                changed: Notify::new(),
                registry,
                policy_credentials: RwLock::new(Arc::new(Credentials::new())),
                pull_secrets,
                digests: Mutex::default(),
                failures: Mutex::default(),
                queued: Mutex::default(),
                rescans: Mutex::default(),
                client,
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// ScanPolicies and ImageScanReports from the API server. Ready once both are listed;
    /// the returned future drives the watches and never ends.
    pub fn from_cluster(
        client: Client,
        config: GateConfig,
        registry: RegistryClient,
    ) -> (ScanGate, impl Future<Output = ()> + Send + 'static) {
        let (reports, reports_writer) = reflector::store();
        let gate = ScanGate::with_store(config, registry, Some(client.clone()), reports.clone());

        let (policy_store, policy_writer) = reflector::store::<ScanPolicy>();
        let policy_events = {
            let gate = gate.clone();
            let policy_store = policy_store.clone();
            watcher(Api::<ScanPolicy>::all(client.clone()), watcher::Config::default())
                .default_backoff()
                .reflect(policy_writer)
                .for_each(move |event| {
                    match event {
                        Ok(
                            watcher::Event::InitDone
                            | watcher::Event::Apply(_)
                            | watcher::Event::Delete(_),
                        ) => {
                            let objects: Vec<ScanPolicy> =
                                policy_store.state().iter().map(|p| (**p).clone()).collect();
                            let (set, errors) = ScanPolicySet::compile_for_enforcement(
                                &objects,
                                Timestamp::now(),
                            );
                            for e in errors {
                                // The operator reports it on the policy's status.
                                debug!(error = %e, "ScanPolicy not in force");
                            }
                            gate.inner.policies.send_replace(Arc::new(set));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            warn!(error = %crate::error::report(&e), "ScanPolicy watch failed; retrying")
                        }
                    }
                    futures::future::ready(())
                })
        };
        let report_events = {
            let gate = gate.clone();
            watcher(
                Api::<ImageScanReport>::all(client.clone()),
                watcher::Config::default(),
            )
            .default_backoff()
            .modify(|r| r.metadata.managed_fields = None)
            .reflect(reports_writer)
            .for_each(move |event| {
                match event {
                    Ok(_) => gate.inner.changed.notify_waiters(),
                    Err(e) => {
                        warn!(error = %crate::error::report(&e), "ImageScanReport watch failed; retrying")
                    }
                }
                futures::future::ready(())
            })
        };
        let readiness = {
            let gate = gate.clone();
            async move {
                let (p, r) =
                    tokio::join!(policy_store.wait_until_ready(), reports.wait_until_ready());
                if p.is_ok() && r.is_ok() {
                    info!(
                        policies = gate.inner.policies.borrow().len(),
                        reports = reports.state().len(),
                        "ScanPolicies and ImageScanReports synced"
                    );
                    gate.inner.ready.store(true, Ordering::Release);
                }
            }
        };
        let credentials = {
            let gate = gate.clone();
            async move {
                loop {
                    gate.refresh_credentials().await;
                    tokio::time::sleep(gate.inner.config.credentials_ttl).await;
                }
            }
        };
        let driver = async move {
            tokio::join!(policy_events, report_events, readiness, credentials);
        };
        (gate, driver)
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// The ScanPolicies in force.
    pub fn policies(&self) -> Arc<ScanPolicySet> {
        self.inner.policies.borrow().clone()
    }

    /// Read the dockerconfigjson Secrets the ScanPolicies name, for tag resolution.
    async fn refresh_credentials(&self) {
        let Some(client) = &self.inner.client else {
            return;
        };
        let set = self.policies();
        let mut refs: Vec<(String, String)> = Vec::new();
        for r in set.policies().iter().flat_map(|p| p.registry_credentials()) {
            let ns = r
                .namespace
                .clone()
                .unwrap_or_else(|| self.inner.config.namespace.clone());
            let key = (ns, r.name.clone());
            if !refs.contains(&key) {
                refs.push(key);
            }
        }
        let credentials = read_docker_configs(client, &refs).await;
        *self
            .inner
            .policy_credentials
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(credentials);
    }

    /// Judge the subject's images by every matching ScanPolicy, adding to `decision`.
    /// Returns within the budget whatever the registry or the operator do. `queue: false`
    /// (a dry run: the webhook declares no side effects) creates no report and asks for no
    /// re-scan. Returns warnings of the gate's own (reports past their `maxReportAge`), for
    /// the response besides those of `decision`.
    pub async fn review(
        &self,
        subject: &Subject,
        facts: &Facts<'_>,
        decision: &mut Decision,
        queue: bool,
    ) -> Vec<String> {
        let set = self.policies();
        if set.is_empty() {
            return Vec::new();
        }
        let needs = set.images_to_judge(subject, facts);
        if needs.images.is_empty() {
            return Vec::new();
        }
        let started = Instant::now();
        let budget = started + self.inner.config.max_wait;
        let scan_deadline = started + needs.wait.min(self.inner.config.max_wait);

        let sources = self.login_sources(subject, &needs.images, budget).await;
        let digests: Vec<Result<String, String>> = futures::future::join_all(
            needs
                .images
                .iter()
                .map(|n| self.digest_of(n, &sources, budget)),
        )
        .await;

        // A pod pinned to another architecture (a Graviton node pool) is judged by the scan
        // for that platform, as the operator scans it once it runs there.
        let platform = pinned_platform(&subject.pod_spec);
        let platform = platform.as_deref();

        // Queue what has no report, then wait for the reports within the scan budget.
        let mut waiting = Vec::new();
        for (need, digest) in needs.images.iter().zip(&digests) {
            if let Ok(digest) = digest
                && self.report(digest, platform).is_none_or(|r| is_pending(&r))
            {
                if queue {
                    self.queue(need, digest, platform);
                }
                waiting.push(digest.clone());
            }
        }
        while !waiting.is_empty() {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            waiting.retain(|d| self.report(d, platform).is_none_or(|r| is_pending(&r)));
            if waiting.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= scan_deadline {
                break;
            }
            let _ = tokio::time::timeout(scan_deadline - now, notified).await;
        }

        let reports: Vec<Option<Arc<ImageScanReport>>> = digests
            .iter()
            .map(|d| d.as_ref().ok().and_then(|d| self.report(d, platform)))
            .collect();
        let lookup = |image: &str| -> Option<ImageFacts<'_>> {
            let i = needs.images.iter().position(|n| n.image == image)?;
            Some(match &digests[i] {
                Ok(digest) => ImageFacts::Digest {
                    digest,
                    platform,
                    report: reports[i].as_ref().and_then(|r| r.status.as_ref()),
                },
                Err(reason) => ImageFacts::Unresolved { reason },
            })
        };
        review_scans(&set, subject, facts, &lookup, decision);

        // The old report still decides (it is the best known); the operator is asked for a
        // new one.
        let mut warnings = Vec::new();
        for ((need, digest), report) in needs.images.iter().zip(&digests).zip(&reports) {
            let (Ok(digest), Some(report)) = (digest, report) else {
                continue;
            };
            let ages = set
                .policies()
                .iter()
                .filter(|p| p.applies_to(subject, facts) && p.selects_image(&need.image))
                .map(|p| (p.name(), p.max_report_age()));
            let Some(stale) = stale_report(ages, report.status.as_ref(), facts.now) else {
                continue;
            };
            let queued = queue && self.request_rescan(report, &stale);
            warnings.push(stale_warning(&need.written, digest, &stale, queued));
        }
        debug!(
            images = needs.images.len(),
            waited_ms = started.elapsed().as_millis() as u64,
            "images judged"
        );
        warnings
    }

    fn report(&self, digest: &str, platform: Option<&str>) -> Option<Arc<ImageScanReport>> {
        self.inner
            .reports
            .get(&ObjectRef::new(&report_name_for(digest, platform)))
    }

    /// Where logins come from for this subject, in the order they are tried: its pull
    /// Secrets, its ServiceAccount's, then the ScanPolicies'. The API server is read only
    /// when a tag must be resolved at the registry.
    async fn login_sources(
        &self,
        subject: &Subject,
        images: &[ImageNeed],
        deadline: Instant,
    ) -> Vec<LoginSource> {
        let now = Instant::now();
        let must_resolve = images
            .iter()
            .any(|n| n.pinned_digest().is_none() && self.cached_digest(&n.image, now).is_none());
        if !must_resolve {
            return Vec::new();
        }
        let mut sources = match &self.inner.pull_secrets {
            Some(reader) => {
                reader
                    .sources(&subject.namespace, &subject.pod_spec, deadline)
                    .await
            }
            None => Vec::new(),
        };
        let policy = self
            .inner
            .policy_credentials
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !policy.is_empty() {
            sources.push(LoginSource {
                name: "the ScanPolicies' registryCredentials".to_owned(),
                credentials: policy,
            });
        }
        sources
    }

    /// The digest of an image: pinned, cached, or resolved at the registry before
    /// `deadline` with the first of `sources`' logins for its registry that is let in.
    async fn digest_of(
        &self,
        need: &ImageNeed,
        sources: &[LoginSource],
        deadline: Instant,
    ) -> Result<String, String> {
        if let Some(d) = need.pinned_digest() {
            return Ok(d.to_owned());
        }
        let now = Instant::now();
        if let Some(d) = self.cached_digest(&need.image, now) {
            return Ok(d);
        }
        let Ok(image) = ImageRef::parse(&need.image) else {
            return Err("not a valid image reference".to_owned());
        };
        let logins = logins_for(image.registry(), sources);
        let tried: Vec<&str> = logins.iter().map(|(name, _)| *name).collect();
        let failure_key = (need.image.clone(), tried.join(", "));
        if let Some(e) = self.cached_failure(&failure_key, now) {
            return Err(e);
        }
        let attempts = async {
            if logins.is_empty() {
                return self
                    .inner
                    .registry
                    .resolve(&image)
                    .await
                    .map_err(|e| format!(": {}", crate::error::report(&e)));
            }
            let mut refused = Vec::new();
            for (name, login) in &logins {
                let mut credentials = Credentials::new();
                credentials.insert(image.registry(), (*login).clone());
                let registry = self.inner.registry.with_credentials(credentials);
                match registry.resolve(&image).await {
                    Ok(digest) => {
                        debug!(image = %need.image, login = %name, "tag resolved");
                        return Ok(digest);
                    }
                    // Another login may be let in where this one was not: the kubelet
                    // tries each.
                    Err(e @ palisade_scanner::Error::Registry { .. }) => refused.push(format!(
                        " with the login of {name}: {}",
                        crate::error::report(&e)
                    )),
                    Err(e) => {
                        refused.push(format!(
                            " with the login of {name}: {}",
                            crate::error::report(&e)
                        ));
                        break;
                    }
                }
            }
            Err(refused.join(";"))
        };
        let outcome =
            match tokio::time::timeout(deadline.saturating_duration_since(now), attempts).await {
                Ok(Ok(digest)) => Ok(digest),
                Ok(Err(why)) => Err(format!("its digest cannot be resolved{why}")),
                Err(_) => Err(format!(
                    "its digest cannot be resolved: registry {} did not answer within {} ms",
                    image.registry(),
                    deadline.saturating_duration_since(now).as_millis()
                )),
            };
        match &outcome {
            Ok(d) => remember(
                &self.inner.digests,
                need.image.clone(),
                d.clone(),
                self.inner.config.digest_ttl,
            ),
            Err(e) => remember(
                &self.inner.failures,
                failure_key,
                e.clone(),
                self.inner.config.failure_ttl,
            ),
        }
        outcome
    }

    fn cached_digest(&self, image: &str, now: Instant) -> Option<String> {
        let cache = self.inner.digests.lock().unwrap_or_else(|p| p.into_inner());
        let (digest, at) = cache.get(image)?;
        (now.saturating_duration_since(*at) < self.inner.config.digest_ttl).then(|| digest.clone())
    }

    fn cached_failure(&self, key: &(String, String), now: Instant) -> Option<String> {
        let cache = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (error, at) = cache.get(key)?;
        (now.saturating_duration_since(*at) < self.inner.config.failure_ttl).then(|| error.clone())
    }

    /// Ask the operator to scan a report again, by annotating it with the `scannedAt` found
    /// too old (in the background). True when asked now or before: by this replica within
    /// the interval, or by anyone when the annotation is already there.
    fn request_rescan(&self, report: &ImageScanReport, stale: &Stale) -> bool {
        let Some(client) = self.inner.client.clone() else {
            return false;
        };
        let Some(name) = report.metadata.name.clone() else {
            return false;
        };
        let asked = report
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RESCAN_ANNOTATION))
            .and_then(|v| v.parse::<Timestamp>().ok());
        if asked.is_some_and(|at| at >= stale.scanned_at) {
            return true;
        }
        {
            let mut rescans = self.inner.rescans.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            rescans.retain(|_, at| now.duration_since(*at) < RESCAN_INTERVAL);
            let interval = RESCAN_INTERVAL.min(stale.max_age);
            if rescans
                .get(&name)
                .is_some_and(|at| now.duration_since(*at) < interval)
            {
                return true;
            }
            rescans.insert(name.clone(), now);
        }
        let patch = serde_json::json!({
            "metadata": {"annotations": {RESCAN_ANNOTATION: stale.scanned_at.to_string()}}
        });
        tokio::spawn(async move {
            let api = Api::<ImageScanReport>::all(client);
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => info!(report = %name, "re-scan requested: report older than maxReportAge"),
                Err(e) => {
                    warn!(report = %name, error = %crate::error::report(&e), "cannot request a re-scan")
                }
            }
        });
        true
    }

    /// Ask the operator for a scan: create the Pending report (in the background; the
    /// request waits on the report store, not on this call).
    fn queue(&self, need: &ImageNeed, digest: &str, platform: Option<&str>) {
        let Some(client) = self.inner.client.clone() else {
            return;
        };
        if self.report(digest, platform).is_some() {
            return;
        }
        let name = report_name_for(digest, platform);
        {
            let mut queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            queued.retain(|_, at| now.duration_since(*at) < Duration::from_secs(60));
            if queued.contains_key(&name) {
                return;
            }
            queued.insert(name.clone(), now);
        }
        let Some(pinned) = pinned_reference(&need.image, digest) else {
            return;
        };
        let report = ImageScanReport::new(
            &name,
            ImageScanReportSpec {
                image: pinned,
                digest: digest.to_owned(),
                platform: platform.map(str::to_owned),
            },
        );
        tokio::spawn(async move {
            let api = Api::<ImageScanReport>::all(client);
            match api.create(&PostParams::default(), &report).await {
                Ok(_) => info!(image = %report.spec.image, "scan queued"),
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => {
                    warn!(image = %report.spec.image, error = %crate::error::report(&e), "cannot queue a scan")
                }
            }
        });
    }
}

fn is_pending(report: &ImageScanReport) -> bool {
    report
        .status
        .as_ref()
        .is_none_or(|s| s.phase == palisade_crds::ScanPhase::Pending)
}

/// `registry/repository@digest` for a normalized image and its digest.
pub fn pinned_reference(image: &str, digest: &str) -> Option<String> {
    let r = ImageRef::parse(image).ok()?;
    Some(format!("{}/{}@{digest}", r.registry(), r.repository()))
}

/// Insert into a cache of (value, when) entries, pruning the expired ones once it is large.
fn remember<K: std::hash::Hash + Eq>(
    cache: &Mutex<HashMap<K, (String, Instant)>>,
    key: K,
    value: String,
    ttl: Duration,
) {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() > 10_000 {
        cache.retain(|_, (_, at)| at.elapsed() < ttl);
    }
    cache.insert(key, (value, Instant::now()));
}

/// A report older than a policy lets it be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// Its `status.scannedAt`.
    pub scanned_at: Timestamp,
    pub age: Duration,
    /// The smallest `maxReportAge` among the policies judging the image...
    pub max_age: Duration,
    /// ...and the first policy (by name) that sets it.
    pub policy: String,
}

/// Whether a Scanned report is older, at `now`, than the smallest `maxReportAge` of the
/// policies judging its image, given as (name, maxReportAge). A report that is pending,
/// failed (the operator retries those anyway) or has no scan time is not judged stale.
pub fn stale_report<'p>(
    policies: impl IntoIterator<Item = (&'p str, Duration)>,
    status: Option<&ImageScanReportStatus>,
    now: Timestamp,
) -> Option<Stale> {
    let status = status.filter(|s| s.phase == ScanPhase::Scanned)?;
    let scanned_at = status.scanned_at.as_ref()?.0;
    let (policy, max_age) = policies
        .into_iter()
        .min_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)))?;
    let age = Duration::try_from(now.duration_since(scanned_at)).unwrap_or(Duration::ZERO);
    (age > max_age).then(|| Stale {
        scanned_at,
        age,
        max_age,
        policy: policy.to_owned(),
    })
}

/// The admission warning for a stale report, `queued` or not (a dry run queues nothing).
pub fn stale_warning(written: &str, digest: &str, stale: &Stale, queued: bool) -> String {
    format!(
        "image {written} ({}): its scan report is {} old (maxReportAge {} of ScanPolicy/{}); {}",
        short_digest(digest),
        show_duration(stale.age),
        show_duration(stale.max_age),
        stale.policy,
        if queued {
            "a re-scan is queued"
        } else {
            "a re-scan is due (a dry run queues none)"
        }
    )
}

/// `sha256:0123456789ab…`, as the policy engine shows digests in its messages.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}…", &hex[..12]),
        _ => digest.to_owned(),
    }
}

/// The two largest units of `2d3h`, `1h30m`, `45s`: the syntax of `maxReportAge`, rounded
/// down.
pub fn show_duration(d: Duration) -> String {
    let mut left = d.as_secs();
    let mut parts = Vec::new();
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = left / secs;
        left %= secs;
        if n > 0 || (!parts.is_empty() && parts.len() < 2) {
            parts.push((n, unit));
        }
        if parts.len() == 2 {
            break;
        }
    }
    let shown: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if shown.is_empty() {
        "0s".to_owned()
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: ScanPhase, scanned_at: Option<&str>) -> ImageScanReportStatus {
        ImageScanReportStatus {
            phase,
            scanned_at: scanned_at.map(|t| {
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.parse().expect("time"))
            }),
            ..ImageScanReportStatus::default()
        }
    }

    /// (case, policies, status, Some((age, max age, policy)) when stale)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, Duration)>,
        ImageScanReportStatus,
        Option<(Duration, Duration, &'a str)>,
    );

    #[test]
    fn reports_are_stale_past_the_smallest_max_age_of_the_judging_policies() {
        let now: Timestamp = "2026-03-03T12:00:00Z".parse().expect("time");
        let h = |n: u64| Duration::from_secs(n * 3600);
        let day_old = status(ScanPhase::Scanned, Some("2026-03-02T10:00:00Z"));
        let table: Vec<Case> = vec![
            (
                "younger than every policy's",
                vec![("a", h(48)), ("b", h(30))],
                day_old.clone(),
                None,
            ),
            (
                "older than the smallest",
                vec![("a", h(48)), ("b", h(24))],
                day_old.clone(),
                Some((h(26), h(24), "b")),
            ),
            (
                "equal maxima: the first name",
                vec![("z", h(24)), ("m", h(24))],
                day_old.clone(),
                Some((h(26), h(24), "m")),
            ),
            (
                "exactly the age: not yet",
                vec![("a", h(26))],
                day_old.clone(),
                None,
            ),
            ("no policy", vec![], day_old, None),
            (
                "pending",
                vec![("a", h(1))],
                status(ScanPhase::Pending, Some("2026-03-01T00:00:00Z")),
                None,
            ),
            (
                "failed: the operator retries it",
                vec![("a", h(1))],
                status(ScanPhase::Failed, Some("2026-03-01T00:00:00Z")),
                None,
            ),
            (
                "no scan time",
                vec![("a", h(1))],
                status(ScanPhase::Scanned, None),
                None,
            ),
            (
                "scanned in the future (clock skew)",
                vec![("a", h(1))],
                status(ScanPhase::Scanned, Some("2026-03-04T00:00:00Z")),
                None,
            ),
        ];
        for (case, policies, status, want) in table {
            let got =
                stale_report(policies, Some(&status), now).map(|s| (s.age, s.max_age, s.policy));
            assert_eq!(got, want.map(|(a, m, p)| (a, m, p.to_owned())), "{case}");
        }
        assert_eq!(stale_report([("a", h(1))], None, now), None, "no status");
    }

    #[test]
    fn stale_warnings_name_the_image_the_age_and_the_policy() {
        let stale = Stale {
            scanned_at: "2026-03-01T09:30:00Z".parse().expect("time"),
            age: Duration::from_secs(2 * 86_400 + 3 * 3600 + 59),
            max_age: Duration::from_secs(86_400),
            policy: "prod".into(),
        };
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            stale_warning("nginx:1.25", digest, &stale, true),
            "image nginx:1.25 (sha256:0123456789ab…): its scan report is 2d3h old (maxReportAge 1d of ScanPolicy/prod); a re-scan is queued"
        );
        assert!(
            stale_warning("nginx:1.25", digest, &stale, false).ends_with(
                "(maxReportAge 1d of ScanPolicy/prod); a re-scan is due (a dry run queues none)"
            )
        );
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        let table = [
            (0, "0s"),
            (45, "45s"),
            (90, "1m30s"),
            (3600, "1h"),
            (5400, "1h30m"),
            (86_400, "1d"),
            (86_400 + 300, "1d"),
            (2 * 86_400 + 3 * 3600 + 120, "2d3h"),
            (30 * 86_400, "30d"),
        ];
        for (secs, want) in table {
            assert_eq!(show_duration(Duration::from_secs(secs)), want, "{secs}");
        }
    }

    #[test]
    fn pinned_references_keep_registry_and_repository() {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let table = [
            ("docker.io/library/nginx:1.25", "docker.io/library/nginx"),
            ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app"),
        ];
        for (image, repo) in table {
            assert_eq!(
                pinned_reference(image, d).as_deref(),
                Some(format!("{repo}@{d}").as_str())
            );
        }
    }
}
