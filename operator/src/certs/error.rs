//! What managing the webhook's certificates can fail at.

use std::io;
use std::path::PathBuf;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} Secret {namespace}/{name}")]
    Kube {
        action: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot generate the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("external Secret {namespace}/{name}: {reason}")]
    External {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid certificate configuration: {0}")]
    Config(String),
}
