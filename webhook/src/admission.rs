//! The admission endpoints: AdmissionReview v1 in, AdmissionReview v1 out.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::Status;
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, META_API_VERSION_V1, META_KIND, Operation,
};
use kube::core::response::StatusSummary;
use palisade_policy::{Decision, Facts, Mode, PodRequest, PolicyKind, review_target};
use tracing::{debug, info, warn};

use crate::AppState;
use crate::metrics::Outcome;
use crate::policies::NamespaceLookup;

/// A review carries the object and, for UPDATE, the old one; the API server caps a request
/// at 3 MiB, so twice that plus the envelope is ample.
const MAX_BODY_BYTES: usize = 8 << 20;

/// The admission routes. `/validate` takes any kind; the aliases let the two webhook
/// configurations (`pods.palisade.dev`, `workloads.palisade.dev`) use distinct paths, which
/// shows in access logs and API server metrics. `/validate/namespaces` is
/// `namespaces.palisade.dev`: who may carry the exempt label ([`crate::namespaces`]).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/validate/pods", post(validate))
        .route("/validate/workloads", post(validate))
        .route("/validate/namespaces", post(validate_namespaces))
        .route("/validate/policies", post(validate_policies))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn validate(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    if !state.is_synced() {
        // Before the first sync an empty policy set would admit everything; failing the call
        // lets the webhook's failurePolicy decide instead. Services route only to ready
        // replicas, so this is rare.
        state
            .metrics
            .observe_request("", "", Outcome::Error, started.elapsed());
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "policies are not synced yet; retry shortly",
        )
            .into_response();
    }
    let req = match parse_pod_review(&body) {
        Ok(req) => req,
        Err(message) => return malformed(&state, message, started),
    };
    let (response, outcome) = decide(&state, &req).await;
    state.metrics.observe_request(
        &req.kind.kind,
        operation_str(&req.operation),
        outcome,
        started.elapsed(),
    );
    axum::Json(response.into_review()).into_response()
}

/// `namespaces.palisade.dev`. It needs no policies, so it answers before the first sync too.
async fn validate_namespaces(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    let req = match parse_review(&body) {
        Ok(req) => req,
        Err(message) => return malformed(&state, message, started),
    };
    let (response, verdict) = crate::namespaces::decide(&state.exempt_label, &req);
    let outcome = match verdict {
        crate::namespaces::Verdict::Allowed => Outcome::Allowed,
        crate::namespaces::Verdict::Skipped => Outcome::Skipped,
        crate::namespaces::Verdict::Denied => {
            info!(
                uid = %req.uid,
                namespace = %req.name,
                user = req.user_info.username.as_deref().unwrap_or(""),
                label = crate::namespaces::EXEMPT_LABEL,
                "namespace denied: exempt label outside the excluded namespaces"
            );
            Outcome::Denied
        }
    };
    state.metrics.observe_request(
        &req.kind.kind,
        operation_str(&req.operation),
        outcome,
        started.elapsed(),
    );
    axum::Json(response.into_review()).into_response()
}

/// `policies.palisade.dev`: a SecurityPolicy or ScanPolicy with problems is refused with
/// each field and what is wrong, the check the operator writes to the policy's status. It
/// needs nothing in memory, so it answers before the first sync too.
async fn validate_policies(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    let req = match parse_review(&body) {
        Ok(req) => req,
        Err(message) => return malformed(&state, message, started),
    };
    let response = allowing(&req.uid);
    let object = match (&req.operation, &req.object) {
        (Operation::Create | Operation::Update, Some(object)) => object,
        _ => {
            state.metrics.observe_request(
                &req.kind.kind,
                operation_str(&req.operation),
                Outcome::Skipped,
                started.elapsed(),
            );
            return axum::Json(response.into_review()).into_response();
        }
    };
    let value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => return malformed(&state, format!("the object cannot be read: {e}"), started),
    };
    let (response, outcome) = match palisade_policy::policy_problems(&value, Timestamp::now()) {
        Some(problems) if !problems.is_empty() => {
            let mut message = format!(
                "{} {:?} is invalid ({} problem{}):",
                req.kind.kind,
                req.name,
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for p in &problems {
                message.push_str(&format!("\n- {}: {}", p.field, p.message));
            }
            info!(uid = %req.uid, kind = %req.kind.kind, name = %req.name, problems = problems.len(), "policy refused");
            // Forbidden, as for pods: kubectl prints the message whole (for "Invalid" it
            // prints only "The request is invalid" unless causes are structured).
            (deny(response, message, 403, "Forbidden"), Outcome::Denied)
        }
        Some(_) => (response, Outcome::Allowed),
        None => (response, Outcome::Skipped),
    };
    state.metrics.observe_request(
        &req.kind.kind,
        operation_str(&req.operation),
        outcome,
        started.elapsed(),
    );
    axum::Json(response.into_review()).into_response()
}

