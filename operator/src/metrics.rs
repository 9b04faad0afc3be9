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

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScanResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DatabaseLabels {
    ecosystem: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DatabaseInfoLabels {
    ecosystem: String,
    version: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScanPolicyImageLabels {
    policy: String,
    state: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RunResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ExceptionLabels {
    /// `SecurityPolicy/name` or `ScanPolicy/name`.
    policy: String,
    /// The exception's name, or the ignored finding id.
    exception: String,
    owner: String,
    /// Cut to [`MAX_REASON_LABEL`] characters: labels are for finding, not for reading.
    reason: String,
}

/// Reasons are free text; a label keeps the start.
const MAX_REASON_LABEL: usize = 120;

/// One waiver, as the metrics show it.
#[derive(Debug, Clone, Copy)]
pub struct ExceptionInfo<'a> {
    pub name: &'a str,
    pub owner: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub expires: Option<k8s_openapi::jiff::Timestamp>,
}

/// Seconds. A scan downloads layers: from under a second (a cached inventory) to minutes.
const SCAN_DURATION_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0];

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
    audit_runs: Family<RunResultLabels, Counter>,
    audit_last_success: Gauge,
    /// The rules last reported per policy, to drop series an audit no longer finds.
    audited_rules: Mutex<HashMap<String, Vec<String>>>,
    scans: Family<ScanResultLabels, Counter>,
    scan_duration: Histogram,
    database_info: Family<DatabaseInfoLabels, Gauge>,
    database_checked: Family<DatabaseLabels, Gauge>,
    /// The version last reported per ecosystem, to drop the old info series.
    database_versions: Mutex<HashMap<String, String>>,
    reports: Family<PhaseLabels, Gauge>,
    scan_policy_images: Family<ScanPolicyImageLabels, Gauge>,
    exceptions: Family<ExceptionLabels, Gauge>,
    /// The series last set per policy, to drop those of removed exceptions.
    exception_series: Mutex<HashMap<String, Vec<ExceptionLabels>>>,
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
        let audit_runs = Family::<RunResultLabels, Counter>::default();
        let audit_last_success = Gauge::default();
        registry.register(
            "palisade_audit_runs",
            "Background audits by result (success, error); only the leader audits",
            audit_runs.clone(),
        );
        registry.register(
            "palisade_audit_last_success_timestamp_seconds",
            "When the last background audit finished without error, as Unix time (0: none yet in this process)",
            audit_last_success.clone(),
        );
        let scans = Family::<ScanResultLabels, Counter>::default();
        let scan_duration = Histogram::new(SCAN_DURATION_BUCKETS);
        let database_info = Family::<DatabaseInfoLabels, Gauge>::default();
        let database_checked = Family::<DatabaseLabels, Gauge>::default();
        let reports = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "palisade_scans",
            "Image scans by result (scanned, failed)",
            scans.clone(),
        );
        registry.register(
            "palisade_scan_duration_seconds",
            "Time of one image scan, from reference to report",
            scan_duration.clone(),
        );
        registry.register(
            "palisade_scan_database_info",
            "1 for the vulnerability database version loaded per ecosystem",
            database_info.clone(),
        );
        registry.register(
            "palisade_scan_database_checked_timestamp_seconds",
            "When each ecosystem's export was last fetched or found current (age: time() minus this)",
            database_checked.clone(),
        );
        registry.register(
            "palisade_imagescanreports",
            "ImageScanReports by phase",
            reports.clone(),
        );
        let scan_policy_images = Family::<ScanPolicyImageLabels, Gauge>::default();
        registry.register(
            "palisade_scanpolicy_images",
            "Distinct images of running workloads each ScanPolicy judged from a report (state=scanned), those failing it (state=failing), and those whose scan could not judge them (state=unjudged), as of the last audit",
            scan_policy_images.clone(),
        );
        let exceptions = Family::<ExceptionLabels, Gauge>::default();
        registry.register(
            "palisade_policy_exception_expiry_timestamp_seconds",
            "When each exception (SecurityPolicy) or ignore entry (ScanPolicy) of a policy in force stops applying, as Unix time, with its owner and reason; 0 when it has no expiry",
            exceptions.clone(),
        );
        Metrics {
            registry,
            exceptions,
            exception_series: Mutex::default(),
            scans,
            scan_duration,
            database_info,
            database_checked,
            database_versions: Mutex::default(),
            reports,
            scan_policy_images,
            reconciliations,
            failures,
            duration,
            leader,
            policies,
            audit_violations,
            audit_runs,
            audit_last_success,
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

    /// The background audit's image counts for one ScanPolicy.
    pub fn set_scan_policy_images(
        &self,
        policy: &str,
        scanned: usize,
        failing: usize,
        unjudged: usize,
    ) {
        for (state, n) in [
            ("scanned", scanned),
            ("failing", failing),
            ("unjudged", unjudged),
        ] {
            self.scan_policy_images
                .get_or_create(&ScanPolicyImageLabels {
                    policy: policy.to_owned(),
                    state,
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The waivers of policy `kind`/`name` now: one series each, replacing the last set.
    pub fn set_exceptions<'a>(
        &self,
        kind: &str,
        name: &str,
        waivers: impl IntoIterator<Item = ExceptionInfo<'a>>,
    ) {
        let policy = format!("{kind}/{name}");
        let mut series = self
            .exception_series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for old in series.remove(&policy).unwrap_or_default() {
            self.exceptions.remove(&old);
        }
        let mut now = Vec::new();
        for w in waivers {
            let labels = ExceptionLabels {
                policy: policy.clone(),
                exception: w.name.to_owned(),
                owner: w.owner.unwrap_or_default().to_owned(),
                reason: w
                    .reason
                    .unwrap_or_default()
                    .chars()
                    .take(MAX_REASON_LABEL)
                    .collect(),
            };
            self.exceptions
                .get_or_create(&labels)
                .set(w.expires.map_or(0, |t| t.as_second()));
            now.push(labels);
        }
        if !now.is_empty() {
            series.insert(policy, now);
        }
    }

    /// Drop the series of a ScanPolicy that is gone (or no longer in force).
    pub fn forget_scan_policy(&self, policy: &str) {
        for state in ["scanned", "failing", "unjudged"] {
            self.scan_policy_images.remove(&ScanPolicyImageLabels {
                policy: policy.to_owned(),
                state,
            });
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

    /// Count one background audit; a successful one finished at `at`.
    pub fn audited(&self, ok: bool, at: jiff::Timestamp) {
        let result = if ok { "success" } else { "error" };
        self.audit_runs
            .get_or_create(&RunResultLabels { result })
            .inc();
        if ok {
            self.audit_last_success.set(at.as_second());
        }
    }

    /// Count one image scan and how long it took.
    pub fn scanned(&self, ok: bool, elapsed: Duration) {
        let result = if ok { "scanned" } else { "failed" };
        self.scans.get_or_create(&ScanResultLabels { result }).inc();
        self.scan_duration.observe(elapsed.as_secs_f64());
    }

    /// The export in use for an ecosystem, and when it was last fetched or found current.
    pub fn set_scan_database(&self, ecosystem: &str, version: &str, checked_at: jiff::Timestamp) {
        let mut versions = self
            .database_versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = versions.insert(ecosystem.to_owned(), version.to_owned())
            && old != version
        {
            self.database_info.remove(&DatabaseInfoLabels {
                ecosystem: ecosystem.to_owned(),
                version: old,
            });
        }
        self.database_info
            .get_or_create(&DatabaseInfoLabels {
                ecosystem: ecosystem.to_owned(),
                version: version.to_owned(),
            })
            .set(1);
        self.database_checked
            .get_or_create(&DatabaseLabels {
                ecosystem: ecosystem.to_owned(),
            })
            .set(checked_at.as_second());
    }

    /// ImageScanReports by phase (`Pending`, `Scanned`, `Failed`).
    pub fn set_reports(&self, pending: usize, scanned: usize, failed: usize) {
        for (phase, n) in [
            ("Pending", pending),
            ("Scanned", scanned),
            ("Failed", failed),
        ] {
            self.reports
                .get_or_create(&PhaseLabels { phase })
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

    /// Metrics with a series in every family: the encoder leaves out families with none.
    fn populated() -> Metrics {
        let m = Metrics::new();
        m.reconciled("securitypolicy", true, Duration::from_millis(3));
        m.reconciled("securitypolicy", false, Duration::from_millis(3));
        m.failed("securitypolicy");
        m.set_leader(true);
        m.set_policies(2, 1);
        m.set_audit_violations("restricted", [("privileged", 3)]);
        m.scanned(true, Duration::from_secs(2));
        m.scanned(false, Duration::from_secs(2));
        let at = jiff::Timestamp::from_second(1_700_000_000).expect("a time");
        m.set_scan_database("Alpine:v3.18", "Alpine:v3.18@aaaaaaaaaaaa", at);
        m.set_scan_database("Alpine:v3.18", "Alpine:v3.18@bbbbbbbbbbbb", at);
        m.set_reports(1, 2, 3);
        m.set_scan_policy_images("prod", 4, 1, 2);
        m.set_exceptions(
            "SecurityPolicy",
            "restricted",
            [ExceptionInfo {
                name: "debug",
                owner: Some("sre"),
                reason: Some("node debugging"),
                expires: k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).ok(),
            }],
        );
        m.audited(true, at);
        m.audited(
            false,
            jiff::Timestamp::from_second(1_700_000_600).expect("a time"),
        );
        m
    }

    #[test]
    fn renders_every_family_under_its_documented_name() {
        let m = populated();
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
            "palisade_scans_total{result=\"scanned\"} 1",
            "palisade_scans_total{result=\"failed\"} 1",
            "palisade_scan_duration_seconds_bucket{le=\"2.5\"} 2",
            "palisade_scan_database_info{ecosystem=\"Alpine:v3.18\",version=\"Alpine:v3.18@bbbbbbbbbbbb\"} 1",
            "palisade_scan_database_checked_timestamp_seconds{ecosystem=\"Alpine:v3.18\"} 1700000000",
            "palisade_imagescanreports{phase=\"Failed\"} 3",
            "palisade_scanpolicy_images{policy=\"prod\",state=\"failing\"} 1",
            "palisade_scanpolicy_images{policy=\"prod\",state=\"unjudged\"} 2",
            "palisade_policy_exception_expiry_timestamp_seconds{policy=\"SecurityPolicy/restricted\",exception=\"debug\",owner=\"sre\",reason=\"node debugging\"} 1800000000",
            "palisade_audit_runs_total{result=\"success\"} 1",
            "palisade_audit_runs_total{result=\"error\"} 1",
            // A failed audit leaves the time of the last good one.
            "palisade_audit_last_success_timestamp_seconds 1700000000",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        m.set_audit_violations("restricted", []);
        let text = m.encode().expect("encodes");
        assert!(!text.contains("policy=\"restricted\""), "{text}");
        assert!(!text.contains("aaaaaaaaaaaa"), "{text}");
    }

    #[test]
    fn the_dashboard_and_the_alerts_query_only_metrics_this_binary_registers() {
        let registry = populated().encode().expect("encodes");
        let exposed = palisade_process::monitoring::exposed_names(&registry);
        // The rule of the names above, on a family of each kind.
        for name in [
            "palisade_audit_runs_total",
            "palisade_scan_duration_seconds_bucket",
            "palisade_audit_last_success_timestamp_seconds",
        ] {
            assert!(exposed.contains(name), "{name} not in {exposed:?}");
        }
        let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/palisade");
        let problems =
            palisade_process::monitoring::problems(&chart, "palisade-operator-metrics", &registry)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
