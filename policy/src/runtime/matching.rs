//! What each runtime rule matches, as pure predicates over one event and its context. Called
//! for every event the sensor sends, so nothing here allocates: command lines are compared
//! as byte streams over the name and arguments, never joined into a string.

use std::net::IpAddr;

use super::catalogue::RuntimeRule;
use super::event::{Action, Open, Process, PtraceRequest, RuntimeEvent, cap, socket};
use super::facts::{ClusterFacts, PodFacts};
use super::lists::*;

/// IPPROTO_TCP.
const TCP: u8 = 6;

/// Whether `rule` matches `event` of a process in `pod`.
pub(crate) fn matches(
    rule: RuntimeRule,
    event: &RuntimeEvent,
    pod: &PodFacts,
    cluster: &ClusterFacts,
) -> bool {
    use RuntimeRule as R;
    let p = &event.process;
    match (rule, &event.action) {
        (R::TerminalShell, Action::Exec) => terminal_shell(p),
        (R::RunShellUntrusted, Action::Exec) => run_shell_untrusted(p),
        // Falco's list of images allowed to do this is empty; exceptions take its place.
        (R::DropAndExecuteNewBinary, Action::Exec) => p.exe_written_after_start,
        (R::ExecutionFromDevShm, Action::Exec) => {
            execution_from_dev_shm(p) && !in_list(pod.image_repository(), DEV_SHM_IMAGES)
        }
        (R::FilelessExecution, Action::Exec) => fileless_execution(p),
        (R::DebugfsInPrivilegedContainer, Action::Exec) => pod.privileged && p.name == "debugfs",
        (R::KernelModuleInjection, Action::ModuleLoad) => p.has_capability(cap::SYS_MODULE),
        (R::PtraceAttached, Action::Ptrace { request, .. }) => {
            has_name(p)
                && match request {
                    PtraceRequest::Attach | PtraceRequest::Poke => true,
                    PtraceRequest::Other(n) => PTRACE_SET_REGISTERS.contains(n),
                    PtraceRequest::TraceMe => false,
                }
        }
        (R::PtraceAntiDebug, Action::Ptrace { request, .. }) => {
            has_name(p) && *request == PtraceRequest::TraceMe
        }
        (R::ReadSensitiveFileUntrusted, Action::Open(o)) => {
            o.read && is_sensitive_file(&o.path) && has_name(p) && !trusted_reader(p, &o.path)
        }
        (R::ReadSensitiveFileTrustedAfterStartup, Action::Open(o)) => {
            o.read
                && is_sensitive_file(&o.path)
                && in_list(&p.name, SERVER_PROGRAMS)
                && p.name != "sshd"
                && event.time_ns.saturating_sub(p.started_ns) > STARTUP_NS
        }
        (R::DirectoryTraversalRead, Action::Open(o)) => directory_traversal_read(p, o),
        (R::SearchPrivateKeysOrPasswords, Action::Exec) => {
            let args = args(p);
            (in_list(&p.name, GREP) && PRIVATE_KEY_MARKERS.iter().any(|m| args.contains_ci(m)))
                || (p.name == "find" && SSH_KEY_FILES.iter().any(|f| args.contains(f)))
        }
        (R::FindAwsCredentials, Action::Exec) => {
            let args = args(p);
            (in_list(&p.name, GREP) && AWS_CREDENTIAL_MARKERS.iter().any(|m| args.contains_ci(m)))
                || (p.name == "find" && args.ends_with(".aws/credentials"))
        }
        (R::ClearLogActivities, Action::Open(o)) => {
            o.write
                && o.truncate
                && (in_list(directory(&o.path), LOG_DIRECTORIES)
                    || in_list(file_name(&o.path), LOG_FILES))
                && !LOG_SHIPPER_IMAGE_SUFFIXES
                    .iter()
                    .any(|s| pod.image_repository().ends_with(s))
        }
        (R::RemoveBulkData, Action::Exec) => {
            in_list(&p.name, DATA_DESTRUCTION_TOOLS)
                // mkfs.<type> directly, not the one the mkfs front end starts.
                || (p.name.starts_with("mkfs.") && p.parent_name.as_deref() != Some("mkfs"))
        }
        (
            R::SymlinkOverSensitiveFiles,
            Action::Link {
                target,
                symbolic: true,
                ..
            },
        ) => in_list(target, SENSITIVE_FILES) || in_list(target, SENSITIVE_LINK_DIRECTORIES),
        (
            R::HardlinkOverSensitiveFiles,
            Action::Link {
                target,
                symbolic: false,
                ..
            },
        ) => in_list(target, SENSITIVE_FILES),
        (R::ReleaseAgentEscape, Action::Open(o)) => {
            o.write
                && o.path.ends_with("release_agent")
                && (p.uid == 0 || p.has_capability(cap::DAC_OVERRIDE))
                && p.has_capability(cap::SYS_ADMIN)
        }
        (R::ContactK8sApiServer, Action::Connect(c)) => {
            let address = c.address.to_canonical();
            cluster
                .api_server
                .iter()
                .any(|a| a.ip().to_canonical() == address && a.port() == c.port)
                && pod.namespace != API_CLIENT_NAMESPACE
                && !in_list(pod.image_repository(), API_CLIENT_IMAGES)
        }
        (R::NetcatRemoteCodeExecution, Action::Exec) => netcat_exec(p),
        (R::RedirectStdioToNetwork, Action::Dup { new_fd, socket }) => {
            *new_fd <= 2 && socket.is_some()
        }
        (R::PacketSocket, Action::Socket { family, .. }) => *family == socket::AF_PACKET,
        (R::SshNonStandardPort, Action::Connect(c)) => {
            c.protocol == TCP
                && is_public(c.address)
                && p.exe.ends_with("ssh")
                && SSH_NON_STANDARD_PORTS.contains(&c.port)
        }
        (R::PackageManagement, Action::Exec) => {
            changes_packages(p) && !ancestry(p).any(|a| in_list(a, PACKAGE_MANAGERS))
        }
        (R::WriteBelowBinaryDirOrEtc, action) => write_below_binary_dir_or_etc(p, action),
        (R::CryptoMiningPool, Action::Connect(c)) => {
            c.protocol == TCP && is_public(c.address) && MINING_POOL_PORTS.contains(&c.port)
        }
        _ => false,
    }
}

