//! `hostPorts` (baseline, v1.0+): no container port may set a non-zero `hostPort`.

use super::Ctx;
use crate::{CheckId, Finding};

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for c in ctx.containers() {
        for (j, p) in c.ports.iter().enumerate() {
            if let Some(port) = p.host_port.filter(|&p| p != 0) {
                out.push(c.finding(
                    CheckId::HostPorts,
                    &format!("ports[{j}].hostPort"),
                    format!("hostPort {port} is not allowed"),
                    "remove hostPort and expose the port through a Service instead",
                ));
            }
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
            CheckId::HostPorts,
            &[
                (
                    r#"{"spec":{"containers":[{"name":"a","ports":[{"containerPort":80},{"containerPort":81,"hostPort":0}]}]}}"#,
                    0,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a","ports":[{"containerPort":80},{"containerPort":8080,"hostPort":8080}]}],
                        "ephemeralContainers":[{"name":"e","ports":[{"containerPort":9,"hostPort":9090}]}]}}"#,
                    37,
                    &[
                        (
                            "spec.containers[0].ports[1].hostPort",
                            "hostPort 8080 is not allowed",
                        ),
                        (
                            "spec.ephemeralContainers[0].ports[0].hostPort",
                            "hostPort 9090 is not allowed",
                        ),
                    ],
                ),
            ],
        );
    }
}
