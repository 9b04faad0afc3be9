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
        Metrics {
            registry,
            requests,
            duration,
            policies_loaded,
            policy_errors,
            tls_reloads,
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
        m.observe_request("Pod", "CREATE", Outcome::Denied, Duration::from_micros(80));
        m.set_policies(3, 1);
        m.tls_reload(true);
        let text = m.encode().expect("encodes");
        for line in [
            "palisade_admission_requests_total{kind=\"Pod\",operation=\"CREATE\",decision=\"denied\"} 1",
            "palisade_admission_duration_seconds_bucket{le=\"0.0001\"} 1",
            "palisade_admission_duration_seconds_bucket{le=\"0.00005\"} 0",
            "palisade_policies_loaded 3",
            "palisade_policy_errors 1",
            "palisade_tls_reloads_total{result=\"success\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
