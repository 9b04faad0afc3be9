//! What a SecurityPolicy's status should say, as pure functions of the check of its current
//! generation (the engine the webhook runs) and the status it has now. The controller only
//! does the I/O around these.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use palisade_crds::{EnforcedSpec, ExpiringException, SecurityPolicySpec, SecurityPolicyStatus};
use palisade_policy::{CompiledPolicy, Problem, RuntimePolicySet};

use crate::controllers::conditions::{
    EXPIRY_WINDOW, Notice, REASON_INVALID, REASON_VALID, invalid_message, problems_of,
    ready_conditions, ready_notice,
};

/// The check of one generation of a policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The engine compiled it: this spec goes in force.
    Valid {
        spec: Box<SecurityPolicySpec>,
        /// Exceptions past their `expires`, by name (valid, but worth saying).
        expired_exceptions: Vec<String>,
        /// Exceptions within [`EXPIRY_WINDOW`] of their expiry, or past it.
        expiring: Vec<ExpiringException>,
        /// The runtime rule ids it applies, in catalogue order (`None`: no `spec.runtime`).
        runtime_rules: Option<Vec<&'static str>>,
    },
    /// It cannot be put in force, for these reasons (each naming its field).
    Invalid { problems: Vec<Problem> },
}

impl Verdict {
    /// The problems of an engine error, each with its field.
    pub fn from_error(e: &palisade_policy::Error) -> Verdict {
        Verdict::Invalid {
            problems: problems_of(e),
        }
    }
}

/// The status fields this controller owns (`conditions`, `observedGeneration`, `enforced`)
/// for `generation` judged as `verdict`, given the status the object has now. Fields owned
/// by others (the audit's `violations`, `lastAuditTime`) are left `None`.
///
/// `lastTransitionTime` of Ready changes only when its status does; an invalid generation
/// keeps the previous `enforced` as it is.
pub fn desired(
    previous: Option<&SecurityPolicyStatus>,
    generation: i64,
    verdict: &Verdict,
    now: Time,
) -> SecurityPolicyStatus {
    let previous_enforced = previous.and_then(|s| s.enforced.as_ref());
    let (status, reason, message, enforced) = match verdict {
        Verdict::Valid {
            spec,
            expired_exceptions,
            ..
        } => (
            "True",
            REASON_VALID,
            valid_message(generation, spec, expired_exceptions),
            Some(EnforcedSpec {
                generation,
                spec: spec.as_ref().clone(),
            }),
        ),
        Verdict::Invalid { problems } => (
            "False",
            REASON_INVALID,
            invalid_message(
                generation,
                previous_enforced.map(|e| e.generation),
                problems,
            ),
            previous_enforced.cloned(),
        ),
    };
    let conditions = ready_conditions(
        previous.map(|p| p.conditions.as_slice()),
        status,
        reason,
        message,
        generation,
        now,
    );
    let expiring_exceptions = match verdict {
        Verdict::Valid { expiring, .. } => expiring.clone(),
        // The generation in force keeps its list until a valid one replaces it.
        Verdict::Invalid { .. } => previous
            .map(|p| p.expiring_exceptions.clone())
            .unwrap_or_default(),
    };
    SecurityPolicyStatus {
        conditions,
        observed_generation: Some(generation),
        enforced,
        violations: None,
        last_audit_time: None,
        expiring_exceptions,
    }
}

/// Whether the fields this controller owns differ, i.e. whether a write is needed.
pub fn needs_write(
    previous: Option<&SecurityPolicyStatus>,
    desired: &SecurityPolicyStatus,
) -> bool {
    match previous {
        None => true,
        Some(p) => {
            p.conditions != desired.conditions
                || p.observed_generation != desired.observed_generation
                || p.enforced != desired.enforced
                || p.expiring_exceptions != desired.expiring_exceptions
        }
    }
}

/// The Event for going from `previous` to `desired`: when Ready changes, or a new generation
/// is judged. Nothing when a periodic reconcile (or a restart) finds the same state.
pub fn notice(
    previous: Option<&SecurityPolicyStatus>,
    desired: &SecurityPolicyStatus,
) -> Option<Notice> {
    ready_notice(
        previous.map(|p| (p.conditions.as_slice(), p.observed_generation)),
        (&desired.conditions, desired.observed_generation),
    )
}

