//! The runtime rules Palisade knows: ids, names, priorities, the sensor hooks each needs, and
//! their compliance references. What each rule matches is in `matching`, its message in
//! `output`.

use std::fmt;

use super::event::Action;

/// A runtime rule. Falco's rules keep Falco's name and meaning; the last three are
/// Palisade's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuntimeRule {
    TerminalShell,
    RunShellUntrusted,
    DropAndExecuteNewBinary,
    ExecutionFromDevShm,
    FilelessExecution,
    DebugfsInPrivilegedContainer,
    KernelModuleInjection,
    PtraceAttached,
    PtraceAntiDebug,
    ReadSensitiveFileUntrusted,
    ReadSensitiveFileTrustedAfterStartup,
    DirectoryTraversalRead,
    SearchPrivateKeysOrPasswords,
    FindAwsCredentials,
    ClearLogActivities,
    RemoveBulkData,
    SymlinkOverSensitiveFiles,
    HardlinkOverSensitiveFiles,
    ReleaseAgentEscape,
    ContactK8sApiServer,
    NetcatRemoteCodeExecution,
    RedirectStdioToNetwork,
    PacketSocket,
    SshNonStandardPort,
    PackageManagement,
    WriteBelowBinaryDirOrEtc,
    CryptoMiningPool,
}

/// How urgent a detection is, on Falco's scale (most urgent first, so `Ord` sorts the most
/// urgent first too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    /// Falco's spelling, as its JSON output has it.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// The PolicyReport result severity (`wgpolicyk8s.io`: critical, high, medium, low, info).
    pub fn report_severity(self) -> &'static str {
        match self {
            Priority::Emergency | Priority::Alert | Priority::Critical => "critical",
            Priority::Error => "high",
            Priority::Warning => "medium",
            Priority::Notice => "low",
            Priority::Informational | Priority::Debug => "info",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of kernel hook the sensor attaches; each [`Action`] comes from one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// execve/execveat. The fallback sensor (netlink process connector) has only this one.
    Exec,
    /// open/openat/openat2.
    Open,
    /// connect.
    Connect,
    /// ptrace.
    Ptrace,
    /// memfd_create.
    Memfd,
    /// init_module/finit_module.
    ModuleLoad,
    /// socket.
    Socket,
    /// unlink/unlinkat/rmdir.
    Unlink,
    /// rename/renameat/renameat2.
    Rename,
    /// link/linkat/symlink/symlinkat.
    Link,
    /// dup/dup2/dup3.
    Dup,
}

impl Hook {
    pub const ALL: [Hook; 11] = [
        Hook::Exec,
        Hook::Open,
        Hook::Connect,
        Hook::Ptrace,
        Hook::Memfd,
        Hook::ModuleLoad,
        Hook::Socket,
        Hook::Unlink,
        Hook::Rename,
        Hook::Link,
        Hook::Dup,
    ];

