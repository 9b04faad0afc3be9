//! Which generation of a SecurityPolicy object is in force: the current one when it is
//! valid, else the one its `status.enforced` records, compiled as it was accepted, so a bad
//! update never drops enforcement. The webhook, the audit and the node agent all enforce
//! policies this way.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::error::Error;
use crate::exceptions::Waivers;
use crate::load::{enforced_generation, policy_from_value};
use crate::policy::CompiledPolicy;

/// One object's policy in force, and what is wrong with its current generation.
#[derive(Debug)]
pub struct InForce {
    /// What to enforce: the current generation, or the recorded one, or nothing.
    pub policy: Option<CompiledPolicy>,
    /// Why the current generation is not in force.
    pub problem: Option<String>,
    /// When `problem` is set: the generation enforced instead, if any.
    pub fallback_generation: Option<i64>,
}

/// Compiles a SecurityPolicy object (as JSON) at `now`.
pub fn compile_in_force(value: &Value, now: Timestamp) -> InForce {
    let compile = |v: &Value, waivers: Waivers| {
        policy_from_value(v)
            .and_then(|p| CompiledPolicy::compile_with(&p, now, waivers))
            .map_err(|e| object_error_message(&e))
    };
    match compile(value, Waivers::Checked) {
        Ok(p) => InForce {
            policy: Some(p),
            problem: None,
            fallback_generation: None,
        },
        Err(problem) => {
            let fallback = enforced_generation(value).and_then(|(generation, v)| {
                compile(&v, Waivers::AsAccepted)
                    .ok()
                    .map(|p| (generation, p))
            });
            InForce {
                fallback_generation: fallback.as_ref().map(|(g, _)| *g),
                policy: fallback.map(|(_, p)| p),
                problem: Some(problem),
            }
        }
    }
}

/// The engine's text without the document position, which means nothing for an API object.
pub fn object_error_message(e: &Error) -> String {
    match e {
        Error::Schema {
            field,
            source,
            index: None,
            ..
        } => format!("field {field}: {source}"),
        Error::InvalidPolicy { problems, .. } => problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(spec: Value, generation: i64, enforced: Option<(i64, Value)>) -> Value {
        let mut v = json!({
            "apiVersion": "palisade.dev/v1alpha1",
            "kind": "SecurityPolicy",
            "metadata": {"name": "p", "generation": generation},
            "spec": spec,
        });
        if let Some((g, spec)) = enforced {
            v["status"] = json!({"enforced": {"generation": g, "spec": spec}});
        }
        v
    }

    #[test]
    fn a_valid_generation_is_in_force() {
        let r = compile_in_force(
            &object(json!({"runtime": {"mode": "Audit"}}), 1, None),
            Timestamp::UNIX_EPOCH,
        );
        assert!(r.policy.is_some() && r.problem.is_none());
    }

    #[test]
    fn an_invalid_update_keeps_the_enforced_generation() {
        let good = json!({"runtime": {"mode": "Audit"}});
        let bad = json!({"runtime": {"mode": "Audit", "rules": ["runtime.noSuchRule"]}});
        let r = compile_in_force(
            &object(bad.clone(), 2, Some((1, good))),
            Timestamp::UNIX_EPOCH,
        );
        assert!(
            r.problem
                .as_deref()
                .is_some_and(|p| p.contains("runtime.noSuchRule")),
            "{:?}",
            r.problem
        );
        assert_eq!(r.fallback_generation, Some(1));
        assert!(r.policy.is_some());
        let r = compile_in_force(&object(bad, 1, None), Timestamp::UNIX_EPOCH);
        assert!(r.policy.is_none() && r.problem.is_some());
    }
}
