//! Warn mode: the object is created and kubectl prints the violations as warnings.

use palisade_e2e::Test;

use crate::{E2E, sp_line};

const NS: &str = "e2e-warn";

#[test]
fn warn_mode_admits_and_kubectl_prints_warnings() {
    let t = Test::new("warn");
    t.namespace(NS, &[]);
    t.apply(
        "policy.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: e2e-warn
  labels:
    {E2E}
spec:
  mode: Warn
  match:
    namespaces: [{NS}]
  podSecurity:
    level: baseline
"#
        ),
    );
    t.wait_policy_in_force("e2e-warn", NS);

    let file = t.write(
        "noisy-pod.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: noisy
  namespace: {NS}
  labels:
    {E2E}
spec:
  hostNetwork: true
  containers:
  - name: app
    image: registry.example.com/tools/netshoot:0.13
    securityContext:
      privileged: true
"#
        ),
    );
    let out = t.kubectl(["apply", "-f", &file]).ok();
    assert_eq!(out.stdout.trim(), "pod/noisy created", "{out}");
    assert_eq!(
        out.stderr_lines(),
        [
            format!(
                "Warning: {}",
                sp_line(
                    "e2e-warn",
                    r#"container "app": securityContext.privileged=true is not allowed; remove it or set false"#,
                    "podSecurity.privileged",
                    "spec.containers[0].securityContext.privileged",
                )
            ),
            format!(
                "Warning: {}",
                sp_line(
                    "e2e-warn",
                    "spec.hostNetwork=true is not allowed; remove it or set false",
                    "podSecurity.hostNamespaces",
                    "spec.hostNetwork",
                )
            ),
        ],
        "{out}"
    );
    let out = t
        .kubectl([
            "get",
            "pod",
            "noisy",
            "-n",
            NS,
            "-o",
            "jsonpath={.metadata.name}",
        ])
        .ok();
    assert_eq!(out.stdout, "noisy");

    // A workload: warned at its own apply, created all the same.
    let file = t.write(
        "noisy-deployment.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: noisy
  namespace: {NS}
  labels:
    {E2E}
spec:
  selector:
    matchLabels: {{app: noisy}}
  template:
    metadata:
      labels: {{app: noisy}}
    spec:
      containers:
      - name: app
        image: registry.example.com/tools/netshoot:0.13
        securityContext:
          capabilities:
            add: [SYS_ADMIN]
"#
        ),
    );
    let out = t.kubectl(["apply", "-f", &file]).ok();
    assert_eq!(out.stdout.trim(), "deployment.apps/noisy created", "{out}");
    assert_eq!(
        out.warnings(),
        [format!(
            "Warning: {}",
            sp_line(
                "e2e-warn",
                r#"container "app": securityContext.capabilities.add includes "SYS_ADMIN", which the baseline level does not allow; remove the capability from the list or use one of AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT"#,
                "podSecurity.capabilities_baseline",
                "spec.template.spec.containers[0].securityContext.capabilities.add",
            )
        )],
        "{out}"
    );
}
