//! `loadgen`: the work hack/bench-agent.sh asks of the node agent, done by one process that
//! the script starts in a mount namespace of its own (`unshare -m`), so that the agent's
//! sensor counts it as a container process.
//!
//! - `open`: opens and closes one file, read-only, at a steady rate or as fast as it can.
//!   Every open of a watched path becomes a kernel record the agent receives and judges.
//! - `exec`: runs a program (by default `/bin/true`) to completion, one after another, and
//!   times the loop: each run is a fork, an exec and an exit for the sensor.
//!
//! One JSON line goes to stdout when done: what was done, in how many seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Kernel records for the node agent, from one process"
)]
struct Args {
    #[command(subcommand)]
    work: Work,
}

#[derive(Subcommand, Debug)]
enum Work {
    /// Open and close PATH read-only, RATE times a second (0: as fast as possible).
    Open {
        #[arg(long, default_value = "/etc/hostname")]
        path: PathBuf,
        /// Opens per second; 0 for as fast as possible.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// How long, in seconds (fractions allowed).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Run PROGRAM COUNT times, each to completion, and time the loop.
    Exec {
        #[arg(long, default_value = "/bin/true")]
        program: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        count: u64,
    },
}

/// How often a paced loop wakes to catch up with its schedule. Short enough that the
/// opens come in small bursts (about 2 at 4,400 a second), long enough to cost nothing.
const TICK: Duration = Duration::from_micros(500);

fn open(path: &Path, rate: u64, seconds: f64) -> anyhow::Result<Value> {
    if !(seconds > 0.0 && seconds.is_finite()) {
        bail!("--seconds must be a positive number of seconds, not {seconds}");
    }
    let duration = Duration::from_secs_f64(seconds);
    // Fail early, with the path, rather than count failed opens (which the sensor ignores).
    std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let start = Instant::now();
    let mut done: u64 = 0;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        // Opens due by now on the schedule; at full speed, a batch between clock reads.
        let due = if rate == 0 {
            done + 256
        } else {
            (elapsed.as_secs_f64() * rate as f64) as u64
        };
        while done < due {
            drop(std::fs::File::open(path)?);
            done += 1;
        }
        if rate != 0 {
            std::thread::sleep(TICK);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "work": "open",
        "path": path.display().to_string(),
        "opens": done,
        "seconds": secs,
        "per_second": done as f64 / secs,
    }))
}

fn exec(program: &Path, count: u64) -> anyhow::Result<Value> {
    let start = Instant::now();
    for i in 0..count {
        let status = Command::new(program)
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("running {} (run {i})", program.display()))?;
        if !status.success() {
            bail!("{} failed on run {i}: {status}", program.display());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "work": "exec",
        "program": program.display().to_string(),
        "runs": count,
        "seconds": secs,
        "per_second": count as f64 / secs,
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.work {
        Work::Open {
            path,
            rate,
            seconds,
        } => open(path, *rate, *seconds),
        Work::Exec { program, count } => exec(program, *count),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
