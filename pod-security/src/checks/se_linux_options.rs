//! `seLinuxOptions` (baseline, v1.0+): the SELinux type must be one of the container types,
//! and user and role must not be set. `container_engine_t` is allowed from v1.31.

use k8s_openapi::api::core::v1::SELinuxOptions;

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

const TYPES_1_0: &[&str] = &["container_t", "container_init_t", "container_kvm_t"];
const TYPES_1_31: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Calls `emit(part, problem, fix)` for each bad part of `opts`.
fn check_options(
    ctx: &Ctx<'_>,
    opts: &SELinuxOptions,
    mut emit: impl FnMut(&'static str, String, String),
) {
    let allowed = if ctx.version.at_least(31) {
        TYPES_1_31
    } else {
        TYPES_1_0
    };
    let ty = opts.type_.as_deref().unwrap_or_default();
    if !ty.is_empty() && !allowed.contains(&ty) {
        emit(
            "type",
            format!("type={ty:?} is not allowed"),
            format!("remove it or use one of {}", allowed.join(", ")),
        );
    }
    if opts.user.as_deref().is_some_and(|u| !u.is_empty()) {
        emit("user", "user must not be set".into(), "remove it".into());
    }
    if opts.role.as_deref().is_some_and(|r| !r.is_empty()) {
        emit("role", "role must not be set".into(), "remove it".into());
    }
}

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if let Some(opts) = ctx
        .pod_security_context()
        .and_then(|sc| sc.se_linux_options.as_ref())
    {
        check_options(ctx, opts, |part, what, fix| {
            out.push(pod_finding(
                CheckId::SeLinuxOptions,
                format!("spec.securityContext.seLinuxOptions.{part}"),
                format!("spec.securityContext.seLinuxOptions.{what}"),
                fix,
            ));
        });
    }
    for c in ctx.containers() {
        if let Some(opts) = c
            .security_context
            .and_then(|sc| sc.se_linux_options.as_ref())
        {
            check_options(ctx, opts, |part, what, fix| {
                out.push(c.finding(
                    CheckId::SeLinuxOptions,
                    &format!("securityContext.seLinuxOptions.{part}"),
                    format!("securityContext.seLinuxOptions.{what}"),
                    fix,
                ));
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_table, run};
    use crate::CheckId;

    #[test]
    fn table() {
        assert_table(
            CheckId::SeLinuxOptions,
            &[
                (
                    r#"{"spec":{"securityContext":{"seLinuxOptions":{"type":"container_t","level":"s0:c1"}},
                        "containers":[{"name":"a","securityContext":{"seLinuxOptions":{"type":"","user":"","role":""}}}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"securityContext":{"seLinuxOptions":{"type":"spc_t","user":"sysadm_u"}},
                        "containers":[{"name":"a","securityContext":{"seLinuxOptions":{"role":"sysadm_r"}}}]}}"#,
                    37,
                    &[
                        (
                            "spec.securityContext.seLinuxOptions.type",
                            "spec.securityContext.seLinuxOptions.type=\"spc_t\" is not allowed",
                        ),
                        (
                            "spec.securityContext.seLinuxOptions.user",
                            "spec.securityContext.seLinuxOptions.user must not be set",
                        ),
                        (
                            "spec.containers[0].securityContext.seLinuxOptions.role",
                            "securityContext.seLinuxOptions.role must not be set",
                        ),
                    ],
                ),
                // container_engine_t joined the allowed types at v1.31.
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"seLinuxOptions":{"type":"container_engine_t"}}}]}}"#,
                    31,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"seLinuxOptions":{"type":"container_engine_t"}}}]}}"#,
                    30,
                    &[(
                        "spec.containers[0].securityContext.seLinuxOptions.type",
                        "securityContext.seLinuxOptions.type=\"container_engine_t\" is not allowed",
                    )],
                ),
            ],
        );
    }

    #[test]
    fn fix_lists_the_types_of_the_version() {
        let json = r#"{"spec":{"containers":[{"name":"a","securityContext":{"seLinuxOptions":{"type":"x"}}}]}}"#;
        assert!(
            !run(CheckId::SeLinuxOptions, 30, json)[0]
                .fix
                .contains("container_engine_t")
        );
        assert!(
            run(CheckId::SeLinuxOptions, 31, json)[0]
                .fix
                .contains("container_engine_t")
        );
    }
}
