//! Everything the plumbing can fail at.
//!
//! `Display` says what was being done; the cause stays reachable through `source()`.
//! [`report`] renders the whole chain on one line for logs.

use std::net::SocketAddr;

/// An error of the plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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

    /// An object (a pull Secret, a ServiceAccount) that could not be read; it is logged and
    /// the next source of registry logins is tried.
    #[error("cannot read {what} from the API server")]
    ApiRead {
        what: String,
        #[source]
        source: kube::Error,
    },

    /// A pull Secret whose logins cannot be used; `reason` names the Secret.
    #[error("{reason}")]
    PullSecret { reason: String },
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
