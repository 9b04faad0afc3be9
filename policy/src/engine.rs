//! Running the policies of a set over one subject.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionRequest;
use palisade_imageref::ImageRef;
use palisade_pod_security::{ContainerRef, PodView};

use crate::compliance;
use crate::decision::{
    Decision, ExpiredException, PolicyKind, Skipped, Undecided, Violation, Waiver,
};
use crate::error::Error;
use crate::exceptions::Target;
use crate::policy::{CompiledPolicy, PolicySet, Scope};
use crate::request::ReviewTarget;
use crate::rule_id::RuleId;
use crate::rules::{self, Finding};
use crate::subject::Subject;

/// What the engine knows besides the object.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Labels of the object's namespace; `None` when not known. Without
    /// `namespace_unreadable`, that means "judge by name only" (files, the CLI).
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// The namespace's labels were needed and could not be read: a policy that selects
    /// namespaces by label cannot tell whether it matches. Enforce policies then refuse
    /// (see [`Decision::undecided`]) rather than judge as if the namespace had no labels.
    pub namespace_unreadable: bool,
    /// The instant exceptions are judged at.
    pub now: Timestamp,
}

impl<'a> Facts<'a> {
    /// Facts with known (or no) namespace labels, at `now`.
    pub fn new(namespace_labels: Option<&'a BTreeMap<String, String>>, now: Timestamp) -> Self {
        Facts {
            namespace_labels,
            namespace_unreadable: false,
            now,
        }
    }
}

/// Whether a policy's `match` and `exclude` select a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applies {
    Yes,
    No,
    /// Only the namespace selector could decide, and the namespace's labels are unknown.
    Unknown,
}

/// The namespace label every namespace has on Kubernetes ≥ 1.21; provided here for older
/// clusters and for files, so selectors on it behave the same everywhere.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Judge an admission request: find its pod, admit unchanged UPDATEs, run the policies.
pub fn review_request(
    set: &PolicySet,
    req: &AdmissionRequest<DynamicObject>,
    facts: &Facts<'_>,
) -> Result<Decision, Error> {
    review_request_keeping_subject(set, req, facts).map(|(decision, _)| decision)
}

/// [`review_request`], also returning the subject when it was judged (not skipped), so
/// that further checks of the same request (the scan gate) need not parse it again.
pub fn review_request_keeping_subject(
    set: &PolicySet,
    req: &AdmissionRequest<DynamicObject>,
    facts: &Facts<'_>,
) -> Result<(Decision, Option<Subject>), Error> {
    let target = ReviewTarget::from_request(req)?;
    let decision = review_target(set, &target, facts);
    match target {
        ReviewTarget::Pod(subject) => Ok((decision, Some(subject))),
        ReviewTarget::Nothing | ReviewTarget::Unchanged(_) => Ok((decision, None)),
    }
}

/// Judge what a request asks to judge: nothing, an unchanged pod (always admitted), or a pod.
pub fn review_target(set: &PolicySet, target: &ReviewTarget, facts: &Facts<'_>) -> Decision {
    match target {
        ReviewTarget::Nothing => Decision::skipped(None, Skipped::NotAPodCarrier),
        ReviewTarget::Unchanged(subject) => {
            Decision::skipped(Some(subject.display_name()), Skipped::PodSpecUnchanged)
        }
        ReviewTarget::Pod(subject) => review(set, subject, facts),
    }
}

/// Run every policy of `set` that matches `subject`.
pub fn review(set: &PolicySet, subject: &Subject, facts: &Facts<'_>) -> Decision {
    let mut decision = Decision {
        subject: Some(subject.display_name()),
        ..Decision::default()
    };
    let mut findings = Vec::new();
    for policy in set.policies() {
        if !policy.judges_admission() {
            continue;
        }
        match applies(&policy.scope, subject, facts) {
            Applies::Yes => {
                decision.matched_policies.push(policy.name.clone());
                evaluate(policy, subject, facts, &mut findings, &mut decision);
            }
            Applies::No => {}
            // Only an Enforce policy that would refuse the pod if it matched must know; it
            // then refuses, saying why, rather than judge as if the namespace had no labels.
            Applies::Unknown if policy.mode == palisade_crds::Mode::Enforce => {
                let mut would = Decision::default();
                evaluate(policy, subject, facts, &mut findings, &mut would);
                if !would.violations.is_empty() {
                    decision.undecided.push(Undecided {
                        kind: PolicyKind::SecurityPolicy,
                        policy: policy.name.clone(),
                        namespace: subject.namespace.clone(),
                    });
                }
            }
            Applies::Unknown => {}
        }
    }
    decision
}

