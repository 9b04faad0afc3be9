//! `helm uninstall`, then the README's cleanup: no ValidatingWebhookConfiguration is left
//! (the operator made it a dependent of the chart's ClusterRole, so the garbage collector
//! removes it), nor the agent's DaemonSet and pods (owned the same way), and pods are
//! admitted in every namespace again: no deadlock.

use std::time::Duration;

use palisade_e2e::install::NAMESPACE;

use crate::{E2E_LABEL, WORKLOADS, create, eventually, installed, pod, serial};

#[test]
fn helm_uninstall_leaves_no_registration_and_pods_are_created_everywhere() {
    let _serial = serial();
    let r = installed(&[]);
    // The operator writes the agent's DaemonSet at run time; helm does not know it.
    let owners = eventually(
        "the operator has written the agent's DaemonSet",
        Duration::from_secs(60),
        || {
            let out = r.kubectl([
                "-n",
                NAMESPACE,
                "get",
                "daemonset",
                "palisade-agent",
                "-o",
                "jsonpath={range .metadata.ownerReferences[*]}{.kind}/{.name} {end}",
            ]);
            if out.success() {
                Ok(out.stdout.trim().to_string())
            } else {
                Err(out.to_string())
            }
        },
    );
    assert_eq!(
        owners, "ClusterRole/palisade-operator",
        "the DaemonSet's owner"
    );
    let out = r.uninstall();
    assert!(out.success(), "{out}");

    // The documented cleanup: wait for the registration to go.
    let out = r.kubectl([
        "wait",
        "--for=delete",
        "validatingwebhookconfiguration/palisade",
        "--timeout=60s",
    ]);
    // Already gone, kubectl says so with "no matching resources found" and exit 1.
    assert!(
        out.success() || out.stderr.contains("no matching resources found"),
        "{out}"
    );
    let left = r
        .kubectl(["get", "validatingwebhookconfigurations", "-o", "name"])
        .ok();
    assert!(
        !left.stdout.contains("palisade"),
        "a registration is left:\n{left}"
    );
    crate::wait_gone(
        r,
        "the certificate Secret goes with the release",
        &["-n", NAMESPACE, "get", "secret", "palisade-webhook-tls"],
    );
    crate::wait_gone(
        r,
        "the agent's DaemonSet goes with the release",
        &["-n", NAMESPACE, "get", "daemonset", "palisade-agent"],
    );
    crate::wait_gone(
        r,
        "and its pods",
        &[
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=palisade-agent",
        ],
    );

    // Even the privileged pod the policy would refuse: nothing judges any more.
    let out = create(r, &pod("after-uninstall", true), &[]);
    assert!(
        out.success(),
        "pods are admitted in {WORKLOADS} after the uninstall:\n{out}"
    );
    let other = "installed-e2e-other";
    r.kubectl_stdin(
        ["apply", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n  labels:\n    {E2E_LABEL}: \"true\"\n"),
    )
    .ok();
    let manifest = pod("elsewhere", false).replace(
        &format!("namespace: {WORKLOADS}"),
        &format!("namespace: {other}"),
    );
    eventually(
        "a pod is admitted in a new namespace",
        Duration::from_secs(60),
        || {
            let out = create(r, &manifest, &[]);
            if out.success() {
                Ok(())
            } else {
                Err(out.to_string())
            }
        },
    );
    r.kubectl(["delete", "namespace", other, "--wait=false"]);
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
