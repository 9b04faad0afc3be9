//! `procMount` (baseline, v1.0+) and `procMount_restricted` (restricted, v1.35+): containers
//! must keep the default masked /proc. From v1.35 baseline allows any procMount in a user
//! namespace (`hostUsers: false`); restricted keeps forbidding it there, replacing `procMount`.

use super::Ctx;
use crate::{CheckId, Finding};

pub(super) fn check_baseline(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.version.at_least(35) {
        if ctx.in_user_namespace() {
            return;
        }
        check_containers(
            ctx,
            CheckId::ProcMount,
            "remove it or set Default (or run the pod in a user namespace with spec.hostUsers: false)",
            out,
        );
    } else {
        check_containers(ctx, CheckId::ProcMount, "remove it or set Default", out);
    }
}

pub(super) fn check_restricted(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    check_containers(
        ctx,
        CheckId::ProcMountRestricted,
        "remove it or set Default",
        out,
    );
}

fn check_containers(ctx: &Ctx<'_>, id: CheckId, fix: &str, out: &mut Vec<Finding>) {
    for c in ctx.containers() {
        if let Some(pm) = c
            .security_context
            .and_then(|sc| sc.proc_mount.as_deref())
            .filter(|pm| *pm != "Default")
        {
            out.push(c.finding(
                id,
                "securityContext.procMount",
                format!("securityContext.procMount={pm} is not allowed"),
                fix,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    const UNMASKED: &str = r#"{"spec":{"hostUsers":false,"containers":[{"name":"a","securityContext":{"procMount":"Unmasked"}}]}}"#;

    #[test]
    fn baseline() {
        let msg = &[(
            "spec.containers[0].securityContext.procMount",
            "securityContext.procMount=Unmasked is not allowed",
        )][..];
        assert_table(
            CheckId::ProcMount,
            &[
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"procMount":"Default"}}]}}"#,
                    0,
                    &[],
                ),
                // Relaxed for user-namespaced pods from v1.35 only.
                (UNMASKED, 34, msg),
                (UNMASKED, 35, &[]),
                (
                    r#"{"spec":{"hostUsers":true,"containers":[{"name":"a","securityContext":{"procMount":"Unmasked"}}]}}"#,
                    35,
                    msg,
                ),
            ],
        );
    }

    #[test]
    fn restricted_ignores_user_namespaces() {
        assert_table(
            CheckId::ProcMountRestricted,
            &[(
                UNMASKED,
                35,
                &[(
                    "spec.containers[0].securityContext.procMount",
                    "securityContext.procMount=Unmasked is not allowed",
                )],
            )],
        );
    }
}
