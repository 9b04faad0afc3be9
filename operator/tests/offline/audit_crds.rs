//! The PolicyReport CRDs under `config/crd/wgpolicyk8s.io/` are generated from
//! `audit/policy_report.rs`; this test fails when they drift. They sit in a folder of their own:
//! `config/crd/` itself holds exactly what the `crds` crate generates (its test says so),
//! and the operator creates these when a cluster lacks them. Regenerate with:
//!
//! ```sh
//! PALISADE_UPDATE_CRDS=1 cargo test -p palisade-operator --test offline
//! ```

use std::path::PathBuf;

use palisade_operator::audit::policy_report;

fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/crd/wgpolicyk8s.io")
}

#[test]
fn committed_policy_report_crds_match_the_rust_types() {
    let rendered = policy_report::rendered().expect("renders");
    assert_eq!(rendered.len(), 2);
    let update = std::env::var_os("PALISADE_UPDATE_CRDS").is_some();
    for (file, text) in rendered {
        let path = config_dir().join(&file);
        if update {
            std::fs::write(&path, &text).expect("writes");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is not what policy_report.rs renders; run PALISADE_UPDATE_CRDS=1 cargo test -p palisade-operator --test offline",
            path.display()
        );
    }
}

#[test]
fn the_crds_keep_upstream_names_and_top_level_fields() {
    let crds = policy_report::crds();
    let names: Vec<_> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "policyreports.wgpolicyk8s.io",
            "clusterpolicyreports.wgpolicyk8s.io"
        ]
    );
    assert_eq!(crds[0].spec.scope, "Namespaced");
    assert_eq!(crds[1].spec.scope, "Cluster");
    for crd in &crds {
        let v = serde_json::to_value(crd).expect("serializes");
        let schema = &v["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let props = &schema["properties"];
        for field in [
            "apiVersion",
            "kind",
            "metadata",
            "scope",
            "scopeSelector",
            "summary",
            "results",
        ] {
            assert!(props.get(field).is_some(), "{field} missing: {props}");
        }
        assert!(props.get("spec").is_none());
        let result = &props["results"]["items"]["properties"];
        assert_eq!(
            result["result"]["enum"],
            serde_json::json!(["pass", "fail", "warn", "error", "skip"])
        );
        assert_eq!(
            result["severity"]["enum"],
            serde_json::json!(["critical", "high", "medium", "low", "info"])
        );
        assert_eq!(
            result["properties"]["additionalProperties"]["type"],
            "string"
        );
        assert!(!v.to_string().contains("null]"), "no null enum values");
        assert!(!v.to_string().contains("$ref"), "structural: no references");
    }
}
