//! The run loop between the sensor and the outputs, on its own thread: records in, then for
//! each detection the JSON line on stdout, the kill in Enforce, the metrics, and a notice for
//! the Kubernetes outputs (which run on the async side and never slow this loop down: when
//! their queue is full, the notice is counted and dropped, the JSON line and kill are not).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use palisade_policy::runtime::HookSet;
use palisade_policy::{Detection, RuleDocs, Verdict, compliance_properties};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::detect::{Detector, Found, Snapshot};
use crate::enforce;
use crate::metrics::Metrics;
use crate::output::events::Notice;
use crate::output::json::{self, Alert};
use crate::output::reports::Seen;
use crate::process_table::{BootClock, ProcessTable};
use crate::sensor::filters::Filters;
use crate::sensor::procfs::ProcFs;
use crate::sensor::record::Record;
use crate::sensor::{Coverage, boot_time_ns, epoch_ns};

pub struct Config {
    /// This node's name: the JSON lines' `hostname`.
    pub hostname: String,
    /// Write a JSON line per detection to stdout.
    pub json: bool,
    pub proc: ProcFs,
    pub table_capacity: usize,
    pub pending_max: usize,
    pub pending_wait: Duration,
    pub coverage: Coverage,
    /// The host's mount namespace: processes elsewhere are read from /proc at start.
    pub host_mnt_ns: u32,
    /// `--standalone`: any process outside the host's mount namespace is a container's.
    pub any_namespace_is_a_container: bool,
    /// Where report results link each rule's page.
    pub docs: RuleDocs,
}

/// Where the loop's results go.
pub struct Sinks {
    pub notices: tokio::sync::mpsc::Sender<Notice>,
    /// Every detection, waived ones too, for the PolicyReports (none in --standalone).
    pub reports: Option<tokio::sync::mpsc::Sender<Seen>>,
    pub filters: mpsc::Sender<Filters>,
    /// The applied rules the running sensor cannot see, for the status and metrics.
    pub uncovered: watch::Sender<Vec<&'static str>>,
    pub metrics: Arc<Metrics>,
}

/// The hooks a sensor offers.
pub fn hooks_of(coverage: Coverage) -> HookSet {
    match coverage {
        Coverage::Ebpf => HookSet::all(),
        Coverage::Fallback => HookSet::EXEC_ONLY,
    }
}

pub fn spawn(
    config: Config,
    records: Receiver<Record>,
    mut snapshots: watch::Receiver<Snapshot>,
    sinks: Sinks,
    stop: Arc<AtomicBool>,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || {
            let mut detector = Detector::with_table(
                ProcessTable::new(config.table_capacity)
                    .with_namespaces_as_containers(config.any_namespace_is_a_container),
                config.pending_max,
                config.pending_wait.as_nanos() as u64,
            );
            seed(&mut detector, &config);
            sinks
                .metrics
                .table
                .capacity
                .store(config.table_capacity as u64, Ordering::Relaxed);
            let mut applied: Option<Vec<&'static str>> = None;
            let mut snapshot: Snapshot = snapshots.borrow_and_update().clone();
            apply_rules(&snapshot, &config, &sinks, &mut applied);
            let mut clock = boot_clock();
            let mut last_tick = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if snapshots.has_changed().unwrap_or(false) {
                    snapshot = snapshots.borrow_and_update().clone();
                    apply_rules(&snapshot, &config, &sinks, &mut applied);
                }
                match records.recv_timeout(Duration::from_millis(100)) {
                    Ok(record) => {
                        if let Some(found) =
                            detector.handle(&record, clock, record.header().time_ns, &snapshot)
                        {
                            report(&found, &config, &sinks);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        if !stop.load(Ordering::Relaxed) {
                            warn!("the sensor stopped; the pipeline ends");
                        }
                        break;
                    }
                }
                if last_tick.elapsed() >= Duration::from_millis(250) {
                    last_tick = Instant::now();
                    clock = boot_clock();
                    for found in detector.retry(boot_time_ns(), &snapshot) {
                        report(&found, &config, &sinks);
                    }
                    let table = &sinks.metrics.table;
                    table
                        .entries
                        .store(detector.table().len() as u64, Ordering::Relaxed);
                    sinks.metrics.set_unattributed(detector.unattributed);
                }
            }
        })
}

/// Processes that were running before the agent started, read from /proc, so that their
/// children have a parent and ancestors. Nothing is judged here.
fn seed(detector: &mut Detector, config: &Config) {
    let now = boot_time_ns();
    let mut seeded = 0;
    for pid in config.proc.pids() {
        if config
            .proc
            .mnt_ns(pid)
            .is_none_or(|ns| ns == config.host_mnt_ns)
        {
            continue;
        }
        if let Some(record) = config.proc.exec_record(pid, now) {
            detector.table_mut().observe(&record);
            seeded += 1;
        }
    }
    info!(processes = seeded, "process table seeded from /proc");
}

