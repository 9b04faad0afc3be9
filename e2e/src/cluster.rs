//! Which cluster the tests run against, and starting (and always stopping) the local one.
//!
//! - `PALISADE_E2E_KUBECONFIG=<file>`: that cluster, whatever it is. The plain `KUBECONFIG`
//!   is deliberately ignored, so `make test` never touches the cluster a developer happens
//!   to point at.
//! - otherwise: the local control plane of `hack/local-cluster.sh` in `<target>/e2e-cluster`,
//!   started once per test process.
//!
//! The images under test come from a registry that cluster's nodes pull from and the tests
//! push to: `PALISADE_E2E_REGISTRY` with `PALISADE_E2E_KUBECONFIG`, else the local cluster's.
//!
//! Cleanup cannot rely on `Drop` (statics are never dropped; the process may be killed), so
//! a small watchdog process is started first, in its own process group (a Ctrl-C at the
//! terminal does not reach it), reading a pipe from this process. When the pipe closes, for
//! whatever reason this process ended, the watchdog runs `local-cluster.sh down` — or, on a
//! cluster given by the user, deletes what the tests created there (the Helm release and
//! the webhook registration, and the namespaces, policies, pods and other objects labelled
//! `palisade.dev/e2e=true`).
//!
//! Two test processes sharing a target dir would share the cluster dir: an exclusive lock on
//! `<target>/e2e-cluster.lock` makes the second wait. The watchdog inherits the locked file
//! as its stdout, so the lock is held until the `down` has finished, not just until this
//! process exits.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};

/// The label on everything the tests create, so it can be found and removed.
pub const E2E_LABEL: &str = "palisade.dev/e2e";

/// Name of the ValidatingWebhookConfiguration the operator registers (its fixed name).
pub const REGISTRATION_NAME: &str = "palisade";

const WATCHDOG: &str = r#"
exec 9>&1 1>>"$E2E_WATCHDOG_LOG" 2>&1
read -r _ || true
echo "== $(date -u +%FT%TZ) the test process has ended: cleaning up"
if [ -n "${E2E_CLUSTER_DIR:-}" ]; then
  # Keep the control plane's logs for a look after a failure; `down` removes the dir.
  rm -rf "$E2E_WORK/cluster-logs"
  cp -r "$E2E_CLUSTER_DIR/logs" "$E2E_WORK/cluster-logs" 2>/dev/null || true
  "$E2E_CLUSTER_SCRIPT" down --dir "$E2E_CLUSTER_DIR"
else
  k() { "$E2E_KUBECTL" --kubeconfig "$E2E_KUBECONFIG" --request-timeout=30s "$@"; }
  # The registration first: with failurePolicy Fail, a webhook that is gone refuses pods.
  k delete validatingwebhookconfiguration "$E2E_REGISTRATION" --ignore-not-found
  KUBECONFIG="$E2E_KUBECONFIG" HELM_CACHE_HOME="$E2E_WORK/helm/cache" \
    HELM_CONFIG_HOME="$E2E_WORK/helm/config" HELM_DATA_HOME="$E2E_WORK/helm/data" \
    "$E2E_HELM" uninstall "$E2E_RELEASE" --namespace "$E2E_NAMESPACE" --wait --timeout 2m || true
  k delete validatingwebhookconfiguration "$E2E_REGISTRATION" --ignore-not-found
  k delete secret,configmap -n "$E2E_NAMESPACE" -l "$E2E_LABEL=true" --ignore-not-found
  k delete pods --all-namespaces -l "$E2E_LABEL=true" --wait=false
  k delete securitypolicies.palisade.dev,scanpolicies.palisade.dev,imagescanreports.palisade.dev \
    -l "$E2E_LABEL=true" --wait=false
  k delete namespaces -l "$E2E_LABEL=true" --wait=false
fi
echo "== $(date -u +%FT%TZ) done"
"#;

/// The cluster under test.
#[derive(Debug)]
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// kubectl matching the server when known (`PALISADE_KUBECTL`), else `kubectl`.
    pub kubectl: PathBuf,
    /// Set when this process started the cluster (and its watchdog will stop it).
    pub local_dir: Option<PathBuf>,
    /// `host:port` of a registry the cluster's nodes pull from and the tests push to (plain
    /// HTTP).
    pub registry: String,
    /// Held open for the life of the process: its end is the watchdog's signal.
    _watchdog: ChildStdin,
}

