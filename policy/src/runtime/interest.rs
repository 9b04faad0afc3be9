//! What the kernel side must send for the selected rules to see what they match: which hooks
//! to attach, and for the busy ones (open, link, unlink/rename, connect, socket, dup) which
//! events are worth the ring buffer.
//!
//! This is a pre-filter: it is deliberately wider than the rules (an open of `/etc/shadow` is
//! sent even when the reading program turns out to be trusted) and never narrower. The rules
//! decide; an event the filter lets through and no rule matches costs a little time, one it
//! wrongly drops is a missed detection.

use std::net::SocketAddr;

use super::catalogue::{Hook, HookSet, RuntimeRule};
use super::event::socket;
use super::facts::ClusterFacts;
use super::lists::*;

/// How a [`PathPattern`]'s text is compared with a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathMatch {
    /// The whole path.
    Exact,
    /// The path starts with the text.
    Prefix,
    /// The path ends with the text.
    Suffix,
}

/// Which opens a [`PathPattern`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Opened for reading (O_RDONLY or O_RDWR).
    Read,
    /// Opened for writing, creating or truncating (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC).
    Write,
    /// Either (and the patterns of links, unlinks and renames, which have no access mode).
    Any,
}

/// A path worth sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPattern {
    pub how: PathMatch,
    pub text: &'static str,
    pub access: Access,
}

impl PathPattern {
    /// Whether `path`, opened for reading and/or writing as given, matches.
    pub fn matches(&self, path: &str, read: bool, write: bool) -> bool {
        let access = match self.access {
            Access::Read => read,
            Access::Write => write,
            Access::Any => true,
        };
        access
            && match self.how {
                PathMatch::Exact => path == self.text,
                PathMatch::Prefix => path.starts_with(self.text),
                PathMatch::Suffix => path.ends_with(self.text),
            }
    }
}

/// What the kernel filter must let through for a set of rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    /// The hooks to attach. Execs are all sent: the agent tracks processes by them anyway.
    /// Ptrace and module loads are rare and all sent.
    pub hooks: HookSet,
    /// Opens to send (by the resolved path), sorted.
    pub open: Vec<PathPattern>,
    /// Also send read opens whose path as passed (the raw path) contains `../` twice, for
    /// `runtime.directoryTraversalRead`; the resolved path is judged in user space.
    pub open_raw_traversal: bool,
    /// Links (hard or symbolic) to send by what they point at.
    pub link_targets: Vec<PathPattern>,
    /// Links to send by the new name they create.
    pub link_paths: Vec<PathPattern>,
    /// Unlinks, and renames by either name, to send.
    pub unlink_rename: Vec<PathPattern>,
    /// Connects to send by remote port, whatever the address.
    pub connect_ports: Vec<u16>,
    /// Connects to send by remote address and port.
    pub connect_endpoints: Vec<SocketAddr>,
    /// Sockets to send by address family (`AF_PACKET`).
    pub socket_families: Vec<u16>,
    /// Send dups whose new descriptor is 0, 1 or 2 and whose descriptor is an IP socket.
    pub dup_to_std_streams: bool,
}

const fn pattern(how: PathMatch, text: &'static str, access: Access) -> PathPattern {
    PathPattern { how, text, access }
}

impl Interest {
    /// What `rules` need, with the API server's addresses from `cluster`.
    pub fn of(rules: impl IntoIterator<Item = RuntimeRule>, cluster: &ClusterFacts) -> Interest {
        let mut i = Interest::default();
        for rule in rules {
            i.hooks = i.hooks.union(rule.hooks());
            i.add(rule, cluster);
        }
        for list in [
            &mut i.open,
            &mut i.link_targets,
            &mut i.link_paths,
            &mut i.unlink_rename,
        ] {
            list.sort();
            list.dedup();
        }
        i.connect_ports.sort_unstable();
        i.connect_ports.dedup();
        i.connect_endpoints.sort();
        i.connect_endpoints.dedup();
        i.socket_families.sort_unstable();
        i.socket_families.dedup();
        i
    }

