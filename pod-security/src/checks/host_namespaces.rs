//! `hostNamespaces` (baseline, v1.0+): `hostNetwork`, `hostPID` and `hostIPC` must be unset or false.

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let spec = ctx.spec;
    for (name, value) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        if value == Some(true) {
            out.push(pod_finding(
                CheckId::HostNamespaces,
                format!("spec.{name}"),
                format!("spec.{name}=true is not allowed"),
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
            CheckId::HostNamespaces,
            &[
                (
                    r#"{"spec":{"containers":[],"hostNetwork":false,"hostPID":false}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[],"hostNetwork":true,"hostIPC":true}}"#,
                    37,
                    &[
                        ("spec.hostNetwork", "spec.hostNetwork=true is not allowed"),
                        ("spec.hostIPC", "spec.hostIPC=true is not allowed"),
                    ],
                ),
                (
                    r#"{"spec":{"containers":[],"hostPID":true}}"#,
                    10,
                    &[("spec.hostPID", "spec.hostPID=true is not allowed")],
                ),
            ],
        );
    }
}
