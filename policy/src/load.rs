//! Reading policies and manifests from YAML or JSON text (no I/O: callers read the files).

use palisade_crds::SecurityPolicy;
use serde_json::Value;

use crate::error::Error;

/// One object read from a stream, with its position (1-based document number).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub index: usize,
    pub value: Value,
}

/// Parse a YAML stream (one or more documents; JSON is YAML) into objects, expanding
/// `kind: List` (and any `*List`) into its items. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, Error> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Error::Syntax {
        index: 1,
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, value) in docs.into_iter().enumerate() {
        let index = i + 1;
        match value {
            Value::Null => {}
            Value::Object(ref map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && map.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = map.get("items") {
                    out.extend(items.iter().cloned().map(|value| Document { index, value }));
                }
            }
            value => out.push(Document { index, value }),
        }
    }
    Ok(out)
}

/// Parse SecurityPolicies from text. Every document must be a SecurityPolicy; an unknown
/// field under `spec` is an error (a misspelt control must not silently do nothing).
pub fn parse_policies(text: &str) -> Result<Vec<SecurityPolicy>, Error> {
    parse_documents(text)?
        .into_iter()
        .map(|doc| policy_from_document(&doc))
        .collect()
}

/// Read one document of a stream as a SecurityPolicy, naming the field at fault on error.
pub fn policy_from_document(doc: &Document) -> Result<SecurityPolicy, Error> {
    let v = &doc.value;
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind != "SecurityPolicy" || api_version != "palisade.dev/v1alpha1" {
        return Err(Error::NotAPolicy {
            index: doc.index,
            found: format!(
                "{} {}",
                if api_version.is_empty() {
                    "(no apiVersion)"
                } else {
                    api_version
                },
                if kind.is_empty() { "(no kind)" } else { kind }
            ),
        });
    }
    typed(v, Some(doc.index))
}

/// Read an object from the API server as a SecurityPolicy (list items may come without
/// `apiVersion` and `kind`), naming the field at fault on error.
pub fn policy_from_value(value: &Value) -> Result<SecurityPolicy, Error> {
    typed(value, None)
}

/// The SecurityPolicy object as it stood at the generation its `status.enforced` records,
/// when that is older than the current generation: same name and metadata, the enforced
/// spec, no status. The webhook and the audit enforce this when the current generation is
/// invalid, so a bad update never drops enforcement.
pub fn enforced_generation(value: &Value) -> Option<(i64, Value)> {
    let enforced = value.pointer("/status/enforced")?;
    let generation = enforced.get("generation")?.as_i64()?;
    let spec = enforced.get("spec")?;
    let current = value
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    if current.is_some_and(|c| generation >= c) {
        return None;
    }
    let mut old = value.clone();
    let object = old.as_object_mut()?;
    object.remove("status");
    object.insert("spec".into(), spec.clone());
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), generation.into());
    }
    Some((generation, old))
}

fn typed(v: &Value, index: Option<usize>) -> Result<SecurityPolicy, Error> {
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let schema_error = |field: String, source| Error::Schema {
        index,
        name: name.clone(),
        field,
        source,
    };
    let policy: SecurityPolicy = serde_path_to_error::deserialize(v).map_err(|e| {
        let field = e.path().to_string();
        schema_error(field, e.into_inner())
    })?;
    // A misspelt control must not silently do nothing.
    let mut unknown = Vec::new();
    if let Some(spec) = v.get("spec") {
        let _: Result<palisade_crds::SecurityPolicySpec, _> =
            serde_ignored::deserialize(spec, |path| unknown.push(format!("spec.{path}")));
    }
    if let Some(field) = unknown.into_iter().next() {
        return Err(schema_error(
            field.clone(),
            <serde_json::Error as serde::de::Error>::custom(format!(
                "unknown field {field:?}; see the SecurityPolicy reference (kubectl explain securitypolicy.spec)"
            )),
        ));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_lists_and_skips_empty_documents() {
        let text = "---\n---\napiVersion: v1\nkind: List\nitems:\n- {kind: Pod, metadata: {name: a}}\n- {kind: Pod, metadata: {name: b}}\n---\n{\"kind\": \"Pod\", \"metadata\": {\"name\": \"c\"}}\n";
        let docs = parse_documents(text).expect("parses");
        let names: Vec<_> = docs
            .iter()
            .map(|d| {
                d.value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            })
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn names_the_field_at_fault() {
        let table = [
            ("spec:\n  mode: Enforced\n", "spec.mode"),
            (
                "spec:\n  podSecurity: {level: strict}\n",
                "spec.podSecurity.level",
            ),
            (
                "spec:\n  exceptions:\n  - name: x\n    rules: ['*']\n    expires: next week\n",
                "spec.exceptions[0].expires",
            ),
            ("spec:\n  privilegd: Deny\n", "spec.privilegd"),
            (
                "spec:\n  capabilities: {allowed: SYS_PTRACE}\n",
                "spec.capabilities.allowed",
            ),
        ];
        for (spec, field) in table {
            let text = format!(
                "apiVersion: palisade.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: p}}\n{spec}"
            );
            match parse_policies(&text) {
                Err(Error::Schema { field: got, .. }) => assert_eq!(got, field, "{spec}"),
                other => panic!("{spec}: expected a schema error, got {other:?}"),
            }
        }
    }

    #[test]
    fn api_objects_need_no_kind_and_have_no_document_number() {
        let ok = serde_json::json!({"metadata": {"name": "p"}, "spec": {"privileged": "Deny"}});
        assert!(policy_from_value(&ok).is_ok());
        let bad = serde_json::json!({"metadata": {"name": "p"}, "spec": {"privileged": "Nope"}});
        let err = policy_from_value(&bad).expect_err("bad value");
        assert!(
            err.to_string()
                .starts_with("SecurityPolicy p: field spec.privileged: "),
            "{err}"
        );
    }

    #[test]
    fn enforced_generation_only_when_older() {
        let obj = |current: i64, enforced: i64| {
            serde_json::json!({
                "metadata": {"name": "p", "generation": current},
                "spec": {"privileged": "Nope"},
                "status": {"enforced": {"generation": enforced, "spec": {"privileged": "Deny"}}}
            })
        };
        let (generation, old) = enforced_generation(&obj(3, 2)).expect("older generation");
        assert_eq!(generation, 2);
        assert_eq!(old["spec"]["privileged"], "Deny");
        assert_eq!(old["metadata"]["generation"], 2);
        assert!(old.get("status").is_none());
        assert!(policy_from_value(&old).is_ok());
        assert!(enforced_generation(&obj(3, 3)).is_none());
    }

    #[test]
    fn refuses_other_kinds() {
        let err = parse_policies("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n");
        assert!(
            matches!(err, Err(Error::NotAPolicy { index: 1, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(matches!(
            parse_documents("a: [1,\n"),
            Err(Error::Syntax { .. })
        ));
    }
}
