//! `windowsHostProcess` (baseline, v1.0+): no Windows HostProcess containers, on the pod or any
//! container.

use super::{Ctx, pod_finding};
use crate::{CheckId, Finding};

const FIX: &str = "remove it or set false";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let pod_host_process = ctx
        .pod_security_context()
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process);
    if pod_host_process == Some(true) {
        out.push(pod_finding(
            CheckId::WindowsHostProcess,
            "spec.securityContext.windowsOptions.hostProcess",
            "spec.securityContext.windowsOptions.hostProcess=true is not allowed".into(),
            FIX,
        ));
    }
    for c in ctx.containers() {
        let host_process = c
            .security_context
            .and_then(|sc| sc.windows_options.as_ref())
            .and_then(|w| w.host_process);
        if host_process == Some(true) {
            out.push(c.finding(
                CheckId::WindowsHostProcess,
                "securityContext.windowsOptions.hostProcess",
                "securityContext.windowsOptions.hostProcess=true is not allowed".into(),
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
        assert_table(
            CheckId::WindowsHostProcess,
            &[
                (
                    r#"{"spec":{"securityContext":{"windowsOptions":{"hostProcess":false}},
                        "containers":[{"name":"a","securityContext":{"windowsOptions":{"runAsUserName":"x"}}}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"securityContext":{"windowsOptions":{"hostProcess":true}},
                        "containers":[{"name":"a","securityContext":{"windowsOptions":{"hostProcess":true}}}]}}"#,
                    37,
                    &[
                        (
                            "spec.securityContext.windowsOptions.hostProcess",
                            "spec.securityContext.windowsOptions.hostProcess=true is not allowed",
                        ),
                        (
                            "spec.containers[0].securityContext.windowsOptions.hostProcess",
                            "securityContext.windowsOptions.hostProcess=true is not allowed",
                        ),
                    ],
                ),
            ],
        );
    }
}
