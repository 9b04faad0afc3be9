//! The JSON shapes [`super::PodRequest::from_json`] reads: kube's `AdmissionReview` and the
//! pod carriers, as far as the pod.
//!
//! The API server writes a request's `kind` and `operation` before its `object`, so the
//! object is read as the pod its kind carries while the body is read; only when they come
//! after it is the object kept as raw JSON and read once they are known.
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
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::subject::{PodCarrier, Subject};

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
/// kube's `AdmissionReview`.
pub(super) struct Review<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    #[serde(borrow, default)]
    pub request: Option<Request<'a>>,
    #[serde(default)]
    pub response: Option<IgnoredAny>,
}

/// kube's `AdmissionRequest<DynamicObject>`, as far as a decision reads it.
pub(super) struct Request<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    pub sub_resource: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub operation: Operation,
    pub object: Option<Object<'a>>,
    pub old_object: Option<Object<'a>>,
    pub dry_run: bool,
}

/// An object of a request: read already, or kept until its kind is known.
pub(super) enum Object<'a> {
    Read(Box<Carried>),
    Raw(&'a RawValue),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Uid,
    Kind,
    Resource,
    SubResource,
    RequestKind,
    RequestResource,
    RequestSubResource,
    Name,
    Namespace,
    Operation,
    UserInfo,
    Object,
    OldObject,
    DryRun,
    Options,
    #[serde(other)]
    Other,
}

/// Fill a field once; derived structs refuse a second value too.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de: 'a, 'a> Deserialize<'de> for Request<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RequestVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for RequestVisitor<'a> {
            type Value = Request<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an admission request")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request<'a>, A::Error> {
                let mut uid = None;
                let mut kind: Option<GroupVersionKind> = None;
                let mut resource = None;
                let mut sub_resource: Option<Option<String>> = None;
                let mut request_kind: Option<Option<GroupVersionKind>> = None;
                let mut request_resource: Option<Option<GroupVersionResource>> = None;
                let mut request_sub_resource: Option<Option<String>> = None;
                let mut name = None;
                let mut namespace: Option<Option<String>> = None;
                let mut operation: Option<Operation> = None;
                let mut user_info: Option<UserInfo> = None;
                let mut object = None;
                let mut old_object = None;
                let mut dry_run = None;
                let mut options: Option<Option<IgnoredAny>> = None;
                while let Some(field) = map.next_key()? {
                    match field {
                        Field::Uid => once(&mut uid, map.next_value()?, "uid")?,
                        Field::Kind => once(&mut kind, map.next_value()?, "kind")?,
                        Field::Resource => once(&mut resource, map.next_value()?, "resource")?,
                        Field::SubResource => {
                            once(&mut sub_resource, map.next_value()?, "subResource")?;
                        }
                        Field::RequestKind => {
                            once(&mut request_kind, map.next_value()?, "requestKind")?;
                        }
                        Field::RequestResource => {
                            once(&mut request_resource, map.next_value()?, "requestResource")?;
                        }
                        Field::RequestSubResource => {
                            let value = map.next_value()?;
                            once(&mut request_sub_resource, value, "requestSubResource")?;
                        }
                        Field::Name => once(&mut name, map.next_value()?, "name")?,
                        Field::Namespace => once(&mut namespace, map.next_value()?, "namespace")?,
                        Field::Operation => once(&mut operation, map.next_value()?, "operation")?,
                        Field::UserInfo => once(&mut user_info, map.next_value()?, "userInfo")?,
                        Field::Object => {
                            let seed = ObjectSeed::new(kind.as_ref(), operation.as_ref());
                            once(&mut object, map.next_value_seed(seed)?, "object")?;
                        }
                        Field::OldObject => {
                            let seed = ObjectSeed::new(kind.as_ref(), operation.as_ref());
                            once(&mut old_object, map.next_value_seed(seed)?, "oldObject")?;
                        }
                        Field::DryRun => once(&mut dry_run, map.next_value()?, "dryRun")?,
                        Field::Options => once(&mut options, map.next_value()?, "options")?,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if user_info.is_none() {
                    return Err(de::Error::missing_field("userInfo"));
                }
                Ok(Request {
                    uid: uid.ok_or_else(|| de::Error::missing_field("uid"))?,
                    kind: kind.ok_or_else(|| de::Error::missing_field("kind"))?,
                    resource: resource.ok_or_else(|| de::Error::missing_field("resource"))?,
                    sub_resource: sub_resource.flatten(),
                    name: name.unwrap_or_default(),
                    namespace: namespace.flatten(),
                    operation: operation.ok_or_else(|| de::Error::missing_field("operation"))?,
                    object: object.flatten(),
                    old_object: old_object.flatten(),
                    dry_run: dry_run.unwrap_or_default(),
                })
            }
        }

        deserializer.deserialize_map(RequestVisitor(PhantomData))
    }
}

/// Reads an object (or `null`) as the pod `carrier` carries, or keeps it raw when the
/// carrier is not known yet.
struct ObjectSeed<'a> {
    carrier: Option<PodCarrier>,
    lifetime: PhantomData<&'a ()>,
}

