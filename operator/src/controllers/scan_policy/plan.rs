//! What a ScanPolicy's status should say (`Ready`, `observedGeneration`,
//! `expiringExceptions`), as pure functions of its current generation compiled as the
//! webhook compiles it, and when to check it again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use palisade_crds::{ScanPolicy, ScanPolicyStatus};
use palisade_policy::scan::CompiledScanPolicy;

use crate::controllers::conditions::{
    EXPIRY_WINDOW, Notice, REASON_INVALID, REASON_VALID, invalid_message, problems_of,
    ready_conditions, ready_notice,
};

/// How often a policy is checked again with no change (ignore entries expire).
pub const RESYNC: Duration = Duration::from_secs(300);

/// The fields this controller owns (`conditions`, `observedGeneration`) for the policy's
/// current generation; the audit's counts are left `None`. `lastTransitionTime` moves only
/// when Ready's status does; conditions of other types are kept.
pub fn desired(
    policy: &ScanPolicy,
    previous: Option<&ScanPolicyStatus>,
    now: Time,
) -> ScanPolicyStatus {
    let generation = policy.metadata.generation.unwrap_or(0);
    let mut expiring = Vec::new();
    let (status, reason, message) = match CompiledScanPolicy::compile_at(policy, now.0) {
        Ok(compiled) => {
            expiring = compiled.expiring_exceptions(now.0, EXPIRY_WINDOW);
            (
                "True",
                REASON_VALID,
                valid_message(policy, &compiled, now.0),
            )
        }
        Err(e) => (
            "False",
            REASON_INVALID,
            // An invalid ScanPolicy is not enforced at all: no generation stays in force.
            invalid_message(generation, None, &problems_of(&e)),
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
    ScanPolicyStatus {
        conditions,
        observed_generation: Some(generation),
        expiring_exceptions: expiring,
        ..ScanPolicyStatus::default()
    }
}

/// `generation 2 in force (Enforce mode; fails on High or above; onUnscanned Deny; scanWait 3s; 1 ignore entry)`.
pub fn valid_message(policy: &ScanPolicy, compiled: &CompiledScanPolicy, now: Timestamp) -> String {
    let spec = &policy.spec;
    let generation = policy.metadata.generation.unwrap_or(0);
    let mut parts = vec![format!("{} mode", compiled.mode().as_str())];
    parts.push(format!(
        "fails on {}{} or above",
        if spec.fail_on.only_fixable {
            "fixable "
        } else {
            ""
        },
        spec.fail_on.severity.as_str()
    ));
    parts.push(format!("onUnscanned {:?}", compiled.on_unscanned()));
    parts.push(format!("onUnjudged {:?}", compiled.on_unjudged()));
    if let Some(wait) = &spec.scan_wait {
        parts.push(format!("scanWait {wait}"));
    }
    match spec.ignore.len() {
        0 => {}
        1 => parts.push("1 ignore entry".into()),
        n => parts.push(format!("{n} ignore entries")),
    }
    let expired: Vec<&str> = spec
        .ignore
        .iter()
        .filter(|i| i.expires.as_ref().is_some_and(|t| t.0 <= now))
        .map(|i| i.id.as_str())
        .collect();
    if !expired.is_empty() {
        parts.push(format!(
            "expired, no longer applying: {}",
            expired.join(", ")
        ));
    }
    format!("generation {generation} in force ({})", parts.join("; "))
}

/// Whether the fields this controller owns differ from what the object has.
pub fn needs_write(previous: Option<&ScanPolicyStatus>, desired: &ScanPolicyStatus) -> bool {
    previous.is_none_or(|p| {
        p.conditions != desired.conditions
            || p.observed_generation != desired.observed_generation
            || p.expiring_exceptions != desired.expiring_exceptions
    })
}

/// The Event for going from `previous` to `desired`: when Ready changes or a new generation
/// is judged; nothing for a resync or a restart.
pub fn notice(previous: Option<&ScanPolicyStatus>, desired: &ScanPolicyStatus) -> Option<Notice> {
    ready_notice(
        previous.map(|p| (p.conditions.as_slice(), p.observed_generation)),
        (&desired.conditions, desired.observed_generation),
    )
}

/// When to check the policy again with no change: just after its next ignore entry
/// expires (so Ready's message names it at once), else after [`RESYNC`].
pub fn next_check(policy: &ScanPolicy, now: Timestamp) -> Duration {
    policy
        .spec
        .ignore
        .iter()
        .filter_map(|i| i.expires.as_ref())
        .filter_map(|t| Duration::try_from(t.0.duration_since(now)).ok())
        .filter(|d| !d.is_zero())
        .map(|d| d + Duration::from_secs(1))
        .fold(RESYNC, Duration::min)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;
    use crate::controllers::conditions::READY;

    fn policy(generation: i64, spec: serde_json::Value) -> ScanPolicy {
        let mut p: ScanPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1", "kind": "ScanPolicy",
            "metadata": {"name": "prod"},
            "spec": spec,
        }))
        .expect("a ScanPolicy");
        p.metadata.generation = Some(generation);
        p
    }

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().expect("timestamp"))
    }

    fn ready(s: &ScanPolicyStatus) -> &Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == READY)
            .expect("Ready")
    }

    #[test]
    fn ready_says_what_is_in_force_or_every_problem() {
        let now = at("2026-06-01T00:00:00Z");
        // (spec, Ready, message)
        let table = [
            (
                serde_json::json!({"mode": "Enforce"}),
                "True",
                "generation 3 in force (Enforce mode; fails on High or above; onUnscanned Deny; onUnjudged Deny)",
            ),
            (
                serde_json::json!({"mode": "Warn", "failOn": {"severity": "Critical", "onlyFixable": true},
                    "onUnscanned": "Allow", "scanWait": "5s",
                    "ignore": [{"id": "CVE-1", "reason": "r", "owner": "o", "expires": "2026-01-01T00:00:00Z"},
                               {"id": "CVE-2", "reason": "r", "owner": "o", "expires": "2026-09-01T00:00:00Z"}]}),
                "True",
                "generation 3 in force (Warn mode; fails on fixable Critical or above; onUnscanned Allow; \
                 onUnjudged Deny; scanWait 5s; 2 ignore entries; expired, no longer applying: CVE-1)",
            ),
            (
                serde_json::json!({"scanWait": "20s", "maxReportAge": "soon"}),
                "False",
                "generation 3 is invalid and not enforced: spec.scanWait:",
            ),
        ];
        for (spec, status, message) in table {
            let s = desired(&policy(3, spec.clone()), None, now.clone());
            let r = ready(&s);
            assert_eq!(r.status, status, "{spec}");
            assert!(r.message.starts_with(message), "{spec}: {}", r.message);
            assert_eq!(r.observed_generation, Some(3));
            assert_eq!(s.observed_generation, Some(3));
            assert_eq!(r.last_transition_time, now);
            assert!(s.images_scanned.is_none() && s.last_evaluation_time.is_none());
        }
        let bad = desired(
            &policy(
                3,
                serde_json::json!({"scanWait": "20s", "maxReportAge": "soon"}),
            ),
            None,
            now,
        );
        assert!(ready(&bad).message.contains("spec.maxReportAge"), "{bad:?}");
    }

    #[test]
    fn the_next_check_follows_the_next_expiry() {
        let now = at("2026-06-01T00:00:00Z").0;
        let entry = |expires: &str| serde_json::json!({"id": "CVE-1", "reason": "r", "owner": "o", "expires": expires});
        // (ignore entries, next check)
        let table = [
            (vec![], RESYNC),
            (vec![entry("2026-05-01T00:00:00Z")], RESYNC),
            (vec![entry("2026-06-01T00:00:00Z")], RESYNC),
            (
                vec![entry("2026-06-01T00:01:00Z"), entry("2026-06-01T00:00:30Z")],
                Duration::from_secs(31),
            ),
            (vec![entry("2026-06-02T00:00:00Z")], RESYNC),
        ];
        for (ignore, want) in table {
            let p = policy(1, serde_json::json!({"ignore": ignore}));
            assert_eq!(next_check(&p, now), want, "{ignore:?}");
        }
    }

    #[test]
    fn writes_and_events_happen_on_change_only() {
        let t1 = at("2026-06-01T00:00:00Z");
        let t2 = at("2026-06-01T01:00:00Z");
        let good = policy(1, serde_json::json!({"mode": "Enforce"}));
        let first = desired(&good, None, t1.clone());
        assert!(needs_write(None, &first));
        assert_eq!(notice(None, &first).map(|n| n.warning), Some(false));

        // The same generation later: nothing to write, nothing to say; the audit's counts
        // on the status do not matter.
        let mut current = first.clone();
        current.images_scanned = Some(4);
        current.images_failing = Some(1);
        let again = desired(&good, Some(&current), t2.clone());
        assert!(!needs_write(Some(&current), &again));
        assert_eq!(notice(Some(&current), &again), None);

        // A broken generation 2: Ready=False, a warning, a new transition time.
        let broken = policy(2, serde_json::json!({"scanWait": "1m"}));
        let after = desired(&broken, Some(&current), t2.clone());
        assert!(needs_write(Some(&current), &after));
        assert_eq!(
            notice(Some(&current), &after).map(|n| n.warning),
            Some(true)
        );
        assert_eq!(ready(&after).last_transition_time, t2);

        // A valid generation 3 keeps True's time only while True.
        let fixed = policy(3, serde_json::json!({"mode": "Audit"}));
        let back = desired(&fixed, Some(&after), at("2026-06-01T02:00:00Z"));
        assert_eq!(notice(Some(&after), &back).map(|n| n.warning), Some(false));
        let later = desired(
            &policy(4, serde_json::json!({"mode": "Enforce"})),
            Some(&back),
            at("2026-06-01T03:00:00Z"),
        );
        assert_eq!(
            ready(&later).last_transition_time,
            at("2026-06-01T02:00:00Z")
        );
        assert!(
            notice(Some(&back), &later).is_some(),
            "a new generation is news"
        );
    }
}