/// Run one policy's checks over the subject into `decision`.
fn evaluate(
    policy: &CompiledPolicy,
    subject: &Subject,
    facts: &Facts<'_>,
    findings: &mut Vec<Finding>,
    decision: &mut Decision,
) {
    findings.clear();
    if let Some((level, version)) = policy.pod_security {
        let pod = PodView {
            metadata: &subject.pod_metadata,
            spec: &subject.pod_spec,
        };
        findings.extend(
            palisade_pod_security::evaluate(level, version, pod)
                .into_iter()
                .map(|f| Finding {
                    rule: RuleId::PodSecurity(f.check),
                    container: f.container,
                    field: f.field,
                    message: f.message,
                    fix: f.fix,
                }),
        );
    }
    rules::evaluate(&policy.controls, &subject.pod_spec, findings);
    for f in findings.drain(..) {
        judge(policy, subject, facts, f, decision);
    }
}

/// Whether a policy's `match` / `exclude` select the subject.
pub(crate) fn applies(scope: &Scope, subject: &Subject, facts: &Facts<'_>) -> Applies {
    applies_to(
        scope,
        &subject.namespace,
        subject.pod_metadata.labels.as_ref(),
        facts.namespace_labels,
        facts.namespace_unreadable,
    )
}

/// Whether `match` / `exclude` select a pod in namespace `ns` with `pod_labels`, its
/// namespace having `namespace_labels` (`None`: unknown, and unreadable when
/// `namespace_unreadable`). Admission and the runtime rules select pods alike.
pub(crate) fn applies_to(
    scope: &Scope,
    ns: &str,
    pod_labels: Option<&BTreeMap<String, String>>,
    namespace_labels: Option<&BTreeMap<String, String>>,
    namespace_unreadable: bool,
) -> Applies {
    if scope.exclude_namespaces.iter().any(|n| n == ns)
        || scope
            .exclude_object_selector
            .as_ref()
            .is_some_and(|s| s.matches(pod_labels))
    {
        return Applies::No;
    }
    let rest = (scope.namespaces.is_empty() || scope.namespaces.iter().any(|n| n == ns))
        && scope
            .object_selector
            .as_ref()
            .is_none_or(|s| s.matches(pod_labels));
    if !rest {
        return Applies::No;
    }
    let Some(selector) = scope.namespace_selector.as_ref() else {
        return Applies::Yes;
    };
    if namespace_labels.is_none() && namespace_unreadable {
        return Applies::Unknown;
    }
    let matches = selector.matches_with(|key| {
        namespace_labels
            .and_then(|l| l.get(key))
            .map(String::as_str)
            .or_else(|| (key == NAMESPACE_NAME_LABEL).then_some(ns))
    });
    if matches { Applies::Yes } else { Applies::No }
}

fn judge(
    policy: &CompiledPolicy,
    subject: &Subject,
    facts: &Facts<'_>,
    f: Finding,
    decision: &mut Decision,
) {
    let mut expired = None;
    if !policy.exceptions.is_empty() {
        let image = f
            .container
            .as_ref()
            .and_then(|c| normalized_image(subject, c));
        let target = Target {
            rule: f.rule,
            namespace: &subject.namespace,
            service_account: subject.service_account(),
            labels: subject.pod_metadata.labels.as_ref(),
            image: image.as_deref(),
        };
        for e in policy.exceptions.iter().filter(|e| e.covers(&target)) {
            match e.expires {
                Some(at) if at <= facts.now => {
                    expired.get_or_insert(ExpiredException {
                        name: e.name.clone(),
                        expired_at: at,
                    });
                }
                _ => {
                    decision.waived.push(Waiver {
                        kind: PolicyKind::SecurityPolicy,
                        policy: policy.name.clone(),
                        exception: e.name.clone(),
                        rule: f.rule,
                        field: subject.object_field(&f.field),
                        owner: e.owner.clone(),
                        reason: e.reason.clone(),
                        expires: e.expires,
                    });
                    return;
                }
            }
        }
    }
    decision.violations.push(Violation {
        kind: PolicyKind::SecurityPolicy,
        policy: policy.name.clone(),
        mode: policy.mode,
        rule: f.rule,
        container: f.container,
        field: subject.object_field(&f.field),
        message: f.message,
        fix: f.fix,
        expired_exception: expired,
        compliance: compliance::refs(f.rule),
    });
}

fn normalized_image(subject: &Subject, c: &ContainerRef) -> Option<String> {
    let image = palisade_pod_security::containers(&subject.pod_spec)
        .find(|v| v.kind == c.kind && v.index == c.index)?
        .image?;
    ImageRef::parse(image).ok().map(|r| r.to_string())
}
