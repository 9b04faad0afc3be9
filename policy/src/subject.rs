//! Finding the pod an object would run: a Pod, the ephemeral containers sub-resource, or the
//! pod template of any workload kind.

use k8s_openapi::api::core::v1::{EphemeralContainer, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{DynamicObject, GroupVersionKind};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

/// The kinds of object that carry a pod spec, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PodCarrier {
    Pod,
    /// The Kubernetes ≤ 1.21 form of the `pods/ephemeralcontainers` sub-resource: only the
    /// list of ephemeral containers, no pod spec.
    EphemeralContainers,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ReplicationController,
    PodTemplate,
}

impl PodCarrier {
    /// The carrier for an API group and kind, if the kind carries a pod spec.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<PodCarrier> {
        Some(match (group, kind) {
            ("", "Pod") => PodCarrier::Pod,
            ("", "EphemeralContainers") => PodCarrier::EphemeralContainers,
            ("", "ReplicationController") => PodCarrier::ReplicationController,
            ("", "PodTemplate") => PodCarrier::PodTemplate,
            ("apps" | "extensions", "Deployment") => PodCarrier::Deployment,
            ("apps" | "extensions", "ReplicaSet") => PodCarrier::ReplicaSet,
            ("apps" | "extensions", "DaemonSet") => PodCarrier::DaemonSet,
            ("apps", "StatefulSet") => PodCarrier::StatefulSet,
            ("batch", "Job") => PodCarrier::Job,
            ("batch", "CronJob") => PodCarrier::CronJob,
            _ => return None,
        })
    }

    pub fn kind(self) -> &'static str {
        match self {
            PodCarrier::Pod => "Pod",
            PodCarrier::EphemeralContainers => "EphemeralContainers",
            PodCarrier::Deployment => "Deployment",
            PodCarrier::ReplicaSet => "ReplicaSet",
            PodCarrier::StatefulSet => "StatefulSet",
            PodCarrier::DaemonSet => "DaemonSet",
            PodCarrier::Job => "Job",
            PodCarrier::CronJob => "CronJob",
            PodCarrier::ReplicationController => "ReplicationController",
            PodCarrier::PodTemplate => "PodTemplate",
        }
    }

    /// The webhook that judges this kind: `pods.palisade.dev` for pods (and their ephemeral
    /// containers), `workloads.palisade.dev` for pod templates.
    pub fn webhook_name(self) -> &'static str {
        match self {
            PodCarrier::Pod | PodCarrier::EphemeralContainers => "pods.palisade.dev",
            _ => "workloads.palisade.dev",
        }
    }

    /// The resource name kubectl prints (`deployment.apps`).
    pub fn resource(self) -> &'static str {
        match self {
            PodCarrier::Pod => "pod",
            PodCarrier::EphemeralContainers => "pod",
            PodCarrier::Deployment => "deployment.apps",
            PodCarrier::ReplicaSet => "replicaset.apps",
            PodCarrier::StatefulSet => "statefulset.apps",
            PodCarrier::DaemonSet => "daemonset.apps",
            PodCarrier::Job => "job.batch",
            PodCarrier::CronJob => "cronjob.batch",
            PodCarrier::ReplicationController => "replicationcontroller",
            PodCarrier::PodTemplate => "podtemplate",
        }
    }

    /// The carrier whose pod a request asks to judge: `None` for a kind that carries no pod,
    /// for DELETE and CONNECT, and for a sub-resource other than ephemeral containers.
    pub(crate) fn judged(
        operation: &Operation,
        sub_resource: Option<&str>,
        resource: &str,
        kind: &GroupVersionKind,
    ) -> Option<PodCarrier> {
        if !matches!(operation, Operation::Create | Operation::Update) {
            return None;
        }
        match sub_resource {
            None | Some("") => {}
            Some("ephemeralcontainers") if resource == "pods" => {}
            Some(_) => return None,
        }
        PodCarrier::from_group_kind(&kind.group, &kind.kind)
    }

    /// JSON path from the object to its pod template (`spec.template`), empty for a Pod.
    fn template_path(self) -> &'static [&'static str] {
        match self {
            PodCarrier::Pod | PodCarrier::EphemeralContainers => &[],
            PodCarrier::PodTemplate => &["template"],
            PodCarrier::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }

    /// What to put before a pod-relative field path (`spec.containers[0]…`) to make it
    /// object-relative (`spec.template.spec.containers[0]…`).
    pub fn field_prefix(self) -> &'static str {
        match self {
            PodCarrier::Pod | PodCarrier::EphemeralContainers => "",
            PodCarrier::PodTemplate => "template.",
            PodCarrier::CronJob => "spec.jobTemplate.spec.template.",
            _ => "spec.template.",
        }
    }
}

/// How denials name the object of a request: its own name, else the request's, else its
/// `generateName` with a `*`.
pub(crate) fn subject_name(
    object_name: Option<&str>,
    request_name: &str,
    generate_name: Option<&str>,
) -> String {
    object_name
        .filter(|n| !n.is_empty())
        .or_else(|| Some(request_name).filter(|n| !n.is_empty()))
        .map(str::to_owned)
        .or_else(|| generate_name.map(|g| format!("{g}*")))
        .unwrap_or_default()
}

/// The pod an object would run, and who it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Subject {
    pub carrier: PodCarrier,
    pub name: String,
    pub namespace: String,
    /// The pod's metadata (a template's metadata for a workload), without managedFields.
    pub pod_metadata: ObjectMeta,
    pub pod_spec: PodSpec,
}

