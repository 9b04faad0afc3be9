//! `privileged` (baseline, v1.0+): containers must not set `securityContext.privileged=true`.

use super::Ctx;
use crate::{CheckId, Finding};

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for c in ctx.containers() {
        if c.security_context.and_then(|sc| sc.privileged) == Some(true) {
            out.push(c.finding(
                CheckId::Privileged,
                "securityContext.privileged",
                "securityContext.privileged=true is not allowed".into(),
                "remove it or set false",
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
            CheckId::Privileged,
            &[
                (r#"{"spec":{"containers":[{"name":"a"}]}}"#, 0, &[]),
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"privileged":false}}]}}"#,
                    37,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a"}],
                        "initContainers":[{"name":"i","securityContext":{"privileged":true}}]}}"#,
                    0,
                    &[(
                        "spec.initContainers[0].securityContext.privileged",
                        "securityContext.privileged=true is not allowed",
                    )],
                ),
            ],
        );
    }
}
