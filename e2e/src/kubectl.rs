//! Running kubectl the way a user does, and keeping exactly what it printed.

use std::ffi::OsStr;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one kubectl call printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Exit code; `None` when kubectl could not be run or died by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole output unless kubectl exited 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Panics with the whole output unless kubectl failed.
    #[track_caller]
    pub fn failed(self) -> Output {
        assert!(!self.success(), "expected a failure:\n{self}");
        self
    }

    /// stderr without the lines newer kubectl versions add about version skew.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.contains("version difference between client") && !l.is_empty())
            .collect()
    }

    /// The `Warning: ` lines kubectl printed (admission warnings), skew warnings left out.
    pub fn warnings(&self) -> Vec<&str> {
        self.stderr_lines()
            .into_iter()
            .filter(|l| l.starts_with("Warning: "))
            .collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "$ {}   (exit {}, {:.1}s)",
            self.command,
            self.code
                .map_or_else(|| "none".to_owned(), |c| c.to_string()),
            self.took.as_secs_f64()
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// kubectl bound to one cluster.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub program: PathBuf,
    pub kubeconfig: PathBuf,
    /// A discovery cache of our own: the user's ~/.kube/cache is left alone, and a CRD
    /// created by this run is never hidden behind a stale cache.
    pub cache_dir: PathBuf,
}

impl Kubectl {
    /// Run `kubectl ARGS` in `dir` (relative `-f` paths resolve there, and kubectl prints
    /// them as given), with `stdin` as its input when given.
    pub fn run<I, S>(&self, dir: &Path, args: I, stdin: Option<&str>) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        // A global flag before the subcommand, so it never lands after a `--`.
        let cache: [&OsStr; 2] = ["--cache-dir".as_ref(), self.cache_dir.as_os_str()];
        let args: Vec<std::ffi::OsString> = cache
            .into_iter()
            .map(OsStr::to_owned)
            .chain(args.into_iter().map(|a| a.as_ref().to_owned()))
            .collect();
        let env: [(&str, &OsStr); 1] = [("KUBECONFIG", self.kubeconfig.as_os_str())];
        let mut out = run_program("kubectl", &self.program, dir, &args, &env, stdin);
        // Transcripts show what a user types, without the cache flag.
        out.command =
            out.command
                .replacen(&format!(" --cache-dir {}", self.cache_dir.display()), "", 1);
        out
    }

    /// [`Kubectl::run`] at a terminal: under util-linux's `script`, which runs it on a
    /// pseudo-terminal, so that `kubectl exec -it` allocates a TTY in the container. What the
    /// terminal showed comes back as stdout (with `\r\n` line ends); stdin is empty.
    pub fn run_tty<I, S>(&self, dir: &Path, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let line = [
            self.program.display().to_string(),
            "--cache-dir".into(),
            self.cache_dir.display().to_string(),
        ]
        .into_iter()
        .chain(args.iter().cloned())
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
        let env: [(&str, &OsStr); 2] = [
            ("KUBECONFIG", self.kubeconfig.as_os_str()),
            // script runs the line with $SHELL.
            ("SHELL", "/bin/sh".as_ref()),
        ];
        let script_args = ["--quiet", "--return", "--command", &line, "/dev/null"];
        let mut out = run_program("script", Path::new("script"), dir, &script_args, &env, None);
        out.command = std::iter::once("kubectl".to_owned())
            .chain(args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
            + "   (at a terminal)";
        out
    }
}

/// `s` quoted for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run `program ARGS` in `dir` with `env` added, `stdin` as its input when given, and keep
/// what it printed. `name` stands for the program in [`Output::command`].
pub fn run_program<S: AsRef<OsStr>>(
    name: &str,
    program: &Path,
    dir: &Path,
    args: &[S],
    env: &[(&str, &OsStr)],
    stdin: Option<&str>,
) -> Output {
    let command = std::iter::once(name.to_owned())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let start = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let result = cmd.spawn().and_then(|mut child| {
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        child.wait_with_output()
    });
    match result {
        Ok(out) => Output {
            command,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        },
        Err(e) => Output {
            command,
            code: None,
            stdout: String::new(),
            stderr: format!("cannot run {}: {e}", program.display()),
            took: start.elapsed(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_each_argument_whole() {
        assert_eq!(shell_quote("exec"), "exec");
        assert_eq!(shell_quote("/bin/sh"), "/bin/sh");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME;x"), "'$HOME;x'");
    }

    #[test]
    fn at_a_terminal_the_program_has_a_tty_and_its_arguments() {
        let dir = std::env::temp_dir().join(format!("palisade-e2e-tty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let fake = dir.join("kubectl");
        std::fs::write(
            &fake,
            "#!/bin/sh\ntty\nfor a in \"$@\"; do echo \"[$a]\"; done\nexit 3\n",
        )
        .expect("a script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))
            .expect("executable");
        let k = Kubectl {
            program: fake,
            kubeconfig: dir.join("kubeconfig"),
            cache_dir: dir.join("cache"),
        };
        let out = k.run_tty(
            &dir,
            ["exec", "-it", "--", "/bin/sh", "-c", "echo 'x y'; exit"],
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(out.code, Some(3), "{out}");
        let lines: Vec<&str> = out.stdout.lines().map(str::trim_end).collect();
        assert!(lines[0].starts_with("/dev/pts/"), "{out}");
        assert_eq!(
            lines[3..],
            [
                "[exec]",
                "[-it]",
                "[--]",
                "[/bin/sh]",
                "[-c]",
                "[echo 'x y'; exit]"
            ],
            "{out}"
        );
        assert!(
            out.command
                .starts_with("kubectl exec -it -- /bin/sh -c 'echo"),
            "{}",
            out.command
        );
    }
}
