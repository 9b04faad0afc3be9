//! The runtime-rule tests' side of the harness: the workload image they run, pods as the
//! node agent knows them, and a detection's three outputs waited for together — the Event
//! on the pod, the PolicyReport result and the JSON line on the agent's stdout.
//!
//! The image is built by `hack/runtime-test-image.sh` (busybox-static and a static probe)
//! and pushed to the cluster's registry once per test process; pods name it by digest.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Env, PALISADE_NAMESPACE, Test};

/// The agent's pods (`app.kubernetes.io/name` of the DaemonSet the operator reconciles).
pub const AGENT_SELECTOR: &str = "app.kubernetes.io/name=palisade-agent";
/// `reportingController` of the agent's Events (`reportingComponent` in the core/v1 view).
pub const REPORTING_CONTROLLER: &str = "palisade.dev/agent";
/// The agent pod's annotation naming the sensor that runs: `ebpf` or `fallback`.
pub const SENSOR_ANNOTATION: &str = "palisade.dev/sensor";
/// The agent pod's annotation listing the applied rules its sensor cannot see.
pub const UNCOVERED_ANNOTATION: &str = "palisade.dev/uncovered-rules";
/// The results' `category` in the runtime PolicyReports.
pub const REPORT_CATEGORY: &str = "Runtime Detection";
/// How long a detection's outputs may take to show, counted from the end of the command that
/// did the behaviour (the "within 5 s").
pub const DETECTION_DEADLINE: Duration = Duration::from_secs(5);
/// The repository the workload image is pushed to.
const IMAGE_REPOSITORY: &str = "palisade-e2e/runtime-workload";

static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();

/// The workload image, `<registry>/palisade-e2e/runtime-workload@sha256:…`: built (or taken
/// from the cache) and pushed by the first caller; a failure fails every caller with the
/// same message.
pub fn workload_image(env: &Env) -> String {
    match IMAGE.get_or_init(|| build_and_push(env)) {
        Ok(image) => image.clone(),
        Err(e) => panic!("the runtime tests' workload image could not be made:\n{e}"),
    }
}

fn build_and_push(env: &Env) -> Result<String, String> {
    let script = env.repo.join("hack/runtime-test-image.sh");
    let out = Command::new(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}); its output is above",
            script.display(),
            out.status
        ));
    }
    let layout = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let registry = env.scan().registry_host();
    let digest_file = env.work.join("runtime-workload.digest");
    let destination = format!("docker://{registry}/{IMAGE_REPOSITORY}:latest");
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"])
        .arg(&digest_file)
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(&destination)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("skopeo (hack/scan-tools.sh installs it): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "skopeo copy to {destination} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let digest = std::fs::read_to_string(&digest_file)
        .map_err(|e| format!("{}: {e}", digest_file.display()))?;
    Ok(format!("{registry}/{IMAGE_REPOSITORY}@{}", digest.trim()))
}

/// A runtime rule as users meet it: the id policies and exceptions name, the name (Falco's
/// for Falco's rules) that JSON lines and Event notes carry, the priority, and the Event's
/// reason (the name in UpperCamelCase).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub priority: &'static str,
    pub reason: &'static str,
}

/// What the agent did about a detection, as each output says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Reported,
    Killed,
    /// An exception of the policy covers it: a JSON line and a `skip` result, no Event.
    Waived,
}

impl Action {
    /// `palisade.action` in the JSON line, `properties.action` in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reported => "reported",
            Action::Killed => "killed",
            Action::Waived => "waived",
        }
    }

    /// The Event's `action`.
    fn event_action(self) -> &'static str {
        match self {
            Action::Killed => "Killed",
            _ => "Detected",
        }
    }

    /// The report result's `result`.
    fn outcome(self) -> &'static str {
        match self {
            Action::Waived => "skip",
            _ => "fail",
        }
    }
}

/// A running pod, with what the agent's outputs name it by.
#[derive(Clone, Debug)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// The container the tests act in.
    pub container: String,
    /// Its runtime's id (64 hex digits, without the `containerd://` prefix).
    pub container_id: String,
}

