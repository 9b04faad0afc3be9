//! Enforce: the process a listed rule detects is killed (SIGKILL: `kubectl exec` ends with
//! 137 at once), the outputs say so, and the container goes on; a rule the policy applies
//! but does not list is only reported.

use std::time::Duration;

use palisade_e2e::Test;
use palisade_e2e::runtime::{Action, Expected, PodRef, wait_detection};

use super::*;

const NS: &str = "e2e-rt-enforce";

#[test]
fn enforce_kills_the_process_of_a_listed_rule_and_only_reports_the_others() {
    let t = Test::new("runtime-enforce");
    let site = Site::new(
        &t,
        NS,
        "    mode: Enforce\n    enforce: [runtime.dropAndExecuteNewBinary]",
        "",
    );
    let pod = site.workload("workload", Workload::default());

    // A dropped program that would wait 30 s, then open a file: killed as it starts.
    let (out, done) = site.exec(
        &pod,
        false,
        &[
            "/bin/sh",
            "-c",
            "/bin/cp /usr/local/bin/palisade-probe /tmp/dropper && exec /tmp/dropper open /etc/hostname r 30",
        ],
    );
    assert_eq!(
        out.code,
        Some(137),
        "not killed (SIGKILL gives 137):\n{out}"
    );
    assert!(
        out.took < Duration::from_secs(15),
        "the process ran on for {:.1}s before it ended:\n{out}",
        out.took.as_secs_f64()
    );
    assert!(!out.stdout.contains("opened"), "{out}");
    // The Event says Killed and that the process was killed; the line and the result say
    // `killed`.
    wait_detection(
        &t,
        &pod,
        &Expected {
            rule: DROP_AND_EXECUTE_NEW_BINARY,
            policy: &site.policy,
            action: Action::Killed,
            cmdline: "dropper open /etc/hostname r 30",
        },
        done,
    );

    // A rule not in `enforce`: the process runs to its end.
    let (out, done) = site.exec(&pod, false, &["/bin/cat", "/etc/shadow"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("root:*:"), "{out}");
    wait_detection(
        &t,
        &pod,
        &Expected {
            rule: READ_SENSITIVE_FILE_UNTRUSTED,
            policy: &site.policy,
            action: Action::Reported,
            cmdline: "cat /etc/shadow",
        },
        done,
    );

    // Only the process was killed: the container runs on, never restarted.
    let again = PodRef::ready(&t, NS, "workload", CONTAINER);
    assert_eq!(again.container_id, pod.container_id);
    let restarts = t
        .kubectl([
            "get",
            "pod",
            "-n",
            NS,
            "workload",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ])
        .ok();
    assert_eq!(restarts.stdout.trim(), "0", "{restarts}");
}
