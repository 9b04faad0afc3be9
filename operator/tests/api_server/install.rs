//! The install: the chart renders as committed in `config/deploy/` and without drift, every
//! rendered object passes `kubectl apply --dry-run=server`, Palisade's own pods pass the
//! restricted profile, and the real `palisade-operator` and `palisade-webhook` binaries do
//! their whole job with nothing but the chart's ServiceAccounts and RBAC (run outside the
//! cluster with those accounts' tokens). Needs PALISADE_E2E_KUBECONFIG; the first test also
//! needs helm (`hack/helm.sh` fetches it).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{client_from, suffix};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use palisade_operator::audit::policy_report::PolicyReport;
use serde_json::{Value, json};

const CHART_NAMESPACE: &str = "palisade-system";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the operator crate is in the workspace")
        .to_path_buf()
}

fn kubeconfig_path() -> String {
    std::env::var("PALISADE_E2E_KUBECONFIG").expect("PALISADE_E2E_KUBECONFIG")
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `cargo build` one binary of the workspace and return its path.
fn build_binary(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "--message-format=json-render-diagnostics",
        ])
        .args(["-p", package, "--bin", bin])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "cargo build -p {package} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for {bin}"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl() -> Command {
    let bin = std::env::var("PALISADE_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut cmd = Command::new(bin);
    cmd.env("KUBECONFIG", kubeconfig_path());
    cmd
}

/// `1.20.2` of the API server.
async fn server_version(client: &Client) -> String {
    let info = client.apiserver_version().await.expect("server version");
    let v = info.git_version.trim_start_matches('v');
    // Drop build metadata such as `-eks-1234`: helm wants plain semver.
    v.split(['-', '+']).next().unwrap_or(v).to_string()
}

fn legacy(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major == 1 && minor < 21
}

async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>()}
    }))
    .expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn chart_renders_as_committed_and_applies() {
    let client = client_from(&kubeconfig_path()).await;
    let repo = repo();
    let helm = run(Command::new(repo.join("hack/helm.sh")).arg("--path"))
        .trim()
        .to_string();
    let tmp = std::env::temp_dir().join(format!("palisade-render-{}", suffix()));

    // The committed plain manifests are what the chart renders, every time.
    for round in ["a", "b"] {
        let out = tmp.join(round);
        run(Command::new(repo.join("config/deploy/render.sh")).arg(&out));
        for file in ["palisade.yaml", "palisade-kube-1.20.yaml"] {
            let fresh = std::fs::read_to_string(out.join(file)).expect("rendered");
            let committed = std::fs::read_to_string(repo.join("config/deploy").join(file))
                .expect("committed manifest");
            assert!(
                fresh == committed,
                "config/deploy/{file} differs from the chart: run `make deploy` and commit"
            );
        }
    }

    let version = server_version(&client).await;
    let ns = format!("palisade-render-{}", suffix());
    create_namespace(&client, &ns, &[]).await;
    let values = repo.join("charts/palisade/ci/non-default-values.yaml");
    let mut checked = Vec::new();
    for (name, extra) in [
        ("default", Vec::<String>::new()),
        (
            "non-default",
            vec!["-f".into(), values.display().to_string()],
        ),
    ] {
        let render = || {
            run(Command::new(&helm)
                .args([
                    "template",
                    "palisade",
                    "charts/palisade",
                    "--namespace",
                    &ns,
                ])
                .args(["--include-crds", "--kube-version", &version])
                .args(&extra)
                .current_dir(&repo))
        };
        let first = render();
        assert_eq!(first, render(), "{name} values: two renders differ");
        for forbidden in ["randAlphaNum", "genCA", "BEGIN CERTIFICATE"] {
            assert!(!first.contains(forbidden), "{name}: renders {forbidden}");
        }
        let file = tmp.join(format!("{name}.yaml"));
        std::fs::write(&file, &first).expect("write render");
        let applied = run(kubectl()
            .args(["apply", "--dry-run=server", "-f"])
            .arg(&file));
        for kind in [
            "deployment.apps/palisade-operator",
            "deployment.apps/palisade-webhook",
            "service/palisade-webhook",
            "poddisruptionbudget.policy/palisade-webhook",
            "clusterrole.rbac.authorization.k8s.io/palisade-operator",
        ] {
            assert!(
                applied.contains(kind),
                "{name}: dry run did not apply {kind}:\n{applied}"
            );
        }
        checked.push(file);
    }
    // The cert-manager variant renders its issuers and certificate (its CRDs are not on the
    // test cluster, so no dry run).
    let cert_manager = run(Command::new(&helm)
        .args(["template", "palisade", "charts/palisade"])
        .args([
            "--set",
            "certs.external=true,certs.certManager.enabled=true",
        ])
        .current_dir(&repo));
    let top_level = |kind: &str| cert_manager.lines().filter(|l| *l == kind).count();
    assert_eq!(top_level("kind: Certificate"), 2);
    assert_eq!(top_level("kind: Issuer"), 2);

    // Palisade's own pods pass the restricted profile, judged by Palisade.
    let policy = tmp.join("restricted.yaml");
    std::fs::write(
        &policy,
        "apiVersion: palisade.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: restricted}\n\
         spec:\n  mode: Enforce\n  podSecurity: {level: restricted, version: latest}\n",
    )
    .expect("write policy");
    let cli = build_binary("palisade-cli", "palisade");
    for file in checked {
        let printed = run(Command::new(&cli)
            .args(["check", "-f"])
            .arg(&file)
            .arg("-p")
            .arg(&policy));
        assert!(
            printed.contains("deployment.apps/palisade-operator admitted")
                && printed.contains("deployment.apps/palisade-webhook admitted")
                && printed.contains("0 denied"),
            "{}: {printed}",
            file.display()
        );
    }
    delete_namespace(&client, &ns).await;
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The chart's ServiceAccounts and RBAC, moved to `ns` and with cluster-wide names of this
/// run, so that they clash with nothing else on the cluster.
fn chart_rbac(manifest: &str, ns: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(manifest).expect("manifest parses");
    let rename = |name: &str| format!("{ns}-{}", name.trim_start_matches("palisade-"));
    let mut out = Vec::new();
    for mut doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        if ![
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ]
        .contains(&kind.as_str())
        {
            continue;
        }
        let meta = &mut doc["metadata"];
        let in_default = meta["namespace"] == "default";
        if meta["namespace"] == CHART_NAMESPACE {
            meta["namespace"] = ns.into();
        }
        if kind.starts_with("Cluster") || in_default {
            let name = rename(meta["name"].as_str().unwrap_or_default());
            meta["name"] = name.into();
        }
        if kind.ends_with("Binding") && (kind.starts_with("Cluster") || in_default) {
            let name = rename(doc["roleRef"]["name"].as_str().unwrap_or_default());
            doc["roleRef"]["name"] = name.into();
        }
        if let Some(subjects) = doc.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                s["namespace"] = ns.into();
            }
        }
        out.push(doc);
    }
    out
}

