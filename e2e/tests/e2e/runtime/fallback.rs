//! Without eBPF, the agent runs the netlink process connector, which sees execs only: the
//! release is installed with `agent.sensor=fallback` (the test takes it exclusively), the
//! agent's pod says `fallback` and lists the rules it cannot see, and exec-based rules
//! still fire. Their behaviours last a second or more: the connector gives a pid, and the
//! rest is read from /proc, where a process already gone cannot be read. The suite's install
//! (the eBPF sensor) is put back however the test ends.

use std::collections::BTreeSet;

use palisade_e2e::Test;
use palisade_e2e::runtime::{
    Action, Expected, UNCOVERED_ANNOTATION, agent_pod, wait_all_agents, wait_detection,
};

use super::*;

const NS: &str = "e2e-rt-fallback";

/// Puts the suite's install back when dropped.
struct Restore<'a>(&'a Test);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let t = self.0;
        let restored = t
            .env
            .reinstall(&[])
            .map(|_| ())
            .and_then(|()| wait_all_agents(t, "ebpf", 180));
        if let Err(e) = restored {
            if std::thread::panicking() {
                eprintln!("e2e: the release could not be put back on the eBPF sensor: {e}");
            } else {
                panic!("the release could not be put back on the eBPF sensor: {e}");
            }
        }
    }
}

#[test]
fn the_fallback_sensor_still_catches_exec_based_rules_and_says_what_it_misses() {
    let t = Test::exclusive("runtime-fallback");
    let _restore = Restore(&t);
    t.env
        .reinstall(&[("agent.sensor", "fallback")])
        .unwrap_or_else(|e| panic!("helm upgrade with agent.sensor=fallback: {e}"));
    wait_all_agents(&t, "fallback", 180).unwrap_or_else(|e| panic!("{e}"));

    let site = Site::new(&t, NS, "    mode: Audit", "");
    let pod = site.workload_with_sensor("workload", Workload::default(), "fallback");

    // Every rule applies here (this policy applies them all): the agent's pod lists exactly
    // those that need more than exec events.
    let want: BTreeSet<&str> = ALL
        .iter()
        .filter(|r| !EXEC_ONLY.contains(r))
        .map(|r| r.id)
        .collect();
    t.eventually(
        &format!("the agent's {UNCOVERED_ANNOTATION} lists the rules that need more than execs"),
        30,
        || {
            let agent = agent_pod(&t, &pod.node)?;
            let listed: BTreeSet<&str> = agent["metadata"]["annotations"][UNCOVERED_ANNOTATION]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .collect();
            if listed == want {
                Ok(())
            } else {
                Err(format!("{listed:?}, expected {want:?}"))
            }
        },
    );

    let cases: [(Rule, bool, &[&str], &str); 4] = [
        (
            TERMINAL_SHELL,
            true,
            &["/bin/sh", "-c", "/usr/bin/tty; /bin/sleep 2"],
            "sh -c /usr/bin/tty; /bin/sleep 2",
        ),
        (
            DROP_AND_EXECUTE_NEW_BINARY,
            false,
            &[
                "/bin/sh",
                "-c",
                "/bin/cp /usr/local/bin/palisade-probe /tmp/dropper && exec /tmp/dropper open /etc/hostname r 2",
            ],
            "dropper open /etc/hostname r 2",
        ),
        (
            // A bind shell: nc waiting for a connection to hand /bin/sh to, for 3 s.
            NETCAT_REMOTE_CODE_EXECUTION,
            false,
            &[
                "/usr/bin/timeout",
                "3",
                "/usr/bin/nc",
                "-l",
                "-p",
                "5555",
                "-e",
                "/bin/sh",
            ],
            "nc -l -p 5555 -e /bin/sh",
        ),
        (
            FILELESS_EXECUTION,
            false,
            &[
                "/usr/local/bin/palisade-probe",
                "memfd-exec",
                "/usr/local/bin/palisade-probe",
                "palisade-probe",
                "open",
                "/etc/hosts",
                "r",
                "2",
            ],
            "open /etc/hosts r 2",
        ),
    ];
    for (rule, tty, command, cmdline) in cases {
        let (out, done) = site.exec(&pod, tty, command);
        assert!(
            out.code.is_some(),
            "the behaviour of {} did not run:\n{out}",
            rule.id
        );
        wait_detection(
            &t,
            &pod,
            &Expected {
                rule,
                policy: &site.policy,
                action: Action::Reported,
                cmdline,
            },
            done,
        );
    }
}
