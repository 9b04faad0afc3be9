//! Pods the controller-manager creates are judged too: a Deployment admitted before the
//! policy existed cannot scale up once it is in force, and the ReplicaSet's events say why.

use palisade_e2e::Test;

use crate::E2E;

const NS: &str = "e2e-controller";

fn pod_names(t: &Test) -> Vec<String> {
    let out = t
        .kubectl(["get", "pods", "-n", NS, "-l", "app=web", "-o", "name"])
        .ok();
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn pods_created_by_a_replicaset_are_judged() {
    let t = Test::new("controller");
    t.namespace(NS, &[]);
    let out = t.apply(
        "deployment.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {NS}
  labels:
    {E2E}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: registry.example.com/shop/web:1.4.2
        securityContext:
          privileged: true
"#
        ),
    );
    assert_eq!(out.stdout.trim(), "deployment.apps/web created", "{out}");
    // No policy yet: the ReplicaSet's first pod is admitted (it stays Pending: no scheduler).
    t.eventually(
        "the Deployment's first pod exists",
        60,
        || match pod_names(&t).len() {
            1 => Ok(()),
            n => Err(format!("{n} pods")),
        },
    );

    t.apply(
        "policy.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: e2e-controller
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
    t.wait_policy_in_force("e2e-controller", NS);

    // Scaling is not a change of the pod spec: admitted. The new pods are not.
    let out = t
        .kubectl(["scale", "deployment", "web", "-n", NS, "--replicas=3"])
        .ok();
    assert_eq!(out.stdout.trim(), "deployment.apps/web scaled", "{out}");

    let events = t.eventually("the ReplicaSet reports FailedCreate", 60, || {
        let out = t.kubectl([
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            "reason=FailedCreate,involvedObject.kind=ReplicaSet",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ]);
        if out.success() && !out.stdout.trim().is_empty() {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    });
    let first = events.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            r#"Error creating: admission webhook "pods.palisade.dev" denied the request: Pod "#
        ) && first.ends_with(": 1 violation"),
        "{events}"
    );
    assert!(
        events.contains(r#"- SecurityPolicy/e2e-controller: container "app": securityContext.privileged=true is not allowed; remove it or set false"#),
        "{events}"
    );

    let out = t.kubectl(["describe", "replicasets", "-n", NS]).ok();
    assert!(
        out.stdout.lines().any(|l| l.contains("FailedCreate")
            && l.contains(r#"admission webhook "pods.palisade.dev" denied the request"#)),
        "{out}"
    );
    let out = t
        .kubectl([
            "get",
            "deployment",
            "web",
            "-n",
            NS,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"ReplicaFailure\")].message}",
        ])
        .ok();
    assert!(out.stdout.contains("denied the request"), "{out}");
    assert_eq!(pod_names(&t).len(), 1, "no new pod was admitted");
}
