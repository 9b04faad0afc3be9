//! End-to-end harness: Palisade installed by its Helm chart, from images built from this
//! workspace, in pods on a real cluster; a real kube-apiserver calls the webhook through its
//! Service, and tests assert what kubectl prints.
//!
//! [`env()`] sets up, once per test process:
//! 1. the cluster ([`cluster`]): `PALISADE_E2E_KUBECONFIG` if set, else the local cluster of
//!    `hack/local-cluster.sh` with its real node and registry (stopped again when the
//!    process ends, however it ends);
//! 2. the images: `PALISADE_E2E_IMAGE_TAG` names them when `hack/e2e.sh` has pushed them,
//!    else `hack/images.sh` builds and pushes them to the cluster's registry;
//! 3. the CRDs from `config/crd/` (kubectl apply), and the OSV database the operator scans
//!    with, as a ConfigMap ([`scan`]);
//! 4. the release ([`install`]): `helm upgrade --install` with the chart's defaults but for a
//!    short audit interval and that database. The operator makes the CA and serving
//!    certificate, registers the webhook by its Service (failurePolicy Fail, `kube-system`
//!    and `palisade-system` left out), keeps SecurityPolicy status, audits every few seconds
//!    and scans images the tests push to the cluster's registry.
//!
//! Each test takes a [`Test`]: its own directory for manifests, its own namespaces, a
//! kubectl transcript, and on failure the transcript and the pods' logs are printed. Tests
//! that disturb the shared release (scaling the webhook or the operator to zero, rotating
//! the CA) take it exclusively; the others share it and run in parallel.

pub mod cluster;
pub mod http;
pub mod install;
pub mod kubectl;
pub mod runtime;
pub mod scan;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
pub use cluster::{Cluster, E2E_LABEL, REGISTRATION_NAME};
use install::{OPERATOR, OPERATOR_ADMIN_PORT, Release, WEBHOOK, WEBHOOK_ADMIN_PORT};
pub use kubectl::{Kubectl, Output};

/// Palisade's own namespace (the release's): never judged.
pub const PALISADE_NAMESPACE: &str = install::NAMESPACE;

/// Namespaces carrying this label (`=true`) are never sent to the webhook on Kubernetes 1.20,
/// which has no `kubernetes.io/metadata.name` label to select namespaces by name: the
/// operator labels `kube-system` and its own namespace.
pub const EXEMPT_LABEL: &str = "palisade.dev/exempt";

/// The API server's per-call timeout for the webhook, in seconds: the chart's
/// `webhook.timeoutSeconds`.
pub const TIMEOUT_SECONDS: u32 = 5;

/// Seconds between two background audits: short, so audit results show up within a test.
pub const AUDIT_INTERVAL_SECONDS: u64 = 5;

/// Replicas of each component, the chart's defaults.
pub const REPLICAS: u32 = 2;

