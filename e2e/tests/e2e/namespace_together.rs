//! A labelled Namespace and a privileged Pod applied together (`kubectl apply -f dir/`, an
//! Argo CD sync): the policy that selects the namespace by label refuses the Pod, whether
//! the webhook's watch has delivered the namespace yet or the webhook reads it on a miss.
//! Never judged as if the namespace had no labels.

use palisade_e2e::Test;

use crate::{E2E, sp_line};

const POLICY: &str = "e2e-together";
const LABEL: &str = "e2e.palisade.dev/tier";

#[test]
fn a_labelled_namespace_and_a_privileged_pod_applied_together_are_refused() {
    let t = Test::new("namespace-together");
    t.apply(
        "policy.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: {POLICY}
  labels:
    {E2E}
spec:
  mode: Enforce
  match:
    namespaceSelector:
      matchLabels: {{{LABEL}: restricted}}
  privileged: Deny
"#
        ),
    );
    // In force before the namespace exists: a policy-only namespace to probe it.
    t.namespace("e2e-together-probe", &[(LABEL, "restricted")]);
    t.wait_policy_in_force(POLICY, "e2e-together-probe");

    // Several rounds, each with a namespace the webhook has never seen: the Pod arrives
    // right behind its Namespace, in one kubectl call.
    for round in 0..3 {
        let ns = format!("e2e-together-{round}");
        t.kubectl([
            "delete",
            "namespace",
            &ns,
            "--ignore-not-found",
            "--wait=true",
        ]);
        let file = t.write(
            &format!("together-{round}.yaml"),
            &format!(
                r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    {LABEL}: restricted
    {E2E}
---
apiVersion: v1
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
        // The API server refuses a Pod before any webhook while the namespace's default
        // ServiceAccount does not exist yet; that is no verdict, so the same file is applied
        // again (the namespace is still seconds old).
        let mut out = t.kubectl(["apply", "-f", &file]);
        assert!(
            out.stdout.contains(&format!("namespace/{ns} created")),
            "round {round}: {out}"
        );
        for _ in 0..20 {
            if !out.stderr.contains("service account") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            out = t.kubectl(["apply", "-f", &file]);
        }
        assert!(
            !out.success(),
            "round {round}: the privileged Pod was admitted: {out}"
        );
        eprintln!(
            "round {round}: kubectl printed:\n{}{}",
            out.stdout, out.stderr
        );
        let lines = out.stderr_lines();
        let expected = format!(
            "- {}",
            sp_line(
                POLICY,
                r#"container "app": securityContext.privileged=true is not allowed; remove it or set false"#,
                "privileged",
                "spec.containers[0].securityContext.privileged",
            )
        );
        assert!(
            lines.iter().any(|l| *l == expected)
                || lines
                    .iter()
                    .any(|l| l.contains("could not be read from the API server in time")),
            "round {round}: neither the violation nor a retry request:\n{out}"
        );
        let pods = t.kubectl(["get", "pods", "-n", &ns, "-o", "name"]).ok();
        assert_eq!(pods.stdout.trim(), "", "round {round}: {pods}");
        t.kubectl(["delete", "namespace", &ns, "--wait=false"]);
    }
}
