//! The built-in lists the runtime rules consult: program names (as the kernel's `comm`, so
//! at most 15 bytes and cut there), paths, ports and image repositories. Each rule's page in
//! docs/rules/ lists the ones it uses; anything a cluster needs beyond them is a
//! `spec.exceptions` entry, not an edit here.
//!
//! The program lists follow the meaning of Falco's lists of the same purpose. Entries for
//! host-only management agents (configuration management, vendor agents that never run in
//! a Kubernetes container) are left out: these rules only ever see container processes.

/// Interactive shells.
pub(crate) const SHELLS: &[&str] = &["ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"];

/// Parents a container's first process (or a `kubectl exec` process) has when the parent is
/// still visible inside the container: the runtime's init stages. A parent outside the
/// container (the usual case) is no parent at all in the event.
pub(crate) const CONTAINER_RUNTIME_PARENTS: &[&str] = &[
    "runc:[0:PARENT]",
    "runc:[1:CHILD]",
    "runc",
    "docker-runc",
    "exe",
    "docker-runc-cur",
    "containerd-shim",
    "systemd",
    "crio",
    "conmon",
];

/// Servers that have no business starting a shell, directly or through a child: a shell
/// below one of them is what remote code execution looks like.
pub(crate) const PROTECTED_SHELL_SPAWNERS: &[&str] = &[
    // web servers
    "nginx",
    "httpd",
    "httpd-foregroun",
    "lighttpd",
    "apache",
    "apache2",
    // databases
    "mysqld",
    "postgres",
    "sqlplus",
    "couchdb",
    "memcached",
    "redis-server",
    "rabbitmq-server",
    "mongod",
    // mail
    "sendmail",
    "sendmail-msp",
    "postfix",
    "procmail",
    "exim4",
    "pickup",
    "showq",
    "mailq",
    "dovecot",
    "imap-login",
    "imap",
    "mailmng-core",
    "pop3-login",
    "dovecot-lda",
    "pop3",
    // agents and supervisors
    "fluentd",
    "flanneld",
    "splunkd",
    "consul",
    "smbd",
    "runsv",
    "PM2",
];

/// Parents whose shells are expected even below a protected server: supervisors, schedulers
/// and tools that run scripts by design.
pub(crate) const SHELL_SPAWNING_PARENTS: &[&str] = &[
    "gitlab-shell",
    "gitlab-mon",
    "gitlab-runner-b",
    "git",
    "anacron",
    "cron",
    "crond",
    "crontab",
    "needrestart",
    "mesos-docker-ex",
    "mesos-slave",
    "mesos-health-ch",
    "erl_child_setup",
    "exechealthz",
    "PM2",
    "PassengerWatchd",
    "c_rehash",
    "svlogd",
    "logrotate",
    "hhvm",
    "serf",
    "lb-controller",
    "nvidia-installe",
    "runsv",
    "statsite",
    "erlexec",
    "calico-node",
    "puma reactor",
];

/// Whole command lines (name and arguments) that servers run through `sh -c` to ask the
/// system a question.
pub(crate) const KNOWN_SHELL_COMMANDS: &[&str] = &[
    "sh -c uname -p 2> /dev/null",
    "sh -c uname -s 2>&1",
    "sh -c uname -r 2>&1",
    "sh -c uname -v 2>&1",
    "sh -c uname -a 2>&1",
    "sh -c ruby -v 2>&1",
    "sh -c getconf CLK_TCK",
    "sh -c getconf PAGESIZE",
    "sh -c LC_ALL=C LANG=C /sbin/ldconfig -p 2>/dev/null",
    "sh -c LANG=C /sbin/ldconfig -p 2>/dev/null",
    "sh -c /sbin/ldconfig -p 2>/dev/null",
    "sh -c stty -a 2>/dev/null",
    "sh -c stty -a < /dev/tty",
    "sh -c stty -g < /dev/tty",
    "sh -c whoami",
    "sh -c locale -a",
    "sh -c openssl version",
    "sh -c /bin/hostname -f 2> /dev/null",
    "sh -c lsb_release -a",
    "sh -c lsb_release -is 2>/dev/null",
];

