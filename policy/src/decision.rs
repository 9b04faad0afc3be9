//! What the engine decided, and the text a developer reads.

use std::fmt::Write as _;

use k8s_openapi::jiff::Timestamp;
use palisade_crds::Mode;
use palisade_pod_security::ContainerRef;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::compliance::ComplianceRef;
use crate::rule_id::RuleId;

/// The kind of policy a violation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PolicyKind {
    SecurityPolicy,
    ScanPolicy,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::SecurityPolicy => "SecurityPolicy",
            PolicyKind::ScanPolicy => "ScanPolicy",
        }
    }
}

/// One problem found by one policy in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub kind: PolicyKind,
    /// The policy that found it.
    pub policy: String,
    pub mode: Mode,
    pub rule: RuleId,
    /// The container at fault; `None` for pod-level settings.
    pub container: Option<ContainerRef>,
    /// JSON path of the field in the submitted object (`spec.template.spec.containers[0].securityContext.privileged`).
    pub field: String,
    /// What is wrong (`securityContext.privileged=true is not allowed`).
    pub message: String,
    /// How to fix it (`remove it or set false`).
    pub fix: String,
    /// An exception that would have waived this, had it not expired.
    pub expired_exception: Option<ExpiredException>,
    pub compliance: &'static [ComplianceRef],
}

/// An exception that covered a violation but no longer applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredException {
    pub name: String,
    pub expired_at: Timestamp,
}

/// Where the rule pages live: a rule's page is `<base><rule-id>.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDocs {
    base: String,
}

/// The pages in the project's repository.
pub const DEFAULT_RULE_DOCS: &str =
    "https://github.com/palisade-dev/palisade/blob/main/docs/rules/";

impl Default for RuleDocs {
    fn default() -> Self {
        RuleDocs::new(DEFAULT_RULE_DOCS)
    }
}

impl RuleDocs {
    /// Pages under `base` (a trailing `/` is added when missing).
    pub fn new(base: &str) -> RuleDocs {
        let mut base = base.trim().to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        RuleDocs { base }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The page of a rule.
    pub fn url(&self, rule: RuleId) -> String {
        format!("{}{}.md", self.base, rule.as_str())
    }
}

impl Violation {
    /// [`line_with`](Self::line_with) the default rule pages.
    pub fn line(&self) -> String {
        self.line_with(&RuleDocs::default())
    }

    /// One line: policy, container, problem, fix, how to waive it, then the rule id, the
    /// field of the submitted object and the rule's page.
    /// ```text
    /// SecurityPolicy/restricted: container "app": securityContext.privileged=true is not allowed; remove it or set false; to waive it, ask the owner of SecurityPolicy/restricted for an exception (spec.exceptions: name, rules, owner, reason, expires) (rule privileged at spec.template.spec.containers[0].securityContext.privileged; https://…/privileged.md)
    /// ```
    /// A ScanPolicy line names the image instead of the container, and its fix already
    /// says how to ignore a finding.
    pub fn line_with(&self, docs: &RuleDocs) -> String {
        let mut s = String::with_capacity(320);
        let _ = write!(s, "{}/{}: ", self.kind.as_str(), self.policy);
        if let Some(c) = &self.container
            && self.kind == PolicyKind::SecurityPolicy
        {
            let _ = write!(s, "{} {:?}: ", c.kind.as_str(), c.name);
        }
        let _ = write!(s, "{}; {}", self.message, self.fix);
        if self.kind == PolicyKind::SecurityPolicy {
            let _ = write!(
                s,
                "; to waive it, ask the owner of SecurityPolicy/{} for an exception (spec.exceptions: name, rules, owner, reason, expires)",
                self.policy
            );
        }
        if let Some(e) = &self.expired_exception {
            let _ = write!(
                s,
                " (exception {:?} expired at {}, so it no longer applies)",
                e.name,
                e.expired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            );
        }
        let _ = write!(
            s,
            " (rule {} at {}; {})",
            self.rule.as_str(),
            self.field,
            docs.url(self.rule)
        );
        s
    }
}

impl Serialize for Violation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Violation", 11)?;
        s.serialize_field("kind", self.kind.as_str())?;
        s.serialize_field("policy", &self.policy)?;
        s.serialize_field("mode", self.mode.as_str())?;
        s.serialize_field("rule", self.rule.as_str())?;
        s.serialize_field(
            "container",
            &self.container.as_ref().map(
                |c| serde_json::json!({"name": c.name, "kind": c.kind.as_str(), "index": c.index}),
            ),
        )?;
        s.serialize_field("field", &self.field)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("fix", &self.fix)?;
        s.serialize_field(
            "expiredException",
            &self.expired_exception.as_ref().map(
                |e| serde_json::json!({"name": e.name, "expiredAt": e.expired_at.to_string()}),
            ),
        )?;
        s.serialize_field(
            "compliance",
            &self
                .compliance
                .iter()
                .map(|r| serde_json::json!({"framework": r.framework.as_str(), "id": r.id, "title": r.title}))
                .collect::<Vec<_>>(),
        )?;
        s.serialize_field("text", &self.line())?;
        s.end()
    }
}

