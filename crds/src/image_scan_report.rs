use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most findings a report keeps (worst first); the counts always cover all of them.
/// Bounded so that thousands of reports stay small in etcd; `palisade scan` and the
/// operator's cache at `<cache-dir>/reports/<report name>.json` hold the full list.
pub const MAX_REPORT_FINDINGS: usize = 100;

/// One image digest's vulnerability scan for one platform, written by the operator. The name
/// is the digest with `:` as `-` (`sha256-0f3a…`) for the operator's default platform, and
/// that with the platform appended (`sha256-0f3a…-linux-arm64`) for any other; see
/// [`report_name_for`].
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
    printcolumn = r#"{"name":"Platform","type":"string","jsonPath":".status.platform","priority":1}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Coverage","type":"string","jsonPath":".status.coverage"}"#,
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
    /// The platform to scan from a multi-platform index, `os/arch[/variant]`
    /// (`linux/arm64`): that of the nodes the image runs on. Absent: the operator's
    /// default platform (`linux/amd64` unless configured otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9._-]+/[a-z0-9._-]+(/[a-z0-9._-]+)?$"))]
    pub platform: Option<String>,
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

/// How much of an image a scan judged.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Coverage {
    /// Every package the scanner found was matched against vulnerability data.
    #[default]
    Full,
    /// Some of the image was judged, some not (see `gaps`).
    Partial,
    /// Nothing was judged: zero findings say nothing about the image.
    None,
}

impl Coverage {
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Full => "Full",
            Coverage::Partial => "Partial",
            Coverage::None => "None",
        }
    }
}

/// Why part of an image was not judged.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum GapReason {
    /// No OS release file was found (`scratch`, distroless without one).
    NoOsRecognised,
    /// The OS or ecosystem is recognised, but there is no vulnerability data for it.
    NoVulnerabilityData,
    /// A package database was present but could not be read.
    UnreadablePackageDatabase,
    /// The image's platform is one the scanner does not judge.
    ArchitectureNotScanned,
}

impl GapReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::NoOsRecognised => "NoOsRecognised",
            GapReason::NoVulnerabilityData => "NoVulnerabilityData",
            GapReason::UnreadablePackageDatabase => "UnreadablePackageDatabase",
            GapReason::ArchitectureNotScanned => "ArchitectureNotScanned",
        }
    }
}

/// One part of an image a scan did not judge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverageGap {
    pub reason: GapReason,
    /// What exactly, for people (`no /etc/os-release: OS packages cannot be matched`).
    pub message: String,
}

impl ImageScanReportStatus {
    /// The coverage of a scanned report. Reports written before coverage was recorded are
    /// judged by whether an ecosystem was matched at all.
    pub fn coverage(&self) -> Coverage {
        match self.coverage {
            Some(c) => c,
            None if self.ecosystem.is_some() => Coverage::Full,
            None => Coverage::None,
        }
    }
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
    /// The ecosystem of a language package (`npm`, `Go`); absent for OS packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    /// The file a language package was found in (`app/node_modules/lodash/package.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
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
    /// The vulnerability database ecosystem of the OS (`Debian:12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    /// Every ecosystem the image's packages belong to, the OS's first (`Debian:12`, `Go`,
    /// `npm`); each one's database is followed for changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecosystems: Vec<String>,
    /// How much of the image the scan could judge: `Full`, `Partial` or `None`. Zero
    /// findings mean a clean image only when this is `Full`; `gaps` says what was not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// What the scan could not judge, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<CoverageGap>,
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

/// The report name of a digest for the default platform: `sha256:ab…` is `sha256-ab…`.
/// The webhook, which judges pods before they have a node, reads and creates these.
pub fn report_name(digest: &str) -> String {
    digest.replace(':', "-")
}

/// The report name of a digest for a platform: [`report_name`] for `None` (the default
/// platform), else that with `-os-arch[-variant]` appended (`sha256-ab…-linux-arm64`,
/// `sha256-ab…-linux-arm-v7`). Any character a Kubernetes name cannot hold becomes `-`, and
/// the result is lowercase; platforms are short, so it stays well under 253 characters.
pub fn report_name_for(digest: &str, platform: Option<&str>) -> String {
    let mut name = report_name(digest);
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        name.push('-');
        name.extend(p.chars().map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.') => c,
            _ => '-',
        }));
        // A name ends with an alphanumeric character.
        while name.ends_with(['-', '.']) {
            name.pop();
        }
    }
    name
}

