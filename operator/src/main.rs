//! `palisade-operator`: SecurityPolicy status, webhook registration and certificates, under
//! leader election, with probes and metrics on the admin port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{ArgAction, Parser, ValueEnum};
use palisade_kube_plumbing::lease::{self, Health, Role};
use palisade_kube_plumbing::{admin, shutdown};
use palisade_operator::admin::OperatorProbes;
use palisade_operator::agent::daemonset::AgentSettings;
use palisade_operator::certs::registration;
use palisade_operator::controllers::{scan_policy, security_policy};
use palisade_operator::metrics::Metrics;
use palisade_operator::scanning::ScanDb;
use palisade_operator::scanning::files::ReportFiles;
use palisade_operator::scanning::serve::{Leader, ReportsApi};
use palisade_operator::{LEASE_NAME, agent, audit, certs, error, scanning};
use palisade_process::{LogFormat, init_logging, shutdown_signal};
use palisade_scanner::oci::{ClientConfig, Platform, RegistryClient};
use palisade_scanner::osv::store::{Source, Store};
use tokio::sync::watch;
use tracing::info;

/// The Palisade operator: keeps SecurityPolicy status true (and the last valid generation in
/// force), registers the admission webhook and manages its certificates.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The operator's namespace: its leader Lease, the certificate Secret and the webhook
    /// Service live here, and the webhook never judges it.
    #[arg(long, env = "POD_NAMESPACE", default_value = "palisade-system")]
    namespace: String,

    /// Address of the plain-HTTP admin server: /livez, /readyz, /metrics.
    #[arg(long, env = "PALISADE_ADMIN_ADDR", default_value = "0.0.0.0:8082")]
    admin_addr: SocketAddr,

    /// Run controllers only while holding the Lease `palisade-operator` in --namespace, so
    /// that several replicas are safe. `--leader-elect=false` for a single local process.
    #[arg(long, env = "PALISADE_LEADER_ELECT", default_value_t = true, action = ArgAction::Set)]
    leader_elect: bool,

    /// This replica's identity in the election (default: POD_NAME, else host and pid).
    #[arg(long, env = "PALISADE_LEADER_IDENTITY")]
    leader_identity: Option<String>,

    /// Log format. The level is set with RUST_LOG (default: info).
    #[arg(long, env = "PALISADE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(flatten)]
    webhook: WebhookArgs,

    #[command(flatten)]
    audit: AuditArgs,

    #[command(flatten)]
    scan: ScanArgs,

    /// The node agent's DaemonSet, as JSON (the chart's `agent.*` values: image, resources,
    /// tolerations, priorityClassName, args, …). The operator keeps that DaemonSet in
    /// --namespace and writes each SecurityPolicy's RuntimeSensors condition. Unset: no
    /// agent, and a DaemonSet the operator made before is deleted.
    #[arg(long, value_name = "JSON", env = "PALISADE_AGENT")]
    agent: Option<String>,
}

/// Image scanning: ImageScanReports filled in the background.
#[derive(Debug, clap::Args)]
struct ScanArgs {
    /// Scan images at all. `--scanning=false` turns off the database, the ImageScanReport
    /// controller and the running-images watcher.
    #[arg(long, env = "PALISADE_SCANNING", default_value_t = true, action = ArgAction::Set)]
    scanning: bool,

    /// Vulnerability database: a base URL serving `<ecosystem>/all.zip` (OSV's export
    /// layout; a mirror for air-gapped sites) or a directory with the same layout.
    #[arg(long, value_name = "PATH|URL", env = "PALISADE_SCAN_DB", default_value = DEFAULT_DB)]
    scan_db: String,

