use std::sync::atomic::AtomicBool;

use anyhow::Context;
use palisade_agent::sensor::ebpf::{EbpfSensor, LoadOptions};
use palisade_agent::sensor::filters::Filters;
use palisade_agent::sensor::record::{Kind, decode};

fn main() -> anyhow::Result<()> {
    let host_mnt_ns =
        std::fs::metadata("/proc/self/ns/mnt").context("reading /proc/self/ns/mnt")?;
    use std::os::unix::fs::MetadataExt;
    let sensor = EbpfSensor::load(LoadOptions {
        host_mnt_ns: host_mnt_ns.ino() as u32,
        agent_pid: std::process::id(),
    })?;
    let filters = Filters {
        kinds: Kind::ALL.into_iter().collect(),
        path_prefixes: ["/etc/".to_string()].into(),
        ..Filters::default()
    };
    sensor.set_filters(&filters)?;
    let stop = AtomicBool::new(false);
    sensor.run(
        |bytes| match decode(bytes) {
            Ok(r) => println!("{r:?}"),
            Err(e) => eprintln!("{e}"),
        },
        &stop,
        |_| Ok(()),
    )?;
    Ok(())
}
