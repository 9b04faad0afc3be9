//! What ordinary workloads do must not be detected: a web server under requests from
//! another pod, a periodic loop and a CronJob run for a minute under every runtime rule, and
//! the agent reports nothing about them — no Event, no PolicyReport result, no JSON line.
//!
//! Their scripts name busybox's tools without paths, as real scripts do (so the kernel sees
//! many of them executed as `exe`, busybox re-executing itself).

use std::thread;
use std::time::{Duration, Instant};

use palisade_e2e::Test;
use palisade_e2e::runtime::{self, PodRef, agent_events, agent_lines, get_json, runtime_reports};
use serde_json::{Value, json};

use super::{CONTAINER, Site};

const NS: &str = "e2e-rt-benign";
/// How long the workload runs before the outputs are looked at.
const RUN: Duration = Duration::from_secs(60);

fn container(image: &str, script: &str) -> Value {
    json!({
        "name": CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", script],
    })
}

#[test]
fn a_web_server_under_requests_and_periodic_jobs_are_not_detected() {
    let t = Test::new("runtime-benign");
    let site = Site::new(&t, NS, "    mode: Audit", "");

    // The web server (the image's default command) and its Service.
    t.apply(
        "web-service.json",
        &json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": NS, "labels": {"palisade.dev/e2e": "true"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        })
        .to_string(),
    );
    site.apply_pod(
        "web",
        json!({
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": CONTAINER,
                "image": site.image,
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
            }],
        }),
    );
    let web = PodRef::ready(&t, NS, "web", CONTAINER);
    runtime::wait_agent(&t, &web.node, "ebpf", 60);

    // Two requests a second through the Service (its address from the environment the
    // kubelet gives pods created after it).
    site.apply_pod(
        "client",
        json!({
            "terminationGracePeriodSeconds": 1,
            "containers": [container(
                &site.image,
                r#"while true; do
  wget -q -O /dev/null "http://$WEB_SERVICE_HOST:$WEB_SERVICE_PORT/" && echo ok
  sleep 0.5
done"#,
            )],
        }),
    );
    // Housekeeping every 5 s: a timestamp, a compressed copy, a listing.
    site.apply_pod(
        "ticker",
        json!({
            "terminationGracePeriodSeconds": 1,
            "containers": [container(
                &site.image,
                "while true; do date >>/tmp/ticks; gzip -c /var/www/index.html >/tmp/index.html.gz; ls -l /tmp >/dev/null; sleep 5; done",
            )],
        }),
    );
    // A CronJob every minute (batch/v1 from Kubernetes 1.21, v1beta1 before).
    let cron_api = if t.env.server_minor >= 21 {
        "batch/v1"
    } else {
        "batch/v1beta1"
    };
    t.apply(
        "cronjob.json",
        &json!({
            "apiVersion": cron_api,
            "kind": "CronJob",
            "metadata": {"name": "report", "namespace": NS, "labels": {"palisade.dev/e2e": "true"}},
            "spec": {
                "schedule": "*/1 * * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": {
                    "metadata": {"labels": {"palisade.dev/e2e": "true"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [container(
                            &site.image,
                            "date; ls -l /var/www; gzip -c /var/www/index.html | wc -c",
                        )],
                    },
                }}},
            },
        })
        .to_string(),
    );
    PodRef::ready(&t, NS, "client", CONTAINER);
    PodRef::ready(&t, NS, "ticker", CONTAINER);

    // A minute of it, and at least one run of the CronJob.
    let started = Instant::now();
    loop {
        let jobs = get_json(&t, &["get", "jobs", "-n", NS, "-o", "json"]).unwrap_or_default();
        let ran = jobs["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|j| j["status"]["succeeded"].as_i64().unwrap_or(0) >= 1);
        if ran && started.elapsed() >= RUN {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "the CronJob ran no Job to completion within 150s: {}",
            t.kubectl(["get", "cronjobs,jobs,pods", "-n", NS])
        );
        thread::sleep(Duration::from_secs(2));
    }
    // The outputs of anything detected at the very end have time to show.
    thread::sleep(runtime::DETECTION_DEADLINE);

    // The workload did what it says.
    let logs = t.kubectl(["logs", "-n", NS, "client"]).ok();
    let requests = logs.stdout.lines().filter(|l| l.trim() == "ok").count();
    assert!(
        requests >= 30,
        "only {requests} requests were served:\n{logs}"
    );

    let events = agent_events(&t, NS).unwrap_or_else(|e| panic!("{e}"));
    let reports = runtime_reports(&t, NS).unwrap_or_else(|e| panic!("{e}"));
    let results: Vec<&Value> = reports
        .iter()
        .flat_map(|r| r["results"].as_array().into_iter().flatten())
        .collect();
    let lines = agent_lines(
        &t,
        &web.node,
        NS,
        started.elapsed() + Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        events.is_empty() && results.is_empty() && lines.is_empty(),
        "the benign workload was detected:\n--- Events ---\n{}\n--- PolicyReport results ---\n{}\n--- JSON lines ---\n{}",
        events
            .iter()
            .map(|e| format!(
                "  {} on {}: {}",
                e["reason"], e["involvedObject"]["name"], e["message"]
            ))
            .collect::<Vec<_>>()
            .join("\n"),
        results
            .iter()
            .map(|r| format!(
                "  {} {} {}: {}",
                r["rule"], r["result"], r["resources"][0]["name"], r["message"]
            ))
            .collect::<Vec<_>>()
            .join("\n"),
        lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    );
}
