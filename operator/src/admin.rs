//! The operator's answers on the plain-HTTP admin port (`/livez`, `/readyz`, `/metrics`),
//! served by the shared admin server: ready when standing by, or leading with synced
//! caches ([`Health`]).

use std::sync::Arc;

use palisade_kube_plumbing::admin::Probes;
use palisade_kube_plumbing::lease::Health;

use crate::metrics::Metrics;

/// The replica's health and its metrics, as the admin server asks for them.
#[derive(Clone)]
pub struct OperatorProbes {
    pub health: Health,
    pub metrics: Arc<Metrics>,
}

impl Probes for OperatorProbes {
    fn readiness(&self) -> Result<&'static str, &'static str> {
        self.health.readiness()
    }

    fn metrics(&self) -> Result<String, std::fmt::Error> {
        self.metrics.encode()
    }
}

#[cfg(test)]
mod tests {
    use palisade_kube_plumbing::lease::Role;

    use super::*;

    #[test]
    fn readiness_is_the_health_and_metrics_are_the_operators() {
        let probes = OperatorProbes {
            health: Health::default(),
            metrics: Arc::new(Metrics::new()),
        };
        assert_eq!(probes.readiness(), Err("starting\n"));
        probes.health.set_role(Role::Standby);
        assert!(probes.readiness().is_ok());
        probes.metrics.set_leader(true);
        let m = probes.metrics().expect("metrics");
        assert!(m.contains("palisade_operator_leader 1"), "{m}");
    }
}
