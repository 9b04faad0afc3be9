//! `restrictedVolumes` (restricted, v1.0+): only configMap, csi, downwardAPI, emptyDir,
//! ephemeral, image, persistentVolumeClaim, projected and secret volumes. Replaces
//! `hostPathVolumes`. Upstream allows `image` in its v1.0 check, so at every version.
//! A volume without any source is what the API server defaults to `emptyDir`, so it passes.

use k8s_openapi::api::core::v1::Volume;

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

const FIX: &str = "use a configMap, csi, downwardAPI, emptyDir, ephemeral, image, \
                   persistentVolumeClaim, projected or secret volume";

fn has_allowed_source(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.image.is_some()
        || v.persistent_volume_claim.is_some()
        || v.projected.is_some()
        || v.secret.is_some()
}

/// The field name of the volume's disallowed source, if it has one.
fn disallowed_source(v: &Volume) -> Option<&'static str> {
    let sources = [
        ("hostPath", v.host_path.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("rbd", v.rbd.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("fc", v.fc.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("storageos", v.storageos.is_some()),
    ];
    sources.into_iter().find(|s| s.1).map(|s| s.0)
}

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, v) in ctx.spec.volumes.iter().flatten().enumerate() {
        // Upstream passes a volume that also has an allowed source (the API rejects two).
        let Some(kind) = disallowed_source(v).filter(|_| !has_allowed_source(v)) else {
            continue;
        };
        out.push(pod_finding(
            CheckId::RestrictedVolumes,
            format!("spec.volumes[{i}].{kind}"),
            format!(
                "volume \"{}\" uses {kind}, which the restricted level does not allow",
                v.name
            ),
            FIX,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    #[test]
    fn table() {
        assert_table(
            CheckId::RestrictedVolumes,
            &[
                (
                    r#"{"spec":{"containers":[],"volumes":[
                        {"name":"a","configMap":{"name":"x"}},
                        {"name":"b","csi":{"driver":"d"}},
                        {"name":"c","downwardAPI":{}},
                        {"name":"d","emptyDir":{}},
                        {"name":"e","ephemeral":{}},
                        {"name":"f","image":{"reference":"r"}},
                        {"name":"g","persistentVolumeClaim":{"claimName":"c"}},
                        {"name":"h","projected":{}},
                        {"name":"i","secret":{}}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[],"volumes":[
                        {"name":"ok","emptyDir":{}},
                        {"name":"host","hostPath":{"path":"/"}},
                        {"name":"share","nfs":{"server":"s","path":"/"}},
                        {"name":"defaulted"}]}}"#,
                    37,
                    &[
                        (
                            "spec.volumes[1].hostPath",
                            "volume \"host\" uses hostPath, which the restricted level does not allow",
                        ),
                        (
                            "spec.volumes[2].nfs",
                            "volume \"share\" uses nfs, which the restricted level does not allow",
                        ),
                    ],
                ),
            ],
        );
    }
}
