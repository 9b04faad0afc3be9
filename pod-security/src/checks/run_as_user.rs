//! `runAsUser` (restricted, v1.23+): neither the pod nor a container may set `runAsUser: 0`.
//! From v1.35 the check is skipped for pods in a user namespace (`hostUsers: false`).

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

const FIX: &str = "set a non-zero UID or remove it (and set runAsNonRoot: true)";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.version.at_least(35) && ctx.in_user_namespace() {
        return;
    }
    // Upstream flags a pod-level 0 even where every container overrides it.
    if ctx.pod_security_context().and_then(|sc| sc.run_as_user) == Some(0) {
        out.push(pod_finding(
            CheckId::RunAsUser,
            "spec.securityContext.runAsUser",
            "spec.securityContext.runAsUser=0 is not allowed".into(),
            FIX,
        ));
    }
    for c in ctx.containers() {
        if c.security_context.and_then(|sc| sc.run_as_user) == Some(0) {
            out.push(c.finding(
                CheckId::RunAsUser,
                "securityContext.runAsUser",
                "securityContext.runAsUser=0 is not allowed".into(),
                FIX,
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
        let root = r#"{"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"a","securityContext":{"runAsUser":1000}},{"name":"b","securityContext":{"runAsUser":0}}]}}"#;
        assert_table(
            CheckId::RunAsUser,
            &[
                (
                    r#"{"spec":{"securityContext":{"runAsUser":1000},"containers":[{"name":"a"}]}}"#,
                    23,
                    &[],
                ),
                (
                    root,
                    37,
                    &[
                        (
                            "spec.securityContext.runAsUser",
                            "spec.securityContext.runAsUser=0 is not allowed",
                        ),
                        (
                            "spec.containers[1].securityContext.runAsUser",
                            "securityContext.runAsUser=0 is not allowed",
                        ),
                    ],
                ),
                (root, 22, &[]),
                (
                    r#"{"spec":{"hostUsers":false,"securityContext":{"runAsUser":0},"containers":[{"name":"a"}]}}"#,
                    35,
                    &[],
                ),
            ],
        );
    }
}
