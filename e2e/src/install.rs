//! Palisade installed by its Helm chart, in pods on the cluster's node, from images in a
//! registry the node pulls from: the shape users run. The `installed` test binary drives
//! one release through install, upgrade, disruption and uninstall.
//!
//! Configuration (set by `hack/e2e.sh`, which builds and pushes the images first):
//! - `PALISADE_E2E_KUBECONFIG`: the cluster;
//! - `PALISADE_E2E_REGISTRY`, `PALISADE_E2E_IMAGE_TAG`: where the images are
//!   (`<registry>/palisade-operator:<tag>`, `<registry>/palisade-webhook:<tag>`);
//! - `PALISADE_KUBECTL` (optional): kubectl matching the server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::kubectl::{Kubectl, Output, run_program};

pub const RELEASE: &str = "palisade";
pub const NAMESPACE: &str = "palisade-system";
/// The chart's webhook Service, which the registration must name.
pub const WEBHOOK_SERVICE: &str = "palisade-webhook";
/// The Deployments (and `app.kubernetes.io/component` labels) of the two components.
pub const WEBHOOK: &str = "webhook";
pub const OPERATOR: &str = "operator";
/// The Secret where the operator keeps the webhook's CA and serving certificate (the
/// chart's `certs.secretName`).
pub const CERT_SECRET: &str = "palisade-webhook-tls";
/// The Lease the operator's replicas elect their leader by.
pub const OPERATOR_LEASE: &str = "palisade-operator";
/// The webhook's and the operator's admin ports (`/metrics`), the chart's defaults.
pub const WEBHOOK_ADMIN_PORT: u16 = 8081;
pub const OPERATOR_ADMIN_PORT: u16 = 8082;

/// One Helm release of the chart in [`NAMESPACE`].
#[derive(Debug)]
pub struct Release {
    pub repo: PathBuf,
    pub work: PathBuf,
    pub kubectl: Kubectl,
    pub helm: PathBuf,
    pub registry: String,
    pub tag: String,
}

/// What the test asked of the chart beyond its defaults, as `--set` pairs.
pub type Values<'a> = &'a [(&'a str, &'a str)];

fn required(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run these tests through `make e2e` (hack/e2e.sh builds the images and sets it)")
    })
}

fn repo() -> Result<PathBuf, String> {
    Ok(Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the e2e crate has no parent directory")?
        .to_owned())
}

/// The helm of `hack/helm.sh` (installed there on first use).
pub(crate) fn helm_path(repo: &Path) -> Result<PathBuf, String> {
    let helm = Command::new(repo.join("hack/helm.sh"))
        .arg("--path")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("hack/helm.sh: {e}"))?;
    if !helm.status.success() {
        return Err("hack/helm.sh --path failed".into());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&helm.stdout).trim()))
}

/// The tag of the images under test: `PALISADE_E2E_IMAGE_TAG` when set (`hack/e2e.sh`
/// built and pushed them), else `hack/images.sh` builds them now and pushes them to
/// `registry`.
pub fn image_tag(repo: &Path, registry: &str) -> Result<String, String> {
    if let Some(tag) = std::env::var("PALISADE_E2E_IMAGE_TAG")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Ok(tag);
    }
    eprintln!("e2e: building the images and pushing them to {registry} (hack/images.sh)");
    let out = Command::new(repo.join("hack/images.sh"))
        .args(["--registry", registry])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("hack/images.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "hack/images.sh --registry {registry} failed ({}); its output is above",
            out.status
        ));
    }
    // Each line starts with the image reference, <registry>/<name>:<tag>.
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|r| r.rsplit_once(':'))
        .map(|(_, tag)| tag.to_owned())
        .ok_or_else(|| format!("hack/images.sh printed no image reference:\n{stdout}"))
}

impl Release {
    /// From the environment (see the module doc). Fails, naming what is missing.
    pub fn from_env() -> Result<Release, String> {
        let repo = repo()?;
        let kubeconfig = PathBuf::from(required("PALISADE_E2E_KUBECONFIG")?);
        let registry = required("PALISADE_E2E_REGISTRY")?;
        let tag = required("PALISADE_E2E_IMAGE_TAG")?;
        let kubectl = Kubectl {
            program: std::env::var_os("PALISADE_KUBECTL")
                .map(PathBuf::from)
                .unwrap_or_else(|| "kubectl".into()),
            kubeconfig,
            cache_dir: repo.join("target/e2e/kube-cache-installed"),
        };
        let work = repo.join("target/e2e/installed");
        Release::new(repo, work, kubectl, registry, tag)
    }

