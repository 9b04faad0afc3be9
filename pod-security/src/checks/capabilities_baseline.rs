//! `capabilities_baseline` (baseline, v1.0+): `capabilities.add` may only name capabilities
//! from the container runtime's default set. At restricted, `capabilities_restricted`
//! replaces it from v1.22.

use super::{Ctx, quote_distinct};
use crate::{CheckId, Finding};

/// The runtime default capabilities, which baseline lets a container add.
pub(super) const ALLOWED: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for c in ctx.containers() {
        let add = c
            .security_context
            .and_then(|sc| sc.capabilities.as_ref())
            .and_then(|caps| caps.add.as_deref())
            .unwrap_or_default();
        let bad = |cap: &&String| !ALLOWED.contains(&cap.as_str());
        if add.iter().any(|cap| bad(&cap)) {
            let listed = quote_distinct(add.iter().filter(bad).map(String::as_str));
            out.push(c.finding(
                CheckId::CapabilitiesBaseline,
                "securityContext.capabilities.add",
                format!(
                    "securityContext.capabilities.add includes {listed}, which the baseline level does not allow"
                ),
                format!(
                    "remove the capability from the list or use one of {}",
                    ALLOWED.join(", ")
                ),
            ));
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
            CheckId::CapabilitiesBaseline,
            &[
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"add":["CHOWN","NET_BIND_SERVICE"],"drop":["ALL"]}}}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"add":["SYS_ADMIN","CHOWN","NET_RAW","SYS_ADMIN"]}}}]}}"#,
                    37,
                    &[(
                        "spec.containers[0].securityContext.capabilities.add",
                        "securityContext.capabilities.add includes \"SYS_ADMIN\", \"NET_RAW\", which the baseline level does not allow",
                    )],
                ),
                (
                    // Case matters upstream: "chown" is not "CHOWN".
                    r#"{"spec":{"containers":[{"name":"a"}],"initContainers":[{"name":"i","securityContext":{"capabilities":{"add":["chown"]}}}]}}"#,
                    10,
                    &[(
                        "spec.initContainers[0].securityContext.capabilities.add",
                        "securityContext.capabilities.add includes \"chown\", which the baseline level does not allow",
                    )],
                ),
            ],
        );
    }

    #[test]
    fn fix_names_the_allowed_set() {
        let got = run(
            CheckId::CapabilitiesBaseline,
            37,
            r#"{"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"add":["SYS_ADMIN"]}}}]}}"#,
        );
        assert!(
            got[0].fix.starts_with(
                "remove the capability from the list or use one of AUDIT_WRITE, CHOWN,"
            )
        );
        assert_eq!(
            got[0].container.as_ref().map(|c| c.name.as_str()),
            Some("a")
        );
    }
}