/// How a [`KnownSpawn`]'s command line is compared.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cmd {
    Prefix(&'static str),
    Contains(&'static str),
    Exact(&'static str),
}

/// A shell a particular server is known to start for its own work.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KnownSpawn {
    /// The parent's name, when the case is about the parent.
    pub(crate) parent: Option<&'static str>,
    /// The grandparent's name, when the case is about the grandparent.
    pub(crate) grandparent: Option<&'static str>,
    /// The shell's command line.
    pub(crate) command: Cmd,
}

const fn by_parent(parent: &'static str, command: Cmd) -> KnownSpawn {
    KnownSpawn {
        parent: Some(parent),
        grandparent: None,
        command,
    }
}

const fn by_grandparent(grandparent: &'static str, command: Cmd) -> KnownSpawn {
    KnownSpawn {
        parent: None,
        grandparent: Some(grandparent),
        command,
    }
}

/// Shells that servers start for their own housekeeping (health checks, WAL archiving,
/// Erlang port programs).
pub(crate) const KNOWN_SPAWNS: &[KnownSpawn] = &[
    by_parent("consul", Cmd::Prefix("sh -c curl")),
    by_parent("consul", Cmd::Prefix("sh -c nc")),
    by_parent("consul", Cmd::Prefix("sh -c /bin/consul-alerts")),
    by_parent(
        "nginx",
        Cmd::Contains("/usr/sbin/nginx -c /etc/nginx/nginx.conf"),
    ),
    by_parent("nginx", Cmd::Prefix("sh -c /usr/local/bin/aws s3 cp")),
    by_parent(
        "postgres",
        Cmd::Prefix("sh -c envdir /etc/wal-e.d/env /usr/local/bin/wal-e"),
    ),
    by_parent(
        "postgres",
        Cmd::Prefix("sh -c envdir \"/run/etc/wal-e.d/env\" wal-g wal-push"),
    ),
    by_parent(
        "postgres",
        Cmd::Prefix("sh -c /controller/manager wal-archive"),
    ),
    by_parent("splunkd", Cmd::Prefix("sh -c /opt/splunkforwarder")),
    by_parent("beam.smp", Cmd::Prefix("sh -c exec ps")),
    by_parent("beam.smp", Cmd::Prefix("sh -c exec inet_gethost")),
    by_parent("beam.smp", Cmd::Exact("sh -s unix:cmd")),
    by_parent(
        "beam.smp",
        Cmd::Exact("sh -c exec /bin/sh -s unix:cmd 2>&1"),
    ),
    by_grandparent("redis-server", Cmd::Contains("redis-server.post-up.d")),
    by_grandparent("redis-server", Cmd::Contains("redis-server.pre-up.d")),
    by_grandparent("rabbitmqctl", Cmd::Prefix("sh -c ")),
];

/// Any shell's command line that is housekeeping wherever it comes from.
pub(crate) const HOUSEKEEPING_SHELL_PREFIXES: &[&str] = &["sh -c serf", "sh -c kill -0 "];

/// Package managers and their helpers, as process names. A process with one of these as an
/// ancestor is doing package management, which has its own rule.
pub(crate) const PACKAGE_MANAGERS: &[&str] = &[
    // rpm family
    "dnf",
    "dnf-automatic",
    "dnf5",
    "microdnf",
    "tdnf",
    "rpm",
    "rpmkeys",
    "rpmq",
    "yum",
    "yum-cron",
    "yum-config-mana",
    "zypper",
    // deb family
    "dpkg",
    "dpkg-preconfigu",
    "dpkg-reconfigur",
    "dpkg-divert",
    "apt",
    "apt-get",
    "aptitude",
    "apt-key",
    "apt-add-reposit",
    "add-apt-reposit",
    "unattended-upgr",
    "frontend",
    "preinst",
    "update-alternat",
    // others
    "apk",
    "pacman",
    "gem",
    "npm",
    "pnpm",
    "yarn",
    "pip",
    "pip2",
    "pip3",
    "conda",
    "uv",
];

/// Programs that read authentication files as their job: account and login tools, privilege
/// switching, package managers, schedulers, shells, integrity checkers, VPN and mail setup.
pub(crate) const SENSITIVE_FILE_READERS: &[&str] = &[
    // login and account management
    "login",
    "systemd",
    "(systemd)",
    "systemd-logind",
    "su",
    "nologin",
    "faillog",
    "lastlog",
    "newgrp",
    "sg",
    "shadowconfig",
    "grpck",
    "pwunconv",
    "grpconv",
    "pwck",
    "groupmod",
    "vipw",
    "pwconv",
    "useradd",
    "newusers",
    "cppw",
    "chpasswd",
    "usermod",
    "groupadd",
    "groupdel",
    "grpunconv",
    "chgpasswd",
    "userdel",
    "chage",
    "chsh",
    "gpasswd",
    "chfn",
    "expiry",
    "passwd",
    "vigr",
    "cpgr",
    "adduser",
    "addgroup",
    "deluser",
    "delgroup",
    "groupmems",
    "unix_chkpwd",
    // privilege switching
    "sudo",
    "suexec",
    "dzdo",
    // schedulers
    "anacron",
    "cron",
    "crond",
    "crontab",
    // system tools that read them to work
    "iptables",
    "ps",
    "lsb_release",
    "check-new-relea",
    "dumpe2fs",
    "accounts-daemon",
    "sshd",
    "sshd-session",
    "vsftpd",
    "in.proftpd",
    "mysql_install_d",
    "psql",
    "screen",
    "debconf-show",
    "sa-update",
    "pam-auth-update",
    "pam-config",
    "polkit-agent-he",
    "lsattr",
    "file",
    "sosreport",
    "cockpit-session",
    "userhelper",
    "mandb",
    "salt-call",
    "salt-minion",
    "pg_dumpall",
    "pg_ctl",
    "pg_lsclusters",
    "pg_ctlcluster",
    "google_oslogin_",
    // integrity checkers
    "aide",
    "aide.wrapper",
    "update-aide.con",
    "logcheck",
    "syslog-summary",
    "osqueryd",
    "ossec-syscheckd",
    "rkhunter",
    // VPN and mail configuration
    "openvpn",
    "newaliases",
    "postalias",
    "postconf",
    "postfix-script",
];

/// Authentication and privilege files, by exact path.
pub(crate) const SENSITIVE_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/sudoers",
    "/etc/pam.conf",
    "/etc/security/pwquality.conf",
];

