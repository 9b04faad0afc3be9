//! What the engine decided, and the text a developer reads.

use std::fmt::Write as _;

use k8s_openapi::jiff::Timestamp;
use palisade_crds::Mode;
use palisade_pod_security::ContainerRef;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::compliance::ComplianceRef;
use crate::policy::RuleId;

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

impl Violation {
    /// One line: policy, container, field, problem and fix.
    /// `SecurityPolicy/restricted: container "app": securityContext.privileged=true is not allowed; remove it or set false`
    /// A ScanPolicy line names the image instead of the container:
    /// `ScanPolicy/prod: image nginx:1.19 (sha256:ab12…): 3 Critical vulnerabilities (…); this policy allows at most High`
    pub fn line(&self) -> String {
        let mut s = String::with_capacity(160);
        let _ = write!(s, "{}/{}: ", self.kind.as_str(), self.policy);
        if let Some(c) = &self.container
            && self.kind == PolicyKind::SecurityPolicy
        {
            let _ = write!(s, "{} {:?}: ", c.kind.as_str(), c.name);
        }
        let _ = write!(s, "{}; {}", self.message, self.fix);
        if let Some(e) = &self.expired_exception {
            let _ = write!(
                s,
                " (exception {:?} expired at {}, so it no longer applies)",
                e.name,
                e.expired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            );
        }
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
}

impl Decision {
    pub(crate) fn skipped(subject: Option<String>, why: Skipped) -> Decision {
        Decision {
            subject,
            skipped: Some(why),
            ..Decision::default()
        }
    }

    /// Admitted unless an Enforce-mode policy found a violation.
    pub fn allowed(&self) -> bool {
        !self.violations.iter().any(|v| v.mode == Mode::Enforce)
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
        let n = self.in_mode(Mode::Enforce).count();
        if n == 0 {
            return None;
        }
        let mut s = String::with_capacity(64 + n * 160);
        let subject = self.subject.as_deref().unwrap_or("object");
        let _ = write!(
            s,
            "{subject}: {n} violation{}",
            if n == 1 { "" } else { "s" }
        );
        for v in self.in_mode(Mode::Enforce) {
            let _ = write!(s, "\n- {}", v.line());
        }
        Some(s)
    }

    /// Admission warnings: one per Warn violation, the same line as a denial would show.
    pub fn warnings(&self) -> Vec<String> {
        self.in_mode(Mode::Warn).map(Violation::line).collect()
    }
}
