//! Exceptions: named, owned and dated waivers of specific rules.

use k8s_openapi::jiff::Timestamp;
use palisade_crds::PolicyException;

use crate::error::Problem;
use crate::rule_id::RuleId;
use crate::selector::{Selector, is_dns_label};

#[derive(Debug, Clone)]
pub(crate) struct CompiledException {
    pub(crate) name: String,
    rules: Vec<String>,
    namespaces: Vec<String>,
    images: Vec<String>,
    service_accounts: Vec<(Option<String>, String)>,
    object_selector: Option<Selector>,
    pub(crate) owner: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) expires: Option<Timestamp>,
}

/// `maxExceptionDays` when unset.
pub const DEFAULT_MAX_EXCEPTION_DAYS: u32 = 180;

/// Check the accountability fields every waiver must carry: a non-empty `owner` and
/// `reason`, and an `expires` at most `max_days` after `now`. An expiry already past is
/// accepted: the waiver simply no longer applies, and decisions say so.
pub(crate) fn check_accountability(
    owner: Option<&str>,
    reason: Option<&str>,
    expires: Option<Timestamp>,
    field: &str,
    limits: &WaiverLimits,
    problems: &mut Vec<Problem>,
) {
    if !limits.checked {
        return;
    }
    if owner.is_none_or(|o| o.trim().is_empty()) {
        problems.push(Problem::new(
            format!("{field}.owner"),
            "required: who is accountable for this waiver (a team or a person)",
        ));
    }
    if reason.is_none_or(|r| r.trim().is_empty()) {
        problems.push(Problem::new(
            format!("{field}.reason"),
            "required: why this waiver exists",
        ));
    }
    match expires {
        None => problems.push(Problem::new(
            format!("{field}.expires"),
            format!(
                "required: when this waiver ends (RFC 3339, at most {} days ahead)",
                limits.max_days
            ),
        )),
        Some(at) => {
            let latest = limits.latest_expiry();
            if at > latest {
                problems.push(Problem::new(
                    format!("{field}.expires"),
                    format!(
                        "{} is more than {} days ahead (maxExceptionDays); set it no later than {}",
                        at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        limits.max_days,
                        latest.strftime("%Y-%m-%dT%H:%M:%SZ")
                    ),
                ));
            }
        }
    }
}

/// How far ahead a waiver may run, judged at an instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaiverLimits {
    pub(crate) now: Timestamp,
    pub(crate) max_days: u32,
    /// `false` when compiling a generation that was accepted before these checks existed
    /// (see [`Waivers::AsAccepted`]).
    pub(crate) checked: bool,
}

/// How waivers are checked when a policy is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waivers {
    /// Owner, reason and an expiry within `maxExceptionDays` are required: what a policy
    /// must meet to be applied.
    Checked,
    /// As written: for a generation already accepted and in force, so that an upgrade that
    /// tightens the checks never drops a policy from enforcement (its status says what to fix).
    AsAccepted,
}

impl WaiverLimits {
    pub(crate) fn new(now: Timestamp, max_days: Option<u32>, waivers: Waivers) -> WaiverLimits {
        WaiverLimits {
            now,
            max_days: max_days.unwrap_or(DEFAULT_MAX_EXCEPTION_DAYS),
            checked: waivers == Waivers::Checked,
        }
    }

    fn latest_expiry(&self) -> Timestamp {
        let span = k8s_openapi::jiff::SignedDuration::from_hours(i64::from(self.max_days) * 24);
        self.now.checked_add(span).unwrap_or(Timestamp::MAX)
    }
}

/// What an exception is asked about: one violation of one pod.
pub(crate) struct Target<'a> {
    pub(crate) rule: RuleId,
    pub(crate) namespace: &'a str,
    pub(crate) service_account: &'a str,
    pub(crate) labels: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The normalized image of the container at fault; `None` for pod-level violations.
    pub(crate) image: Option<&'a str>,
}