fn in_list(name: &str, list: &[&str]) -> bool {
    list.contains(&name)
}

/// Falco's `proc_name_exists`: a process whose name was lost is not judged by name.
fn has_name(p: &Process) -> bool {
    !p.name.is_empty()
}

fn is_shell(name: &str) -> bool {
    in_list(name, SHELLS)
}

/// The parent, then the grandparent and further ancestors (Falco's `proc.aname`).
fn ancestry(p: &Process) -> impl Iterator<Item = &str> {
    p.parent_name
        .as_deref()
        .into_iter()
        .chain(p.ancestors.iter().map(String::as_str))
}

fn grandparent(p: &Process) -> Option<&str> {
    p.ancestors.first().map(String::as_str)
}

fn terminal_shell(p: &Process) -> bool {
    is_shell(&p.name)
        && p.tty != 0
        // The container's entry point: no parent inside the container, or the runtime's own.
        && p.parent_name
            .as_deref()
            .is_none_or(|parent| in_list(parent, CONTAINER_RUNTIME_PARENTS))
}

fn run_shell_untrusted(p: &Process) -> bool {
    let Some(parent) = p.parent_name.as_deref() else {
        return false;
    };
    if !is_shell(&p.name) || !ancestry(p).any(|a| in_list(a, PROTECTED_SHELL_SPAWNERS)) {
        return false;
    }
    if is_shell(parent) || in_list(parent, SHELL_SPAWNING_PARENTS) {
        return false;
    }
    let cmd = cmdline(p);
    if KNOWN_SHELL_COMMANDS.iter().any(|k| cmd.equals(k))
        || HOUSEKEEPING_SHELL_PREFIXES
            .iter()
            .any(|k| cmd.starts_with(k))
    {
        return false;
    }
    let known = KNOWN_SPAWNS.iter().any(|k| {
        k.parent.is_none_or(|want| want == parent)
            && k.grandparent
                .is_none_or(|want| grandparent(p) == Some(want))
            && match k.command {
                Cmd::Prefix(s) => cmd.starts_with(s),
                Cmd::Contains(s) => cmd.contains(s),
                Cmd::Exact(s) => cmd.equals(s),
            }
    });
    !known && !ancestry(p).any(|a| a == "unicorn_launche" || in_list(a, PACKAGE_MANAGERS))
}

