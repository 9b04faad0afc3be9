//! The SecurityPolicy controller: checks each generation with the engine the webhook runs,
//! and says on the status (and in Events) whether it is in force.
//!
//! Objects are watched untyped, like the webhook does, so that one object this version
//! cannot read is reported on its own status instead of stalling the whole watch.

mod plan;
mod reconcile;
mod run;

pub use plan::{Verdict, check, desired, needs_write, notice, summary, valid_message};
pub use reconcile::{CONTROLLER, Context, RESYNC, error_policy, reconcile, resource};
pub use run::{Config, run};
