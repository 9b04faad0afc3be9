use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most findings a report keeps (worst first); the counts always cover all of them.
/// Bounded so that thousands of reports stay small in etcd; `palisade scan` and the
/// operator's cache at `<cache-dir>/reports/<digest>.json` hold the full list.
pub const MAX_REPORT_FINDINGS: usize = 100;

/// One image digest's vulnerability scan, written by the operator. The name is the digest
/// with `:` as `-` (`sha256-0f3a…`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "palisade.dev",
    version = "v1alpha1",
    kind = "ImageScanReport",
    doc = "ImageScanReport holds the vulnerability scan of one image digest: OS, package count, counts by severity and the most severe findings.",
    plural = "imagescanreports",
    shortname = "isr",
    category = "palisade",
    status = "ImageScanReportStatus",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Critical","type":"integer","jsonPath":".status.summary.critical"}"#,
    printcolumn = r#"{"name":"High","type":"integer","jsonPath":".status.summary.high"}"#,
    printcolumn = r#"{"name":"OS","type":"string","jsonPath":".status.os","priority":1}"#,
    printcolumn = r#"{"name":"Scanned","type":"date","jsonPath":".status.scannedAt","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanReportSpec {
    /// A pullable reference to the image, pinned by digest
    /// (`docker.io/library/nginx:1.25@sha256:…`).
    pub image: String,
    /// The digest the report is for (an index's digest for multi-platform images).
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub digest: String,
}

/// Where a report is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ScanPhase {
    /// Queued; not scanned yet.
    #[default]
    Pending,
    /// Scanned: the summary and findings are current.
    Scanned,
    /// The last scan failed (`message` says why); retried with backoff.
    Failed,
}

/// Findings counted by severity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeveritySummary {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub unknown: u32,
}

/// One vulnerable package.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportFinding {
    /// Advisory id (`DSA-5532-1`, `CVE-2023-5363`).
    pub id: String,
    /// Other ids of the same vulnerability, CVE ids first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub package: String,
    pub installed_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    /// `Critical`, `High`, `Medium`, `Low` or `Unknown`.
    pub severity: String,
}

/// The scan result, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanReportStatus {
    pub phase: ScanPhase,
    /// Why the last scan failed, or what a pending report waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The single-platform manifest that was scanned, and its platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The OS (`Debian GNU/Linux 12 (bookworm)`), if one was recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// The vulnerability database ecosystem used (`Debian:12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<u32>,
    /// All findings, counted by severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SeveritySummary>,
    /// The findings that have a fixed version, counted by severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixable: Option<SeveritySummary>,
    /// The most severe findings, worst first, at most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<ReportFinding>,
    /// How many findings did not fit in `findings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings_omitted: Option<u32>,
    /// Scanner and vulnerability database versions the result comes from; a change of the
    /// database re-scans the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanner_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<Time>,
    /// How long the scan took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_duration_ms: Option<u64>,
    /// Failed attempts in a row (backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
}

/// The report name of a digest: `sha256:ab…` is `sha256-ab…`.
pub fn report_name(digest: &str) -> String {
    digest.replace(':', "-")
}
