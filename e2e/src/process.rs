//! Child processes that cannot outlive the test process.
//!
//! Statics are never dropped, and a test binary can die by a signal, so `Drop` alone cannot
//! promise that a webhook started for the tests stops. Each child therefore runs under a
//! small bash supervisor whose stdin is a pipe from this process: when the pipe closes —
//! `stop()`, drop, normal exit, panic, `SIGKILL` of the test binary — the supervisor sends
//! the child `SIGTERM` and waits for it. Rust opens its pipes close-on-exec, so no other
//! child keeps the write end open.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `"$@"` and sends it SIGTERM once fd 3 (our stdin, kept) reaches end-of-file.
const SUPERVISOR: &str = r#"
exec 3<&0 </dev/null
"$@" 3<&- &
child=$!
echo "$child" >"$SUPERVISED_PIDFILE"
{ read -r _ <&3 || true; kill -TERM "$child" 2>/dev/null; } &
watcher=$!
exec 3<&-
wait "$child"
rc=$?
kill "$watcher" 2>/dev/null
exit "$rc"
"#;

/// A running child process, its output appended to a log file.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    log: PathBuf,
    /// Where the supervisor writes the child's own pid (for a SIGKILL that bypasses it).
    pidfile: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Supervised {
    /// Start `program args…` with `envs`, stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &Path)],
        log: &Path,
    ) -> io::Result<Supervised> {
        let out = open_log(log)?;
        let err = out.try_clone()?;
        let pidfile = log.with_extension("pid");
        let _ = std::fs::remove_file(&pidfile);
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg(format!("supervise-{name}"))
            .arg(program)
            .args(args)
            .env("SUPERVISED_PIDFILE", &pidfile)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        Ok(Supervised {
            name: name.to_owned(),
            log: log.to_owned(),
            pidfile,
            child,
            stdin,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL the child itself, the way a node failure or the OOM killer ends it: no
    /// shutdown code runs. Returns once the supervisor has seen it exit.
    pub fn kill_hard(&mut self, wait: Duration) -> Result<(), String> {
        let pid = std::fs::read_to_string(&self.pidfile)
            .map_err(|e| format!("no pid of {} in {}: {e}", self.name, self.pidfile.display()))?;
        let pid = pid.trim();
        let status = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -KILL {pid} ({}) failed: {status}", self.name));
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "{} (pid {pid}) still running after SIGKILL",
            self.name
        ))
    }

    /// SIGTERM the child (through its supervisor) and wait up to `grace`; SIGKILL after that.
    pub fn stop(&mut self, grace: Duration) {
        self.stdin.take();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        // The supervisor is stuck; its watcher still kills the child when we exit.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(15));
    }
}

pub(crate) fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// The last `lines` lines of a file, or a note saying why there are none.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            all[from..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
