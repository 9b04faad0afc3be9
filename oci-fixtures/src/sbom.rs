//! The official CycloneDX 1.5 and SPDX 2.3 JSON schemas (`scanner/tests/schemas/`, see its
//! README), as validators for tests of Palisade's SBOMs. Every schema a `$ref` names is
//! registered from disk under its `$id`, and retrieval is off: a reference that is not there
//! fails the build of the validator instead of reaching for the network.

use std::path::PathBuf;

use jsonschema::Registry;
pub use jsonschema::Validator;
use serde_json::Value;

use crate::{FixtureError, io, repo_root};

/// The directory holding the schema files.
pub fn schema_dir() -> PathBuf {
    repo_root().join("scanner/tests/schemas")
}

fn load(name: &str) -> Result<Value, FixtureError> {
    let path = schema_dir().join(name);
    let bytes = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FixtureError::Setup(format!("{}: not JSON: {e}", path.display())))
}

/// A validator for `root`, with `referenced` registered under their `$id`s. Formats are
/// checked (the draft-07 schemas declare `date-time` and others, which validators may skip).
fn validator(root: &str, referenced: &[&str]) -> Result<Validator, FixtureError> {
    let setup = |e: &dyn std::fmt::Display| FixtureError::Setup(format!("schema {root}: {e}"));
    let mut builder = Registry::new();
    for name in referenced {
        let schema = load(name)?;
        let id = schema
            .get("$id")
            .and_then(Value::as_str)
            .ok_or_else(|| FixtureError::Setup(format!("schema {name} has no $id")))?
            .to_owned();
        builder = builder.add(id, schema).map_err(|e| setup(&e))?;
    }
    let registry = builder.prepare().map_err(|e| setup(&e))?;
    jsonschema::options()
        .offline()
        .should_validate_formats(true)
        .with_registry(&registry)
        .build(&load(root)?)
        .map_err(|e| setup(&e))
}

/// CycloneDX 1.5's `bom-1.5.schema.json`, with the SPDX licence list and JSF schemas it uses.
pub fn cyclonedx_1_5() -> Result<Validator, FixtureError> {
    validator(
        "bom-1.5.schema.json",
        &["spdx.schema.json", "jsf-0.82.schema.json"],
    )
}

/// SPDX 2.3's `spdx-schema.json`.
pub fn spdx_2_3() -> Result<Validator, FixtureError> {
    validator("spdx-schema.json", &[])
}

/// Every way `doc` breaks the schema, one line each (`/path: message`); empty when valid.
pub fn violations(validator: &Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