/// The platform a pod is pinned to before it has a node, as [`report_name_for`] takes it:
/// from `spec.nodeSelector` (`kubernetes.io/arch`, with `kubernetes.io/os`, `linux` when
/// absent), else from a required node affinity whose every term allows exactly one
/// architecture, the same one. `None` for the default platform (`linux/amd64`) and for a pod
/// that may run on several architectures: it is judged by the default platform's report.
pub fn pinned_platform(spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<String> {
    const ARCH: &str = "kubernetes.io/arch";
    const OS: &str = "kubernetes.io/os";
    let selector = spec.node_selector.as_ref();
    let from_selector = selector.and_then(|s| s.get(ARCH)).cloned();
    let arch = from_selector.or_else(|| {
        let terms = &spec
            .affinity
            .as_ref()?
            .node_affinity
            .as_ref()?
            .required_during_scheduling_ignored_during_execution
            .as_ref()?
            .node_selector_terms;
        // Terms are ORed: every one must pin the same single architecture.
        let mut pinned: Option<&str> = None;
        for term in terms {
            let arch = term
                .match_expressions
                .iter()
                .flatten()
                .filter(|e| e.key == ARCH && e.operator == "In")
                .find_map(|e| match e.values.as_deref() {
                    Some([one]) => Some(one.as_str()),
                    _ => None,
                })?;
            if pinned.is_some_and(|p| p != arch) {
                return None;
            }
            pinned = Some(arch);
        }
        pinned.map(str::to_owned)
    })?;
    let arch = arch.trim();
    let os = selector
        .and_then(|s| s.get(OS))
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .unwrap_or("linux");
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    (valid(arch) && valid(os) && (os, arch) != ("linux", "amd64")).then(|| format!("{os}/{arch}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const NAME: &str = "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pods_pinned_to_an_architecture_name_its_platform() {
        use k8s_openapi::api::core::v1::PodSpec;
        let spec = |json: serde_json::Value| -> PodSpec {
            serde_json::from_value(json).expect("test fixture")
        };
        let affinity = |terms: serde_json::Value| {
            spec(serde_json::json!({
                "containers": [],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": terms,
                }}},
            }))
        };
        let arch_in = |values: &[&str]| {
            serde_json::json!({"matchExpressions": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": values},
            ]})
        };
        let table: Vec<(&str, PodSpec, Option<&str>)> = vec![
            (
                "no selector",
                spec(serde_json::json!({"containers": []})),
                None,
            ),
            (
                "nodeSelector arm64",
                spec(
                    serde_json::json!({"containers": [], "nodeSelector": {"kubernetes.io/arch": "arm64"}}),
                ),
                Some("linux/arm64"),
            ),
            (
                "nodeSelector amd64 is the default",
                spec(
                    serde_json::json!({"containers": [], "nodeSelector": {"kubernetes.io/arch": "amd64"}}),
                ),
                None,
            ),
            (
                "nodeSelector with os",
                spec(serde_json::json!({"containers": [], "nodeSelector": {
                    "kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux"}})),
                Some("linux/arm64"),
            ),
            (
                "other labels only",
                spec(serde_json::json!({"containers": [], "nodeSelector": {"pool": "graviton"}})),
                None,
            ),
            (
                "a label value that is no architecture",
                spec(
                    serde_json::json!({"containers": [], "nodeSelector": {"kubernetes.io/arch": "arm/64"}}),
                ),
                None,
            ),
            (
                "affinity: one term, one arch",
                affinity(serde_json::json!([arch_in(&["arm64"])])),
                Some("linux/arm64"),
            ),
            (
                "affinity: two terms, same arch",
                affinity(serde_json::json!([
                    arch_in(&["arm64"]),
                    arch_in(&["arm64"])
                ])),
                Some("linux/arm64"),
            ),
            (
                "affinity: two terms, two arches",
                affinity(serde_json::json!([
                    arch_in(&["arm64"]),
                    arch_in(&["amd64"])
                ])),
                None,
            ),
            (
                "affinity: one term, two arches",
                affinity(serde_json::json!([arch_in(&["arm64", "amd64"])])),
                None,
            ),
            (
                "affinity: a term without arch",
                affinity(
                    serde_json::json!([arch_in(&["arm64"]), {"matchExpressions": [
                    {"key": "pool", "operator": "In", "values": ["a"]}]}]),
                ),
                None,
            ),
            (
                "affinity: NotIn does not pin",
                affinity(serde_json::json!([{"matchExpressions": [
                    {"key": "kubernetes.io/arch", "operator": "NotIn", "values": ["amd64"]}]}])),
                None,
            ),
        ];
        for (what, spec, want) in table {
            assert_eq!(pinned_platform(&spec).as_deref(), want, "{what}");
        }
    }

    #[test]
    fn report_names_carry_the_platform_unless_it_is_the_default() {
        for (what, platform, suffix) in [
            ("default platform", None, ""),
            ("empty platform", Some(""), ""),
            ("arm64", Some("linux/arm64"), "-linux-arm64"),
            ("with variant", Some("linux/arm/v7"), "-linux-arm-v7"),
            ("upper case", Some("Windows/AMD64"), "-windows-amd64"),
            ("odd characters", Some("linux/x86_64/"), "-linux-x86-64"),
        ] {
            let name = report_name_for(DIGEST, platform);
            assert_eq!(name, format!("{NAME}{suffix}"), "{what}");
            assert!(name.len() <= 253, "{what}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
                "{what}: {name}"
            );
        }
        assert_ne!(
            report_name_for(DIGEST, Some("linux/arm64")),
            report_name_for(DIGEST, Some("linux/arm/v8")),
        );
    }
}
