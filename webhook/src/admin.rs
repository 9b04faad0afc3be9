//! The plain-HTTP admin port: probes and metrics, kept off the TLS port so that kubelet
//! and Prometheus need no certificate.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if !state.is_synced() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for SecurityPolicies, Namespaces, ScanPolicies and ImageScanReports to sync\n",
        )
            .into_response()
    } else {
        "ok\n".into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    // The same test as /readyz, so alerts can tell "up but not ready" from "ready".
    state
        .metrics
        .set_ready(!state.is_draining() && state.is_synced());
    match state.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
