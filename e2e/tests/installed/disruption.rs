//! Admission keeps working while the install changes under it: a `helm upgrade` with
//! changed values rolls every pod while pods are created in a loop, and a webhook pod is
//! deleted; not one admission may fail (two replicas, the PodDisruptionBudget, readiness
//! that turns false before the listener closes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use palisade_e2e::install::{NAMESPACE, Release};

use crate::{
    E2E_LABEL, WORKLOADS, create, denied, eventually, installed, pod, serial, webhook_pods,
};

/// Pods created in a loop from two threads until stopped: three that pass `restricted`
/// for one privileged, which must be refused. Anything else is a failed admission.
struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Tally>>,
}

#[derive(Debug, Default)]
struct Tally {
    admitted: usize,
    refused: usize,
    failures: Vec<String>,
}

impl Load {
    fn start(r: &'static Release) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..2)
            .map(|w| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let mut t = Tally::default();
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let privileged = i % 4 == 3;
                        let out = create(r, &pod(&format!("load-{w}"), privileged), &[]);
                        match (privileged, out.success()) {
                            (false, true) => t.admitted += 1,
                            (true, false) if denied(&out) => t.refused += 1,
                            _ => t.failures.push(out.to_string()),
                        }
                        i += 1;
                    }
                    t
                })
            })
            .collect();
        Load { stop, workers }
    }

    fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for w in self.workers {
            let t = w.join().expect("a load thread panicked");
            all.admitted += t.admitted;
            all.refused += t.refused;
            all.failures.extend(t.failures);
        }
        all
    }
}

#[track_caller]
fn assert_no_failed_admission(t: &Tally, during: &str) {
    eprintln!(
        "{during}: {} admitted, {} refused as they should be, {} failed",
        t.admitted,
        t.refused,
        t.failures.len()
    );
    assert!(
        t.failures.is_empty(),
        "{} admissions failed {during}; the first:\n{}",
        t.failures.len(),
        t.failures[0]
    );
    // Enough traffic that a gap in service would have been hit.
    assert!(
        t.admitted >= 10 && t.refused >= 3,
        "too little load {during}: {t:?}"
    );
}

fn clean_up(r: &Release) {
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

#[test]
fn helm_upgrade_with_changed_values_under_load_fails_no_admission() {
    let _serial = serial();
    let r = installed(&[]);
    let before: Vec<String> = webhook_pods(r).into_iter().map(|(n, _)| n).collect();

    let load = Load::start(r);
    thread::sleep(Duration::from_secs(3));
    // A changed value in every pod template: both Deployments roll.
    r.install(&[("logLevel", "debug")])
        .unwrap_or_else(|e| panic!("{e}"));
    thread::sleep(Duration::from_secs(3));
    let tally = load.stop();

    let after: Vec<String> = webhook_pods(r).into_iter().map(|(n, _)| n).collect();
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "the upgrade replaced every webhook pod: before {before:?}, after {after:?}"
    );
    let env = r
        .kubectl([
            "-n",
            NAMESPACE,
            "get",
            "deploy",
            "palisade-webhook",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"RUST_LOG\")].value}",
        ])
        .ok();
    assert_eq!(env.stdout, "debug", "the new value is in the template");
    assert_no_failed_admission(&tally, "during helm upgrade");
    clean_up(r);
}

#[test]
fn deleting_a_webhook_pod_fails_no_admission() {
    let _serial = serial();
    let r = installed(&[]);
    let pods = webhook_pods(r);
    assert_eq!(
        pods.len(),
        2,
        "two webhook replicas: {pods:?}\n{}",
        r.pods()
    );
    let victim = pods[0].0.clone();

    let load = Load::start(r);
    thread::sleep(Duration::from_secs(3));
    r.kubectl(["-n", NAMESPACE, "delete", "pod", &victim, "--wait=false"])
        .ok();
    eventually(
        "a replacement webhook pod is Ready",
        Duration::from_secs(90),
        || {
            let now = webhook_pods(r);
            let ready = now
                .iter()
                .filter(|(n, ready)| *ready && *n != victim)
                .count();
            if ready == 2 {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    );
    thread::sleep(Duration::from_secs(3));
    let tally = load.stop();
    assert_no_failed_admission(&tally, "while a webhook pod was deleted");
    clean_up(r);
}
