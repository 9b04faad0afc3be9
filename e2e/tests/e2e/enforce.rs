//! Enforce mode: `kubectl apply` of a violating pod or workload is refused, with the
//! webhook's message exactly as kubectl prints it.

use palisade_e2e::Test;

use crate::{E2E, sp_line};

const NS: &str = "e2e-enforce";

fn policy() -> String {
    format!(
        r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: e2e-enforce
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaces: [{NS}]
  privileged: Deny
  runAsNonRoot: true
  capabilities:
    allowed: [NET_BIND_SERVICE]
"#
    )
}

fn pod(name: &str, security_context: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {NS}
  labels:
    {E2E}
spec:
  containers:
  - name: app
    image: registry.example.com/shop/web:1.4.2
    securityContext:
{security_context}"#
    )
}

#[test]
fn enforce_refuses_privileged_root_and_unapproved_capabilities() {
    let t = Test::new("enforce");
    t.namespace(NS, &[]);
    t.apply("policy.yaml", &policy());
    t.wait_policy_in_force("e2e-enforce", NS);

    // What the policy allows is admitted: the refusals below are the policy's doing.
    let good = t.write(
        "good-pod.yaml",
        &pod(
            "good",
            "      runAsNonRoot: true\n      capabilities:\n        add: [NET_BIND_SERVICE]\n",
        ),
    );
    let out = t.kubectl(["apply", "-f", &good]).ok();
    assert_eq!(out.stdout.trim(), "pod/good created", "{out}");

    let file = t.write(
        "privileged-pod.yaml",
        &pod(
            "privileged",
            "      runAsNonRoot: true\n      privileged: true\n",
        ),
    );
    let out = t.kubectl(["apply", "-f", &file]).failed();
    assert_eq!(
        out.stderr_lines(),
        [
            r#"Error from server (Forbidden): error when creating "privileged-pod.yaml": admission webhook "pods.palisade.dev" denied the request: Pod privileged: 1 violation"#,
            &format!(
                "- {}",
                sp_line(
                    "e2e-enforce",
                    r#"container "app": securityContext.privileged=true is not allowed; remove it or set false"#,
                    "privileged",
                    "spec.containers[0].securityContext.privileged",
                )
            ),
        ],
        "{out}"
    );

    let file = t.write(
        "capability-pod.yaml",
        &pod(
            "net-admin",
            "      runAsNonRoot: true\n      capabilities:\n        add: [NET_BIND_SERVICE, NET_ADMIN]\n",
        ),
    );
    let out = t.kubectl(["apply", "-f", &file]).failed();
    assert_eq!(
        out.stderr_lines(),
        [
            r#"Error from server (Forbidden): error when creating "capability-pod.yaml": admission webhook "pods.palisade.dev" denied the request: Pod net-admin: 1 violation"#,
            &format!(
                "- {}",
                sp_line(
                    "e2e-enforce",
                    r#"container "app": securityContext.capabilities.add includes "NET_ADMIN", which this policy does not approve; remove it; this policy approves only: NET_BIND_SERVICE"#,
                    "capabilities.allowed",
                    "spec.containers[0].securityContext.capabilities.add[1]",
                )
            ),
        ],
        "{out}"
    );

    // A Deployment is judged at its own apply, on its pod template.
    let file = t.write(
        "root-deployment.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-root
  namespace: {NS}
  labels:
    {E2E}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web-root}}
  template:
    metadata:
      labels: {{app: web-root}}
    spec:
      securityContext:
        runAsUser: 0
      containers:
      - name: web
        image: registry.example.com/shop/web:1.4.2
      - name: sidecar
        image: registry.example.com/shop/proxy:2.0.1
        securityContext:
          runAsNonRoot: true
"#
        ),
    );
    let out = t.kubectl(["apply", "-f", &file]).failed();
    assert_eq!(
        out.stderr_lines(),
        [
            r#"Error from server (Forbidden): error when creating "root-deployment.yaml": admission webhook "workloads.palisade.dev" denied the request: Deployment web-root: 3 violations"#,
            // Field paths are those of the Deployment: under spec.template.
            &format!(
                "- {}",
                sp_line(
                    "e2e-enforce",
                    r#"container "web": securityContext.runAsNonRoot must be true (on the container or the pod); set securityContext.runAsNonRoot: true and run as a non-zero UID"#,
                    "runAsNonRoot",
                    "spec.template.spec.containers[0].securityContext.runAsNonRoot",
                )
            ),
            &format!(
                "- {}",
                sp_line(
                    "e2e-enforce",
                    r#"container "web": runAsUser=0 runs the container as root; set runAsUser to a non-zero UID"#,
                    "runAsNonRoot",
                    "spec.template.spec.securityContext.runAsUser",
                )
            ),
            &format!(
                "- {}",
                sp_line(
                    "e2e-enforce",
                    r#"container "sidecar": runAsUser=0 runs the container as root; set runAsUser to a non-zero UID"#,
                    "runAsNonRoot",
                    "spec.template.spec.securityContext.runAsUser",
                )
            ),
        ],
        "{out}"
    );

    // Nothing that was refused exists.
    let out = t
        .kubectl([
            "get",
            "pods,deployments,replicasets",
            "-n",
            NS,
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(out.stdout.trim(), "pod/good", "{out}");
}
