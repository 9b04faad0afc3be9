//! Loads the kernel programs, keeps their filter maps in step with the rules, and drains the
//! ring buffer. Everything here runs on one thread: the loaded skeleton is not shared.

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, RingBufferBuilder};
use tracing::{debug, warn};

use super::filters::{Filters, path_key};
use crate::bpf::{SensorSkel, SensorSkelBuilder};
use crate::error::Error;

/// What the kernel programs are told before they load.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// The host's mount namespace (inode of /proc/1/ns/mnt as the agent sees it with
    /// hostPID): processes there are not in a container.
    pub host_mnt_ns: u32,
    /// The agent's own process, never reported.
    pub agent_pid: u32,
}

/// The loaded, attached sensor.
pub struct EbpfSensor {
    skel: SensorSkel<'static>,
}

impl EbpfSensor {
    /// Loads and attaches the programs. Fails where the kernel has no BTF or the agent lacks
    /// CAP_BPF and CAP_PERFMON; the caller then falls back.
    pub fn load(options: LoadOptions) -> Result<EbpfSensor, Error> {
        // The skeleton borrows its object for as long as it lives, which is the agent's
        // life: one small allocation, kept on purpose.
        let object: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = SensorSkelBuilder::default()
            .open(object)
            .map_err(Error::Load)?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.host_mnt_ns = options.host_mnt_ns;
            rodata.agent_pid = options.agent_pid;
        }
        let mut skel = open.load().map_err(Error::Load)?;
        skel.attach().map_err(Error::Attach)?;
        Ok(EbpfSensor { skel })
    }

    /// Replaces the kernel's filters with `filters`.
    pub fn set_filters(&self, filters: &Filters) -> Result<(), Error> {
        let maps = &self.skel.maps;
        let mut settings = filters.hook_bits().to_ne_bytes().to_vec();
        settings.extend(filters.flag_bits().to_ne_bytes());
        update(&maps.settings, &0u32.to_ne_bytes(), &settings, "hooks")?;

        clear(&maps.watched_paths, "paths")?;
        for (prefix, exact) in filters.paths() {
            update(&maps.watched_paths, &path_key(prefix, exact), &[1], "paths")?;
        }
        clear(&maps.watched_names, "names")?;
        for name in &filters.names {
            update(&maps.watched_names, &fixed::<32>(name), &[1], "names")?;
        }
        clear(&maps.watched_ports, "ports")?;
        for port in &filters.ports {
            update(&maps.watched_ports, &port.to_ne_bytes(), &[1], "ports")?;
        }
        clear(&maps.watched_addrs, "addresses")?;
        for address in &filters.addresses {
            let mut key = [0u8; 16];
            match address {
                std::net::IpAddr::V4(a) => key[..4].copy_from_slice(&a.octets()),
                std::net::IpAddr::V6(a) => key.copy_from_slice(&a.octets()),
            }
            update(&maps.watched_addrs, &key, &[1], "addresses")?;
        }
        clear(&maps.watched_comms, "process names")?;
        for comm in &filters.comms {
            update(
                &maps.watched_comms,
                &fixed::<16>(comm),
                &[1],
                "process names",
            )?;
        }
        Ok(())
    }

    /// Records lost in the kernel because the ring buffer was full, since load.
    pub fn dropped(&self) -> u64 {
        match self
            .skel
            .maps
            .dropped
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        {
            Ok(Some(per_cpu)) => per_cpu
                .iter()
                .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum(),
            Ok(None) => 0,
            Err(e) => {
                warn!(error = %e, "could not read the dropped-records counter");
                0
            }
        }
    }

    /// Hands every record to `on_record` until `stop` is set. Between polls, `between` runs
    /// with the sensor (to apply new filters, read counters).
    pub fn run(
        &self,
        mut on_record: impl FnMut(&[u8]),
        stop: &AtomicBool,
        mut between: impl FnMut(&EbpfSensor) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&self.skel.maps.events, |bytes: &[u8]| {
                on_record(bytes);
                0
            })
            .map_err(Error::Poll)?;
        let ring = builder.build().map_err(Error::Poll)?;
        while !stop.load(Ordering::Relaxed) {
            // The kernel side wakes the poll only for a backlog (see submit() in
            // sensor.bpf.c); otherwise the timeout is the drain timer, which bounds the
            // added latency.
            ring.poll(DRAIN_EVERY).map_err(Error::Poll)?;
            ring.consume().map_err(Error::Poll)?;
            between(self)?;
        }
        debug!("sensor stopped");
        Ok(())
    }
}

/// How often the ring buffer is drained when the kernel has not woken the reader.
const DRAIN_EVERY: Duration = Duration::from_millis(20);

/// Counts shared with the metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub dropped: AtomicU64,
}

impl Counters {
    pub fn new() -> Arc<Counters> {
        Arc::new(Counters::default())
    }
}

fn update(map: &impl MapCore, key: &[u8], value: &[u8], what: &'static str) -> Result<(), Error> {
    map.update(key, value, MapFlags::ANY)
        .map_err(|source| Error::Configure { what, source })
}

fn clear(map: &impl MapCore, what: &'static str) -> Result<(), Error> {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    for key in keys {
        map.delete(&key)
            .map_err(|source| Error::Configure { what, source })?;
    }
    Ok(())
}

/// A string in a fixed, NUL-padded key.
fn fixed<const N: usize>(s: &str) -> [u8; N] {
    let mut key = [0u8; N];
    let len = s.len().min(N - 1);
    key[..len].copy_from_slice(&s.as_bytes()[..len]);
    key
}
