//! The message of a detection: a sentence saying what happened, then `key=value` fields in
//! Falco's field names (`proc.name` as `process`, `fd.name` as `file`, …), so people and
//! tools used to Falco's output read it at once. Built only when a rule matched.

use std::fmt::Write as _;

use super::catalogue::RuntimeRule;
use super::event::{Action, Process, PtraceRequest, RuntimeEvent};
use super::facts::PodFacts;
use super::matching::cmdline_string;

/// The message of `rule` matching `event` in `pod`.
pub(crate) fn output(rule: RuntimeRule, event: &RuntimeEvent, pod: &PodFacts) -> String {
    use RuntimeRule as R;
    let mut s = String::with_capacity(384);
    s.push_str(sentence(rule));
    s.push_str(" |");
    let p = &event.process;
    match &event.action {
        Action::Exec => {
            if rule == R::DropAndExecuteNewBinary || rule == R::FilelessExecution {
                field(&mut s, "proc_exe", &p.exe);
            }
            if let Some(cwd) = &p.cwd
                && matches!(rule, R::ExecutionFromDevShm | R::FindAwsCredentials)
            {
                field(&mut s, "proc_cwd", cwd);
            }
        }
        Action::Open(o) => {
            field(&mut s, "file", &o.path);
            if rule == R::DirectoryTraversalRead {
                field(&mut s, "fileraw", &o.raw_path);
            }
            let flags = [
                (o.read && !o.write, "O_RDONLY"),
                (o.write && !o.read, "O_WRONLY"),
                (o.read && o.write, "O_RDWR"),
                (o.create, "O_CREAT"),
                (o.truncate, "O_TRUNC"),
            ];
            let mut first = true;
            s.push_str(" flags=");
            for (on, name) in flags {
                if on {
                    if !first {
                        s.push('|');
                    }
                    first = false;
                    s.push_str(name);
                }
            }
            if rule == R::ReleaseAgentEscape {
                let _ = write!(s, " cap_effective={:#x}", p.cap_effective);
            }
        }
        Action::Connect(c) => {
            let _ = write!(
                s,
                " connection={} rport={} fd_proto={}",
                socket_text(c.address, c.port),
                c.port,
                match c.protocol {
                    6 => "tcp",
                    17 => "udp",
                    _ => "other",
                }
            );
        }
        Action::Ptrace {
            request,
            target_pid,
        } => {
            let request = match request {
                PtraceRequest::TraceMe => "PTRACE_TRACEME".to_owned(),
                PtraceRequest::Attach => "PTRACE_ATTACH".to_owned(),
                PtraceRequest::Poke => "PTRACE_POKE".to_owned(),
                PtraceRequest::Other(n) => format!("{n:#x}"),
            };
            let _ = write!(s, " request={request} target_pid={target_pid}");
        }
        Action::MemfdCreate { name } => field(&mut s, "memfd", name),
        Action::ModuleLoad => {
            let _ = write!(s, " cap_effective={:#x}", p.cap_effective);
        }
        Action::Socket {
            family,
            kind,
            protocol,
        } => {
            let _ = write!(s, " domain={family} type={kind} protocol={protocol}");
        }
        Action::Unlink { path } => field(&mut s, "file", path),
        Action::Rename { from, to } => {
            field(&mut s, "oldpath", from);
            field(&mut s, "newpath", to);
        }
        Action::Link { target, path, .. } => {
            field(&mut s, "target", target);
            field(&mut s, "linkpath", path);
        }
        Action::Dup { new_fd, socket } => {
            let _ = write!(s, " fd={new_fd}");
            if let Some(peer) = socket {
                let _ = write!(s, " connection={}", socket_text(peer.address, peer.port));
            }
        }
    }
    process_fields(&mut s, p);
    let _ = write!(
        s,
        " container_id={} container_name={} k8s_ns={} k8s_pod={} image={}",
        short_id(&p.container_id),
        pod.container_name,
        pod.namespace,
        pod.pod_name,
        pod.image
    );
    if pod.privileged {
        s.push_str(" privileged=true");
    }
    s
}

