//! The webhook under test: built from this workspace, run as a local process on loopback,
//! serving the certificate files the operator writes (the operator registers it with the
//! API server by URL).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;
use crate::process::{Supervised, tail};

/// Namespaces carrying this label (`=true`) are never sent to the webhook on Kubernetes 1.20,
/// which has no `kubernetes.io/metadata.name` label to select namespaces by name: the
/// operator labels `kube-system` and its own namespace.
pub const EXEMPT_LABEL: &str = "palisade.dev/exempt";

/// The API server's per-call timeout for the webhook, in seconds: the operator's default
/// `timeoutSeconds`.
pub const TIMEOUT_SECONDS: u32 = 5;

/// `cargo build -p <package> --bin <bin>` in this workspace; the path of the executable.
///
/// Cargo cannot hand one package's binaries to another package's tests, so the harness
/// asks cargo itself: a no-op when nothing changed, and always the current source.
pub fn build_binary(repo: &Path, package: &str, bin: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let out = Command::new(&cargo)
        .args([
            "build",
            "--locked",
            "--message-format=json-render-diagnostics",
        ])
        .args(["-p", package, "--bin", bin])
        .current_dir(repo)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p {package} --bin {bin} failed ({}); see above",
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo reported no executable for {bin}"))?;
    eprintln!(
        "e2e: {bin} is {} (cargo build: {:.1}s)",
        exe.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(exe)
}

/// A free TCP port on 127.0.0.1 (the kernel picks; released right away for the child).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// How to start the webhook; kept so that it can be stopped and started again identically.
#[derive(Debug, Clone)]
pub struct WebhookSpec {
    pub binary: PathBuf,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub kubeconfig: PathBuf,
    pub log: PathBuf,
}

impl WebhookSpec {
    /// Start it and wait until `/readyz` answers 200 (the first policy list is synced).
    pub fn start(&self) -> Result<Supervised, String> {
        let args: Vec<String> = vec![
            format!("--addr={}", self.addr),
            format!("--admin-addr={}", self.admin_addr),
            format!("--tls-cert-file={}", self.cert_file.display()),
            format!("--tls-key-file={}", self.key_file.display()),
            // Fast pick-up of a rotated certificate keeps the rotation test short.
            "--tls-reload-interval=250ms".to_owned(),
            "--shutdown-grace=2s".to_owned(),
        ];
        let mut child = Supervised::spawn(
            "palisade-webhook",
            &self.binary,
            &args,
            &[("KUBECONFIG", self.kubeconfig.as_path())],
            &self.log,
        )
        .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.exited() {
                return Err(format!(
                    "palisade-webhook exited during start-up ({status}); last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                ));
            }
            if matches!(http::get(self.admin_addr, "/readyz"), Ok((200, _))) {
                return Ok(child);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "palisade-webhook was not ready after 60s; last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn metrics(&self) -> Result<String, String> {
        match http::get(self.admin_addr, "/metrics") {
            Ok((200, body)) => Ok(body),
            Ok((code, body)) => Err(format!("/metrics answered {code}: {body}")),
            Err(e) => Err(format!("/metrics: {e}")),
        }
    }
}
