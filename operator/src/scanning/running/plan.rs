//! The images a pod runs, the digests its status names, and the platform its node runs, as
//! pure functions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use palisade_crds::report_name_for;
use palisade_scanner::oci::Platform;

/// The well-known Node labels of the node's architecture and OS (set by the kubelet).
pub const ARCH_LABEL: &str = "kubernetes.io/arch";
pub const OS_LABEL: &str = "kubernetes.io/os";

/// The platform a node runs, from its labels: `kubernetes.io/os` (`linux` when absent) and
/// `kubernetes.io/arch`; `None` without an architecture.
pub fn node_platform(labels: &BTreeMap<String, String>) -> Option<Platform> {
    let arch = labels.get(ARCH_LABEL).filter(|a| !a.is_empty())?;
    let os = labels
        .get(OS_LABEL)
        .filter(|o| !o.is_empty())
        .map_or("linux", String::as_str);
    Platform::parse(&format!("{os}/{arch}"))
}

/// The platform to scan a pod's images for: that of the node it is scheduled on
/// (`spec.nodeName`), or `default` when it is not scheduled yet, or its node is unknown or
/// has no architecture label. `node_labels` looks a node's labels up by name.
pub fn pod_platform<'a>(
    pod: &Pod,
    node_labels: impl Fn(&str) -> Option<&'a BTreeMap<String, String>>,
    default: &Platform,
) -> Platform {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
        .and_then(node_labels)
        .and_then(node_platform)
        .unwrap_or_else(|| default.clone())
}

/// A report to have: its name and the platform its spec names (`None` for the default
/// platform, whose report keeps the name the webhook looks up).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WantedReport {
    pub name: String,
    pub digest: String,
    pub platform: Option<String>,
}

/// The report of `digest` scanned for `platform`.
pub fn wanted_report(digest: &str, platform: &Platform, default: &Platform) -> WantedReport {
    let platform = (platform != default).then(|| platform.to_string());
    WantedReport {
        name: report_name_for(digest, platform.as_deref()),
        digest: digest.to_owned(),
        platform,
    }
}

/// Every report a set of pods needs: for each (digest, platform its pod runs on) one, each
/// once. `digests` gives the digests of a pod's images (already resolved).
pub fn wanted_reports<'a, 'p>(
    pods: impl IntoIterator<Item = (&'p Pod, Vec<String>)>,
    node_labels: impl Fn(&str) -> Option<&'a BTreeMap<String, String>> + Copy,
    default: &Platform,
) -> BTreeSet<WantedReport> {
    pods.into_iter()
        .flat_map(|(pod, digests)| {
            let platform = pod_platform(pod, node_labels, default);
            digests
                .into_iter()
                .map(move |d| wanted_report(&d, &platform, default))
        })
        .collect()
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

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn pod_on(node: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "app", "image": "app:1"}], "nodeName": node},
        }))
        .expect("a pod")
    }

    #[test]
    fn reports_follow_the_platform_of_the_nodes_that_run_the_image() {
        let nodes: HashMap<String, BTreeMap<String, String>> = [
            ("amd", labels(&[(ARCH_LABEL, "amd64"), (OS_LABEL, "linux")])),
            ("arm", labels(&[(ARCH_LABEL, "arm64"), (OS_LABEL, "linux")])),
            ("arm-no-os", labels(&[(ARCH_LABEL, "arm64")])),
            (
                "win",
                labels(&[(ARCH_LABEL, "amd64"), (OS_LABEL, "windows")]),
            ),
            ("bare", labels(&[("team", "a")])),
        ]
        .into_iter()
        .map(|(n, l)| (n.to_owned(), l))
        .collect();
        let lookup = |n: &str| nodes.get(n);
        let default = Platform::linux_amd64();
        let d = format!("sha256:{HEX}");
        let name = format!("sha256-{HEX}");
        let default_report = || WantedReport {
            name: name.clone(),
            digest: d.clone(),
            platform: None,
        };
        let arm_report = || WantedReport {
            name: format!("{name}-linux-arm64"),
            digest: d.clone(),
            platform: Some("linux/arm64".into()),
        };
        // What, the nodes of the pods running the digest, the reports wanted.
        type Case<'a> = (&'a str, Vec<Option<&'a str>>, Vec<WantedReport>);
        let cases: Vec<Case> = vec![
            (
                "amd64 node: the default",
                vec![Some("amd")],
                vec![default_report()],
            ),
            ("arm64 node", vec![Some("arm")], vec![arm_report()]),
            (
                "no os label: linux",
                vec![Some("arm-no-os")],
                vec![arm_report()],
            ),
            (
                "both architectures: two reports",
                vec![Some("amd"), Some("arm"), Some("arm-no-os")],
                vec![default_report(), arm_report()],
            ),
            (
                "windows node",
                vec![Some("win")],
                vec![WantedReport {
                    name: format!("{name}-windows-amd64"),
                    digest: d.clone(),
                    platform: Some("windows/amd64".into()),
                }],
            ),
            (
                "not scheduled: the default",
                vec![None],
                vec![default_report()],
            ),
            (
                "unknown node: the default",
                vec![Some("gone")],
                vec![default_report()],
            ),
            (
                "node without arch label: the default",
                vec![Some("bare")],
                vec![default_report()],
            ),
            ("no pods", vec![], vec![]),
        ];
        for (what, placed, want) in cases {
            let pods: Vec<Pod> = placed.into_iter().map(pod_on).collect();
            let got = wanted_reports(pods.iter().map(|p| (p, vec![d.clone()])), lookup, &default);
            assert_eq!(got.into_iter().collect::<Vec<_>>(), want, "{what}");
        }
        // Another default platform makes amd64 the one with a suffix.
        let arm_default = Platform::parse("linux/arm64").expect("a platform");
        let got = wanted_reports(
            [(&pod_on(Some("amd")), vec![d.clone()])],
            lookup,
            &arm_default,
        );
        assert_eq!(
            got.into_iter().map(|r| r.name).collect::<Vec<_>>(),
            [format!("{name}-linux-amd64")]
        );
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
