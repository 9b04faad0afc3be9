//! End-to-end harness: a real kube-apiserver calls the real `palisade-webhook` over TLS,
//! `palisade-operator` registers it and manages its certificates, and tests assert what
//! kubectl prints.
//!
//! [`env()`] sets up, once per test process:
//! 1. the cluster ([`cluster`]): `PALISADE_E2E_KUBECONFIG` if set, else the local control
//!    plane of `hack/local-cluster.sh` (stopped again when the process ends, however it ends);
//! 2. the CRDs from `config/crd/` (kubectl apply) and the `palisade-system` namespace;
//! 3. `palisade-operator` ([`operator`], built by cargo from this workspace): it makes the CA
//!    and serving certificate (Secret [`operator::CERT_SECRET`], mirrored into a
//!    Secret-volume-like directory), registers the webhook by URL on loopback (failurePolicy
//!    Fail, `kube-system` and `palisade-system` left out), keeps SecurityPolicy status and
//!    audits every few seconds;
//!    It also scans ImageScanReports ([`scan`]): against the OSV directory of
//!    [`Env::scan`], with images from the shared registry there;
//! 4. `palisade-webhook` on free loopback ports, serving the operator's certificate files and
//!    watching SecurityPolicies on the API server.
//!
//! Each test takes a [`Test`]: its own directory for manifests, its own namespaces, a
//! kubectl transcript, and on failure the transcript and the webhook's and operator's logs
//! are printed. Tests that disturb the shared processes (stopping the webhook or the
//! operator, rotating the CA) take them exclusively; the others share them and run in
//! parallel.

pub mod cluster;
pub mod http;
pub mod install;
pub mod kubectl;
pub mod operator;
pub mod process;
pub mod scan;
pub mod webhook;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
pub use cluster::{Cluster, E2E_LABEL, REGISTRATION_NAME};
pub use kubectl::{Kubectl, Output};
pub use webhook::{EXEMPT_LABEL, TIMEOUT_SECONDS};

use operator::OperatorSpec;
use process::{Supervised, tail};
use webhook::WebhookSpec;

/// Palisade's own namespace: never judged.
pub const PALISADE_NAMESPACE: &str = "palisade-system";

/// The shared environment. Everything in it lives as long as the test process.
#[derive(Debug)]
pub struct Env {
    pub repo: PathBuf,
    /// Per-run files: logs, certificates, one directory per test.
    pub work: PathBuf,
    pub cluster: Cluster,
    pub kubectl: Kubectl,
    /// The API server's minor version (20 for the local control plane).
    pub server_minor: u32,
    spec: WebhookSpec,
    webhook: Mutex<Option<Supervised>>,
    operator_spec: OperatorSpec,
    operator: Mutex<Option<Supervised>>,
    gate: RwLock<()>,
    scan: scan::ScanFixtures,
}

static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

