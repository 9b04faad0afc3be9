//! A Kubernetes Event on the pod for each detection, named after the rule: planned here
//! (pure), published by [`publish`]. One Event per rule, container and pod, with a
//! deterministic name, so that repeats (throttled, see `throttle`) update its series count
//! instead of adding Events, across agent restarts too.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::pods::ContainerInfo;

/// `reportingController` of every Event the agent writes.
pub const REPORTING_CONTROLLER: &str = "palisade.dev/agent";
const NOTE_MAX: usize = 1024;

/// What one Event says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub rule_id: &'static str,
    pub rule_name: &'static str,
    pub priority: &'static str,
    /// `SecurityPolicy/<name>`.
    pub policy: String,
    /// `reported`, `killed`, `kill_failed`.
    pub action: &'static str,
    pub output: String,
    pub container_id: String,
    pub container: ContainerInfo,
    /// When the kernel saw it, nanoseconds since the epoch.
    pub time_ns: u64,
}

/// The Event's reason: the rule's name in UpperCamelCase (`TerminalShellInContainer`).
pub fn reason(rule_name: &str) -> String {
    rule_name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|first| first.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect::<String>()
        .chars()
        .take(128)
        .collect()
}

/// The Event's name: the pod's, then a hash of the rule and container.
pub fn name(notice: &Notice) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{}\0{}", notice.rule_id, notice.container_id).as_bytes(),
    );
    let hash: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let pod: String = notice.container.pod_name.chars().take(200).collect();
    format!("{pod}.runtime.{hash}")
}

