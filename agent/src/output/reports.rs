//! Detections as PolicyReport results, beside the admission and audit results: one report
//! per namespace and node (`palisade-runtime-<node>`), since each node's agent writes its
//! own. One result per policy, rule, pod and container, with a count and first/last seen
//! times. Bounded: at most `max_results` per report (most severe, then most recent, kept),
//! and a result not seen again within the retention window expires.
//!
//! Pure: [`Reports`] holds the results and says which namespaces changed; the publisher
//! applies them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use palisade_crds::policy_report::{
    self, Outcome, PolicyReport, ReportBody, ReportResult, Severity, Summary,
};

use crate::pods::ContainerInfo;

/// `source` of every result, as the operator's audit writes it.
pub const SOURCE: &str = "palisade";
pub const CATEGORY: &str = "Runtime Detection";
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "palisade-agent");
pub const NODE_LABEL: &str = "palisade.dev/node";
const MAX_MESSAGE: usize = 1024;

/// One detection as the report records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub policy: String,
    pub rule_id: &'static str,
    pub rule_name: &'static str,
    pub priority: &'static str,
    /// `critical` … `info` (the priority's report severity).
    pub severity: &'static str,
    pub action: &'static str,
    pub waived_by: Option<String>,
    pub output: String,
    pub process: String,
    pub container: ContainerInfo,
    pub time_ns: u64,
    /// Extra properties (docs link, compliance references).
    pub properties: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    policy: String,
    rule: String,
    pod: String,
    container: String,
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    result: ReportResult,
    count: u64,
    first_ns: u64,
    last_ns: u64,
}

/// Every namespace's runtime results on this node.
pub struct Reports {
    node: String,
    max_results: usize,
    retention_ns: u64,
    namespaces: BTreeMap<String, BTreeMap<Key, Entry>>,
    dirty: BTreeSet<String>,
}

/// The report's name for a node (DNS-1123: lowercase; cut with a hash when too long).
pub fn report_name(node: &str) -> String {
    let name = format!("palisade-runtime-{}", node.to_ascii_lowercase());
    if name.len() <= 253 {
        return name;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, node.as_bytes());
    let hash: String = digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{hash}", &name[..240])
}

fn severity_of(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        _ => Severity::Info,
    }
}

fn rank(s: Option<Severity>) -> u8 {
    match s {
        Some(Severity::Critical) => 0,
        Some(Severity::High) => 1,
        Some(Severity::Medium) => 2,
        Some(Severity::Low) => 3,
        _ => 4,
    }
}

fn timestamp(ns: u64) -> policy_report::Timestamp {
    policy_report::Timestamp {
        seconds: (ns / 1_000_000_000) as i64,
        nanos: (ns % 1_000_000_000) as i32,
    }
}

