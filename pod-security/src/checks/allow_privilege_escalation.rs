//! `allowPrivilegeEscalation` (restricted, v1.8+): every container must set
//! `allowPrivilegeEscalation: false`. Windows pods are exempt from v1.25.

use super::Ctx;
use crate::{CheckId, Finding};

const FIX: &str = "set securityContext.allowPrivilegeEscalation: false";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.version.at_least(25) && ctx.is_windows() {
        return;
    }
    for c in ctx.containers() {
        let message = match c
            .security_context
            .and_then(|sc| sc.allow_privilege_escalation)
        {
            Some(false) => continue,
            Some(true) => "securityContext.allowPrivilegeEscalation=true is not allowed",
            None => "securityContext.allowPrivilegeEscalation must be set to false",
        };
        out.push(c.finding(
            CheckId::AllowPrivilegeEscalation,
            "securityContext.allowPrivilegeEscalation",
            message.into(),
            FIX,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    const MISSING: &str = "securityContext.allowPrivilegeEscalation must be set to false";

    #[test]
    fn table() {
        assert_table(
            CheckId::AllowPrivilegeEscalation,
            &[
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"allowPrivilegeEscalation":false}}]}}"#,
                    8,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a"},{"name":"b","securityContext":{"allowPrivilegeEscalation":true}}],
                        "initContainers":[{"name":"i","securityContext":{}}]}}"#,
                    37,
                    &[
                        (
                            "spec.containers[0].securityContext.allowPrivilegeEscalation",
                            MISSING,
                        ),
                        (
                            "spec.containers[1].securityContext.allowPrivilegeEscalation",
                            "securityContext.allowPrivilegeEscalation=true is not allowed",
                        ),
                        (
                            "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
                            MISSING,
                        ),
                    ],
                ),
                (r#"{"spec":{"containers":[{"name":"a"}]}}"#, 7, &[]),
                (
                    r#"{"spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#,
                    25,
                    &[],
                ),
                (
                    r#"{"spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#,
                    24,
                    &[(
                        "spec.containers[0].securityContext.allowPrivilegeEscalation",
                        MISSING,
                    )],
                ),
            ],
        );
    }
}
