//! The kernel side: the eBPF sensor, or where it cannot load, the process connector; either
//! way a stream of [`Record`]s on a bounded channel, and counters of what was seen and lost.

pub mod connector;
pub mod ebpf;
pub mod filters;
pub mod procfs;
pub mod record;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, mpsc};
use std::thread;

use tracing::{error, info, warn};

use self::connector::{ProcConnector, ProcEvent};
use self::ebpf::{EbpfSensor, LoadOptions};
use self::filters::Filters;
use self::procfs::ProcFs;
use self::record::{Kind, Record, decode};
use crate::error::Error;

/// Which sensor to run (`--sensor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// eBPF where it loads, else the process connector.
    Auto,
    /// eBPF only: fail when it cannot load.
    Ebpf,
    /// The process connector only (exec, fork and exit).
    Fallback,
}

/// Which sensor runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    Ebpf,
    Fallback,
}

impl Coverage {
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Ebpf => "ebpf",
            Coverage::Fallback => "fallback",
        }
    }
}

/// What the sensor saw and lost, for the metrics.
#[derive(Debug, Default)]
pub struct Stats {
    received: [AtomicU64; 16],
    /// Lost in the kernel: the ring buffer was full.
    pub dropped_kernel: AtomicU64,
    /// Lost in the agent: the records channel was full.
    pub dropped_agent: AtomicU64,
    pub undecodable: AtomicU64,
}

impl Stats {
    pub fn received(&self, kind: Kind) -> u64 {
        self.received[kind as usize].load(Ordering::Relaxed)
    }

    fn count(&self, kind: Kind) {
        self.received[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The running sensor.
pub struct Running {
    pub coverage: Coverage,
    /// Why eBPF is not running, when it is not.
    pub fallback_reason: Option<String>,
    pub records: Receiver<Record>,
    pub filters: mpsc::Sender<Filters>,
    pub stats: Arc<Stats>,
}

pub struct Options {
    pub choice: Choice,
    pub load: LoadOptions,
    pub filters: Filters,
    pub proc: ProcFs,
    /// Records held between the sensor and the rules.
    pub queue: usize,
}

/// Starts the sensor on its own thread.
pub fn start(options: Options, stop: Arc<AtomicBool>) -> Result<Running, Error> {
    let stats = Arc::new(Stats::default());
    let (records_tx, records) = sync_channel(options.queue.max(1));
    let (filters, filters_rx) = mpsc::channel::<Filters>();

    let (coverage, fallback_reason) = match options.choice {
        Choice::Fallback => (Coverage::Fallback, Some("--sensor=fallback".to_string())),
        choice => {
            let (ready_tx, ready_rx) = mpsc::channel();
            let thread_stats = stats.clone();
            let thread_stop = stop.clone();
            let tx = records_tx.clone();
            let load = options.load;
            let initial = options.filters.clone();
            thread::Builder::new()
                .name("sensor-ebpf".into())
                .spawn(move || {
                    let sensor = match EbpfSensor::load(load)
                        .and_then(|s| s.set_filters(&initial).map(|()| s))
                    {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let result = sensor.run(
                        |bytes| forward(decode(bytes), &tx, &thread_stats),
                        &thread_stop,
                        |s| {
                            thread_stats
                                .dropped_kernel
                                .store(s.dropped(), Ordering::Relaxed);
                            match filters_rx.try_recv() {
                                Ok(f) => s.set_filters(&f),
                                Err(TryRecvError::Empty | TryRecvError::Disconnected) => Ok(()),
                            }
                        },
                    );
                    if let Err(e) = result {
                        error!(error = %e, "the eBPF sensor stopped");
                    }
                })
                .map_err(|e| Error::Thread(e.to_string()))?;
            match ready_rx.recv() {
                Ok(Ok(())) => (Coverage::Ebpf, None),
                Ok(Err(e)) if choice == Choice::Auto => {
                    warn!(error = %e, "the eBPF sensor cannot load here; falling back to the process connector");
                    (Coverage::Fallback, Some(format!("{e}")))
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Thread("the eBPF sensor thread ended".into())),
            }
        }
    };

    if coverage == Coverage::Fallback {
        let mut connector = ProcConnector::open()?;
        let proc = options.proc.clone();
        let host_mnt_ns = options.load.host_mnt_ns;
        let thread_stats = stats.clone();
        thread::Builder::new()
            .name("sensor-connector".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let events = match connector.recv() {
                        Ok(events) => events,
                        Err(e) => {
                            error!(error = %e, "the process connector stopped");
                            return;
                        }
                    };
                    for event in events {
                        // Nothing filters in the kernel here: host processes are left out
                        // as soon as their namespace is known.
                        if let Some(record) = from_connector(&proc, event)
                            .filter(|r| r.header().mnt_ns != host_mnt_ns)
                        {
                            forward(Ok(record), &records_tx, &thread_stats);
                        }
                    }
                }
            })
            .map_err(|e| Error::Thread(e.to_string()))?;
    }
    info!(sensor = coverage.as_str(), "sensor running");
    Ok(Running {
        coverage,
        fallback_reason,
        records,
        filters,
        stats,
    })
}

fn forward(
    record: Result<Record, crate::error::DecodeError>,
    tx: &SyncSender<Record>,
    stats: &Stats,
) {
    match record {
        Ok(record) => {
            stats.count(record.kind());
            match tx.try_send(record) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    stats.dropped_agent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Err(e) => {
            stats.undecodable.fetch_add(1, Ordering::Relaxed);
            warn!(error = %e, "an undecodable record from the kernel");
        }
    }
}

/// The record a process connector event stands for, read from /proc now.
fn from_connector(proc: &ProcFs, event: ProcEvent) -> Option<Record> {
    let now = boot_time_ns();
    match event {
        ProcEvent::Exec { pid, tgid } if pid == tgid => proc.exec_record(tgid, now),
        ProcEvent::Fork {
            child_pid,
            child_tgid,
            ..
        } if child_pid == child_tgid => proc.header(child_tgid, now).map(Record::Fork),
        ProcEvent::Exit { pid, tgid } if pid == tgid => Some(Record::Exit(record::Header {
            time_ns: now,
            pid: tgid,
            tid: tgid,
            ..record::Header::default()
        })),
        _ => None,
    }
}

/// CLOCK_BOOTTIME now, the kernel records' clock.
pub fn boot_time_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// Wall-clock time now, in nanoseconds since the epoch.
pub fn epoch_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}
