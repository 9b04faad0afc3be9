//! Prometheus metrics, served on the admin port.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReadyLabels {
    ready: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AuditLabels {
    policy: String,
    rule: String,
}

/// Seconds. A reconcile is one or two API calls: milliseconds, seconds when the API server
/// is slow.
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The operator's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<ResultLabels, Counter>,
    failures: Family<ControllerLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    leader: Gauge,
    policies: Family<ReadyLabels, Gauge>,
    audit_violations: Family<AuditLabels, Gauge>,
    /// The rules last reported per policy, to drop series an audit no longer finds.
    audited_rules: Mutex<HashMap<String, Vec<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciliations = Family::<ResultLabels, Counter>::default();
        let failures = Family::<ControllerLabels, Counter>::default();
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        let leader = Gauge::default();
        let policies = Family::<ReadyLabels, Gauge>::default();
        let audit_violations = Family::<AuditLabels, Gauge>::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "palisade_operator_reconciliations",
            "Reconciliations by controller and result (success, error)",
            reconciliations.clone(),
        );
        registry.register(
            "palisade_operator_reconcile_failures",
            "Reconciliations that failed and were retried with backoff",
            failures.clone(),
        );
        registry.register(
            "palisade_operator_reconcile_duration_seconds",
            "Time of one reconciliation",
            duration.clone(),
        );
        registry.register(
            "palisade_operator_leader",
            "1 while this replica holds the leader Lease and runs the controllers",
            leader.clone(),
        );
        registry.register(
            "palisade_securitypolicies",
            "SecurityPolicies by Ready condition (true: current generation in force)",
            policies.clone(),
        );
        registry.register(
            "palisade_audit_violations",
            "Violations found by the background audit of running workloads, by policy and rule",
            audit_violations.clone(),
        );
        Metrics {
            registry,
            reconciliations,
            failures,
            duration,
            leader,
            policies,
            audit_violations,
            audited_rules: Mutex::default(),
        }
    }

    /// Count one reconciliation of `controller` and how long it took.
    pub fn reconciled(&self, controller: &'static str, ok: bool, elapsed: Duration) {
        let result = if ok { "success" } else { "error" };
        self.reconciliations
            .get_or_create(&ResultLabels { controller, result })
            .inc();
        self.duration
            .get_or_create(&ControllerLabels { controller })
            .observe(elapsed.as_secs_f64());
    }

    /// Count one failure that went to the controller's error policy.
    pub fn failed(&self, controller: &'static str) {
        self.failures
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// SecurityPolicies whose Ready condition is True and False.
    pub fn set_policies(&self, ready: usize, not_ready: usize) {
        for (label, n) in [("true", ready), ("false", not_ready)] {
            self.policies
                .get_or_create(&ReadyLabels { ready: label })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The background audit's result for one policy: violations by rule. Rules not given
    /// are dropped, so the family shows only what the last audit found.
    pub fn set_audit_violations<'a>(
        &self,
        policy: &str,
        by_rule: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        let mut audited = self
            .audited_rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rules = audited.entry(policy.to_owned()).or_default();
        for rule in rules.drain(..) {
            self.audit_violations.remove(&AuditLabels {
                policy: policy.to_owned(),
                rule,
            });
        }
        for (rule, n) in by_rule {
            rules.push(rule.to_owned());
            self.audit_violations
                .get_or_create(&AuditLabels {
                    policy: policy.to_owned(),
                    rule: rule.to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The OpenMetrics text exposition (which Prometheus scrapes natively).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_under_its_documented_name() {
        let m = Metrics::new();
        m.reconciled("securitypolicy", true, Duration::from_millis(3));
        m.reconciled("securitypolicy", false, Duration::from_millis(3));
        m.failed("securitypolicy");
        m.set_leader(true);
        m.set_policies(2, 1);
        m.set_audit_violations("restricted", [("privileged", 3)]);
        let text = m.encode().expect("encodes");
        for line in [
            "palisade_operator_reconciliations_total{controller=\"securitypolicy\",result=\"success\"} 1",
            "palisade_operator_reconciliations_total{controller=\"securitypolicy\",result=\"error\"} 1",
            "palisade_operator_reconcile_failures_total{controller=\"securitypolicy\"} 1",
            "palisade_operator_reconcile_duration_seconds_bucket{le=\"0.005\",controller=\"securitypolicy\"} 2",
            "palisade_operator_leader 1",
            "palisade_securitypolicies{ready=\"true\"} 2",
            "palisade_securitypolicies{ready=\"false\"} 1",
            "palisade_audit_violations{policy=\"restricted\",rule=\"privileged\"} 3",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        m.set_audit_violations("restricted", []);
        let text = m.encode().expect("encodes");
        assert!(!text.contains("policy=\"restricted\""), "{text}");
    }
}
