//! Ephemeral containers (`kubectl debug`): on Kubernetes ≤ 1.21 the sub-resource carries an
//! `EphemeralContainers` object, from 1.22 on a whole Pod; the webhook judges both.
//!
//! Up to 1.21 the API server's own validation forbids any `securityContext` on an ephemeral
//! container ("cannot be set for an Ephemeral Container"), so a privileged debug container
//! never reaches a webhook there; from 1.22 on the webhook is what refuses it. On every
//! version the webhook judges the rest of the container, e.g. where its image comes from.
//!
//! `kubectl debug` of kubectl 1.32 fails against a 1.20 server after its request, so the
//! test sends the sub-resource request itself, as `kubectl debug` would.

use palisade_e2e::Test;
use serde_json::{Value, json};

use crate::E2E;

const NS: &str = "e2e-ephemeral";
const TRUSTED_IMAGE: &str = "registry.example.com/tools/netshoot:0.13";

fn debug_container(name: &str, image: &str, privileged: bool) -> Value {
    let mut container = json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePolicy": "File",
        "targetContainerName": "app",
        "stdin": true,
        "tty": true,
    });
    if privileged {
        container["securityContext"] = json!({"privileged": true});
    }
    container
}

/// The body for PUT pods/target/ephemeralcontainers adding `container`, in the form the
/// server speaks.
fn body(t: &Test, container: Value) -> String {
    let out = t
        .kubectl(["get", "pod", "target", "-n", NS, "-o", "json"])
        .ok();
    let mut pod: Value = serde_json::from_str(&out.stdout).expect("pod JSON");
    let mut list = pod["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.push(container);
    if t.env.server_minor < 22 {
        json!({
            "apiVersion": "v1",
            "kind": "EphemeralContainers",
            "metadata": {
                "name": "target",
                "namespace": NS,
                "resourceVersion": pod["metadata"]["resourceVersion"],
            },
            "ephemeralContainers": list,
        })
        .to_string()
    } else {
        pod["spec"]["ephemeralContainers"] = Value::Array(list);
        pod.to_string()
    }
}

#[test]
fn debug_containers_are_judged() {
    let t = Test::new("ephemeral");
    t.namespace(NS, &[]);
    t.apply(
        "policy.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: e2e-ephemeral
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaces: [{NS}]
  privileged: Deny
  images:
    allowedRegistries: [registry.example.com]
"#
        ),
    );
    t.wait_policy_in_force("e2e-ephemeral", NS);
    t.apply(
        "pod.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: target
  namespace: {NS}
  labels:
    {E2E}
spec:
  # Left unscheduled: a kubelet's status writes would race the resourceVersion the
  # ephemeralcontainers updates below carry.
  schedulerName: palisade-e2e-unscheduled
  containers:
  - name: app
    image: {TRUSTED_IMAGE}
"#
        ),
    );
    let path = format!("/api/v1/namespaces/{NS}/pods/target/ephemeralcontainers");

    let file = t.write(
        "debug-privileged.json",
        &body(&t, debug_container("debugger", TRUSTED_IMAGE, true)),
    );
    let out = t.kubectl(["replace", "--raw", &path, "-f", &file]).failed();
    if t.env.server_minor < 22 {
        assert_eq!(
            out.stderr_lines(),
            [
                r#"The Pod "target" is invalid: spec.ephemeralContainers[0].securityContext: Forbidden: cannot be set for an Ephemeral Container"#
            ],
            "{out}"
        );
    } else {
        let lines = out.stderr_lines();
        assert!(
            lines.first().is_some_and(|l| l.starts_with(
                r#"Error from server (Forbidden): admission webhook "pods.palisade.dev" denied the request: "#
            )) && lines.iter().any(|l| l.starts_with(
                r#"- SecurityPolicy/e2e-ephemeral: container "debugger": securityContext.privileged=true is not allowed; remove it or set false; "#
            )),
            "{out}"
        );
    }

    // An image from a registry the policy does not trust: refused by the webhook.
    let file = t.write(
        "debug-untrusted.json",
        &body(
            &t,
            debug_container("debugger", "docker.io/nicolaka/netshoot:v0.13", false),
        ),
    );
    let out = t.kubectl(["replace", "--raw", &path, "-f", &file]).failed();
    let lines = out.stderr_lines();
    assert_eq!(
        lines[0],
        // The object named is the one the API server sent: the 1.20 form, or the Pod.
        format!(
            r#"Error from server (Forbidden): admission webhook "pods.palisade.dev" denied the request: {} target: 1 violation"#,
            if t.env.server_minor < 22 {
                "EphemeralContainers"
            } else {
                "Pod"
            }
        ),
        "{out}"
    );
    assert!(
        lines[1].starts_with(
            r#"- SecurityPolicy/e2e-ephemeral: ephemeralContainer "debugger": image "docker.io/nicolaka/netshoot:v0.13" (docker.io/nicolaka/netshoot:v0.13) is not from an allowed registry; use an image from registry.example.com; to waive it, "#
        ) && lines[1].contains("(rule images.allowedRegistries at "),
        "{out}"
    );
    assert_eq!(lines.len(), 2, "{out}");

    // A debug container the policy allows is added.
    let file = t.write(
        "debug-trusted.json",
        &body(&t, debug_container("debugger", TRUSTED_IMAGE, false)),
    );
    t.kubectl(["replace", "--raw", &path, "-f", &file]).ok();
    let out = t
        .kubectl([
            "get",
            "pod",
            "target",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.ephemeralContainers[*].name}",
        ])
        .ok();
    assert_eq!(out.stdout, "debugger", "{out}");
}
