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

impl Release {
    /// From the environment (see the module doc). Fails, naming what is missing.
    pub fn from_env() -> Result<Release, String> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("the e2e crate has no parent directory")?
            .to_owned();
        let kubeconfig = PathBuf::from(required("PALISADE_E2E_KUBECONFIG")?);
        let registry = required("PALISADE_E2E_REGISTRY")?;
        let tag = required("PALISADE_E2E_IMAGE_TAG")?;
        let target = repo.join("target");
        let work = target.join("e2e/installed");
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        let helm = Command::new(repo.join("hack/helm.sh"))
            .arg("--path")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("hack/helm.sh: {e}"))?;
        if !helm.status.success() {
            return Err("hack/helm.sh --path failed".into());
        }
        let helm = PathBuf::from(String::from_utf8_lossy(&helm.stdout).trim());
        let kubectl = Kubectl {
            program: std::env::var_os("PALISADE_KUBECTL")
                .map(PathBuf::from)
                .unwrap_or_else(|| "kubectl".into()),
            kubeconfig,
            cache_dir: target.join("e2e/kube-cache-installed"),
        };
        Ok(Release {
            repo,
            work,
            kubectl,
            helm,
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
