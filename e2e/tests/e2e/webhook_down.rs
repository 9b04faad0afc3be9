//! The webhook is down (its Deployment scaled to zero) and failurePolicy is Fail: the control plane's namespaces and
//! Palisade's own are still admitted (no deadlock), every other namespace is refused with
//! the API server's message, and admission works again once the webhook is back. Policies
//! are not held up (policies.palisade.dev is failurePolicy Ignore): an invalid update gets
//! in, and once the webhook is back the backstop reports it while the previous generation
//! stays in force.

use palisade_e2e::install::WEBHOOK_SERVICE;
use palisade_e2e::{PALISADE_NAMESPACE, TIMEOUT_SECONDS, Test};

use crate::E2E;
use crate::invalid_policy::Backstop;

const NS: &str = "e2e-down";

fn pod(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    {E2E}
spec:
  containers:
  - name: app
    image: registry.example.com/shop/web:1.4.2
"#
    )
}

#[test]
fn webhook_down_fails_closed_except_for_exempt_namespaces() {
    // Stopping the shared webhook would fail other tests' requests: run alone.
    let t = Test::exclusive("webhook-down");
    t.namespace(NS, &[]);
    for ns in ["kube-system", PALISADE_NAMESPACE] {
        t.wait_service_account(ns);
        t.kubectl([
            "delete",
            "pod",
            "e2e-down-probe",
            "-n",
            ns,
            "--ignore-not-found",
        ])
        .ok();
    }
    let file = t.write("pod.yaml", &pod("e2e-down-probe"));
    t.namespace("e2e-down-backstop", &[]);
    let backstop = Backstop::prepare(&t, "e2e-down-backstop", "e2e-down-backstop");

    t.env.stop_webhook().expect("the webhook scaled to zero");
    backstop.break_it(&t);

    for ns in ["kube-system", PALISADE_NAMESPACE] {
        let out = t.kubectl(["apply", "-n", ns, "-f", &file]).ok();
        assert_eq!(out.stdout.trim(), "pod/e2e-down-probe created", "{out}");
    }
    let out = t.kubectl(["apply", "-n", NS, "-f", &file]).failed();
    // The API server calls the Service's ClusterIP, where kube-proxy refuses connections
    // while the Service has no endpoints; an API server that resolves endpoints itself
    // says that there are none.
    let cluster_ip = t
        .kubectl([
            "get",
            "service",
            WEBHOOK_SERVICE,
            "-n",
            PALISADE_NAMESPACE,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .ok()
        .stdout;
    let call = format!(
        r#"Error from server (InternalError): error when creating "pod.yaml": Internal error occurred: failed calling webhook "pods.palisade.dev": Post "https://{WEBHOOK_SERVICE}.{PALISADE_NAMESPACE}.svc:443/validate/pods?timeout={TIMEOUT_SECONDS}s": "#
    );
    let expected = [
        format!(
            "{call}dial tcp {}:443: connect: connection refused",
            cluster_ip.trim()
        ),
        format!(r#"{call}no endpoints available for service "{WEBHOOK_SERVICE}""#),
    ];
    let lines = out.stderr_lines();
    assert!(
        lines.len() == 1 && expected.iter().any(|e| e == lines[0]),
        "expected one of {expected:#?}\n{out}"
    );
    let out = t.kubectl(["get", "pods", "-n", NS, "-o", "name"]).ok();
    assert_eq!(out.stdout.trim(), "", "{out}");

    t.env.start_webhook().expect("the webhook starts again");
    let out = t.kubectl(["apply", "-n", NS, "-f", &file]).ok();
    assert_eq!(out.stdout.trim(), "pod/e2e-down-probe created", "{out}");
    backstop.check(&t);

    for ns in ["kube-system", PALISADE_NAMESPACE] {
        t.kubectl([
            "delete",
            "pod",
            "e2e-down-probe",
            "-n",
            ns,
            "--wait=false",
            "--ignore-not-found",
        ])
        .ok();
    }
}
