//! End-to-end harness: a real kube-apiserver calls the real `palisade-webhook` over TLS,
//! and tests assert what kubectl prints.
//!
//! [`env()`] sets up, once per test process:
//! 1. the cluster ([`cluster`]): `PALISADE_E2E_KUBECONFIG` if set, else the local control
//!    plane of `hack/local-cluster.sh` (stopped again when the process ends, however it ends);
//! 2. the CRDs from `config/crd/` (kubectl apply), and the exempt label on `kube-system` and
//!    `palisade-system`;
//! 3. a CA and a serving certificate for 127.0.0.1, in a Secret-like `..data` layout;
//! 4. `palisade-webhook` (built by cargo from this workspace) on free loopback ports,
//!    watching SecurityPolicies on the API server;
//! 5. its ValidatingWebhookConfiguration ([`webhook::registration`], failurePolicy Fail).
//!
//! Each test takes a [`Test`]: its own directory for manifests, its own namespaces, a
//! kubectl transcript, and on failure the transcript and the webhook's log are printed.
//! Tests that disturb the shared webhook (stopping it, rotating its certificate) take it
//! exclusively; the others share it and run in parallel.

pub mod certs;
pub mod cluster;
pub mod http;
pub mod kubectl;
pub mod process;
pub mod webhook;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

pub use cluster::{Cluster, E2E_LABEL, REGISTRATION_NAME};
pub use kubectl::{Kubectl, Output};
pub use webhook::{EXEMPT_LABEL, TIMEOUT_SECONDS};

use certs::{Ca, SecretDir};
use process::{Supervised, tail};
use webhook::WebhookSpec;

/// Palisade's own namespace: never judged.
pub const PALISADE_NAMESPACE: &str = "palisade-system";

/// The shared environment. Everything in it lives as long as the test process.
#[derive(Debug)]
pub struct Env {
    pub repo: PathBuf,
    /// Per-run files: webhook log, certificates, one directory per test.
    pub work: PathBuf,
    pub cluster: Cluster,
    pub kubectl: Kubectl,
    /// The API server's minor version (20 for the local control plane).
    pub server_minor: u32,
    spec: WebhookSpec,
    webhook: Mutex<Option<Supervised>>,
    tls: Mutex<Tls>,
    gate: RwLock<()>,
}

#[derive(Debug)]
struct Tls {
    ca: Ca,
    secret: SecretDir,
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
        let binary = webhook::build_binary(&repo, "palisade-webhook", "palisade-webhook")?;
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
        // The exempt label stands in for kubernetes.io/metadata.name, which 1.20 lacks.
        if !kubectl
            .run(&repo, ["get", "namespace", PALISADE_NAMESPACE], None)
            .success()
        {
            k(&["create", "namespace", PALISADE_NAMESPACE])?;
        }
        let exempt = format!("{EXEMPT_LABEL}=true");
        k(&[
            "label",
            "namespace",
            "kube-system",
            PALISADE_NAMESPACE,
            &exempt,
            "--overwrite",
        ])?;

        let ca = Ca::new("palisade-e2e-ca").map_err(|e| format!("CA: {e}"))?;
        let (cert, key) = ca
            .serving_pair("palisade-webhook")
            .map_err(|e| format!("serving certificate: {e}"))?;
        let secret = SecretDir::create(&work.join("webhook-tls"), &cert, &key)
            .map_err(|e| format!("cannot write the serving certificate: {e}"))?;
        let localhost = std::net::Ipv4Addr::LOCALHOST;
        let spec = WebhookSpec {
            binary,
            addr: SocketAddr::from((localhost, webhook::free_port()?)),
            admin_addr: SocketAddr::from((localhost, webhook::free_port()?)),
            cert_file: secret.cert_file(),
            key_file: secret.key_file(),
            kubeconfig: cluster.kubeconfig.clone(),
            log: work.join("webhook.log"),
        };
        let process = spec.start()?;
        let env = Env {
            repo,
            work,
            cluster,
            kubectl,
            server_minor,
            spec,
            webhook: Mutex::new(Some(process)),
            tls: Mutex::new(Tls { ca, secret }),
            gate: RwLock::new(()),
        };
        let bundle = env.ca_pem();
        env.register(&bundle)?;
        eprintln!(
            "e2e: ready in {:.1}s: webhook https://{} (admin http://{}), log {}",
            started.elapsed().as_secs_f64(),
            env.spec.addr,
            env.spec.admin_addr,
            env.spec.log.display()
        );
        Ok(env)
    }

    /// `https://127.0.0.1:<port>` of the webhook.
    pub fn webhook_addr(&self) -> SocketAddr {
        self.spec.addr
    }

    pub fn webhook_log(&self) -> &Path {
        &self.spec.log
    }

    /// Apply the webhook registration trusting `ca_bundle_pem`.
    pub fn register(&self, ca_bundle_pem: &str) -> Result<(), String> {
        let manifest = webhook::registration(self.spec.addr, ca_bundle_pem).to_string();
        let out = self
            .kubectl
            .run(&self.work, ["apply", "-f", "-"], Some(&manifest));
        if out.success() {
            Ok(())
        } else {
            Err(format!("cannot register the webhook:\n{out}"))
        }
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

    /// PEM of the CA that signs the serving certificates made from now on.
    pub fn ca_pem(&self) -> String {
        lock(&self.tls).ca.cert_pem.clone()
    }

    /// Make a new CA the signer of future serving certificates; returns its PEM. The served
    /// certificate and the registration are left as they are.
    pub fn replace_ca(&self) -> Result<String, String> {
        let ca = Ca::new("palisade-e2e-ca-2").map_err(|e| format!("CA: {e}"))?;
        let pem = ca.cert_pem.clone();
        lock(&self.tls).ca = ca;
        Ok(pem)
    }

    /// Publish a new serving certificate from the current CA through the `..data` swap.
    pub fn rotate_serving_cert(&self) -> Result<(), String> {
        let tls = lock(&self.tls);
        let (cert, key) = tls
            .ca
            .serving_pair("palisade-webhook")
            .map_err(|e| format!("serving certificate: {e}"))?;
        tls.secret
            .swap(&cert, &key)
            .map_err(|e| format!("cannot swap the serving certificate: {e}"))
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

    /// A test that stops, restarts or re-certifies the webhook: runs alone.
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
        if matches!(self.gate, Gate::Exclusive(_))
            && let Err(e) = self.env.start_webhook()
        {
            eprintln!(
                "e2e: could not restart the webhook after {}: {e}",
                self.name
            );
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
            if self.env.cluster.local_dir.is_some() {
                eprintln!(
                    "===== control-plane logs: {} (copied there when the run ends) =====",
                    self.env.work.with_file_name("cluster-logs").display()
                );
            }
        }
    }
}
