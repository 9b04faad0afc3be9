//! Reports for what already runs: every image of every pod (outside the namespaces the
//! webhook never judges) gets an ImageScanReport, which the scan controller then fills.
//!
//! The digest comes from the container status's `imageID` when the runtime reports one,
//! else from the registry (the tag's current digest, cached).
//!
//! The platform scanned is that of the node the pod is scheduled on (its
//! `kubernetes.io/os` and `kubernetes.io/arch` labels, from a metadata-only Node reflector):
//! an image that runs on amd64 and arm64 nodes gets a report for each. A pod not scheduled
//! yet, or on a node without the label, counts for the operator's default platform, whose
//! report keeps the plain `sha256-<hex>` name the webhook reads.

mod plan;
mod pods;
mod run;

pub use plan::{
    ARCH_LABEL, OS_LABEL, WantedReport, digest_from_image_id, images_of, node_platform,
    pod_platform, wanted_report, wanted_reports,
};
pub use pods::Config;
pub use run::run;