impl Subject {
    /// `Deployment web`, as denials name it.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.carrier.kind(), self.name)
    }

    /// Whether pod-level settings are unknown (the legacy ephemeral-containers form carries
    /// only the containers); checks then see only what the containers set themselves.
    pub fn is_partial(&self) -> bool {
        self.carrier == PodCarrier::EphemeralContainers
    }

    /// The object-relative path for a pod-relative field.
    pub fn object_field(&self, pod_field: &str) -> String {
        match self.carrier {
            // The legacy form has `ephemeralContainers` at the top level.
            PodCarrier::EphemeralContainers => pod_field
                .strip_prefix("spec.")
                .unwrap_or(pod_field)
                .to_owned(),
            c => format!("{}{pod_field}", c.field_prefix()),
        }
    }

    /// The service account the pod runs as.
    pub fn service_account(&self) -> &str {
        self.pod_spec
            .service_account_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
    }

    /// The subject of an admission request, or `None` when there is nothing to judge:
    /// not a pod carrier, DELETE/CONNECT, or a sub-resource other than ephemeral containers.
    pub fn from_request(req: &AdmissionRequest<DynamicObject>) -> Result<Option<Subject>, Error> {
        let Some(carrier) = PodCarrier::judged(
            &req.operation,
            req.sub_resource.as_deref(),
            &req.resource.resource,
            &req.kind,
        ) else {
            return Ok(None);
        };
        let Some(object) = &req.object else {
            return Ok(None);
        };
        let namespace = req
            .namespace
            .clone()
            .or_else(|| object.metadata.namespace.clone());
        let name = subject_name(
            object.metadata.name.as_deref(),
            &req.name,
            object.metadata.generate_name.as_deref(),
        );
        Subject::build(
            carrier,
            name,
            namespace.unwrap_or_default(),
            &object.metadata,
            &object.data,
        )
        .map(Some)
    }

    /// The subject of the old object of an UPDATE, to tell whether the pod spec changed.
    pub fn old_from_request(
        req: &AdmissionRequest<DynamicObject>,
    ) -> Result<Option<Subject>, Error> {
        let (Some(old), Some(carrier)) = (
            &req.old_object,
            PodCarrier::from_group_kind(&req.kind.group, &req.kind.kind),
        ) else {
            return Ok(None);
        };
        let ns = req.namespace.clone().unwrap_or_default();
        Subject::build(carrier, req.name.clone(), ns, &old.metadata, &old.data).map(Some)
    }

    /// The subject of a manifest (`apiVersion`, `kind`, `metadata`, …), or `None` for a kind
    /// that carries no pod spec.
    pub fn from_manifest(
        object: &DynamicObject,
        default_namespace: &str,
    ) -> Result<Option<Subject>, Error> {
        let Some(types) = &object.types else {
            return Ok(None);
        };
        let group = types.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let Some(carrier) = PodCarrier::from_group_kind(group, &types.kind) else {
            return Ok(None);
        };
        let name = object
            .metadata
            .name
            .clone()
            .or_else(|| {
                object
                    .metadata
                    .generate_name
                    .as_ref()
                    .map(|g| format!("{g}*"))
            })
            .unwrap_or_default();
        let ns = object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_owned());
        Subject::build(carrier, name, ns, &object.metadata, &object.data).map(Some)
    }

    fn build(
        carrier: PodCarrier,
        name: String,
        namespace: String,
        metadata: &ObjectMeta,
        data: &Value,
    ) -> Result<Subject, Error> {
        let fail = |path: &str, source| Error::Object {
            kind: carrier.kind().to_owned(),
            name: name.clone(),
            path: path.to_owned(),
            source,
        };
        let (mut pod_metadata, pod_spec) = match carrier {
            PodCarrier::Pod => {
                let spec = data.get("spec").unwrap_or(&Value::Null);
                let spec = PodSpec::deserialize(spec).map_err(|e| fail("spec", e))?;
                (metadata.clone(), spec)
            }
            PodCarrier::EphemeralContainers => {
                let list = data.get("ephemeralContainers").unwrap_or(&Value::Null);
                let list = Option::<Vec<EphemeralContainer>>::deserialize(list)
                    .map_err(|e| fail("ephemeralContainers", e))?;
                let spec = PodSpec {
                    ephemeral_containers: list,
                    ..PodSpec::default()
                };
                (metadata.clone(), spec)
            }
            _ => {
                let path = carrier.template_path();
                let template = path.iter().try_fold(data, |v, key| v.get(key));
                let template = template.unwrap_or(&Value::Null);
                let t = Option::<PodTemplateSpec>::deserialize(template)
                    .map_err(|e| fail(&path.join("."), e))?
                    .unwrap_or_default();
                (t.metadata.unwrap_or_default(), t.spec.unwrap_or_default())
            }
        };
        // Who last wrote which field matters to no policy, and the webhook does not read it.
        pod_metadata.managed_fields = None;
        Ok(Subject {
            carrier,
            name,
            namespace,
            pod_metadata,
            pod_spec,
        })
    }

    /// Whether two subjects would run the same pod as far as any policy can tell: the same
    /// spec and the same security annotations. Labels and finalizers may change freely.
    pub fn same_pod_security(&self, other: &Subject) -> bool {
        fn security_annotations(m: &ObjectMeta) -> impl Iterator<Item = (&String, &String)> {
            m.annotations.iter().flatten().filter(|(k, _)| {
                k.starts_with("container.apparmor.security.beta.kubernetes.io/")
                    || k.starts_with("seccomp.security.alpha.kubernetes.io/")
                    || k.starts_with("container.seccomp.security.alpha.kubernetes.io/")
            })
        }
        self.pod_spec == other.pod_spec
            && security_annotations(&self.pod_metadata)
                .eq(security_annotations(&other.pod_metadata))
    }
}