impl PodRef {
    /// Wait until pod `name` is Ready (its container ids are then in its status, which the
    /// agent attributes processes by), and describe it.
    pub fn ready(t: &Test, namespace: &str, name: &str, container: &str) -> PodRef {
        let out = t.kubectl([
            "wait",
            "--for=condition=Ready",
            "--timeout=180s",
            "-n",
            namespace,
            &format!("pod/{name}"),
        ]);
        if !out.success() {
            let describe = t.kubectl(["describe", "pod", "-n", namespace, name]);
            panic!("pod {namespace}/{name} is not Ready:\n{out}\n{describe}");
        }
        let pod = get_json(t, &["get", "pod", "-n", namespace, name, "-o", "json"])
            .unwrap_or_else(|e| panic!("{e}"));
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let container_id = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == container)
            .and_then(|s| s["containerID"].as_str())
            .and_then(|id| id.split_once("://"))
            .map(|(_, id)| id.to_owned())
            .unwrap_or_else(|| panic!("no container {container} with an id in {pod}"));
        PodRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: text(&pod["metadata"]["uid"]),
            node: text(&pod["spec"]["nodeName"]),
            container: container.to_owned(),
            container_id,
        }
    }

    /// The runtime PolicyReport of this pod's namespace and node.
    pub fn report_name(&self) -> String {
        format!("palisade-runtime-{}", self.node.to_ascii_lowercase())
    }
}

/// `kubectl ARGS` printing JSON, parsed.
pub fn get_json(t: &Test, args: &[&str]) -> Result<Value, String> {
    let out = t.kubectl(args);
    if !out.success() {
        return Err(out.to_string());
    }
    serde_json::from_str(&out.stdout).map_err(|e| format!("{e}:\n{out}"))
}

/// The agent pod on `node` that runs (not being deleted), as JSON.
pub fn agent_pod(t: &Test, node: &str) -> Result<Value, String> {
    let list = get_json(
        t,
        &[
            "get",
            "pods",
            "-n",
            PALISADE_NAMESPACE,
            "-l",
            AGENT_SELECTOR,
            "--field-selector",
            &format!("spec.nodeName={node}"),
            "-o",
            "json",
        ],
    )?;
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running")
        .cloned()
        .ok_or_else(|| format!("no running agent pod ({AGENT_SELECTOR}) on node {node}"))
}

/// Wait (up to `seconds`) until the agent on `node` is Ready and says it runs `sensor`;
/// returns its pod.
pub fn wait_agent(t: &Test, node: &str, sensor: &str, seconds: u64) -> Value {
    t.eventually(
        &format!("the agent on node {node} is Ready with the {sensor} sensor"),
        seconds,
        || {
            let pod = agent_pod(t, node)?;
            let ready = pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let running = &pod["metadata"]["annotations"][SENSOR_ANNOTATION];
            if ready && running == sensor {
                Ok(pod)
            } else {
                Err(format!(
                    "agent pod {} Ready={ready}, {SENSOR_ANNOTATION}={running}",
                    pod["metadata"]["name"]
                ))
            }
        },
    )
}

