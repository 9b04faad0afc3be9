//! The JSON shapes [`super::PodRequest::from_json`] reads: kube's `AdmissionReview` and the
//! pod carriers, as far as the pod.
//!
//! Each mirrors what kube's `AdmissionReview<DynamicObject>` reads, and is never more
//! lenient: a body is read here only if kube would read it too, otherwise the general path
//! reads it and says what is wrong. Derived structs refuse duplicate fields, borrowed
//! strings refuse escapes, [`JsonObject`] refuses anything but a JSON object; such bodies
//! go the general way. Fields named `_…` are read only to refuse what kube refuses.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::core::v1::{EphemeralContainer, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::admission::Operation;
use kube::core::{GroupVersionKind, GroupVersionResource};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A `T` that must be written as a JSON object. Derived structs also take an array of
/// their fields in order, which kube's flattened and `Value`-backed types refuse or read
/// differently.
pub(super) struct JsonObject<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = JsonObject<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(JsonObject)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Review<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    #[serde(borrow, default)]
    pub request: Option<JsonObject<Request<'a>>>,
    #[serde(default)]
    pub response: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default, rename = "requestKind")]
    _request_kind: Option<GroupVersionKind>,
    #[serde(default, rename = "requestResource")]
    _request_resource: Option<GroupVersionResource>,
    #[serde(default, rename = "requestSubResource")]
    _request_sub_resource: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(rename = "userInfo")]
    _user_info: UserInfo,
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, rename = "options")]
    _options: Option<IgnoredAny>,
}

/// An object's metadata as kube's `ObjectMeta` reads it, except that managedFields are
/// checked, not kept: they say who last wrote which field, no policy reads them, and
/// keeping them as JSON values costs more than reading the whole pod spec.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Metadata<'a> {
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
    #[serde(default)]
    deletion_grace_period_seconds: Option<i64>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
    #[serde(default)]
    finalizers: Option<Vec<String>>,
    #[serde(default)]
    generate_name: Option<String>,
    #[serde(default)]
    generation: Option<i64>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(borrow, default, rename = "managedFields")]
    _managed_fields: Option<Vec<JsonObject<ManagedFieldsEntry<'a>>>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerReference>>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    self_link: Option<String>,
    #[serde(default)]
    uid: Option<String>,
}

impl From<Metadata<'_>> for ObjectMeta {
    fn from(m: Metadata<'_>) -> ObjectMeta {
        ObjectMeta {
            annotations: m.annotations,
            creation_timestamp: m.creation_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            generate_name: m.generate_name,
            generation: m.generation,
            labels: m.labels,
            managed_fields: None,
            name: m.name,
            namespace: m.namespace,
            owner_references: m.owner_references,
            resource_version: m.resource_version,
            self_link: m.self_link,
            uid: m.uid,
        }
    }
}

/// What kube's `ManagedFieldsEntry` takes, kept nowhere (`fieldsV1` is any JSON there too).
#[derive(Deserialize)]
struct ManagedFieldsEntry<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "fieldsType")]
    _fields_type: Option<&'a str>,
    #[serde(default, rename = "fieldsV1")]
    _fields_v1: Option<IgnoredAny>,
    #[serde(default, rename = "manager")]
    _manager: Option<&'a str>,
    #[serde(default, rename = "operation")]
    _operation: Option<&'a str>,
    #[serde(default, rename = "subresource")]
    _subresource: Option<&'a str>,
    #[serde(default, rename = "time")]
    _time: Option<Time>,
}

// The carriers. A `DynamicObject` takes anything besides `apiVersion`, `kind` and
// `metadata`; these are stricter on the way to the pod (an array where a template is
// expected, say), and such objects go the general way.

#[derive(Deserialize)]
pub(super) struct PodObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub metadata: JsonObject<Metadata<'a>>,
    pub spec: PodSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EphemeralContainersObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    pub ephemeral_containers: Option<Vec<EphemeralContainer>>,
}

#[derive(Deserialize)]
pub(super) struct PodTemplateObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    pub template: Option<PodTemplateSpec>,
}

/// Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, ReplicationControllers.
#[derive(Deserialize)]
pub(super) struct WorkloadObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    pub spec: Option<JsonObject<WithTemplate>>,
}

#[derive(Deserialize)]
pub(super) struct WithTemplate {
    #[serde(default)]
    pub template: Option<PodTemplateSpec>,
}

#[derive(Deserialize)]
pub(super) struct CronJobObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    pub spec: Option<JsonObject<CronJobSpec>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CronJobSpec {
    #[serde(default)]
    pub job_template: Option<JsonObject<JobTemplate>>,
}

#[derive(Deserialize)]
pub(super) struct JobTemplate {
    #[serde(default)]
    pub spec: Option<JsonObject<WithTemplate>>,
}

impl<T: Default> Default for JsonObject<T> {
    fn default() -> Self {
        JsonObject(T::default())
    }
}