fn execution_from_dev_shm(p: &Process) -> bool {
    const SHM: &str = "/dev/shm";
    let in_shm = |path: &str| path.strip_prefix(SHM).is_some_and(|r| r.starts_with('/'));
    let args = args(p);
    in_shm(&p.exe)
        || (p
            .cwd
            .as_deref()
            .is_some_and(|cwd| cwd == SHM || in_shm(cwd))
            && args.starts_with("./"))
        || (is_shell(&p.name)
            && (args.starts_with("-c /dev/shm")
                || args.starts_with("-i /dev/shm")
                || args.starts_with("/dev/shm")))
}

fn fileless_execution(p: &Process) -> bool {
    p.exe_from_memfd
        && !in_list(&p.name, MEMFD_RUNTIMES)
        && !p
            .parent_name
            .as_deref()
            .is_some_and(|parent| in_list(parent, MEMFD_RUNTIMES))
        && !p.exe.contains(RUNC_MEMFD)
}

/// Falco's `sensitive_files`: the exact files, or a direct entry of the sensitive
/// directories.
fn is_sensitive_file(path: &str) -> bool {
    in_list(path, SENSITIVE_FILES) || in_list(directory(path), SENSITIVE_DIRECTORIES)
}

/// Programs (and program lineages) that read sensitive files as their job.
fn trusted_reader(p: &Process, path: &str) -> bool {
    let name = p.name.as_str();
    if in_list(name, SENSITIVE_FILE_READERS) || in_list(name, PACKAGE_MANAGERS) || is_shell(name) {
        return true;
    }
    let parent = p.parent_name.as_deref();
    // passwd copying and comparing its files.
    (matches!(name, "cmp" | "cp") && matches!(parent, Some("passwd" | "run-parts")))
        // Ansible's modules run as python with "ansible" in the command line.
        || (matches!(name, "python" | "python3" | "pypy") && cmdline(p).contains("ansible"))
        // man-db's post-install script reads the password database for its user.
        || (name == "perl"
            && args(p).starts_with("-e")
            && args(p).contains("@pwd = getpwnam(")
            && args(p).contains("/usr/bin/mandb"))
        || (name == "runuser" && directory(path) == "/etc/pam.d")
        // The CIS benchmark runner inspects them with awk, cut and grep.
        || (grandparent(p) == Some("linux-bench")
            && matches!(name, "awk" | "cut" | "grep")
            && (path == "/etc/shadow" || directory(path) == "/etc/pam.d"))
}

fn directory_traversal_read(p: &Process, o: &Open) -> bool {
    let path = o.path.as_str();
    let monitored = path.starts_with("/etc/")
        || (path.starts_with("/home/") && path["/home/".len()..].contains("/.ssh/"))
        || path.starts_with("/root/.ssh")
        || path.contains("id_rsa");
    o.read
        && monitored
        && climbs_twice(&o.raw_path)
        && !p.parent_name.as_deref().is_some_and(is_shell)
}

/// `../` at least twice (Falco's `*../*../*`).
fn climbs_twice(raw: &str) -> bool {
    raw.split_once("../")
        .is_some_and(|(_, rest)| rest.contains("../"))
}