fn micro_time(ns: u64) -> MicroTime {
    MicroTime(Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn note(notice: &Notice, count: u64) -> String {
    let what = match notice.action {
        "killed" => "; the process was killed",
        "kill_failed" => "; killing the process failed",
        _ => "",
    };
    let times = if count > 1 {
        format!(" ({count} times)")
    } else {
        String::new()
    };
    let mut s = format!(
        "{} ({}, {}){times}: {} [container {}, {}{what}]",
        notice.rule_name,
        notice.rule_id,
        notice.priority,
        notice.output,
        notice.container.container_name,
        notice.policy,
    );
    if s.len() > NOTE_MAX {
        let mut end = NOTE_MAX - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// The Event to create for a first detection.
pub fn plan(notice: &Notice, instance: &str) -> Event {
    let c = &notice.container;
    Event {
        metadata: ObjectMeta {
            name: Some(name(notice)),
            namespace: Some(c.namespace.clone()),
            labels: Some(
                [
                    (
                        "app.kubernetes.io/part-of".to_string(),
                        "palisade".to_string(),
                    ),
                    ("palisade.dev/rule".to_string(), notice.rule_id.to_string()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        event_time: Some(micro_time(notice.time_ns)),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.chars().take(128).collect()),
        action: Some(action(notice).into()),
        reason: Some(reason(notice.rule_name)),
        type_: Some("Warning".into()),
        note: Some(note(notice, 1)),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(c.pod_name.clone()),
            namespace: Some(c.namespace.clone()),
            uid: (!c.pod_uid.is_empty()).then(|| c.pod_uid.clone()),
            field_path: Some(format!("spec.containers{{{}}}", c.container_name)),
            ..ObjectReference::default()
        }),
        ..Event::default()
    }
}

fn action(notice: &Notice) -> &'static str {
    match notice.action {
        "killed" => "Killed",
        _ => "Detected",
    }
}

/// The merge patch for a repeat: the series' count (at least 2) and the latest note.
pub fn series_patch(notice: &Notice, count: u64) -> serde_json::Value {
    let series = EventSeries {
        count: i32::try_from(count.max(2)).unwrap_or(i32::MAX),
        last_observed_time: micro_time(notice.time_ns),
    };
    serde_json::json!({
        "series": series,
        "note": note(notice, count),
        "action": action(notice),
    })
}

/// Creates the Event, or when it exists (a repeat, or one from before a restart) updates
/// its series.
pub async fn publish(
    client: &Client,
    notice: &Notice,
    count: u64,
    instance: &str,
) -> Result<(), kube::Error> {
    let api = Api::<Event>::namespaced(client.clone(), &notice.container.namespace);
    if count <= 1 {
        match api
            .create(&PostParams::default(), &plan(notice, instance))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    match api
        .patch(
            &name(notice),
            &PatchParams::default(),
            &Patch::Merge(series_patch(notice, count.max(2))),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Expired and garbage-collected since: start again.
        Err(kube::Error::Api(s)) if s.code == 404 => api
            .create(&PostParams::default(), &plan(notice, instance))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            rule_id: "runtime.terminalShell",
            rule_name: "Terminal shell in container",
            priority: "Notice",
            policy: "SecurityPolicy/runtime".into(),
            action: "reported",
            output: "A shell was spawned in a container with an attached terminal".into(),
            container_id: "ab".repeat(32),
            container: ContainerInfo {
                namespace: "shop".into(),
                pod_name: "web-1".into(),
                pod_uid: "u-1".into(),
                container_name: "app".into(),
                ..ContainerInfo::default()
            },
            time_ns: 1_796_457_600_000_000_000,
        }
    }

    #[test]
    fn reasons_are_the_rule_names_in_camel_case() {
        let cases = [
            ("Terminal shell in container", "TerminalShellInContainer"),
            (
                "Redirect STDOUT/STDIN to Network Connection in Container",
                "RedirectSTDOUTSTDINToNetworkConnectionInContainer",
            ),
            ("Execution from /dev/shm", "ExecutionFromDevShm"),
            (
                "Debugfs Launched in Privileged Container",
                "DebugfsLaunchedInPrivilegedContainer",
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(reason(rule), want);
        }
    }

    #[test]
    fn the_event_is_on_the_pod_and_names_the_rule() {
        let e = plan(&notice(), "palisade-agent-x7k2p");
        let r = e.regarding.as_ref().expect("regarding");
        assert_eq!(r.kind.as_deref(), Some("Pod"));
        assert_eq!(r.name.as_deref(), Some("web-1"));
        assert_eq!(r.field_path.as_deref(), Some("spec.containers{app}"));
        assert_eq!(e.reason.as_deref(), Some("TerminalShellInContainer"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.action.as_deref(), Some("Detected"));
        let note = e.note.as_deref().expect("a note");
        assert!(
            note.starts_with("Terminal shell in container (runtime.terminalShell, Notice): "),
            "{note}"
        );
        assert!(note.contains("SecurityPolicy/runtime"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("shop"));
        let name = e.metadata.name.as_deref().expect("a name");
        assert!(name.starts_with("web-1.runtime.") && name.len() == "web-1.runtime.".len() + 16);
        assert_eq!(
            plan(&notice(), "other").metadata.name,
            e.metadata.name,
            "deterministic"
        );
        let mut other = notice();
        other.rule_id = "runtime.readSensitiveFileUntrusted";
        assert_ne!(
            plan(&other, "x").metadata.name,
            e.metadata.name,
            "one per rule"
        );
    }

    #[test]
    fn a_kill_and_a_repeat_say_so() {
        let mut n = notice();
        n.action = "killed";
        assert_eq!(plan(&n, "i").action.as_deref(), Some("Killed"));
        assert!(
            plan(&n, "i")
                .note
                .as_deref()
                .is_some_and(|s| s.contains("the process was killed"))
        );
        let p = series_patch(&n, 7);
        assert_eq!(p["series"]["count"], 7);
        assert!(p["note"].as_str().is_some_and(|s| s.contains("(7 times)")));
        assert_eq!(
            series_patch(&n, 1)["series"]["count"],
            2,
            "a series counts at least 2"
        );
    }

    #[test]
    fn long_notes_are_cut_within_the_limit() {
        let mut n = notice();
        n.output = "é".repeat(2000);
        let note = plan(&n, "i").note.expect("a note");
        assert!(note.len() <= NOTE_MAX && note.ends_with("..."));
    }
}
