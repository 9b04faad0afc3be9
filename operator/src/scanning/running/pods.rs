//! What the watcher does for one pod: resolve tags it must (cached), and create the
//! ImageScanReports that are missing, for the platform of the node the pod runs on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ObjectMeta, PartialObjectMeta, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::{Api, Client, ResourceExt};
use palisade_crds::{ImageScanReport, ImageScanReportSpec};
use palisade_imageref::ImageRef;
use palisade_scanner::oci::Platform;
use tracing::{debug, info, warn};

use super::plan::{WantedReport, digest_from_image_id, images_of, wanted_reports};
use crate::error::report;
use crate::scanning::registry::RegistryAccess;
use crate::scanning::view::DigestBook;

/// A tag's digest is looked up again after this long.
const TAG_TTL: Duration = Duration::from_secs(300);

/// A tag that could not be resolved is tried again after this long.
const TAG_RETRY: Duration = Duration::from_secs(60);

/// Longest wait for one tag lookup.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(15);

/// A report created this recently is not created again while the watch catches up.
const CREATED_TTL: Duration = Duration::from_secs(300);

/// Settings of the watcher.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespaces whose pods are not looked at (those the webhook never judges).
    pub excluded_namespaces: Vec<String>,
}

pub(super) struct Watcher {
    client: Client,
    digests: DigestBook,
    config: Config,
    access: Arc<RegistryAccess>,
    reports: Store<ImageScanReport>,
    /// Nodes' metadata: the platform a pod's node runs.
    nodes: Store<PartialObjectMeta<Node>>,
    /// The platform of pods whose node is not known (yet).
    default_platform: Platform,
    /// Image reference → (when looked up, digest or why not).
    tags: HashMap<String, (Instant, Result<String, String>)>,
    /// Images whose lookup failure was already logged.
    warned: HashSet<String>,
    /// Report name → when this process created it.
    created: HashMap<String, Instant>,
}

impl Watcher {
    pub(super) fn new(
        client: Client,
        digests: DigestBook,
        config: Config,
        access: Arc<RegistryAccess>,
        reports: Store<ImageScanReport>,
        nodes: Store<PartialObjectMeta<Node>>,
        default_platform: Platform,
    ) -> Watcher {
        Watcher {
            client,
            digests,
            config,
            access,
            reports,
            nodes,
            default_platform,
            tags: HashMap::new(),
            warned: HashSet::new(),
            created: HashMap::new(),
        }
    }

    pub(super) async fn pod(&mut self, pod: &Pod) {
        let namespace = pod.namespace().unwrap_or_default();
        if self.config.excluded_namespaces.contains(&namespace) {
            return;
        }
        let mut pinned = Vec::new();
        for (image, image_id) in images_of(pod) {
            let Ok(parsed) = ImageRef::parse(&image) else {
                debug!(%image, pod = %pod.name_any(), %namespace, "not an image reference; skipped");
                continue;
            };
            let digest = match parsed
                .digest()
                .map(str::to_owned)
                .or_else(|| image_id.as_deref().and_then(digest_from_image_id))
            {
                Some(d) => d,
                None => match self.resolve(&parsed).await {
                    Some(d) => d,
                    None => continue,
                },
            };
            if parsed.digest().is_none() {
                self.digests.record(&parsed.to_string(), &digest);
            }
            let image = format!("{}/{}@{digest}", parsed.registry(), parsed.repository());
            pinned.push((digest, image));
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| self.nodes.get(&reflector::ObjectRef::new(n)));
        let labels = node.as_ref().and_then(|n| n.metadata.labels.as_ref());
        let digests = pinned.iter().map(|(d, _)| d.clone()).collect();
        let wanted = wanted_reports([(pod, digests)], |_| labels, &self.default_platform);
        for report in wanted {
            if let Some((_, image)) = pinned.iter().find(|(d, _)| *d == report.digest) {
                self.ensure_report(image, report).await;
            }
        }
    }

    /// The tag's digest, from the cache or the registry; failures are logged once per image.
    async fn resolve(&mut self, image: &ImageRef<'_>) -> Option<String> {
        let key = image.to_string();
        if let Some((at, result)) = self.tags.get(&key) {
            let ttl = if result.is_ok() { TAG_TTL } else { TAG_RETRY };
            if at.elapsed() < ttl {
                return result.as_ref().ok().cloned();
            }
        }
        let client = self.access.registry().await;
        let result = match tokio::time::timeout(RESOLVE_TIMEOUT, client.resolve(image)).await {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(e)) => Err(report(&e)),
            Err(_) => Err(format!("no answer within {}s", RESOLVE_TIMEOUT.as_secs())),
        };
        match &result {
            Ok(_) => {
                self.warned.remove(&key);
            }
            Err(reason) => {
                if self.warned.insert(key.clone()) {
                    warn!(image = %key, %reason, "cannot resolve the image's digest; its scan waits, retrying in {}s", TAG_RETRY.as_secs());
                }
            }
        }
        self.tags.insert(key, (Instant::now(), result.clone()));
        result.ok()
    }

    async fn ensure_report(&mut self, image: &str, wanted: WantedReport) {
        let WantedReport {
            name,
            digest,
            platform,
        } = wanted;
        self.created.retain(|_, at| at.elapsed() < CREATED_TTL);
        if self.created.contains_key(&name)
            || self
                .reports
                .get(&reflector::ObjectRef::new(&name))
                .is_some()
        {
            return;
        }
        let object = ImageScanReport {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            spec: ImageScanReportSpec {
                image: image.to_owned(),
                digest,
                platform: platform.clone(),
            },
            status: None,
        };
        let api = Api::<ImageScanReport>::all(self.client.clone());
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {
                info!(report = %name, %image, platform = platform.as_deref().unwrap_or("default"), "ImageScanReport created for a running image");
                self.created.insert(name, Instant::now());
            }
            // Another writer (the webhook, or an earlier pass) was first: fine.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                self.created.insert(name, Instant::now());
            }
            Err(e) => {
                warn!(report = %name, %image, error = %report(&e), "cannot create the ImageScanReport; retrying later")
            }
        }
    }
}
