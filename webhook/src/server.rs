//! Serving: the HTTPS admission port, the plain-HTTP admin port, the certificate reload loop,
//! and a graceful stop that lets in-flight reviews finish.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use axum_server::Handle;
use tokio::task::JoinHandle;
use tracing::info;

use crate::error::Error;
use crate::tls::{Reloader, TlsFiles};
use crate::{AppState, admin, admission};

/// How to serve.
#[derive(Clone, Debug)]
pub struct Options {
    /// The HTTPS admission address; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The plain-HTTP admin address; port 0 picks a free port.
    pub admin_addr: SocketAddr,
    pub tls: TlsFiles,
    pub tls_reload_interval: Duration,
    /// How long `/readyz` fails before the listeners close, so that Endpoints drop this
    /// replica before it stops accepting.
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish once the listeners are closed.
    pub shutdown_grace: Duration,
}

/// A running webhook.
#[derive(Debug)]
pub struct Server {
    /// The bound admission address.
    pub addr: SocketAddr,
    /// The bound admin address.
    pub admin_addr: SocketAddr,
    state: AppState,
    options: Options,
    https_handle: Handle<SocketAddr>,
    admin_handle: Handle<SocketAddr>,
    https: JoinHandle<io::Result<()>>,
    admin: JoinHandle<io::Result<()>>,
    reloader: JoinHandle<()>,
}

/// Load the certificate, bind both ports and start serving.
pub async fn start(options: Options, state: AppState) -> Result<Server, Error> {
    let reloader = Reloader::load(options.tls.clone(), state.metrics.clone()).await?;
    let (https_listener, addr) = bind(options.addr)?;
    let (admin_listener, admin_addr) = bind(options.admin_addr)?;

    let https_handle = Handle::new();
    let https = axum_server::from_tcp_rustls(https_listener, reloader.config())
        .map_err(|source| Error::Bind {
            addr: options.addr,
            source,
        })?
        .handle(https_handle.clone())
        .serve(admission::router(state.clone()).into_make_service());
    let admin_handle = Handle::new();
    let admin = axum_server::from_tcp(admin_listener)
        .map_err(|source| Error::Bind {
            addr: options.admin_addr,
            source,
        })?
        .handle(admin_handle.clone())
        .serve(admin::router(state.clone()).into_make_service());

    let interval = options.tls_reload_interval;
    info!(%addr, %admin_addr, "serving admission reviews over HTTPS");
    Ok(Server {
        addr,
        admin_addr,
        state,
        options,
        https_handle,
        admin_handle,
        https: tokio::spawn(https),
        admin: tokio::spawn(admin),
        reloader: tokio::spawn(reloader.run(interval)),
    })
}

impl Server {
    /// Serve until `signal` completes, then stop gracefully. Returns early with an error if
    /// a listener fails.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        tokio::select! {
            () = signal => {}
            r = &mut self.https => return Err(served("admission", r)),
            r = &mut self.admin => return Err(served("admin", r)),
        }
        self.shutdown().await
    }

    /// Fail readiness, wait the configured delay, close the listeners and let open
    /// requests finish within the grace period.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.state.start_draining();
        if !self.options.shutdown_delay.is_zero() {
            info!(delay = ?self.options.shutdown_delay, "shutting down: readiness failed, waiting before closing the listeners");
            tokio::time::sleep(self.options.shutdown_delay).await;
        }
        info!(grace = ?self.options.shutdown_grace, "closing the listeners; draining open requests");
        self.reloader.abort();
        self.https_handle
            .graceful_shutdown(Some(self.options.shutdown_grace));
        let https = self.https.await;
        // The admin port stays up until the last review is answered, for the probes.
        self.admin_handle
            .graceful_shutdown(Some(Duration::from_secs(1)));
        let admin = self.admin.await;
        for (name, r) in [("admission", https), ("admin", admin)] {
            match r {
                Ok(Ok(())) => {}
                other => return Err(served(name, other)),
            }
        }
        info!("stopped");
        Ok(())
    }
}

fn served(name: &'static str, r: Result<io::Result<()>, tokio::task::JoinError>) -> Error {
    let source = match r {
        Ok(Ok(())) => io::Error::other("stopped unexpectedly"),
        Ok(Err(e)) => e,
        Err(e) => io::Error::other(e),
    };
    Error::Serve { name, source }
}

fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
