//! An exception waives exactly what it covers: in a pod where it waives reading sensitive
//! files, `cat /etc/shadow` gives a `waived` JSON line and a `skip` result naming the
//! exception, and no Event; a search for private keys in the same pod, which it does not
//! cover, is reported as ever.

use std::thread;
use std::time::Instant;

use palisade_e2e::Test;
use palisade_e2e::runtime::{Action, DETECTION_DEADLINE, Expected, pod_events, wait_detection};

use super::*;

const NS: &str = "e2e-rt-exception";
const EXCEPTION: &str = "shadow-audit";

#[test]
fn an_exception_waives_its_rule_and_nothing_else() {
    let t = Test::new("runtime-exception");
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30);
    let site = Site::new(
        &t,
        NS,
        "    mode: Audit",
        &format!(
            "  - name: {EXCEPTION}\n    rules: [runtime.readSensitiveFileUntrusted]\n    namespaces: [{NS}]\n    owner: team-e2e\n    reason: the nightly audit job compares password files\n    expires: \"{}\"\n",
            expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
    );
    let pod = site.workload("workload", Workload::default());

    let (out, shadow_read) = site.exec(&pod, false, &["/bin/cat", "/etc/shadow"]);
    assert_eq!(out.code, Some(0), "{out}");
    let (out, searched) = site.exec(
        &pod,
        false,
        &["/bin/grep", "-rl", "BEGIN RSA PRIVATE KEY", "/etc"],
    );
    assert_eq!(out.code, Some(1), "{out}");

    // Not covered: reported as in any pod.
    wait_detection(
        &t,
        &pod,
        &Expected {
            rule: SEARCH_PRIVATE_KEYS_OR_PASSWORDS,
            policy: &site.policy,
            action: Action::Reported,
            cmdline: "grep -rl BEGIN RSA PRIVATE KEY /etc",
        },
        searched,
    );

    // Covered: recorded as waived, by this exception.
    let waived = wait_detection(
        &t,
        &pod,
        &Expected {
            rule: READ_SENSITIVE_FILE_UNTRUSTED,
            policy: &site.policy,
            action: Action::Waived,
            cmdline: "cat /etc/shadow",
        },
        shadow_read,
    );
    assert_eq!(
        waived.result["properties"]["exception"], EXCEPTION,
        "{}",
        waived.result
    );

    // And never an Event: looked at once the outputs have had their time.
    thread::sleep((shadow_read + DETECTION_DEADLINE).saturating_duration_since(Instant::now()));
    let events = pod_events(&t, &pod).unwrap_or_else(|e| panic!("{e}"));
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["reportingComponent"] == palisade_e2e::runtime::REPORTING_CONTROLLER)
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(
        !reasons.contains(&READ_SENSITIVE_FILE_UNTRUSTED.reason)
            && reasons.contains(&SEARCH_PRIVATE_KEYS_OR_PASSWORDS.reason),
        "the pod's Events from the agent: {reasons:?}"
    );
}