fn netcat_exec(p: &Process) -> bool {
    if in_list(&p.name, NETCAT) {
        let cmd = cmdline(p);
        cmd.contains(" -e") || cmd.contains(" -c")
    } else if p.name == "ncat" {
        let args = args(p);
        NCAT_EXEC_OPTIONS.iter().any(|o| args.contains(o))
    } else {
        false
    }
}

/// Falco's `outbound` destination: not unspecified, loopback or private.
fn is_public(address: IpAddr) -> bool {
    match address.to_canonical() {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_loopback() || a.is_private()),
        // IPv6's counterparts: unique local (fc00::/7) and link-local (fe80::/10).
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            !(a.is_unspecified()
                || a.is_loopback()
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80)
        }
    }
}

/// Whether the process is a package manager installing, removing or upgrading software.
/// Queries (`dpkg -l`, `rpm -qa`, `pip list`, `apk info`) are not.
fn changes_packages(p: &Process) -> bool {
    let verb = first_word(&p.args);
    match p.name.as_str() {
        "apt" | "apt-get" | "aptitude" => verb.is_some_and(|v| {
            in_list(
                v,
                &[
                    "install",
                    "reinstall",
                    "remove",
                    "purge",
                    "upgrade",
                    "dist-upgrade",
                    "full-upgrade",
                    "autoremove",
                    "autopurge",
                    "update",
                    "build-dep",
                    "satisfy",
                ],
            )
        }),
        "dpkg" => p.args.iter().any(|a| {
            in_list(
                a,
                &[
                    "--install",
                    "--unpack",
                    "--remove",
                    "--purge",
                    "--configure",
                ],
            ) || short_option_starting_with(a, &['i', 'r', 'P'])
        }),
        "rpm" => p.args.iter().any(|a| {
            in_list(
                a,
                &[
                    "--install",
                    "--upgrade",
                    "--freshen",
                    "--erase",
                    "--reinstall",
                ],
            ) || short_option_starting_with(a, &['i', 'U', 'F', 'e'])
        }),
        "yum" | "dnf" | "dnf5" | "microdnf" | "tdnf" | "zypper" => verb.is_some_and(|v| {
            in_list(
                v,
                &[
                    "install",
                    "in",
                    "reinstall",
                    "remove",
                    "rm",
                    "erase",
                    "update",
                    "up",
                    "upgrade",
                    "downgrade",
                    "localinstall",
                    "groupinstall",
                    "dist-upgrade",
                    "dup",
                    "patch",
                ],
            )
        }),
        "apk" => verb.is_some_and(|v| in_list(v, &["add", "del", "upgrade", "fix"])),
        "pacman" => p
            .args
            .iter()
            .any(|a| short_option_starting_with(a, &['S', 'U', 'R'])),
        "pip" | "pip2" | "pip3" | "uv" | "conda" | "gem" => {
            // `uv pip install`: the verb follows `pip`.
            let verb = if p.name == "uv" && verb == Some("pip") {
                p.args
                    .iter()
                    .skip_while(|a| *a != "pip")
                    .nth(1)
                    .map(String::as_str)
            } else {
                verb
            };
            verb.is_some_and(|v| in_list(v, &["install", "uninstall", "update", "remove"]))
        }
        "npm" | "pnpm" => verb.is_some_and(|v| {
            in_list(
                v,
                &[
                    "install",
                    "i",
                    "ci",
                    "add",
                    "update",
                    "up",
                    "uninstall",
                    "remove",
                    "rm",
                ],
            )
        }),
        // `yarn` alone installs.
        "yarn" => verb.is_none_or(|v| in_list(v, &["install", "add", "upgrade", "remove"])),
        // `python -m pip install …`
        name if name.starts_with("python") => {
            let mut args = p.args.iter().map(String::as_str);
            args.any(|a| a == "-m")
                && args.next() == Some("pip")
                && args
                    .find(|a| !a.starts_with('-'))
                    .is_some_and(|v| v == "install" || v == "uninstall")
        }
        _ => false,
    }
}

