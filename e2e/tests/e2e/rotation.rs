//! Certificate rotation while pods keep being created: no admission fails.
//!
//! First a new serving certificate from the same CA; then a new CA, the way the operator
//! rotates one: publish old and new CA in the caBundle, switch the serving certificate, then
//! drop the old CA. The last phase only works if the new certificate is really served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use palisade_e2e::{Output, Test, http};

use crate::E2E;

const NS: &str = "e2e-rotation";

fn reloads(t: &Test) -> f64 {
    let metrics = t.env.webhook_metrics().expect("webhook metrics");
    http::metric(&metrics, r#"palisade_tls_reloads_total{result="success"}"#).unwrap_or(0.0)
}

fn wait_reloads(t: &Test, n: f64) {
    t.eventually(
        &format!("the webhook has reloaded its certificate {n} times"),
        30,
        || {
            let r = reloads(t);
            if r >= n {
                Ok(())
            } else {
                Err(format!("{r} reloads"))
            }
        },
    );
}

#[test]
fn certificate_rotation_fails_no_admission() {
    let t = Test::exclusive("rotation");
    t.namespace(NS, &[]);
    t.apply(
        "policy.yaml",
        &format!(
            r#"apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: e2e-rotation
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
    t.wait_policy_in_force("e2e-rotation", NS);
    let file = t.write(
        "pod.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  generateName: loop-
  namespace: {NS}
  labels:
    {E2E}
spec:
  containers:
  - name: app
    image: registry.example.com/shop/web:1.4.2
"#
        ),
    );

    // The loop: one `kubectl create` after another, each a pod CREATE through the webhook,
    // while the certificates change under it.
    let stop = AtomicBool::new(false);
    let (results, phases) = thread::scope(|scope| {
        let looper = scope.spawn(|| {
            let mut results: Vec<(Instant, Output)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                results.push((Instant::now(), t.kubectl(["create", "-f", &file])));
            }
            results
        });
        let phases = rotate(&t);
        stop.store(true, Ordering::Relaxed);
        (looper.join().expect("the create loop ran"), phases)
    });

    let failures: Vec<String> = results
        .iter()
        .filter(|(_, out)| !out.success())
        .map(|(_, out)| out.to_string())
        .collect();
    let in_phase = |i: usize| {
        let (from, to) = (phases[i].1, phases[i + 1].1);
        results
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .count()
    };
    let summary: Vec<String> = (0..phases.len() - 1)
        .map(|i| format!("{}: {} creates", phases[i].0, in_phase(i)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} creates failed ({summary:?}):\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    // Not vacuous: pods were created in every phase, the last one trusting only the new CA.
    for i in 0..phases.len() - 1 {
        assert!(in_phase(i) >= 2, "too few creates to tell: {summary:?}");
    }
    let out = t.kubectl(["get", "pods", "-n", NS, "-o", "name"]).ok();
    assert_eq!(out.stdout.lines().count(), results.len(), "{out}");
    eprintln!("rotation: {summary:?}");
}

/// The rotation steps; returns the phases and when each began (the last entry ends them).
fn rotate(t: &Test) -> Vec<(String, Instant)> {
    let phase = |name: &str| (name.to_owned(), Instant::now());
    let mut phases = vec![phase("before")];
    thread::sleep(Duration::from_secs(2));

    let r0 = reloads(t);
    phases.push(phase("new serving certificate, same CA"));
    t.env.rotate_serving_cert().expect("rotate");
    wait_reloads(t, r0 + 1.0);
    thread::sleep(Duration::from_secs(3));

    phases.push(phase("caBundle: old and new CA"));
    let old_ca = t.env.ca_pem();
    let new_ca = t.env.replace_ca().expect("new CA");
    t.env
        .register(&format!("{old_ca}{new_ca}"))
        .expect("register both CAs");
    thread::sleep(Duration::from_secs(3));

    phases.push(phase("serving certificate from the new CA"));
    t.env.rotate_serving_cert().expect("rotate to the new CA");
    wait_reloads(t, r0 + 2.0);
    thread::sleep(Duration::from_secs(3));

    phases.push(phase("caBundle: new CA only"));
    t.env.register(&new_ca).expect("register the new CA only");
    thread::sleep(Duration::from_secs(4));
    phases.push(phase("end"));
    phases
}