    /// The hook an action comes from.
    pub fn of(action: &Action) -> Hook {
        match action {
            Action::Exec => Hook::Exec,
            Action::Open(_) => Hook::Open,
            Action::Connect(_) => Hook::Connect,
            Action::Ptrace { .. } => Hook::Ptrace,
            Action::MemfdCreate { .. } => Hook::Memfd,
            Action::ModuleLoad => Hook::ModuleLoad,
            Action::Socket { .. } => Hook::Socket,
            Action::Unlink { .. } => Hook::Unlink,
            Action::Rename { .. } => Hook::Rename,
            Action::Link { .. } => Hook::Link,
            Action::Dup { .. } => Hook::Dup,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Exec => "Exec",
            Hook::Open => "Open",
            Hook::Connect => "Connect",
            Hook::Ptrace => "Ptrace",
            Hook::Memfd => "Memfd",
            Hook::ModuleLoad => "ModuleLoad",
            Hook::Socket => "Socket",
            Hook::Unlink => "Unlink",
            Hook::Rename => "Rename",
            Hook::Link => "Link",
            Hook::Dup => "Dup",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of hooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HookSet(u16);

impl HookSet {
    pub const EMPTY: HookSet = HookSet(0);
    /// What the fallback sensor (exec events only) provides.
    pub const EXEC_ONLY: HookSet = HookSet::of(&[Hook::Exec]);

    pub const fn of(hooks: &[Hook]) -> HookSet {
        let mut bits = 0;
        let mut i = 0;
        while i < hooks.len() {
            bits |= 1 << hooks[i] as u16;
            i += 1;
        }
        HookSet(bits)
    }

    pub fn all() -> HookSet {
        HookSet::of(&Hook::ALL)
    }

    pub fn contains(self, hook: Hook) -> bool {
        self.0 & (1 << hook as u16) != 0
    }

    pub fn insert(&mut self, hook: Hook) {
        self.0 |= 1 << hook as u16;
    }

    pub fn union(self, other: HookSet) -> HookSet {
        HookSet(self.0 | other.0)
    }

    /// The hooks of `self` that `other` lacks.
    pub fn without(self, other: HookSet) -> HookSet {
        HookSet(self.0 & !other.0)
    }

    pub fn is_subset(self, other: HookSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Hook> {
        Hook::ALL.into_iter().filter(move |h| self.contains(*h))
    }
}

impl FromIterator<Hook> for HookSet {
    fn from_iter<I: IntoIterator<Item = Hook>>(iter: I) -> Self {
        let mut set = HookSet::EMPTY;
        for h in iter {
            set.insert(h);
        }
        set
    }
}

impl fmt::Display for HookSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for h in self.iter() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            f.write_str(h.as_str())?;
        }
        Ok(())
    }
}

/// What the catalogue says about one rule.
struct Info {
    rule: RuntimeRule,
    id: &'static str,
    name: &'static str,
    /// Whether the name (and meaning) is Falco's.
    falco: bool,
    priority: Priority,
    hooks: HookSet,
    description: &'static str,
}

use Hook as H;
use Priority as P;
use RuntimeRule as R;

const fn info(
    rule: RuntimeRule,
    id: &'static str,
    name: &'static str,
    falco: bool,
    priority: Priority,
    hooks: HookSet,
    description: &'static str,
) -> Info {
    Info {
        rule,
        id,
        name,
        falco,
        priority,
        hooks,
        description,
    }
}

const EXEC: HookSet = HookSet::of(&[H::Exec]);
const OPEN: HookSet = HookSet::of(&[H::Open]);
const CONNECT: HookSet = HookSet::of(&[H::Connect]);
const PTRACE: HookSet = HookSet::of(&[H::Ptrace]);
const LINK: HookSet = HookSet::of(&[H::Link]);

/// Indexed by `RuntimeRule as usize` (a test holds the order).
const CATALOGUE: [Info; RuntimeRule::ALL.len()] = [
    info(
        R::TerminalShell,
        "runtime.terminalShell",
        "Terminal shell in container",
        true,
        P::Notice,
        EXEC,
        "A shell with a terminal attached was started as a container's entry or exec point (kubectl exec -it).",
    ),
    info(
        R::RunShellUntrusted,
        "runtime.runShellUntrusted",
        "Run shell untrusted",
        true,
        P::Notice,
        EXEC,
        "A shell was started below a server program (web server, database, mail server) that should never start one.",
    ),
    info(
        R::DropAndExecuteNewBinary,
        "runtime.dropAndExecuteNewBinary",
        "Drop and execute new binary in container",
        true,
        P::Critical,
        EXEC,
        "A program that is not part of the container's image (written after the container started) was executed.",
    ),
    info(
        R::ExecutionFromDevShm,
        "runtime.executionFromDevShm",
        "Execution from /dev/shm",
        true,
        P::Warning,
        EXEC,
        "A program or script was executed from the shared-memory filesystem /dev/shm.",
    ),
    info(
        R::FilelessExecution,
        "runtime.filelessExecution",
        "Fileless execution via memfd_create",
        true,
        P::Critical,
        EXEC,
        "A program was executed from an anonymous memory file (memfd_create), leaving nothing on disk.",
    ),
    info(
        R::DebugfsInPrivilegedContainer,
        "runtime.debugfsInPrivilegedContainer",
        "Debugfs Launched in Privileged Container",
        true,
        P::Warning,
        EXEC,
        "The filesystem debugger debugfs was started in a privileged container, a known way to read and write the node's disks.",
    ),
    info(
        R::KernelModuleInjection,
        "runtime.kernelModuleInjection",
        "Linux Kernel Module Injection Detected",
        true,
        P::Warning,
        HookSet::of(&[H::ModuleLoad]),
        "A container process holding CAP_SYS_MODULE loaded a kernel module into the node's kernel.",
    ),
    info(
        R::PtraceAttached,
        "runtime.ptraceAttached",
        "PTRACE attached to process",
        true,
        P::Warning,
        PTRACE,
        "A process attached to another with ptrace, or wrote into its memory or registers: process injection.",
    ),
    info(
        R::PtraceAntiDebug,
        "runtime.ptraceAntiDebug",
        "PTRACE anti-debug attempt",
        true,
        P::Notice,
        PTRACE,
        "A process asked to be traced by its parent (PTRACE_TRACEME) so that no debugger can attach: a malware habit.",
    ),
    info(
        R::ReadSensitiveFileUntrusted,
        "runtime.readSensitiveFileUntrusted",
        "Read sensitive file untrusted",
        true,
        P::Warning,
        OPEN,
        "A program with no reason to read them opened a password, sudo or PAM file for reading.",
    ),
    info(
        R::ReadSensitiveFileTrustedAfterStartup,
        "runtime.readSensitiveFileTrustedAfterStartup",
        "Read sensitive file trusted after startup",
        true,
        P::Warning,
        OPEN,
        "A server program opened a password, sudo or PAM file for reading more than 5 seconds after it started.",
    ),
    info(
        R::DirectoryTraversalRead,
        "runtime.directoryTraversalRead",
        "Directory traversal monitored file read",
        true,
        P::Warning,
        OPEN,
        "A file below /etc or an SSH key was opened through a path climbing out with ../ twice: a path traversal.",
    ),
    info(
        R::SearchPrivateKeysOrPasswords,
        "runtime.searchPrivateKeysOrPasswords",
        "Search Private Keys or Passwords",
        true,
        P::Warning,
        EXEC,
        "grep searched for private key headers, or find searched for SSH private key files.",
    ),
    info(
        R::FindAwsCredentials,
        "runtime.findAwsCredentials",
        "Find AWS Credentials",
        true,
        P::Warning,
        EXEC,
        "grep searched for AWS access key names, or find searched for .aws/credentials.",
    ),
    info(
        R::ClearLogActivities,
        "runtime.clearLogActivities",
        "Clear Log Activities",
        true,
        P::Warning,
        OPEN,
        "A log file was opened for writing with truncation, erasing what it recorded.",
    ),
    info(
        R::RemoveBulkData,
        "runtime.removeBulkData",
        "Remove Bulk Data from Disk",
        true,
        P::Warning,
        EXEC,
        "A tool that destroys data in bulk (shred, mkfs, mke2fs) was started.",
    ),
    info(
        R::SymlinkOverSensitiveFiles,
        "runtime.symlinkOverSensitiveFiles",
        "Create Symlink Over Sensitive Files",
        true,
        P::Warning,
        LINK,
        "A symbolic link was created to a sensitive file, /, /etc or /root.",
    ),
    info(
        R::HardlinkOverSensitiveFiles,
        "runtime.hardlinkOverSensitiveFiles",
        "Create Hardlink Over Sensitive Files",
        true,
        P::Warning,
        LINK,
        "A hard link was created to a sensitive file such as /etc/shadow.",
    ),
    info(
        R::ReleaseAgentEscape,
        "runtime.releaseAgentEscape",
        "Detect release_agent File Container Escapes",
        true,
        P::Critical,
        OPEN,
        "A process able to write any file and holding CAP_SYS_ADMIN opened a cgroup release_agent file for writing: a container escape.",
    ),
    info(
        R::ContactK8sApiServer,
        "runtime.contactK8sApiServer",
        "Contact K8S API Server From Container",
        true,
        P::Notice,
        CONNECT,
        "A container connected to the Kubernetes API server (the kubernetes Service or its endpoints).",
    ),
    info(
        R::NetcatRemoteCodeExecution,
        "runtime.netcatRemoteCodeExecution",
        "Netcat Remote Code Execution in Container",
        true,
        P::Warning,
        EXEC,
        "Netcat or ncat was started with an option that runs a program for whoever is at the other end.",
    ),
    info(
        R::RedirectStdioToNetwork,
        "runtime.redirectStdioToNetwork",
        "Redirect STDOUT/STDIN to Network Connection in Container",
        true,
        P::Notice,
        HookSet::of(&[H::Dup]),
        "A network connection was duplicated onto standard input, output or error: the shape of a reverse shell.",
    ),
    info(
        R::PacketSocket,
        "runtime.packetSocket",
        "Packet socket created in container",
        true,
        P::Notice,
        HookSet::of(&[H::Socket]),
        "A packet (AF_PACKET, layer 2) socket was created: sniffing, ARP spoofing or a kernel exploit.",
    ),
    info(
        R::SshNonStandardPort,
        "runtime.sshNonStandardPort",
        "Disallowed SSH Connection Non Standard Port",
        true,
        P::Notice,
        CONNECT,
        "An SSH client connected out to a public address on a port other services use (80, 443, 53…).",
    ),
    info(
        R::PackageManagement,
        "runtime.packageManagement",
        "Package management in container",
        false,
        P::Error,
        EXEC,
        "A package manager installed, removed or upgraded software in a running container.",
    ),
    info(
        R::WriteBelowBinaryDirOrEtc,
        "runtime.writeBelowBinaryDirOrEtc",
        "Write below binary directory or /etc",
        false,
        P::Error,
        HookSet::of(&[H::Open, H::Rename, H::Unlink, H::Link]),
        "A file below /bin, /sbin, /usr/bin, /usr/sbin, /usr/local/bin, /usr/local/sbin or /etc was written, created, renamed, linked or removed outside package management.",
    ),
    info(
        R::CryptoMiningPool,
        "runtime.cryptoMiningPool",
        "Connection to crypto-mining pool port",
        false,
        P::Critical,
        CONNECT,
        "A process connected over TCP to a public address on a port that crypto-mining pools (Stratum) use.",
    ),
];

impl RuntimeRule {
    /// Every runtime rule, in catalogue order: the default selection.
    pub const ALL: [RuntimeRule; 27] = [
        R::TerminalShell,
        R::RunShellUntrusted,
        R::DropAndExecuteNewBinary,
        R::ExecutionFromDevShm,
        R::FilelessExecution,
        R::DebugfsInPrivilegedContainer,
        R::KernelModuleInjection,
        R::PtraceAttached,
        R::PtraceAntiDebug,
        R::ReadSensitiveFileUntrusted,
        R::ReadSensitiveFileTrustedAfterStartup,
        R::DirectoryTraversalRead,
        R::SearchPrivateKeysOrPasswords,
        R::FindAwsCredentials,
        R::ClearLogActivities,
        R::RemoveBulkData,
        R::SymlinkOverSensitiveFiles,
        R::HardlinkOverSensitiveFiles,
        R::ReleaseAgentEscape,
        R::ContactK8sApiServer,
        R::NetcatRemoteCodeExecution,
        R::RedirectStdioToNetwork,
        R::PacketSocket,
        R::SshNonStandardPort,
        R::PackageManagement,
        R::WriteBelowBinaryDirOrEtc,
        R::CryptoMiningPool,
    ];

