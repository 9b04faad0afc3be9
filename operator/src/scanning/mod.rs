//! Image scanning: the ImageScanReport controller scans each report's image digest and
//! writes the result on its status; the running-images watcher creates reports for what
//! pods run.
//!
//! A report is scanned when it has no status or is Pending; scanned again when its
//! database version is no longer the current one for its ecosystem, when its scanner
//! version differs, or when it is older than the max report age, or when the webhook asks
//! for it ([`RESCAN_ANNOTATION`]); a Failed one is retried every [`RETRY`]. The full
//! findings list goes to `<cache>/reports/<report name>.json` and the inventory it was judged
//! from beside it ([`files`]); the status carries the counts and the
//! [`palisade_crds::MAX_REPORT_FINDINGS`] most severe findings. The admin port serves both,
//! the inventory as an SBOM ([`serve`]).
//!
//! `plan` decides (pure), `reconcile` scans and writes, `run` wires the controller, the
//! database refresh ([`db`]), the [`running`] watcher and the sweep of deleted reports'
//! files; [`view`] is what the audit reads.

mod config;
pub mod db;
pub mod files;
mod plan;
mod reconcile;
mod registry;
mod run;
pub mod running;
pub mod serve;
pub mod view;

pub use config::{Config, reports_dir};
pub use db::ScanDb;
pub use plan::{
    Decision, RESCAN_ANNOTATION, RETRY, coverage_of, decide, failed_status, gap_of,
    max_age_changed, parse_age, rescan_requested, scanned_message, scanned_status, secret_refs,
    top_findings,
};
pub use reconcile::{CONTROLLER, Context, ScanError, error_policy, reconcile};
pub use registry::RegistryAccess;
pub use run::run;
pub use view::{DigestBook, ScanView};
