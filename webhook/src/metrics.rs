//! Prometheus metrics, served on the admin port.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What became of one admission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Admitted with nothing to report.
    Allowed,
    /// Denied by an Enforce-mode policy.
    Denied,
    /// Admitted with warnings from Warn-mode policies.
    Warned,
    /// Admitted without running policies (no pod spec, or an UPDATE that changes none).
    Skipped,
    /// The request could not be judged (malformed review, unreadable object).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Warned => "warned",
            Outcome::Skipped => "skipped",
            Outcome::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    kind: String,
    operation: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PolicyLabels {
    /// `Kind/name`, as denials name the policy.
    policy: String,
    mode: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ViolationLabels {
    /// `Kind/name`, as denials name the policy.
    policy: String,
    rule: &'static str,
    mode: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NamespaceReadLabels {
    result: &'static str,
}

/// Seconds. Decisions from memory take tens of microseconds, so the low end is fine-grained.
const DURATION_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 0.75, 1.0,
];

/// The webhook's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    policies_loaded: Gauge,
    policy_errors: Gauge,
    tls_reloads: Family<ReloadLabels, Counter>,
    violating: Family<PolicyLabels, Counter>,
    violations: Family<ViolationLabels, Counter>,
    namespace_reads: Family<NamespaceReadLabels, Counter>,
    certificate_expiry: Gauge,
    ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Histogram::new(DURATION_BUCKETS);
        let policies_loaded = Gauge::default();
        let policy_errors = Gauge::default();
        let tls_reloads = Family::<ReloadLabels, Counter>::default();
        let violating = Family::<PolicyLabels, Counter>::default();
        let violations = Family::<ViolationLabels, Counter>::default();
        let namespace_reads = Family::<NamespaceReadLabels, Counter>::default();
        let certificate_expiry = Gauge::default();
        let ready = Gauge::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "palisade_admission_requests",
            "Admission requests by object kind, operation and decision",
            requests.clone(),
        );
        registry.register(
            "palisade_admission_duration_seconds",
            "Time to decide one admission request, from body received to response built",
            duration.clone(),
        );
        registry.register(
            "palisade_policies_loaded",
            "SecurityPolicies in force",
            policies_loaded.clone(),
        );
        registry.register(
            "palisade_policy_errors",
            "SecurityPolicies left out because they are invalid",
            policy_errors.clone(),
        );
        registry.register(
            "palisade_tls_reloads",
            "Attempts to load a changed serving certificate, by result",
            tls_reloads.clone(),
        );
        registry.register(
            "palisade_admission_policy_violations",
            "Admission requests in which a policy found violations, by policy (Kind/name) and its mode (Enforce: denied, Warn: warned, Audit: recorded)",
            violating.clone(),
        );
        registry.register(
            "palisade_admission_violations",
            "Violations found at admission, one per violation, by policy (Kind/name), rule id and mode",
            violations.clone(),
        );
        registry.register(
            "palisade_webhook_namespace_reads",
            "Namespaces read from the API server because the watch had not delivered them yet, by result (found, unreadable)",
            namespace_reads.clone(),
        );
        registry.register(
            "palisade_webhook_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use, as Unix time (time left: this minus time())",
            certificate_expiry.clone(),
        );
        registry.register(
            "palisade_webhook_ready",
            "1 while this replica answers /readyz with ok (policies synced, not shutting down), as of the scrape",
            ready.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            policies_loaded,
            policy_errors,
            tls_reloads,
            violating,
            violations,
            namespace_reads,
            certificate_expiry,
            ready,
        }
    }

    /// Count one request and record how long it took.
    pub fn observe_request(
        &self,
        kind: &str,
        operation: &'static str,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                kind: kind.to_owned(),
                operation,
                decision: outcome.as_str(),
            })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub fn set_policies(&self, loaded: usize, errors: usize) {
        self.policies_loaded
            .set(i64::try_from(loaded).unwrap_or(i64::MAX));
        self.policy_errors
            .set(i64::try_from(errors).unwrap_or(i64::MAX));
    }

    pub fn tls_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.tls_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }

    /// Count one request in which the policy `kind`/`name`, in `mode`, found violations.
    /// Called once per policy and request, however many violations it found.
    pub fn policy_violated(&self, kind: &str, name: &str, mode: &'static str) {
        self.violating
            .get_or_create(&PolicyLabels {
                policy: format!("{kind}/{name}"),
                mode,
            })
            .inc();
    }

    /// Count one violation of `rule` by the policy `kind`/`name` in `mode`.
    pub fn violation(&self, kind: &str, name: &str, rule: &'static str, mode: &'static str) {
        self.violations
            .get_or_create(&ViolationLabels {
                policy: format!("{kind}/{name}"),
                rule,
                mode,
            })
            .inc();
    }

    /// Count one namespace read on a cache miss: `found` or `unreadable`.
    pub fn namespace_read(&self, result: &'static str) {
        self.namespace_reads
            .get_or_create(&NamespaceReadLabels { result })
            .inc();
    }

    /// The serving certificate now in use expires at `not_after` (Unix seconds).
    pub fn set_certificate_expiry(&self, not_after: i64) {
        self.certificate_expiry.set(not_after);
    }

    /// Whether `/readyz` would answer ok; set just before each scrape.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
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
        m.observe_request("Pod", "CREATE", Outcome::Denied, Duration::from_micros(80));
        m.set_policies(3, 1);
        m.tls_reload(true);
        m.policy_violated("SecurityPolicy", "restricted", "Enforce");
        m.policy_violated("SecurityPolicy", "restricted", "Enforce");
        m.policy_violated("ScanPolicy", "prod", "Warn");
        m.violation("SecurityPolicy", "restricted", "privileged", "Audit");
        m.namespace_read("unreadable");
        m.set_certificate_expiry(1_790_000_000);
        m.set_ready(true);
        m
    }

    #[test]
    fn renders_every_family_under_its_documented_name() {
        let m = populated();
        let text = m.encode().expect("encodes");
        for line in [
            "palisade_admission_requests_total{kind=\"Pod\",operation=\"CREATE\",decision=\"denied\"} 1",
            "palisade_admission_duration_seconds_bucket{le=\"0.0001\"} 1",
            "palisade_admission_duration_seconds_bucket{le=\"0.00005\"} 0",
            "palisade_policies_loaded 3",
            "palisade_policy_errors 1",
            "palisade_tls_reloads_total{result=\"success\"} 1",
            "palisade_admission_policy_violations_total{policy=\"SecurityPolicy/restricted\",mode=\"Enforce\"} 2",
            "palisade_admission_policy_violations_total{policy=\"ScanPolicy/prod\",mode=\"Warn\"} 1",
            "palisade_admission_violations_total{policy=\"SecurityPolicy/restricted\",rule=\"privileged\",mode=\"Audit\"} 1",
            "palisade_webhook_namespace_reads_total{result=\"unreadable\"} 1",
            "palisade_webhook_certificate_expiry_timestamp_seconds 1790000000",
            "palisade_webhook_ready 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn the_dashboard_and_the_alerts_query_only_metrics_this_binary_registers() {
        let registry = populated().encode().expect("encodes");
        let exposed = palisade_process::monitoring::exposed_names(&registry);
        // The rule of the names above, on a family of each kind.
        for name in [
            "palisade_admission_requests_total",
            "palisade_admission_duration_seconds_bucket",
            "palisade_webhook_ready",
        ] {
            assert!(exposed.contains(name), "{name} not in {exposed:?}");
        }
        let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/palisade");
        let problems =
            palisade_process::monitoring::problems(&chart, "palisade-webhook-metrics", &registry)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