impl ObjectSeed<'_> {
    /// Read now when the request's kind carries a pod and its operation, if known, is one
    /// that is judged; keep it raw otherwise.
    fn new(kind: Option<&GroupVersionKind>, operation: Option<&Operation>) -> Self {
        let judged = operation.is_none_or(|o| matches!(o, Operation::Create | Operation::Update));
        ObjectSeed {
            carrier: kind
                .filter(|_| judged)
                .and_then(|k| PodCarrier::from_group_kind(&k.group, &k.kind)),
            lifetime: PhantomData,
        }
    }
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for ObjectSeed<'a> {
    type Value = Option<Object<'a>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let Some(carrier) = self.carrier else {
            return Ok(Option::<&'a RawValue>::deserialize(deserializer)?.map(Object::Raw));
        };

        struct ReadVisitor(PodCarrier);

        impl<'de> Visitor<'de> for ReadVisitor {
            type Value = Option<Box<Carried>>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or null")
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                read_carrier(self.0, d).map(|c| Some(Box::new(c)))
            }
        }

        Ok(deserializer
            .deserialize_option(ReadVisitor(carrier))?
            .map(Object::Read))
    }
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
struct PodObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    metadata: JsonObject<Metadata<'a>>,
    spec: PodSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EphemeralContainersObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    ephemeral_containers: Option<Vec<EphemeralContainer>>,
}

#[derive(Deserialize)]
struct PodTemplateObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    template: Option<PodTemplateSpec>,
}

/// Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, ReplicationControllers.
#[derive(Deserialize)]
struct WorkloadObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    spec: Option<JsonObject<WithTemplate>>,
}

#[derive(Deserialize)]
struct WithTemplate {
    #[serde(default)]
    template: Option<PodTemplateSpec>,
}

#[derive(Deserialize)]
struct CronJobObject<'a> {
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<&'a str>,
    #[serde(default, rename = "kind")]
    _kind: Option<&'a str>,
    #[serde(borrow, default)]
    metadata: JsonObject<Metadata<'a>>,
    #[serde(default)]
    spec: Option<JsonObject<CronJobSpec>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec {
    #[serde(default)]
    job_template: Option<JsonObject<JobTemplate>>,
}

#[derive(Deserialize)]
struct JobTemplate {
    #[serde(default)]
    spec: Option<JsonObject<WithTemplate>>,
}

impl<T: Default> Default for JsonObject<T> {
    fn default() -> Self {
        JsonObject(T::default())
    }
}

/// An object's own metadata and the pod it carries.
pub(super) struct Carried {
    metadata: ObjectMeta,
    /// A pod template's metadata; `None` when the object is the pod.
    pod_metadata: Option<ObjectMeta>,
    pod_spec: PodSpec,
}

impl Carried {
    /// The object's own name, namespace and generateName.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    pub fn into_subject(self, carrier: PodCarrier, name: String, namespace: String) -> Subject {
        let mut pod_metadata = self.pod_metadata.unwrap_or(self.metadata);
        pod_metadata.managed_fields = None;
        Subject {
            carrier,
            name,
            namespace,
            pod_metadata,
            pod_spec: self.pod_spec,
        }
    }

    fn template(metadata: Metadata<'_>, template: Option<PodTemplateSpec>) -> Carried {
        let t = template.unwrap_or_default();
        Carried {
            metadata: metadata.into(),
            pod_metadata: Some(t.metadata.unwrap_or_default()),
            pod_spec: t.spec.unwrap_or_default(),
        }
    }
}

/// The pod an object carries, read as [`Subject`] reads it from a `DynamicObject`.
pub(super) fn read_carrier<'de, D: Deserializer<'de>>(
    carrier: PodCarrier,
    deserializer: D,
) -> Result<Carried, D::Error> {
    Ok(match carrier {
        PodCarrier::Pod => {
            let JsonObject(o) = JsonObject::<PodObject<'de>>::deserialize(deserializer)?;
            Carried {
                metadata: o.metadata.0.into(),
                pod_metadata: None,
                pod_spec: o.spec,
            }
        }
        PodCarrier::EphemeralContainers => {
            let JsonObject(o) =
                JsonObject::<EphemeralContainersObject<'de>>::deserialize(deserializer)?;
            Carried {
                metadata: o.metadata.0.into(),
                pod_metadata: None,
                pod_spec: PodSpec {
                    ephemeral_containers: o.ephemeral_containers,
                    ..PodSpec::default()
                },
            }
        }
        PodCarrier::PodTemplate => {
            let JsonObject(o) = JsonObject::<PodTemplateObject<'de>>::deserialize(deserializer)?;
            Carried::template(o.metadata.0, o.template)
        }
        PodCarrier::CronJob => {
            let JsonObject(o) = JsonObject::<CronJobObject<'de>>::deserialize(deserializer)?;
            let template = o
                .spec
                .and_then(|s| s.0.job_template)
                .and_then(|j| j.0.spec)
                .and_then(|s| s.0.template);
            Carried::template(o.metadata.0, template)
        }
        PodCarrier::Deployment
        | PodCarrier::ReplicaSet
        | PodCarrier::StatefulSet
        | PodCarrier::DaemonSet
        | PodCarrier::Job
        | PodCarrier::ReplicationController => {
            let JsonObject(o) = JsonObject::<WorkloadObject<'de>>::deserialize(deserializer)?;
            Carried::template(o.metadata.0, o.spec.and_then(|s| s.0.template))
        }
    })
}
