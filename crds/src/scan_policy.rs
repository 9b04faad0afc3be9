use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ExcludeResources, MatchResources, Mode};

/// A ScanPolicy says which images may run, judged by their vulnerability scan: the worst
/// severity tolerated, what to ignore until when, and what to do with an image not yet scanned.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "palisade.dev",
    version = "v1alpha1",
    kind = "ScanPolicy",
    doc = "ScanPolicy admits or refuses pods by the vulnerability scans of their images: a severity threshold, ignore entries that expire, and what to do with images not yet scanned.",
    plural = "scanpolicies",
    shortname = "scanpol",
    category = "palisade",
    status = "ScanPolicyStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Fail On","type":"string","jsonPath":".spec.failOn.severity"}"#,
    printcolumn = r#"{"name":"Unscanned","type":"string","jsonPath":".spec.onUnscanned","priority":1}"#,
    printcolumn = r#"{"name":"Unjudged","type":"string","jsonPath":".spec.onUnjudged","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Scanned","type":"integer","jsonPath":".status.imagesScanned"}"#,
    printcolumn = r#"{"name":"Failing","type":"integer","jsonPath":".status.imagesFailing"}"#,
    printcolumn = r#"{"name":"Unjudged","type":"integer","jsonPath":".status.imagesUnjudged","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScanPolicySpec {
    /// What happens when an image fails: `Enforce` denies the pod, `Warn` admits it with
    /// admission warnings, `Audit` admits it and only records the result.
    #[serde(default)]
    pub mode: Mode,

    /// Which pods the policy judges (as in SecurityPolicy). Missing means every namespace.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<MatchResources>,

    /// Pods left out even when `match` selects them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ExcludeResources>,

    /// Which images of a matched pod are judged. Missing means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageSelection>,

    /// The findings that fail an image.
    #[serde(default)]
    pub fail_on: FailOn,

    /// Findings not held against images, each with a reason, an owner and an expiry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreEntry>,

    /// How far ahead an ignore entry's `expires` may lie, in days (default 180), so every
    /// waiver comes up for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub max_exception_days: Option<u32>,

    /// What admission does with an image that has no scan report yet, once `scanWait` has
    /// passed: `Deny` (the message says a scan is queued and when to retry; controllers such
    /// as Deployments retry by themselves), `Warn` (admit with a warning) or `Allow`.
    #[serde(default)]
    pub on_unscanned: OnUnscanned,

    /// What admission does with an image whose scan could not judge all of it (report
    /// `coverage` `Partial` or `None`: no OS recognised, no vulnerability data for it, a
    /// package database that could not be read): `Deny` (default; zero findings from a scan
    /// that saw nothing are not a clean bill), `Warn` or `Allow`. Admit one such image
    /// deliberately with `images.exclude`, or an ignore entry with id `scan.unjudged`.
    #[serde(default)]
    pub on_unjudged: OnUnscanned,

    /// How long admission may wait for a queued scan before applying `onUnscanned`
    /// (`0s` to `8s`, default `3s`). The webhook also caps the wait with its
    /// `--max-scan-wait` so that it answers well inside its timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s))+$"))]
    pub scan_wait: Option<String>,

    /// Reports older than this are re-scanned (default `24h`; e.g. `6h`, `30m`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h|d))+$"))]
    pub max_report_age: Option<String>,

    /// `kubernetes.io/dockerconfigjson` Secrets with logins for private registries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registry_credentials: Vec<SecretRef>,
}

/// Image patterns: `*` matches any run of characters and is matched against the normalized
/// reference (`docker.io/library/nginx:1.25`, `ghcr.io/org/app@sha256:…`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSelection {
    /// Images judged; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Images never judged by this policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// The threshold of a ScanPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailOn {
    /// The lowest severity that fails an image: `Critical`, `High` (default), `Medium` or
    /// `Low`.
    #[serde(default)]
    pub severity: SeverityThreshold,
    /// `true` holds only findings with a fixed version against an image.
    #[serde(default)]
    pub only_fixable: bool,
}

/// The lowest severity that fails an image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum SeverityThreshold {
    Critical,
    #[default]
    High,
    Medium,
    Low,
}

impl SeverityThreshold {
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityThreshold::Critical => "Critical",
            SeverityThreshold::High => "High",
            SeverityThreshold::Medium => "Medium",
            SeverityThreshold::Low => "Low",
        }
    }
}

/// What admission does with an image it cannot judge (`onUnscanned`, `onUnjudged`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum OnUnscanned {
    /// Refuse the pod, saying why and what to do.
    #[default]
    Deny,
    /// Admit the pod with a warning.
    Warn,
    /// Admit the pod.
    Allow,
}

/// A finding not held against images.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreEntry {
    /// The advisory id or any of its aliases (`CVE-2023-5363`, `DSA-5532-1`), or
    /// `scan.unjudged` to admit the images it covers although their scan could not judge them.
    #[schemars(length(min = 1))]
    pub id: String,
    /// Image patterns it covers (all images when unset).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Why it is ignored. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who is accountable for it (a team or a person). Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// When it stops applying (RFC 3339), at most `maxExceptionDays` ahead. Required. Past
    /// it, the finding counts again and denials say the ignore entry expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
}

/// A Secret by name, in the operator's namespace unless `namespace` is given.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanPolicyStatus {
    /// `Ready`: whether the current generation is valid and in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Distinct images (by digest) of the cluster's workloads that the policy judges from a
    /// scan report, counted by the background audit (every `--audit-interval`). Images not
    /// scanned yet are not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_scanned: Option<i64>,
    /// Of those, how many fail the policy (findings at or above `failOn`, not ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_failing: Option<i64>,
    /// Distinct images whose scan could not judge all of them (coverage `Partial` or
    /// `None`), not counted in `imagesScanned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_unjudged: Option<i64>,
    /// Ignore entries that expire within 7 days, or have expired: review or renew them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expiring_exceptions: Vec<crate::ExpiringException>,
    /// When the background audit last computed the counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,
}
