//! `spec.runtime` of a SecurityPolicy, checked and turned into rule sets. Part of
//! [`CompiledPolicy::compile`](crate::CompiledPolicy::compile), so a bad entry is refused at
//! `kubectl apply` by the same check as every other field.

use palisade_crds::{RuntimeMode, RuntimeRules};

use super::catalogue::{RuleSet, RuntimeRule};
use crate::error::Problem;

/// `enforce: ["*"]`: kill for every applied rule.
pub const ENFORCE_ALL: &str = "*";

/// A policy's runtime part, ready for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledRuntime {
    pub(crate) mode: RuntimeMode,
    /// The rules applied.
    pub(crate) rules: RuleSet,
    /// The rules whose offending process is killed (empty in Audit mode).
    pub(crate) kill: RuleSet,
}

impl CompiledRuntime {
    pub(crate) fn compile(spec: &RuntimeRules, problems: &mut Vec<Problem>) -> CompiledRuntime {
        let mut rules = RuleSet::EMPTY;
        for (i, id) in spec.rules.iter().enumerate() {
            let field = format!("spec.runtime.rules[{i}]");
            match RuntimeRule::from_id(id) {
                Some(rule) if rules.contains(rule) => {
                    problems.push(Problem::new(field, format!("{id:?} is listed twice")));
                }
                Some(rule) => rules.insert(rule),
                None if id == ENFORCE_ALL => problems.push(Problem::new(
                    field,
                    "leave `rules` empty to apply every runtime rule; \"*\" is not a rule id",
                )),
                None => problems.push(Problem::new(field, unknown(id))),
            }
        }
        if spec.rules.is_empty() {
            rules = RuleSet::all();
        }

        let mut kill = RuleSet::EMPTY;
        for (i, id) in spec.enforce.iter().enumerate() {
            let field = format!("spec.runtime.enforce[{i}]");
            if id == ENFORCE_ALL {
                kill = kill.union(rules);
                continue;
            }
            match RuntimeRule::from_id(id) {
                Some(rule) if !rules.contains(rule) => problems.push(Problem::new(
                    field,
                    format!(
                        "{id:?} is not among the applied rules (spec.runtime.rules): add it there or remove it here"
                    ),
                )),
                Some(rule) if !rule.can_kill() => problems.push(Problem::new(
                    field,
                    format!("{id:?} cannot be enforced: it is only ever reported"),
                )),
                Some(rule) => kill.insert(rule),
                None => problems.push(Problem::new(field, unknown(id))),
            }
        }
        match spec.mode {
            RuntimeMode::Audit if !spec.enforce.is_empty() => problems.push(Problem::new(
                "spec.runtime.enforce",
                "mode is Audit, which never kills: set spec.runtime.mode: Enforce, or remove enforce",
            )),
            RuntimeMode::Enforce if spec.enforce.is_empty() => problems.push(Problem::new(
                "spec.runtime.enforce",
                "mode Enforce kills only for the rule ids listed here (or \"*\" for every applied rule); list them, or set mode: Audit",
            )),
            _ => {}
        }
        if spec.mode == RuntimeMode::Audit {
            kill = RuleSet::EMPTY;
        }
        CompiledRuntime {
            mode: spec.mode,
            rules,
            kill,
        }
    }
}

fn unknown(id: &str) -> String {
    let near = RuntimeRule::ALL
        .into_iter()
        .find(|r| r.id().eq_ignore_ascii_case(id) || r.name().eq_ignore_ascii_case(id));
    match near {
        Some(r) => format!(
            "{id:?} is not a runtime rule id; did you mean {:?}?",
            r.id()
        ),
        None => format!(
            "{id:?} is not a runtime rule id; runtime rule ids are: {}",
            RuntimeRule::ALL.map(RuntimeRule::id).join(", ")
        ),
    }
}
