//! Everything the operator library can fail at.
//!
//! `Display` says what was being done; the cause stays reachable through `source()`.
//! [`report`] renders the whole chain on one line for logs.

/// An error of the operator library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },

    /// A status document could not be serialized (a bug, not bad input).
    #[error("cannot serialize the status of SecurityPolicy {policy}")]
    Serialize {
        policy: String,
        #[source]
        source: serde_json::Error,
    },

    /// The object meant to own what the operator creates cannot serve as an owner.
    #[error("{kind} {name} cannot own the webhook registration: {reason}")]
    Owner {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },
}

impl Error {
    pub(crate) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }
}

pub use palisade_process::report;
