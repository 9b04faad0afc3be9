//! Who owns what the operator creates outside the chart.
//!
//! The ValidatingWebhookConfiguration, the certificate Secret and the agent DaemonSet are
//! written at run time, so `helm uninstall`, `kubectl delete -f` or an Argo CD prune do not
//! know them. Left behind, a registration whose Service is gone refuses every pod
//! (failurePolicy Fail), and an agent keeps watching every node. With
//! `--owner-cluster-role`, they name the install's own ClusterRole as their owner, and the
//! garbage collector removes them once the install is deleted. A ClusterRole because it is
//! cluster-scoped (a cluster-scoped object such as the registration may only be owned by
//! one) and installed with everything else.

use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

/// A plain (not controller, not blocking) owner reference to `role`.
pub fn reference_to(role: &ClusterRole) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: ClusterRole::api_version(&()).into_owned(),
        kind: ClusterRole::kind(&()).into_owned(),
        name: role.metadata.name.clone()?,
        uid: role.metadata.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// `owner` as the owner list of a desired object.
pub fn references(owner: Option<&OwnerReference>) -> Option<Vec<OwnerReference>> {
    owner.map(|o| vec![o.clone()])
}

/// Whether `meta` already names `owner` (by uid), or no owner is wanted.
pub fn has(meta: &ObjectMeta, owner: Option<&OwnerReference>) -> bool {
    owner.is_none_or(|want| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == want.uid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: Option<&str>, uid: Option<&str>) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: name.map(str::to_owned),
                uid: uid.map(str::to_owned),
                ..ObjectMeta::default()
            },
            ..ClusterRole::default()
        }
    }

    #[test]
    fn a_reference_names_the_role_by_kind_name_and_uid() {
        let r = reference_to(&role(Some("palisade-operator"), Some("u-1"))).expect("reference");
        assert_eq!(r.api_version, "rbac.authorization.k8s.io/v1");
        assert_eq!(r.kind, "ClusterRole");
        assert_eq!(r.name, "palisade-operator");
        assert_eq!(r.uid, "u-1");
        // Deleting the owner must never wait on its dependents.
        assert_eq!(r.block_owner_deletion, None);
        assert_eq!(r.controller, None);
        assert!(reference_to(&role(Some("x"), None)).is_none());
    }

    #[test]
    fn has_compares_by_uid() {
        let want = reference_to(&role(Some("palisade-operator"), Some("u-1")));
        let meta = |uids: &[&str]| ObjectMeta {
            owner_references: Some(
                uids.iter()
                    .map(|u| reference_to(&role(Some("palisade-operator"), Some(u))).expect("ref"))
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        assert!(has(&meta(&["u-1"]), want.as_ref()));
        assert!(has(&meta(&["u-0", "u-1"]), want.as_ref()));
        // A reinstalled chart's ClusterRole has a new uid: the old reference is not enough.
        assert!(!has(&meta(&["u-0"]), want.as_ref()));
        assert!(!has(&ObjectMeta::default(), want.as_ref()));
        assert!(has(&ObjectMeta::default(), None));
    }
}
