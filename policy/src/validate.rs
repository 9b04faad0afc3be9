//! One check for a SecurityPolicy or ScanPolicy object, shared by the operator (which writes
//! the problems to the policy's status) and the webhook (which refuses the object at
//! `kubectl apply`): the same problems, with the same field paths, in both places.

use k8s_openapi::jiff::Timestamp;
use palisade_crds::ScanPolicy;
use serde_json::Value;

use crate::error::{Error, Problem};
use crate::policy::CompiledPolicy;
use crate::scan::CompiledScanPolicy;

/// The kinds this checks.
pub const KINDS: &[&str] = &["SecurityPolicy", "ScanPolicy"];

/// Every problem of a `palisade.dev` policy object at `now` (empty when it is valid), or
/// `None` when the object is of another kind.
pub fn policy_problems(object: &Value, now: Timestamp) -> Option<Vec<Problem>> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let result = match kind {
        "SecurityPolicy" => crate::load::policy_from_value(object)
            .and_then(|p| CompiledPolicy::compile_at(&p, now).map(drop)),
        "ScanPolicy" => scan_policy_from_value(object)
            .and_then(|p| CompiledScanPolicy::compile_at(&p, now).map(drop)),
        _ => return None,
    };
    Some(match result {
        Ok(()) => Vec::new(),
        Err(e) => e.problems(),
    })
}

fn scan_policy_from_value(value: &Value) -> Result<ScanPolicy, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| Error::Schema {
        index: None,
        name: value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        field: e.path().to_string(),
        source: e.into_inner(),
    })
}

impl Error {
    /// The problems, each with its field: those of an invalid policy, or the one field a
    /// document does not fit.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Error::InvalidPolicy { problems, .. } | Error::InvalidScanPolicy { problems, .. } => {
                problems.clone()
            }
            Error::Schema { field, source, .. } => vec![Problem {
                field: field.clone(),
                message: source.to_string(),
            }],
            other => vec![Problem {
                field: "spec".into(),
                message: other.to_string(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().expect("time")
    }

    #[test]
    fn both_kinds_are_checked_with_field_paths() {
        let table = [
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "p"}, "spec": {"privileged": "Deny"}}),
                Some(vec![]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "p"}, "spec": {"exceptions": [{"name": "x", "rules": ["privileged"],
                        "owner": "sre", "reason": "r", "expires": "2027-06-01T00:00:00Z"}]}}),
                Some(vec!["spec.exceptions[0].expires"]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "p"}, "spec": {"privileged": "Denied"}}),
                Some(vec!["spec.privileged"]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "ScanPolicy",
                    "metadata": {"name": "s"}, "spec": {"ignore": [{"id": "CVE-1"}], "scanWait": "20s"}}),
                Some(vec![
                    "spec.ignore[0].owner",
                    "spec.ignore[0].reason",
                    "spec.ignore[0].expires",
                    "spec.scanWait",
                ]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "ScanPolicy",
                    "metadata": {"name": "s"}, "spec": {"onUnjudged": "Sometimes"}}),
                Some(vec!["spec.onUnjudged"]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "p"}, "spec": {"runtime": {}}}),
                Some(vec![]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "p"}, "spec": {"runtime": {"rules": ["runtime.terminalShel"]}}}),
                Some(vec!["spec.runtime.rules[0]"]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "p"}, "spec": {"runtime": {"mode": "Enforce",
                        "rules": ["runtime.terminalShell"], "enforce": ["runtime.packetSocket"]}}}),
                Some(vec!["spec.runtime.enforce[0]"]),
            ),
            (
                json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "p"}, "spec": {"runtime": {"enforce": ["*"]}}}),
                Some(vec!["spec.runtime.enforce"]),
            ),
            (json!({"apiVersion": "v1", "kind": "Pod"}), None),
        ];
        for (object, want) in table {
            let got = policy_problems(&object, now())
                .map(|ps| ps.into_iter().map(|p| p.field).collect::<Vec<_>>());
            assert_eq!(
                got,
                want.map(|w| w.into_iter().map(str::to_owned).collect::<Vec<_>>()),
                "{object}"
            );
        }
    }
}
