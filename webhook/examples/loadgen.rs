//! Load generator for the admission endpoint: N keep-alive HTTPS connections on loopback for a
//! bounded time, reporting throughput and latency percentiles.
//!
//! By default it starts its own server in this process (real TLS on 127.0.0.1, the
//! `restricted` sample policy) and also reports the process's memory; `--url` targets a
//! running webhook instead. `--with-reports` adds an Enforce ScanPolicy judging the image
//! from a report the server holds in memory, to compare with a run without it.
//!
//! The workloads' image is pinned by digest in both cases, so the scan gate needs no registry.
//!
//!     cargo run --release -p palisade-webhook --example loadgen -- --connections 8 --duration 10s

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use clap::{Parser, ValueEnum};
use common::{Ca, Conn};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::core::DynamicObject;
use palisade_crds::{
    FailOn, IgnoreEntry, ImageScanReport, ImageScanReportSpec, ImageScanReportStatus, Mode,
    ReportFinding, ScanPhase, ScanPolicy, ScanPolicySpec, SeveritySummary, SeverityThreshold,
    report_name,
};
use palisade_policy::{Decision, Facts, PolicySet, Subject};
use palisade_scanner::oci::{ClientConfig, RegistryClient};
use palisade_webhook::scans::{GateConfig, GateFeeder, ScanGate};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// The image of every workload sent, pinned by digest: the scan gate judges a pinned image
/// without asking a registry, so `--with-reports` measures only the in-memory judgement.
const DIGEST: &str = "sha256:6f1c0a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f";
const IMAGE_REPO: &str = "registry.example.com/team/app";

/// Send AdmissionReviews over keep-alive HTTPS connections and report requests/s and latency.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, short = 'c', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    connections: u16,

    /// How long to measure (at most 5m).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Load before measuring, not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// Stop after this many measured requests in all, whatever the duration.
    #[arg(long, default_value_t = 10_000_000)]
    max_requests: u64,

    /// Offer this many requests per second in all, spread evenly over the connections, and
    /// measure latency from each request's scheduled time (so a stalled server is not hidden
    /// by the client waiting). Without it, every connection sends as fast as answers come.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: Option<u32>,

    /// Which objects to send.
    #[arg(long, value_enum, default_value_t = Mix::Mixed)]
    mix: Mix,

    /// Target a running webhook, e.g. https://127.0.0.1:8443/validate (loopback only).
    /// Without it, a server is started in this process.
    #[arg(long, requires = "ca_file")]
    url: Option<String>,

    /// PEM CA bundle to trust for --url.
    #[arg(long)]
    ca_file: Option<PathBuf>,

    /// Policy files for the in-process server (default: the restricted sample policy).
    #[arg(long)]
    policy_file: Vec<PathBuf>,

    /// In-process server only: also judge the image by an Enforce ScanPolicy (High, fixable
    /// only, one ignore entry), from a report of 100 findings held in memory for its digest,
    /// as the webhook does once the report is cached. The report passes the policy, so the
    /// decisions are those of a run without it.
    #[arg(long, conflicts_with = "url")]
    with_reports: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mix {
    /// Compliant Pods and Deployments only.
    Allowed,
    /// Privileged Pods and Deployments only.
    Denied,
    /// Half and half.
    Mixed,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: k8s_openapi::jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 10s: {e}"))?;
    let d = Duration::try_from(d).map_err(|_| format!("{s:?} is negative"))?;
    if d > Duration::from_secs(300) {
        return Err("at most 5m".into());
    }
    Ok(d)
}

/// Bodies to cycle through, each with its own uid; built once so the client spends its CPU on
/// the wire, not on JSON.
fn bodies(mix: Mix) -> Vec<(Bytes, bool)> {
    (0..64)
        .map(|i| {
            let privileged = match mix {
                Mix::Allowed => false,
                Mix::Denied => true,
                Mix::Mixed => i % 2 == 1,
            };
            let name = format!("load-{i}");
            let mut object = if i % 4 < 2 {
                common::pod(&name, privileged)
            } else {
                common::deployment(&name, privileged)
            };
            pin_image(&mut object);
            let review = common::review(&format!("loadgen-{i}"), "CREATE", &object, None);
            let body = serde_json::to_vec(&review).unwrap_or_default();
            (Bytes::from(body), !privileged)
        })
        .collect()
}

/// Point every container of a Pod or Deployment at the pinned image.
fn pin_image(object: &mut Value) {
    let spec = if object["kind"] == "Pod" {
        &mut object["spec"]
    } else {
        &mut object["spec"]["template"]["spec"]
    };
    if let Some(containers) = spec["containers"].as_array_mut() {
        for c in containers {
            c["image"] = json!(format!("{IMAGE_REPO}:1.4.2@{DIGEST}"));
        }
    }
}