fn resource_of(doc: &Value) -> (ApiResource, bool) {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = format!("{}s", kind.to_lowercase());
    let gvk = GroupVersionKind::gvk(group, version, kind);
    (
        ApiResource::from_gvk_with_plural(&gvk, &plural),
        !kind.starts_with("Cluster") && kind != "CustomResourceDefinition",
    )
}

async fn apply(client: &Client, doc: &Value) {
    let (resource, namespaced) = resource_of(doc);
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = if namespaced {
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or_default();
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    api.patch(
        name,
        &PatchParams::apply("palisade-install-test").force(),
        &Patch::Apply(doc),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {} {name}: {e}", resource.kind));
}

async fn delete(client: &Client, doc: &Value) {
    let (resource, namespaced) = resource_of(doc);
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = if namespaced {
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or_default();
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Poll `check` until it gives a value, or fail with `what` after `secs`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, logs: &[&Path], mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = logs
                .iter()
                .map(|p| {
                    let text = std::fs::read_to_string(p).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let start = lines.len().saturating_sub(30);
                    format!("--- {}\n{}", p.display(), lines[start..].join("\n"))
                })
                .collect();
            panic!("{what}: not within {secs}s\n{}", tails.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A kubeconfig that authenticates as `sa` in `ns` with a token Secret the token controller
/// fills (works on every version, also where no token Secrets are made by default).
async fn service_account_kubeconfig(client: &Client, ns: &str, sa: &str, dir: &Path) -> PathBuf {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let name = format!("{sa}-install-test-token");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": sa}},
        "type": "kubernetes.io/service-account-token",
    }))
    .expect("secret");
    // The ServiceAccount must exist first, or the token controller deletes the Secret.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    eventually(&format!("ServiceAccount {sa}"), 30, &[], || async {
        accounts.get_opt(sa).await.ok().flatten()
    })
    .await;
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create token Secret");
    let token = eventually(&format!("token of {sa}"), 60, &[], || async {
        let s = secrets.get_opt(&name).await.ok().flatten()?;
        let token = s.data?.get("token")?.0.clone();
        String::from_utf8(token).ok().filter(|t| !t.is_empty())
    })
    .await;
    let admin = kube::config::Kubeconfig::read_from(kubeconfig_path()).expect("kubeconfig");
    let context = admin
        .current_context
        .as_ref()
        .and_then(|c| admin.contexts.iter().find(|n| &n.name == c))
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == context)
        .or(admin.clusters.first())
        .and_then(|c| c.cluster.clone())
        .expect("a cluster in the kubeconfig");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": sa}}],
        "current-context": "c",
    });
    let path = dir.join(format!("{sa}.kubeconfig"));
    std::fs::write(&path, config.to_string()).expect("write kubeconfig");
    path
}