fn boot_clock() -> BootClock {
    BootClock {
        boot_to_epoch_ns: epoch_ns().saturating_sub(boot_time_ns()),
    }
}

/// New policies: the kernel filters and the uncovered rules follow the applied rules.
fn apply_rules(
    snapshot: &Snapshot,
    config: &Config,
    sinks: &Sinks,
    applied: &mut Option<Vec<&'static str>>,
) {
    let rules = snapshot.policies.rules();
    let ids: Vec<&'static str> = rules.iter().map(|r| r.id()).collect();
    let interest = snapshot.policies.interest(&snapshot.cluster);
    let _ = sinks
        .filters
        .send(Filters::from_interest(&interest, &rules));
    if applied.as_ref() != Some(&ids) {
        let uncovered: Vec<&'static str> = snapshot
            .policies
            .uncovered(hooks_of(config.coverage))
            .iter()
            .map(|r| r.id())
            .collect();
        if uncovered.is_empty() {
            info!(
                rules = ids.len(),
                sensor = config.coverage.as_str(),
                "runtime rules applied"
            );
        } else {
            warn!(
                rules = ids.len(),
                sensor = config.coverage.as_str(),
                uncovered = %uncovered.join(", "),
                "runtime rules applied; the sensor here cannot see some of them"
            );
        }
        sinks.metrics.set_uncovered(uncovered.iter().copied());
        sinks.uncovered.send_replace(uncovered);
        *applied = Some(ids);
    }
}

/// What one detection led to.
fn action_of(d: &Detection, kill: Option<&enforce::Outcome>) -> &'static str {
    match (&d.verdict, kill) {
        (Verdict::Waived { .. }, _) => "waived",
        (Verdict::Kill, Some(enforce::Outcome::Killed)) => "killed",
        (Verdict::Kill, Some(enforce::Outcome::Failed(_))) => "kill_failed",
        // Gone before it could be killed: reported.
        _ => "reported",
    }
}

fn report(found: &Found, config: &Config, sinks: &Sinks) {
    let p = &found.event.process;
    let kill = found
        .detections
        .iter()
        .any(|d| d.verdict == Verdict::Kill)
        .then(|| {
            let ticks = enforce::ticks(&config.proc, found.start_boot_ns);
            let outcome = enforce::kill(&config.proc, p.pid, Some(ticks));
            if let enforce::Outcome::Failed(why) = &outcome {
                warn!(pid = p.pid, error = %why, "could not kill an offending process");
            }
            outcome
        });
    let mut stdout = std::io::stdout().lock();
    for d in &found.detections {
        let action = action_of(d, kill.as_ref());
        let rule = d.rule;
        let priority = d.priority().as_str();
        sinks.metrics.detection(rule.id(), priority, action);
        let policy = format!("SecurityPolicy/{}", d.policy);
        if config.json {
            let mut tags: Vec<&str> = vec!["container", "palisade"];
            tags.extend(rule.mitre());
            let line = json::line(&Alert {
                rule_id: rule.id(),
                rule_name: rule.name(),
                priority,
                output: &d.output,
                tags: &tags,
                policy: &policy,
                action,
                event: &found.event,
                container: Some(&found.container.info),
                hostname: &config.hostname,
            });
            // A closed stdout must not stop detection.
            let _ = writeln!(stdout, "{line}");
        }
        if let Some(reports) = &sinks.reports {
            let mut properties = std::collections::BTreeMap::new();
            properties.insert("docs".to_owned(), config.docs.url(d.rule_id()));
            compliance_properties(d.rule_id(), &mut properties);
            let seen = Seen {
                policy: d.policy.clone(),
                rule_id: rule.id(),
                rule_name: rule.name(),
                priority,
                severity: d.priority().report_severity(),
                action,
                waived_by: match &d.verdict {
                    Verdict::Waived { exception, .. } => Some(exception.clone()),
                    _ => None,
                },
                output: d.output.clone(),
                process: std::iter::once(p.name.as_str())
                    .chain(p.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                container: found.container.info.clone(),
                time_ns: found.event.time_ns,
                properties,
            };
            if reports.try_send(seen).is_err() {
                sinks.metrics.output_dropped("reports");
            }
        }
        if action == "waived" {
            continue;
        }
        let notice = Notice {
            rule_id: rule.id(),
            rule_name: rule.name(),
            priority,
            policy,
            action,
            output: d.output.clone(),
            container_id: p.container_id.clone(),
            container: found.container.info.clone(),
            time_ns: found.event.time_ns,
        };
        if sinks.notices.try_send(notice).is_err() {
            sinks.metrics.output_dropped("events");
        }
    }
    let _ = stdout.flush();
}