fn sentence(rule: RuntimeRule) -> &'static str {
    use RuntimeRule as R;
    match rule {
        R::TerminalShell => "Shell with a terminal started in a container",
        R::RunShellUntrusted => "Shell started below a server program that should not start one",
        R::DropAndExecuteNewBinary => "Program that is not part of the container's image executed",
        R::ExecutionFromDevShm => "Program executed from /dev/shm",
        R::FilelessExecution => "Program executed from an anonymous memory file",
        R::DebugfsInPrivilegedContainer => "debugfs started in a privileged container",
        R::KernelModuleInjection => "Kernel module loaded from a container",
        R::PtraceAttached => "Process attached to or wrote into another process with ptrace",
        R::PtraceAntiDebug => "Process asked to be traced by its parent, an anti-debugging trick",
        R::ReadSensitiveFileUntrusted => {
            "Sensitive file opened for reading by an untrusted program"
        }
        R::ReadSensitiveFileTrustedAfterStartup => {
            "Sensitive file opened for reading by a server program after its startup"
        }
        R::DirectoryTraversalRead => "Monitored file read through a path that climbs with ../",
        R::SearchPrivateKeysOrPasswords => "Search for private keys",
        R::FindAwsCredentials => "Search for AWS credentials",
        R::ClearLogActivities => "Log file truncated",
        R::RemoveBulkData => "Data destruction tool started",
        R::SymlinkOverSensitiveFiles => "Symbolic link created to a sensitive file or directory",
        R::HardlinkOverSensitiveFiles => "Hard link created to a sensitive file",
        R::ReleaseAgentEscape => {
            "Cgroup release_agent opened for writing by a process able to escape its container"
        }
        R::ContactK8sApiServer => "Connection to the Kubernetes API server from a container",
        R::NetcatRemoteCodeExecution => {
            "Netcat started with an option that runs a program for the remote end"
        }
        R::RedirectStdioToNetwork => "Standard input or output redirected to a network connection",
        R::PacketSocket => "Packet socket created in a container",
        R::SshNonStandardPort => "Outbound SSH connection on a non-standard port",
        R::PackageManagement => "Package manager changing software in a running container",
        R::WriteBelowBinaryDirOrEtc => "File below a binary directory or /etc changed",
        R::CryptoMiningPool => "Connection to a crypto-mining pool port",
    }
}

fn process_fields(s: &mut String, p: &Process) {
    field(s, "process", &p.name);
    field(s, "proc_exepath", &p.exe);
    field(s, "parent", p.parent_name.as_deref().unwrap_or("<NA>"));
    if let Some(g) = p.ancestors.first() {
        field(s, "gparent", g);
    }
    field(s, "command", &cmdline_string(p));
    let _ = write!(s, " terminal={} user_uid={} pid={}", p.tty, p.uid, p.pid);
    if p.vpid != 0 {
        let _ = write!(s, " vpid={}", p.vpid);
    }
}

/// ` key=value`, with the value quoted when it has spaces or is empty (so fields still split
/// on spaces).
fn field(s: &mut String, key: &str, value: &str) {
    if value.is_empty() || value.contains([' ', '"']) {
        let _ = write!(s, " {key}={value:?}");
    } else {
        let _ = write!(s, " {key}={value}");
    }
}

fn socket_text(address: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(address.to_canonical(), port).to_string()
}

/// The first 12 digits of a container id, as `crictl` and Falco print it.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::event::Open;

    #[test]
    fn a_message_names_the_process_file_and_pod() {
        let event = RuntimeEvent {
            time_ns: 1,
            process: Process {
                pid: 4242,
                vpid: 17,
                name: "cat".into(),
                exe: "/usr/bin/cat".into(),
                args: vec!["/etc/shadow".into()],
                parent_name: Some("bash".into()),
                ancestors: vec!["node".into()],
                container_id: "0123456789abcdef0123".into(),
                ..Process::default()
            },
            action: Action::Open(Open {
                path: "/etc/shadow".into(),
                raw_path: "/etc/shadow".into(),
                read: true,
                ..Open::default()
            }),
        };
        let pod = PodFacts {
            namespace: "shop".into(),
            pod_name: "web-1".into(),
            container_name: "app".into(),
            image: "docker.io/library/nginx:1.25".into(),
            ..PodFacts::default()
        };
        let got = output(RuntimeRule::ReadSensitiveFileUntrusted, &event, &pod);
        assert_eq!(
            got,
            "Sensitive file opened for reading by an untrusted program | file=/etc/shadow \
             flags=O_RDONLY process=cat proc_exepath=/usr/bin/cat parent=bash gparent=node \
             command=\"cat /etc/shadow\" terminal=0 user_uid=0 pid=4242 vpid=17 \
             container_id=0123456789ab container_name=app k8s_ns=shop k8s_pod=web-1 \
             image=docker.io/library/nginx:1.25"
        );
    }

    #[test]
    fn every_rule_has_a_sentence_without_the_separator() {
        for rule in RuntimeRule::ALL {
            assert!(!sentence(rule).contains('|'), "{}", rule.id());
        }
    }
}
