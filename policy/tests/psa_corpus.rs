//! The `podSecurity` presets through the whole engine: every upstream Pod Security Standards
//! fixture gives the upstream verdict, as a Pod and wrapped as a Deployment's pod template.

use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use palisade_policy::{CompiledPolicy, Facts, PolicySet, SecurityPolicy, Subject, review};
use serde_json::{Value, json};

fn corpus() -> PathBuf {
    let dir = std::env::var_os("PALISADE_PSA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/psa")
        });
    assert!(
        dir.join("baseline").is_dir() && dir.join("restricted").is_dir(),
        "PSA corpus not found at {} (set PALISADE_PSA_CORPUS)",
        dir.display()
    );
    dir
}

fn policy(level: &str, version: &str) -> PolicySet {
    let p: SecurityPolicy = serde_json::from_value(json!({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
        "metadata": {"name": format!("{level}-{version}")},
        "spec": {"mode": "Enforce", "podSecurity": {"level": level, "version": version}}
    }))
    .expect("policy");
    PolicySet::new(vec![CompiledPolicy::compile(&p).expect("compiles")])
}

fn as_deployment(pod: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": pod["metadata"]["name"], "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": pod["metadata"], "spec": pod["spec"]}
        }
    })
}

fn allowed(set: &PolicySet, manifest: Value) -> bool {
    let object: DynamicObject = serde_json::from_value(manifest).expect("object");
    let subject = Subject::from_manifest(&object, "default")
        .expect("readable")
        .expect("pod carrier");
    let facts = Facts::new(None, Timestamp::now());
    review(set, &subject, &facts).allowed()
}

#[test]
fn presets_give_the_upstream_verdict_as_pod_and_as_deployment() {
    let root = corpus();
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for level in ["baseline", "restricted"] {
        let mut versions: Vec<_> = std::fs::read_dir(root.join(level))
            .expect("level dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort();
        for version in versions {
            let set = policy(level, &version);
            for (expect_allowed, verdict) in [(true, "pass"), (false, "fail")] {
                let dir = root.join(level).join(&version).join(verdict);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let text = std::fs::read_to_string(&path).expect("fixture readable");
                    let pod: Value = serde_saphyr::from_str(&text).expect("fixture parses");
                    for (form, manifest) in
                        [("Pod", pod.clone()), ("Deployment", as_deployment(&pod))]
                    {
                        checked += 1;
                        if allowed(&set, manifest) != expect_allowed {
                            mismatches
                                .push(format!("{} as {form}: expected {verdict}", path.display()));
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked > 8000,
        "only {checked} checks ran: is the corpus complete?"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {checked} verdicts differ from upstream:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