fn malformed(state: &AppState, message: String, started: Instant) -> Response {
    warn!(error = %message, "malformed admission request");
    state
        .metrics
        .observe_request("", "", Outcome::Error, started.elapsed());
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// Read a pod or workload review: in one pass into the typed pod when it is the common
/// case, else with kube's types, which also say what is wrong.
fn parse_pod_review(body: &[u8]) -> Result<PodRequest, String> {
    match PodRequest::from_json(body) {
        Some(req) => Ok(req),
        None => parse_review(body).map(PodRequest::from_admission),
    }
}

/// Read the body as an AdmissionReview v1 with a request, or say what is wrong with it.
fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, String> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not an AdmissionReview: {e}"))?;
    if review.types.kind != META_KIND || review.types.api_version != META_API_VERSION_V1 {
        return Err(format!(
            "expected kind {META_KIND} of apiVersion {META_API_VERSION_V1}, found kind {:?} of apiVersion {:?}",
            review.types.kind, review.types.api_version
        ));
    }
    review
        .try_into()
        .map_err(|_| "the AdmissionReview has no request".to_owned())
}

/// Judge one request from memory; images with no report yet may wait for their scan
/// within the gate's budget.
pub async fn decide(state: &AppState, req: &PodRequest) -> (AdmissionResponse, Outcome) {
    let set = state.store.current();
    let mut response = allowing(&req.uid);
    let target = match &req.target {
        Ok(target) => target,
        Err(e) => {
            // Tell the user what cannot be read rather than failing the call: a webhook
            // error would hide the reason behind "failed calling webhook".
            let message = e.to_string();
            info!(uid = %req.uid, kind = %req.kind.kind, name = %req.name, error = %message, "object cannot be judged; denied");
            return (deny(response, message, 400, "BadRequest"), Outcome::Error);
        }
    };
    let namespace = req.namespace.as_deref().filter(|n| !n.is_empty());
    // Labels are read (on a cache miss, from the API server) only when a policy selects
    // namespaces by label and there is a pod to judge.
    let needs_labels = target.judged().is_some()
        && (set.uses_namespace_labels()
            || state
                .scans
                .as_ref()
                .is_some_and(|g| g.policies().uses_namespace_labels()));
    let lookup = match namespace {
        Some(n) if needs_labels => state.store.namespace_lookup(n).await,
        Some(n) => state
            .store
            .namespace(n)
            .map_or(NamespaceLookup::NotWatched, NamespaceLookup::Known),
        None => NamespaceLookup::NotWatched,
    };
    let mut facts = Facts::new(None, Timestamp::now());
    match &lookup {
        NamespaceLookup::Known(ns) => facts.namespace_labels = crate::policies::labels(ns),
        NamespaceLookup::NotWatched => {}
        NamespaceLookup::Unreadable(_) => facts.namespace_unreadable = true,
    }
    let mut decision = review_target(&set, target, &facts);
    let mut scan_warnings = Vec::new();
    if let (Some(gate), Some(subject)) = (&state.scans, target.judged())
        && !gate.policies().is_empty()
    {
        scan_warnings = gate
            .review(subject, &facts, &mut decision, !req.dry_run)
            .await;
    }
    count_violating_policies(state, &decision);
    record_violations(state, req, &decision, &mut response);
    let warnings = [decision.warnings_with(&state.rule_docs), scan_warnings].concat();
    let outcome = if let Some(message) = decision.denial_message_with(&state.rule_docs) {
        info!(
            uid = %req.uid,
            kind = %req.kind.kind,
            namespace = req.namespace.as_deref().unwrap_or(""),
            name = %req.name,
            violations = decision.violations.len(),
            "denied"
        );
        response = deny(response, message, 403, "Forbidden");
        Outcome::Denied
    } else if decision.skipped.is_some() {
        Outcome::Skipped
    } else if !warnings.is_empty() {
        Outcome::Warned
    } else {
        Outcome::Allowed
    };
    if outcome != Outcome::Denied {
        debug!(uid = %req.uid, kind = %req.kind.kind, name = %req.name, decision = outcome.as_str(), "admitted");
    }
    // Warnings go on denials too: the user fixes everything in one round.
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    (response, outcome)
}

