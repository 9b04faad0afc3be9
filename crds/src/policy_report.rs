//! The Policy WG's `PolicyReport` and `ClusterPolicyReport` (`wgpolicyk8s.io/v1alpha2`), where
//! the background audit writes what it finds.
//!
//! Upstream keeps `scope`, `summary` and `results` at the top level of the object, not under
//! `spec`, which `#[derive(CustomResource)]` cannot express. So the kinds are plain structs
//! with `kube::Resource` implemented by hand (typed `Api`s work as for any kind), and their
//! CRDs are built here from the same structs through schemars, with the settings kube's derive
//! uses. `config/crd/wgpolicyk8s.io/*.yaml` is rendered from [`crds`]; a test keeps the files
//! identical.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "wgpolicyk8s.io";
pub const VERSION: &str = "v1alpha2";
pub const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";

/// Counts of results by outcome.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Summary {
    #[serde(default)]
    pub pass: u64,
    #[serde(default)]
    pub fail: u64,
    #[serde(default)]
    pub warn: u64,
    #[serde(default)]
    pub error: u64,
    #[serde(default)]
    pub skip: u64,
}

/// The outcome of one result.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Warn,
    Error,
    Skip,
}

/// How severe a result is, as upstream spells it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

/// Upstream's protobuf-style timestamp.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl Timestamp {
    pub fn from_jiff(t: k8s_openapi::jiff::Timestamp) -> Timestamp {
        Timestamp {
            seconds: t.as_second(),
            nanos: t.subsec_nanosecond(),
        }
    }
}

/// One check of one policy rule against one or more resources.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Outcome>,
    #[serde(default)]
    pub scored: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// The fields both kinds share, at the top level of the object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    /// The object the report is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ObjectReference>,
    /// The objects the report is about, by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_selector: Option<LabelSelector>,
    #[serde(default)]
    pub summary: Summary,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ReportResult>,
}

macro_rules! report_kind {
    ($ty:ident, $kind:literal, $plural:literal, $scope:ty) => {
        #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
        #[serde(rename_all = "camelCase")]
        pub struct $ty {
            pub api_version: String,
            pub kind: String,
            #[serde(default)]
            pub metadata: ObjectMeta,
            #[serde(flatten)]
            pub body: ReportBody,
        }

        impl $ty {
            pub fn new(metadata: ObjectMeta, body: ReportBody) -> $ty {
                $ty {
                    api_version: API_VERSION.into(),
                    kind: $kind.into(),
                    metadata,
                    body,
                }
            }
        }

        impl Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                GROUP.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                VERSION.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

report_kind!(
    PolicyReport,
    "PolicyReport",
    "policyreports",
    k8s_openapi::NamespaceResourceScope
);
report_kind!(
    ClusterPolicyReport,
    "ClusterPolicyReport",
    "clusterpolicyreports",
    k8s_openapi::ClusterResourceScope
);

/// The two CRDs, built from [`ReportBody`]: PolicyReport, then ClusterPolicyReport.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        crd("PolicyReport", "policyreports", "polr", "Namespaced"),
        crd(
            "ClusterPolicyReport",
            "clusterpolicyreports",
            "cpolr",
            "Cluster",
        ),
    ]
}

fn crd(kind: &str, plural: &str, short: &str, scope: &str) -> CustomResourceDefinition {
    let mut schema = body_schema();
    // The top-level fields every object has, as kube's derive writes them.
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
        props.insert("kind".into(), serde_json::json!({"type": "string"}));
        props.insert("metadata".into(), serde_json::json!({"type": "object"}));
    }
    let schema: Option<JSONSchemaProps> = serde_json::from_value(schema).ok();
    let column = |name: &str, path: &str, type_: &str| {
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceColumnDefinition {
            name: name.into(),
            json_path: path.into(),
            type_: type_.into(),
            ..Default::default()
        }
    };
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{plural}.{GROUP}")),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: kind.into(),
                list_kind: Some(format!("{kind}List")),
                plural: plural.into(),
                singular: Some(kind.to_ascii_lowercase()),
                short_names: Some(vec![short.into()]),
                ..CustomResourceDefinitionNames::default()
            },
            scope: scope.into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: schema,
                }),
                additional_printer_columns: Some(vec![
                    column("Pass", ".summary.pass", "integer"),
                    column("Fail", ".summary.fail", "integer"),
                    column("Warn", ".summary.warn", "integer"),
                    column("Error", ".summary.error", "integer"),
                    column("Skip", ".summary.skip", "integer"),
                    column("Age", ".metadata.creationTimestamp", "date"),
                ]),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

/// The structural schema of [`ReportBody`], generated as kube's derive does.
fn body_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .into_generator();
    let mut value = serde_json::to_value(generator.into_root_schema_for::<ReportBody>())
        .unwrap_or_else(|_| serde_json::json!({"type": "object"}));
    if let Some(map) = value.as_object_mut() {
        // The root of a CRD schema carries no title or description of a Rust type.
        map.remove("title");
        map.remove("description");
    }
    drop_null_enum_values(&mut value);
    value
}

/// Kubernetes 1.20 refuses `enum: [.., null]`, which optional enums render as;
/// `nullable: true` already admits null.
fn drop_null_enum_values(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            map.values_mut().for_each(drop_null_enum_values);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null_enum_values),
        _ => {}
    }
}

/// File name under `config/crd/wgpolicyk8s.io/` and YAML text of each CRD.
pub fn rendered() -> Result<Vec<(String, String)>, serde_saphyr::SerializeError> {
    crds()
        .into_iter()
        .map(|crd| {
            let plural = crd.spec.names.plural.clone();
            let body = serde_saphyr::to_string(&crd)?;
            let text = format!(
                "# Generated from crds/src/policy_report.rs (PALISADE_UPDATE_CRDS=1 cargo test -p palisade-operator --test offline); do not edit.\n{body}"
            );
            Ok((format!("{GROUP}_{plural}.yaml"), text))
        })
        .collect()
}