    /// The release of `registry`'s images tagged `tag`, driven with `kubectl`; helm's files
    /// go under `work`.
    pub fn new(
        repo: PathBuf,
        work: PathBuf,
        kubectl: Kubectl,
        registry: String,
        tag: String,
    ) -> Result<Release, String> {
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        Ok(Release {
            helm: helm_path(&repo)?,
            repo,
            work,
            kubectl,
            registry,
            tag,
        })
    }

    pub fn kubectl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.kubectl.run(&self.work, args, None)
    }

    pub fn kubectl_stdin<I, S>(&self, args: I, input: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.kubectl.run(&self.work, args, Some(input))
    }

    /// `helm ARGS` against the cluster, with what it printed.
    pub fn helm<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        // Helm's caches and config stay inside the run's directory.
        let (cache, config, data) = (
            self.work.join("helm/cache"),
            self.work.join("helm/config"),
            self.work.join("helm/data"),
        );
        let env: [(&str, &std::ffi::OsStr); 4] = [
            ("KUBECONFIG", self.kubectl.kubeconfig.as_os_str()),
            ("HELM_CACHE_HOME", cache.as_os_str()),
            ("HELM_CONFIG_HOME", config.as_os_str()),
            ("HELM_DATA_HOME", data.as_os_str()),
        ];
        run_program("helm", &self.helm, &self.repo, &args, &env, None)
    }

    /// The `--set` arguments every install of this suite gives: the images under test, and
    /// the local registry's plain HTTP for the operator's scans.
    fn base_values(&self) -> Vec<String> {
        vec![
            format!("image.registry={}", self.registry),
            format!("image.tag={}", self.tag),
            format!("scan.insecureRegistries={{{}}}", self.registry),
        ]
    }

    /// `helm upgrade --install` with exactly these values over the defaults (values from an
    /// earlier call are not kept), waiting until every pod is Ready. Returns helm's output
    /// and how long it took.
    pub fn install(&self, values: Values) -> Result<Output, String> {
        self.install_with(None, values)
    }

    /// [`Release::install`] with a values file under the `--set` pairs.
    pub fn install_with(&self, file: Option<&Path>, values: Values) -> Result<Output, String> {
        let mut args: Vec<String> = [
            "upgrade",
            "--install",
            RELEASE,
            "charts/palisade",
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--reset-values",
            "--wait",
            "--timeout",
            "4m",
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(file) = file {
            args.push("--values".into());
            args.push(file.display().to_string());
        }
        for v in self
            .base_values()
            .into_iter()
            .chain(values.iter().map(|(k, v)| format!("{k}={v}")))
        {
            args.push("--set".into());
            args.push(v);
        }
        let out = self.helm(&args);
        if out.success() {
            Ok(out)
        } else {
            Err(format!(
                "{out}\n--- pods ---\n{}",
                self.kubectl(["-n", NAMESPACE, "get", "pods", "-o", "wide"])
            ))
        }
    }

    pub fn uninstall(&self) -> Output {
        self.helm([
            "uninstall",
            RELEASE,
            "--namespace",
            NAMESPACE,
            "--wait",
            "--timeout",
            "2m",
        ])
    }

    /// Wait until the operator has registered the webhook by the chart's Service, with a
    /// caBundle. Returns the registration.
    pub fn wait_registered(&self, within: Duration) -> Result<serde_json::Value, String> {
        let deadline = Instant::now() + within;
        loop {
            let out = self.kubectl([
                "get",
                "validatingwebhookconfiguration",
                RELEASE,
                "-o",
                "json",
            ]);
            let problem = if out.success() {
                match serde_json::from_str::<serde_json::Value>(&out.stdout) {
                    Ok(vwc) => match registration_problem(&vwc) {
                        None => return Ok(vwc),
                        Some(p) => p,
                    },
                    Err(e) => format!("{e}: {out}"),
                }
            } else {
                out.to_string()
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "no registration by Service {NAMESPACE}/{WEBHOOK_SERVICE} after {within:?}: {problem}\n--- operator log ---\n{}",
                    self.kubectl([
                        "-n",
                        NAMESPACE,
                        "logs",
                        "deploy/palisade-operator",
                        "--tail=30"
                    ])
                ));
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    /// Names of the chart's pods with their phase and readiness, for messages.
    pub fn pods(&self) -> String {
        self.kubectl(["-n", NAMESPACE, "get", "pods", "-o", "wide"])
            .stdout
    }
}

/// The pods of one component, the Deployments' replicas and what they serve.
impl Release {
    /// `component`'s pods that are not being deleted, as JSON objects.
    pub fn component_pods(&self, component: &str) -> Result<Vec<serde_json::Value>, String> {
        let out = self.kubectl([
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            &selector(component),
            "-o",
            "json",
        ]);
        if !out.success() {
            return Err(out.to_string());
        }
        let list: serde_json::Value =
            serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {out}"))?;
        Ok(list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Names of `component`'s pods that are Running and not being deleted.
    pub fn running_pods(&self, component: &str) -> Result<Vec<String>, String> {
        Ok(self
            .component_pods(component)?
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Scale `component`'s Deployment to `replicas` and wait until that many pods are
    /// Ready (0: until none is left).
    pub fn scale(&self, component: &str, replicas: u32) -> Result<(), String> {
        let deployment = format!("deployment/{RELEASE}-{component}");
        let out = self.kubectl([
            "-n",
            NAMESPACE,
            "scale",
            &deployment,
            &format!("--replicas={replicas}"),
        ]);
        if !out.success() {
            return Err(out.to_string());
        }
        if replicas > 0 {
            let out = self.kubectl([
                "-n",
                NAMESPACE,
                "rollout",
                "status",
                &deployment,
                "--timeout=180s",
            ]);
            return if out.success() {
                Ok(())
            } else {
                Err(format!("{out}\n--- pods ---\n{}", self.pods()))
            };
        }
        self.wait_no_pods(component)
    }

    /// Wait until `component` has no pod at all, terminating ones included.
    pub fn wait_no_pods(&self, component: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = self.kubectl([
                "-n",
                NAMESPACE,
                "get",
                "pods",
                "-l",
                &selector(component),
                "-o",
                "name",
            ]);
            if out.success() && out.stdout.trim().is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{component} pods still there after 90s:\n{out}"));
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// The Deployment's `spec.replicas` and `status.readyReplicas`.
    pub fn replicas(&self, component: &str) -> Result<(u32, u32), String> {
        let out = self.kubectl([
            "-n",
            NAMESPACE,
            "get",
            &format!("deployment/{RELEASE}-{component}"),
            "-o",
            "jsonpath={.spec.replicas} {.status.readyReplicas}",
        ]);
        if !out.success() {
            return Err(out.to_string());
        }
        let mut fields = out
            .stdout
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0));
        Ok((fields.next().unwrap_or(0), fields.next().unwrap_or(0)))
    }

    /// `GET path` on `pod`'s plain-HTTP `port`, through the API server's pod proxy (the
    /// test runner need not reach pod IPs).
    pub fn pod_get(&self, pod: &str, port: u16, path: &str) -> Result<String, String> {
        let out = self.kubectl([
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NAMESPACE}/pods/{pod}:{port}/proxy{path}"),
        ]);
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    }

    /// The name of the operator pod holding the leader Lease.
    pub fn operator_leader(&self) -> Result<String, String> {
        let out = self.kubectl([
            "-n",
            NAMESPACE,
            "get",
            "lease",
            OPERATOR_LEASE,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        let holder = out.stdout.trim();
        if !out.success() || holder.is_empty() {
            return Err(format!("no leader: {out}"));
        }
        Ok(holder.to_owned())
    }

    /// The last `lines` log lines of each of `component`'s pods, each line prefixed with
    /// its pod.
    pub fn logs(&self, component: &str, lines: usize) -> String {
        let out = self.kubectl([
            "-n",
            NAMESPACE,
            "logs",
            "-l",
            &selector(component),
            "--prefix",
            "--max-log-requests=10",
            &format!("--tail={lines}"),
        ]);
        if out.success() {
            out.stdout
        } else {
            out.to_string()
        }
    }
}

/// The label selector of `component`'s pods.
pub fn selector(component: &str) -> String {
    format!("app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}")
}

/// What is wrong with a registration that should name the chart's Service (None: nothing).
pub fn registration_problem(vwc: &serde_json::Value) -> Option<String> {
    let hooks = vwc["webhooks"].as_array()?;
    for name in ["pods.palisade.dev", "workloads.palisade.dev"] {
        let Some(hook) = hooks.iter().find(|h| h["name"] == name) else {
            return Some(format!("no webhook {name}"));
        };
        let svc = &hook["clientConfig"]["service"];
        if svc["namespace"] != NAMESPACE || svc["name"] != WEBHOOK_SERVICE {
            return Some(format!(
                "{name} calls {} instead of Service {NAMESPACE}/{WEBHOOK_SERVICE}",
                hook["clientConfig"]
            ));
        }
        if hook["clientConfig"]["caBundle"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return Some(format!("{name} has no caBundle"));
        }
    }
    None
}