/// A violation an exception waived, for reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiver {
    pub kind: PolicyKind,
    pub policy: String,
    /// The exception (SecurityPolicy) or the ignored finding id (ScanPolicy).
    pub exception: String,
    #[serde(serialize_with = "rule_str")]
    pub rule: RuleId,
    pub field: String,
    /// Who is accountable for the exception.
    pub owner: Option<String>,
    /// Why it exists.
    pub reason: Option<String>,
    /// When it stops applying.
    #[serde(serialize_with = "timestamp_str")]
    pub expires: Option<Timestamp>,
}

impl Waiver {
    /// `exception "debug-tools" (owner team-a, until 2027-01-31T00:00:00Z): reason`
    pub fn describe(&self) -> String {
        let mut s = format!("exception {:?}", self.exception);
        let mut parts = Vec::new();
        if let Some(o) = &self.owner {
            parts.push(format!("owner {o}"));
        }
        if let Some(at) = self.expires {
            parts.push(format!("until {}", at.strftime("%Y-%m-%dT%H:%M:%SZ")));
        }
        if !parts.is_empty() {
            let _ = write!(s, " ({})", parts.join(", "));
        }
        if let Some(r) = &self.reason {
            let _ = write!(s, ": {r}");
        }
        s
    }
}

fn timestamp_str<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => s.serialize_none(),
    }
}

/// A policy that could not decide: it selects namespaces by label and the namespace's
/// labels could not be read. Only Enforce policies refuse on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Undecided {
    pub kind: PolicyKind,
    pub policy: String,
    pub namespace: String,
}

impl Undecided {
    pub fn line(&self) -> String {
        format!(
            "{}/{}: the labels of namespace {:?} could not be read from the API server in time, and this policy selects namespaces by label; nothing was decided as if it had none: retry in a few seconds",
            self.kind.as_str(),
            self.policy,
            self.namespace
        )
    }
}

fn rule_str<S: Serializer>(rule: &RuleId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.as_str())
}

/// Why a request was admitted without running any policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Skipped {
    /// The object carries no pod spec, or the operation or sub-resource changes none.
    NotAPodCarrier,
    /// An UPDATE that leaves the pod spec and its security annotations as they were.
    PodSpecUnchanged,
}

/// The outcome for one object.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The judged object as denials name it (`Deployment web`).
    pub subject: Option<String>,
    /// Every violation of every matching policy, in policy order.
    pub violations: Vec<Violation>,
    /// Violations that an unexpired exception waived.
    pub waived: Vec<Waiver>,
    /// Set when no policy was run.
    pub skipped: Option<Skipped>,
    /// Names of the policies that matched the object.
    pub matched_policies: Vec<String>,
    /// Enforce policies that could not tell whether they match (namespace labels unknown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<Undecided>,
}

impl Decision {
    pub(crate) fn skipped(subject: Option<String>, why: Skipped) -> Decision {
        Decision {
            subject,
            skipped: Some(why),
            ..Decision::default()
        }
    }

    /// Admitted unless an Enforce-mode policy found a violation or could not decide.
    pub fn allowed(&self) -> bool {
        self.undecided.is_empty() && !self.violations.iter().any(|v| v.mode == Mode::Enforce)
    }

    /// Violations of policies in a given mode.
    pub fn in_mode(&self, mode: Mode) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(move |v| v.mode == mode)
    }

    /// The denial text, one line per Enforce violation, or `None` when admitted:
    /// ```text
    /// Deployment web: 2 violations
    /// - SecurityPolicy/restricted: container "app": securityContext.privileged=true is not allowed; remove it or set false
    /// - ...
    /// ```
    pub fn denial_message(&self) -> Option<String> {
        self.denial_message_with(&RuleDocs::default())
    }

    /// [`denial_message`](Self::denial_message) linking to the rule pages under `docs`.
    pub fn denial_message_with(&self, docs: &RuleDocs) -> Option<String> {
        let n = self.in_mode(Mode::Enforce).count();
        if n == 0 && self.undecided.is_empty() {
            return None;
        }
        let mut s = String::with_capacity(64 + n * 320);
        let subject = self.subject.as_deref().unwrap_or("object");
        if n == 0 {
            let _ = write!(s, "{subject}: cannot be judged now");
        } else {
            let _ = write!(
                s,
                "{subject}: {n} violation{}",
                if n == 1 { "" } else { "s" }
            );
        }
        for u in &self.undecided {
            let _ = write!(s, "\n- {}", u.line());
        }
        for v in self.in_mode(Mode::Enforce) {
            let _ = write!(s, "\n- {}", v.line_with(docs));
        }
        Some(s)
    }

    /// Admission warnings: one per Warn violation, the same line as a denial would show.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings_with(&RuleDocs::default())
    }

    /// [`warnings`](Self::warnings) linking to the rule pages under `docs`.
    pub fn warnings_with(&self, docs: &RuleDocs) -> Vec<String> {
        self.in_mode(Mode::Warn)
            .map(|v| v.line_with(docs))
            .collect()
    }
}