/// The ScanPolicy of `--with-reports`: Enforce, failing on High findings that have a fix.
fn scan_policy() -> ScanPolicy {
    ScanPolicy::new(
        "prod",
        ScanPolicySpec {
            mode: Mode::Enforce,
            fail_on: FailOn {
                severity: SeverityThreshold::High,
                only_fixable: true,
            },
            ignore: vec![IgnoreEntry {
                id: "CVE-2023-5363".into(),
                images: vec![format!("{IMAGE_REPO}*")],
                reason: Some("the cipher is not used".into()),
                owner: Some("team-a".into()),
                expires: Some(Time(
                    Timestamp::now() + SignedDuration::from_hours(24 * 365),
                )),
            }],
            ..ScanPolicySpec::default()
        },
    )
}

/// A Debian bookworm image's report as the operator writes it: the 100 worst findings
/// (2 Critical, 18 High, 50 Medium, 30 Low) of 137. Its only fixable High finding is the
/// ignored one, so the image passes [`scan_policy`] after all 100 are looked at.
fn report() -> ImageScanReport {
    const PACKAGES: [(&str, &str, &str); 4] = [
        ("openssl", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"),
        ("glibc", "2.36-9+deb12u3", "2.36-9+deb12u4"),
        ("curl", "7.88.1-10+deb12u4", "7.88.1-10+deb12u5"),
        ("systemd", "252.19-1~deb12u1", "252.22-1~deb12u1"),
    ];
    let findings = (0..100)
        .map(|i| {
            let (package, installed, fixed) = PACKAGES[i % PACKAGES.len()];
            let severity = match i {
                0..2 => "Critical",
                2..20 => "High",
                20..70 => "Medium",
                _ => "Low",
            };
            let cve = if i == 2 {
                "CVE-2023-5363".to_owned()
            } else {
                format!("CVE-2023-{}", 40_000 + i * 37)
            };
            ReportFinding {
                id: format!("DEBIAN-{cve}"),
                aliases: vec![cve],
                package: package.into(),
                installed_version: installed.into(),
                fixed_version: (i >= 20 || i == 2).then(|| fixed.to_owned()),
                severity: severity.into(),
                ..ReportFinding::default()
            }
        })
        .collect();
    let mut report = ImageScanReport::new(
        &report_name(DIGEST),
        ImageScanReportSpec {
            image: format!("{IMAGE_REPO}@{DIGEST}"),
            digest: DIGEST.into(),
            platform: None,
        },
    );
    report.status = Some(ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        os: Some("Debian GNU/Linux 12 (bookworm)".into()),
        ecosystem: Some("Debian:12".into()),
        packages: Some(128),
        summary: Some(SeveritySummary {
            critical: 2,
            high: 18,
            medium: 50,
            low: 67,
            unknown: 0,
        }),
        fixable: Some(SeveritySummary {
            critical: 0,
            high: 1,
            medium: 50,
            low: 60,
            unknown: 0,
        }),
        findings,
        findings_omitted: Some(37),
        scanner_version: Some(palisade_scanner::SCANNER_VERSION.into()),
        scanned_at: Some(Time(Timestamp::now())),
        ..ImageScanReportStatus::default()
    });
    report
}

/// A gate holding [`scan_policy`] and [`report`], checked to judge the load's pod from the
/// report (the ignore entry waives a finding), so the run measures that path.
async fn scan_gate() -> Result<(ScanGate, GateFeeder), String> {
    let registry = RegistryClient::new(ClientConfig::default()).map_err(|e| e.to_string())?;
    let (gate, mut feeder) = ScanGate::new(GateConfig::default(), registry, None);
    feeder.set_policies(&[scan_policy()]);
    feeder.apply_report(report());

    let mut pod = common::pod("check", false);
    pin_image(&mut pod);
    let object: DynamicObject = serde_json::from_value(pod).map_err(|e| e.to_string())?;
    let subject = Subject::from_manifest(&object, "default")
        .map_err(|e| e.to_string())?
        .ok_or("the check pod has no pod spec")?;
    let facts = Facts::new(None, Timestamp::now());
    let mut decision = Decision::default();
    gate.review(&subject, &facts, &mut decision, false).await;
    if !decision.allowed() || decision.waived.is_empty() {
        return Err(format!(
            "the scan gate did not judge the image from its report: {decision:?}"
        ));
    }
    Ok((gate, feeder))
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    allowed: u64,
    denied: u64,
    unexpected: u64,
    errors: u64,
    first_error: Option<String>,
    /// With `--rate`: sends that slipped more than one interval behind schedule.
    late: u64,
}

