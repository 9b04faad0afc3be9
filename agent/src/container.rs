//! Which container a process runs in, from the name of its cgroup. Every runtime Kubernetes
//! uses names the container's cgroup after its id; only the decoration differs:
//!
//! | runtime and cgroup driver | leaf cgroup name |
//! | --- | --- |
//! | containerd, systemd driver | `cri-containerd-<id>.scope` |
//! | CRI-O, systemd driver | `crio-<id>.scope` |
//! | Docker, systemd driver | `docker-<id>.scope` |
//! | Podman | `libpod-<id>.scope` |
//! | any runtime, cgroupfs driver (v1 or v2) | `<id>` |
//!
//! `<id>` is 64 lowercase hex digits, the id `status.containerStatuses[].containerID` gives
//! after its `<runtime>://` prefix.

/// The container id a leaf cgroup name carries, if it is a container's cgroup.
pub fn id_from_cgroup(name: &str) -> Option<&str> {
    let name = name.strip_suffix(".scope").unwrap_or(name);
    let id = ["cri-containerd-", "crio-", "docker-", "libpod-"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name);
    is_container_id(id).then_some(id)
}

/// The container id from the two cgroup names a kernel record carries (unified hierarchy
/// first, then the v1 memory hierarchy).
pub fn id_from_cgroups<'a>(unified: &'a str, v1: &'a str) -> Option<&'a str> {
    id_from_cgroup(unified).or_else(|| id_from_cgroup(v1))
}

/// The id in a pod status's `containerID` (`containerd://<id>`, `cri-o://<id>`,
/// `docker://<id>`).
pub fn id_from_status(container_id: &str) -> Option<&str> {
    let (_, id) = container_id.split_once("://")?;
    is_container_id(id).then_some(id)
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";

    #[test]
    fn container_cgroups_of_every_runtime_give_the_id() {
        let cases = [
            format!("cri-containerd-{ID}.scope"),
            format!("crio-{ID}.scope"),
            format!("docker-{ID}.scope"),
            format!("libpod-{ID}.scope"),
            ID.to_string(),
        ];
        for name in &cases {
            assert_eq!(id_from_cgroup(name), Some(ID), "{name}");
        }
    }

    #[test]
    fn other_cgroups_are_not_containers() {
        let cases = [
            String::new(),
            "/".into(),
            "init.scope".into(),
            "containerd.service".into(),
            "kubepods-besteffort-pod0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice".into(),
            // CRI-O's monitor process, not the container
            format!("crio-conmon-{ID}.scope"),
            // a pod's sandbox cgroup parent is a pod, not a container
            "pod0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d".into(),
            // upper case and wrong length
            ID.to_uppercase(),
            ID[..63].to_string(),
            format!("{ID}0"),
        ];
        for name in &cases {
            assert_eq!(id_from_cgroup(name), None, "{name}");
        }
    }

    #[test]
    fn the_unified_hierarchy_wins_and_v1_is_the_fallback() {
        let scope = format!("cri-containerd-{ID}.scope");
        assert_eq!(id_from_cgroups(&scope, "whatever"), Some(ID));
        assert_eq!(id_from_cgroups("", &scope), Some(ID));
        // hybrid hosts: the unified hierarchy may hold only the runtime's service
        assert_eq!(id_from_cgroups("containerd.service", ID), Some(ID));
        assert_eq!(id_from_cgroups("", ""), None);
    }

    #[test]
    fn pod_status_ids_lose_their_runtime_prefix() {
        for prefix in ["containerd", "cri-o", "docker"] {
            assert_eq!(id_from_status(&format!("{prefix}://{ID}")), Some(ID));
        }
        assert_eq!(id_from_status(ID), None);
        assert_eq!(id_from_status("containerd://short"), None);
    }
}
