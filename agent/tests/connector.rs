//! The fallback sensor on this machine: the kernel's process connector reports a real
//! process's fork, exec and exit, and /proc gives the rest of it while it runs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_agent::sensor::connector::{ProcConnector, ProcEvent};
use palisade_agent::sensor::procfs::ProcFs;
use palisade_agent::sensor::record::Record;

#[test]
fn the_process_connector_sees_fork_exec_and_exit() {
    let mut connector =
        ProcConnector::open().expect("the process connector opens (needs CAP_NET_ADMIN)");
    let mut child = Command::new("sleep")
        .arg("1")
        .stdout(Stdio::null())
        .spawn()
        .expect("sleep runs");
    let pid = child.id();

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.contains(&ProcEvent::Exec { pid, tgid: pid }) {
        seen.extend(connector.recv().expect("receives"));
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, ProcEvent::Fork { child_tgid, .. } if *child_tgid == pid)),
        "no fork of {pid}"
    );
    assert!(
        seen.contains(&ProcEvent::Exec { pid, tgid: pid }),
        "no exec of {pid}"
    );

    // While it runs, /proc describes it as the eBPF sensor would have.
    match ProcFs::new("/proc").exec_record(pid, 0) {
        Some(Record::Exec {
            header, argv, exe, ..
        }) => {
            assert_eq!(header.comm, "sleep");
            assert_eq!(argv, ["sleep", "1"]);
            assert!(exe.ends_with("/sleep"), "{exe}");
        }
        other => panic!("{other:?}"),
    }

    child.wait().expect("sleep ends");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !seen.contains(&ProcEvent::Exit { pid, tgid: pid }) {
        seen.extend(connector.recv().expect("receives"));
    }
    assert!(
        seen.contains(&ProcEvent::Exit { pid, tgid: pid }),
        "no exit of {pid}"
    );
}
