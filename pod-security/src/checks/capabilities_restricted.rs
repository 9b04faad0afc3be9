//! `capabilities_restricted` (restricted, v1.22+): containers must drop `ALL` and may add only
//! `NET_BIND_SERVICE`. Windows pods are exempt from v1.25. Replaces `capabilities_baseline`.

use super::{Ctx, quote_distinct};
use crate::{CheckId, Finding};

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.version.at_least(25) && ctx.is_windows() {
        return;
    }
    for c in ctx.containers() {
        let caps = c.security_context.and_then(|sc| sc.capabilities.as_ref());
        let drop = caps.and_then(|c| c.drop.as_deref()).unwrap_or_default();
        if !drop.iter().any(|d| d == "ALL") {
            out.push(c.finding(
                CheckId::CapabilitiesRestricted,
                "securityContext.capabilities.drop",
                "securityContext.capabilities.drop must include \"ALL\"".into(),
                "add \"ALL\" to securityContext.capabilities.drop",
            ));
        }
        let add = caps.and_then(|c| c.add.as_deref()).unwrap_or_default();
        let bad = |cap: &&String| cap.as_str() != "NET_BIND_SERVICE";
        if add.iter().any(|cap| bad(&cap)) {
            let listed = quote_distinct(add.iter().filter(bad).map(String::as_str));
            out.push(c.finding(
                CheckId::CapabilitiesRestricted,
                "securityContext.capabilities.add",
                format!(
                    "securityContext.capabilities.add includes {listed}, which the restricted level does not allow"
                ),
                "remove the capability from the list; only NET_BIND_SERVICE may be added",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_table;
    use crate::CheckId;

    const DROP_MSG: &str = "securityContext.capabilities.drop must include \"ALL\"";

    #[test]
    fn table() {
        assert_table(
            CheckId::CapabilitiesRestricted,
            &[
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"drop":["NET_RAW","ALL"],"add":["NET_BIND_SERVICE"]}}}]}}"#,
                    22,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a"},{"name":"b","securityContext":{"capabilities":{"drop":["all"]}}}]}}"#,
                    37,
                    &[
                        (
                            "spec.containers[0].securityContext.capabilities.drop",
                            DROP_MSG,
                        ),
                        (
                            "spec.containers[1].securityContext.capabilities.drop",
                            DROP_MSG,
                        ),
                    ],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"drop":["ALL"],"add":["CHOWN","NET_BIND_SERVICE"]}}}]}}"#,
                    30,
                    &[(
                        "spec.containers[0].securityContext.capabilities.add",
                        "securityContext.capabilities.add includes \"CHOWN\", which the restricted level does not allow",
                    )],
                ),
                // Windows pods are exempt from v1.25, not before.
                (
                    r#"{"spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#,
                    25,
                    &[],
                ),
                (
                    r#"{"spec":{"os":{"name":"windows"},"containers":[{"name":"a"}]}}"#,
                    24,
                    &[(
                        "spec.containers[0].securityContext.capabilities.drop",
                        DROP_MSG,
                    )],
                ),
                (
                    r#"{"spec":{"os":{"name":"linux"},"containers":[{"name":"a"}]}}"#,
                    37,
                    &[(
                        "spec.containers[0].securityContext.capabilities.drop",
                        DROP_MSG,
                    )],
                ),
            ],
        );
    }
}
