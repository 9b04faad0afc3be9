//! `helm install`: every pod Ready on the real node, the registration names the chart's
//! Service, and a privileged pod is refused with the usual text.

use std::time::{Duration, Instant};

use palisade_e2e::install::{NAMESPACE, registration_problem};

use crate::{
    E2E_LABEL, POLICY, WORKLOADS, create, denied, pod, release, serial, workloads_under_policy,
};

#[test]
fn helm_install_runs_every_pod_registers_the_service_and_refuses_a_privileged_pod() {
    let _serial = serial();
    let r = release();
    // From nothing: a release left by another test is removed first.
    if r.helm(["status", "palisade", "--namespace", NAMESPACE])
        .success()
    {
        r.uninstall().ok();
    }
    crate::wait_gone(
        r,
        "no registration is left from before",
        &["get", "validatingwebhookconfiguration", "palisade"],
    );

    let start = Instant::now();
    let out = r.install(&[]).unwrap_or_else(|e| panic!("{e}"));
    let ready = start.elapsed();
    let vwc = r
        .wait_registered(Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "helm install to every pod Ready: {:.1}s; to the registration by Service: {:.1}s",
        ready.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(registration_problem(&vwc), None, "{vwc}");
    assert!(out.stdout.contains("STATUS: deployed"), "{out}");

    // Two replicas of each, Running and Ready on a node with a kubelet, from our images.
    let pods = r.kubectl([
        "-n",
        NAMESPACE,
        "get",
        "pods",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.labels.app\.kubernetes\.io/component} {.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.spec.nodeName} {.spec.containers[0].image} {.metadata.deletionTimestamp}{"\n"}{end}"#,
    ]).ok();
    // Pods of an earlier release may still be terminating.
    let rows: Vec<Vec<&str>> = pods
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|r| r.len() == 5)
        .collect();
    for component in ["operator", "webhook"] {
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| r.first() == Some(&component))
            .collect();
        assert_eq!(mine.len(), 2, "two {component} replicas:\n{}", pods.stdout);
        for row in mine {
            assert_eq!(
                &row[1..3],
                ["Running", "True"],
                "{component} pod Running and Ready:\n{}",
                pods.stdout
            );
            let node = row[3];
            let kubelet = r
                .kubectl([
                    "get",
                    "node",
                    node,
                    "-o",
                    "jsonpath={.status.nodeInfo.containerRuntimeVersion}",
                ])
                .ok();
            assert!(
                kubelet.stdout.starts_with("containerd://"),
                "node {node} runs containers: {kubelet}"
            );
            assert_eq!(
                row[4],
                format!("{}/palisade-{component}:{}", r.registry, r.tag),
                "{}",
                pods.stdout
            );
        }
    }
    // The owner reference that lets an uninstall take the registration along.
    assert_eq!(
        vwc["metadata"]["ownerReferences"][0]["kind"], "ClusterRole",
        "{vwc}"
    );
    assert_eq!(
        vwc["metadata"]["ownerReferences"][0]["name"], "palisade-operator",
        "{vwc}"
    );

    workloads_under_policy(r);
    let out = create(r, &pod("privileged", true), &[]);
    assert!(
        denied(&out),
        "a privileged pod is refused by {POLICY} in {WORKLOADS}:\n{out}"
    );
    let out = create(r, &pod("restricted", false), &[]);
    assert!(
        out.success(),
        "a pod that meets restricted is admitted:\n{out}"
    );
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