impl CompiledException {
    pub(crate) fn compile(
        e: &PolicyException,
        field: &str,
        limits: &WaiverLimits,
        problems: &mut Vec<Problem>,
    ) -> Self {
        if e.name.is_empty() {
            problems.push(Problem::new(
                format!("{field}.name"),
                "an exception needs a name",
            ));
        }
        if e.rules.is_empty() {
            problems.push(Problem::new(
                format!("{field}.rules"),
                "list the rule ids it waives (\"*\" for all)",
            ));
        }
        for (i, r) in e.rules.iter().enumerate() {
            let known = || RuleId::ALL.iter().chain(RuleId::RUNTIME);
            if !known().any(|id| rule_matches(r, *id)) {
                problems.push(Problem::new(
                    format!("{field}.rules[{i}]"),
                    format!(
                        "{r:?} names no rule; rule ids are: {}",
                        known().map(|id| id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        for (i, n) in e.namespaces.iter().enumerate() {
            if !is_dns_label(n) {
                problems.push(Problem::new(
                    format!("{field}.namespaces[{i}]"),
                    format!("{n:?} is not a valid namespace name"),
                ));
            }
        }
        for (i, p) in e.images.iter().enumerate() {
            if p.is_empty() {
                problems.push(Problem::new(
                    format!("{field}.images[{i}]"),
                    "an image pattern cannot be empty",
                ));
            }
        }
        let mut service_accounts = Vec::new();
        for (i, sa) in e.service_accounts.iter().enumerate() {
            let (ns, name) = match sa.split_once('/') {
                Some((ns, name)) => (Some(ns), name),
                None => (None, sa.as_str()),
            };
            if ns.is_some_and(|ns| !is_dns_label(ns)) || name.is_empty() || name.contains('/') {
                problems.push(Problem::new(
                    format!("{field}.serviceAccounts[{i}]"),
                    format!("{sa:?}: write a service account as name or namespace/name"),
                ));
            }
            service_accounts.push((ns.map(str::to_owned), name.to_owned()));
        }
        let object_selector = e
            .object_selector
            .as_ref()
            .map(|s| Selector::compile(s, &format!("{field}.objectSelector"), problems));
        check_accountability(
            e.owner.as_deref(),
            e.reason.as_deref(),
            e.expires.as_ref().map(|t| t.0),
            field,
            limits,
            problems,
        );
        CompiledException {
            name: e.name.clone(),
            rules: e.rules.clone(),
            namespaces: e.namespaces.clone(),
            images: e.images.clone(),
            service_accounts,
            object_selector,
            owner: e.owner.clone(),
            reason: e.reason.clone(),
            expires: e.expires.as_ref().map(|t| t.0),
        }
    }

    pub(crate) fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }

    /// Whether the exception's scope covers the target (expiry aside).
    pub(crate) fn covers(&self, t: &Target<'_>) -> bool {
        self.rules.iter().any(|r| rule_matches(r, t.rule))
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == t.namespace))
            && (self.service_accounts.is_empty()
                || self.service_accounts.iter().any(|(ns, name)| {
                    name == t.service_account && ns.as_deref().is_none_or(|ns| ns == t.namespace)
                }))
            && self
                .object_selector
                .as_ref()
                .is_none_or(|s| s.matches(t.labels))
            && (self.images.is_empty()
                || t.image
                    .is_some_and(|img| self.images.iter().any(|p| glob_match(p, img))))
    }
}

/// `*` alone matches every rule; a trailing `*` matches a prefix; otherwise exact.
fn rule_matches(pattern: &str, rule: RuleId) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => rule.as_str().starts_with(prefix),
        None => pattern == rule.as_str(),
    }
}

/// Glob where `*` matches any run of characters (including `/`); everything else is literal.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_pod_security::CheckId;

    #[test]
    fn globs() {
        let table = [
            (
                "docker.io/library/nginx:*",
                "docker.io/library/nginx:1.25",
                true,
            ),
            (
                "docker.io/library/nginx:*",
                "docker.io/library/nginx-evil:1",
                false,
            ),
            ("*", "anything", true),
            ("ghcr.io/org/*", "ghcr.io/org/a/b:1", true),
            ("ghcr.io/org/*", "ghcr.io/organ/a:1", false),
            ("*/agent:*", "registry.io/team/agent:v1", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("ab*ba", "aba", false),
        ];
        for (p, t, want) in table {
            assert_eq!(glob_match(p, t), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn rule_patterns() {
        let psa = RuleId::PodSecurity(CheckId::Privileged);
        assert!(rule_matches("*", psa));
        assert!(rule_matches("podSecurity.*", psa));
        assert!(rule_matches("podSecurity.privileged", psa));
        assert!(!rule_matches("privileged", psa));
        assert!(rule_matches("privileged", RuleId::Privileged));
        assert!(!rule_matches("images.*", RuleId::Privileged));
    }
}
