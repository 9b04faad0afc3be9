//! CA rotation by the operator while pods keep being created: no admission fails.
//!
//! The rotation is asked for the way a user does it, with `kubectl annotate` on the
//! certificate Secret. The operator then publishes old and new CA in the caBundle, switches
//! the serving certificate to the new CA once that bundle is out (each webhook pod reloads
//! it once the kubelet has updated the Secret volume, within a minute or two), and drops the
//! old CA much later (ten minutes: not waited for here).

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use palisade_e2e::install::CERT_SECRET;
use palisade_e2e::{Output, PALISADE_NAMESPACE, Test, http};

use crate::E2E;

const NS: &str = "e2e-rotation";

/// Each webhook pod's count of successful certificate reloads and the notAfter of the
/// certificate it serves, by pod name.
fn served(t: &Test) -> Vec<(String, f64, f64)> {
    let pods = t.env.webhook_metrics().expect("webhook metrics");
    assert!(!pods.is_empty(), "no webhook pod running");
    pods.iter()
        .map(|(pod, metrics)| {
            let reloads = http::metric(metrics, r#"palisade_tls_reloads_total{result="success"}"#)
                .unwrap_or(0.0);
            let expiry = http::metric(
                metrics,
                "palisade_webhook_certificate_expiry_timestamp_seconds",
            )
            .unwrap_or_else(|| panic!("{pod} exports no certificate expiry:\n{metrics}"));
            (pod.clone(), reloads, expiry)
        })
        .collect()
}

fn reloads(t: &Test) -> Vec<(String, f64)> {
    served(t).into_iter().map(|(p, r, _)| (p, r)).collect()
}

/// The notAfter of the first certificate in `pem`, in seconds since the epoch.
fn not_after(pem: &str) -> f64 {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("an X.509 certificate");
    cert.validity().not_after.timestamp() as f64
}

#[test]
fn ca_rotation_by_the_operator_fails_no_admission() {
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
  # Admission is all the loop tests: its hundreds of pods must not fill the node.
  nodeSelector:
    palisade.dev/e2e-no-such-node: "true"
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
            let deadline = Instant::now() + Duration::from_secs(420);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                results.push((Instant::now(), t.kubectl(["create", "-f", &file])));
                // Paced: the rotation takes a minute or more, the machine is shared.
                thread::sleep(Duration::from_millis(200));
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

/// The certificate Secret's `ca.crt` and `tls.crt`, as PEM.
fn secret_certs(t: &Test) -> (String, String) {
    let out = t
        .kubectl([
            "get",
            "secret",
            CERT_SECRET,
            "-n",
            PALISADE_NAMESPACE,
            "-o",
            "json",
        ])
        .ok();
    let secret: serde_json::Value = serde_json::from_str(&out.stdout).expect("Secret JSON");
    let field = |key: &str| {
        let b64 = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in the Secret:\n{out}"));
        let pem = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64 in the Secret");
        String::from_utf8(pem).expect("PEM text")
    };
    (field("ca.crt"), field("tls.crt"))
}

fn certificates(pem: &str) -> usize {
    pem.matches("-----BEGIN CERTIFICATE-----").count()
}

/// The rotation steps; returns the phases and when each began (the last entry ends them).
fn rotate(t: &Test) -> Vec<(String, Instant)> {
    let phase = |name: &str| (name.to_owned(), Instant::now());
    let mut phases = vec![phase("before")];
    let (old_ca, old_serving) = secret_certs(t);
    let bundles = t.env.ca_bundles().expect("caBundles");
    assert!(!bundles.is_empty());
    for (name, pem) in &bundles {
        assert_eq!(
            pem.trim(),
            old_ca.trim(),
            "webhook {name} trusts the Secret's CA"
        );
    }
    let r0 = reloads(t);
    // Pause so the loop has created pods before the rotation starts (not an assertion).
    thread::sleep(Duration::from_secs(2));

    let request = format!("e2e-{}", std::process::id());
    t.kubectl([
        "annotate",
        "secret",
        CERT_SECRET,
        "-n",
        PALISADE_NAMESPACE,
        &format!("palisade.dev/rotate-ca={request}"),
        "--overwrite",
    ])
    .ok();
    let new_ca = t.eventually("the caBundle holds the old and a new CA", 60, || {
        let (ca, _) = secret_certs(t);
        let bundles = t.env.ca_bundles()?;
        let both = ca.trim() != old_ca.trim()
            && bundles.iter().all(|(_, pem)| {
                certificates(pem) == 2 && pem.contains(old_ca.trim()) && pem.contains(ca.trim())
            });
        if both {
            Ok(ca)
        } else {
            Err(format!("{bundles:?}"))
        }
    });
    phases.push(phase("caBundle: old and new CA"));
    assert_eq!(
        reloads(t),
        r0,
        "the serving certificate waits for the two-CA bundle"
    );

    // The operator switches the serving certificate once the two-CA bundle has been out for
    // its grace period (30 s), at its next pass: every minute, or at any change of the Secret.
    // A harmless annotation every few seconds is such a change, so the test need not wait
    // for the minute. The kubelet then updates each pod's Secret volume at its next sync
    // of that pod.
    let mut nudge = 0;
    t.eventually(
        "every webhook pod has reloaded a serving certificate from the new CA",
        240,
        || {
            let r = reloads(t);
            let all = r.iter().all(|(pod, n)| {
                r0.iter()
                    .find(|(p, _)| p == pod)
                    .is_some_and(|(_, before)| *n >= before + 1.0)
            });
            if all && r.len() == r0.len() {
                return Ok(());
            }
            nudge += 1;
            if nudge % 20 == 0 {
                t.kubectl([
                    "annotate",
                    "secret",
                    CERT_SECRET,
                    "-n",
                    PALISADE_NAMESPACE,
                    &format!("palisade.dev/e2e-nudge={nudge}"),
                    "--overwrite",
                ])
                .ok();
            }
            Err(format!("reloads {r:?}, before {r0:?}"))
        },
    );
    phases.push(phase("serving certificate from the new CA"));
    let (ca, serving) = secret_certs(t);
    assert_eq!(ca, new_ca, "the CA did not change again");
    assert_ne!(serving, old_serving, "a new serving certificate");
    let expiry = not_after(&serving);
    for (pod, _, served) in served(t) {
        assert_eq!(
            served, expiry,
            "{pod} serves the Secret's new certificate (its notAfter)"
        );
    }
    for (name, pem) in t.env.ca_bundles().expect("caBundles") {
        assert!(
            pem.contains(new_ca.trim()),
            "webhook {name} trusts the new CA"
        );
    }
    // Pods keep being created against the new certificate.
    thread::sleep(Duration::from_secs(4));
    phases.push(phase("end"));
    phases
}
