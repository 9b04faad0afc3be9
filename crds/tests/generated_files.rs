//! The committed CRD YAML must be exactly what the Rust types generate.

use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ sits in the repository root")
        .to_owned()
}

fn check_dir(dir: &str) {
    let dir = repo_root().join(dir);
    let rendered = palisade_crds::rendered().expect("CRDs render");
    assert!(!rendered.is_empty());
    for (name, text) in &rendered {
        let path = dir.join(name);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
        assert!(
            committed == *text,
            "{} drifted from the Rust types; run `make crds` and commit the result",
            path.display()
        );
    }
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("directory exists").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.ends_with(".yaml") && !rendered.iter().any(|(n, _)| *n == file) {
            stray.push(file);
        }
    }
    assert!(
        stray.is_empty(),
        "{}: files no type generates: {stray:?}",
        dir.display()
    );
}

#[test]
fn config_crd_matches_types() {
    check_dir("config/crd");
}

#[test]
fn chart_crds_match_types() {
    check_dir("charts/palisade/crds");
}

#[test]
fn security_policy_crd_has_the_contracted_shape() {
    let crd = palisade_crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "SecurityPolicy")
        .expect("SecurityPolicy CRD");
    assert_eq!(crd.spec.scope, "Cluster");
    assert_eq!(crd.spec.group, "palisade.dev");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["secpol".to_owned()][..])
    );
    assert_eq!(
        crd.spec.names.categories.as_deref(),
        Some(&["palisade".to_owned()][..])
    );
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    for want in ["Mode", "Level", "Age"] {
        assert!(
            columns.contains(&want),
            "printer column {want} missing: {columns:?}"
        );
    }
    let schema = serde_json::to_value(&version.schema).expect("schema serializes");
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(spec["mode"]["default"], "Enforce");
    assert_eq!(
        spec["mode"]["enum"],
        serde_json::json!(["Enforce", "Warn", "Audit"])
    );
    assert!(spec["podSecurity"]["properties"]["version"]["pattern"].is_string());
    assert_eq!(
        spec["exceptions"]["items"]["properties"]["expires"]["format"],
        "date-time"
    );
    for field in [
        "match",
        "exclude",
        "podSecurity",
        "capabilities",
        "privileged",
        "runAsNonRoot",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "images",
        "exceptions",
    ] {
        assert!(
            spec.get(field).is_some(),
            "spec.{field} missing from the schema"
        );
    }
}
