//! The image-scan gate: ScanPolicies and ImageScanReports held in memory, tag→digest
//! resolution cached, and scans queued through the operator.
//!
//! An image whose digest has a report is judged from memory. For one without, the gate
//! creates a Pending ImageScanReport (the operator scans it; one scanner, one cache, one
//! place with registry credentials for the heavy work), waits for the report at most the
//! policy's `scanWait` (capped by `--max-scan-wait`), then applies `onUnscanned`. Only tag
//! resolution touches the network here, bounded by the same budget and cached; it logs in
//! with the pod's pull Secrets first, as the kubelet would ([`crate::pull_secrets`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use palisade_crds::{ImageScanReport, ImageScanReportSpec, ScanPolicy, report_name};
use palisade_imageref::ImageRef;
use palisade_policy::scan::{ImageFacts, ImageNeed};
use palisade_policy::{Decision, Facts, ScanPolicySet, Subject, review_scans};
use palisade_scanner::oci::RegistryClient;
use palisade_scanner::oci::auth::Credentials;
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use crate::pull_secrets::reader::PullSecretReader;
use crate::pull_secrets::{LoginSource, logins_for};

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
        let mut credentials = Credentials::new();
        let mut seen = Vec::new();
        for r in set.policies().iter().flat_map(|p| p.registry_credentials()) {
            let ns = r
                .namespace
                .clone()
                .unwrap_or_else(|| self.inner.config.namespace.clone());
            if seen.contains(&(ns.clone(), r.name.clone())) {
                continue;
            }
            seen.push((ns.clone(), r.name.clone()));
            let what = format!("Secret {ns}/{}", r.name);
            match Api::<Secret>::namespaced(client.clone(), &ns)
                .get(&r.name)
                .await
            {
                Ok(secret) => {
                    let data = secret
                        .data
                        .as_ref()
                        .and_then(|d| d.get(".dockerconfigjson"));
                    match data {
                        Some(bytes) => {
                            if let Err(e) = credentials.add_docker_config(&what, &bytes.0) {
                                warn!(secret = %what, error = %e, "registry credentials not used");
                            }
                        }
                        None => {
                            warn!(secret = %what, "registry credentials not used: no .dockerconfigjson key (type kubernetes.io/dockerconfigjson)")
                        }
                    }
                }
                Err(e) => {
                    warn!(secret = %what, error = %crate::error::report(&e), "registry credentials not readable")
                }
            }
        }
        *self
            .inner
            .policy_credentials
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(credentials);
    }

    /// Judge the subject's images by every matching ScanPolicy, adding to `decision`.
    /// Returns within the budget whatever the registry or the operator do. `queue: false`
    /// (a dry run: the webhook declares no side effects) creates no report.
    pub async fn review(
        &self,
        subject: &Subject,
        facts: &Facts<'_>,
        decision: &mut Decision,
        queue: bool,
    ) {
        let set = self.policies();
        if set.is_empty() {
            return;
        }
        let needs = set.images_to_judge(subject, facts);
        if needs.images.is_empty() {
            return;
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

        // Queue what has no report, then wait for the reports within the scan budget.
        let mut waiting = Vec::new();
        for (need, digest) in needs.images.iter().zip(&digests) {
            if let Ok(digest) = digest
                && self.report(digest).is_none_or(|r| is_pending(&r))
            {
                if queue {
                    self.queue(need, digest);
                }
                waiting.push(digest.clone());
            }
        }
        while !waiting.is_empty() {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            waiting.retain(|d| self.report(d).is_none_or(|r| is_pending(&r)));
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
            .map(|d| d.as_ref().ok().and_then(|d| self.report(d)))
            .collect();
        let lookup = |image: &str| -> Option<ImageFacts<'_>> {
            let i = needs.images.iter().position(|n| n.image == image)?;
            Some(match &digests[i] {
                Ok(digest) => ImageFacts::Digest {
                    digest,
                    report: reports[i].as_ref().and_then(|r| r.status.as_ref()),
                },
                Err(reason) => ImageFacts::Unresolved { reason },
            })
        };
        review_scans(&set, subject, facts, &lookup, decision);
        debug!(
            images = needs.images.len(),
            waited_ms = started.elapsed().as_millis() as u64,
            "images judged"
        );
    }

    fn report(&self, digest: &str) -> Option<Arc<ImageScanReport>> {
        self.inner
            .reports
            .get(&ObjectRef::new(&report_name(digest)))
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

    /// Ask the operator for a scan: create the Pending report (in the background; the
    /// request waits on the report store, not on this call).
    fn queue(&self, need: &ImageNeed, digest: &str) {
        let Some(client) = self.inner.client.clone() else {
            return;
        };
        if self.report(digest).is_some() {
            return;
        }
        {
            let mut queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            queued.retain(|_, at| now.duration_since(*at) < Duration::from_secs(60));
            if queued.contains_key(digest) {
                return;
            }
            queued.insert(digest.to_owned(), now);
        }
        let Some(pinned) = pinned_reference(&need.image, digest) else {
            return;
        };
        let report = ImageScanReport::new(
            &report_name(digest),
            ImageScanReportSpec {
                image: pinned,
                digest: digest.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
