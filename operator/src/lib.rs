//! The Palisade operator: keeps SecurityPolicy status true, owns the webhook registration
//! and its certificates, and audits what already runs.
//!
//! One reconciler shape throughout: `reconcile(Arc<K>, Arc<Context>) -> Result<Action>` with an
//! `error_policy`, writes by server-side apply under one field manager ([`FIELD_MANAGER`]).

pub mod admin;
pub mod audit;
pub mod certs;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod policy_controller;
pub mod policy_report;
pub mod registration;
pub mod status;

pub use error::Error;

/// The field manager of every write the operator makes.
///
/// Server-side apply removes fields a manager stops sending, so every status write under
/// this name carries all the fields it owns; a writer of other status fields (the audit's
/// `violations`) must send them all too, or use a field manager of its own.
pub const FIELD_MANAGER: &str = "palisade-operator";
