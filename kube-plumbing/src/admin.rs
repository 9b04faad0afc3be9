//! The plain-HTTP admin port: `/livez`, `/readyz` and `/metrics`, kept off any TLS port so
//! that the kubelet and Prometheus need no certificate. What readiness means and which
//! metrics exist is the binary's: it passes them in as [`Probes`]. A binary with more to
//! answer merges its own routes into [`router`] and serves the whole with [`serve_router`].

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::error::Error;

/// The `Content-Type` of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the admin server asks its binary.
pub trait Probes: Clone + Send + Sync + 'static {
    /// `/readyz`: `Ok(text)` answers 200, `Err(text)` 503; the text says why.
    fn readiness(&self) -> Result<&'static str, &'static str>;

    /// `/metrics`: the OpenMetrics text; an error answers 500.
    fn metrics(&self) -> Result<String, std::fmt::Error>;
}

/// The admin routes over `probes`.
pub fn router<P: Probes>(probes: P) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<P>))
        .route("/metrics", get(metrics::<P>))
        .with_state(probes)
}

/// Bind now (so a busy port fails start-up), serve until `shutdown`.
pub async fn serve<P: Probes>(
    addr: SocketAddr,
    probes: P,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = Result<(), Error>>, Error> {
    serve_router(addr, router(probes), shutdown).await
}

/// [`serve`] for a router the binary built: [`router`] with its own routes merged in.
pub async fn serve_router(
    addr: SocketAddr,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = Result<(), Error>>, Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    Ok(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| Error::Serve { source })
    })
}

async fn readyz<P: Probes>(State(probes): State<P>) -> Response {
    match probes.readiness() {
        Ok(text) => text.into_response(),
        Err(text) => (StatusCode::SERVICE_UNAVAILABLE, text).into_response(),
    }
}

async fn metrics<P: Probes>(State(probes): State<P>) -> Response {
    match probes.metrics() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[derive(Clone, Default)]
    struct Fake {
        ready: Arc<AtomicBool>,
    }

    impl Probes for Fake {
        fn readiness(&self) -> Result<&'static str, &'static str> {
            if self.ready.load(Ordering::Acquire) {
                Ok("ok\n")
            } else {
                Err("starting\n")
            }
        }

        fn metrics(&self) -> Result<String, std::fmt::Error> {
            Ok("fake_up 1\n# EOF\n".into())
        }
    }

    #[tokio::test]
    async fn serves_probes_and_metrics_over_http() {
        let probes = Fake::default();
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(probes.clone());
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
        let not_ready = get("/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(not_ready.ends_with("starting\n"), "{not_ready}");
        probes.ready.store(true, Ordering::Release);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let m = get("/metrics").await;
        assert!(m.contains("fake_up 1"), "{m}");
        assert!(m.to_ascii_lowercase().contains(OPENMETRICS), "{m}");
    }
}