/// Wait (up to `seconds`) until every agent pod is Ready and says it runs `sensor`; an
/// error says which is not.
pub fn wait_all_agents(t: &Test, sensor: &str, seconds: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let problem = match get_json(
            t,
            &[
                "get",
                "pods",
                "-n",
                PALISADE_NAMESPACE,
                "-l",
                AGENT_SELECTOR,
                "-o",
                "json",
            ],
        ) {
            Ok(list) => {
                let pods = list["items"].as_array().cloned().unwrap_or_default();
                let wrong: Vec<String> = pods
                    .iter()
                    .filter(|p| {
                        let ready = p["status"]["conditions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True");
                        !p["metadata"]["deletionTimestamp"].is_null()
                            || !ready
                            || p["metadata"]["annotations"][SENSOR_ANNOTATION] != sensor
                    })
                    .map(|p| {
                        format!(
                            "{} ({SENSOR_ANNOTATION}={})",
                            p["metadata"]["name"], p["metadata"]["annotations"][SENSOR_ANNOTATION]
                        )
                    })
                    .collect();
                if pods.is_empty() {
                    "no agent pod".to_owned()
                } else if wrong.is_empty() {
                    return Ok(());
                } else {
                    format!("not Ready with the {sensor} sensor: {}", wrong.join(", "))
                }
            }
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(format!("after {seconds}s: {problem}"));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// The agent's JSON lines (those with `output_fields`) about namespace `namespace`, from
/// the agent on `node`, written in the last `since`.
pub fn agent_lines(
    t: &Test,
    node: &str,
    namespace: &str,
    since: Duration,
) -> Result<Vec<Value>, String> {
    let pod = agent_pod(t, node)?;
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let out = t.env.kubectl.run(
        &t.dir,
        [
            "logs",
            "-n",
            PALISADE_NAMESPACE,
            name,
            &format!("--since={}s", since.as_secs().max(1)),
        ],
        None,
    );
    if !out.success() {
        return Err(out.to_string());
    }
    // The logs are not added to the transcript: they are long, and failures print what
    // was looked for.
    let needle = format!("\"k8s.ns.name\":\"{namespace}\"");
    Ok(out
        .stdout
        .lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v["output_fields"].is_object())
        .collect())
}

/// Events on `pod` (the core/v1 view kubectl shows: `message` is the note,
/// `involvedObject` the `regarding` object), quietly: not in the transcript.
pub fn pod_events(t: &Test, pod: &PodRef) -> Result<Vec<Value>, String> {
    let out = t.env.kubectl.run(
        &t.dir,
        [
            "get",
            "events",
            "-n",
            &pod.namespace,
            "--field-selector",
            &format!("involvedObject.name={}", pod.name),
            "-o",
            "json",
        ],
        None,
    );
    if !out.success() {
        return Err(out.to_string());
    }
    let list: Value = serde_json::from_str(&out.stdout).map_err(|e| format!("{e}:\n{out}"))?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// The agent's Events in `namespace`.
pub fn agent_events(t: &Test, namespace: &str) -> Result<Vec<Value>, String> {
    let list = get_json(t, &["get", "events", "-n", namespace, "-o", "json"])?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reportingComponent"] == REPORTING_CONTROLLER)
        .cloned()
        .collect())
}

/// The runtime PolicyReports in `namespace` (one per node whose agent saw something).
pub fn runtime_reports(t: &Test, namespace: &str) -> Result<Vec<Value>, String> {
    let list = get_json(
        t,
        &[
            "get",
            "policyreports.wgpolicyk8s.io",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/managed-by=palisade-agent",
            "-o",
            "json",
        ],
    )?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// The runtime PolicyReport of `pod`'s namespace and node, if written, quietly.
fn pod_report(t: &Test, pod: &PodRef) -> Result<Option<Value>, String> {
    let out = t.env.kubectl.run(
        &t.dir,
        [
            "get",
            "policyreports.wgpolicyk8s.io",
            "-n",
            &pod.namespace,
            &pod.report_name(),
            "-o",
            "json",
            "--ignore-not-found",
        ],
        None,
    );
    if !out.success() {
        return Err(out.to_string());
    }
    if out.stdout.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&out.stdout)
        .map(Some)
        .map_err(|e| format!("{e}:\n{out}"))
}

/// One detection the test waits for.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    pub rule: Rule,
    /// The SecurityPolicy whose `spec.runtime` applies the rule.
    pub policy: &'a str,
    pub action: Action,
    /// A piece of the offending process's command line (`proc.cmdline` of the JSON line:
    /// its name, then its arguments), which tells this behaviour from others in the pod.
    pub cmdline: &'a str,
}

/// A detection's outputs as found.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// The Event (core/v1 view); `None` for a waived detection, which has none.
    pub event: Option<Value>,
    pub result: Value,
    pub line: Value,
}

fn is_event_of(e: &Value, pod: &PodRef, rule: Rule) -> bool {
    e["reason"] == rule.reason
        && e["involvedObject"]["kind"] == "Pod"
        && e["involvedObject"]["name"] == pod.name.as_str()
        && e["involvedObject"]["namespace"] == pod.namespace.as_str()
}