/// `generation 3 in force (Enforce mode, restricted v1.37 preset; controls: privileged; 1 exception)`.
pub fn valid_message(generation: i64, spec: &SecurityPolicySpec, expired: &[String]) -> String {
    format!(
        "generation {generation} in force ({})",
        summary(spec, expired)
    )
}

/// What a policy does, in a few words.
pub fn summary(spec: &SecurityPolicySpec, expired: &[String]) -> String {
    let mut parts = vec![format!("{} mode", spec.mode.as_str())];
    if let Some(ps) = &spec.pod_security {
        parts.push(format!("{} {} preset", ps.level.as_str(), ps.version));
    }
    let mut controls = Vec::new();
    if spec.privileged.is_some() {
        controls.push("privileged");
    }
    if spec.run_as_non_root.is_some() {
        controls.push("runAsNonRoot");
    }
    if spec.allow_privilege_escalation.is_some() {
        controls.push("allowPrivilegeEscalation");
    }
    if spec.read_only_root_filesystem.is_some() {
        controls.push("readOnlyRootFilesystem");
    }
    if spec.capabilities.is_some() {
        controls.push("capabilities");
    }
    if spec.images.is_some() {
        controls.push("images");
    }
    if !controls.is_empty() {
        parts.push(format!("controls: {}", controls.join(", ")));
    }
    if let Some(runtime) = &spec.runtime {
        let rules = match runtime.rules.len() {
            0 => "the default runtime rules".to_string(),
            1 => "1 runtime rule".to_string(),
            n => format!("{n} runtime rules"),
        };
        parts.push(format!("{rules} in {} mode", runtime.mode.as_str()));
    }
    if spec.pod_security.is_none() && controls.is_empty() && spec.runtime.is_none() {
        parts.push("no rules: every pod is admitted".into());
    }
    match spec.exceptions.len() {
        0 => {}
        1 => parts.push("1 exception".into()),
        n => parts.push(format!("{n} exceptions")),
    }
    if !expired.is_empty() {
        let names: Vec<String> = expired.iter().map(|n| format!("{n:?}")).collect();
        parts.push(format!("expired, no longer applying: {}", names.join(", ")));
    }
    parts.join("; ")
}

