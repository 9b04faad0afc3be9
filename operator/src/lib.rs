//! The Palisade operator: keeps SecurityPolicy status true, owns the webhook registration
//! and its certificates, audits what already runs, and scans the images of
//! ImageScanReports (creating them for running images).
//!
//! One folder per subsystem: [`controllers`] (SecurityPolicy and ScanPolicy status),
//! [`agent`] (the node agent's DaemonSet),
//! [`certs`] (the webhook's certificates and its registration), [`audit`] (PolicyReports of
//! what runs) and [`scanning`] (ImageScanReports). Inside each, pure planning, API I/O and
//! run loops live in files of their own. What is not Palisade's own (Events, backoff, the
//! Lease, the admin server, registry logins) is `palisade_kube_plumbing`'s.
//!
//! One reconciler shape throughout: `reconcile(Arc<K>, Arc<Context>) -> Result<Action>` with an
//! `error_policy`, writes by server-side apply under one field manager ([`FIELD_MANAGER`]).

pub mod admin;
pub mod agent;
pub mod audit;
pub mod certs;
pub mod controllers;
pub mod error;
pub mod metrics;
pub mod scanning;

pub use error::Error;

/// The field manager of every write the operator makes, the audit's aside; also the
/// component named on its Events.
///
/// Server-side apply removes fields a manager stops sending, so every status write under
/// this name carries all the fields it owns; a writer of other status fields (the audit's
/// `violations`) must send them all too, or use a field manager of its own.
pub const FIELD_MANAGER: &str = palisade_kube_plumbing::field_manager::OPERATOR;

/// The Lease the replicas compete for, in the operator's namespace.
pub const LEASE_NAME: &str = "palisade-operator";