/// Directories whose direct entries are sensitive files.
pub(crate) const SENSITIVE_DIRECTORIES: &[&str] = &["/etc/sudoers.d", "/etc/pam.d"];

/// Directories a link must not point at.
pub(crate) const SENSITIVE_LINK_DIRECTORIES: &[&str] = &["/", "/etc", "/etc/", "/root", "/root/"];

/// Servers that may read sensitive files while starting, never afterwards.
pub(crate) const SERVER_PROGRAMS: &[&str] = &[
    "nginx",
    "httpd",
    "httpd-foregroun",
    "lighttpd",
    "apache",
    "apache2",
    "mysqld",
    "postgres",
    "sqlplus",
    "docker",
    "dockerd",
    "containerd-shim",
    "runc:[1:CHILD]",
    "pause",
    "exe",
    "docker-compose",
    "docker-entrypoi",
    "docker-runc-cur",
    "docker-current",
    "dockerd-current",
];

/// How long a server may read sensitive files after it started, in nanoseconds.
pub(crate) const STARTUP_NS: u64 = 5_000_000_000;

/// grep and its aliases.
pub(crate) const GREP: &[&str] = &["grep", "egrep", "fgrep"];

/// What a search for a private key looks for (compared without regard to case).
pub(crate) const PRIVATE_KEY_MARKERS: &[&str] = &[
    "BEGIN PRIVATE",
    "BEGIN OPENSSH PRIVATE",
    "BEGIN RSA PRIVATE",
    "BEGIN DSA PRIVATE",
    "BEGIN EC PRIVATE",
];

/// SSH private key file names a `find` looks for.
pub(crate) const SSH_KEY_FILES: &[&str] = &["id_rsa", "id_dsa", "id_ed25519", "id_ecdsa"];

/// What a search for AWS credentials looks for (compared without regard to case).
pub(crate) const AWS_CREDENTIAL_MARKERS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "accesskeyid",
    "secretaccesskey",
];

/// Directories whose direct entries are logs.
pub(crate) const LOG_DIRECTORIES: &[&str] = &["/var/log", "/dev/log"];

/// Log file names, wherever they are.
pub(crate) const LOG_FILES: &[&str] = &[
    "syslog",
    "auth.log",
    "secure",
    "kern.log",
    "cron",
    "user.log",
    "dpkg.log",
    "last.log",
    "yum.log",
    "access_log",
    "mysql.log",
    "mysqld.log",
];

/// Image repositories (ends of) whose log shippers truncate logs they have shipped.
pub(crate) const LOG_SHIPPER_IMAGE_SUFFIXES: &[&str] = &[
    "splunk/fluentd-hec",
    "fluent/fluentd-kubernetes-daemonset",
    "openshift3/ose-logging-fluentd",
    "containernetworking/azure-npm",
];

/// Tools that destroy data in bulk (`mkfs.<type>` counts too).
pub(crate) const DATA_DESTRUCTION_TOOLS: &[&str] = &["shred", "mkfs", "mke2fs"];

/// Netcat builds whose `-e`/`-c` run a program for the remote end.
pub(crate) const NETCAT: &[&str] = &["nc", "nc.traditional", "netcat"];

