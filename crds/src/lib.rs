//! Palisade's API types (`palisade.dev/v1alpha1`).
//!
//! These Rust types are the single source of truth for every schema: the CRD YAML under
//! `config/crd/` and `charts/palisade/crds/` is generated from them (`palisade crds`), and a
//! test fails when the committed files drift.

mod security_policy;

pub use security_policy::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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
    vec![SecurityPolicy::crd()]
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
