//! The operator goes away at once (its Deployment scaled to zero, its pods deleted with a
//! one-second grace period) and comes back: admission never
//! depends on it, and what it owns comes back as it was — the webhook registration
//! (webhooks, caBundle, namespaceSelector) is unchanged, and a PolicyReport deleted while it
//! was down is written again with the same content.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use palisade_e2e::{Output, Test};
use serde_json::{Value, json};

use crate::{E2E, wait_ready};

const NS: &str = "e2e-restart";
const LOOP_NS: &str = "e2e-restart-loop";
const AUDIT_POLICY: &str = "e2e-restart-audit";
const ENFORCE_POLICY: &str = "e2e-restart-enforce";
const REPORT: &str = "palisade-e2e-restart";

fn policy(name: &str, mode: &str, ns: &str, rule: &str) -> String {
    format!(
        r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: {name}
  labels:
    {E2E}
spec:
  mode: {mode}
  match:
    namespaces: [{ns}]
  {rule}
"#
    )
}

/// What the registration says, without the bookkeeping the API server adds.
fn registration(t: &Test) -> Value {
    let vwc = t.env.webhook_configuration().expect("the registration");
    json!({"labels": vwc["metadata"]["labels"], "webhooks": vwc["webhooks"]})
}

/// The report's content: scope, summary, results without their timestamps (each audit
/// stamps its own time).
fn report(t: &Test) -> Result<Value, String> {
    let out = t.kubectl(["get", "policyreport", REPORT, "-n", NS, "-o", "json"]);
    if !out.success() {
        return Err(out.to_string());
    }
    let r: Value = serde_json::from_str(&out.stdout).map_err(|e| format!("{e}:\n{out}"))?;
    let mut results = r["results"].as_array().cloned().unwrap_or_default();
    for result in &mut results {
        if let Some(o) = result.as_object_mut() {
            o.remove("timestamp");
        }
    }
    Ok(json!({
        "labels": r["metadata"]["labels"],
        "scope": r["scope"],
        "summary": r["summary"],
        "results": results,
    }))
}

fn pod(name: &str, security_context: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  {name}
  labels:
    {E2E}
spec:
  # Admission is all this test looks at: the loop's pods must not fill the node.
  nodeSelector:
    palisade.dev/e2e-no-such-node: "true"
  containers:
  - name: app
    image: registry.example.com/shop/web:1.4.2
{security_context}"#
    )
}

#[test]
fn operator_gone_and_back_changes_nothing_and_admission_goes_on() {
    // Killing the shared operator would hold up other tests' status and audit checks.
    let t = Test::exclusive("operator-restart");
    t.namespace(NS, &[]);
    t.namespace(LOOP_NS, &[]);
    t.apply(
        "audit-policy.yaml",
        &policy(AUDIT_POLICY, "Audit", NS, "runAsNonRoot: true"),
    );
    t.apply(
        "enforce-policy.yaml",
        &policy(ENFORCE_POLICY, "Enforce", LOOP_NS, "privileged: Deny"),
    );
    wait_ready(&t, AUDIT_POLICY, "True");
    wait_ready(&t, ENFORCE_POLICY, "True");
    t.wait_policy_in_force(ENFORCE_POLICY, LOOP_NS);
    // A pod running as root: admitted (Audit), reported.
    let root = t.write("root-pod.yaml", &pod("name: root", ""));
    t.kubectl(["apply", "-n", NS, "-f", &root]).ok();
    let before = t.eventually("the PolicyReport names the root pod", 60, || {
        let r = report(&t)?;
        let found = r["results"].as_array().is_some_and(|rs| {
            rs.iter().any(|x| {
                x["policy"] == AUDIT_POLICY
                    && x["rule"] == "runAsNonRoot"
                    && x["resources"][0]["name"] == "root"
            })
        });
        if found { Ok(r) } else { Err(r.to_string()) }
    });
    let registered = registration(&t);

    let good = t.write("good-pod.yaml", &pod("generateName: loop-", ""));
    let bad = t.write(
        "privileged-pod.yaml",
        &pod(
            "name: privileged",
            "    securityContext:\n      privileged: true\n",
        ),
    );
    let stop = AtomicBool::new(false);
    let (results, down) = thread::scope(|scope| {
        // Admission throughout: a good pod is created, a privileged one refused, each turn.
        let looper = scope.spawn(|| {
            let mut results: Vec<(Instant, Output, Output)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(180);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let created = t.kubectl(["create", "-n", LOOP_NS, "-f", &good]);
                let refused = t.kubectl(["create", "--dry-run=server", "-n", LOOP_NS, "-f", &bad]);
                results.push((Instant::now(), created, refused));
                thread::sleep(Duration::from_millis(200));
            }
            results
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Let the loop run with the operator up first (a pause, not an assertion).
            thread::sleep(Duration::from_secs(2));
            t.env.kill_operator().expect("the operator's pods deleted");
            let down_from = Instant::now();
            assert!(!t.env.operator_running());
            // Nobody recreates the report while the operator is down.
            t.kubectl(["delete", "policyreport", REPORT, "-n", NS]).ok();
            thread::sleep(Duration::from_secs(3));
            let out = t
                .kubectl(["get", "policyreport", "-n", NS, "-o", "name"])
                .ok();
            assert_eq!(out.stdout.trim(), "", "{out}");
            let down_to = Instant::now();
            t.env.start_operator().expect("the operator starts again");
            (down_from, down_to)
        }));
        stop.store(true, Ordering::Relaxed);
        let results = looper.join().expect("the admission loop ran");
        match outcome {
            Ok(down) => (results, down),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });

    let failures: Vec<String> = results
        .iter()
        .filter(|(_, created, refused)| {
            !created.success()
                || refused.success()
                || !refused.stderr.contains("denied the request")
        })
        .map(|(_, c, r)| format!("{c}\n{r}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} admission rounds went wrong:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    let while_down = results
        .iter()
        .filter(|(at, _, _)| *at >= down.0 && *at <= down.1)
        .count();
    assert!(
        while_down >= 2,
        "too few admission rounds while the operator was down: {while_down}"
    );

    // Back: the report is written again, with the same content.
    let after = t.eventually("the PolicyReport is back as it was", 60, || {
        let r = report(&t)?;
        if r == before {
            Ok(r)
        } else {
            Err(format!("before: {before}\nnow:    {r}"))
        }
    });
    assert_eq!(after, before);
    // The restarted operator has been through its certificate and registration pass by now
    // (it wrote the report after starting): the registration is what it was, caBundle too.
    assert_eq!(registration(&t), registered);
    let ready = t
        .kubectl([
            "get",
            "secpol",
            AUDIT_POLICY,
            ENFORCE_POLICY,
            "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ])
        .ok();
    assert_eq!(
        ready.stdout.lines().collect::<Vec<_>>(),
        ["True", "True"],
        "{ready}"
    );
}
