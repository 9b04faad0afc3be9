//! The example Argo CD Applications in `config/argocd/application.yaml`: they point at what
//! exists in this repository, order the policies after the chart, and the policies'
//! Application syncs only Palisade policies (never the sample workloads, which are meant to
//! be refused).

use std::path::PathBuf;

use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ sits in the repository root")
        .to_owned()
}

fn read(path: &str) -> String {
    let path = repo_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn applications() -> (Value, Value) {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&read("config/argocd/application.yaml"))
        .expect("config/argocd/application.yaml parses");
    let find = |name: &str| -> Value {
        docs.iter()
            .find(|d| d["kind"] == "Application" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("Application {name} missing"))
            .clone()
    };
    assert_eq!(docs.len(), 2, "two Applications");
    (find("palisade"), find("palisade-policies"))
}

fn sync_options(app: &Value) -> Vec<&str> {
    app["spec"]["syncPolicy"]["syncOptions"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn wave(app: &Value) -> i64 {
    app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
        .as_str()
        .expect("a sync-wave annotation")
        .parse()
        .expect("the wave is an integer")
}

#[test]
fn the_chart_application_installs_the_chart_of_this_repository() {
    let (chart, _) = applications();
    assert_eq!(chart["apiVersion"], "argoproj.io/v1alpha1");
    let source = &chart["spec"]["source"];
    assert_eq!(source["path"], "charts/palisade");
    let chart_yaml: Value =
        serde_saphyr::from_str(&read("charts/palisade/Chart.yaml")).expect("Chart.yaml parses");
    assert_eq!(
        source["repoURL"], chart_yaml["home"],
        "repoURL is the repository the chart names as its home"
    );
    assert_eq!(source["helm"]["releaseName"], chart_yaml["name"]);
    assert_eq!(
        chart["spec"]["destination"]["namespace"], "palisade-system",
        "the default namespace"
    );
    let options = sync_options(&chart);
    for want in ["CreateNamespace=true", "ServerSideApply=true"] {
        assert!(options.contains(&want), "{want} missing: {options:?}");
    }
    assert!(chart["spec"]["syncPolicy"]["automated"].is_object());
    // A cascading delete of the Application would delete the CRDs and every policy.
    assert!(
        chart["metadata"]["finalizers"].is_null(),
        "no resources-finalizer on the chart's Application"
    );
}

#[test]
fn the_policies_sync_after_the_chart_even_before_the_crds_exist() {
    let (chart, policies) = applications();
    assert!(
        wave(&policies) > wave(&chart),
        "policies in a later sync wave than the chart"
    );
    assert!(sync_options(&policies).contains(&"SkipDryRunOnMissingResource=true"));
    assert!(
        policies["spec"]["syncPolicy"]["retry"]["limit"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "retries cover a first sync that starts before the CRDs exist"
    );
    assert_eq!(
        policies["spec"]["source"]["repoURL"],
        chart["spec"]["source"]["repoURL"]
    );
    assert_eq!(policies["spec"]["source"]["path"], "config/samples");
    assert_eq!(
        policies["spec"]["source"]["directory"]["recurse"], false,
        "config/samples/workloads/ must stay out"
    );
}

#[test]
fn the_policies_application_syncs_only_cluster_scoped_policies() {
    let kinds: Vec<String> = palisade_crds::all()
        .into_iter()
        .filter(|crd| crd.spec.scope == "Cluster")
        .map(|crd| crd.spec.names.kind)
        .collect();
    let dir = repo_root().join("config/samples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config/samples").flatten() {
        let path = entry.path();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !path.is_file() || !["yaml", "yml", "json"].contains(&ext) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for doc in docs.iter().filter(|d| !d.is_null()) {
            let name = format!("{}: {}", path.display(), doc["metadata"]["name"]);
            assert_eq!(doc["apiVersion"], "palisade.dev/v1alpha1", "{name}");
            let kind = doc["kind"].as_str().unwrap_or_default();
            assert!(kinds.iter().any(|k| k == kind), "{name}: kind {kind}");
            assert!(
                doc["metadata"]["namespace"].is_null(),
                "{name}: cluster-scoped"
            );
            // The operator writes status; one in Git would be compared against it.
            assert!(doc.get("status").is_none(), "{name}: no status in Git");
            seen += 1;
        }
    }
    assert!(seen > 0, "config/samples holds policies");
}
