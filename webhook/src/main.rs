//! `palisade-webhook`: the HTTPS validating admission webhook.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use palisade_process::{LogFormat, init_logging, shutdown_signal};
use palisade_webhook::scans::GateConfig;
use palisade_webhook::server::{self, Options};
use palisade_webhook::tls::{self, TlsFiles};
use palisade_webhook::{
    AppState, ExemptLabelGuard, Metrics, NamespaceReader, PolicyStore, RuleDocs, ScanGate, error,
    namespaces,
};
use tracing::info;

/// Palisade's validating admission webhook: judges Pods and the workloads that template them
/// against SecurityPolicies, over HTTPS, from memory.
///
/// Policies come from the API server (SecurityPolicy objects, watched), unless --policy-file
/// or --policy-dir is given, in which case no API server is needed.
#[derive(Debug, Parser)]
#[command(name = "palisade-webhook", version)]
struct Args {
    /// Address of the HTTPS admission endpoint (/validate, /validate/pods, /validate/workloads,
    /// /validate/namespaces, /validate/policies).
    #[arg(long, env = "PALISADE_ADDR", default_value = "0.0.0.0:8443")]
    addr: SocketAddr,

    /// Address of the plain-HTTP admin endpoint (/livez, /readyz, /metrics).
    #[arg(long, env = "PALISADE_ADMIN_ADDR", default_value = "0.0.0.0:8081")]
    admin_addr: SocketAddr,

    /// PEM serving certificate (chain first). Reloaded when its content changes.
    #[arg(long, env = "PALISADE_TLS_CERT_FILE")]
    tls_cert_file: PathBuf,

    /// PEM private key of the serving certificate. Reloaded with the certificate.
    #[arg(long, env = "PALISADE_TLS_KEY_FILE")]
    tls_key_file: PathBuf,

    /// How often to check the certificate and key files for new content (e.g. 2s, 500ms).
    #[arg(long, env = "PALISADE_TLS_RELOAD_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    tls_reload_interval: Duration,

    /// A YAML or JSON file of SecurityPolicies to enforce instead of those in the cluster.
    /// Repeatable (comma-separated in the environment variable). Any error in a file stops
    /// start-up.
    #[arg(long, env = "PALISADE_POLICY_FILE", value_delimiter = ',')]
    policy_file: Vec<PathBuf>,

    /// A directory whose *.yaml, *.yml and *.json files hold SecurityPolicies to enforce
    /// instead of those in the cluster. Repeatable (comma-separated in the environment
    /// variable). Hidden entries, such as a mounted ConfigMap's `..data`, are skipped.
    #[arg(long, env = "PALISADE_POLICY_DIR", value_delimiter = ',')]
    policy_dir: Vec<PathBuf>,

    /// On SIGTERM, how long /readyz fails before the listeners close, so that the replica
    /// leaves the Service endpoints first.
    #[arg(long, env = "PALISADE_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    shutdown_delay: Duration,

    /// On SIGTERM, how long in-flight reviews may take once the listeners are closed.
    #[arg(long, env = "PALISADE_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,

    /// Where denials, warnings and reports link each rule's page: `<URL><rule-id>.md`. Point
    /// it at an internal mirror of docs/rules to keep developers inside your network.
    #[arg(long, env = "PALISADE_RULE_DOCS_URL", default_value = palisade_webhook::RULE_DOCS_DEFAULT)]
    rule_docs_url: String,

    /// How long a review may wait to read a namespace from the API server when the watch has
    /// not delivered it yet (a Namespace and its Pods applied together). Past it, policies
    /// that select namespaces by label refuse the request and ask to retry; nothing is
    /// decided as if the namespace had no labels.
    #[arg(long, env = "PALISADE_NAMESPACE_READ_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    namespace_read_timeout: Duration,

    /// Log format. The level is set with RUST_LOG (default: info).
    #[arg(long, env = "PALISADE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(flatten)]
    exempt: ExemptArgs,

    #[command(flatten)]
    scan: ScanArgs,
}

/// The image-scan gate: ScanPolicies judged from ImageScanReports (cluster mode only).
#[derive(Debug, clap::Args)]
struct ScanArgs {
    /// Judge images by ScanPolicies. `--scan-gate=false` judges SecurityPolicies only.
    #[arg(long, env = "PALISADE_SCAN_GATE", default_value_t = true, action = clap::ArgAction::Set)]
    scan_gate: bool,

    /// The longest a review waits for tag resolution and queued scans, whatever a
    /// ScanPolicy's scanWait says. Keep it below the webhook's timeoutSeconds.
    #[arg(long, env = "PALISADE_MAX_SCAN_WAIT", default_value = "3s", value_parser = parse_duration)]
    max_scan_wait: Duration,

    /// How long a tag's resolved digest is trusted before the registry is asked again.
    #[arg(long, env = "PALISADE_DIGEST_CACHE_TTL", default_value = "5m", value_parser = parse_duration)]
    digest_cache_ttl: Duration,

    /// A registry host reached over plain HTTP (loopback hosts always are). Repeatable; in
    /// the environment, comma-separated.
    #[arg(long, env = "PALISADE_SCAN_INSECURE_REGISTRIES", value_delimiter = ',')]
    scan_insecure_registry: Vec<String>,

    /// A PEM file of CA certificates trusted for registries, besides the public roots.
    #[arg(long, env = "PALISADE_SCAN_CA_FILE")]
    scan_ca_file: Option<PathBuf>,

    /// Resolve tags with the pod's pull Secrets, then its ServiceAccount's, before the
    /// ScanPolicies' registryCredentials, as the kubelet pulls (needs get on Secrets and
    /// ServiceAccounts). `--pod-pull-secrets=false`: registryCredentials only.
    #[arg(long, env = "PALISADE_POD_PULL_SECRETS", default_value_t = true, action = clap::ArgAction::Set)]
    pod_pull_secrets: bool,
}