fn rfc3339(ns: u64) -> String {
    Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn parse_rfc3339(s: &str) -> Option<u64> {
    s.parse::<Timestamp>()
        .ok()
        .and_then(|t| u64::try_from(t.as_nanosecond()).ok())
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl Reports {
    pub fn new(node: &str, max_results: usize, retention_ns: u64) -> Reports {
        Reports {
            node: node.into(),
            max_results: max_results.max(1),
            retention_ns,
            namespaces: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// Records a detection.
    pub fn record(&mut self, seen: &Seen) {
        let c = &seen.container;
        let key = Key {
            policy: seen.policy.clone(),
            rule: seen.rule_id.into(),
            pod: c.pod_name.clone(),
            container: c.container_name.clone(),
        };
        let results = self.namespaces.entry(c.namespace.clone()).or_default();
        let (count, first_ns) = results.get(&key).map_or((1, seen.time_ns), |e| {
            (e.count + 1, e.first_ns.min(seen.time_ns))
        });
        let last_ns = seen.time_ns;
        let mut properties = seen.properties.clone();
        properties.insert("container".into(), c.container_name.clone());
        properties.insert("image".into(), c.image.clone());
        properties.insert("action".into(), seen.action.into());
        properties.insert("process".into(), truncate(seen.process.clone(), 256));
        properties.insert("ruleName".into(), seen.rule_name.into());
        properties.insert("priority".into(), seen.priority.into());
        properties.insert("node".into(), self.node.clone());
        properties.insert("count".into(), count.to_string());
        properties.insert("firstSeen".into(), rfc3339(first_ns));
        properties.insert("lastSeen".into(), rfc3339(last_ns));
        if let Some(exception) = &seen.waived_by {
            properties.insert("exception".into(), exception.clone());
        }
        let result = ReportResult {
            source: Some(SOURCE.into()),
            policy: seen.policy.clone(),
            rule: Some(seen.rule_id.into()),
            category: Some(CATEGORY.into()),
            severity: Some(severity_of(seen.severity)),
            timestamp: Some(timestamp(last_ns)),
            result: Some(if seen.waived_by.is_some() {
                Outcome::Skip
            } else {
                Outcome::Fail
            }),
            scored: true,
            resources: vec![ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(c.pod_name.clone()),
                namespace: Some(c.namespace.clone()),
                uid: (!c.pod_uid.is_empty()).then(|| c.pod_uid.clone()),
                ..ObjectReference::default()
            }],
            message: Some(truncate(seen.output.clone(), MAX_MESSAGE)),
            properties,
        };
        results.insert(
            key,
            Entry {
                result,
                count,
                first_ns,
                last_ns,
            },
        );
        self.dirty.insert(c.namespace.clone());
    }

    /// Forgets results last seen before the retention window.
    pub fn expire(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(self.retention_ns);
        for (ns, results) in &mut self.namespaces {
            let before = results.len();
            results.retain(|_, e| e.last_ns >= horizon);
            if results.len() != before {
                self.dirty.insert(ns.clone());
            }
        }
    }

    /// Namespaces whose report changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// The report for `namespace`, or `None` when it has no results left (delete it).
    pub fn report(&mut self, namespace: &str) -> Option<PolicyReport> {
        let results = self.namespaces.get_mut(namespace)?;
        if results.len() > self.max_results {
            let mut order: Vec<(u8, std::cmp::Reverse<u64>, Key)> = results
                .iter()
                .map(|(k, e)| {
                    (
                        rank(e.result.severity),
                        std::cmp::Reverse(e.last_ns),
                        k.clone(),
                    )
                })
                .collect();
            order.sort();
            for (_, _, k) in order.into_iter().skip(self.max_results) {
                results.remove(&k);
            }
        }
        if results.is_empty() {
            self.namespaces.remove(namespace);
            return None;
        }
        let mut list: Vec<&Entry> = results.values().collect();
        list.sort_by(|a, b| {
            rank(a.result.severity)
                .cmp(&rank(b.result.severity))
                .then(b.last_ns.cmp(&a.last_ns))
        });
        let mut summary = Summary::default();
        for e in &list {
            match e.result.result {
                Some(Outcome::Skip) => summary.skip += 1,
                _ => summary.fail += 1,
            }
        }
        Some(PolicyReport::new(
            ObjectMeta {
                name: Some(report_name(&self.node)),
                namespace: Some(namespace.into()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
                    ("app.kubernetes.io/part-of".into(), "palisade".into()),
                    (NODE_LABEL.into(), label_value(&self.node)),
                ])),
                ..ObjectMeta::default()
            },
            ReportBody {
                scope: None,
                scope_selector: None,
                summary,
                results: list.into_iter().map(|e| e.result.clone()).collect(),
            },
        ))
    }

    /// Takes back the results of reports written before a restart, so counts and history
    /// carry on.
    pub fn restore(&mut self, report: &PolicyReport) {
        let Some(namespace) = report.metadata.namespace.clone() else {
            return;
        };
        for r in &report.body.results {
            let prop = |k: &str| r.properties.get(k).cloned().unwrap_or_default();
            let pod = r
                .resources
                .first()
                .and_then(|o| o.name.clone())
                .unwrap_or_default();
            let Some(rule) = r.rule.clone() else { continue };
            let last_ns = parse_rfc3339(&prop("lastSeen")).unwrap_or(0);
            let entry = Entry {
                result: r.clone(),
                count: prop("count").parse().unwrap_or(1),
                first_ns: parse_rfc3339(&prop("firstSeen")).unwrap_or(last_ns),
                last_ns,
            };
            self.namespaces
                .entry(namespace.clone())
                .or_default()
                .insert(
                    Key {
                        policy: r.policy.clone(),
                        rule,
                        pod,
                        container: prop("container"),
                    },
                    entry,
                );
        }
    }
}

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`.
pub fn label_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect::<String>()
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const T0: u64 = 1_796_457_600 * S;

    fn seen(rule: &'static str, severity: &'static str, pod: &str, t: u64) -> Seen {
        Seen {
            policy: "runtime".into(),
            rule_id: rule,
            rule_name: "Some rule",
            priority: "Warning",
            severity,
            action: "reported",
            waived_by: None,
            output: "something happened".into(),
            process: "cat /etc/shadow".into(),
            container: ContainerInfo {
                namespace: "shop".into(),
                pod_name: pod.into(),
                pod_uid: format!("uid-{pod}"),
                container_name: "app".into(),
                image: "docker.io/library/nginx:1.25".into(),
                ..ContainerInfo::default()
            },
            time_ns: t,
            properties: BTreeMap::new(),
        }
    }

    #[test]
    fn repeats_count_in_one_result_on_the_pod() {
        let mut r = Reports::new("node-1", 100, 3600 * S);
        r.record(&seen(
            "runtime.readSensitiveFileUntrusted",
            "medium",
            "web-1",
            T0,
        ));
        r.record(&seen(
            "runtime.readSensitiveFileUntrusted",
            "medium",
            "web-1",
            T0 + 5 * S,
        ));
        assert_eq!(r.take_dirty(), ["shop"]);
        let report = r.report("shop").expect("a report");
        assert_eq!(
            report.metadata.name.as_deref(),
            Some("palisade-runtime-node-1")
        );
        let labels = report.metadata.labels.as_ref().expect("labels");
        assert_eq!(
            labels.get("palisade.dev/node").map(String::as_str),
            Some("node-1")
        );
        assert_eq!(report.body.results.len(), 1);
        let result = &report.body.results[0];
        assert_eq!(
            result.rule.as_deref(),
            Some("runtime.readSensitiveFileUntrusted")
        );
        assert_eq!(result.result, Some(Outcome::Fail));
        assert_eq!(result.properties["count"], "2");
        assert_eq!(result.properties["firstSeen"], "2026-12-05T08:00:00Z");
        assert_eq!(result.properties["lastSeen"], "2026-12-05T08:00:05Z");
        assert_eq!(result.resources[0].name.as_deref(), Some("web-1"));
        assert_eq!(report.body.summary.fail, 1);
    }

    #[test]
    fn waived_detections_are_skipped_results() {
        let mut r = Reports::new("n", 100, 3600 * S);
        let mut s = seen("runtime.terminalShell", "low", "web-1", T0);
        s.waived_by = Some("debugging".into());
        s.action = "waived";
        r.record(&s);
        let report = r.report("shop").expect("a report");
        assert_eq!(report.body.results[0].result, Some(Outcome::Skip));
        assert_eq!(report.body.results[0].properties["exception"], "debugging");
        assert_eq!((report.body.summary.fail, report.body.summary.skip), (0, 1));
    }

    #[test]
    fn reports_are_bounded_keeping_the_most_severe_and_recent() {
        let mut r = Reports::new("n", 2, 3600 * S);
        r.record(&seen("runtime.a", "low", "p1", T0));
        r.record(&seen("runtime.b", "critical", "p2", T0));
        r.record(&seen("runtime.c", "low", "p3", T0 + S));
        let report = r.report("shop").expect("a report");
        let rules: Vec<_> = report
            .body
            .results
            .iter()
            .filter_map(|x| x.rule.clone())
            .collect();
        assert_eq!(rules, ["runtime.b", "runtime.c"]);
    }

    #[test]
    fn old_results_expire_and_an_empty_report_goes() {
        let mut r = Reports::new("n", 100, 60 * S);
        r.record(&seen("runtime.a", "low", "p1", T0));
        r.record(&seen("runtime.b", "low", "p2", T0 + 50 * S));
        r.take_dirty();
        r.expire(T0 + 100 * S);
        assert_eq!(r.take_dirty(), ["shop"]);
        assert_eq!(r.report("shop").map(|x| x.body.results.len()), Some(1));
        r.expire(T0 + 200 * S);
        assert!(
            r.report("shop").is_none(),
            "no results: the report is deleted"
        );
    }

    #[test]
    fn a_restart_carries_counts_on() {
        let mut a = Reports::new("n", 100, 3600 * S);
        a.record(&seen("runtime.a", "low", "p1", T0));
        a.record(&seen("runtime.a", "low", "p1", T0 + S));
        let written = a.report("shop").expect("a report");
        let mut b = Reports::new("n", 100, 3600 * S);
        b.restore(&written);
        b.record(&seen("runtime.a", "low", "p1", T0 + 2 * S));
        let report = b.report("shop").expect("a report");
        assert_eq!(report.body.results[0].properties["count"], "3");
        assert_eq!(
            report.body.results[0].properties["firstSeen"],
            "2026-12-05T08:00:00Z"
        );
    }

    #[test]
    fn names_and_labels_for_any_node() {
        assert_eq!(
            report_name("ip-10-0-1-5.ec2.internal"),
            "palisade-runtime-ip-10-0-1-5.ec2.internal"
        );
        assert!(report_name(&"n".repeat(300)).len() <= 253);
        assert_eq!(
            label_value("ip-10-0-1-5.ec2.internal"),
            "ip-10-0-1-5.ec2.internal"
        );
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }
}
