//! `webhook.hostNetwork`: for clusters whose control plane cannot reach pod IPs (EKS with a
//! Calico or Cilium overlay), the webhook listens on the node's own network at the
//! configured port, and the API server still calls it through its Service.

use std::net::{Ipv4Addr, TcpListener};

use palisade_e2e::install::{NAMESPACE, WEBHOOK_SERVICE};

use crate::{E2E_LABEL, WORKLOADS, create, denied, installed, pod, serial};

/// A port nothing on this machine (the node) listens on.
fn free_port() -> String {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port().to_string())
        .expect("a free port")
}

#[test]
fn host_network_webhook_listens_on_the_node_and_is_called_through_its_service() {
    let _serial = serial();
    let (port, admin) = (free_port(), free_port());
    // One node here, and two host-network replicas would need the same port on it.
    let r = installed(&[
        ("webhook.hostNetwork", "true"),
        ("webhook.port", &port),
        ("webhook.adminPort", &admin),
        ("webhook.replicas", "1"),
    ]);

    let spec = r
        .kubectl([
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=webhook",
            "-o",
            r#"jsonpath={range .items[?(@.status.phase=="Running")]}{.spec.hostNetwork} {.status.podIP} {.status.hostIP} {.spec.dnsPolicy}{"\n"}{end}"#,
        ])
        .ok();
    let rows: Vec<Vec<&str>> = spec
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 1, "one webhook pod:\n{}", r.pods());
    let row = &rows[0];
    assert_eq!(row[0], "true", "hostNetwork: {spec}");
    assert_eq!(row[1], row[2], "the pod's IP is its node's: {spec}");
    assert_eq!(row[3], "ClusterFirstWithHostNet", "{spec}");

    // The Service leads to the node's address at the configured port.
    let endpoints = r
        .kubectl([
            "-n",
            NAMESPACE,
            "get",
            "endpoints",
            WEBHOOK_SERVICE,
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}:{.subsets[*].ports[?(@.name==\"https\")].port}",
        ])
        .ok();
    assert_eq!(
        endpoints.stdout,
        format!("{}:{port}", row[2]),
        "{endpoints}"
    );

    // installed() waited for a refusal already; once more, and an admission.
    let out = create(r, &pod("host-network", true), &[]);
    assert!(denied(&out), "{out}");
    let out = create(r, &pod("host-network-ok", false), &[]);
    assert!(out.success(), "{out}");
    r.kubectl([
        "-n",
        WORKLOADS,
        "delete",
        "pods",
        "-l",
        &format!("{E2E_LABEL}=true"),
        "--wait=false",
    ]);
}