impl ScanArgs {
    fn registry(&self) -> anyhow::Result<palisade_scanner::oci::RegistryClient> {
        let mut config = palisade_scanner::oci::ClientConfig {
            insecure_registries: self.scan_insecure_registry.clone(),
            // Resolution is bounded by --max-scan-wait; these bound each step of it.
            connect_timeout: self.max_scan_wait,
            read_timeout: self.max_scan_wait,
            ..Default::default()
        };
        if let Some(path) = &self.scan_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("--scan-ca-file {}", path.display()))?;
            config.extra_ca_pem.push(pem);
        }
        Ok(palisade_scanner::oci::RegistryClient::new(config)?)
    }
}

/// Who may carry the label palisade.dev/exempt (/validate/namespaces, the webhook
/// namespaces.palisade.dev that the operator registers on Kubernetes 1.20 and older). Give
/// the same --namespace and --exclude-namespace as the operator.
#[derive(Debug, clap::Args)]
struct ExemptArgs {
    /// Palisade's namespace (the operator's --namespace): it may carry the exempt label, as
    /// may kube-system.
    #[arg(long, env = "POD_NAMESPACE", default_value = namespaces::DEFAULT_NAMESPACE)]
    namespace: String,

    /// A namespace that may carry the exempt label: the operator's --exclude-namespace list.
    /// Repeatable; in the environment, comma-separated.
    #[arg(
        long = "exclude-namespace",
        env = "PALISADE_EXCLUDE_NAMESPACES",
        value_delimiter = ','
    )]
    exclude_namespaces: Vec<String>,

    /// The operator's service account in --namespace: its requests may always set the
    /// exempt label, so the operator is never refused. Empty to trust nobody.
    #[arg(
        long,
        env = "PALISADE_OPERATOR_SERVICE_ACCOUNT",
        default_value = namespaces::DEFAULT_OPERATOR_SERVICE_ACCOUNT
    )]
    operator_service_account: String,
}

impl ExemptArgs {
    fn guard(&self) -> ExemptLabelGuard {
        ExemptLabelGuard::new(&self.namespace, self.exclude_namespaces.iter().cloned())
            .trust_service_account(&self.namespace, &self.operator_service_account)
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: k8s_openapi::jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 2s or 500ms: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("{s:?} is negative"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %error::report(e.as_ref()), "palisade-webhook failed");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    tls::install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let mut gate_opt = None;
    let store = if args.policy_file.is_empty() && args.policy_dir.is_empty() {
        let client = kube::Client::try_default().await.context(
            "cannot reach the API server (give --policy-file or --policy-dir to run without one)",
        )?;
        let (store, driver) = PolicyStore::from_cluster(client.clone(), metrics.clone());
        let store = store.with_namespace_reader(NamespaceReader::new(
            client.clone(),
            args.namespace_read_timeout,
        ));
        tokio::spawn(driver);
        info!("watching SecurityPolicies and Namespaces");
        if args.scan.scan_gate {
            let config = GateConfig {
                max_wait: args.scan.max_scan_wait,
                digest_ttl: args.scan.digest_cache_ttl,
                namespace: args.exempt.namespace.clone(),
                pod_pull_secrets: args.scan.pod_pull_secrets,
                ..GateConfig::default()
            };
            let (gate, driver) = ScanGate::from_cluster(client, config, args.scan.registry()?);
            tokio::spawn(driver);
            info!(max_wait = ?args.scan.max_scan_wait, "watching ScanPolicies and ImageScanReports");
            gate_opt = Some(gate);
        }
        store
    } else {
        let store = PolicyStore::from_files(&args.policy_file, &args.policy_dir, metrics.clone())?;
        info!(
            policies = store.current().len(),
            "policies loaded from files"
        );
        store
    };
    let options = Options {
        addr: args.addr,
        admin_addr: args.admin_addr,
        tls: TlsFiles {
            cert: args.tls_cert_file,
            key: args.tls_key_file,
        },
        tls_reload_interval: args.tls_reload_interval,
        shutdown_delay: args.shutdown_delay,
        shutdown_grace: args.shutdown_grace,
    };
    let guard = args.exempt.guard();
    info!(
        namespaces = ?guard.allowed_namespaces().collect::<Vec<_>>(),
        trusted = ?guard.trusted_users().collect::<Vec<_>>(),
        "may carry the label {}", namespaces::EXEMPT_LABEL
    );
    let mut state = AppState::new(store, metrics)
        .with_exempt_label_guard(guard)
        .with_rule_docs(RuleDocs::new(&args.rule_docs_url));
    if let Some(gate) = gate_opt {
        state = state.with_scan_gate(gate);
    }
    let server = server::start(options, state).await?;
    server.run_until(shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exempt_label_flags_mirror_the_operator() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let base = [
            "palisade-webhook",
            "--tls-cert-file",
            "c",
            "--tls-key-file",
            "k",
        ];
        let a = Args::try_parse_from(base).expect("defaults");
        assert_eq!(a.exempt.guard(), ExemptLabelGuard::default());
        let a = Args::try_parse_from(base.into_iter().chain([
            "--namespace",
            "security",
            "--exclude-namespace",
            "monitoring",
            "--exclude-namespace",
            "logging",
            "--operator-service-account",
            "",
        ]))
        .expect("parses");
        let g = a.exempt.guard();
        assert_eq!(
            g.allowed_namespaces().collect::<Vec<_>>(),
            ["kube-system", "logging", "monitoring", "security"]
        );
        assert_eq!(g.trusted_users().count(), 0);
    }
}
