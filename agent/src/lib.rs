//! palisade-agent: the node sensor. eBPF programs report what container processes do; the
//! agent ties each process to its container and pod, judges it with the runtime rules of the
//! SecurityPolicies, and reports detections.

mod bpf;
pub mod container;
pub mod detect;
pub mod enforce;
pub mod error;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod pods;
pub mod process_table;
pub mod sensor;
pub mod standalone;
pub mod status;
pub mod watches;

pub use error::{DecodeError, Error};
