//! An update the CRD schema accepts but the operator finds invalid: the policy says so in
//! `kubectl get secpol` and its Ready condition, an Event is emitted, and the previous,
//! valid generation stays in force.

use palisade_e2e::Test;

use crate::{E2E, cell, secpol_row, wait_ready};

const NS: &str = "e2e-invalid";
const POLICY: &str = "e2e-invalid";

fn policy(spec: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: {POLICY}
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaces: [{NS}]
{spec}"#
    )
}

fn generation(t: &Test) -> i64 {
    let out = t
        .kubectl([
            "get",
            "secpol",
            POLICY,
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .ok();
    out.stdout.trim().parse().expect("a generation")
}

#[test]
fn invalid_update_is_reported_and_the_previous_generation_stays_in_force() {
    let t = Test::new("invalid-policy");
    t.namespace(NS, &[]);
    t.apply("policy.yaml", &policy("  privileged: Deny\n"));
    wait_ready(&t, POLICY, "True");
    t.wait_policy_in_force(POLICY, NS);
    let valid = generation(&t);

    // The update drops `privileged: Deny` and names a rule that does not exist ("privilegd").
    // The schema lets rule names be any string; the operator checks them.
    let out = t.apply(
        "policy-broken.yaml",
        &policy(
            "  exceptions:\n  - name: typo\n    rules: [privilegd]\n    namespaces: [legacy]\n",
        ),
    );
    assert_eq!(
        out.stdout.trim(),
        format!("securitypolicy.palisade.dev/{POLICY} configured"),
        "{out}"
    );
    let broken = generation(&t);
    assert!(broken > valid, "{broken} > {valid}");

    let (reason, message) = wait_ready(&t, POLICY, "False");
    assert_eq!(reason, "Invalid", "{message}");
    assert!(
        message.contains("spec.exceptions[0].rules[0]"),
        "names the field: {message}"
    );
    assert!(
        message.contains(&format!(
            "generation {broken} is invalid; generation {valid} stays in force"
        )),
        "{message}"
    );
    let row = secpol_row(&t, POLICY);
    assert_eq!(cell(&row, "READY"), "False", "{row:?}");

    // The Event a user finds with kubectl (core/v1 in `default` on servers before 1.22, where
    // events.k8s.io refuses cluster-scoped objects).
    let events = t.eventually("an InvalidPolicy Event about the policy", 60, || {
        let out = t.kubectl([
            "get",
            "events",
            "--all-namespaces",
            "--field-selector",
            &format!("involvedObject.name={POLICY},reason=InvalidPolicy"),
            "-o",
            "jsonpath={range .items[*]}{.type} {.message}{\"\\n\"}{end}",
        ]);
        if out.success() && !out.stdout.trim().is_empty() {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    });
    assert!(
        events
            .lines()
            .any(|l| l.starts_with("Warning ") && l.contains("spec.exceptions[0].rules[0]")),
        "{events}"
    );

    // The previous generation still refuses a privileged pod, though the broken one would
    // not mention privileged at all.
    let file = t.write(
        "privileged-pod.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: privileged
  namespace: {NS}
  labels:
    {E2E}
spec:
  containers:
  - name: app
    image: registry.example.com/shop/web:1.4.2
    securityContext:
      privileged: true
"#
        ),
    );
    let out = t.kubectl(["apply", "-f", &file]).failed();
    assert_eq!(
        out.stderr_lines(),
        [
            r#"Error from server (Forbidden): error when creating "privileged-pod.yaml": admission webhook "pods.palisade.dev" denied the request: Pod privileged: 1 violation"#,
            &format!(
                r#"- SecurityPolicy/{POLICY}: container "app": securityContext.privileged=true is not allowed; remove it or set false"#
            ),
        ],
        "{out}"
    );
    let out = t.kubectl(["get", "pods", "-n", NS, "-o", "name"]).ok();
    assert_eq!(out.stdout.trim(), "", "{out}");
}