/// Children killed (by their own handles) when the test ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(bin: &Path, args: &[String], kubeconfig: &Path, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars() {
        if key.starts_with("PALISADE_") || key == "POD_NAMESPACE" || key == "POD_NAME" {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
}

/// Status code of GET http://127.0.0.1:port/path, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = String::new();
    stream.read_to_string(&mut head).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn operator_and_webhook_run_with_the_chart_rbac() {
    let client = client_from(&kubeconfig_path()).await;
    let id = suffix();
    let ns = format!("palisade-install-{id}");
    let apps = format!("palisade-install-apps-{id}");
    let policy_name = format!("palisade-install-{id}");
    let dir = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(&dir).expect("temp dir");

    // The chart's RBAC as rendered for this server's version.
    let file = if legacy(&server_version(&client).await) {
        "palisade-kube-1.20.yaml"
    } else {
        "palisade.yaml"
    };
    let manifest =
        std::fs::read_to_string(repo().join("config/deploy").join(file)).expect("manifest");
    let rbac = chart_rbac(&manifest, &ns);
    assert!(rbac.len() >= 10, "RBAC objects found: {}", rbac.len());

    create_namespace(&client, &ns, &[]).await;
    create_namespace(&client, &apps, &[("palisade.dev/install-test", &id)]).await;
    // A running workload that breaks the policy: the audit must report it.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "privileged", "namespace": apps},
        "spec": {"automountServiceAccountToken": false,
                 "containers": [{"name": "c", "image": "registry.example/app:1",
                                 "securityContext": {"privileged": true}}]},
    }))
    .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &apps);
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    // The chart's CRD, served before a SecurityPolicy is made.
    let docs: Vec<Value> = serde_saphyr::from_multiple(&manifest).expect("manifest parses");
    for crd in docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
    {
        apply(&client, crd).await;
    }
    let policies = Api::<DynamicObject>::all_with(
        client.clone(),
        &palisade_operator::controllers::security_policy::resource(),
    );
    eventually("the SecurityPolicy CRD served", 60, &[], || async {
        policies.list(&Default::default()).await.ok().map(|_| ())
    })
    .await;
    let policy: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "SecurityPolicy",
        "metadata": {"name": policy_name},
        "spec": {
            "mode": "Enforce",
            "match": {"namespaceSelector": {"matchLabels": {"palisade.dev/install-test": id}}},
            "podSecurity": {"level": "restricted", "version": "latest"},
        },
    }))
    .expect("policy");
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("create SecurityPolicy");
    for doc in &rbac {
        apply(&client, doc).await;
    }

    let webhook_port = free_port();
    let outcome = exercise(&client, &ns, &apps, &policy_name, &dir, webhook_port).await;

    // Clean up what this test made, whatever happened.
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    if let Ok(Some(vwc)) = vwcs.get_opt("palisade").await {
        let ours = vwc.webhooks.iter().flatten().any(|w| {
            w.client_config
                .url
                .as_deref()
                .is_some_and(|u| u.starts_with(&format!("https://127.0.0.1:{webhook_port}/")))
        });
        if ours {
            let _ = vwcs.delete("palisade", &DeleteParams::default()).await;
        }
    }
    let _ = policies
        .delete(&policy_name, &DeleteParams::default())
        .await;
    for doc in &rbac {
        delete(&client, doc).await;
    }
    delete_namespace(&client, &apps).await;
    delete_namespace(&client, &ns).await;
    if outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(e) = outcome {
        panic!("{e} (logs in {})", dir.display());
    }
}