impl Cluster {
    pub fn find(repo: &Path, target: &Path) -> Result<Cluster, String> {
        let work = target.join("e2e");
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        let env_kubectl = std::env::var_os("PALISADE_KUBECTL")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        match std::env::var_os("PALISADE_E2E_KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(kubeconfig) => {
                let kubeconfig = PathBuf::from(kubeconfig);
                if !kubeconfig.is_file() {
                    return Err(format!(
                        "PALISADE_E2E_KUBECONFIG={} is not a file",
                        kubeconfig.display()
                    ));
                }
                let kubectl = env_kubectl.unwrap_or_else(|| PathBuf::from("kubectl"));
                let registry = std::env::var("PALISADE_E2E_REGISTRY")
                    .ok()
                    .filter(|r| !r.is_empty())
                    .ok_or(
                        "PALISADE_E2E_REGISTRY is not set: with PALISADE_E2E_KUBECONFIG, name a registry (host:port, plain HTTP) that the cluster's nodes pull from and this machine pushes to",
                    )?;
                let helm = crate::install::helm_path(repo)?;
                eprintln!(
                    "e2e: using the cluster of PALISADE_E2E_KUBECONFIG={} with {}",
                    kubeconfig.display(),
                    kubectl.display()
                );
                let log = open_log(&work.join("watchdog.log"))
                    .map_err(|e| format!("cannot open the watchdog log: {e}"))?;
                let watchdog = spawn_watchdog(
                    log,
                    &work,
                    &[
                        ("E2E_KUBECTL", kubectl.as_os_str()),
                        ("E2E_KUBECONFIG", kubeconfig.as_os_str()),
                        ("E2E_REGISTRATION", REGISTRATION_NAME.as_ref()),
                        ("E2E_NAMESPACE", crate::PALISADE_NAMESPACE.as_ref()),
                        ("E2E_RELEASE", crate::install::RELEASE.as_ref()),
                        ("E2E_HELM", helm.as_os_str()),
                        ("E2E_LABEL", E2E_LABEL.as_ref()),
                    ],
                )?;
                Ok(Cluster {
                    kubeconfig,
                    kubectl,
                    local_dir: None,
                    registry,
                    _watchdog: watchdog,
                })
            }
            None => start_local(repo, target, &work),
        }
    }
}

fn start_local(repo: &Path, target: &Path, work: &Path) -> Result<Cluster, String> {
    let script = repo.join("hack/local-cluster.sh");
    let dir = target.join("e2e-cluster");
    let lock_path = target.join("e2e-cluster.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "e2e: another test run holds {}; waiting for it to finish",
            lock_path.display()
        );
        lock.lock()
            .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    }
    // From here on the watchdog owns the teardown, even if `up` fails half-way.
    let watchdog = spawn_watchdog(
        lock.try_clone()
            .map_err(|e| format!("cannot share the lock file: {e}"))?,
        work,
        &[
            ("E2E_CLUSTER_DIR", dir.as_os_str()),
            ("E2E_CLUSTER_SCRIPT", script.as_os_str()),
        ],
    )?;
    // A cluster left by a run that was killed together with its watchdog: start afresh, so
    // every run sees a clean cluster. We hold the lock, so nobody else is using it.
    if dir.join(".palisade-cluster").exists() {
        let _ = Command::new(&script)
            .args(["down", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .status();
    }
    eprintln!(
        "e2e: starting the local control plane: {} up --dir {}",
        script.display(),
        dir.display()
    );
    // Progress goes to our stderr (not captured by the test harness, so a first-time
    // 10-minute build is visible); the export lines come on stdout.
    let out = Command::new(&script)
        .args(["up", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} up --dir {} failed ({}); its output is above, logs in {}/logs",
            script.display(),
            dir.display(),
            out.status,
            dir.display()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kubeconfig = export_value(&stdout, "KUBECONFIG")
        .ok_or_else(|| format!("`up` printed no KUBECONFIG export:\n{stdout}"))?;
    let kubectl = export_value(&stdout, "PALISADE_KUBECTL")
        .ok_or_else(|| format!("`up` printed no PALISADE_KUBECTL export:\n{stdout}"))?;
    let registry = export_value(&stdout, "PALISADE_REGISTRY")
        .ok_or_else(|| format!("`up` printed no PALISADE_REGISTRY export:\n{stdout}"))?;
    Ok(Cluster {
        kubeconfig: PathBuf::from(kubeconfig),
        kubectl: PathBuf::from(kubectl),
        local_dir: Some(dir),
        registry,
        _watchdog: watchdog,
    })
}

/// The watchdog: its stdout is `fd1` (the lock file, so it holds the lock), its stdin a pipe
/// whose end tells it to clean up.
fn spawn_watchdog(
    fd1: File,
    work: &Path,
    envs: &[(&str, &std::ffi::OsStr)],
) -> Result<ChildStdin, String> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(WATCHDOG)
        .arg("palisade-e2e-watchdog")
        .env("E2E_WATCHDOG_LOG", work.join("watchdog.log"))
        .env("E2E_WORK", work)
        .stdin(Stdio::piped())
        .stdout(fd1)
        .stderr(Stdio::null())
        .process_group(0);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the cleanup watchdog: {e}"))?;
    child
        .stdin
        .take()
        .ok_or_else(|| "the watchdog has no stdin pipe".to_owned())
}

fn open_log(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// `VALUE` of a line `export NAME=VALUE` (bash `printf %q` quoting of plain paths undone).
fn export_value(text: &str, name: &str) -> Option<String> {
    let prefix = format!("export {name}=");
    let raw = text.lines().find_map(|l| l.strip_prefix(&prefix))?;
    let mut value = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_are_read_back() {
        let out = "export KUBECONFIG=/t/e2e-cluster/kubeconfig\nexport PALISADE_KUBECTL=/root/my\\ cache/kubectl\n";
        assert_eq!(
            export_value(out, "KUBECONFIG").as_deref(),
            Some("/t/e2e-cluster/kubeconfig")
        );
        assert_eq!(
            export_value(out, "PALISADE_KUBECTL").as_deref(),
            Some("/root/my cache/kubectl")
        );
        assert_eq!(export_value(out, "OTHER"), None);
    }
}
