//! Every policy in `config/samples/` passes the check that `kubectl apply` meets
//! (`policies.palisade.dev`), today: samples are what users copy.

use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

#[test]
fn every_sample_policy_is_valid_now() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
    let mut checked = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("config/samples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("readable");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for doc in docs.iter().filter(|d| !d.is_null()) {
            let problems = palisade_policy::policy_problems(doc, Timestamp::now())
                .unwrap_or_else(|| panic!("{}: not a Palisade policy", path.display()));
            assert!(problems.is_empty(), "{}: {problems:?}", path.display());
            checked.push(format!(
                "{} {}",
                doc["kind"].as_str().unwrap_or_default(),
                doc["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    assert!(
        checked.iter().any(|c| c.starts_with("ScanPolicy ")),
        "{checked:?}"
    );
    assert!(
        checked.iter().any(|c| c.starts_with("SecurityPolicy ")),
        "{checked:?}"
    );
    assert!(
        checked.iter().any(|c| c == "SecurityPolicy runtime-audit"),
        "{checked:?}"
    );
}

/// `runtime-audit.yaml` applies every default runtime rule and kills nothing.
#[test]
fn the_runtime_sample_audits_every_default_rule() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/samples/runtime-audit.yaml");
    let text = std::fs::read_to_string(&path).expect("config/samples/runtime-audit.yaml");
    let policies = palisade_policy::parse_policies(&text).expect("a SecurityPolicy");
    let (set, errors) = palisade_policy::RuntimePolicySet::compile(&policies, Timestamp::now());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(set.rules(), palisade_policy::RuntimeRule::ALL.to_vec());
    assert_eq!(
        policies[0].spec.runtime.as_ref().map(|r| r.mode),
        Some(palisade_policy::RuntimeMode::Audit)
    );
    assert!(
        policies[0]
            .spec
            .runtime
            .as_ref()
            .is_some_and(|r| r.enforce.is_empty())
    );
}
