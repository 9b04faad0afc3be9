//! `palisade-operator`: SecurityPolicy status, webhook registration and certificates, under
//! leader election, with probes and metrics on the admin port.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{ArgAction, Parser, ValueEnum};
use palisade_operator::admin::{self, Health, Role};
use palisade_operator::metrics::Metrics;
use palisade_operator::{error, leader, policy_controller};
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailurePolicy {
    Fail,
    Ignore,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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

    let admin = admin::serve(
        args.admin_addr,
        health.clone(),
        metrics.clone(),
        leader::triggered(shutdown_rx.clone()),
    )
    .await?;
    let admin = tokio::spawn(admin);
    info!(addr = %args.admin_addr, "admin server listening");

    let client = kube::Client::try_default()
        .await
        .context("cannot reach the API server (KUBECONFIG or in-cluster config)")?;
    let identity = args
        .leader_identity
        .clone()
        .unwrap_or_else(leader::default_identity);
    log_webhook_settings(&args);

    let lead = {
        let client = client.clone();
        let metrics = metrics.clone();
        let health = health.clone();
        let identity = identity.clone();
        move |stop: watch::Receiver<bool>| async move {
            // Webhook registration and certificates (operator/src/registration.rs,
            // operator/src/certs.rs) start here, next to the SecurityPolicy controller,
            // with `args.webhook` turned into their config structs.
            policy_controller::run(
                client,
                policy_controller::Config { instance: identity },
                metrics,
                health,
                leader::triggered(stop),
            )
            .await;
        }
    };

    let result = if args.leader_elect {
        let config = leader::Config::new(args.namespace.clone(), identity);
        leader::run(client, config, &metrics, &health, shutdown_rx.clone(), lead)
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

/// Until registration and certificates are wired in, say what they will be given.
fn log_webhook_settings(args: &Args) {
    let w = &args.webhook;
    info!(
        url = ?w.webhook_url,
        service = %format!("{}/{}:{}", args.namespace, w.webhook_service, w.webhook_service_port),
        failure_policy = ?w.failure_policy,
        timeout_seconds = w.webhook_timeout_seconds,
        excluded = ?w.exclude_namespaces,
        cert_secret = %w.cert_secret,
        cert_dir = ?w.cert_dir,
        external_certs = w.external_certs,
        "webhook settings"
    );
}

/// Ctrl-C or SIGTERM (what the kubelet sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C received"),
        () = term => info!("SIGTERM received"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
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
}
