//! The containers of this node's pods, by container id: what the rules and the reports need
//! to know of the pod a process runs in. Built from the pods' specs and statuses (the watch
//! of `spec.nodeName=<this node>` feeds it); pure.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, SecurityContext};
use palisade_imageref::ImageRef;
use palisade_policy::PodFacts;

use crate::container;

/// One container of a pod on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    pub container_name: String,
    /// The image as the spec names it, normalized (`docker.io/library/nginx:1.25`).
    pub image: String,
    pub privileged: bool,
    /// When the container (this run of it) started, nanoseconds since the epoch.
    pub started_ns: Option<u64>,
}

/// A container with the facts the rules judge it by, its namespace's labels included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub info: ContainerInfo,
    pub facts: PodFacts,
}

/// Container id → container.
pub type Index = HashMap<String, Arc<Known>>;

/// A namespace's labels, when known.
pub trait NamespaceLabels {
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
}

impl NamespaceLabels for HashMap<String, BTreeMap<String, String>> {
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.get(namespace).cloned()
    }
}

/// Every running or terminated container of `pod` that has an id yet.
pub fn containers(pod: &Pod) -> Vec<(String, ContainerInfo)> {
    let meta = &pod.metadata;
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let base = ContainerInfo {
        namespace: meta.namespace.clone().unwrap_or_default(),
        pod_name: meta.name.clone().unwrap_or_default(),
        pod_uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        service_account: spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into()),
        ..ContainerInfo::default()
    };
    let specs = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| {
            (
                c.name.as_str(),
                (c.image.as_deref(), privileged(c.security_context.as_ref())),
            )
        })
        .chain(spec.ephemeral_containers.iter().flatten().map(|c| {
            (
                c.name.as_str(),
                (c.image.as_deref(), privileged(c.security_context.as_ref())),
            )
        }))
        .collect::<HashMap<_, _>>();
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .chain(status.ephemeral_container_statuses.iter().flatten())
        .filter_map(|s| {
            let id = container::id_from_status(s.container_id.as_deref()?)?.to_string();
            let (image, privileged) = specs.get(s.name.as_str()).copied().unwrap_or((None, false));
            let image = image.unwrap_or(&s.image);
            Some((
                id,
                ContainerInfo {
                    container_name: s.name.clone(),
                    image: normalize(image),
                    privileged,
                    started_ns: started_ns(s),
                    ..base.clone()
                },
            ))
        })
        .collect()
}

/// The index of every container of `pods`, with their namespaces' labels (a namespace not
/// known yet has only `kubernetes.io/metadata.name`, which every namespace has).
pub fn index<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    namespaces: &impl NamespaceLabels,
) -> Index {
    pods.into_iter()
        .flat_map(containers)
        .map(|(id, info)| {
            let mut namespace_labels = namespaces.labels(&info.namespace).unwrap_or_default();
            namespace_labels
                .entry("kubernetes.io/metadata.name".into())
                .or_insert_with(|| info.namespace.clone());
            let facts = PodFacts {
                namespace: info.namespace.clone(),
                pod_name: info.pod_name.clone(),
                labels: info.labels.clone(),
                namespace_labels,
                service_account: info.service_account.clone(),
                container_name: info.container_name.clone(),
                image: info.image.clone(),
                privileged: info.privileged,
            };
            (id, Arc::new(Known { info, facts }))
        })
        .collect()
}

fn privileged(sc: Option<&SecurityContext>) -> bool {
    sc.and_then(|sc| sc.privileged).unwrap_or(false)
}

fn started_ns(s: &ContainerStatus) -> Option<u64> {
    let state = s.state.as_ref()?;
    let started = state
        .running
        .as_ref()
        .and_then(|r| r.started_at.as_ref())
        .or_else(|| {
            state
                .terminated
                .as_ref()
                .and_then(|t| t.started_at.as_ref())
        })?;
    u64::try_from(started.0.as_nanosecond()).ok()
}

/// The fully qualified form runtimes resolve (`nginx` is `docker.io/library/nginx:latest`);
/// a reference that does not parse is kept as written.
fn normalize(image: &str) -> String {
    ImageRef::parse(image).map_or_else(|_| image.to_string(), |r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const ID2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
            "spec": {
                "serviceAccountName": "web",
                "containers": [
                    {"name": "app", "image": "nginx:1.25"},
                    {"name": "debug", "image": "registry.example.com:5000/tools/busybox", "securityContext": {"privileged": true}}
                ],
                "initContainers": [{"name": "init", "image": "busybox"}]
            },
            "status": {
                "containerStatuses": [
                    {"name": "app", "image": "docker.io/library/nginx:1.25", "imageID": "", "ready": true, "restartCount": 0,
                     "containerID": format!("containerd://{ID1}"),
                     "state": {"running": {"startedAt": "2026-12-05T08:00:00Z"}}},
                    {"name": "debug", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                     "containerID": format!("cri-o://{ID2}"),
                     "state": {"running": {"startedAt": "2026-12-05T08:00:01Z"}}}
                ],
                "initContainerStatuses": [
                    {"name": "init", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "PodInitializing"}}}
                ]
            }
        }))
        .expect("a pod")
    }

    #[test]
    fn containers_with_ids_are_indexed_with_their_pod() {
        let namespaces = HashMap::from([(
            "shop".to_string(),
            BTreeMap::from([("team".to_string(), "payments".to_string())]),
        )]);
        let idx = index([&pod()], &namespaces);
        assert_eq!(idx.len(), 2, "the init container has no id yet");
        let facts = &idx[ID1].facts;
        assert_eq!(
            facts.namespace_labels.get("team").map(String::as_str),
            Some("payments")
        );
        assert_eq!(
            facts
                .namespace_labels
                .get("kubernetes.io/metadata.name")
                .map(String::as_str),
            Some("shop")
        );
        assert_eq!(facts.image, "docker.io/library/nginx:1.25");
        let app = &idx[ID1].info;
        assert_eq!(app.namespace, "shop");
        assert_eq!(app.pod_name, "web-1");
        assert_eq!(app.service_account, "web");
        assert_eq!(app.container_name, "app");
        assert_eq!(app.image, "docker.io/library/nginx:1.25");
        assert_eq!(app.labels.get("app").map(String::as_str), Some("web"));
        assert!(!app.privileged);
        assert_eq!(app.started_ns, Some(1_796_457_600_000_000_000));
        let debug = &idx[ID2].info;
        assert!(debug.privileged && idx[ID2].facts.privileged);
        assert_eq!(
            debug.image,
            "registry.example.com:5000/tools/busybox:latest"
        );
    }

    #[test]
    fn pods_without_status_or_spec_give_nothing() {
        let mut p = pod();
        p.status = None;
        assert!(containers(&p).is_empty());
        let mut p = pod();
        p.spec = None;
        assert!(containers(&p).is_empty());
    }

    #[test]
    fn the_default_service_account() {
        let mut p = pod();
        if let Some(spec) = p.spec.as_mut() {
            spec.service_account_name = None;
        }
        let none = HashMap::new();
        assert_eq!(index([&p], &none)[ID1].info.service_account, "default");
        assert_eq!(
            index([&p], &none)[ID1].facts.namespace_labels,
            BTreeMap::from([(
                "kubernetes.io/metadata.name".to_string(),
                "shop".to_string()
            )])
        );
    }
}