/// The shared environment. Everything in it lives as long as the test process.
#[derive(Debug)]
pub struct Env {
    pub repo: PathBuf,
    /// Per-run files: one directory per test.
    pub work: PathBuf,
    pub cluster: Cluster,
    pub kubectl: Kubectl,
    /// The API server's minor version (20 for the local cluster).
    pub server_minor: u32,
    pub release: Release,
    /// The Helm values file of the suite's installs (the OSV database's mount).
    values_file: PathBuf,
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
        let cluster = Cluster::find(&repo, &target)?;
        let tag = install::image_tag(&repo, &cluster.registry)?;
        let work = target.join("e2e/run");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        let kubectl = Kubectl {
            program: cluster.kubectl.clone(),
            kubeconfig: cluster.kubeconfig.clone(),
            cache_dir: target.join("e2e/kube-cache"),
        };
        let k = |args: &[&str], stdin: Option<&str>| -> Result<Output, String> {
            let out = kubectl.run(&repo, args, stdin);
            if out.success() {
                Ok(out)
            } else {
                Err(format!("set-up step failed:\n{out}"))
            }
        };
        let version: serde_json::Value =
            serde_json::from_str(&k(&["version", "-o", "json"], None)?.stdout)
                .map_err(|e| format!("kubectl version -o json: {e}"))?;
        let server_minor = version["serverVersion"]["minor"]
            .as_str()
            .map(|m| m.trim_end_matches('+'))
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| format!("no server version in {version}"))?;

        k(&["apply", "-f", "config/crd/"], None)?;
        k(
            &[
                "wait",
                "--for=condition=established",
                "--timeout=60s",
                "crd/securitypolicies.palisade.dev",
            ],
            None,
        )?;
        if !kubectl
            .run(&repo, ["get", "namespace", PALISADE_NAMESPACE], None)
            .success()
        {
            k(&["create", "namespace", PALISADE_NAMESPACE], None)?;
        }

        // The database before the operator, which reads it at start.
        let scan = scan::ScanFixtures::new(&work, &cluster.registry)?;
        let (config_map, osv_values) = scan.osv_config_map(PALISADE_NAMESPACE, E2E_LABEL)?;
        k(&["apply", "-f", "-"], Some(&config_map))?;
        let values_file = work.join("values.yaml");
        std::fs::write(&values_file, osv_values)
            .map_err(|e| format!("{}: {e}", values_file.display()))?;
        let release = Release::new(
            repo.clone(),
            target.join("e2e"),
            kubectl.clone(),
            cluster.registry.clone(),
            tag,
        )?;
        let install_started = Instant::now();
        install_suite(&release, &values_file, &[])?;
        let installed_in = install_started.elapsed();
        let env = Env {
            repo,
            work,
            cluster,
            kubectl,
            server_minor,
            release,
            values_file,
            gate: RwLock::new(()),
            scan,
        };
        env.wait_registered()?;
        eprintln!(
            "e2e: ready in {:.1}s (helm install to Ready: {:.1}s): images {}/palisade-*:{}",
            started.elapsed().as_secs_f64(),
            installed_in.as_secs_f64(),
            env.release.registry,
            env.release.tag,
        );
        Ok(env)
    }

    /// Install the release again with `extra` values over the suite's own (none: back to
    /// the suite's install), waiting as the first install did. Only from a test that holds
    /// the release exclusively ([`Test::exclusive`]): the operator's pods roll when its
    /// settings change, and with them what it reconciles (the agent's DaemonSet).
    pub fn reinstall(&self, extra: install::Values) -> Result<Output, String> {
        let out = install_suite(&self.release, &self.values_file, extra)?;
        self.wait_registered()?;
        Ok(out)
    }

    /// Wait until the operator's registration is in place: both webhooks calling the chart's
    /// Service with a caBundle, and (on 1.20) the exempt label on the namespaces left out.
    fn wait_registered(&self) -> Result<(), String> {
        self.release.wait_registered(Duration::from_secs(90))?;
        if self.server_minor >= 21 {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
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
            if labelled {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the operator did not label the excluded namespaces within 60s:\n{out}\n--- operator logs ---\n{}",
                    self.operator_logs(30)
                ));
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// The cluster's registry and the OSV database the operator scans with.
    pub fn scan(&self) -> &scan::ScanFixtures {
        &self.scan
    }

    /// The last `lines` lines of each webhook pod's log.
    pub fn webhook_logs(&self, lines: usize) -> String {
        self.release.logs(WEBHOOK, lines)
    }

    /// The last `lines` lines of each operator pod's log.
    pub fn operator_logs(&self, lines: usize) -> String {
        self.release.logs(OPERATOR, lines)
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

    /// Stop the webhook: its Deployment scaled to zero (each pod leaves the Service, then
    /// stops); returns once no webhook pod is left.
    pub fn stop_webhook(&self) -> Result<(), String> {
        self.release.scale(WEBHOOK, 0)
    }

    /// Bring the webhook back to its replicas, if it is not at them; returns when every
    /// replica is Ready and the API server reaches the webhook through its Service.
    pub fn start_webhook(&self) -> Result<(), String> {
        start(&self.release, WEBHOOK)?;
        self.wait_webhook_reachable()
    }

    /// A Ready pod joins the Service's endpoints, and kube-proxy's rules, a moment later:
    /// until then the API server's calls are refused. Wait until a server-side dry run of a
    /// pod in a namespace the webhook judges no longer fails on the call.
    fn wait_webhook_reachable(&self) -> Result<(), String> {
        let probe = r#"apiVersion: v1
kind: Pod
metadata:
  name: palisade-e2e-reachable
spec:
  containers:
  - name: probe
    image: registry.example.com/probe:1
"#;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.kubectl.run(
                &self.work,
                ["create", "--dry-run=server", "-n", "default", "-f", "-"],
                Some(probe),
            );
            if !out.stderr.contains("failed calling webhook") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the API server still cannot call the webhook after 60s:\n{out}"
                ));
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// `/metrics` of each running webhook pod, by pod name.
    pub fn webhook_metrics(&self) -> Result<Vec<(String, String)>, String> {
        self.release
            .running_pods(WEBHOOK)?
            .into_iter()
            .map(|pod| {
                let text = self.release.pod_get(&pod, WEBHOOK_ADMIN_PORT, "/metrics")?;
                Ok((pod, text))
            })
            .collect()
    }

    /// Take the operator away at once: its Deployment scaled to zero and its pods deleted
    /// with the shortest grace period (the kubelet kills what has not stopped within it);
    /// returns once the kubelet has stopped them and no operator pod is left.
    pub fn kill_operator(&self) -> Result<(), String> {
        let scaled = self.kubectl.run(
            &self.work,
            [
                "-n",
                PALISADE_NAMESPACE,
                "scale",
                &format!("deployment/{}-{OPERATOR}", install::RELEASE),
                "--replicas=0",
            ],
            None,
        );
        if !scaled.success() {
            return Err(scaled.to_string());
        }
        let deleted = self.kubectl.run(
            &self.work,
            [
                "-n",
                PALISADE_NAMESPACE,
                "delete",
                "pods",
                "-l",
                &install::selector(OPERATOR),
                // Not --force: the pod object then goes before its containers stop.
                "--grace-period=1",
            ],
            None,
        );
        if !deleted.success() {
            return Err(deleted.to_string());
        }
        self.release.wait_no_pods(OPERATOR)
    }

    /// Bring the operator back to its replicas, if it is not at them; returns when every
    /// replica is Ready.
    pub fn start_operator(&self) -> Result<(), String> {
        start(&self.release, OPERATOR)
    }

    /// Whether an operator pod exists (not being deleted).
    pub fn operator_running(&self) -> bool {
        self.release
            .component_pods(OPERATOR)
            .is_ok_and(|pods| !pods.is_empty())
    }

    /// `/metrics` of the operator that leads (the one that scans and audits).
    pub fn operator_metrics(&self) -> Result<String, String> {
        self.operator_get("/metrics")
    }

    /// `path` (with its query) on the admin port of the operator that leads, through the
    /// API server's pod proxy, as the README tells users to fetch reports and SBOMs.
    pub fn operator_get(&self, path: &str) -> Result<String, String> {
        let leader = self.release.operator_leader()?;
        self.release.pod_get(&leader, OPERATOR_ADMIN_PORT, path)
    }

    /// A file in the leading operator's scan cache (an emptyDir), read on the node: only
    /// on the local cluster, whose kubelet keeps its pods' volumes on this machine.
    pub fn operator_cache_file(&self, relative: &str) -> Result<Vec<u8>, String> {
        let Some(dir) = &self.cluster.local_dir else {
            return Err(
                "the operator's cache is on a node of a cluster this machine does not run".into(),
            );
        };
        let leader = self.release.operator_leader()?;
        let out = self.kubectl.run(
            &self.work,
            [
                "-n",
                PALISADE_NAMESPACE,
                "get",
                "pod",
                &leader,
                "-o",
                "jsonpath={.metadata.uid}",
            ],
            None,
        );
        if !out.success() || out.stdout.trim().is_empty() {
            return Err(format!("no uid for pod {leader}: {out}"));
        }
        let path = dir
            .join("kubelet/root/pods")
            .join(out.stdout.trim())
            .join("volumes/kubernetes.io~empty-dir/scan-cache")
            .join(relative);
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `helm upgrade --install` with the suite's values (a short audit interval, plain-text
/// logs, the OSV database of `values_file`) and `extra` over them.
fn install_suite(
    release: &Release,
    values_file: &Path,
    extra: install::Values,
) -> Result<Output, String> {
    let audit_interval = format!("{AUDIT_INTERVAL_SECONDS}s");
    let mut values: Vec<(&str, &str)> = vec![
        ("audit.interval", &audit_interval),
        // Plain lines in the logs a failed test prints.
        ("logFormat", "text"),
    ];
    values.extend_from_slice(extra);
    release.install_with(Some(values_file), &values)
}

/// Scale `component` back to [`REPLICAS`] unless all of them are Ready already.
fn start(release: &Release, component: &str) -> Result<(), String> {
    match release.replicas(component)? {
        (REPLICAS, REPLICAS) => Ok(()),
        _ => release.scale(component, REPLICAS),
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
    /// The namespaces [`Test::namespace`] made: deleted when the test passes (a failed
    /// test's stay for a look), so that the node's pod capacity outlasts the suite.
    namespaces: Mutex<Vec<String>>,
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
            namespaces: Mutex::new(Vec::new()),
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

    /// kubectl at a terminal, as a user types `kubectl exec -it`: run under `script`, which
    /// gives it a pseudo-terminal for its stdin and stdout (kubectl allocates no TTY in the
    /// container otherwise). Its input is empty: the command must end by itself.
    pub fn kubectl_tty<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.record(self.env.kubectl.run_tty(&self.dir, args))
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
        lock(&self.namespaces).push(name.to_owned());
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
        if !thread::panicking() {
            for ns in lock(&self.namespaces).iter() {
                let out = self.env.kubectl.run(
                    &self.dir,
                    [
                        "delete",
                        "namespace",
                        ns,
                        "--wait=false",
                        "--ignore-not-found",
                    ],
                    None,
                );
                if !out.success() {
                    eprintln!("e2e: could not delete namespace {ns}: {out}");
                }
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
                "===== last 60 lines of each webhook pod's log =====\n{}",
                self.env.webhook_logs(60)
            );
            eprintln!(
                "===== last 60 lines of each operator pod's log =====\n{}",
                self.env.operator_logs(60)
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
