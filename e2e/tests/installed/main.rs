//! Palisade installed by its Helm chart, in pods on the cluster's real node, from the images
//! `make images` built (see `palisade_e2e::install`). The tests share one release and run
//! one at a time: each starts by installing the values it needs.

mod disruption;
mod host_network;
mod images;
mod install;
mod uninstall;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use palisade_e2e::install::{NAMESPACE, Release};
use palisade_e2e::kubectl::Output;

/// Every object the tests create carries it.
pub const E2E_LABEL: &str = "palisade.dev/e2e";
/// The namespace the tests' workloads go to, under [`POLICY`].
pub const WORKLOADS: &str = "installed-e2e";
/// An Enforce policy (restricted) over [`WORKLOADS`].
pub const POLICY: &str = "installed-e2e-restricted";

pub fn release() -> &'static Release {
    static RELEASE: OnceLock<Result<Release, String>> = OnceLock::new();
    match RELEASE.get_or_init(Release::from_env) {
        Ok(r) => r,
        Err(e) => panic!("the installed e2e tests cannot start:\n{e}"),
    }
}

/// One test at a time: they share the release.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[track_caller]
pub fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => {
                panic!("{what}: not within {within:?}; last: {e}")
            }
            Err(_) => thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Wait until `kubectl ARGS` (a `get` of one object) finds nothing.
#[track_caller]
pub fn wait_gone(r: &Release, what: &str, get: &[&str]) {
    let mut args = get.to_vec();
    args.extend(["--ignore-not-found", "-o", "name"]);
    eventually(what, Duration::from_secs(60), || {
        let out = r.kubectl(&args);
        if out.stdout.trim().is_empty() {
            Ok(())
        } else {
            Err(out.to_string())
        }
    });
}

/// The chart with `values`, registered and judging [`WORKLOADS`] under [`POLICY`].
pub fn installed(values: palisade_e2e::install::Values) -> &'static Release {
    let r = release();
    r.install(values).unwrap_or_else(|e| panic!("{e}"));
    r.wait_registered(Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    workloads_under_policy(r);
    r
}

/// The namespace and the policy, then wait until the webhook refuses there.
pub fn workloads_under_policy(r: &Release) {
    let manifest = format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {WORKLOADS}
  labels:
    {E2E_LABEL}: "true"
---
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: {POLICY}
  labels:
    {E2E_LABEL}: "true"
spec:
  mode: Enforce
  match:
    namespaces: [{WORKLOADS}]
  podSecurity:
    level: restricted
"#
    );
    r.kubectl_stdin(["apply", "-f", "-"], &manifest).ok();
    eventually(
        "the default ServiceAccount's token (pods are refused before it)",
        Duration::from_secs(60),
        || {
            let out = r.kubectl([
                "-n",
                WORKLOADS,
                "get",
                "serviceaccount",
                "default",
                "-o",
                "jsonpath={.secrets[0].name}",
            ]);
            if out.success() && !out.stdout.trim().is_empty() {
                Ok(())
            } else {
                Err(out.to_string())
            }
        },
    );
    eventually(
        "the webhook pods know the policy",
        Duration::from_secs(60),
        || {
            let out = create(r, &pod("probe", true), &["--dry-run=server"]);
            if denied(&out) {
                Ok(())
            } else {
                Err(out.to_string())
            }
        },
    );
}

/// A pod in [`WORKLOADS`] that never runs (no node matches it): admission is all it meets.
/// `privileged`: one the policy refuses; otherwise one that passes `restricted`.
pub fn pod(name: &str, privileged: bool) -> String {
    let security = if privileged {
        "securityContext: {privileged: true}".to_owned()
    } else {
        "securityContext: {runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}".to_owned()
    };
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  generateName: {name}-
  namespace: {WORKLOADS}
  labels:
    {E2E_LABEL}: "true"
spec:
  nodeSelector:
    palisade.dev/e2e-no-such-node: "true"
  containers:
    - name: app
      image: registry.example.com/app:1.0
      {security}
"#
    )
}

pub fn create(r: &Release, manifest: &str, extra: &[&str]) -> Output {
    let mut args = vec!["create", "-f", "-"];
    args.extend_from_slice(extra);
    r.kubectl_stdin(args, manifest)
}

/// The refusal a developer sees for a privileged container under [`POLICY`].
pub fn denied(out: &Output) -> bool {
    !out.success()
        && out
            .stderr
            .contains(r#"admission webhook "pods.palisade.dev" denied the request"#)
        && out.stderr.contains(&format!(
            r#"SecurityPolicy/{POLICY}: container "app": securityContext.privileged=true is not allowed"#
        ))
}

/// The webhook pods, by name, with their readiness.
pub fn webhook_pods(r: &Release) -> Vec<(String, bool)> {
    let out = r.kubectl([
        "-n",
        NAMESPACE,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=webhook",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}"#,
    ]);
    out.stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_owned();
            let ready = f.next() == Some("True");
            let deleting = f.next().is_some();
            (!deleting).then_some((name, ready))
        })
        .collect()
}