/// Judge a policy object exactly as the webhook reads and compiles it.
pub fn check(object: &DynamicObject, now: Timestamp) -> Verdict {
    let value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Invalid {
                problems: vec![palisade_policy::Problem {
                    field: "spec".into(),
                    message: e.to_string(),
                }],
            };
        }
    };
    let policy = match palisade_policy::policy_from_value(&value) {
        Ok(p) => p,
        Err(e) => return Verdict::from_error(&e),
    };
    match CompiledPolicy::compile_at(&policy, now) {
        Ok(compiled) => {
            let expired_exceptions = compiled
                .expired_exceptions(now)
                .map(str::to_owned)
                .collect();
            let expiring = compiled.expiring_exceptions(now, EXPIRY_WINDOW);
            let runtime = RuntimePolicySet::new([compiled]);
            Verdict::Valid {
                expired_exceptions,
                expiring,
                runtime_rules: (!runtime.is_empty())
                    .then(|| runtime.rules().into_iter().map(|r| r.id()).collect()),
                spec: Box::new(policy.spec),
            }
        }
        Err(e) => Verdict::from_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use k8s_openapi::jiff::Timestamp;
    use palisade_crds::{Mode, PodSecurity, PodSecurityLevel, Privileged};

    use super::*;
    use crate::controllers::conditions::{
        EVENT_EXPIRED, EVENT_EXPIRING, EXPIRY_WINDOW, MAX_MESSAGE, READY, expiry_notices, truncate,
    };

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().expect("timestamp"))
    }

    fn restricted() -> SecurityPolicySpec {
        SecurityPolicySpec {
            mode: Mode::Enforce,
            pod_security: Some(PodSecurity {
                level: PodSecurityLevel::Restricted,
                version: "v1.37".into(),
            }),
            privileged: Some(Privileged::Deny),
            ..Default::default()
        }
    }

    fn valid() -> Verdict {
        Verdict::Valid {
            spec: Box::new(restricted()),
            expired_exceptions: vec![],
            expiring: vec![],
            runtime_rules: None,
        }
    }

    fn invalid() -> Verdict {
        Verdict::Invalid {
            problems: vec![Problem {
                field: "spec.exceptions[0].rules[0]".into(),
                message: "unknown rule id \"noSuchRule\"".into(),
            }],
        }
    }

    fn ready(s: &SecurityPolicyStatus) -> &Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == READY)
            .expect("Ready")
    }

    #[test]
    fn a_valid_first_generation_is_ready_and_enforced() {
        let s = desired(None, 1, &valid(), at("2026-01-01T00:00:00Z"));
        let r = ready(&s);
        assert_eq!((r.status.as_str(), r.reason.as_str()), ("True", "Valid"));
        assert_eq!(
            r.message,
            "generation 1 in force (Enforce mode; restricted v1.37 preset; controls: privileged)"
        );
        assert_eq!(r.observed_generation, Some(1));
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.enforced.as_ref().map(|e| e.generation), Some(1));
        assert_eq!(s.enforced.as_ref().map(|e| &e.spec), Some(&restricted()));
        let n = notice(None, &s).expect("an event for a new policy");
        assert_eq!((n.warning, n.reason), (false, "PolicyAccepted"));
    }

    #[test]
    fn an_invalid_update_keeps_the_enforced_generation_and_says_so() {
        let t0 = at("2026-01-01T00:00:00Z");
        let t1 = at("2026-01-02T00:00:00Z");
        let first = desired(None, 1, &valid(), t0.clone());
        let second = desired(Some(&first), 2, &invalid(), t1.clone());
        let r = ready(&second);
        assert_eq!((r.status.as_str(), r.reason.as_str()), ("False", "Invalid"));
        assert_eq!(
            r.message,
            "generation 2 is invalid; generation 1 stays in force: spec.exceptions[0].rules[0]: unknown rule id \"noSuchRule\""
        );
        assert_eq!(r.last_transition_time, t1);
        assert_eq!(second.observed_generation, Some(2));
        assert_eq!(second.enforced, first.enforced, "untouched");
        let n = notice(Some(&first), &second).expect("an event on becoming invalid");
        assert_eq!((n.warning, n.reason), (true, "InvalidPolicy"));
        assert_eq!(n.message, r.message);

        // Fixed: ready again, the new generation enforced, one Normal event.
        let third = desired(Some(&second), 3, &valid(), at("2026-01-03T00:00:00Z"));
        assert_eq!(ready(&third).status, "True");
        assert_eq!(third.enforced.as_ref().map(|e| e.generation), Some(3));
        let n = notice(Some(&second), &third).expect("an event on becoming valid");
        assert_eq!((n.warning, n.reason), (false, "PolicyAccepted"));
    }

    #[test]
    fn an_invalid_first_generation_enforces_nothing() {
        let s = desired(None, 1, &invalid(), at("2026-01-01T00:00:00Z"));
        assert!(s.enforced.is_none());
        assert!(
            ready(&s)
                .message
                .starts_with("generation 1 is invalid and not enforced: spec.exceptions[0]"),
            "{:?}",
            ready(&s).message
        );
    }

    #[test]
    fn nothing_changes_and_nothing_is_said_when_reconciled_again() {
        let t0 = at("2026-01-01T00:00:00Z");
        let later = at("2026-01-01T05:00:00Z");
        for verdict in [valid(), invalid()] {
            let first = desired(None, 4, &verdict, t0.clone());
            let again = desired(Some(&first), 4, &verdict, later.clone());
            assert_eq!(again, first, "same status, same lastTransitionTime");
            assert!(!needs_write(Some(&first), &again));
            assert_eq!(notice(Some(&first), &again), None);
        }
    }

    #[test]
    fn transition_time_moves_only_when_ready_changes() {
        let t0 = at("2026-01-01T00:00:00Z");
        let t1 = at("2026-01-02T00:00:00Z");
        // A new valid generation: message and generation change, the transition time stays.
        let first = desired(None, 1, &valid(), t0.clone());
        let mut spec = restricted();
        spec.mode = Mode::Warn;
        let second = desired(
            Some(&first),
            2,
            &Verdict::Valid {
                spec: Box::new(spec),
                expired_exceptions: vec![],
                expiring: vec![],
                runtime_rules: None,
            },
            t1.clone(),
        );
        assert_eq!(ready(&second).last_transition_time, t0);
        assert!(ready(&second).message.contains("Warn mode"));
        assert!(needs_write(Some(&first), &second));
        let n = notice(Some(&first), &second).expect("a new generation is accepted");
        assert_eq!(n.reason, "PolicyAccepted");

        // Invalid twice in a row: the time of the first failure stays.
        let bad = desired(Some(&second), 3, &invalid(), t1.clone());
        let worse = desired(Some(&bad), 4, &invalid(), at("2026-01-03T00:00:00Z"));
        assert_eq!(ready(&worse).last_transition_time, t1);
        assert!(
            ready(&worse)
                .message
                .contains("generation 2 stays in force")
        );
        assert_eq!(worse.enforced.as_ref().map(|e| e.generation), Some(2));
    }

    #[test]
    fn other_conditions_and_audit_fields_are_not_touched() {
        let mut previous = desired(None, 1, &valid(), at("2026-01-01T00:00:00Z"));
        let audited = Condition {
            type_: "Audited".into(),
            status: "True".into(),
            reason: "Done".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: at("2026-01-01T00:00:00Z"),
        };
        previous.conditions.push(audited.clone());
        previous.violations = Some(7);
        let next = desired(Some(&previous), 2, &invalid(), at("2026-01-02T00:00:00Z"));
        assert_eq!(next.conditions.len(), 2);
        assert_eq!(next.conditions[1], audited);
        assert_eq!(
            next.violations, None,
            "owned by the audit, not written here"
        );
    }

    #[test]
    fn summaries_name_what_the_policy_does() {
        let empty = SecurityPolicySpec::default();
        assert_eq!(
            summary(&empty, &[]),
            "Enforce mode; no rules: every pod is admitted"
        );
        let mut spec = restricted();
        spec.exceptions = vec![Default::default(), Default::default()];
        assert_eq!(
            summary(&spec, &["legacy".into()]),
            "Enforce mode; restricted v1.37 preset; controls: privileged; 2 exceptions; expired, no longer applying: \"legacy\""
        );
    }

    #[test]
    fn engine_errors_become_problems_with_fields() {
        let value = serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "p"}, "spec": {"mode": "Enforced"}
        });
        let e = palisade_policy::policy_from_value(&value).expect_err("bad mode");
        let Verdict::Invalid { problems } = Verdict::from_error(&e) else {
            panic!("invalid");
        };
        assert_eq!(problems[0].field, "spec.mode");
        let long = invalid_message(
            1,
            None,
            &[Problem {
                field: "spec".into(),
                message: "x".repeat(10_000),
            }],
        );
        assert_eq!(truncate(long).chars().count(), MAX_MESSAGE - 2);
    }

    #[test]
    fn exceptions_near_expiry_are_listed_and_announced_once() {
        let at = |t: &str| -> k8s_openapi::jiff::Timestamp { t.parse().expect("time") };
        let now = at("2026-06-01T00:00:00Z");
        let policy: palisade_crds::SecurityPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "p", "generation": 1},
            "spec": {"privileged": "Deny", "exceptions": [
                {"name": "soon", "rules": ["privileged"], "owner": "sre", "reason": "r",
                 "expires": "2026-06-04T00:00:00Z"},
                {"name": "later", "rules": ["privileged"], "owner": "sre", "reason": "r",
                 "expires": "2026-08-01T00:00:00Z"},
                {"name": "gone", "rules": ["privileged"], "owner": "ops", "reason": "r",
                 "expires": "2026-05-01T00:00:00Z"}]}
        }))
        .expect("policy");
        let compiled =
            palisade_policy::CompiledPolicy::compile_at(&policy, now).expect("valid policy");
        let expiring = compiled.expiring_exceptions(now, EXPIRY_WINDOW);
        let names: Vec<(&str, bool)> = expiring
            .iter()
            .map(|e| (e.name.as_str(), e.expired))
            .collect();
        assert_eq!(names, [("gone", true), ("soon", false)]);
        let verdict = Verdict::Valid {
            spec: Box::new(policy.spec.clone()),
            expired_exceptions: vec!["gone".into()],
            expiring: expiring.clone(),
            runtime_rules: None,
        };
        let first = desired(None, 1, &verdict, Time(now));
        assert_eq!(first.expiring_exceptions, expiring);
        let notices = expiry_notices(&[], &first.expiring_exceptions, "exception", now);
        let messages: Vec<(&str, &str)> = notices
            .iter()
            .map(|n| (n.reason, n.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    EVENT_EXPIRED,
                    "exception \"gone\" (owner ops) expired at 2026-05-01T00:00:00Z: what it waived counts again; renew it with a new expiry or remove it"
                ),
                (
                    EVENT_EXPIRING,
                    "exception \"soon\" (owner sre) expires at 2026-06-04T00:00:00Z, in 3 days: review it, then renew it with a new expiry or let it lapse"
                ),
            ]
        );
        assert!(notices.iter().all(|n| n.warning));
        // A resync with the same list says nothing and writes nothing.
        assert!(
            expiry_notices(
                &first.expiring_exceptions,
                &first.expiring_exceptions,
                "exception",
                now
            )
            .is_empty()
        );
        let again = desired(Some(&first), 1, &verdict, Time(now));
        assert!(!needs_write(Some(&first), &again));
        // "soon" expires: announced once more, as expired.
        let later = at("2026-06-05T00:00:00Z");
        let next = compiled.expiring_exceptions(later, EXPIRY_WINDOW);
        let notices = expiry_notices(&first.expiring_exceptions, &next, "exception", later);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].reason, EVENT_EXPIRED);
        assert!(notices[0].message.starts_with("exception \"soon\""));
    }

    fn object(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).expect("an object")
    }

    #[test]
    fn the_check_is_the_webhooks() {
        let now = Timestamp::now();
        let ok = object(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "p", "generation": 2},
            "spec": {"privileged": "Deny", "exceptions": [{"name": "old", "rules": ["privileged"],
                "owner": "sre", "reason": "migration", "expires": "2020-01-01T00:00:00Z"}]}
        }));
        match check(&ok, now) {
            Verdict::Valid {
                expired_exceptions,
                runtime_rules,
                ..
            } => {
                assert_eq!(expired_exceptions, ["old"]);
                assert_eq!(runtime_rules, None);
            }
            v => panic!("{v:?}"),
        }
        let runtime = object(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "r", "generation": 1},
            "spec": {"runtime": {"mode": "Audit",
                "rules": ["runtime.readSensitiveFileUntrusted", "runtime.terminalShell"]}}
        }));
        match check(&runtime, now) {
            Verdict::Valid {
                runtime_rules,
                spec,
                ..
            } => {
                // Catalogue order, whatever the order written.
                assert_eq!(
                    runtime_rules.as_deref(),
                    Some(
                        &[
                            "runtime.terminalShell",
                            "runtime.readSensitiveFileUntrusted"
                        ][..]
                    )
                );
                assert_eq!(
                    summary(&spec, &[]),
                    "Enforce mode; 2 runtime rules in Audit mode"
                );
            }
            v => panic!("{v:?}"),
        }
        let bad = object(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "p", "generation": 3},
            "spec": {"exceptions": [{"name": "x", "rules": ["noSuchRule"]}],
                "match": {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}}
        }));
        let Verdict::Invalid { problems } = check(&bad, now) else {
            panic!("invalid");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(
            fields.contains(&"spec.exceptions[0].rules[0]"),
            "{problems:?}"
        );
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("spec.match.namespaceSelector")),
            "{problems:?}"
        );
    }
}
