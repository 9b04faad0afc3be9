//! The images a pod runs and the digests its status names, as pure functions.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

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
