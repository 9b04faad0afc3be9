//! Reports for what already runs: every image of every pod (outside the namespaces the
//! webhook never judges) gets an ImageScanReport, which the scan controller then fills.
//!
//! The digest comes from the container status's `imageID` when the runtime reports one,
//! else from the registry (the tag's current digest, cached).

mod plan;
mod pods;
mod run;

pub use plan::{digest_from_image_id, images_of};
pub use pods::Config;
pub use run::run;
