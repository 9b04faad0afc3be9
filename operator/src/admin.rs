//! The plain-HTTP admin port: probes and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::error::Error;
use crate::metrics::Metrics;

/// What this replica is doing, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Not yet in the election, or not yet running controllers.
    Starting = 0,
    /// Another replica leads; this one waits, ready to take over.
    Standby = 1,
    /// Runs the controllers.
    Leader = 2,
    /// Shutting down.
    Stopping = 3,
}

/// Liveness and readiness, shared by the election, the controllers and the admin server.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    role: AtomicU8,
    synced: AtomicBool,
}

impl Health {
    pub fn set_role(&self, role: Role) {
        self.inner.role.store(role as u8, Ordering::Release);
    }

    pub fn role(&self) -> Role {
        match self.inner.role.load(Ordering::Acquire) {
            1 => Role::Standby,
            2 => Role::Leader,
            3 => Role::Stopping,
            _ => Role::Starting,
        }
    }

    /// The controllers' stores hold the first full list.
    pub fn set_synced(&self, synced: bool) {
        self.inner.synced.store(synced, Ordering::Release);
    }

    pub fn is_synced(&self) -> bool {
        self.inner.synced.load(Ordering::Acquire)
    }

    /// Ready when standing by, or leading with synced stores; the text says why not.
    pub fn readiness(&self) -> Result<&'static str, &'static str> {
        match self.role() {
            Role::Standby => Ok("ok: standing by, another replica leads\n"),
            Role::Leader if self.is_synced() => Ok("ok: leading\n"),
            Role::Leader => Err("leading, waiting for the controllers' caches to sync\n"),
            Role::Starting => Err("starting\n"),
            Role::Stopping => Err("shutting down\n"),
        }
    }
}

#[derive(Clone)]
struct AdminState {
    health: Health,
    metrics: Arc<Metrics>,
}

pub fn router(health: Health, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { health, metrics })
}

/// Bind now (so a busy port fails start-up), serve until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<impl std::future::Future<Output = Result<(), Error>>, Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let app = router(health, metrics);
    Ok(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| Error::Serve { source })
    })
}

async fn readyz(State(state): State<AdminState>) -> Response {
    match state.health.readiness() {
        Ok(text) => text.into_response(),
        Err(text) => (StatusCode::SERVICE_UNAVAILABLE, text).into_response(),
    }
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_standing_by_or_leading_with_synced_caches() {
        let h = Health::default();
        assert!(h.readiness().is_err(), "starting");
        h.set_role(Role::Standby);
        assert!(h.readiness().is_ok());
        h.set_role(Role::Leader);
        assert_eq!(
            h.readiness(),
            Err("leading, waiting for the controllers' caches to sync\n")
        );
        h.set_synced(true);
        assert!(h.readiness().is_ok());
        h.set_role(Role::Stopping);
        assert!(h.readiness().is_err());
    }

    #[tokio::test]
    async fn serves_probes_and_metrics_over_http() {
        let health = Health::default();
        let metrics = Arc::new(Metrics::new());
        metrics.set_leader(true);
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(health.clone(), metrics);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let get = |path: &'static str| async move {
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).expect("connect");
                let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                s.write_all(req.as_bytes()).expect("write");
                let mut out = String::new();
                s.read_to_string(&mut out).expect("read");
                out
            })
            .await
            .expect("no panic")
        };
        assert!(get("/livez").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        health.set_role(Role::Standby);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get("/metrics").await;
        assert!(m.contains("palisade_operator_leader 1"), "{m}");
    }
}