    fn add(&mut self, rule: RuntimeRule, cluster: &ClusterFacts) {
        use Access::{Any, Read, Write};
        use PathMatch::{Exact, Prefix, Suffix};
        use RuntimeRule as R;
        match rule {
            R::ReadSensitiveFileUntrusted | R::ReadSensitiveFileTrustedAfterStartup => {
                self.open
                    .extend(SENSITIVE_FILES.iter().map(|f| pattern(Exact, f, Read)));
                self.open.extend([
                    pattern(Prefix, "/etc/sudoers.d/", Read),
                    pattern(Prefix, "/etc/pam.d/", Read),
                ]);
            }
            R::DirectoryTraversalRead => self.open_raw_traversal = true,
            R::ClearLogActivities => {
                self.open.extend([
                    pattern(Prefix, "/var/log/", Write),
                    pattern(Prefix, "/dev/log/", Write),
                ]);
                self.open
                    .extend(LOG_FILE_SUFFIXES.iter().map(|f| pattern(Suffix, f, Write)));
            }
            R::ReleaseAgentEscape => self.open.push(pattern(Suffix, "release_agent", Write)),
            R::WriteBelowBinaryDirOrEtc => {
                for dir in GUARDED_PREFIXES {
                    self.open.push(pattern(Prefix, dir, Write));
                    self.link_paths.push(pattern(Prefix, dir, Any));
                    self.unlink_rename.push(pattern(Prefix, dir, Any));
                }
                for dir in BINARY_DIRECTORIES.iter().chain([&ETC]) {
                    self.unlink_rename.push(pattern(Exact, dir, Any));
                }
            }
            R::SymlinkOverSensitiveFiles => self.link_targets.extend(
                SENSITIVE_FILES
                    .iter()
                    .chain(SENSITIVE_LINK_DIRECTORIES)
                    .map(|f| pattern(Exact, f, Any)),
            ),
            R::HardlinkOverSensitiveFiles => self
                .link_targets
                .extend(SENSITIVE_FILES.iter().map(|f| pattern(Exact, f, Any))),
            R::ContactK8sApiServer => self
                .connect_endpoints
                .extend(cluster.api_server.iter().copied()),
            R::SshNonStandardPort => self.connect_ports.extend(SSH_NON_STANDARD_PORTS),
            R::CryptoMiningPool => self.connect_ports.extend(MINING_POOL_PORTS),
            R::PacketSocket => self.socket_families.push(socket::AF_PACKET),
            R::RedirectStdioToNetwork => self.dup_to_std_streams = true,
            // Exec, ptrace and module-load rules: every event of their hook is sent.
            R::TerminalShell
            | R::RunShellUntrusted
            | R::DropAndExecuteNewBinary
            | R::ExecutionFromDevShm
            | R::FilelessExecution
            | R::DebugfsInPrivilegedContainer
            | R::KernelModuleInjection
            | R::PtraceAttached
            | R::PtraceAntiDebug
            | R::SearchPrivateKeysOrPasswords
            | R::FindAwsCredentials
            | R::RemoveBulkData
            | R::NetcatRemoteCodeExecution
            | R::PackageManagement => {}
        }
    }

    /// Whether an open of `path` (resolved) / `raw_path` (as passed) is worth sending.
    pub fn wants_open(&self, path: &str, raw_path: &str, read: bool, write: bool) -> bool {
        self.hooks.contains(Hook::Open)
            && (self.open.iter().any(|p| p.matches(path, read, write))
                || (self.open_raw_traversal
                    && read
                    && raw_path
                        .split_once("../")
                        .is_some_and(|(_, rest)| rest.contains("../"))))
    }
}

/// `/<name>` for every log file name.
const LOG_FILE_SUFFIXES: [&str; LOG_FILES.len()] = [
    "/syslog",
    "/auth.log",
    "/secure",
    "/kern.log",
    "/cron",
    "/user.log",
    "/dpkg.log",
    "/last.log",
    "/yum.log",
    "/access_log",
    "/mysql.log",
    "/mysqld.log",
];