    fn info(self) -> &'static Info {
        let info = &CATALOGUE[self as usize];
        debug_assert_eq!(info.rule, self, "CATALOGUE out of order");
        info
    }

    /// The stable id (`runtime.terminalShell`), as exceptions and `spec.runtime` name it.
    pub fn id(self) -> &'static str {
        self.info().id
    }

    /// The rule's name: Falco's for Falco's rules (`Terminal shell in container`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Whether this is one of Falco's stable rules (same name, same meaning).
    pub fn is_falco(self) -> bool {
        self.info().falco
    }

    pub fn priority(self) -> Priority {
        self.info().priority
    }

    /// One line on what it detects.
    pub fn description(self) -> &'static str {
        self.info().description
    }

    /// The sensor hooks it needs to see everything it matches.
    pub fn hooks(self) -> HookSet {
        self.info().hooks
    }

    /// Whether `spec.runtime.enforce` may name it (every rule may: killing stays opt-in).
    pub fn can_kill(self) -> bool {
        true
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<RuntimeRule> {
        RuntimeRule::ALL.into_iter().find(|r| r.id() == id)
    }
}

impl fmt::Display for RuntimeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A set of runtime rules, as bits by catalogue index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RuleSet(u64);

impl RuleSet {
    pub(crate) const EMPTY: RuleSet = RuleSet(0);

