//! `runAsNonRoot` (restricted, v1.0+): every container must run with `runAsNonRoot: true`, set
//! on the container or inherited from the pod; `false` is forbidden at either level. From v1.35
//! the check is skipped for pods in a user namespace (`hostUsers: false`).

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.version.at_least(35) && ctx.in_user_namespace() {
        return;
    }
    let pod_value = ctx.pod_security_context().and_then(|sc| sc.run_as_non_root);
    if pod_value == Some(false) {
        out.push(pod_finding(
            CheckId::RunAsNonRoot,
            "spec.securityContext.runAsNonRoot",
            "spec.securityContext.runAsNonRoot=false is not allowed".into(),
            "set spec.securityContext.runAsNonRoot: true",
        ));
    }
    for c in ctx.containers() {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(true) => {}
            Some(false) => out.push(c.finding(
                CheckId::RunAsNonRoot,
                "securityContext.runAsNonRoot",
                "securityContext.runAsNonRoot=false is not allowed".into(),
                "set securityContext.runAsNonRoot: true",
            )),
            // Inherited from the pod; a pod-level false was reported above.
            None if pod_value.is_some() => {}
            None => out.push(c.finding(
                CheckId::RunAsNonRoot,
                "securityContext.runAsNonRoot",
                "securityContext.runAsNonRoot must be true (on the container or the pod)".into(),
                "set securityContext.runAsNonRoot: true on the container, \
                 or for all containers in spec.securityContext",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    const MISSING: &str = "securityContext.runAsNonRoot must be true (on the container or the pod)";

    #[test]
    fn table() {
        assert_table(
            CheckId::RunAsNonRoot,
            &[
                (
                    r#"{"spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"a"},{"name":"b","securityContext":{"runAsNonRoot":true}}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"runAsNonRoot":true}}]}}"#,
                    37,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"runAsNonRoot":true}},{"name":"b","securityContext":{"runAsUser":1000}}]}}"#,
                    37,
                    &[("spec.containers[1].securityContext.runAsNonRoot", MISSING)],
                ),
                // The container's own value wins over the pod's: false fails under a pod-level true.
                (
                    r#"{"spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"a","securityContext":{"runAsNonRoot":false}}]}}"#,
                    37,
                    &[(
                        "spec.containers[0].securityContext.runAsNonRoot",
                        "securityContext.runAsNonRoot=false is not allowed",
                    )],
                ),
                // A pod-level false fails even when every container sets true.
                (
                    r#"{"spec":{"securityContext":{"runAsNonRoot":false},"containers":[{"name":"a","securityContext":{"runAsNonRoot":true}},{"name":"b"}]}}"#,
                    37,
                    &[(
                        "spec.securityContext.runAsNonRoot",
                        "spec.securityContext.runAsNonRoot=false is not allowed",
                    )],
                ),
                // User-namespaced pods are exempt from v1.35.
                (
                    r#"{"spec":{"hostUsers":false,"containers":[{"name":"a"}]}}"#,
                    35,
                    &[],
                ),
                (
                    r#"{"spec":{"hostUsers":false,"containers":[{"name":"a"}]}}"#,
                    34,
                    &[("spec.containers[0].securityContext.runAsNonRoot", MISSING)],
                ),
            ],
        );
    }
}
