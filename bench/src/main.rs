//! `pod-create-bench`: create pods against a real API server at a fixed concurrency and
//! report the latency of the create call (median, p90, p99, max) and the creates per
//! second. `hack/bench-admission.sh` runs it once per admission configuration.
//!
//! Nothing is asserted about time: this measures. A create that fails is counted and makes
//! the run exit non-zero, so a misconfigured admission chain cannot pass for a fast one.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::task::JoinSet;

const BENCH_LABEL: &str = "palisade.dev/bench";

/// Create compliant pods (restricted Pod Security Standard) and measure the create call.
#[derive(Debug, Parser)]
#[command(name = "pod-create-bench")]
struct Args {
    /// Kubeconfig of the cluster.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,

    /// Namespace to create the pods in (must exist).
    #[arg(long, short = 'n', default_value = "palisade-bench")]
    namespace: String,

    /// Name of this configuration in the output (e.g. "no webhook").
    #[arg(long)]
    label: String,

    /// Measured creates per concurrency level.
    #[arg(long, default_value_t = 500)]
    pods: usize,

    /// Creates before measuring, not counted (connections, caches, JIT-free but warm).
    #[arg(long, default_value_t = 50)]
    warmup: usize,

    /// Concurrency levels, each measured on its own (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    concurrency: Vec<usize>,

    /// Append one tab-separated line per concurrency level here.
    #[arg(long)]
    out: Option<PathBuf>,

    /// Append every measured create here, one tab-separated line each (label,
    /// concurrency, milliseconds), for percentiles over several runs.
    #[arg(long)]
    raw: Option<PathBuf>,
}

/// A pod that the `restricted` Pod Security Standard, a restricted PodSecurityPolicy and a
/// restricted SecurityPolicy all admit. The seccomp annotation is what a 1.20
/// PodSecurityPolicy checks; the field is what the standards check.
fn pod(name: &str) -> Pod {
    let value = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {BENCH_LABEL: "true"},
            "annotations": {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}
        },
        "spec": {
            // No scheduler answers to this name: on a cluster with a node, nothing but the
            // create itself touches the pod.
            "schedulerName": "palisade-bench-unscheduled",
            "automountServiceAccountToken": false,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "supplementalGroups": [10001],
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "containers": [{
                "name": "app",
                "image": "registry.example.com/team/app:1.4.2",
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "privileged": false,
                    "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]}
                }
            }]
        }
    });
    // The literal above is a valid Pod; a failure here is a bug in this file.
    serde_json::from_value(value).unwrap_or_else(|e| panic!("bench pod literal: {e}"))
}

#[derive(Debug)]
struct Run {
    latencies: Vec<Duration>,
    wall: Duration,
    failures: Vec<String>,
}

/// Create `count` pods with `concurrency` creates in flight, names `prefix-0..count`.
async fn create(api: &Api<Pod>, prefix: &str, count: usize, concurrency: usize) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let api = api.clone();
        let next = next.clone();
        let prefix = prefix.to_owned();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let p = pod(&format!("{prefix}-{i}"));
                let t = Instant::now();
                let r = api.create(&PostParams::default(), &p).await;
                let elapsed = t.elapsed();
                match r {
                    Ok(_) => latencies.push(elapsed),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (latencies, failures)
        });
    }
    let mut run = Run {
        latencies: Vec::with_capacity(count),
        wall: Duration::ZERO,
        failures: Vec::new(),
    };
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((l, f)) => {
                run.latencies.extend(l);
                run.failures.extend(f);
            }
            Err(e) => run.failures.push(format!("worker: {e}")),
        }
    }
    run.wall = started.elapsed();
    run.latencies.sort_unstable();
    run
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Delete every bench pod in the namespace and wait until none is left (no kubelet, so
/// unscheduled pods go at once).
async fn delete_all(api: &Api<Pod>) -> anyhow::Result<()> {
    let selector = ListParams::default().labels(BENCH_LABEL);
    api.delete_collection(&DeleteParams::background().grace_period(0), &selector)
        .await
        .context("deleting the bench pods")?;
    for _ in 0..600 {
        if api.list_metadata(&selector).await?.items.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("bench pods still present 60 s after deleting them")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("kubeconfig")?;
    let client = kube::Client::try_from(config).context("client")?;
    let api: Api<Pod> = Api::namespaced(client, &args.namespace);

    delete_all(&api).await?;
    let tag: String = args
        .label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut lines = Vec::new();
    let mut raw = Vec::new();
    for &c in &args.concurrency {
        let warm = create(&api, &format!("warm-{tag}-c{c}"), args.warmup, c).await;
        if let Some(first) = warm.failures.first() {
            bail!(
                "{}: warm-up creates failed ({} of {}): {first}",
                args.label,
                warm.failures.len(),
                args.warmup
            );
        }
        let run = create(&api, &format!("b-{tag}-c{c}"), args.pods, c).await;
        delete_all(&api).await?;
        if let Some(first) = run.failures.first() {
            bail!(
                "{}: {} of {} creates failed at c={c}: {first}",
                args.label,
                run.failures.len(),
                args.pods
            );
        }
        let rps = run.latencies.len() as f64 / run.wall.as_secs_f64().max(1e-9);
        let line = format!(
            "{}\t{c}\t{}\t{}\t{}\t{}\t{}\t{:.0}",
            args.label,
            run.latencies.len(),
            ms(percentile(&run.latencies, 50.0)),
            ms(percentile(&run.latencies, 90.0)),
            ms(percentile(&run.latencies, 99.0)),
            ms(run.latencies.last().copied().unwrap_or_default()),
            rps
        );
        eprintln!("    {}", line.replace('\t', "  "));
        lines.push(line);
        raw.extend(
            run.latencies
                .iter()
                .map(|l| format!("{}\t{c}\t{}", args.label, ms(*l))),
        );
    }
    if let Some(path) = &args.raw {
        append(path, &raw)?;
    }
    if let Some(out) = &args.out {
        append(out, &lines)?;
    } else {
        for line in &lines {
            println!("{line}");
        }
    }
    Ok(())
}

/// Append `lines` to the file at `path`.
fn append(path: &std::path::Path, lines: &[String]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    for line in lines {
        writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn the_bench_pod_is_labelled_and_restricted() {
        let p = pod("x");
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(BENCH_LABEL))
                .map(String::as_str),
            Some("true")
        );
        let sc = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.security_context.as_ref());
        assert_eq!(sc.and_then(|s| s.allow_privilege_escalation), Some(false));
    }
}
