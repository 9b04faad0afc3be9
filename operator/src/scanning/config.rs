//! The settings of scanning.

use std::path::PathBuf;
use std::time::Duration;

use palisade_scanner::oci::Platform;

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Config {
    /// `reportingInstance` of Events.
    pub instance: String,
    /// Where a ScanPolicy's credential Secret is looked up when it names no namespace.
    pub namespace: String,
    /// Holds `inventories/` and `reports/` (the OSV cache is the [`ScanDb`](super::db::ScanDb)'s).
    pub cache_dir: PathBuf,
    /// At most this many scans at a time.
    pub concurrency: u16,
    /// Reports older than this are scanned again; a ScanPolicy's shorter maxReportAge wins.
    pub max_report_age: Duration,
    /// The platform scanned in a multi-platform image when a report names none: reports the
    /// webhook creates, and those of pods whose node is not known or has no
    /// `kubernetes.io/arch` label.
    pub platform: Platform,
    /// Time between two checks for newer database exports.
    pub db_refresh: Duration,
    /// Create reports for the images pods run; `None`: only for reports created otherwise.
    pub running: Option<super::running::Config>,
}

impl Config {
    /// Where each report's full findings and inventory are kept
    /// ([`ReportFiles`](super::files::ReportFiles)).
    pub fn reports_dir(&self) -> PathBuf {
        reports_dir(&self.cache_dir)
    }
}

/// The `reports/` folder of the cache `cache_dir`.
pub fn reports_dir(cache_dir: &std::path::Path) -> PathBuf {
    cache_dir.join("reports")
}