/// The shared environment, set up by the first caller. A failed set-up fails every test
/// with the same message (it is not retried once per test).
pub fn env() -> &'static Env {
    match ENV.get_or_init(Env::init) {
        Ok(env) => env,
        Err(e) => panic!("the e2e environment could not be set up:\n{e}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding it left consistent data; carry on.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Env {
    fn init() -> Result<Env, String> {
        let started = Instant::now();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("the e2e crate has no parent directory")?
            .to_owned();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { repo.join(t) })
            .unwrap_or_else(|| repo.join("target"));
        // Build first: a compile error should not cost a cluster start.
        let webhook_binary = webhook::build_binary(&repo, "palisade-webhook", "palisade-webhook")?;
        let operator_binary =
            webhook::build_binary(&repo, "palisade-operator", "palisade-operator")?;
        let cluster = Cluster::find(&repo, &target)?;
        let work = target.join("e2e/run");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        let kubectl = Kubectl {
            program: cluster.kubectl.clone(),
            kubeconfig: cluster.kubeconfig.clone(),
            cache_dir: target.join("e2e/kube-cache"),
        };
        let k = |args: &[&str]| -> Result<Output, String> {
            let out = kubectl.run(&repo, args, None);
            if out.success() {
                Ok(out)
            } else {
                Err(format!("set-up step failed:\n{out}"))
            }
        };

        let version: serde_json::Value =
            serde_json::from_str(&k(&["version", "-o", "json"])?.stdout)
                .map_err(|e| format!("kubectl version -o json: {e}"))?;
        let server_minor = version["serverVersion"]["minor"]
            .as_str()
            .map(|m| m.trim_end_matches('+'))
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| format!("no server version in {version}"))?;

        k(&["apply", "-f", "config/crd/"])?;
        k(&[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd/securitypolicies.palisade.dev",
        ])?;
        if !kubectl
            .run(&repo, ["get", "namespace", PALISADE_NAMESPACE], None)
            .success()
        {
            k(&["create", "namespace", PALISADE_NAMESPACE])?;
        }

        // Before the operator, which is started with its database directory.
        let scan = scan::ScanFixtures::start(&work)?;
        let localhost = std::net::Ipv4Addr::LOCALHOST;
        let webhook_addr = SocketAddr::from((localhost, webhook::free_port()?));
        let operator_spec = OperatorSpec {
            binary: operator_binary,
            namespace: PALISADE_NAMESPACE.to_owned(),
            admin_addr: SocketAddr::from((localhost, webhook::free_port()?)),
            webhook_addr,
            cert_dir: work.join("webhook-tls"),
            kubeconfig: cluster.kubeconfig.clone(),
            log: work.join("operator.log"),
            scan_db: scan.osv_dir().to_owned(),
            scan_cache_dir: scan.cache_dir().to_owned(),
        };
        // The operator first: the webhook serves the certificate files it writes.
        let operator = operator_spec.start()?;
        let spec = WebhookSpec {
            binary: webhook_binary,
            addr: webhook_addr,
            admin_addr: SocketAddr::from((localhost, webhook::free_port()?)),
            cert_file: operator_spec.cert_file(),
            key_file: operator_spec.key_file(),
            kubeconfig: cluster.kubeconfig.clone(),
            log: work.join("webhook.log"),
        };
        let webhook = spec.start()?;
        let env = Env {
            repo,
            work,
            cluster,
            kubectl,
            server_minor,
            spec,
            webhook: Mutex::new(Some(webhook)),
            operator_spec,
            operator: Mutex::new(Some(operator)),
            gate: RwLock::new(()),
            scan,
        };
        env.wait_registered()?;
        eprintln!(
            "e2e: ready in {:.1}s: webhook https://{} (admin http://{}), log {}; operator admin http://{}, log {}",
            started.elapsed().as_secs_f64(),
            env.spec.addr,
            env.spec.admin_addr,
            env.spec.log.display(),
            env.operator_spec.admin_addr,
            env.operator_spec.log.display(),
        );
        Ok(env)
    }

    /// Wait until the operator's registration is in place: both webhooks pointing at our
    /// webhook with a caBundle, and (on 1.20) the exempt label on the namespaces left out.
    fn wait_registered(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("https://{}/validate/pods", self.spec.addr);
        loop {
            let problem = match self.webhook_configuration() {
                Ok(vwc) => {
                    let hooks = vwc["webhooks"].as_array().cloned().unwrap_or_default();
                    let names: Vec<&str> =
                        hooks.iter().filter_map(|h| h["name"].as_str()).collect();
                    if !names.contains(&"pods.palisade.dev")
                        || !names.contains(&"workloads.palisade.dev")
                    {
                        Some(format!("webhooks {names:?}"))
                    } else if !hooks
                        .iter()
                        .any(|h| h["clientConfig"]["url"] == url.as_str())
                    {
                        Some(format!("no webhook with url {url}: {vwc}"))
                    } else if hooks.iter().any(|h| {
                        h["clientConfig"]["caBundle"]
                            .as_str()
                            .is_none_or(str::is_empty)
                    }) {
                        Some("a webhook without caBundle".to_owned())
                    } else {
                        None
                    }
                }
                Err(e) => Some(e),
            };
            let problem = problem.or_else(|| {
                if self.server_minor >= 21 {
                    return None;
                }
                let out = self.kubectl.run(
                    &self.work,
                    [
                        "get",
                        "namespaces",
                        "-l",
                        &format!("{EXEMPT_LABEL}=true"),
                        "-o",
                        "name",
                    ],
                    None,
                );
                let labelled = [
                    "namespace/kube-system",
                    &format!("namespace/{PALISADE_NAMESPACE}"),
                ]
                .iter()
                .all(|n| out.stdout.lines().any(|l| l == *n));
                (!labelled).then(|| format!("namespaces not labelled yet:\n{out}"))
            });
            match problem {
                None => return Ok(()),
                Some(p) if Instant::now() > deadline => {
                    return Err(format!(
                        "the operator did not register the webhook within 60s: {p}; last lines of {}:\n{}",
                        self.operator_spec.log.display(),
                        tail(&self.operator_spec.log, 30)
                    ));
                }
                Some(_) => thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// The shared registry and the OSV database the operator scans with.
    pub fn scan(&self) -> &scan::ScanFixtures {
        &self.scan
    }

    /// `https://127.0.0.1:<port>` of the webhook.
    pub fn webhook_addr(&self) -> SocketAddr {
        self.spec.addr
    }

    pub fn webhook_log(&self) -> &Path {
        &self.spec.log
    }

    pub fn operator_log(&self) -> &Path {
        &self.operator_spec.log
    }

    /// The directory where the operator writes the webhook's certificate files.
    pub fn cert_dir(&self) -> &Path {
        &self.operator_spec.cert_dir
    }

    /// The ValidatingWebhookConfiguration the operator registered, as JSON.
    pub fn webhook_configuration(&self) -> Result<serde_json::Value, String> {
        let out = self.kubectl.run(
            &self.work,
            [
                "get",
                "validatingwebhookconfiguration",
                REGISTRATION_NAME,
                "-o",
                "json",
            ],
            None,
        );
        if !out.success() {
            return Err(out.to_string());
        }
        serde_json::from_str(&out.stdout).map_err(|e| format!("{e}:\n{out}"))
    }

    /// The PEM certificates in the caBundle of each registered webhook, by webhook name.
    pub fn ca_bundles(&self) -> Result<Vec<(String, String)>, String> {
        let vwc = self.webhook_configuration()?;
        vwc["webhooks"]
            .as_array()
            .ok_or_else(|| format!("no webhooks in {vwc}"))?
            .iter()
            .map(|h| {
                let name = h["name"].as_str().unwrap_or_default().to_owned();
                let b64 = h["clientConfig"]["caBundle"]
                    .as_str()
                    .ok_or_else(|| format!("webhook {name} has no caBundle"))?;
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("caBundle of {name}: {e}"))?;
                Ok((name, String::from_utf8_lossy(&pem).into_owned()))
            })
            .collect()
    }

    /// Stop the webhook (SIGTERM, then its listeners close).
    pub fn stop_webhook(&self) {
        if let Some(mut p) = lock(&self.webhook).take() {
            p.stop(Duration::from_secs(15));
        }
    }

    /// Start the webhook again with the same ports and certificate files, if it is not
    /// running; returns when it is ready.
    pub fn start_webhook(&self) -> Result<(), String> {
        let mut slot = lock(&self.webhook);
        if let Some(p) = slot.as_mut()
            && p.exited().is_none()
        {
            return Ok(());
        }
        *slot = Some(self.spec.start()?);
        Ok(())
    }

    /// The webhook's /metrics text.
    pub fn webhook_metrics(&self) -> Result<String, String> {
        self.spec.metrics()
    }

    /// SIGKILL the operator (no shutdown code runs); returns once it is gone.
    pub fn kill_operator(&self) -> Result<(), String> {
        match lock(&self.operator).as_mut() {
            Some(p) => p.kill_hard(Duration::from_secs(10)),
            None => Err("the operator is not running".to_owned()),
        }
    }

    /// Start the operator again with the same flags, if it is not running; returns when it
    /// is ready.
    pub fn start_operator(&self) -> Result<(), String> {
        let mut slot = lock(&self.operator);
        if let Some(p) = slot.as_mut()
            && p.exited().is_none()
        {
            return Ok(());
        }
        *slot = Some(self.operator_spec.start()?);
        Ok(())
    }

    /// Whether the operator process is running.
    pub fn operator_running(&self) -> bool {
        lock(&self.operator)
            .as_mut()
            .is_some_and(|p| p.exited().is_none())
    }

    /// The operator's /metrics text.
    pub fn operator_metrics(&self) -> Result<String, String> {
        self.operator_spec.metrics()
    }
}

/// How a test holds the shared webhook.
#[derive(Debug)]
enum Gate {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// One test's view: its directory, its namespaces, its kubectl transcript.
#[derive(Debug)]
pub struct Test {
    pub env: &'static Env,
    pub name: String,
    pub dir: PathBuf,
    transcript: Mutex<String>,
    gate: Gate,
}

impl Test {
    /// A test that shares the webhook with other tests running in parallel.
    pub fn new(name: &str) -> Test {
        let env = env();
        let guard = env
            .gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Test::with(env, name, Gate::Shared(guard))
    }

    /// A test that stops or restarts the webhook or the operator, or rotates the CA: runs
    /// alone.
    pub fn exclusive(name: &str) -> Test {
        let env = env();
        let guard = env
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Test::with(env, name, Gate::Exclusive(guard))
    }

    fn with(env: &'static Env, name: &str, gate: Gate) -> Test {
        let dir = env.work.join("tests").join(name);
        std::fs::create_dir_all(&dir).expect("create the test's directory");
        Test {
            env,
            name: name.to_owned(),
            dir,
            transcript: Mutex::new(String::new()),
            gate,
        }
    }

    /// Run kubectl in the test's directory (so `-f file.yaml` is printed as `"file.yaml"`).
    pub fn kubectl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.record(self.env.kubectl.run(&self.dir, args, None))
    }

    /// kubectl with `input` on stdin.
    pub fn kubectl_stdin<I, S>(&self, args: I, input: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.record(self.env.kubectl.run(&self.dir, args, Some(input)))
    }

    fn record(&self, out: Output) -> Output {
        let _ = writeln!(lock(&self.transcript), "{out}\n");
        out
    }

    /// Write `content` to `file` in the test's directory; returns `file` for `-f`.
    pub fn write(&self, file: &str, content: &str) -> String {
        std::fs::write(self.dir.join(file), content).expect("write a manifest");
        file.to_owned()
    }

    /// Create namespace `name` with `labels` (and the e2e label), and wait until pods can
    /// be created in it (on 1.20 the ServiceAccount plugin refuses pods until the default
    /// ServiceAccount has its token).
    pub fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        // A leftover from an earlier run on a user's cluster may still be terminating.
        self.eventually("an earlier namespace of this name is gone", 120, || {
            let out = self.kubectl([
                "get",
                "namespace",
                name,
                "-o",
                "jsonpath={.status.phase}",
                "--ignore-not-found",
            ]);
            match out.stdout.trim() {
                "Terminating" => Err("still terminating".to_owned()),
                _ => Ok(()),
            }
        });
        let mut manifest = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    {E2E_LABEL}: \"true\"\n"
        );
        for (k, v) in labels {
            let _ = writeln!(manifest, "    {k}: \"{v}\"");
        }
        self.kubectl_stdin(["apply", "-f", "-"], &manifest).ok();
        self.wait_service_account(name);
    }

    /// Wait until pods can be created in `namespace` (its default ServiceAccount, with a
    /// token Secret on servers before 1.24).
    pub fn wait_service_account(&self, namespace: &str) {
        let needs_token = self.env.server_minor < 24;
        self.eventually("the default ServiceAccount is ready", 60, || {
            let out = self.kubectl([
                "get",
                "serviceaccount",
                "default",
                "-n",
                namespace,
                "-o",
                "jsonpath={.secrets[0].name}",
            ]);
            match (out.success(), needs_token && out.stdout.trim().is_empty()) {
                (true, false) => Ok(()),
                _ => Err(out.to_string()),
            }
        });
    }

    /// Apply a manifest (written to `file` first); panics unless kubectl succeeds.
    pub fn apply(&self, file: &str, manifest: &str) -> Output {
        let file = self.write(file, manifest);
        self.kubectl(["apply", "-f", &file]).ok()
    }

    /// Wait until the webhook enforces or warns with SecurityPolicy `policy` in `namespace`:
    /// a server-side dry run of a pod that breaks most rules mentions the policy.
    pub fn wait_policy_in_force(&self, policy: &str, namespace: &str) {
        let probe = self.write(
            "policy-probe.yaml",
            &format!(
                r#"apiVersion: v1
kind: Pod
metadata:
  name: palisade-e2e-probe
  labels:
    {E2E_LABEL}: "true"
spec:
  hostNetwork: true
  containers:
  - name: probe
    image: docker.io/library/busybox:latest
    securityContext:
      privileged: true
      runAsUser: 0
      allowPrivilegeEscalation: true
      capabilities:
        add: [SYS_ADMIN, NET_ADMIN]
"#
            ),
        );
        let needle = format!("SecurityPolicy/{policy}:");
        self.eventually(
            &format!("the webhook enforces SecurityPolicy/{policy} in namespace {namespace}"),
            60,
            || {
                let out =
                    self.kubectl(["create", "--dry-run=server", "-n", namespace, "-f", &probe]);
                if out.stderr.contains(&needle) {
                    Ok(())
                } else {
                    Err(out.to_string())
                }
            },
        );
    }

    /// Retry `f` every 250 ms until it returns `Ok` or `seconds` pass; then panic with the
    /// last error.
    #[track_caller]
    pub fn eventually<T>(
        &self,
        what: &str,
        seconds: u64,
        mut f: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            match f() {
                Ok(v) => return v,
                Err(e) if Instant::now() > deadline => {
                    panic!("timed out after {seconds}s waiting until {what}; last attempt:\n{e}")
                }
                Err(_) => thread::sleep(Duration::from_millis(250)),
            }
        }
    }
}

impl Drop for Test {
    fn drop(&mut self) {
        if matches!(self.gate, Gate::Exclusive(_)) {
            if let Err(e) = self.env.start_operator() {
                eprintln!(
                    "e2e: could not restart the operator after {}: {e}",
                    self.name
                );
            }
            if let Err(e) = self.env.start_webhook() {
                eprintln!(
                    "e2e: could not restart the webhook after {}: {e}",
                    self.name
                );
            }
        }
        if thread::panicking() {
            // Printed into the test's captured output, which libtest shows on failure.
            eprintln!(
                "\n===== kubectl transcript of {} =====\n{}",
                self.name,
                lock(&self.transcript)
            );
            eprintln!(
                "===== last 60 lines of the webhook log ({}) =====\n{}",
                self.env.spec.log.display(),
                tail(&self.env.spec.log, 60)
            );
            eprintln!(
                "===== last 60 lines of the operator log ({}) =====\n{}",
                self.env.operator_spec.log.display(),
                tail(&self.env.operator_spec.log, 60)
            );
            if self.env.cluster.local_dir.is_some() {
                eprintln!(
                    "===== control-plane logs: {} (copied there when the run ends) =====",
                    self.env.work.with_file_name("cluster-logs").display()
                );
            }
        }
    }
}
