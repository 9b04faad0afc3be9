//! The operator's answers on the plain-HTTP admin port (`/livez`, `/readyz`, `/metrics`),
//! served by the shared admin server: ready when standing by, or leading with synced
//! caches ([`Health`]); and the reports' files (`/reports/…`, [`crate::scanning::serve`]).

use std::sync::Arc;

use axum::Router;
use palisade_kube_plumbing::admin::{self, Probes};
use palisade_kube_plumbing::lease::Health;

use crate::metrics::Metrics;
use crate::scanning::serve::{self, ReportsApi};

/// The admin routes: the shared probes and metrics, and the report routes over `reports`
/// (`None` when scanning is off: the paths then say so).
pub fn router(probes: OperatorProbes, reports: Option<ReportsApi>) -> Router {
    let reports = match reports {
        Some(api) => serve::routes(api),
        None => serve::routes_scanning_off(),
    };
    admin::router(probes).merge(reports)
}

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

    #[tokio::test]
    async fn the_router_answers_probes_and_report_paths_together() {
        use axum::body::{Body, to_bytes};
        use axum::http::{Request, StatusCode};
        use tower::ServiceExt as _;

        let probes = OperatorProbes {
            health: Health::default(),
            metrics: Arc::new(Metrics::new()),
        };
        let app = router(probes, None);
        let get = |uri: &'static str| {
            let app = app.clone();
            async move {
                let r = app
                    .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
                    .await
                    .expect("infallible");
                let status = r.status();
                let body = to_bytes(r.into_body(), 1 << 20).await.expect("body");
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(get("/livez").await, (StatusCode::OK, "ok\n".to_owned()));
        let (status, text) = get("/reports/sha256-ab/sbom").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(text.starts_with("image scanning is off"), "{text}");
    }
}