fn is_result_of(r: &Value, pod: &PodRef, policy: &str, rule: Rule) -> bool {
    r["policy"] == policy
        && r["rule"] == rule.id
        && r["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["kind"] == "Pod" && o["name"] == pod.name.as_str())
}

fn is_line_of(l: &Value, pod: &PodRef, want: &Expected) -> bool {
    let f = &l["output_fields"];
    f["palisade.rule_id"] == want.rule.id
        && f["k8s.pod.name"] == pod.name.as_str()
        && f["k8s.ns.name"] == pod.namespace.as_str()
        && f["palisade.policy"] == format!("SecurityPolicy/{}", want.policy)
        && f["proc.cmdline"]
            .as_str()
            .is_some_and(|c| c.contains(want.cmdline))
}

/// What is wrong with the Event found for `want` (empty: nothing).
fn event_problems(e: &Value, want: &Expected) -> Vec<String> {
    let mut p = Vec::new();
    let message = e["message"].as_str().unwrap_or_default();
    let head = format!(
        "{} ({}, {})",
        want.rule.name, want.rule.id, want.rule.priority
    );
    if !message.starts_with(&head) {
        p.push(format!("its message does not start with {head:?}"));
    }
    let policy = format!("SecurityPolicy/{}", want.policy);
    if !message.contains(&policy) {
        p.push(format!("its message does not name {policy}"));
    }
    if want.action == Action::Killed && !message.contains("the process was killed") {
        p.push("its message does not say that the process was killed".into());
    }
    if e["type"] != "Warning" {
        p.push(format!("type {} instead of Warning", e["type"]));
    }
    if e["action"] != want.action.event_action() {
        p.push(format!(
            "action {} instead of {}",
            e["action"],
            want.action.event_action()
        ));
    }
    if e["reportingComponent"] != REPORTING_CONTROLLER {
        p.push(format!(
            "reportingComponent {} instead of {REPORTING_CONTROLLER}",
            e["reportingComponent"]
        ));
    }
    p
}

fn result_problems(report: &Value, r: &Value, pod: &PodRef, want: &Expected) -> Vec<String> {
    let mut p = Vec::new();
    let labels = &report["metadata"]["labels"];
    if labels["app.kubernetes.io/managed-by"] != "palisade-agent" {
        p.push("the report is not labelled app.kubernetes.io/managed-by=palisade-agent".into());
    }
    if labels["palisade.dev/node"] != pod.node.as_str() {
        p.push(format!(
            "the report's palisade.dev/node label is not {}",
            pod.node
        ));
    }
    let checks: [(&str, &Value, &str); 5] = [
        ("result", &r["result"], want.action.outcome()),
        ("source", &r["source"], "palisade"),
        ("category", &r["category"], REPORT_CATEGORY),
        (
            "properties.container",
            &r["properties"]["container"],
            pod.container.as_str(),
        ),
        (
            "properties.action",
            &r["properties"]["action"],
            want.action.as_str(),
        ),
    ];
    for (field, got, wanted) in checks {
        if got != wanted {
            p.push(format!("{field} {got} instead of {wanted:?}"));
        }
    }
    let resource = r["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == pod.name.as_str())
        .cloned()
        .unwrap_or_default();
    if resource["namespace"] != pod.namespace.as_str() || resource["uid"] != pod.uid.as_str() {
        p.push(format!(
            "its resource is {resource}, not the pod {}/{} (uid {})",
            pod.namespace, pod.name, pod.uid
        ));
    }
    if r["properties"]["count"]
        .as_str()
        .and_then(|c| c.parse::<u64>().ok())
        .is_none_or(|c| c < 1)
    {
        p.push(format!(
            "properties.count {} is not a count",
            r["properties"]["count"]
        ));
    }
    p
}

fn line_problems(l: &Value, pod: &PodRef, want: &Expected) -> Vec<String> {
    let mut p = Vec::new();
    let f = &l["output_fields"];
    let short_id = &pod.container_id[..pod.container_id.len().min(12)];
    let checks: [(&str, &Value, &str); 6] = [
        ("rule", &l["rule"], want.rule.name),
        ("priority", &l["priority"], want.rule.priority),
        ("source", &l["source"], "syscall"),
        ("hostname", &l["hostname"], pod.node.as_str()),
        ("output_fields.container.id", &f["container.id"], short_id),
        (
            "output_fields.palisade.action",
            &f["palisade.action"],
            want.action.as_str(),
        ),
    ];
    for (field, got, wanted) in checks {
        if got != wanted {
            p.push(format!("{field} {got} instead of {wanted:?}"));
        }
    }
    if l["time"].as_str().is_none_or(str::is_empty)
        || l["output"].as_str().is_none_or(str::is_empty)
    {
        p.push("no time or output".into());
    }
    p
}

/// Wait until `want`'s outputs about `pod` all show — the Event (but for a waived
/// detection), the PolicyReport result and the agent's JSON line — within
/// [`DETECTION_DEADLINE`] of `done` (when the behaviour's command returned). Panics, with
/// what each output held, when one is missing or says something else.
pub fn wait_detection(t: &Test, pod: &PodRef, want: &Expected, done: Instant) -> Outputs {
    wait_detection_within(t, pod, want, done, DETECTION_DEADLINE)
}

/// [`wait_detection`] with another deadline.
pub fn wait_detection_within(
    t: &Test,
    pod: &PodRef,
    want: &Expected,
    done: Instant,
    within: Duration,
) -> Outputs {
    let deadline = done + within;
    let need_event = want.action != Action::Waived;
    let mut event: Option<Value> = None;
    let mut found_result: Option<(Value, Value)> = None;
    let mut line: Option<Value> = None;
    let (mut events_seen, mut report_seen, mut lines_seen) =
        (String::new(), String::new(), String::new());
    loop {
        if need_event && event.is_none() {
            match pod_events(t, pod) {
                Ok(list) => {
                    event = list
                        .iter()
                        .find(|e| is_event_of(e, pod, want.rule))
                        .cloned();
                    events_seen = list
                        .iter()
                        .map(|e| format!("  {}: {}", e["reason"], e["message"]))
                        .collect::<Vec<_>>()
                        .join("\n");
                }
                Err(e) => events_seen = e,
            }
        }
        if found_result.is_none() {
            match pod_report(t, pod) {
                Ok(Some(report)) => {
                    found_result = report["results"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|r| is_result_of(r, pod, want.policy, want.rule))
                        .cloned()
                        .map(|r| (report.clone(), r));
                    report_seen =
                        serde_json::to_string_pretty(&report["results"]).unwrap_or_default();
                }
                Ok(None) => report_seen = format!("no PolicyReport {}", pod.report_name()),
                Err(e) => report_seen = e,
            }
        }
        if line.is_none() {
            match agent_lines(t, &pod.node, &pod.namespace, Duration::from_secs(180)) {
                Ok(lines) => {
                    line = lines.iter().find(|l| is_line_of(l, pod, want)).cloned();
                    lines_seen = lines
                        .iter()
                        .map(|l| {
                            let f = &l["output_fields"];
                            format!(
                                "  {} {} {} {}: {}",
                                f["k8s.pod.name"],
                                f["palisade.rule_id"],
                                f["palisade.action"],
                                f["palisade.policy"],
                                f["proc.cmdline"]
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                }
                Err(e) => lines_seen = e,
            }
        }
        let complete = (!need_event || event.is_some()) && found_result.is_some() && line.is_some();
        if complete {
            break;
        }
        if Instant::now() > deadline {
            let mut missing = Vec::new();
            if need_event && event.is_none() {
                missing.push(format!(
                    "the Event (reason {}) on pod {}; the pod's Events:\n{events_seen}",
                    want.rule.reason, pod.name
                ));
            }
            if found_result.is_none() {
                missing.push(format!(
                    "the result (policy {}, rule {}, pod {}) in PolicyReport {}/{}; its results:\n{report_seen}",
                    want.policy,
                    want.rule.id,
                    pod.name,
                    pod.namespace,
                    pod.report_name()
                ));
            }
            if line.is_none() {
                missing.push(format!(
                    "the agent's JSON line (rule {}, pod {}, proc.cmdline containing {:?}); its lines about namespace {}:\n{lines_seen}",
                    want.rule.id, pod.name, want.cmdline, pod.namespace
                ));
            }
            panic!(
                "{} ({}) was not reported within {:.0}s of the behaviour ({:.1}s now); missing:\n- {}\n{}",
                want.rule.id,
                want.rule.name,
                within.as_secs_f64(),
                done.elapsed().as_secs_f64(),
                missing.join("\n- "),
                agent_tail(t, &pod.node)
            );
        }
        thread::sleep(Duration::from_millis(200));
    }

    let mut problems = Vec::new();
    if let Some(e) = &event {
        problems.extend(
            event_problems(e, want)
                .into_iter()
                .map(|p| format!("Event: {p}")),
        );
    }
    let (report, result) = found_result.unwrap_or_default();
    problems.extend(
        result_problems(&report, &result, pod, want)
            .into_iter()
            .map(|p| format!("PolicyReport result: {p}")),
    );
    let line = line.unwrap_or_default();
    problems.extend(
        line_problems(&line, pod, want)
            .into_iter()
            .map(|p| format!("JSON line: {p}")),
    );
    assert!(
        problems.is_empty(),
        "{} ({}) was reported, but not as expected:\n- {}\nEvent: {}\nresult: {}\nline: {}",
        want.rule.id,
        want.rule.name,
        problems.join("\n- "),
        event.as_ref().map(Value::to_string).unwrap_or_default(),
        result,
        line
    );
    Outputs {
        event,
        result,
        line,
    }
}

/// The last lines of the agent's log on `node`, for failure messages.
pub fn agent_tail(t: &Test, node: &str) -> String {
    let mut s = String::new();
    match agent_pod(t, node) {
        Ok(pod) => {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let out = t.env.kubectl.run(
                &t.dir,
                ["logs", "-n", PALISADE_NAMESPACE, name, "--tail=40"],
                None,
            );
            let _ = write!(
                s,
                "--- last 40 lines of agent pod {name} (annotations {}) ---\n{}",
                pod["metadata"]["annotations"],
                if out.success() {
                    out.stdout
                } else {
                    out.to_string()
                }
            );
        }
        Err(e) => s.push_str(&e),
    }
    s
}
