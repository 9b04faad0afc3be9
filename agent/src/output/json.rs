//! One JSON line per detection on stdout, shaped like Falco's JSON output (`time`, `rule`,
//! `priority`, `output`, `source`, `tags`, `hostname`, and `output_fields` keyed by Falco's
//! field names), so falcosidekick and log pipelines built for Falco take it as it is.
//! Palisade's own fields are under `palisade.*` in `output_fields`.

use serde_json::{Map, Value, json};

use palisade_policy::runtime::event::{Action, RuntimeEvent};

use crate::pods::ContainerInfo;

/// Everything a detection's line says.
pub struct Alert<'a> {
    pub rule_id: &'a str,
    /// The rule's name (Falco's name for Falco's rules).
    pub rule_name: &'a str,
    pub priority: &'a str,
    pub output: &'a str,
    pub tags: &'a [&'a str],
    /// `SecurityPolicy/<name>`.
    pub policy: &'a str,
    /// `reported`, `killed`, `kill_failed` or `waived`.
    pub action: &'a str,
    pub event: &'a RuntimeEvent,
    pub container: Option<&'a ContainerInfo>,
    pub hostname: &'a str,
}

/// The system call Falco would name for an action.
pub fn evt_type(action: &Action) -> &'static str {
    match action {
        Action::Exec => "execve",
        Action::Open(_) => "openat",
        Action::Connect(_) => "connect",
        Action::Ptrace { .. } => "ptrace",
        Action::MemfdCreate { .. } => "memfd_create",
        Action::ModuleLoad => "finit_module",
        Action::Socket { .. } => "socket",
        Action::Unlink { .. } => "unlinkat",
        Action::Rename { .. } => "renameat2",
        Action::Link { symbolic: true, .. } => "symlinkat",
        Action::Link { .. } => "linkat",
        Action::Dup { .. } => "dup2",
    }
}

/// RFC 3339 with nanoseconds, in UTC, as Falco writes `time`.
pub fn rfc3339(ns: u64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| format!("{t:.9}"))
        .unwrap_or_default()
}