async fn exercise(
    client: &Client,
    ns: &str,
    apps: &str,
    policy_name: &str,
    dir: &Path,
    webhook_port: u16,
) -> Result<(), String> {
    let operator_kubeconfig =
        service_account_kubeconfig(client, ns, "palisade-operator", dir).await;
    let webhook_kubeconfig = service_account_kubeconfig(client, ns, "palisade-webhook", dir).await;
    let cert_dir = dir.join("certs");
    let (operator_log, webhook_log) = (dir.join("operator.log"), dir.join("webhook.log"));
    let logs = [operator_log.as_path(), webhook_log.as_path()];
    let (operator_admin, webhook_admin) = (free_port(), free_port());
    let identity = format!("{ns}-operator");
    let arg = |s: &str| s.to_string();

    let mut children = Processes(Vec::new());
    children.0.push(spawn(
        Path::new(env!("CARGO_BIN_EXE_palisade-operator")),
        &[
            arg("--namespace"),
            arg(ns),
            format!("--admin-addr=127.0.0.1:{operator_admin}"),
            arg("--leader-elect=true"),
            format!("--leader-identity={identity}"),
            format!("--webhook-url=https://127.0.0.1:{webhook_port}"),
            format!("--cert-dir={}", cert_dir.display()),
            arg("--failure-policy=ignore"),
            arg("--audit-interval=1h"),
            // Scanning runs too (the chart grants its reads and writes), with a cache it can write.
            format!("--scan-cache-dir={}", dir.join("scan-cache").display()),
        ],
        &operator_kubeconfig,
        &operator_log,
    ));

    eventually("operator /readyz", 90, &logs, || async {
        (http_status(operator_admin, "/readyz") == Some(200)).then_some(())
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    eventually("the Lease held by the operator", 60, &logs, || async {
        let lease = leases.get_opt("palisade-operator").await.ok().flatten()?;
        (lease.spec?.holder_identity? == identity).then_some(())
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    eventually("the certificate Secret", 60, &logs, || async {
        let data = secrets
            .get_opt("palisade-webhook-tls")
            .await
            .ok()
            .flatten()?
            .data?;
        ["tls.crt", "tls.key", "ca.crt"]
            .iter()
            .all(|k| data.get(*k).is_some_and(|v| !v.0.is_empty()))
            .then_some(())
    })
    .await;
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    eventually("the webhook configuration", 60, &logs, || async {
        let vwc = vwcs.get_opt("palisade").await.ok().flatten()?;
        let hooks = vwc.webhooks?;
        hooks
            .iter()
            .all(|w| {
                w.client_config
                    .url
                    .as_deref()
                    .is_some_and(|u| u.starts_with(&format!("https://127.0.0.1:{webhook_port}/")))
                    && w.client_config
                        .ca_bundle
                        .as_ref()
                        .is_some_and(|b| !b.0.is_empty())
            })
            .then_some(())
    })
    .await;
    let policies = Api::<DynamicObject>::all_with(
        client.clone(),
        &palisade_operator::controllers::security_policy::resource(),
    );
    eventually("SecurityPolicy status Ready", 60, &logs, || async {
        let p = policies.get_opt(policy_name).await.ok().flatten()?;
        let conditions = p.data["status"]["conditions"].as_array()?.clone();
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    })
    .await;
    let reports: Api<PolicyReport> = Api::namespaced(client.clone(), apps);
    let report_name = palisade_operator::audit::report_name(apps);
    eventually("the PolicyReport of the audit", 90, &logs, || async {
        let report = reports.get_opt(&report_name).await.ok().flatten()?;
        let value = serde_json::to_value(&report).ok()?;
        (value["summary"]["fail"].as_i64()? >= 1).then_some(())
    })
    .await;

    // The webhook, with its own account, serving the certificate the operator wrote.
    let webhook = build_binary("palisade-webhook", "palisade-webhook");
    children.0.push(spawn(
        &webhook,
        &[
            format!("--addr=127.0.0.1:{webhook_port}"),
            format!("--admin-addr=127.0.0.1:{webhook_admin}"),
            format!("--tls-cert-file={}", cert_dir.join("tls.crt").display()),
            format!("--tls-key-file={}", cert_dir.join("tls.key").display()),
        ],
        &webhook_kubeconfig,
        &webhook_log,
    ));
    eventually("webhook /readyz", 60, &logs, || async {
        (http_status(webhook_admin, "/readyz") == Some(200)).then_some(())
    })
    .await;
    // The API server calls it: a privileged pod is refused by the policy (dry run: nothing
    // stays behind).
    let pods: Api<Pod> = Api::namespaced(client.clone(), apps);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "refused"},
        "spec": {"automountServiceAccountToken": false,
                 "containers": [{"name": "c", "image": "registry.example/app:1",
                                 "securityContext": {"privileged": true}}]},
    }))
    .map_err(|e| e.to_string())?;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let denial = eventually(
        "the webhook refusing a privileged pod",
        60,
        &logs,
        || async {
            match pods.create(&dry_run, &pod).await {
                Err(kube::Error::Api(s)) if s.message.contains(policy_name) => Some(s.message),
                _ => None,
            }
        },
    )
    .await;
    assert!(denial.contains("privileged"), "denial: {denial}");

    drop(children);
    for log in logs {
        let text = std::fs::read_to_string(log).map_err(|e| e.to_string())?;
        if let Some(line) = text
            .lines()
            .find(|l| l.to_ascii_lowercase().contains("forbidden"))
        {
            return Err(format!("{} says: {line}", log.display()));
        }
        if text.trim().is_empty() {
            return Err(format!("{} is empty", log.display()));
        }
    }
    Ok(())
}
