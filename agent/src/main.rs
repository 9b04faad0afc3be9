//! palisade-agent: runtime threat detection for the containers of one node.
//!
//! In a cluster it runs as the DaemonSet the operator reconciles (hostPID, a few
//! capabilities) and reads SecurityPolicies, this node's pods and namespaces from the API
//! server. With `--standalone` it needs no cluster: policies come from files and every
//! process outside the host's mount namespace counts as a container.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use palisade_agent::detect::Snapshot;
use palisade_agent::metrics::Metrics;
use palisade_agent::output::publisher::{self, EventSettings, ReportSettings};
use palisade_agent::pipeline::{self, Config, Sinks};
use palisade_agent::sensor::ebpf::LoadOptions;
use palisade_agent::sensor::filters::Filters;
use palisade_agent::sensor::procfs::ProcFs;
use palisade_agent::sensor::{self, Choice, Coverage};
use palisade_agent::{standalone, status, watches};
use palisade_kube_plumbing::admin::{self, Probes};
use palisade_process::{LogFormat, init_logging, report, shutdown_signal};
use tokio::sync::watch;
use tracing::info;

#[derive(Parser, Debug)]
#[command(name = "palisade-agent", version, about = "Palisade node agent: eBPF runtime threat detection for the containers of one node", long_about = None)]
struct Args {
    /// This node's name (the DaemonSet sets it from spec.nodeName). Only its pods are watched.
    #[arg(long, env = "NODE_NAME", required_unless_present = "standalone")]
    node_name: Option<String>,

    /// The agent's own pod, whose annotations carry the sensor's coverage for the operator.
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,

    /// The agent's own namespace.
    #[arg(long, env = "POD_NAMESPACE")]
    pod_namespace: Option<String>,

    /// Health (/livez, /readyz) and metrics (/metrics) listen address.
    #[arg(long, env = "PALISADE_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    admin_addr: SocketAddr,

    /// Which sensor to run: eBPF where it loads and the netlink process connector
    /// elsewhere (auto), eBPF only, or the process connector only (fallback).
    #[arg(long, env = "PALISADE_SENSOR", value_enum, default_value = "auto")]
    sensor: Choice,

    /// Where the host's /proc is (with hostPID, the container's own /proc).
    #[arg(long, env = "PALISADE_PROC", default_value = "/proc")]
    proc: PathBuf,

    /// The process whose mount namespace is the host's; processes in any other one are
    /// container processes. Default: PID 1 (the agent runs with hostPID), or where PID 1 is
    /// closed to the agent, its parent (the container runtime's shim, on the host).
    #[arg(long, env = "PALISADE_HOST_PID")]
    host_pid: Option<u32>,

    /// Processes the process table holds at most (memory is bounded by it: about 300
    /// bytes each).
    #[arg(
        long,
        env = "PALISADE_PROCESS_TABLE_CAPACITY",
        default_value_t = 32_768
    )]
    process_table_capacity: usize,

    /// Kernel records queued between the sensor and the rules; past it they are counted
    /// as dropped.
    #[arg(long, env = "PALISADE_QUEUE", default_value_t = 16_384)]
    queue: usize,

    /// Repeats of a rule in a container within this window are published as one Event
    /// update with a count.
    #[arg(long, env = "PALISADE_EVENT_WINDOW", default_value = "30s", value_parser = parse_duration)]
    event_window: Duration,

    /// How long an event of a container not yet in any pod's status waits for it.
    #[arg(long, env = "PALISADE_ATTRIBUTION_WAIT", default_value = "3s", value_parser = parse_duration)]
    attribution_wait: Duration,

    /// Write one JSON line per detection to stdout (Falco's output fields).
    #[arg(long, env = "PALISADE_JSON_OUTPUT", default_value_t = true, action = clap::ArgAction::Set)]
    json_output: bool,

    /// Run without a cluster: policies from --policy-file, no Events or reports.
    #[arg(long)]
    standalone: bool,

    /// SecurityPolicy files for --standalone (YAML, several documents allowed).
    #[arg(long, requires = "standalone")]
    policy_file: Vec<PathBuf>,

    /// Log format.
    #[arg(long, env = "PALISADE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    /// At most this many results per runtime PolicyReport (one per namespace and node),
    /// most severe then most recent kept.
    #[arg(long, env = "PALISADE_REPORT_MAX_RESULTS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    report_max_results: u32,

    /// A result not seen again for this long leaves its report (e.g. 24h, 7d).
    #[arg(long, env = "PALISADE_REPORT_RETENTION", default_value = "24h", value_parser = parse_duration)]
    report_retention: Duration,

    /// How often changed PolicyReports are written (at most one write per namespace each
    /// time).
    #[arg(long, env = "PALISADE_REPORT_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    report_interval: Duration,

    /// Where report results link each rule's page: `<URL><rule-id>.md` (the operator's and
    /// webhook's --rule-docs-url).
    #[arg(long, env = "PALISADE_RULE_DOCS_URL", default_value = palisade_policy::DEFAULT_RULE_DOCS)]
    rule_docs_url: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: k8s_openapi::jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 2s or 500ms: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("{s:?} is negative"))
}

#[derive(Clone)]
struct AgentProbes {
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
}

impl Probes for AgentProbes {
    fn readiness(&self) -> Result<&'static str, &'static str> {
        if *self.ready.borrow() {
            Ok("ready\n")
        } else {
            Err("the watches have not synced yet\n")
        }
    }

    fn metrics(&self) -> Result<String, std::fmt::Error> {
        Ok(self.metrics.render())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %report(e.as_ref()), "palisade-agent failed");
            ExitCode::FAILURE
        }
    }
}

