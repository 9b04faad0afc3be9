//! Palisade's API types (`palisade.dev/v1alpha1`).
//!
//! These Rust types are the single source of truth for every schema: the CRD YAML under
//! `config/crd/` and `charts/palisade/crds/` is generated from them (`palisade crds`), and a
//! test fails when the committed files drift.

mod image_scan_report;
pub mod policy_report;
mod scan_policy;
mod security_policy;

pub use image_scan_report::*;
pub use scan_policy::*;
pub use security_policy::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

/// The API group of every Palisade kind.
pub const GROUP: &str = "palisade.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Errors from rendering the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot render CRD {name} as YAML")]
    Render {
        name: String,
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

/// Every CRD Palisade defines, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        SecurityPolicy::crd(),
        ScanPolicy::crd(),
        ImageScanReport::crd(),
    ];
    for crd in &mut crds {
        // Deleting a CRD deletes every policy and report of its kind. Helm never deletes
        // the chart's crds/; these keep an Argo CD prune or cascading Application delete
        // from doing so either: remove them on purpose, with kubectl.
        crd.metadata.annotations = Some(
            [
                ("helm.sh/resource-policy", "keep"),
                ("argocd.argoproj.io/sync-options", "Delete=false"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                drop_null_enum_values(schema);
            }
        }
    }
    crds
}

/// An `Option<SomeEnum>` field renders as `enum: [A, B, null]` with `nullable: true`.
/// Kubernetes 1.20's API server refuses a null enum value (with the misleading "per-version
/// schemas may not all be set to identical values") and so does its kubectl's client-side
/// validation; `nullable: true` alone already admits null on every version.
fn drop_null_enum_values(props: &mut JSONSchemaProps) {
    if let Some(values) = props.enum_.as_mut() {
        values.retain(|v| !v.0.is_null());
    }
    let children = props
        .properties
        .iter_mut()
        .chain(props.pattern_properties.iter_mut())
        .chain(props.definitions.iter_mut())
        .flat_map(|m| m.values_mut())
        .chain(
            [&mut props.all_of, &mut props.any_of, &mut props.one_of]
                .into_iter()
                .flatten()
                .flatten(),
        );
    for child in children {
        drop_null_enum_values(child);
    }
    match props.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(s)) => drop_null_enum_values(s),
        Some(JSONSchemaPropsOrArray::Schemas(list)) => {
            list.iter_mut().for_each(drop_null_enum_values)
        }
        None => {}
    }
    for extra in [
        &mut props.additional_properties,
        &mut props.additional_items,
    ] {
        if let Some(JSONSchemaPropsOrBool::Schema(s)) = extra.as_mut() {
            drop_null_enum_values(s);
        }
    }
    if let Some(not) = props.not.as_mut() {
        drop_null_enum_values(not);
    }
}

/// File name (under `config/crd/`) and YAML text of every CRD.
pub fn rendered() -> Result<Vec<(String, String)>, Error> {
    all()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let body = serde_saphyr::to_string(&crd).map_err(|source| Error::Render {
                name: name.clone(),
                source,
            })?;
            let text = format!(
                "# Generated from the Rust types in crds/ by `palisade crds`; do not edit.\n{body}"
            );
            Ok((format!("{name}.yaml"), text))
        })
        .collect()
}

/// All CRDs as one multi-document YAML stream (what `palisade crds` prints).
pub fn rendered_stream() -> Result<String, Error> {
    Ok(rendered()?
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("---\n"))
}

#[cfg(test)]
mod null_enum_tests {
    use super::*;

    fn null_enums(value: &serde_json::Value, path: &str, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if k == "enum" && v.as_array().is_some_and(|a| a.iter().any(|x| x.is_null())) {
                        found.push(path.to_owned());
                    }
                    null_enums(v, &format!("{path}.{k}"), found);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    null_enums(v, &format!("{path}[{i}]"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn no_enum_lists_null_so_kubernetes_1_20_accepts_the_crds() {
        for crd in all() {
            let value = serde_json::to_value(&crd).expect("CRD serializes");
            let mut found = Vec::new();
            null_enums(&value, "", &mut found);
            assert!(found.is_empty(), "enums listing null: {found:?}");
        }
        // The optional enum stays optional.
        {
            let crd = all()
                .into_iter()
                .find(|c| c.spec.names.kind == "SecurityPolicy")
                .expect("SecurityPolicy CRD");
            let value = serde_json::to_value(&crd).expect("CRD serializes");
            let privileged = &value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
                ["spec"]["properties"]["privileged"];
            assert_eq!(privileged["enum"], serde_json::json!(["Allow", "Deny"]));
            assert_eq!(privileged["nullable"], true);
        }
    }
}

#[cfg(test)]
mod keep_tests {
    use super::*;

    #[test]
    fn every_crd_survives_an_uninstall_or_a_prune() {
        for crd in all() {
            let annotations = crd.metadata.annotations.clone().unwrap_or_default();
            assert_eq!(
                annotations
                    .get("helm.sh/resource-policy")
                    .map(String::as_str),
                Some("keep"),
                "{}",
                crd.spec.names.kind
            );
            assert_eq!(
                annotations
                    .get("argocd.argoproj.io/sync-options")
                    .map(String::as_str),
                Some("Delete=false"),
                "{}",
                crd.spec.names.kind
            );
        }
    }
}
