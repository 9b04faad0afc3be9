//! The webhook's answers on the plain-HTTP admin port (`/livez`, `/readyz`, `/metrics`),
//! served by the shared admin router: ready once policies (and, with the scan gate,
//! ScanPolicies and reports) are synced, and not while draining.

use axum::Router;
use palisade_kube_plumbing::admin::{self, Probes};

use crate::AppState;

pub fn router(state: AppState) -> Router {
    admin::router(state)
}

impl Probes for AppState {
    fn readiness(&self) -> Result<&'static str, &'static str> {
        if self.is_draining() {
            Err("shutting down\n")
        } else if !self.is_synced() {
            Err(
                "waiting for SecurityPolicies, Namespaces, ScanPolicies and ImageScanReports to sync\n",
            )
        } else {
            Ok("ok\n")
        }
    }

    fn metrics(&self) -> Result<String, std::fmt::Error> {
        // The same test as /readyz, so alerts can tell "up but not ready" from "ready".
        self.metrics
            .set_ready(!self.is_draining() && self.is_synced());
        self.metrics.encode()
    }
}
