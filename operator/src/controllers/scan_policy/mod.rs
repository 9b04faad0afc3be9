//! The ScanPolicy controller: checks each generation with the compiler the webhook uses and
//! says on the status (`Ready`, `observedGeneration`) and in Events whether it is in force.
//!
//! The counts on the status (`imagesScanned`, `imagesFailing`, `lastEvaluationTime`) are the
//! audit's, written under its own field manager, so neither write removes the other's
//! fields.

mod plan;
mod reconcile;
mod run;

pub use plan::{RESYNC, desired, needs_write, next_check, notice, valid_message};
pub use reconcile::{CONTROLLER, Context, error_policy, reconcile};
pub use run::{Config, run};
