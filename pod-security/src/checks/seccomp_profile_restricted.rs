//! `seccompProfile_restricted` (restricted, v1.19+): every container must run with
//! `RuntimeDefault` or `Localhost` seccomp, set on the container or inherited from the pod.
//! Windows pods are exempt from v1.25. Replaces `seccompProfile_baseline`.

use super::seccomp_profile_baseline::valid_type;
use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

const FIX: &str = "set securityContext.seccompProfile.type to RuntimeDefault or Localhost";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.version.at_least(25) && ctx.is_windows() {
        return;
    }
    let pod_profile = ctx
        .pod_security_context()
        .and_then(|sc| sc.seccomp_profile.as_ref());
    let pod_bad = pod_profile.filter(|p| !valid_type(&p.type_));
    if let Some(p) = pod_bad {
        out.push(pod_finding(
            CheckId::SeccompProfileRestricted,
            "spec.securityContext.seccompProfile.type",
            format!(
                "spec.securityContext.seccompProfile.type={} is not allowed",
                p.type_
            ),
            "set spec.securityContext.seccompProfile.type to RuntimeDefault or Localhost",
        ));
    }
    let pod_ok = pod_profile.is_some() && pod_bad.is_none();
    for c in ctx.containers() {
        match c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            Some(p) if !valid_type(&p.type_) => out.push(c.finding(
                CheckId::SeccompProfileRestricted,
                "securityContext.seccompProfile.type",
                format!(
                    "securityContext.seccompProfile.type={} is not allowed",
                    p.type_
                ),
                FIX,
            )),
            Some(_) => {}
            // A bad pod-level value was reported above; fixing it fixes these containers too.
            None if pod_ok || pod_bad.is_some() => {}
            None => out.push(
                c.finding(
                    CheckId::SeccompProfileRestricted,
                    "securityContext.seccompProfile.type",
                    "securityContext.seccompProfile.type must be RuntimeDefault or Localhost \
                 (on the container or the pod)"
                        .into(),
                    format!(
                        "{FIX}, on the container or for all containers in spec.securityContext"
                    ),
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    const MISSING: &str = "securityContext.seccompProfile.type must be RuntimeDefault or Localhost (on the container or the pod)";

    #[test]
    fn table() {
        assert_table(
            CheckId::SeccompProfileRestricted,
            &[
                // Pod level covers containers that leave it unset.
                (
                    r#"{"spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},
                        "containers":[{"name":"a"},{"name":"b","securityContext":{"seccompProfile":{"type":"Localhost","localhostProfile":"p"}}}]}}"#,
                    19,
                    &[],
                ),
                // Each container may set it instead.
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}}]}}"#,
                    37,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}},{"name":"b"}],
                        "initContainers":[{"name":"i"}]}}"#,
                    37,
                    &[
                        (
                            "spec.containers[1].securityContext.seccompProfile.type",
                            MISSING,
                        ),
                        (
                            "spec.initContainers[0].securityContext.seccompProfile.type",
                            MISSING,
                        ),
                    ],
                ),
                // A container's explicit bad value fails even under a good pod-level value.
                (
                    r#"{"spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},
                        "containers":[{"name":"a","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}"#,
                    37,
                    &[(
                        "spec.containers[0].securityContext.seccompProfile.type",
                        "securityContext.seccompProfile.type=Unconfined is not allowed",
                    )],
                ),
                // A bad pod-level value is reported once, not once per container.
                (
                    r#"{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},
                        "containers":[{"name":"a"},{"name":"b"}]}}"#,
                    37,
                    &[(
                        "spec.securityContext.seccompProfile.type",
                        "spec.securityContext.seccompProfile.type=Unconfined is not allowed",
                    )],
                ),
                // Windows pods are exempt from v1.25.
                (
                    r#"{"spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#,
                    25,
                    &[],
                ),
                (
                    r#"{"spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#,
                    24,
                    &[(
                        "spec.containers[0].securityContext.seccompProfile.type",
                        MISSING,
                    )],
                ),
            ],
        );
    }
}
