//! The `Ready` condition and the Events both policy kinds share, as pure functions: how
//! the condition is written, when a change is news, and the messages people read.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use palisade_crds::ExpiringException;
use palisade_policy::Problem;

/// The condition type the operator owns.
pub const READY: &str = "Ready";

/// Ready=True: the current generation is valid and in force.
pub const REASON_VALID: &str = "Valid";

/// Ready=False: the current generation cannot be put in force.
pub const REASON_INVALID: &str = "Invalid";

/// Event reasons, on transitions only.
pub const EVENT_INVALID: &str = "InvalidPolicy";
pub const EVENT_ACCEPTED: &str = "PolicyAccepted";

/// A Warning when an exception (or ignore entry) comes within [`EXPIRY_WINDOW`] of its
/// expiry, and when it expires.
pub const EVENT_EXPIRING: &str = "ExceptionExpiring";
pub const EVENT_EXPIRED: &str = "ExceptionExpired";

/// How long before its expiry an exception is announced and listed on the status.
pub const EXPIRY_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// API servers accept 32 KiB; a message this long is unreadable anyway.
pub const MAX_MESSAGE: usize = 4096;

/// The problems of a compile error of either policy kind, each with its field: the same
/// list the webhook refuses a policy with at `kubectl apply`.
pub fn problems_of(e: &palisade_policy::Error) -> Vec<Problem> {
    e.problems()
}

/// What users are told in an Event, once per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The Event for a policy kind's Ready condition going from `previous` to `desired`, each
/// as (conditions, observedGeneration): news when Ready's status or generation changes.
pub fn ready_notice(
    previous: Option<(&[Condition], Option<i64>)>,
    desired: (&[Condition], Option<i64>),
) -> Option<Notice> {
    let ready = desired.0.iter().find(|c| c.type_ == READY)?;
    let same = previous.is_some_and(|(conditions, observed)| {
        observed == desired.1
            && conditions.iter().any(|o| {
                o.type_ == READY
                    && o.status == ready.status
                    && o.observed_generation == ready.observed_generation
            })
    });
    if same {
        return None;
    }
    let warning = ready.status != "True";
    Some(Notice {
        warning,
        reason: if warning {
            EVENT_INVALID
        } else {
            EVENT_ACCEPTED
        },
        message: ready.message.clone(),
    })
}

/// The Warnings for exceptions that entered the expiry window or expired since `previous`
/// was written: one per exception and state, so a resync or a restart says nothing new.
/// `kind_word` is `exception` (SecurityPolicy) or `ignore entry` (ScanPolicy).
pub fn expiry_notices(
    previous: &[ExpiringException],
    desired: &[ExpiringException],
    kind_word: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> Vec<Notice> {
    desired
        .iter()
        .filter(|d| {
            !previous
                .iter()
                .any(|p| p.name == d.name && p.expires == d.expires && p.expired == d.expired)
        })
        .map(|d| {
            let owner = d
                .owner
                .as_deref()
                .map(|o| format!(" (owner {o})"))
                .unwrap_or_default();
            let at = d.expires.0.strftime("%Y-%m-%dT%H:%M:%SZ");
            if d.expired {
                Notice {
                    warning: true,
                    reason: EVENT_EXPIRED,
                    message: format!(
                        "{kind_word} {:?}{owner} expired at {at}: what it waived counts again; renew it with a new expiry or remove it",
                        d.name
                    ),
                }
            } else {
                let hours = d.expires.0.duration_since(now).as_hours().max(0);
                let left = if hours >= 48 {
                    format!("{} days", hours / 24)
                } else {
                    format!("{hours} hours")
                };
                Notice {
                    warning: true,
                    reason: EVENT_EXPIRING,
                    message: format!(
                        "{kind_word} {:?}{owner} expires at {at}, in {left}: review it, then renew it with a new expiry or let it lapse",
                        d.name
                    ),
                }
            }
        })
        .collect()
}

/// `generation 4 is invalid; generation 3 stays in force: spec.x: …; spec.y: …`.
pub fn invalid_message(generation: i64, in_force: Option<i64>, problems: &[Problem]) -> String {
    let head = match in_force {
        Some(g) if g != generation => {
            format!("generation {generation} is invalid; generation {g} stays in force")
        }
        _ => format!("generation {generation} is invalid and not enforced"),
    };
    format!("{head}: {}", problem_list(problems))
}

/// The conditions with Ready set to `status` for `generation`: its `lastTransitionTime`
/// moves only when the status does, and conditions of other types stay as they are (the
/// list is written whole).
pub fn ready_conditions(
    previous: Option<&[Condition]>,
    status: &str,
    reason: &str,
    message: String,
    generation: i64,
    now: Time,
) -> Vec<Condition> {
    let previous = previous.unwrap_or_default();
    let last_transition_time = match previous.iter().find(|c| c.type_ == READY) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now,
    };
    let mut conditions = Vec::with_capacity(previous.len().max(1));
    conditions.push(Condition {
        type_: READY.into(),
        status: status.into(),
        reason: reason.into(),
        message: truncate(message),
        observed_generation: Some(generation),
        last_transition_time,
    });
    conditions.extend(previous.iter().filter(|c| c.type_ != READY).cloned());
    conditions
}

/// `spec.x: …; spec.y: …`
pub fn problem_list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A condition message cut to [`MAX_MESSAGE`] bytes, on a character boundary.
pub fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
