//! What the rules know besides the event: the pod the process runs in, and a few facts about
//! the cluster. The agent fills these from its watches (the node's pods, their namespaces,
//! the `kubernetes` Service and its endpoints) and keeps them per container, so judging an
//! event copies nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The pod and container a process runs in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub pod_name: String,
    /// The pod's labels (what `objectSelector`s match).
    pub labels: BTreeMap<String, String>,
    /// The namespace's labels (what `namespaceSelector`s match). The agent must know them:
    /// an empty map is judged as a namespace with no labels, except that
    /// `kubernetes.io/metadata.name` always holds the namespace's name.
    pub namespace_labels: BTreeMap<String, String>,
    /// `spec.serviceAccountName` (`default` when the pod names none).
    pub service_account: String,
    pub container_name: String,
    /// The container's image, normalized (`docker.io/library/nginx:1.25`, digest kept).
    pub image: String,
    /// `securityContext.privileged: true` on this container.
    pub privileged: bool,
}

impl PodFacts {
    /// The image without tag or digest (`docker.io/library/nginx`): Falco's
    /// `container.image.repository`.
    pub fn image_repository(&self) -> &str {
        let image = self.image.split_once('@').map_or(&*self.image, |(r, _)| r);
        match image.rfind(':') {
            // A colon after the last slash starts the tag; before it, it was a port.
            Some(i) if !image[i..].contains('/') => &image[..i],
            _ => image,
        }
    }
}

/// Facts about the cluster the rules need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFacts {
    /// Where the API server answers: the `kubernetes` Service's ClusterIP and port
    /// (`10.96.0.1:443`) and each of its endpoints (`192.168.1.10:6443`). Empty: the
    /// `runtime.contactK8sApiServer` rule cannot fire.
    pub api_server: Vec<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_repository() {
        let table = [
            ("docker.io/library/nginx:1.25", "docker.io/library/nginx"),
            (
                "registry.example.com:5000/team/app:v1",
                "registry.example.com:5000/team/app",
            ),
            (
                "registry.example.com:5000/team/app",
                "registry.example.com:5000/team/app",
            ),
            (
                "quay.io/calico/node:v3.27@sha256:0123",
                "quay.io/calico/node",
            ),
            ("quay.io/calico/node@sha256:0123", "quay.io/calico/node"),
            ("", ""),
        ];
        for (image, want) in table {
            let pod = PodFacts {
                image: image.into(),
                ..PodFacts::default()
            };
            assert_eq!(pod.image_repository(), want, "{image}");
        }
    }
}