    /// An ecosystem read from a yum/dnf repository's updateinfo.xml instead of an OSV export
    /// (repeatable; in the environment, comma-separated). The location is an http(s) URL or
    /// a path naming the document (.xml, .xml.gz, .xml.zst), a repository (its base, whose
    /// repodata/repomd.xml names the document) or a mirror.list (the first repository that
    /// works). Replaces the built-in source of that ecosystem: Amazon Linux 2 and 2023 read
    /// their x86_64 core repositories' mirror lists on cdn.amazonlinux.com.
    #[arg(
        long = "scan-updateinfo",
        value_name = "ECOSYSTEM=URL|PATH",
        env = "PALISADE_SCAN_UPDATEINFO",
        value_delimiter = ',',
        value_parser = palisade_scanner::updateinfo::parse_source
    )]
    scan_updateinfo: Vec<(String, String)>,

    /// Cache directory: the database exports (osv/), image inventories (inventories/) and
    /// the full findings of each report (reports/<report name>.json).
    #[arg(
        long,
        value_name = "DIR",
        env = "PALISADE_SCAN_CACHE_DIR",
        default_value = "/var/cache/palisade"
    )]
    scan_cache_dir: PathBuf,

    /// Time between two checks for newer database exports (e.g. 30m, 6h). Reports matched
    /// against an export that changed are matched again.
    #[arg(long, env = "PALISADE_SCAN_DB_REFRESH", default_value = "6h", value_parser = parse_interval)]
    scan_db_refresh: std::time::Duration,

    /// At most this many image scans at a time.
    #[arg(long, env = "PALISADE_SCAN_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..))]
    scan_concurrency: u16,

    /// Scan an image again when its report is older than this (e.g. 12h, 24h). A
    /// ScanPolicy's shorter spec.maxReportAge wins.
    #[arg(long, env = "PALISADE_SCAN_MAX_REPORT_AGE", default_value = "24h", value_parser = parse_interval)]
    scan_max_report_age: std::time::Duration,

    /// A registry host reached over plain HTTP (repeatable; in the environment,
    /// comma-separated). Loopback hosts always are.
    #[arg(
        long = "scan-insecure-registry",
        value_name = "HOST[:PORT]",
        env = "PALISADE_SCAN_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    scan_insecure_registries: Vec<String>,

    /// Extra CA certificates (PEM) to trust for registries and the database.
    #[arg(long, value_name = "FILE", env = "PALISADE_SCAN_CA_FILE")]
    scan_ca_file: Option<PathBuf>,

    /// Create an ImageScanReport for every image that pods run (outside the namespaces the
    /// webhook never judges), so that what already runs gets scanned.
    #[arg(long, env = "PALISADE_SCAN_RUNNING_IMAGES", default_value_t = true, action = ArgAction::Set)]
    scan_running_images: bool,
}

/// The public OSV exports: `<base>/<ecosystem>/all.zip`.
const DEFAULT_DB: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// The registry client and database of --scan-*; `None` with --scanning=false.
fn scan_setup(
    args: &ScanArgs,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<(RegistryClient, Arc<ScanDb>)>> {
    if !args.scanning {
        info!("image scanning off");
        return Ok(None);
    }
    let mut extra_ca_pem = Vec::new();
    if let Some(path) = &args.scan_ca_file {
        extra_ca_pem.push(
            std::fs::read(path).with_context(|| format!("--scan-ca-file {}", path.display()))?,
        );
    }
    let registry = RegistryClient::new(ClientConfig {
        insecure_registries: args.scan_insecure_registries.clone(),
        extra_ca_pem,
        ..ClientConfig::default()
    })
    .context("building the registry client")?;
    let source = if args.scan_db.starts_with("http://") || args.scan_db.starts_with("https://") {
        Source::Url(args.scan_db.trim_end_matches('/').to_owned())
    } else {
        let dir = PathBuf::from(&args.scan_db);
        if !dir.is_dir() {
            anyhow::bail!(
                "--scan-db {}: not a directory or an http(s) URL",
                args.scan_db
            );
        }
        Source::Dir(dir)
    };
    let mut store = Store::new(
        source,
        args.scan_cache_dir.join("osv"),
        registry.http_client(),
    );
    for (ecosystem, location) in &args.scan_updateinfo {
        store = store.with_updateinfo(ecosystem, location);
    }
    for (ecosystem, location) in store.updateinfo_sources() {
        info!(%ecosystem, %location, "advisories from updateinfo");
    }
    info!(db = %args.scan_db, cache_dir = %args.scan_cache_dir.display(), "image scanning on");
    Ok(Some((
        registry,
        Arc::new(ScanDb::new(store, metrics.clone())),
    )))
}

/// The background audit of what already runs.
#[derive(Debug, clap::Args)]
struct AuditArgs {
    /// Time between two background audits with no policy change (e.g. 30s, 10m, 1h). Every
    /// SecurityPolicy or ScanPolicy change triggers one as well.
    #[arg(long, env = "PALISADE_AUDIT_INTERVAL", default_value = "10m", value_parser = parse_interval)]
    audit_interval: std::time::Duration,

    /// At most this many results per PolicyReport, most severe first; the summary counts all.
    #[arg(long, env = "PALISADE_AUDIT_MAX_RESULTS", default_value_t = 100)]
    audit_max_results: usize,

    /// Create the wgpolicyk8s.io PolicyReport CRDs when the cluster has none.
    #[arg(long, env = "PALISADE_INSTALL_POLICY_REPORT_CRDS", default_value_t = true, action = ArgAction::Set)]
    install_policy_report_crds: bool,

    /// Where PolicyReport results link each rule's page: `<URL><rule-id>.md` (the webhook's
    /// --rule-docs-url; the chart sets both from ruleDocsUrl).
    #[arg(long, env = "PALISADE_RULE_DOCS_URL", default_value = palisade_policy::DEFAULT_RULE_DOCS)]
    rule_docs_url: String,
}

/// `90s`, `10m`, `1h`, `1h30m` (at least one second).
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("{text:?} is not a duration like 30s, 10m or 1h: {e}"))?;
    let d = std::time::Duration::try_from(d).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(1) {
        return Err("the interval must be at least 1s".into());
    }
    Ok(d)
}