/// ncat options that run a program for the remote end.
pub(crate) const NCAT_EXEC_OPTIONS: &[&str] = &["--sh-exec", "--exec", "-e ", "-c ", "--lua-exec"];

/// Remote ports an SSH client has no business connecting to: web, Kerberos, DNS and a
/// favourite listener port of reverse shells.
pub(crate) const SSH_NON_STANDARD_PORTS: &[u16] = &[53, 80, 88, 443, 4444, 8080, 8443];

/// Stratum ports that public mining pools listen on. Ports that common services also use
/// (25, 80, 443, 8080, 8333 and the like) are left out: the rule must not fire on ordinary
/// traffic.
pub(crate) const MINING_POOL_PORTS: &[u16] = &[
    3333, 3334, 3335, 3336, 3357, 4444, 5555, 5556, 5588, 5730, 6099, 7777, 7778, 14433, 14444,
    45560, 45700,
];

/// Normalized image repositories of node agents that run programs from /dev/shm by design.
pub(crate) const DEV_SHM_IMAGES: &[&str] = &[
    "docker.io/falcosecurity/falco",
    "public.ecr.aws/falcosecurity/falco",
    "docker.io/calico/node",
    "quay.io/calico/node",
    "gcr.io/projectcalico-org/node",
    "docker.io/cloudnativelabs/kube-router",
    "docker.io/rook/toolbox",
    "docker.io/sysdig/sysdig",
    "registry.k8s.io/kube-proxy",
    "gke.gcr.io/kube-proxy",
    "mcr.microsoft.com/oss/kubernetes/kube-proxy",
    "gke.gcr.io/gke-metadata-server",
    "gke.gcr.io/netd-amd64",
    "registry.k8s.io/ip-masq-agent-amd64",
    "registry.k8s.io/dns/k8s-dns-node-cache",
];

/// Normalized image repositories of well-known cluster add-ons that talk to the API server
/// by design (their pods in kube-system are not judged by the rule at all).
pub(crate) const API_CLIENT_IMAGES: &[&str] = &[
    "docker.io/falcosecurity/falco",
    "public.ecr.aws/falcosecurity/falco",
    "docker.io/falcosecurity/falco-no-driver",
    "docker.io/sysdig/sysdig",
    "docker.io/kiwigrid/k8s-sidecar",
    "quay.io/kiwigrid/k8s-sidecar",
    "ghcr.io/kiwigrid/k8s-sidecar",
    "registry.k8s.io/sig-storage/snapshot-controller",
    "registry.k8s.io/sig-storage/nfs-subdir-external-provisioner",
    "docker.io/fluent/fluentd-kubernetes-daemonset",
    "docker.io/prom/prometheus",
    "quay.io/prometheus/prometheus",
    "quay.io/prometheus-operator/prometheus-operator",
    "docker.io/velero/velero",
    "quay.io/metallb/controller",
    "quay.io/metallb/speaker",
    "quay.io/jetstack/cert-manager-cainjector",
    "docker.io/weaveworks/kured",
    "registry.k8s.io/ingress-nginx/kube-webhook-certgen",
    "docker.io/bitnami/kube-state-metrics",
];

/// The namespace whose pods may talk to the API server without a word.
pub(crate) const API_CLIENT_NAMESPACE: &str = "kube-system";

/// ptrace request numbers of "set registers" that Falco counts as injection: PTRACE_SETREGS
/// (x86) and PTRACE_SETREGSET (every architecture). The sensor reports them as `Other(n)`.
pub(crate) const PTRACE_SET_REGISTERS: &[u32] = &[13, 0x4205];

/// Names of a memfd-executing container runtime (runc re-executes itself from a memfd copy
/// to protect its binary).
pub(crate) const MEMFD_RUNTIMES: &[&str] = &["runc"];

/// The memfd name runc gives its copy.
pub(crate) const RUNC_MEMFD: &str = "memfd:runc_cloned:";

/// Directories below which programs live.
pub(crate) const BINARY_DIRECTORIES: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// The configuration directory the write rule also guards.
pub(crate) const ETC: &str = "/etc";

/// Entry-point scripts (their `comm`) that render configuration into /etc as the container
/// starts, as the official nginx, postgres and many other images do: a write below /etc
/// with one of them as an ancestor is setup, not tampering. Binary directories stay guarded.
pub(crate) const ENTRYPOINT_SCRIPTS: &[&str] = &["docker-entrypoi", "entrypoint.sh"];

/// Programs that rebuild derived files below /etc as a matter of course.
pub(crate) const SYSTEM_FILE_MAINTAINERS: &[&str] = &[
    "ldconfig",
    "ldconfig.real",
    "update-ca-certifi",
    "update-alternat",
];
