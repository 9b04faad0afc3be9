//! `palisade-operator` as the tests run it: one local process (no leader election) that
//! registers the webhook at `https://127.0.0.1:<port>`, keeps its CA and serving certificate
//! in a Secret, writes them to a Secret-volume-like directory for the webhook process, keeps
//! SecurityPolicy status, runs the background audit and scans images.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::http;
use crate::process::{Supervised, tail};

/// The Secret (in [`crate::PALISADE_NAMESPACE`]) where the operator keeps the certificates.
/// Not the chart's default name, so a run on a cluster with Palisade installed leaves that
/// installation's certificates alone.
pub const CERT_SECRET: &str = "palisade-e2e-webhook-tls";

/// Seconds between two background audits: short, so audit results show up within a test.
pub const AUDIT_INTERVAL_SECONDS: u64 = 5;

/// How to start the operator; kept so that it can be started again identically.
#[derive(Debug, Clone)]
pub struct OperatorSpec {
    pub binary: PathBuf,
    pub namespace: String,
    pub admin_addr: SocketAddr,
    /// The webhook's address, registered as `https://<addr>`.
    pub webhook_addr: SocketAddr,
    /// Where it writes `tls.crt`, `tls.key`, `ca.crt` for the webhook.
    pub cert_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub log: PathBuf,
    /// `--scan-db`: the OSV database directory.
    pub scan_db: PathBuf,
    /// `--scan-cache-dir`.
    pub scan_cache_dir: PathBuf,
}

impl OperatorSpec {
    /// Start it and wait until `/readyz` answers 200 and the certificate files exist.
    pub fn start(&self) -> Result<Supervised, String> {
        let args: Vec<String> = vec![
            format!("--namespace={}", self.namespace),
            format!("--admin-addr={}", self.admin_addr),
            "--leader-elect=false".to_owned(),
            format!("--webhook-url=https://{}", self.webhook_addr),
            format!("--cert-dir={}", self.cert_dir.display()),
            format!("--cert-secret={CERT_SECRET}"),
            format!("--audit-interval={AUDIT_INTERVAL_SECONDS}s"),
            // On 1.20, namespaces.palisade.dev guards the exempt label (the e2e test
            // exempt_label); the webhook's defaults match this namespace.
            "--protect-exempt-label=true".to_owned(),
            format!("--scan-db={}", self.scan_db.display()),
            format!("--scan-cache-dir={}", self.scan_cache_dir.display()),
        ];
        let mut child = Supervised::spawn(
            "palisade-operator",
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
                    "palisade-operator exited during start-up ({status}); last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                ));
            }
            let ready = matches!(http::get(self.admin_addr, "/readyz"), Ok((200, _)));
            if ready && self.cert_files_exist() {
                return Ok(child);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "palisade-operator not ready (readyz {ready}, certificate files in {}: {}) after 60s; last lines of {}:\n{}",
                    self.cert_dir.display(),
                    self.cert_files_exist(),
                    self.log.display(),
                    tail(&self.log, 30)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn cert_file(&self) -> PathBuf {
        self.cert_dir.join("tls.crt")
    }

    pub fn key_file(&self) -> PathBuf {
        self.cert_dir.join("tls.key")
    }

    fn cert_files_exist(&self) -> bool {
        [
            self.cert_file(),
            self.key_file(),
            self.cert_dir.join("ca.crt"),
        ]
        .iter()
        .all(|f| non_empty(f))
    }

    pub fn metrics(&self) -> Result<String, String> {
        match http::get(self.admin_addr, "/metrics") {
            Ok((200, body)) => Ok(body),
            Ok((code, body)) => Err(format!("/metrics answered {code}: {body}")),
            Err(e) => Err(format!("/metrics: {e}")),
        }
    }
}

fn non_empty(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}
