//! Running the policies of a set over one subject.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionRequest;
use palisade_imageref::ImageRef;
use palisade_pod_security::{ContainerRef, PodView};

use crate::compliance;
use crate::decision::{Decision, ExpiredException, PolicyKind, Skipped, Violation, Waiver};
use crate::error::Error;
use crate::exceptions::Target;
use crate::policy::{CompiledPolicy, PolicySet, RuleId, Scope};
use crate::request::ReviewTarget;
use crate::rules::{self, Finding};
use crate::subject::Subject;

/// What the engine knows besides the object.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Labels of the object's namespace; `None` when unknown (treated as no labels).
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// The instant exceptions are judged at.
    pub now: Timestamp,
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
        if !applies(&policy.scope, subject, facts) {
            continue;
        }
        decision.matched_policies.push(policy.name.clone());
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
        rules::evaluate(&policy.controls, &subject.pod_spec, &mut findings);
        for f in findings.drain(..) {
            judge(policy, subject, facts, f, &mut decision);
        }
    }
    decision
}

/// Whether a policy's `match` / `exclude` select the subject.
pub(crate) fn applies(scope: &Scope, subject: &Subject, facts: &Facts<'_>) -> bool {
    let ns = subject.namespace.as_str();
    let pod_labels = subject.pod_metadata.labels.as_ref();
    if scope.exclude_namespaces.iter().any(|n| n == ns)
        || scope
            .exclude_object_selector
            .as_ref()
            .is_some_and(|s| s.matches(pod_labels))
    {
        return false;
    }
    (scope.namespaces.is_empty() || scope.namespaces.iter().any(|n| n == ns))
        && scope.namespace_selector.as_ref().is_none_or(|s| {
            s.matches_with(|key| {
                facts
                    .namespace_labels
                    .and_then(|l| l.get(key))
                    .map(String::as_str)
                    .or_else(|| (key == NAMESPACE_NAME_LABEL).then_some(ns))
            })
        })
        && scope
            .object_selector
            .as_ref()
            .is_none_or(|s| s.matches(pod_labels))
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