    pub(crate) fn all() -> RuleSet {
        RuntimeRule::ALL.into_iter().collect()
    }

    pub(crate) fn contains(self, rule: RuntimeRule) -> bool {
        self.0 & (1 << rule as u64) != 0
    }

    pub(crate) fn insert(&mut self, rule: RuntimeRule) {
        self.0 |= 1 << rule as u64;
    }

    pub(crate) fn union(self, other: RuleSet) -> RuleSet {
        RuleSet(self.0 | other.0)
    }

    pub(crate) fn intersection(self, other: RuleSet) -> RuleSet {
        RuleSet(self.0 & other.0)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = RuntimeRule> {
        RuntimeRule::ALL
            .into_iter()
            .filter(move |r| self.contains(*r))
    }
}

impl FromIterator<RuntimeRule> for RuleSet {
    fn from_iter<I: IntoIterator<Item = RuntimeRule>>(iter: I) -> Self {
        let mut set = RuleSet::EMPTY;
        for r in iter {
            set.insert(r);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_in_enum_order_with_unique_ids_and_names() {
        let mut ids = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, rule) in RuntimeRule::ALL.into_iter().enumerate() {
            assert_eq!(rule as usize, i, "{rule:?}");
            assert_eq!(CATALOGUE[i].rule, rule);
            assert!(ids.insert(rule.id()), "{} twice", rule.id());
            assert!(names.insert(rule.name()), "{} twice", rule.name());
            assert!(rule.id().starts_with("runtime."), "{}", rule.id());
            let camel = &rule.id()["runtime.".len()..];
            assert!(
                camel.starts_with(|c: char| c.is_ascii_lowercase())
                    && camel.chars().all(|c| c.is_ascii_alphanumeric()),
                "{}",
                rule.id()
            );
            assert_eq!(RuntimeRule::from_id(rule.id()), Some(rule));
            assert!(!rule.hooks().is_empty(), "{}", rule.id());
            assert!(
                !rule.description().contains('\n') && rule.description().ends_with('.'),
                "{}",
                rule.id()
            );
        }
        assert_eq!(RuntimeRule::from_id("runtime.nope"), None);
        assert!(RuntimeRule::ALL.len() <= 64, "RuleSet holds 64");
    }

    #[test]
    fn falco_rules_keep_falco_priorities() {
        let table = [
            (R::TerminalShell, P::Notice),
            (R::RunShellUntrusted, P::Notice),
            (R::DropAndExecuteNewBinary, P::Critical),
            (R::ExecutionFromDevShm, P::Warning),
            (R::FilelessExecution, P::Critical),
            (R::DebugfsInPrivilegedContainer, P::Warning),
            (R::KernelModuleInjection, P::Warning),
            (R::PtraceAttached, P::Warning),
            (R::PtraceAntiDebug, P::Notice),
            (R::ReleaseAgentEscape, P::Critical),
            (R::ContactK8sApiServer, P::Notice),
            (R::RedirectStdioToNetwork, P::Notice),
            (R::PacketSocket, P::Notice),
            (R::SshNonStandardPort, P::Notice),
        ];
        for (rule, priority) in table {
            assert_eq!(rule.priority(), priority, "{}", rule.id());
        }
        assert_eq!(RuntimeRule::ALL.iter().filter(|r| !r.is_falco()).count(), 3);
    }

    #[test]
    fn hook_sets() {
        let set = HookSet::of(&[Hook::Open, Hook::Link]);
        assert!(set.contains(Hook::Open) && !set.contains(Hook::Exec));
        assert!(HookSet::EXEC_ONLY.is_subset(HookSet::all()));
        assert!(!set.is_subset(HookSet::EXEC_ONLY));
        assert_eq!(
            set.without(HookSet::of(&[Hook::Open])),
            HookSet::of(&[Hook::Link])
        );
        assert_eq!(set.to_string(), "Open, Link");
        assert_eq!(set.iter().collect::<HookSet>(), set);
        assert_eq!(Hook::ALL.into_iter().collect::<HookSet>(), HookSet::all());
    }
}
