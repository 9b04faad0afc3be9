//! A user who may edit namespace labels cannot escape policy with `palisade.dev/exempt`.
//!
//! On 1.20 (label mode) the operator registers `namespaces.palisade.dev`, which refuses the
//! label outside the excluded namespaces; on newer servers the webhooks select namespaces by
//! `kubernetes.io/metadata.name`, so the label is harmless. Either way the pod is refused.

use palisade_e2e::{EXEMPT_LABEL, PALISADE_NAMESPACE, Test};

use crate::E2E;

const NS: &str = "e2e-exempt-label";

#[test]
fn the_exempt_label_does_not_let_a_namespace_escape_policy() {
    let t = Test::new("exempt-label");
    t.namespace(NS, &[]);
    t.apply(
        "policy.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: e2e-exempt-label
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaces: [{NS}]
  privileged: Deny
"#
        ),
    );
    t.wait_policy_in_force("e2e-exempt-label", NS);

    let label = format!("{EXEMPT_LABEL}=true");
    let out = t.kubectl(["label", "namespace", NS, &label]);
    if t.env.server_minor <= 20 {
        let out = out.failed();
        let expected = format!(
            r#"Error from server (Forbidden): admission webhook "namespaces.palisade.dev" denied the request: namespace "{NS}" may not be given the label {EXEMPT_LABEL}=true."#
        );
        assert!(
            out.stderr.trim_start().starts_with(&expected),
            "expected {expected:?}\n{out}"
        );
        assert!(out.stderr.contains("--exclude-namespace"), "{out}");

        // Creating a namespace that already carries it is refused the same way.
        let fresh = t.write(
            "labelled-namespace.yaml",
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}-new\n  labels:\n    {E2E}\n    {EXEMPT_LABEL}: \"true\"\n"
            ),
        );
        let out = t.kubectl(["create", "-f", &fresh]).failed();
        assert!(
            out.stderr
                .contains(r#"admission webhook "namespaces.palisade.dev" denied the request"#),
            "{out}"
        );

        // The namespaces Palisade excludes keep their label.
        t.kubectl([
            "label",
            "namespace",
            PALISADE_NAMESPACE,
            &label,
            "--overwrite",
        ])
        .ok();
    } else {
        out.ok();
    }

    // Whatever the labels say, the pod is judged.
    let pod = t.write(
        "privileged-pod.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: escape
  namespace: {NS}
  labels:
    {E2E}
spec:
  containers:
  - name: app
    image: registry.example.com/app:1.0
    securityContext:
      privileged: true
"#
        ),
    );
    let out = t.kubectl(["apply", "-f", &pod]).failed();
    assert!(
        out.stderr.contains(
            r#"admission webhook "pods.palisade.dev" denied the request: Pod escape: 1 violation"#
        ),
        "{out}"
    );
}
