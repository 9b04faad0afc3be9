//! Invalid policies: refused at `kubectl apply` by `policies.palisade.dev` with every field at
//! fault, so kubectl and Argo CD show the error at once; and, when an invalid update got in
//! anyway (the webhook was down: failurePolicy Ignore, so it never blocks fixing a policy),
//! the backstop: `kubectl get secpol` and Ready say so, an Event is emitted, and the
//! previous, valid generation stays in force ([`invalid_update_is_reported_and_the_previous_generation_stays_in_force`],
//! run by the webhook-down test, which has the webhook stopped).

use palisade_e2e::Test;

use crate::{E2E, cell, secpol_row, wait_ready};

const NS: &str = "e2e-invalid";
const POLICY: &str = "e2e-invalid";

fn policy(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: {name}
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaces: [{namespace}]
{spec}"#
    )
}

fn generation(t: &Test, name: &str) -> i64 {
    let out = t
        .kubectl([
            "get",
            "secpol",
            name,
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .ok();
    out.stdout.trim().parse().expect("a generation")
}

/// The update that drops `privileged: Deny` and names a rule that does not exist
/// ("privilegd") in an exception with no owner, reason or expiry. The schema accepts it;
/// Palisade's own check does not.
const BROKEN: &str =
    "  exceptions:\n  - name: typo\n    rules: [privilegd]\n    namespaces: [legacy]\n";

#[test]
fn invalid_policies_are_refused_at_apply_with_every_field_at_fault() {
    let t = Test::new("invalid-policy");
    t.namespace(NS, &[]);
    t.apply("policy.yaml", &policy(POLICY, NS, "  privileged: Deny\n"));
    wait_ready(&t, POLICY, "True");
    let valid = generation(&t, POLICY);

    let file = t.write("policy-broken.yaml", &policy(POLICY, NS, BROKEN));
    let out = t.kubectl(["apply", "-f", &file]).failed();
    let lines = out.stderr_lines();
    assert!(
        lines[0].starts_with(r#"Error from server: error when applying patch:"#)
            || lines[0].starts_with("Error from server"),
        "{out}"
    );
    let text = out.stderr.clone();
    eprintln!("kubectl printed:\n{text}");
    assert!(
        text.contains(&format!(
            r#"admission webhook "policies.palisade.dev" denied the request: SecurityPolicy "{POLICY}" is invalid (4 problems):"#
        )),
        "{out}"
    );
    for line in [
        r#"- spec.exceptions[0].rules[0]: "privilegd" names no rule; rule ids are: "#,
        "- spec.exceptions[0].owner: required: who is accountable for this waiver (a team or a person)",
        "- spec.exceptions[0].reason: required: why this waiver exists",
        "- spec.exceptions[0].expires: required: when this waiver ends (RFC 3339, at most 180 days ahead)",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{out}");
    }
    // Nothing was written: the valid generation is the current one, still Ready.
    assert_eq!(generation(&t, POLICY), valid);
    let row = secpol_row(&t, POLICY);
    assert_eq!(cell(&row, "READY"), "True", "{row:?}");

    // A ScanPolicy too, on create.
    let scan = t.write(
        "scan-broken.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: ScanPolicy
metadata:
  name: e2e-invalid-scan
  labels:
    {E2E}
spec:
  match:
    namespaces: [{NS}]
  ignore:
  - id: CVE-2023-5363
    owner: team-shop
    reason: not reachable from the network
    expires: "2999-01-01T00:00:00Z"
"#
        ),
    );
    let out = t.kubectl(["apply", "-f", &scan]).failed();
    assert!(
        out.stderr.contains(
            r#"admission webhook "policies.palisade.dev" denied the request: ScanPolicy "e2e-invalid-scan" is invalid (1 problem):"#
        ) && out.stderr.contains(
            "- spec.ignore[0].expires: 2999-01-01T00:00:00Z is more than 180 days ahead (maxExceptionDays); set it no later than "
        ),
        "{out}"
    );
    let out = t
        .kubectl([
            "get",
            "scanpol",
            "e2e-invalid-scan",
            "--ignore-not-found",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(out.stdout.trim(), "", "{out}");
}

/// With the webhook stopped (failurePolicy Ignore for policies), an invalid update is
/// accepted by the API server; `before_restart` runs while it is down. Called by the
/// webhook-down test, which owns the stop and the start.
pub struct Backstop {
    name: String,
    namespace: String,
    valid: i64,
}

impl Backstop {
    /// Before the webhook stops: a valid policy, in force.
    pub fn prepare(t: &Test, name: &str, namespace: &str) -> Backstop {
        t.apply(
            &format!("{name}.yaml"),
            &policy(name, namespace, "  privileged: Deny\n"),
        );
        wait_ready(t, name, "True");
        t.wait_policy_in_force(name, namespace);
        Backstop {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            valid: generation(t, name),
        }
    }

    /// While the webhook is down: the invalid update goes through, since a webhook that is
    /// down must never block fixing a policy.
    pub fn break_it(&self, t: &Test) {
        let out = t.apply(
            &format!("{}-broken.yaml", self.name),
            &policy(&self.name, &self.namespace, BROKEN),
        );
        assert_eq!(
            out.stdout.trim(),
            format!("securitypolicy.palisade.dev/{} configured", self.name),
            "{out}"
        );
    }

    /// Once the webhook is back: the backstop reports it, and the valid generation is in force.
    pub fn check(&self, t: &Test) {
        invalid_update_is_reported_and_the_previous_generation_stays_in_force(t, self);
    }
}

fn invalid_update_is_reported_and_the_previous_generation_stays_in_force(t: &Test, b: &Backstop) {
    let (name, ns, valid) = (b.name.as_str(), b.namespace.as_str(), b.valid);
    let broken = generation(t, name);
    assert!(broken > valid, "{broken} > {valid}");

    let (reason, message) = wait_ready(t, name, "False");
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
    let row = secpol_row(t, name);
    assert_eq!(cell(&row, "READY"), "False", "{row:?}");

    // The Event a user finds with kubectl (core/v1 in `default` on servers before 1.22, where
    // events.k8s.io refuses cluster-scoped objects).
    let events = t.eventually("an InvalidPolicy Event about the policy", 60, || {
        let out = t.kubectl([
            "get",
            "events",
            "--all-namespaces",
            "--field-selector",
            &format!("involvedObject.name={name},reason=InvalidPolicy"),
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
  namespace: {ns}
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
    let lines = out.stderr_lines();
    assert_eq!(
        lines[0],
        r#"Error from server (Forbidden): error when creating "privileged-pod.yaml": admission webhook "pods.palisade.dev" denied the request: Pod privileged: 1 violation"#,
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!(
            r#"- SecurityPolicy/{name}: container "app": securityContext.privileged=true is not allowed; remove it or set false; "#
        )),
        "{out}"
    );
    assert_eq!(lines.len(), 2, "{out}");
    let out = t.kubectl(["get", "pods", "-n", ns, "-o", "name"]).ok();
    assert_eq!(out.stdout.trim(), "", "{out}");
}
