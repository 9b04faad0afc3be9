//! Everything the operator library can fail at.
//!
//! `Display` says what was being done; the cause stays reachable through `source()`.
//! [`report`] renders the whole chain on one line for logs.

use std::net::SocketAddr;

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

    /// The Lease could not be read, created or renewed.
    #[error("leader election on Lease {namespace}/{name}")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },

    /// This replica was the leader and no longer is (or can no longer prove it is).
    #[error("lost leadership of Lease {namespace}/{name}; stopping so that only one replica acts")]
    LostLeadership { namespace: String, name: String },

    #[error("cannot listen on {addr} for the admin server")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("admin server failed")]
    Serve {
        #[source]
        source: std::io::Error,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_every_cause_once() {
        let e = Error::Serve {
            source: std::io::Error::other("connection reset"),
        };
        assert_eq!(report(&e), "admin server failed: connection reset");
    }
}
