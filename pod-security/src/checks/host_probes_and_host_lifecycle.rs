//! `hostProbesAndHostLifecycle` (baseline, v1.34+): probes and lifecycle handlers must not set
//! `host`, which would let the kubelet connect to arbitrary addresses on the pod's behalf.

use k8s_openapi::api::core::v1::{HTTPGetAction, TCPSocketAction};

use super::{ContainerView, Ctx};
use crate::{CheckId, Finding};

fn check_handler(
    c: &ContainerView<'_>,
    at: &str,
    http: Option<&HTTPGetAction>,
    tcp: Option<&TCPSocketAction>,
    out: &mut Vec<Finding>,
) {
    let hosts = [
        ("httpGet", http.and_then(|h| h.host.as_deref())),
        ("tcpSocket", tcp.and_then(|t| t.host.as_deref())),
    ];
    for (kind, host) in hosts {
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            out.push(c.finding(
                CheckId::HostProbesAndHostLifecycle,
                &format!("{at}.{kind}.host"),
                format!("{at}.{kind}.host={host:?} is not allowed"),
                "remove host so that the kubelet targets the pod's own IP",
            ));
        }
    }
}

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for c in ctx.containers() {
        let probes = [
            ("livenessProbe", c.liveness_probe),
            ("readinessProbe", c.readiness_probe),
            ("startupProbe", c.startup_probe),
        ];
        for (at, probe) in probes {
            if let Some(p) = probe {
                check_handler(&c, at, p.http_get.as_ref(), p.tcp_socket.as_ref(), out);
            }
        }
        if let Some(lc) = c.lifecycle {
            let handlers = [
                ("lifecycle.postStart", lc.post_start.as_ref()),
                ("lifecycle.preStop", lc.pre_stop.as_ref()),
            ];
            for (at, handler) in handlers {
                if let Some(h) = handler {
                    check_handler(&c, at, h.http_get.as_ref(), h.tcp_socket.as_ref(), out);
                }
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
            CheckId::HostProbesAndHostLifecycle,
            &[
                (
                    r#"{"spec":{"containers":[{"name":"a",
                        "livenessProbe":{"httpGet":{"port":80,"host":""}},
                        "readinessProbe":{"tcpSocket":{"port":80}},
                        "lifecycle":{"preStop":{"httpGet":{"port":80}}}}]}}"#,
                    34,
                    &[],
                ),
                (
                    r#"{"spec":{"containers":[{"name":"a",
                        "startupProbe":{"tcpSocket":{"port":80,"host":"10.0.0.1"}}}],
                      "initContainers":[{"name":"i",
                        "lifecycle":{"postStart":{"httpGet":{"port":80,"host":"example.com"}},
                                     "preStop":{"tcpSocket":{"port":80,"host":"1.2.3.4"}}}}],
                      "ephemeralContainers":[{"name":"e",
                        "readinessProbe":{"httpGet":{"port":80,"host":"a"}},
                        "livenessProbe":{"httpGet":{"port":80,"host":"b"}}}]}}"#,
                    37,
                    &[
                        (
                            "spec.containers[0].startupProbe.tcpSocket.host",
                            "startupProbe.tcpSocket.host=\"10.0.0.1\" is not allowed",
                        ),
                        (
                            "spec.initContainers[0].lifecycle.postStart.httpGet.host",
                            "lifecycle.postStart.httpGet.host=\"example.com\" is not allowed",
                        ),
                        (
                            "spec.initContainers[0].lifecycle.preStop.tcpSocket.host",
                            "lifecycle.preStop.tcpSocket.host=\"1.2.3.4\" is not allowed",
                        ),
                        (
                            "spec.ephemeralContainers[0].livenessProbe.httpGet.host",
                            "livenessProbe.httpGet.host=\"b\" is not allowed",
                        ),
                        (
                            "spec.ephemeralContainers[0].readinessProbe.httpGet.host",
                            "readinessProbe.httpGet.host=\"a\" is not allowed",
                        ),
                    ],
                ),
                // The check starts at v1.34.
                (
                    r#"{"spec":{"containers":[{"name":"a","livenessProbe":{"httpGet":{"port":80,"host":"x"}}}]}}"#,
                    33,
                    &[],
                ),
            ],
        );
    }
}