/// The first argument that is not an option.
fn first_word(args: &[String]) -> Option<&str> {
    args.iter()
        .map(String::as_str)
        .find(|a| !a.starts_with('-'))
}

/// `-ivh` for `i`: a bundle of short options whose first is one of `letters`.
fn short_option_starting_with(arg: &str, letters: &[char]) -> bool {
    let mut chars = arg.chars();
    chars.next() == Some('-') && chars.next().is_some_and(|c| letters.contains(&c))
}

fn write_below_binary_dir_or_etc(p: &Process, action: &Action) -> bool {
    let path_hit = |path: &str| -> Option<bool> {
        // Some(true): below /etc; Some(false): below a binary directory.
        if below_or_at(path, ETC) {
            Some(true)
        } else if BINARY_DIRECTORIES.iter().any(|d| below_or_at(path, d)) {
            Some(false)
        } else {
            None
        }
    };
    let hit = match action {
        Action::Open(o) if o.write || o.create => path_hit(&o.path),
        Action::Unlink { path } => path_hit(path),
        Action::Link { path, .. } => path_hit(path),
        Action::Rename { from, to } => match (path_hit(from), path_hit(to)) {
            (Some(a), Some(b)) => Some(a && b),
            (a, b) => a.or(b),
        },
        _ => None,
    };
    let Some(only_etc) = hit else {
        return false;
    };
    if in_list(&p.name, PACKAGE_MANAGERS) || ancestry(p).any(|a| in_list(a, PACKAGE_MANAGERS)) {
        return false;
    }
    let setup = in_list(&p.name, SYSTEM_FILE_MAINTAINERS)
        || ancestry(p).any(|a| in_list(a, ENTRYPOINT_SCRIPTS));
    !(only_etc && setup)
}

/// `path` is `dir` or below it.
fn below_or_at(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The directory part of an absolute path (`/etc` for `/etc/shadow`, `/` for `/x`).
pub(crate) fn directory(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// The last component of a path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A string made of pieces joined by single spaces, read in place.
#[derive(Clone, Copy)]
pub(crate) struct Joined<'a> {
    head: Option<&'a str>,
    rest: &'a [String],
}

/// Falco's `proc.cmdline`: the name, then the arguments.
pub(crate) fn cmdline(p: &Process) -> Joined<'_> {
    Joined {
        head: Some(&p.name),
        rest: &p.args,
    }
}

/// Falco's `proc.cmdline` as a string, for messages (only built once a rule matched).
pub(crate) fn cmdline_string(p: &Process) -> String {
    let bytes: Vec<u8> = cmdline(p).bytes().collect();
    // Whole UTF-8 pieces joined by ASCII spaces stay UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

/// Falco's `proc.args`: the arguments, space-separated.
pub(crate) fn args(p: &Process) -> Joined<'_> {
    Joined {
        head: None,
        rest: &p.args,
    }
}

impl<'a> Joined<'a> {
    fn bytes(self) -> impl Iterator<Item = u8> + Clone + 'a {
        let head = self.head;
        head.into_iter()
            .flat_map(str::bytes)
            .chain(self.rest.iter().enumerate().flat_map(move |(i, a)| {
                (head.is_some() || i > 0)
                    .then_some(b' ')
                    .into_iter()
                    .chain(a.bytes())
            }))
    }

    fn len(self) -> usize {
        let pieces = self.head.iter().count() + self.rest.len();
        self.head.map_or(0, str::len)
            + self.rest.iter().map(String::len).sum::<usize>()
            + pieces.saturating_sub(1)
    }

    pub(crate) fn starts_with(self, needle: &str) -> bool {
        prefix_of(self.bytes(), needle, false)
    }

    pub(crate) fn equals(self, needle: &str) -> bool {
        self.len() == needle.len() && self.starts_with(needle)
    }

    pub(crate) fn ends_with(self, needle: &str) -> bool {
        let len = self.len();
        len >= needle.len() && prefix_of(self.bytes().skip(len - needle.len()), needle, false)
    }

    pub(crate) fn contains(self, needle: &str) -> bool {
        find(self.bytes(), needle, false)
    }

    /// [`contains`](Self::contains), ignoring ASCII case.
    pub(crate) fn contains_ci(self, needle: &str) -> bool {
        find(self.bytes(), needle, true)
    }
}