pub fn line(a: &Alert) -> String {
    let p = &a.event.process;
    let mut f = Map::new();
    let mut put = |k: &str, v: Value| {
        f.insert(k.to_string(), v);
    };
    put("evt.time", json!(a.event.time_ns));
    put("evt.type", json!(evt_type(&a.event.action)));
    put("proc.name", json!(p.name));
    put("proc.exepath", json!(p.exe));
    put("proc.cmdline", json!(cmdline(&p.name, &p.args)));
    put("proc.args", json!(p.args.join(" ")));
    put("proc.pid", json!(p.pid));
    put("proc.vpid", json!(p.vpid));
    put("proc.ppid", json!(p.ppid));
    put("proc.pname", json!(p.parent_name));
    for (i, name) in p.ancestors.iter().enumerate() {
        put(&format!("proc.aname[{}]", i + 2), json!(name));
    }
    put("proc.tty", json!(p.tty));
    put("proc.is_exe_upper_layer", json!(p.exe_written_after_start));
    put("proc.is_exe_from_memfd", json!(p.exe_from_memfd));
    put("user.uid", json!(p.uid));
    put("container.id", json!(short_id(&p.container_id)));
    put("container.full_id", json!(p.container_id));
    if let Some(c) = a.container {
        let (repository, tag) = split_image(&c.image);
        put("container.name", json!(c.container_name));
        put("container.image", json!(c.image));
        put("container.image.repository", json!(repository));
        put("container.image.tag", json!(tag));
        put("container.privileged", json!(c.privileged));
        put("k8s.ns.name", json!(c.namespace));
        put("k8s.pod.name", json!(c.pod_name));
        put("k8s.pod.uid", json!(c.pod_uid));
        put("k8s.pod.labels", json!(c.labels));
    }
    match &a.event.action {
        Action::Open(o) => {
            put("fd.name", json!(o.path));
            put("fd.nameraw", json!(o.raw_path));
            let flags: Vec<&str> = [
                (o.read && !o.write, "O_RDONLY"),
                (o.write && !o.read, "O_WRONLY"),
                (o.read && o.write, "O_RDWR"),
                (o.create, "O_CREAT"),
                (o.truncate, "O_TRUNC"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
            put("evt.arg.flags", json!(flags.join("|")));
        }
        Action::Connect(c) => {
            put("fd.sip", json!(c.address.to_string()));
            put("fd.sport", json!(c.port));
            put(
                "fd.l4proto",
                json!(match c.protocol {
                    6 => "tcp",
                    17 => "udp",
                    _ => "unknown",
                }),
            );
        }
        Action::Ptrace {
            request,
            target_pid,
        } => {
            put("evt.arg.request", json!(format!("{request:?}")));
            put("evt.arg.pid", json!(target_pid));
        }
        Action::MemfdCreate { name } => put("evt.arg.name", json!(name)),
        Action::Socket {
            family,
            kind,
            protocol,
        } => {
            put("evt.arg.domain", json!(family));
            put("evt.arg.type", json!(kind));
            put("evt.arg.proto", json!(protocol));
        }
        Action::Unlink { path } => put("fd.name", json!(path)),
        Action::Rename { from, to } => {
            put("evt.arg.oldpath", json!(from));
            put("evt.arg.newpath", json!(to));
        }
        Action::Link { target, path, .. } => {
            put("evt.arg.target", json!(target));
            put("evt.arg.linkpath", json!(path));
        }
        Action::Dup { new_fd, socket } => {
            put("evt.arg.newfd", json!(new_fd));
            if let Some(s) = socket {
                put("fd.sip", json!(s.address.to_string()));
                put("fd.sport", json!(s.port));
            }
        }
        Action::Exec | Action::ModuleLoad => {}
    }
    put("palisade.rule_id", json!(a.rule_id));
    put("palisade.policy", json!(a.policy));
    put("palisade.action", json!(a.action));
    json!({
        "time": rfc3339(a.event.time_ns),
        "rule": a.rule_name,
        "priority": a.priority,
        "output": a.output,
        "source": "syscall",
        "tags": a.tags,
        "hostname": a.hostname,
        "output_fields": Value::Object(f),
    })
    .to_string()
}

fn cmdline(name: &str, args: &[String]) -> String {
    let mut s = name.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Falco's `container.id`: the first 12 hex digits.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn split_image(image: &str) -> (&str, &str) {
    let without_digest = image.split_once('@').map_or(image, |(r, _)| r);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => (
            &without_digest[..last_slash + i],
            &without_digest[last_slash + i + 1..],
        ),
        None => (without_digest, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::runtime::event::{Open, Process};

    #[test]
    fn a_line_has_falcos_fields() {
        let event = RuntimeEvent {
            time_ns: 1_796_457_600_123_456_789,
            process: Process {
                pid: 4242,
                vpid: 7,
                ppid: 4200,
                name: "cat".into(),
                exe: "/usr/bin/cat".into(),
                args: vec!["/etc/shadow".into()],
                parent_name: Some("bash".into()),
                ancestors: vec!["sh".into()],
                container_id: "0123456789abcdef".repeat(4),
                ..Process::default()
            },
            action: Action::Open(Open {
                path: "/etc/shadow".into(),
                raw_path: "/etc/shadow".into(),
                read: true,
                ..Open::default()
            }),
        };
        let container = ContainerInfo {
            namespace: "shop".into(),
            pod_name: "web-1".into(),
            container_name: "app".into(),
            image: "docker.io/library/nginx:1.25".into(),
            ..ContainerInfo::default()
        };
        let text = line(&Alert {
            rule_id: "runtime.readSensitiveFileUntrusted",
            rule_name: "Read sensitive file untrusted",
            priority: "Warning",
            output: "Sensitive file opened for reading by non-trusted program",
            tags: &["filesystem", "T1555"],
            policy: "SecurityPolicy/runtime",
            action: "reported",
            event: &event,
            container: Some(&container),
            hostname: "node-1",
        });
        assert!(!text.contains('\n'), "one line");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["time"], "2026-12-05T08:00:00.123456789Z");
        assert_eq!(v["rule"], "Read sensitive file untrusted");
        assert_eq!(v["priority"], "Warning");
        assert_eq!(v["source"], "syscall");
        assert_eq!(v["hostname"], "node-1");
        let f = &v["output_fields"];
        assert_eq!(f["k8s.ns.name"], "shop");
        assert_eq!(f["k8s.pod.name"], "web-1");
        assert_eq!(f["container.id"], "0123456789ab");
        assert_eq!(f["container.image.repository"], "docker.io/library/nginx");
        assert_eq!(f["container.image.tag"], "1.25");
        assert_eq!(f["proc.cmdline"], "cat /etc/shadow");
        assert_eq!(f["proc.pname"], "bash");
        assert_eq!(f["proc.aname[2]"], "sh");
        assert_eq!(f["fd.name"], "/etc/shadow");
        assert_eq!(f["evt.type"], "openat");
        assert_eq!(f["evt.arg.flags"], "O_RDONLY");
        assert_eq!(f["palisade.rule_id"], "runtime.readSensitiveFileUntrusted");
    }

    #[test]
    fn images_split_into_repository_and_tag() {
        let cases = [
            (
                "docker.io/library/nginx:1.25",
                ("docker.io/library/nginx", "1.25"),
            ),
            ("host:5000/app:v1@sha256:ab", ("host:5000/app", "v1")),
            ("host:5000/app@sha256:ab", ("host:5000/app", "")),
            ("", ("", "")),
        ];
        for (image, want) in cases {
            assert_eq!(split_image(image), want, "{image}");
        }
    }
}
