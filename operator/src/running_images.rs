//! Reports for what already runs: every image of every pod (outside the namespaces the
//! webhook never judges) gets an ImageScanReport, which the scan controller then fills.
//!
//! The digest comes from the container status's `imageID` when the runtime reports one,
//! else from the registry (the tag's current digest, cached for [`TAG_TTL`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use palisade_crds::{ImageScanReport, ImageScanReportSpec, report_name};
use palisade_imageref::ImageRef;
use tracing::{debug, info, warn};

use crate::error::report;
use crate::registry_access::RegistryAccess;
use crate::scan_view::DigestBook;

/// A tag's digest is looked up again after this long.
const TAG_TTL: Duration = Duration::from_secs(300);

/// A tag that could not be resolved is tried again after this long.
const TAG_RETRY: Duration = Duration::from_secs(60);

/// Longest wait for one tag lookup.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(15);

/// Every pod is looked at again this often (retries, reports deleted by hand).
const RESYNC: Duration = Duration::from_secs(60);

/// A report created this recently is not created again while the watch catches up.
const CREATED_TTL: Duration = Duration::from_secs(300);

/// Settings of the watcher.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespaces whose pods are not looked at (those the webhook never judges).
    pub excluded_namespaces: Vec<String>,
}

/// The digest of an `imageID` that names one (`docker-pullable://nginx@sha256:…`,
/// `docker.io/library/nginx@sha256:…`); a bare image id (`sha256:…` of the config) does not.
pub fn digest_from_image_id(image_id: &str) -> Option<String> {
    let (_, hex) = image_id.rsplit_once("@sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| format!("sha256:{hex}"))
}

/// Every image of a pod (containers, init and ephemeral containers) with its status's
/// `imageID` when there is one, each image once.
pub fn images_of(pod: &Pod) -> Vec<(String, Option<String>)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let status = pod.status.as_ref();
    let ids: HashMap<&str, &str> = [
        status.and_then(|s| s.container_statuses.as_ref()),
        status.and_then(|s| s.init_container_statuses.as_ref()),
        status.and_then(|s| s.ephemeral_container_statuses.as_ref()),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter(|s: &&ContainerStatus| !s.image_id.is_empty())
    .map(|s| (s.name.as_str(), s.image_id.as_str()))
    .collect();
    let named = spec
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.image.as_deref()))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), c.image.as_deref())),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), c.image.as_deref())),
        );
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (name, image) in named {
        let Some(image) = image.filter(|i| !i.is_empty()) else {
            continue;
        };
        let id = ids.get(name).map(|s| (*s).to_owned());
        if seen.insert((image.to_owned(), id.clone())) {
            out.push((image.to_owned(), id));
        }
    }
    out
}

struct Watcher {
    client: Client,
    digests: DigestBook,
    config: Config,
    access: Arc<RegistryAccess>,
    reports: Store<ImageScanReport>,
    /// Image reference → (when looked up, digest or why not).
    tags: HashMap<String, (Instant, Result<String, String>)>,
    /// Images whose lookup failure was already logged.
    warned: HashSet<String>,
    /// Report name → when this process created it.
    created: HashMap<String, Instant>,
}

impl Watcher {
    async fn pod(&mut self, pod: &Pod) {
        let namespace = pod.namespace().unwrap_or_default();
        if self.config.excluded_namespaces.contains(&namespace) {
            return;
        }
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
            let pinned = format!("{}/{}@{digest}", parsed.registry(), parsed.repository());
            self.ensure_report(&pinned, &digest).await;
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

    async fn ensure_report(&mut self, image: &str, digest: &str) {
        let name = report_name(digest);
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
                digest: digest.to_owned(),
            },
            status: None,
        };
        let api = Api::<ImageScanReport>::all(self.client.clone());
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {
                info!(report = %name, %image, "ImageScanReport created for a running image");
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
    let mut w = Watcher {
        client,
        digests,
        config,
        access,
        reports,
        tags: HashMap::new(),
        warned: HashSet::new(),
        created: HashMap::new(),
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(excluded = ?w.config.excluded_namespaces, "watching pods for running images");
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digest_comes_from_an_image_id_only_when_it_names_a_repository_digest() {
        let d = format!("sha256:{HEX}");
        for (id, want) in [
            (format!("docker-pullable://nginx@sha256:{HEX}"), Some(&d)),
            (format!("docker.io/library/nginx@sha256:{HEX}"), Some(&d)),
            (format!("localhost:5000/app@sha256:{HEX}"), Some(&d)),
            // The config digest of the local image, not a registry manifest.
            (format!("sha256:{HEX}"), None),
            (format!("docker://sha256:{HEX}"), None),
            (format!("nginx@sha256:{}", &HEX[..10]), None),
            (format!("nginx@sha256:{}", HEX.to_uppercase()), None),
            (String::new(), None),
        ] {
            assert_eq!(digest_from_image_id(&id).as_ref(), want, "{id}");
        }
    }

    #[test]
    fn images_of_a_pod_pair_each_container_with_its_status() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "app:1"}],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "ephemeralContainers": [{"name": "debug", "image": "debug:2"}]
            },
            "status": {
                "containerStatuses": [{"name": "app", "image": "app:1", "imageID": format!("docker.io/library/app@sha256:{HEX}"),
                    "ready": true, "restartCount": 0}],
                "initContainerStatuses": [{"name": "init", "image": "busybox", "imageID": "",
                    "ready": false, "restartCount": 0}]
            }
        }))
        .expect("a pod");
        let got = images_of(&pod);
        let id = Some(format!("docker.io/library/app@sha256:{HEX}"));
        assert_eq!(
            got,
            vec![
                ("app:1".to_owned(), id),
                ("app:1".to_owned(), None),
                ("busybox".to_owned(), None),
                ("debug:2".to_owned(), None),
            ]
        );
        assert!(images_of(&Pod::default()).is_empty());
    }
}
