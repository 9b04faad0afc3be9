//! The node agents as a whole, and what a SecurityPolicy with runtime rules is told of them
//! (its `RuntimeSensors` condition): pure functions of the DaemonSet and its pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::controllers::conditions::truncate;

/// The condition on each SecurityPolicy that has runtime rules.
pub const RUNTIME_SENSORS: &str = "RuntimeSensors";

/// The agent pod's annotations, as the agent writes them.
pub const SENSOR_ANNOTATION: &str = "palisade.dev/sensor";
pub const UNCOVERED_ANNOTATION: &str = "palisade.dev/uncovered-rules";

/// Reasons of [`RUNTIME_SENSORS`].
pub const REASON_COVERED: &str = "AllNodesCovered";
pub const REASON_NOT_READY: &str = "SensorsNotReady";
pub const REASON_PARTIAL: &str = "PartialCoverage";
pub const REASON_DISABLED: &str = "AgentDisabled";

/// The agents across the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Whether the operator deploys agents at all (`agent.enabled`).
    pub enabled: bool,
    /// Nodes that should run an agent (the DaemonSet's `desiredNumberScheduled`).
    pub desired: u32,
    /// Agent pods Ready, by the sensor they say they run (`ebpf`, `fallback`; `unknown`
    /// before the agent has said).
    pub ready: BTreeMap<String, u32>,
    /// Per rule id, the ready agents whose sensor cannot see it.
    pub uncovered: BTreeMap<String, u32>,
}

impl Fleet {
    /// No agent is deployed.
    pub fn disabled() -> Fleet {
        Fleet::default()
    }

    /// The fleet of `daemonset` (none yet: nothing desired) and its `pods`.
    pub fn of<'a>(daemonset: Option<&DaemonSet>, pods: impl IntoIterator<Item = &'a Pod>) -> Fleet {
        let desired = daemonset
            .and_then(|d| d.status.as_ref())
            .map(|s| s.desired_number_scheduled.max(0) as u32)
            .unwrap_or(0);
        let mut fleet = Fleet {
            enabled: true,
            desired,
            ..Fleet::default()
        };
        for pod in pods.into_iter().filter(|p| is_ready(p)) {
            let annotations = pod.metadata.annotations.as_ref();
            let sensor = annotations
                .and_then(|a| a.get(SENSOR_ANNOTATION))
                .map(String::as_str)
                .unwrap_or("unknown");
            *fleet.ready.entry(sensor.to_owned()).or_default() += 1;
            let uncovered = annotations
                .and_then(|a| a.get(UNCOVERED_ANNOTATION))
                .map(String::as_str)
                .unwrap_or("");
            for rule in uncovered
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                *fleet.uncovered.entry(rule.to_owned()).or_default() += 1;
            }
        }
        fleet
    }

    pub fn ready_total(&self) -> u32 {
        self.ready.values().sum()
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The `RuntimeSensors` condition of a policy applying `rules` (ids, in catalogue order),
/// keeping `lastTransitionTime` from `previous` while the status holds.
pub fn runtime_condition(
    fleet: &Fleet,
    rules: &[&str],
    previous: &[Condition],
    generation: i64,
    now: Time,
) -> Condition {
    let (status, reason, message) = judge(fleet, rules);
    let last_transition_time = match previous.iter().find(|c| c.type_ == RUNTIME_SENSORS) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now,
    };
    Condition {
        type_: RUNTIME_SENSORS.into(),
        status: status.into(),
        reason: reason.into(),
        message: truncate(message),
        observed_generation: Some(generation),
        last_transition_time,
    }
}