/// The guarded directories with their trailing slash.
const GUARDED_PREFIXES: [&str; 7] = [
    "/bin/",
    "/sbin/",
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/local/bin/",
    "/usr/local/sbin/",
    "/etc/",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_lists_follow_their_sources() {
        for (suffix, name) in LOG_FILE_SUFFIXES.iter().zip(LOG_FILES) {
            assert_eq!(*suffix, format!("/{name}"));
        }
        let dirs: Vec<String> = BINARY_DIRECTORIES
            .iter()
            .chain([&ETC])
            .map(|d| format!("{d}/"))
            .collect();
        assert_eq!(GUARDED_PREFIXES.to_vec(), dirs);
    }

    #[test]
    fn every_rule_adds_its_hooks_and_nothing_for_no_rules() {
        let cluster = ClusterFacts::default();
        assert_eq!(Interest::of([], &cluster), Interest::default());
        for rule in RuntimeRule::ALL {
            let i = Interest::of([rule], &cluster);
            assert_eq!(i.hooks, rule.hooks(), "{}", rule.id());
        }
    }

    #[test]
    fn opens() {
        let all = Interest::of(RuntimeRule::ALL, &ClusterFacts::default());
        let table = [
            ("/etc/shadow", "/etc/shadow", true, false, true),
            ("/etc/pam.d/sshd", "pam.d/sshd", true, false, true),
            ("/etc/sudoers.d/x", "/etc/sudoers.d/x", true, false, true),
            ("/var/log/app.log", "/var/log/app.log", false, true, true),
            ("/var/log/app.log", "/var/log/app.log", true, false, false),
            ("/data/log/syslog", "/data/log/syslog", false, true, true),
            (
                "/sys/fs/cgroup/x/release_agent",
                "/sys/fs/cgroup/x/release_agent",
                false,
                true,
                true,
            ),
            ("/usr/bin/ls", "/usr/bin/ls", false, true, true),
            ("/usr/bin/ls", "/usr/bin/ls", true, false, false),
            ("/etc/passwd", "../../etc/passwd", true, false, true),
            ("/app/index.html", "/app/index.html", true, false, false),
            ("/tmp/x", "/tmp/x", false, true, false),
        ];
        for (path, raw, read, write, want) in table {
            assert_eq!(all.wants_open(path, raw, read, write), want, "{path} {raw}");
        }
        let exec_only = Interest::of([RuntimeRule::TerminalShell], &ClusterFacts::default());
        assert!(!exec_only.wants_open("/etc/shadow", "/etc/shadow", true, false));
    }

    #[test]
    fn connects_sockets_links_and_dups() {
        let cluster = ClusterFacts {
            api_server: vec!["10.96.0.1:443".parse().expect("address")],
        };
        let all = Interest::of(RuntimeRule::ALL, &cluster);
        assert_eq!(all.connect_endpoints, cluster.api_server);
        for port in [22u16, 3333, 4444, 443, 14444] {
            assert_eq!(all.connect_ports.contains(&port), port != 22, "port {port}");
        }
        assert!(all.connect_ports.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all.socket_families, vec![socket::AF_PACKET]);
        assert!(all.dup_to_std_streams);
        assert!(
            all.link_targets
                .iter()
                .any(|p| p.matches("/etc/shadow", false, false))
        );
        assert!(
            all.link_targets
                .iter()
                .any(|p| p.matches("/root", false, false))
        );
        assert!(
            all.link_paths
                .iter()
                .any(|p| p.matches("/usr/local/bin/kubectl", false, false))
        );
        assert!(
            all.unlink_rename
                .iter()
                .any(|p| p.matches("/usr/bin", false, false))
        );
        let none = Interest::of([RuntimeRule::TerminalShell], &cluster);
        assert!(none.connect_endpoints.is_empty() && none.connect_ports.is_empty());
    }
}
