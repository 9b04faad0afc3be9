//! Helpers for the per-check unit tests: pods written as JSON.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{CheckId, Finding, PodView, Version};

pub struct TestPod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

impl TestPod {
    pub fn view(&self) -> PodView<'_> {
        PodView {
            metadata: &self.metadata,
            spec: &self.spec,
        }
    }
}

/// A pod from JSON of the shape `{"metadata": {...}, "spec": {...}}` (both optional).
pub fn pod(json: &str) -> TestPod {
    let value: serde_json::Value = serde_json::from_str(json).expect("test pod JSON");
    let part = |key: &str, default: &str| {
        value
            .get(key)
            .cloned()
            .unwrap_or_else(|| serde_json::from_str(default).expect("default"))
    };
    TestPod {
        metadata: serde_json::from_value(part("metadata", "{}")).expect("metadata"),
        spec: serde_json::from_value(part("spec", r#"{"containers":[]}"#)).expect("spec"),
    }
}

/// The findings of one check at `v1.{minor}` on a pod given as JSON.
pub fn run(check: CheckId, minor: u16, json: &str) -> Vec<Finding> {
    crate::evaluate_check(check, Version::V1(minor), pod(json).view())
}

/// `(field, message)` of each finding, for compact table assertions.
pub fn fields_and_messages(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .map(|f| (f.field.clone(), f.message.clone()))
        .collect()
}

/// One table row: pod JSON, policy minor version, expected `(field, message)` pairs.
pub type Row<'a> = (&'a str, u16, &'a [(&'a str, &'a str)]);

/// Asserts that `check` gives each row's findings, in order.
#[track_caller]
pub fn assert_table(check: CheckId, table: &[Row<'_>]) {
    for (i, (json, minor, want)) in table.iter().enumerate() {
        let got = run(check, *minor, json);
        for f in &got {
            assert_eq!(f.check, check, "row {i}");
            assert!(!f.fix.is_empty(), "row {i}: empty fix");
        }
        let got = fields_and_messages(&got);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(f, m)| (f.to_string(), m.to_string()))
            .collect();
        assert_eq!(got, want, "row {i}: {json}");
    }
}

/// A pod that every level admits at every version.
pub const RESTRICTED_OK: &str = r#"{"spec":{
    "securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
    "containers":[{"name":"app","securityContext":{
        "allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}],
    "initContainers":[{"name":"init","securityContext":{
        "allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"],"add":["NET_BIND_SERVICE"]}}}],
    "volumes":[{"name":"cfg","configMap":{"name":"cfg"}},{"name":"tmp","emptyDir":{}}]
}}"#;
