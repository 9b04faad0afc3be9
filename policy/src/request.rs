//! An admission request as the engine reads it: who to answer, and the pod to judge.
//!
//! kube's `AdmissionReview<DynamicObject>` buffers the review twice on the way in (for its
//! flattened fields) and keeps the object as an untyped `serde_json::Value`, from which the
//! pod spec is then read a second time. [`PodRequest::from_json`] reads the common case, a
//! pod or workload CREATE or UPDATE, in one pass straight into the typed pod. It takes only
//! what kube's types take too and leaves everything else, malformed reviews included, to
//! [`PodRequest::from_admission`], so decisions and error messages are the same either way.

mod wire;

use kube::core::admission::{AdmissionRequest, META_API_VERSION_V1, META_KIND, Operation};
use kube::core::{DynamicObject, GroupVersionKind};

use crate::error::Error;
use crate::subject::{PodCarrier, Subject, subject_name};

/// What an admission request asks the policies to judge.
#[derive(Clone, Debug, PartialEq)]
pub enum ReviewTarget {
    /// Nothing: not a pod carrier, DELETE or CONNECT, or a sub-resource other than
    /// ephemeral containers.
    Nothing,
    /// An ordinary UPDATE that changes no pod-security field: admitted as it is, so labels,
    /// annotations and finalizers can change on objects admitted before a policy existed.
    Unchanged(Subject),
    /// A pod for the policies to run over.
    Pod(Subject),
}

impl ReviewTarget {
    /// What `req` asks to judge. The ephemeral-containers sub-resource is always judged: it
    /// adds containers.
    pub fn from_request(req: &AdmissionRequest<DynamicObject>) -> Result<ReviewTarget, Error> {
        let Some(subject) = Subject::from_request(req)? else {
            return Ok(ReviewTarget::Nothing);
        };
        if is_plain_update(&req.operation, req.sub_resource.as_deref())
            && let Some(old) = Subject::old_from_request(req)?
            && old.same_pod_security(&subject)
        {
            return Ok(ReviewTarget::Unchanged(subject));
        }
        Ok(ReviewTarget::Pod(subject))
    }

    /// The pod the policies run over; `None` when they do not run.
    pub fn judged(&self) -> Option<&Subject> {
        match self {
            ReviewTarget::Pod(subject) => Some(subject),
            ReviewTarget::Nothing | ReviewTarget::Unchanged(_) => None,
        }
    }
}

/// An UPDATE of the object itself, which may leave its pod unchanged.
fn is_plain_update(operation: &Operation, sub_resource: Option<&str>) -> bool {
    *operation == Operation::Update && sub_resource.unwrap_or("").is_empty()
}

/// What answering one admission request needs: whom to answer, and what to judge.
#[derive(Debug)]
pub struct PodRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub name: String,
    pub namespace: Option<String>,
    pub operation: Operation,
    pub dry_run: bool,
    /// What to judge, or why the object cannot be read as the pod its kind carries.
    pub target: Result<ReviewTarget, Error>,
}

impl PodRequest {
    /// The request of a review read with kube's types.
    pub fn from_admission(req: AdmissionRequest<DynamicObject>) -> PodRequest {
        let target = ReviewTarget::from_request(&req);
        PodRequest {
            uid: req.uid,
            kind: req.kind,
            name: req.name,
            namespace: req.namespace,
            operation: req.operation,
            dry_run: req.dry_run,
            target,
        }
    }

    /// The request of an AdmissionReview v1 body, read in one pass when it is a pod or
    /// workload CREATE or UPDATE that kube's types would read too. `None` for anything
    /// else, every malformed body included: read those with kube's `AdmissionReview` and
    /// [`from_admission`](Self::from_admission), which also say what is wrong.
    pub fn from_json(body: &[u8]) -> Option<PodRequest> {
        let wire::JsonObject(review) =
            serde_json::from_slice::<wire::JsonObject<wire::Review<'_>>>(body).ok()?;
        if review.kind != META_KIND
            || review.api_version != META_API_VERSION_V1
            || review.response.is_some()
        {
            return None;
        }
        let req = review.request?;
        let sub_resource = req.sub_resource.as_deref();
        // Requests with nothing to judge are rare here (the webhooks select pods and
        // workloads); the general path also checks their objects as kube does.
        let carrier = PodCarrier::judged(
            &req.operation,
            sub_resource,
            &req.resource.resource,
            &req.kind,
        )?;
        let object = read_object(carrier, req.object?)?;
        let namespace = req
            .namespace
            .clone()
            .or_else(|| object.metadata().namespace.clone())
            .unwrap_or_default();
        let name = subject_name(
            object.metadata().name.as_deref(),
            &req.name,
            object.metadata().generate_name.as_deref(),
        );
        let subject = object.into_subject(carrier, name, namespace);
        let target = match (
            is_plain_update(&req.operation, sub_resource),
            req.old_object,
        ) {
            (true, Some(old)) => {
                let namespace = req.namespace.clone().unwrap_or_default();
                let old =
                    read_object(carrier, old)?.into_subject(carrier, req.name.clone(), namespace);
                if old.same_pod_security(&subject) {
                    ReviewTarget::Unchanged(subject)
                } else {
                    ReviewTarget::Pod(subject)
                }
            }
            (true, None) => ReviewTarget::Pod(subject),
            // An old object nothing here reads: kube's types still check it.
            (false, Some(_)) => return None,
            (false, None) => ReviewTarget::Pod(subject),
        };
        Some(PodRequest {
            uid: req.uid,
            kind: req.kind,
            name: req.name,
            namespace: req.namespace,
            operation: req.operation,
            dry_run: req.dry_run,
            target: Ok(target),
        })
    }
}

/// An object of the request as the pod `carrier` carries: read while the body was, or now.
fn read_object(carrier: PodCarrier, object: wire::Object<'_>) -> Option<wire::Carried> {
    match object {
        wire::Object::Read(carried) => Some(*carried),
        wire::Object::Raw(raw) => {
            let mut json = serde_json::Deserializer::from_str(raw.get());
            let carried = wire::read_carrier(carrier, &mut json).ok()?;
            json.end().ok()?;
            Some(carried)
        }
    }
}