fn prefix_of(mut text: impl Iterator<Item = u8>, needle: &str, ci: bool) -> bool {
    needle.bytes().all(|n| {
        text.next().is_some_and(|t| {
            if ci {
                t.eq_ignore_ascii_case(&n)
            } else {
                t == n
            }
        })
    })
}

fn find(mut text: impl Iterator<Item = u8> + Clone, needle: &str, ci: bool) -> bool {
    loop {
        if prefix_of(text.clone(), needle, ci) {
            return true;
        }
        if text.next().is_none() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(name: &str, args: &[&str]) -> Process {
        Process {
            name: name.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Process::default()
        }
    }

    #[test]
    fn joined_text_reads_like_the_joined_string() {
        let cases = [
            process("sh", &["-c", "uname -a 2>&1"]),
            process("grep", &[]),
            process("", &["a"]),
            process("find", &["/", "-name", "id_rsa"]),
        ];
        let needles = [
            "sh -c",
            "sh -c uname -a 2>&1",
            "-c uname",
            "2>&1",
            "grep",
            "",
            " ",
            "a",
            "id_rsa",
            "/ -name",
            "-NAME",
            "x",
        ];
        for p in &cases {
            let whole = std::iter::once(p.name.clone())
                .chain(p.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ");
            let only_args = p.args.join(" ");
            for n in needles {
                let c = cmdline(p);
                assert_eq!(c.starts_with(n), whole.starts_with(n), "{whole:?} {n:?}");
                assert_eq!(c.ends_with(n), whole.ends_with(n), "{whole:?} {n:?}");
                assert_eq!(c.contains(n), whole.contains(n), "{whole:?} {n:?}");
                assert_eq!(c.equals(n), whole == n, "{whole:?} {n:?}");
                assert_eq!(
                    c.contains_ci(n),
                    whole.to_lowercase().contains(&n.to_lowercase()),
                    "{whole:?} {n:?}"
                );
                let a = args(p);
                assert_eq!(a.contains(n), only_args.contains(n), "{only_args:?} {n:?}");
                assert_eq!(
                    a.ends_with(n),
                    only_args.ends_with(n),
                    "{only_args:?} {n:?}"
                );
                assert_eq!(a.len(), only_args.len());
            }
        }
    }

    #[test]
    fn paths() {
        assert_eq!(directory("/etc/shadow"), "/etc");
        assert_eq!(directory("/etc/pam.d/login"), "/etc/pam.d");
        assert_eq!(directory("/x"), "/");
        assert_eq!(file_name("/var/log/syslog"), "syslog");
        assert!(below_or_at("/usr/bin/ls", "/usr/bin"));
        assert!(below_or_at("/usr/bin", "/usr/bin"));
        assert!(!below_or_at("/usr/binary", "/usr/bin"));
        assert!(climbs_twice("../../etc/passwd"));
        assert!(climbs_twice("/app/static/../x/../../etc/shadow"));
        assert!(!climbs_twice("../etc/passwd"));
        assert!(!climbs_twice("..../etc"));
    }

    #[test]
    fn public_addresses() {
        let table = [
            ("203.0.113.7", true),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("127.0.0.1", false),
            ("0.0.0.0", false),
            ("2001:db8::1", true),
            ("::1", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:198.51.100.1", true),
        ];
        for (a, want) in table {
            assert_eq!(is_public(a.parse().expect("address")), want, "{a}");
        }
    }
}