/// The inode of the host's mount namespace, read from the process given, else from PID 1,
/// else from the agent's parent: some hosts keep PID 1's namespace links from every other
/// process, while the runtime's shim that started the agent lives in the host's namespace.
fn host_mount_namespace(proc: &Path, host_pid: Option<u32>) -> anyhow::Result<u32> {
    let read = |pid: u32| {
        let link = proc.join(pid.to_string()).join("ns/mnt");
        std::fs::metadata(&link)
            .map(|m| m.ino() as u32)
            .with_context(|| format!("reading {}", link.display()))
    };
    if let Some(pid) = host_pid {
        return read(pid).context("the host's mount namespace (--host-pid)");
    }
    match read(1) {
        Ok(ns) => Ok(ns),
        Err(first) => {
            let parent = std::os::unix::process::parent_id();
            let ns = read(parent).with_context(|| {
                format!(
                    "the host's mount namespace: PID 1 failed ({}) and so did the agent's parent; the agent needs hostPID and CAP_SYS_PTRACE, or --host-pid",
                    report(first.as_ref())
                )
            })?;
            tracing::info!(
                parent,
                error = %report(first.as_ref()),
                "PID 1's mount namespace is closed to the agent; the host's is taken from the agent's parent"
            );
            Ok(ns)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let proc = ProcFs::new(&args.proc);
    let host_mnt_ns = host_mount_namespace(&args.proc, args.host_pid)?;
    let stop = Arc::new(AtomicBool::new(false));
    let running = sensor::start(
        sensor::Options {
            choice: args.sensor,
            load: LoadOptions {
                host_mnt_ns,
                agent_pid: std::process::id(),
            },
            filters: Filters::default(),
            proc: proc.clone(),
            queue: args.queue,
        },
        stop.clone(),
    )?;
    let metrics = Arc::new(Metrics::new(running.stats.clone()));
    metrics.set_sensor(running.coverage.as_str());

    let (notices_tx, notices_rx) = tokio::sync::mpsc::channel(4096);
    let (seen_tx, seen_rx) = tokio::sync::mpsc::channel(4096);
    let (uncovered_tx, uncovered_rx) = watch::channel(Vec::new());
    let hostname = args
        .node_name
        .clone()
        .unwrap_or_else(|| "standalone".into());

    let (snapshots, ready, background): (
        watch::Receiver<Snapshot>,
        watch::Receiver<bool>,
        Vec<tokio::task::JoinHandle<()>>,
    ) = if args.standalone {
        if args.policy_file.is_empty() {
            bail!("--standalone needs at least one --policy-file");
        }
        let snapshot = standalone::snapshot(&args.policy_file)?;
        // Fixed for the process's life: a receiver keeps its last value once its sender
        // is gone, and the pipeline only asks whether it changed.
        let (_, rx) = watch::channel(snapshot);
        let (_, ready) = watch::channel(true);
        drop(notices_rx);
        drop(seen_rx);
        (rx, ready, Vec::new())
    } else {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the API server")?;
        let node = args.node_name.clone().unwrap_or_default();
        let (snapshots, ready, driver) = watches::start(client.clone(), &node);
        let mut tasks = vec![tokio::spawn(driver)];
        let instance = args
            .pod_name
            .clone()
            .unwrap_or_else(|| format!("palisade-agent@{node}"));
        tasks.push(tokio::spawn(publisher::run_events(
            client.clone(),
            EventSettings {
                window: args.event_window,
                capacity: 4096,
                instance,
            },
            notices_rx,
            metrics.clone(),
        )));
        tasks.push(tokio::spawn(publisher::run_reports(
            client.clone(),
            ReportSettings {
                node: node.clone(),
                max_results: args.report_max_results as usize,
                retention: args.report_retention,
                interval: args.report_interval,
            },
            seen_rx,
            metrics.clone(),
        )));
        if let (Some(pod), Some(ns)) = (args.pod_name.clone(), args.pod_namespace.clone()) {
            tasks.push(tokio::spawn(status::publish(
                client,
                ns,
                pod,
                running.coverage,
                running.fallback_reason.clone(),
                uncovered_rx,
            )));
        }
        (snapshots, ready, tasks)
    };

    let pipeline = pipeline::spawn(
        Config {
            hostname,
            json: args.json_output,
            proc,
            host_mnt_ns,
            table_capacity: args.process_table_capacity,
            pending_max: 4096,
            pending_wait: args.attribution_wait,
            coverage: running.coverage,
            any_namespace_is_a_container: args.standalone,
            docs: palisade_policy::RuleDocs::new(&args.rule_docs_url),
        },
        running.records,
        snapshots,
        Sinks {
            notices: notices_tx,
            reports: (!args.standalone).then_some(seen_tx),
            filters: running.filters,
            uncovered: uncovered_tx,
            metrics: metrics.clone(),
        },
        stop.clone(),
    )
    .context("starting the pipeline thread")?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let admin = admin::serve(
        args.admin_addr,
        AgentProbes {
            metrics: metrics.clone(),
            ready,
        },
        palisade_kube_plumbing::shutdown::triggered(shutdown_rx),
    )
    .await?;
    let admin = tokio::spawn(admin);
    info!(
        sensor = running.coverage.as_str(),
        admin = %args.admin_addr,
        standalone = args.standalone,
        "palisade-agent running"
    );
    if running.coverage == Coverage::Fallback {
        info!(
            reason = running.fallback_reason.as_deref().unwrap_or(""),
            "fallback sensor: only exec-based rules are covered"
        );
    }

    shutdown_signal().await;
    stop.store(true, Ordering::Relaxed);
    let _ = shutdown_tx.send(true);
    for task in background {
        task.abort();
    }
    let _ = admin.await;
    let _ = tokio::task::spawn_blocking(move || pipeline.join()).await;
    Ok(())
}
