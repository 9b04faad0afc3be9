use thiserror::Error;

/// A kernel record that could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record kind {0} is not one this agent knows")]
    UnknownKind(u32),
    #[error("{kind} record of {got} bytes, shorter than its {need}")]
    Short {
        kind: &'static str,
        need: usize,
        got: usize,
    },
    #[error("address family {0} is neither IPv4 nor IPv6")]
    Family(u16),
}

/// Why the agent could not start or keep watching.
#[derive(Debug, Error)]
pub enum Error {
    #[error("loading the eBPF sensor: {0}")]
    Load(#[source] libbpf_rs::Error),
    #[error("attaching the eBPF sensor's programs: {0}")]
    Attach(#[source] libbpf_rs::Error),
    #[error("configuring the eBPF sensor's filters ({what}): {source}")]
    Configure {
        what: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("reading the eBPF ring buffer: {0}")]
    Poll(#[source] libbpf_rs::Error),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the netlink process connector: {0}")]
    Connector(#[source] std::io::Error),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("starting a sensor thread: {0}")]
    Thread(String),
}
