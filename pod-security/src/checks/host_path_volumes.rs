//! `hostPathVolumes` (baseline, v1.0+): no `hostPath` volumes. Restricted replaces it with
//! `restrictedVolumes`.

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, v) in ctx.spec.volumes.iter().flatten().enumerate() {
        if v.host_path.is_some() {
            out.push(pod_finding(
                CheckId::HostPathVolumes,
                format!("spec.volumes[{i}].hostPath"),
                format!("volume \"{}\" uses hostPath, which is not allowed", v.name),
                "use another volume type, e.g. a persistentVolumeClaim, configMap or emptyDir",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    #[test]
    fn table() {
        assert_table(
            CheckId::HostPathVolumes,
            &[
                (
                    r#"{"spec":{"containers":[],"volumes":[{"name":"a","emptyDir":{}}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[],"volumes":[{"name":"a","emptyDir":{}},
                        {"name":"host","hostPath":{"path":"/etc"}}]}}"#,
                    37,
                    &[(
                        "spec.volumes[1].hostPath",
                        "volume \"host\" uses hostPath, which is not allowed",
                    )],
                ),
            ],
        );
    }
}
