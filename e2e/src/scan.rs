//! What image scanning needs in the shared environment: a real registry on loopback that
//! tests push images to, and an OSV database directory the operator reads (`--scan-db`).
//!
//! The registry is Debian's `docker-registry`, run under the same supervisor as the
//! webhook so that it cannot outlive the test process (the environment is a static, never
//! dropped). Images are built and pushed with `palisade-oci-fixtures`, as the scanner's
//! and the CLI's tests do.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

pub use palisade_oci_fixtures::alpine::{
    ALPINE_OS, alpine_layer, alpine_layer_marked, write_alpine_db,
};
pub use palisade_oci_fixtures::{Blob, Compression, LayerBuilder};

use crate::process::{Supervised, tail};

/// The shared registry (anonymous, plain HTTP on 127.0.0.1) and the OSV directory.
#[derive(Debug)]
pub struct ScanFixtures {
    host: String,
    osv_dir: PathBuf,
    cache_dir: PathBuf,
    registry: Mutex<Supervised>,
}

impl ScanFixtures {
    /// Start the registry and write the database under `work`.
    pub fn start(work: &Path) -> Result<ScanFixtures, String> {
        let osv_dir = work.join("osv");
        write_alpine_db(&osv_dir).map_err(|e| e.to_string())?;
        let dir = work.join("registry");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = crate::webhook::free_port()?;
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.join("data").display()
            ),
        )
        .map_err(|e| format!("{}: {e}", config.display()))?;
        let binary = which("docker-registry")
            .ok_or("docker-registry is not installed: run hack/scan-tools.sh")?;
        let log = dir.join("registry.log");
        let mut registry = Supervised::spawn(
            "docker-registry",
            &binary,
            &["serve".to_owned(), config.display().to_string()],
            &[],
            &log,
        )
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            if registry.exited().is_some() || Instant::now() > deadline {
                return Err(format!(
                    "docker-registry did not listen on {host}; last lines of {}:\n{}",
                    log.display(),
                    tail(&log, 20)
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(ScanFixtures {
            host,
            osv_dir,
            cache_dir: work.join("scan-cache"),
            registry: Mutex::new(registry),
        })
    }

    /// `127.0.0.1:PORT` of the registry (plain HTTP; the operator treats loopback so).
    pub fn registry_host(&self) -> &str {
        &self.host
    }

    /// The OSV database directory the operator was started with (`--scan-db`); write another
    /// ecosystem's `<name>/all.zip` here before the first scan that needs it.
    pub fn osv_dir(&self) -> &Path {
        &self.osv_dir
    }

    /// The operator's `--scan-cache-dir` (full reports in `reports/<hex>.json`).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Push a linux/amd64 image `repo:tag` of `layers`; returns its manifest digest.
    pub fn push(&self, repo: &str, tag: &str, layers: &[Blob]) -> Result<String, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        runtime.block_on(async {
            let pusher = palisade_oci_fixtures::Pusher::new(&self.host, None)
                .map_err(|e| format!("pusher: {e}"))?;
            pusher
                .image(repo, tag, layers, "linux", "amd64")
                .await
                .map(|p| p.digest)
                .map_err(|e| format!("pushing {repo}:{tag} to {}: {e}", self.host))
        })
    }

    /// Whether the registry is still running.
    pub fn registry_running(&self) -> bool {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .exited()
            .is_none()
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
