//! The Kubernetes plumbing that Palisade's binaries share, and nothing else: no policy, no
//! decision, no knowledge of which binary runs it. Names, labels, namespaces and ports come
//! in as parameters.
//!
//! - [`events`]: Events through `events.k8s.io/v1`, with the `core/v1` fallback older API
//!   servers need for cluster-scoped objects;
//! - [`backoff`]: per-object retry delays for a reconciler's `error_policy`;
//! - [`controller`]: how a controller's result stream is logged;
//! - [`field_manager`]: the server-side apply field manager of every Palisade writer;
//! - [`registry_credentials`] (feature `registry-credentials`): registry logins from
//!   `kubernetes.io/dockerconfigjson` (and `dockercfg`) Secrets;
//! - [`admin`]: the plain-HTTP admin server (`/livez`, `/readyz`, `/metrics`);
//! - [`lease`]: leader election on a Lease, and the readiness it implies;
//! - [`shutdown`]: a stop signal shared by the parts of a process.

pub mod admin;
pub mod backoff;
pub mod controller;
pub mod error;
pub mod events;
pub mod field_manager;
pub mod lease;
#[cfg(feature = "registry-credentials")]
pub mod registry_credentials;
pub mod shutdown;

pub use error::Error;
