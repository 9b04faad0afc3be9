//! The controllers of Palisade's own kinds: each checks a policy's current generation with
//! the compiler the webhook uses and says on its status, and in Events, whether it is in
//! force. One folder per kind: `plan` (pure: what the status should say), `reconcile` (the
//! Context, one reconcile and its `error_policy`), `run` (the controller's loop).

pub mod conditions;
pub mod scan_policy;
pub mod security_policy;
