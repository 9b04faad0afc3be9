//! The Palisade operator: keeps SecurityPolicy status true, owns the webhook registration
//! and its certificates, and audits what already runs.
//!
//! One reconciler shape throughout: `reconcile(Arc<K>, Arc<Context>) -> Result<Action>` with an
//! `error_policy`, writes by server-side apply under one field manager ([`FIELD_MANAGER`]).

pub mod certs;
pub mod registration;

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "palisade-operator";
