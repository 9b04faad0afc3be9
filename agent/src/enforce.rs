//! Enforce: the offending process is killed. The pid is pinned with a pidfd first and the
//! process's start time checked against the one the kernel recorded, so a pid the kernel
//! has since given to another process is never signalled.

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::sensor::procfs::{ProcFs, parse_stat};

/// What became of a kill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Killed,
    /// The process had already exited (or its pid was reused).
    Gone,
    Failed(String),
}

/// Kills process `pid` if it is still the one that started at `start_ticks` (clock ticks
/// since boot, as /proc/<pid>/stat has it).
pub fn kill(proc: &ProcFs, pid: u32, start_ticks: Option<u64>) -> Outcome {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Outcome::Failed(format!("pid {pid} is not a process id"));
    };
    let fd = match pidfd_open(raw, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Outcome::Gone,
        Err(e) => return Outcome::Failed(format!("pidfd_open({pid}): {e}")),
    };
    // With the pidfd held, the pid cannot be reused: /proc/<pid> is this process or gone.
    if let Some(want) = start_ticks {
        let stat = std::fs::read_to_string(proc.root.join(pid.to_string()).join("stat"))
            .ok()
            .and_then(|t| parse_stat(&t));
        match stat {
            Some(s) if s.start_ticks == want => {}
            _ => return Outcome::Gone,
        }
    }
    match pidfd_send_signal(&fd, Signal::KILL) {
        Ok(()) => Outcome::Killed,
        Err(rustix::io::Errno::SRCH) => Outcome::Gone,
        Err(e) => Outcome::Failed(format!("kill({pid}): {e}")),
    }
}

/// The clock ticks /proc reports for a start time in nanoseconds since boot.
pub fn ticks(proc: &ProcFs, start_ns: u64) -> u64 {
    start_ns / (1_000_000_000 / proc.ticks_per_second.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_live_process_is_killed_and_a_stale_start_time_spares_it() {
        let proc = ProcFs::new("/proc");
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let pid = child.id();
        let stat = parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat"))
            .expect("parses");

        assert_eq!(
            kill(&proc, pid, Some(stat.start_ticks + 1)),
            Outcome::Gone,
            "another process's start time"
        );
        assert_eq!(kill(&proc, pid, Some(stat.start_ticks)), Outcome::Killed);
        let status = child.wait().expect("sleep ends");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
        // reaped: nothing left to kill
        assert_eq!(kill(&proc, pid, None), Outcome::Gone);
    }
}