fn judge(fleet: &Fleet, rules: &[&str]) -> (&'static str, &'static str, String) {
    if !fleet.enabled {
        return (
            "False",
            REASON_DISABLED,
            "no node agent is deployed (chart value agent.enabled=false): runtime rules are not watched"
                .into(),
        );
    }
    let ready = fleet.ready_total();
    let by_sensor: Vec<String> = fleet
        .ready
        .iter()
        .map(|(sensor, n)| {
            let name = match sensor.as_str() {
                "ebpf" => "eBPF",
                other => other,
            };
            format!("{name} {n}")
        })
        .collect();
    let mut message = format!(
        "{ready} of {} node{} run{} a ready sensor",
        fleet.desired,
        if fleet.desired == 1 { "" } else { "s" },
        if fleet.desired == 1 { "s" } else { "" },
    );
    if !by_sensor.is_empty() {
        message.push_str(&format!(" ({})", by_sensor.join(", ")));
    }
    let missing: Vec<String> = rules
        .iter()
        .filter_map(|r| fleet.uncovered.get(*r).map(|n| (r, n)))
        .map(|(r, n)| format!("{r} on {n} node{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if !missing.is_empty() {
        message.push_str(&format!(
            "; the sensor cannot see {} (the fallback sensor sees only execs)",
            missing.join(", ")
        ));
    }
    if fleet.desired == 0 || ready < fleet.desired {
        ("False", REASON_NOT_READY, message)
    } else if !missing.is_empty() {
        ("False", REASON_PARTIAL, message)
    } else {
        ("True", REASON_COVERED, message)
    }
}

/// `conditions` with the `RuntimeSensors` condition set to `condition`, or removed when
/// `None` (the policy has no runtime rules).
pub fn with_runtime_condition(
    mut conditions: Vec<Condition>,
    condition: Option<Condition>,
) -> Vec<Condition> {
    conditions.retain(|c| c.type_ != RUNTIME_SENSORS);
    conditions.extend(condition);
    conditions
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DaemonSetStatus;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().expect("timestamp"))
    }

    fn daemonset(desired: i32) -> DaemonSet {
        DaemonSet {
            status: Some(DaemonSetStatus {
                desired_number_scheduled: desired,
                ..DaemonSetStatus::default()
            }),
            ..DaemonSet::default()
        }
    }

    fn pod(ready: bool, sensor: Option<&str>, uncovered: &str) -> Pod {
        let mut annotations = BTreeMap::new();
        if let Some(s) = sensor {
            annotations.insert(SENSOR_ANNOTATION.to_string(), s.to_string());
            annotations.insert(UNCOVERED_ANNOTATION.to_string(), uncovered.to_string());
        }
        Pod {
            metadata: ObjectMeta {
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn the_condition_counts_ready_sensors_and_names_what_the_fallback_misses() {
        let rules = ["runtime.terminalShell", "runtime.packetSocket"];
        let cases: Vec<(&str, Fleet, &str, &str, &[&str])> = vec![
            (
                "every node covered by eBPF",
                Fleet::of(
                    Some(&daemonset(2)),
                    &[pod(true, Some("ebpf"), ""), pod(true, Some("ebpf"), "")],
                ),
                "True",
                REASON_COVERED,
                &["2 of 2 nodes run a ready sensor (eBPF 2)"],
            ),
            (
                "one agent not ready yet",
                Fleet::of(
                    Some(&daemonset(2)),
                    &[pod(true, Some("ebpf"), ""), pod(false, None, "")],
                ),
                "False",
                REASON_NOT_READY,
                &["1 of 2 nodes run a ready sensor (eBPF 1)"],
            ),
            (
                "a fallback node misses a rule of this policy",
                Fleet::of(
                    Some(&daemonset(2)),
                    &[
                        pod(true, Some("ebpf"), ""),
                        pod(
                            true,
                            Some("fallback"),
                            "runtime.packetSocket,runtime.ptraceAttached",
                        ),
                    ],
                ),
                "False",
                REASON_PARTIAL,
                &[
                    "2 of 2 nodes run a ready sensor (eBPF 1, fallback 1)",
                    "cannot see runtime.packetSocket on 1 node",
                ],
            ),
            (
                "the fallback misses only rules this policy does not apply",
                Fleet::of(
                    Some(&daemonset(1)),
                    &[pod(true, Some("fallback"), "runtime.ptraceAttached")],
                ),
                "True",
                REASON_COVERED,
                &["1 of 1 node runs a ready sensor (fallback 1)"],
            ),
            (
                "no node to run on",
                Fleet::of(Some(&daemonset(0)), &[]),
                "False",
                REASON_NOT_READY,
                &["0 of 0 nodes"],
            ),
            (
                "no DaemonSet yet",
                Fleet::of(None, &[]),
                "False",
                REASON_NOT_READY,
                &["0 of 0 nodes"],
            ),
            (
                "no agent deployed",
                Fleet::disabled(),
                "False",
                REASON_DISABLED,
                &["agent.enabled=false"],
            ),
        ];
        for (name, fleet, status, reason, fragments) in cases {
            let c = runtime_condition(&fleet, &rules, &[], 3, at("2026-01-01T00:00:00Z"));
            assert_eq!(c.type_, RUNTIME_SENSORS, "{name}");
            assert_eq!(c.status, status, "{name}: {}", c.message);
            assert_eq!(c.reason, reason, "{name}: {}", c.message);
            assert_eq!(c.observed_generation, Some(3), "{name}");
            for f in fragments {
                assert!(c.message.contains(f), "{name}: {:?} lacks {f:?}", c.message);
            }
        }
    }

    #[test]
    fn the_transition_time_moves_only_with_the_status() {
        let covered = Fleet::of(Some(&daemonset(1)), &[pod(true, Some("ebpf"), "")]);
        let first = runtime_condition(&covered, &[], &[], 1, at("2026-01-01T00:00:00Z"));
        let same = runtime_condition(
            &covered,
            &[],
            std::slice::from_ref(&first),
            2,
            at("2026-01-02T00:00:00Z"),
        );
        assert_eq!(same.last_transition_time, first.last_transition_time);
        let lost = Fleet::of(Some(&daemonset(1)), &[]);
        let changed = runtime_condition(
            &lost,
            &[],
            std::slice::from_ref(&first),
            2,
            at("2026-01-03T00:00:00Z"),
        );
        assert_eq!(changed.last_transition_time, at("2026-01-03T00:00:00Z"));
    }

    #[test]
    fn the_condition_is_replaced_or_removed_and_the_others_stay() {
        let other = Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Valid".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: at("2026-01-01T00:00:00Z"),
        };
        let sensors =
            runtime_condition(&Fleet::disabled(), &[], &[], 1, at("2026-01-01T00:00:00Z"));
        let set = with_runtime_condition(vec![other.clone()], Some(sensors.clone()));
        assert_eq!(set, vec![other.clone(), sensors.clone()]);
        let again = with_runtime_condition(set, Some(sensors.clone()));
        assert_eq!(again.len(), 2);
        assert_eq!(with_runtime_condition(again, None), vec![other]);
    }
}