/// Every violation counts in `palisade_admission_violations_total` and gets a log line;
/// those of Warn and Audit policies also go into the response's `auditAnnotations`, which
/// the API server writes to its audit log (as `<webhook name>/warn-violations` and
/// `.../audit-violations`), so an admitted pod leaves a trace where auditors look.
fn record_violations(
    state: &AppState,
    req: &PodRequest,
    decision: &Decision,
    response: &mut AdmissionResponse,
) {
    for v in &decision.violations {
        state
            .metrics
            .violation(v.kind.as_str(), &v.policy, v.rule.as_str(), v.mode.as_str());
        info!(
            uid = %req.uid,
            kind = %req.kind.kind,
            namespace = req.namespace.as_deref().unwrap_or(""),
            name = %req.name,
            policy = %format_args!("{}/{}", v.kind.as_str(), v.policy),
            rule = v.rule.as_str(),
            mode = v.mode.as_str(),
            field = %v.field,
            dry_run = req.dry_run,
            "violation"
        );
    }
    for (mode, key) in [
        (Mode::Warn, WARN_VIOLATIONS_ANNOTATION),
        (Mode::Audit, AUDIT_VIOLATIONS_ANNOTATION),
    ] {
        let entries: Vec<serde_json::Value> = decision
            .in_mode(mode)
            .map(|v| {
                serde_json::json!({
                    "policy": format!("{}/{}", v.kind.as_str(), v.policy),
                    "rule": v.rule.as_str(),
                    "field": v.field,
                    "message": v.message,
                })
            })
            .collect();
        if !entries.is_empty()
            && let Ok(text) = serde_json::to_string(&entries)
        {
            response.audit_annotations.insert(key.to_owned(), text);
        }
    }
}

/// `auditAnnotations` keys; the API server prefixes them with the webhook's name.
pub const WARN_VIOLATIONS_ANNOTATION: &str = "warn-violations";
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "audit-violations";

/// One count per policy that found violations in this request, however many it found.
fn count_violating_policies(state: &AppState, decision: &Decision) {
    let mut counted: Vec<(PolicyKind, &str)> = Vec::new();
    for v in &decision.violations {
        let key = (v.kind, v.policy.as_str());
        if !counted.contains(&key) {
            counted.push(key);
            state
                .metrics
                .policy_violated(v.kind.as_str(), &v.policy, v.mode.as_str());
        }
    }
}

/// An allowing response to request `uid`: what kube's `AdmissionResponse::from` makes of its
/// own request type (whose review kind and version `parse_review` checked).
fn allowing(uid: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::invalid("");
    response.uid = uid.to_owned();
    response.allowed = true;
    response.result = Status::default();
    response
}

fn deny(
    response: AdmissionResponse,
    message: String,
    code: u16,
    reason: &str,
) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.status = Some(StatusSummary::Failure);
    response.result.code = code;
    response.result.reason = reason.to_owned();
    response
}

fn operation_str(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowing_is_what_kube_makes_of_its_request() {
        let body =
            br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "userInfo": {}}}"#;
        let req = parse_review(body).expect("a review");
        let kube = serde_json::to_value(AdmissionResponse::from(&req).into_review());
        let ours = serde_json::to_value(allowing(&req.uid).into_review());
        assert_eq!(ours.expect("serializes"), kube.expect("serializes"));
    }
}