/// How the API server reaches the webhook, and its certificates.
#[derive(Debug, clap::Args)]
struct WebhookArgs {
    /// Register the webhook with this URL (clientConfig.url), for a webhook running outside
    /// the cluster, e.g. https://127.0.0.1:8443 with `make run`. Exclusive with
    /// --webhook-service.
    #[arg(long, env = "PALISADE_WEBHOOK_URL", conflicts_with = "webhook_service")]
    webhook_url: Option<String>,

    /// Register the webhook by this Service in --namespace (clientConfig.service).
    #[arg(
        long,
        env = "PALISADE_WEBHOOK_SERVICE",
        default_value = "palisade-webhook"
    )]
    webhook_service: String,

    /// Port of --webhook-service.
    #[arg(long, env = "PALISADE_WEBHOOK_SERVICE_PORT", default_value_t = 443)]
    webhook_service_port: u16,

    /// What the API server does when the webhook cannot be reached.
    #[arg(long, env = "PALISADE_FAILURE_POLICY", value_enum, default_value_t = FailurePolicy::Fail)]
    failure_policy: FailurePolicy,

    /// timeoutSeconds of the webhooks (1 to 30).
    #[arg(long, env = "PALISADE_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(i32).range(1..=30))]
    webhook_timeout_seconds: i32,

    /// A namespace the webhook never judges, besides kube-system and --namespace.
    /// Repeatable; in the environment, comma-separated.
    #[arg(
        long = "exclude-namespace",
        env = "PALISADE_EXCLUDE_NAMESPACES",
        value_delimiter = ','
    )]
    exclude_namespaces: Vec<String>,

    /// The Secret in --namespace holding the CA and serving certificate.
    #[arg(
        long,
        env = "PALISADE_CERT_SECRET",
        default_value = "palisade-webhook-tls"
    )]
    cert_secret: String,

    /// Also write tls.crt, tls.key and ca.crt here, for a webhook process running outside
    /// the cluster.
    #[arg(long, env = "PALISADE_CERT_DIR")]
    cert_dir: Option<PathBuf>,

    /// Another party (cert-manager) owns --cert-secret: read it and publish its CA, never
    /// write it.
    #[arg(long, env = "PALISADE_EXTERNAL_CERTS")]
    external_certs: bool,

    /// On Kubernetes 1.20 and older (where namespaces are excluded by the label
    /// palisade.dev/exempt), also register namespaces.palisade.dev, which refuses that label
    /// on any namespace but kube-system, --namespace and --exclude-namespace. The webhook
    /// must be given the same --namespace and --exclude-namespace. Default: on with
    /// --webhook-service (the webhook is deployed beside the operator with the same
    /// settings), off with --webhook-url (a webhook run by hand may not know the list).
    #[arg(long, env = "PALISADE_PROTECT_EXEMPT_LABEL", action = ArgAction::Set)]
    protect_exempt_label: Option<bool>,

    /// Make the webhook registration, the certificate Secret and the agent DaemonSet
    /// dependents of this ClusterRole (the install's own), so that deleting the install
    /// (helm uninstall, kubectl delete, an Argo CD prune) lets the garbage collector remove
    /// them as well: a registration left behind would refuse every pod, an agent left behind
    /// would keep watching every node. Needs get on that ClusterRole.
    #[arg(long, value_name = "NAME", env = "PALISADE_OWNER_CLUSTER_ROLE")]
    owner_cluster_role: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailurePolicy {
    Fail,
    Ignore,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %error::report(e.as_ref()), "palisade-operator failed");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    // Both ring and aws-lc may be linked in; say which one once.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let metrics = Arc::new(Metrics::new());
    let health = Health::default();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown_tx.send_replace(true);
    });

    let client = kube::Client::try_default()
        .await
        .context("cannot reach the API server (KUBECONFIG or in-cluster config)")?;

    let reports = args.scan.scanning.then(|| {
        ReportsApi::new(
            ReportFiles::new(scanning::reports_dir(&args.scan.scan_cache_dir)),
            health.clone(),
            Leader::lease(client.clone(), args.namespace.clone(), LEASE_NAME),
        )
    });
    let probes = OperatorProbes {
        health: health.clone(),
        metrics: metrics.clone(),
    };
    let admin = admin::serve_router(
        args.admin_addr,
        palisade_operator::admin::router(probes, reports),
        shutdown::triggered(shutdown_rx.clone()),
    )
    .await?;
    let admin = tokio::spawn(admin);
    info!(addr = %args.admin_addr, "admin server listening");
    let identity = args
        .leader_identity
        .clone()
        .unwrap_or_else(lease::default_identity);

    let (cert_config, registration_config) = webhook_configs(&args)?;
    let agent_settings = agent_settings(&args)?;
    let (fleet_tx, fleet_rx) = watch::channel(None);
    let audit_config = audit::Config {
        interval: args.audit.audit_interval,
        max_results: args.audit.audit_max_results,
        install_crds: args.audit.install_policy_report_crds,
        // What the webhook never judges is not reported either.
        excluded_namespaces: registration_config.excluded(),
        rule_docs: palisade_policy::RuleDocs::new(&args.audit.rule_docs_url),
    };
    let scanning = scan_setup(&args.scan, &metrics)?.map(|(registry, db)| {
        let config = scanning::Config {
            instance: identity.clone(),
            namespace: args.namespace.clone(),
            cache_dir: args.scan.scan_cache_dir.clone(),
            concurrency: args.scan.scan_concurrency,
            max_report_age: args.scan.scan_max_report_age,
            platform: Platform::linux_amd64(),
            db_refresh: args.scan.scan_db_refresh,
            running: args
                .scan
                .scan_running_images
                .then(|| scanning::running::Config {
                    // The images of namespaces the webhook never judges are not scanned either.
                    excluded_namespaces: registration_config.excluded(),
                }),
        };
        (config, registry, db)
    });
    let lead = {
        let client = client.clone();
        let metrics = metrics.clone();
        let health = health.clone();
        let identity = identity.clone();
        let owner_cluster_role = args.webhook.owner_cluster_role.clone();
        let namespace = args.namespace.clone();
        move |stop: watch::Receiver<bool>| async move {
            let mut registration_config = with_selector_mode(&client, registration_config).await;
            let mut cert_config = cert_config;
            let mut agent_settings = agent_settings;
            if let Some(name) = &owner_cluster_role {
                // Without the owner, the registration would outlive an uninstall: nothing is
                // registered until it can be read.
                let owner = loop {
                    match certs::cluster_role(&client, name).await {
                        Ok(owner) => break owner,
                        Err(e) => {
                            tracing::warn!(error = %error::report(&e), "retrying in 5s");
                            if *stop.borrow() {
                                return;
                            }
                            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                        }
                    }
                };
                info!(cluster_role = %name, "the webhook registration, certificate Secret and agent DaemonSet are owned by this ClusterRole");
                if let Some(settings) = agent_settings.as_mut() {
                    settings.owner = Some(owner.clone());
                }
                registration_config.owner = Some(owner.clone());
                if !cert_config.external {
                    cert_config.owner = Some(owner);
                }
            }
            let webhook = {
                let client = client.clone();
                certs::run(client.clone(), cert_config, move |bundle| {
                    let client = client.clone();
                    let cfg = registration_config.clone();
                    async move {
                        registration::apply(&client, &cfg, &bundle)
                            .await
                            .map_err(|e| error::report(&e))
                    }
                })
            };
            // The scan controller fills the view (its report store, the digests of running
            // tags); the audit reads it to judge running workloads against ScanPolicies.
            let view = scanning.is_some().then(scanning::ScanView::default);
            let audit = audit::run(
                client.clone(),
                audit_config,
                metrics.clone(),
                view.clone(),
                shutdown::triggered(stop.clone()),
            );
            let scans = {
                let (client, metrics, stop) = (client.clone(), metrics.clone(), stop.clone());
                async move {
                    if let (Some((config, registry, db)), Some(view)) = (scanning, view) {
                        scanning::run(client, config, registry, db, metrics, view, stop).await;
                    }
                }
            };
            let scan_policies = scan_policy::run(
                client.clone(),
                scan_policy::Config {
                    instance: identity.clone(),
                },
                metrics.clone(),
                shutdown::triggered(stop.clone()),
            );
            let agents = agent::run::run(
                client.clone(),
                namespace,
                agent_settings,
                fleet_tx,
                shutdown::triggered(stop.clone()),
            );
            let policies = security_policy::run(
                client,
                security_policy::Config { instance: identity },
                metrics,
                health,
                fleet_rx,
                shutdown::triggered(stop),
            );
            // The controllers, the audit and scanning return once told to stop (after their
            // in-flight work); the certificate loop never does and is dropped with them.
            tokio::select! {
                _ = futures::future::join5(policies, audit, scans, scan_policies, agents) => {}
                () = webhook => {}
            }
        }
    };

    let result = if args.leader_elect {
        let config = lease::Config::new(args.namespace.clone(), LEASE_NAME, identity);
        let on_leading = |leading| metrics.set_leader(leading);
        lease::run(
            client,
            config,
            &health,
            on_leading,
            shutdown_rx.clone(),
            lead,
        )
        .await
        .map_err(anyhow::Error::from)
    } else {
        info!("leader election off: this process runs the controllers");
        health.set_role(Role::Leader);
        metrics.set_leader(true);
        lead(shutdown_rx.clone()).await;
        Ok(())
    };
    health.set_role(Role::Stopping);
    match result {
        Ok(()) => {
            // The admin server stops with the shutdown signal; it has nothing to drain.
            if *shutdown_rx.borrow() {
                admin.await.context("admin server task")??;
            }
            info!("stopped");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The node agent's settings from --agent (`None`: no agent).
fn agent_settings(args: &Args) -> anyhow::Result<Option<AgentSettings>> {
    let Some(json) = args.agent.as_deref().filter(|j| !j.trim().is_empty()) else {
        info!("node agent off (no --agent / PALISADE_AGENT)");
        return Ok(None);
    };
    let settings = AgentSettings::from_json(json, &args.namespace)
        .context("--agent (PALISADE_AGENT): not the agent's settings as JSON")?;
    if settings.image.is_empty() {
        anyhow::bail!("--agent (PALISADE_AGENT): \"image\" is empty");
    }
    Ok(Some(settings))
}

/// The certificate and registration settings from the flags.
fn webhook_configs(
    args: &Args,
) -> anyhow::Result<(certs::CertConfig, registration::RegistrationConfig)> {
    let w = &args.webhook;
    let mut cert = certs::CertConfig::new(args.namespace.clone(), w.webhook_service.clone());
    cert.secret_name = w.cert_secret.clone();
    cert.cert_dir = w.cert_dir.clone();
    cert.external = w.external_certs;
    let target = match &w.webhook_url {
        Some(url) => {
            // The serving certificate must name the host the API server dials.
            let host = url_host(url)
                .with_context(|| format!("--webhook-url {url:?}: expected https://HOST[:PORT]"))?;
            match host.parse::<std::net::IpAddr>() {
                Ok(ip) => cert.ip_sans.push(ip),
                Err(_) => cert.dns_names.insert(0, host.to_owned()),
            }
            registration::Target::Url(url.trim_end_matches('/').to_owned())
        }
        None => registration::Target::Service {
            namespace: args.namespace.clone(),
            name: w.webhook_service.clone(),
            port: i32::from(w.webhook_service_port),
            path_prefix: String::new(),
        },
    };
    let mut reg = registration::RegistrationConfig::new(args.namespace.clone(), target);
    reg.failure_policy = match w.failure_policy {
        FailurePolicy::Fail => registration::FailurePolicy::Fail,
        FailurePolicy::Ignore => registration::FailurePolicy::Ignore,
    };
    reg.timeout_seconds = w.webhook_timeout_seconds;
    reg.excluded_namespaces = w.exclude_namespaces.clone();
    reg.protect_exempt_label = w.protect_exempt_label.unwrap_or(w.webhook_url.is_none());
    info!(
        target = ?reg.target,
        failure_policy = ?reg.failure_policy,
        timeout_seconds = reg.timeout_seconds,
        excluded = ?reg.excluded(),
        protect_exempt_label = reg.protect_exempt_label,
        cert_secret = %cert.secret_name,
        cert_dir = ?cert.cert_dir,
        external_certs = cert.external,
        "webhook settings"
    );
    Ok((cert, reg))
}

/// `127.0.0.1` of `https://127.0.0.1:8443/x`, `::1` of `https://[::1]:8443`.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Choose how excluded namespaces are selected from the API server's version; on failure
/// keep the label mode, which excludes correctly on every version.
async fn with_selector_mode(
    client: &kube::Client,
    mut cfg: registration::RegistrationConfig,
) -> registration::RegistrationConfig {
    match client.apiserver_version().await {
        Ok(info) => cfg.namespace_selector_mode = registration::selector_mode_for(&info),
        Err(e) => {
            tracing::warn!(error = %error::report(&e), "cannot read the API server version; excluding namespaces by label")
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_their_defaults() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let a = Args::try_parse_from(["palisade-operator"]).expect("defaults");
        assert!(a.leader_elect);
        assert_eq!(a.admin_addr.port(), 8082);
        assert_eq!(a.webhook.webhook_timeout_seconds, 5);
        assert!(matches!(a.webhook.failure_policy, FailurePolicy::Fail));
        let a = Args::try_parse_from([
            "palisade-operator",
            "--leader-elect=false",
            "--exclude-namespace",
            "a",
            "--exclude-namespace",
            "b",
            "--webhook-url",
            "https://127.0.0.1:8443",
            "--failure-policy",
            "ignore",
        ])
        .expect("parses");
        assert!(!a.leader_elect);
        assert_eq!(a.webhook.exclude_namespaces, ["a", "b"]);
        assert!(
            Args::try_parse_from(["palisade-operator", "--webhook-timeout-seconds", "60"]).is_err()
        );
    }

    #[test]
    fn the_exempt_label_is_protected_by_default_only_for_a_service() {
        let protected = |argv: &[&str]| {
            let a = Args::try_parse_from(
                std::iter::once("palisade-operator").chain(argv.iter().copied()),
            )
            .expect("parses");
            webhook_configs(&a).expect("configs").1.protect_exempt_label
        };
        assert!(protected(&[]));
        assert!(!protected(&["--protect-exempt-label=false"]));
        assert!(!protected(&["--webhook-url", "https://127.0.0.1:8443"]));
        assert!(protected(&[
            "--webhook-url",
            "https://127.0.0.1:8443",
            "--protect-exempt-label=true"
        ]));
    }

    #[test]
    fn scan_flags_parse_with_their_defaults() {
        use std::time::Duration;
        let a = Args::try_parse_from(["palisade-operator"]).expect("defaults");
        assert!(a.scan.scanning && a.scan.scan_running_images);
        assert_eq!(a.scan.scan_db, DEFAULT_DB);
        assert_eq!(a.scan.scan_cache_dir, PathBuf::from("/var/cache/palisade"));
        assert_eq!(a.scan.scan_db_refresh, Duration::from_secs(6 * 3600));
        assert_eq!(a.scan.scan_max_report_age, Duration::from_secs(24 * 3600));
        assert_eq!(a.scan.scan_concurrency, 2);
        let a = Args::try_parse_from([
            "palisade-operator",
            "--scanning=false",
            "--scan-running-images=false",
            "--scan-insecure-registry",
            "reg:5000",
            "--scan-insecure-registry",
            "other",
            "--scan-db-refresh",
            "30m",
        ])
        .expect("parses");
        assert!(!a.scan.scanning && !a.scan.scan_running_images);
        assert_eq!(a.scan.scan_insecure_registries, ["reg:5000", "other"]);
        assert_eq!(a.scan.scan_db_refresh, Duration::from_secs(1800));
        assert!(Args::try_parse_from(["palisade-operator", "--scan-concurrency", "0"]).is_err());
        assert!(a.scan.scan_updateinfo.is_empty());
        let a = Args::try_parse_from([
            "palisade-operator",
            "--scan-updateinfo",
            "Amazon Linux:2=/mnt/al2/mirror.list",
            "--scan-updateinfo",
            "Amazon Linux:2023=https://mirror.example/al2023/",
        ])
        .expect("parses");
        assert_eq!(
            a.scan.scan_updateinfo,
            [
                (
                    "Amazon Linux:2".to_owned(),
                    "/mnt/al2/mirror.list".to_owned()
                ),
                (
                    "Amazon Linux:2023".to_owned(),
                    "https://mirror.example/al2023/".to_owned()
                )
            ]
        );
        for bad in ["Amazon Linux:2", "Debian:12=/x", "Nope:1=/x"] {
            assert!(
                Args::try_parse_from(["palisade-operator", "--scan-updateinfo", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_agent_is_on_only_with_valid_settings() {
        let settings = |argv: &[&str]| {
            let a = Args::try_parse_from(
                std::iter::once("palisade-operator").chain(argv.iter().copied()),
            )
            .expect("parses");
            agent_settings(&a)
        };
        assert!(settings(&[]).expect("no agent").is_none());
        let on = settings(&["--namespace", "sec", "--agent", r#"{"image":"r/agent:1"}"#])
            .expect("valid")
            .expect("on");
        assert_eq!(
            (on.image.as_str(), on.namespace.as_str()),
            ("r/agent:1", "sec")
        );
        for bad in [
            r#"{"image":"r/a:1","tolerance":[]}"#,
            "not json",
            r#"{"image":""}"#,
        ] {
            let e = settings(&["--agent", bad]).expect_err(bad);
            assert!(format!("{e:#}").contains("PALISADE_AGENT"), "{bad}: {e:#}");
        }
    }

    #[test]
    fn audit_flags_parse_durations() {
        use std::time::Duration;
        let a = Args::try_parse_from(["palisade-operator"]).expect("defaults");
        assert_eq!(a.audit.audit_interval, Duration::from_secs(600));
        assert_eq!(a.audit.audit_max_results, 100);
        assert!(a.audit.install_policy_report_crds);
        for (text, secs) in [("30s", 30), ("1h", 3600), ("1h30m", 5400)] {
            let a = Args::try_parse_from(["palisade-operator", "--audit-interval", text])
                .expect("parses");
            assert_eq!(a.audit.audit_interval, Duration::from_secs(secs), "{text}");
        }
        for bad in ["0s", "soon", "-5m"] {
            assert!(
                Args::try_parse_from(["palisade-operator", "--audit-interval", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
