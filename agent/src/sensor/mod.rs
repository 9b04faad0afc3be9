//! The kernel side: the eBPF sensor, its records and its filters.

pub mod connector;
pub mod ebpf;
pub mod filters;
pub mod record;