/// What every connection does.
struct Plan {
    addr: SocketAddr,
    path: String,
    config: Arc<rustls::ClientConfig>,
    bodies: Vec<(Bytes, bool)>,
    measure_from: Instant,
    stop: AtomicBool,
    /// Measured requests per connection.
    budget: u64,
    /// Whether the policies in force are known, so each decision can be checked.
    check_decisions: bool,
    /// With `--rate`: time between two requests of one connection.
    interval: Option<Duration>,
}

async fn worker(plan: Arc<Plan>, offset: usize) -> WorkerResult {
    let Plan {
        addr,
        ref path,
        ref config,
        ref bodies,
        measure_from,
        ref stop,
        budget,
        check_decisions,
        interval,
    } = *plan;
    let mut out = WorkerResult {
        latencies_us: Vec::with_capacity(1 << 16),
        ..WorkerResult::default()
    };
    let mut conn = match Conn::open(addr, config.clone()).await {
        Ok(c) => c,
        Err(e) => {
            out.errors += 1;
            out.first_error = Some(format!("connect: {e}"));
            return out;
        }
    };
    let mut i = offset;
    let mut measured = 0u64;
    // Connections start their schedules staggered across one interval.
    let mut next = interval.map(|d| Instant::now() + d.mul_f64(offset as f64 / 7.0 / 256.0));
    while !stop.load(Ordering::Relaxed) && measured < budget {
        let (body, want_allowed) = &bodies[i % bodies.len()];
        i += 1;
        if let (Some(at), Some(every)) = (next.as_mut(), interval) {
            tokio::time::sleep_until((*at).into()).await;
            // Latency is taken from the actual send: tokio's timer wakes up to a millisecond
            // late, which is the client's lag, not the server's. A send later than a whole
            // interval means the connection could not keep the rate; that is counted.
            if Instant::now() >= measure_from && Instant::now() > *at + every {
                out.late += 1;
            }
            *at += every;
        }
        let started = Instant::now();
        let result = conn.post(path, body.clone()).await;
        let elapsed = started.elapsed();
        let counted = started >= measure_from;
        match result {
            Ok((status, resp)) if status.is_success() => {
                if !counted {
                    continue;
                }
                measured += 1;
                out.latencies_us
                    .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                let allowed = contains(&resp, b"\"allowed\":true");
                if allowed {
                    out.allowed += 1;
                } else {
                    out.denied += 1;
                }
                if check_decisions && allowed != *want_allowed {
                    out.unexpected += 1;
                }
            }
            other => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(match other {
                        Ok((status, body)) => {
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        }
                        Err(e) => e.to_string(),
                    });
                }
                // Start over on a fresh connection, as a real client would.
                match Conn::open(addr, config.clone()).await {
                    Ok(c) => conn = c,
                    Err(_) => return out,
                }
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Resolve `--url` and refuse anything but loopback.
fn target(url: &str) -> Result<(SocketAddr, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("--url must be https://".into());
    }
    let host = uri.host().ok_or("--url has no host")?;
    let port = uri.port_u16().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .find(|a| a.ip().is_loopback())
        .ok_or("the load generator only targets loopback addresses (127.0.0.0/8, ::1)")?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/validate");
    Ok((addr, path.to_owned()))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    palisade_webhook::tls::install_crypto_provider();
    let check_decisions = args.url.is_none() && args.policy_file.is_empty();

    // Kept alive until the end: the in-process server and its certificate files, and what
    // feeds the scan gate.
    let mut in_process = None;
    let mut _feeder = None;
    let (addr, path, config, label) = match &args.url {
        Some(url) => {
            let (addr, path) = target(url)?;
            let ca_file = args.ca_file.as_ref().ok_or("--url needs --ca-file")?;
            let mut roots = rustls::RootCertStore::empty();
            let bad_ca =
                |e: &dyn std::fmt::Display| format!("--ca-file {}: {e}", ca_file.display());
            for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad_ca(&e))? {
                roots
                    .add(cert.map_err(|e| bad_ca(&e))?)
                    .map_err(|e| bad_ca(&e))?;
            }
            let config = Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            );
            (addr, path, config, url.clone())
        }
        None => {
            let ca = Ca::new("loadgen CA");
            let (cert, key, _) = ca.serving_pair("palisade-webhook");
            let set = if args.policy_file.is_empty() {
                let parsed = palisade_policy::parse_policies(common::RESTRICTED)
                    .map_err(|e| e.to_string())?;
                let (set, errors) = PolicySet::compile_all(&parsed);
                if let Some(e) = errors.first() {
                    return Err(e.to_string().into());
                }
                set
            } else {
                palisade_webhook::policies::load_files(&args.policy_file, &[])
                    .map_err(|e| palisade_webhook::error::report(&e))?
            };
            let gate = if args.with_reports {
                let (gate, feeder) = scan_gate().await?;
                _feeder = Some(feeder);
                Some(gate)
            } else {
                None
            };
            let scanning = gate.as_ref().map_or(String::new(), |g| {
                format!(
                    ", {} ScanPolicy judging images from a cached report ({g:?})",
                    g.policies().len()
                )
            });
            let t = common::start_server_with_gate(set, gate, &cert, &key).await;
            let addr = t.server.addr;
            let config = common::client_config(&[&ca]);
            let label = format!(
                "in-process server on https://{addr}/validate, {} policies{scanning}",
                t.state.store.current().len()
            );
            in_process = Some(t);
            (addr, "/validate".to_owned(), config, label)
        }
    };
    let before = in_process.as_ref().and(memory_kib());
    let measure_from = Instant::now() + args.warmup;
    let plan = Arc::new(Plan {
        addr,
        path,
        config,
        bodies: bodies(args.mix),
        measure_from,
        stop: AtomicBool::new(false),
        budget: args
            .max_requests
            .div_ceil(u64::from(args.connections))
            .max(1),
        check_decisions,
        interval: args
            .rate
            .map(|r| Duration::from_secs_f64(f64::from(args.connections) / f64::from(r))),
    });
    let mut workers = JoinSet::new();
    for w in 0..args.connections {
        workers.spawn(worker(plan.clone(), usize::from(w) * 7));
    }
    let timer = {
        let plan = plan.clone();
        let deadline = measure_from + args.duration;
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            plan.stop.store(true, Ordering::Relaxed);
        })
    };
    // Workers end at the deadline, or earlier on their request budget.
    let mut total = WorkerResult::default();
    while let Some(r) = workers.join_next().await {
        let r = r?;
        total.latencies_us.extend(r.latencies_us);
        total.allowed += r.allowed;
        total.denied += r.denied;
        total.unexpected += r.unexpected;
        total.errors += r.errors;
        total.late += r.late;
        total.first_error = total.first_error.or(r.first_error);
    }
    timer.abort();
    let measured = Instant::now()
        .saturating_duration_since(measure_from)
        .min(args.duration)
        .as_secs_f64();
    let after = in_process.as_ref().and(memory_kib());

    let mut lat = std::mem::take(&mut total.latencies_us);
    lat.sort_unstable();
    let n = lat.len() as u64;
    println!("target:      {label}");
    println!(
        "load:        {} keep-alive connections, {}, {:.1} s measured after {:?} warm-up, mix {:?}",
        args.connections,
        args.rate
            .map_or("closed loop (as fast as answered)".to_owned(), |r| format!(
                "{r} requests/s offered"
            )),
        measured,
        args.warmup,
        args.mix
    );
    if check_decisions {
        println!(
            "requests:    {n} (allowed {}, denied {}, wrong decision {}, errors {})",
            total.allowed, total.denied, total.unexpected, total.errors
        );
    } else {
        println!(
            "requests:    {n} (allowed {}, denied {}, errors {})",
            total.allowed, total.denied, total.errors
        );
    }
    if let Some(e) = &total.first_error {
        println!("first error: {e}");
    }
    if measured > 0.0 {
        println!("throughput:  {:.0} requests/s", n as f64 / measured);
    }
    if args.rate.is_some() {
        println!(
            "schedule:    {} sends slipped more than one interval behind the offered rate",
            total.late
        );
    }
    println!(
        "latency:     p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        lat.last().map_or(0.0, |&m| f64::from(m) / 1000.0)
    );
    if let Some(t) = &in_process {
        if let Ok(text) = t.state.metrics.encode() {
            let get = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            if let (Some(sum), Some(count)) = (
                get("palisade_admission_duration_seconds_sum "),
                get("palisade_admission_duration_seconds_count "),
            ) && count > 0.0
            {
                println!(
                    "server:      {:.1} µs per decision on average (body parse to response built, {count} requests)",
                    sum / count * 1e6
                );
            }
        }
        if let (Some((rss0, _)), Some((rss, hwm))) = (before, after) {
            println!(
                "memory:      VmRSS {:.1} MiB after start-up, {:.1} MiB after load, VmHWM {:.1} MiB (server and load generator share this process)",
                mib(rss0),
                mib(rss),
                mib(hwm)
            );
        }
    }
    if let Some(t) = in_process {
        t.server.shutdown().await?;
    }
    if total.errors > 0 || total.unexpected > 0 {
        return Err("some requests failed or were decided unexpectedly".into());
    }
    Ok(())
}
