//! `PodRequest::from_json` (one pass into the typed pod) against kube's `AdmissionReview`
//! read by `PodRequest::from_admission`: whatever the fast path takes, it must read exactly
//! as the general path does, and what it refuses the general path still answers.

use std::path::PathBuf;

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use palisade_policy::{PodRequest, ReviewTarget};
use serde_json::{Value, json};

fn general(body: &str) -> Option<PodRequest> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_str(body).ok()?;
    let req: AdmissionRequest<DynamicObject> = review.try_into().ok()?;
    Some(PodRequest::from_admission(req))
}

/// Both readings of `body`; panics if the fast one takes what the general one would not, or
/// reads it differently. Returns whether the fast path took it.
fn agree(body: &str) -> bool {
    let Some(fast) = PodRequest::from_json(body.as_bytes()) else {
        return false;
    };
    let slow = general(body).unwrap_or_else(|| panic!("only the fast path reads {body}"));
    assert_eq!(fast.uid, slow.uid, "{body}");
    assert_eq!(fast.kind, slow.kind, "{body}");
    assert_eq!(fast.name, slow.name, "{body}");
    assert_eq!(fast.namespace, slow.namespace, "{body}");
    assert_eq!(fast.operation, slow.operation, "{body}");
    assert_eq!(fast.dry_run, slow.dry_run, "{body}");
    let slow_target = slow
        .target
        .as_ref()
        .unwrap_or_else(|e| panic!("only the fast path reads the pod of {body}: {e}"));
    assert_eq!(fast.target.as_ref().ok(), Some(slow_target), "{body}");
    true
}

fn review(operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or("Pod");
    json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "name": object["metadata"]["name"].as_str().unwrap_or(""),
            "namespace": "team-a",
            "operation": operation,
            "userInfo": {"username": "admin", "groups": ["system:authenticated"], "extra": {"scopes": ["a"]}},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl"}
        }
    })
}

fn pod_spec(privileged: bool) -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app", "image": "registry.example.com/team/app:1.4.2",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "privileged": privileged,
                                "capabilities": {"drop": ["ALL"]}}
        }],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    })
}

fn metadata(name: &str) -> Value {
    json!({
        "name": name, "namespace": "team-a", "uid": "9b0d6a4e-1c3f-4e8a-b2d7-5f6a7c8e9d01",
        "creationTimestamp": "2026-05-04T09:12:44Z", "generation": 1,
        "labels": {"app": name},
        "annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8",
                             "uid": "1b0d6a4e-1c3f-4e8a-b2d7-5f6a7c8e9d02", "controller": true}],
        "managedFields": [{
            "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
            "time": "2026-05-04T09:12:44Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
        }]
    })
}

fn pod(name: &str, privileged: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata(name), "spec": pod_spec(privileged),
           "status": {"phase": "Pending"}})
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(false)})
}

fn carriers() -> Vec<Value> {
    let workload = |api: &str, kind: &str| {
        json!({"apiVersion": api, "kind": kind, "metadata": metadata("web"),
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template()}})
    };
    vec![
        pod("web", false),
        pod("web", true),
        workload("apps/v1", "Deployment"),
        workload("apps/v1", "ReplicaSet"),
        workload("apps/v1", "StatefulSet"),
        workload("apps/v1", "DaemonSet"),
        workload("batch/v1", "Job"),
        workload("v1", "ReplicationController"),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata("nightly"),
               "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template()}}}}),
        json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": metadata("t"), "template": template()}),
        // No template at all, or a null one: an empty pod, as the general path reads it.
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bare"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "null"}, "spec": {"template": null}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": null}}),
        // Named by generateName, namespace only in the request.
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}, "spec": pod_spec(false)}),
        json!({"kind": "Pod", "spec": pod_spec(false)}),
    ]
}

#[test]
fn the_fast_path_reads_every_carrier_as_the_general_path_does() {
    for object in carriers() {
        let body = review("CREATE", &object, None).to_string();
        assert!(agree(&body), "not taken: {body}");
    }
}

#[test]
fn updates_are_read_the_same_changed_or_not() {
    for object in carriers() {
        let mut relabelled = object.clone();
        relabelled["metadata"]["labels"] = json!({"team": "b"});
        let body = review("UPDATE", &relabelled, Some(&object)).to_string();
        assert!(agree(&body), "not taken: {body}");
        let fast = PodRequest::from_json(body.as_bytes()).expect("taken");
        assert!(
            matches!(fast.target, Ok(ReviewTarget::Unchanged(_))),
            "{body}"
        );
    }
    let body = review("UPDATE", &pod("web", true), Some(&pod("web", false))).to_string();
    assert!(agree(&body));
    let fast = PodRequest::from_json(body.as_bytes()).expect("taken");
    assert!(matches!(fast.target, Ok(ReviewTarget::Pod(_))));
}

#[test]
fn what_the_fast_path_leaves_the_general_path_answers() {
    let ok = review("CREATE", &pod("web", false), None);
    let mut cases: Vec<String> = vec![
        "{\"apiVersion\": ".into(),
        "[1, 2, 3]".into(),
        r#"["admission.k8s.io/v1", "AdmissionReview"]"#.into(),
        r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#.into(),
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}"#.into(),
        r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}"#.into(),
    ];
    let mut edit = |f: &dyn Fn(&mut Value)| {
        let mut v = ok.clone();
        f(&mut v);
        cases.push(v.to_string());
    };
    // Unreadable pod specs: the general path turns these into a denial that says why.
    edit(&|v| v["request"]["object"]["spec"]["containers"] = json!("not a list"));
    edit(&|v| v["request"]["object"]["spec"] = Value::Null);
    edit(&|v| {
        v["request"]["object"]
            .as_object_mut()
            .expect("object")
            .remove("spec");
    });
    // What kube's types refuse.
    edit(&|v| v["request"]["object"]["metadata"]["managedFields"] = json!("garbage"));
    edit(&|v| v["request"]["object"]["metadata"]["managedFields"][0]["time"] = json!("yesterday"));
    edit(&|v| v["request"]["object"]["metadata"]["labels"] = json!(["a"]));
    edit(&|v| v["request"]["object"]["metadata"] = json!([]));
    edit(&|v| v["request"]["object"] = json!("a string"));
    edit(&|v| v["request"]["userInfo"] = json!({"groups": "a"}));
    edit(&|v| {
        v["request"]
            .as_object_mut()
            .expect("request")
            .remove("userInfo");
    });
    edit(&|v| v["response"] = json!({"uid": "x", "allowed": true}));
    // Nothing to judge, or an old object nothing reads: the general path checks them.
    edit(&|v| v["request"]["operation"] = json!("DELETE"));
    edit(&|v| v["request"]["kind"]["kind"] = json!("ConfigMap"));
    edit(&|v| v["request"]["subResource"] = json!("status"));
    edit(&|v| v["request"]["oldObject"] = v["request"]["object"].clone());
    for body in &cases {
        assert!(!agree(body), "taken: {body}");
    }
}

#[test]
fn a_template_in_an_unexpected_shape_is_left_to_the_general_path() {
    // The general path reads a non-object spec as "no template": an empty pod.
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                        "spec": [{"template": template()}]});
    let body = review("CREATE", &object, None).to_string();
    assert!(!agree(&body), "taken: {body}");
    let slow = general(&body).expect("kube reads it");
    let Ok(ReviewTarget::Pod(subject)) = slow.target else {
        panic!("judged");
    };
    assert!(subject.pod_spec.containers.is_empty());
}

#[test]
fn every_psa_fixture_reads_the_same_as_pod_and_as_deployment() {
    let root = std::env::var_os("PALISADE_PSA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/psa")
        });
    let mut taken = 0;
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("fixture readable");
            let pod: Value = serde_saphyr::from_str(&text).expect("fixture parses");
            let deployment = json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": pod["metadata"]["name"], "namespace": "default"},
                "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}}
            });
            for object in [&pod, &deployment] {
                let body = review("CREATE", object, None).to_string();
                assert!(agree(&body), "not taken: {}", path.display());
                taken += 1;
            }
        }
    }
    assert!(
        taken > 8000,
        "only {taken} fixtures: is the corpus complete?"
    );
}

/// `review` with the request's fields in the order given, the others after them.
fn reordered(review: &Value, first: &[&str]) -> String {
    let request = review["request"].as_object().expect("a request");
    let mut fields: Vec<String> = first
        .iter()
        .filter_map(|k| request.get(*k).map(|v| format!("{k:?}:{v}")))
        .collect();
    fields.extend(
        request
            .iter()
            .filter(|(k, _)| !first.contains(&k.as_str()))
            .map(|(k, v)| format!("{k:?}:{v}")),
    );
    format!(
        r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{{}}}}}"#,
        fields.join(",")
    )
}

#[test]
fn the_order_of_a_requests_fields_does_not_matter() {
    let orders: [&[&str]; 3] = [
        // As the API server writes it: the object is read as it comes.
        &[
            "uid",
            "kind",
            "resource",
            "name",
            "namespace",
            "operation",
            "userInfo",
            "object",
            "oldObject",
        ],
        // The object before the kind: kept raw, read once the kind is known.
        &["object", "oldObject", "uid", "kind", "operation"],
        // The kind first, the operation and sub-resource last.
        &["kind", "object", "oldObject", "subResource", "operation"],
    ];
    for object in carriers() {
        for order in orders {
            let create = review("CREATE", &object, None);
            assert!(agree(&reordered(&create, order)), "{order:?}");
            let update = review("UPDATE", &object, Some(&object));
            assert!(agree(&reordered(&update, order)), "{order:?}");
        }
        // A sub-resource named after the object was read: left to the general path.
        let mut status = review("UPDATE", &object, Some(&object));
        status["request"]["subResource"] = json!("status");
        let body = reordered(&status, &["kind", "object", "oldObject", "subResource"]);
        assert!(!agree(&body), "taken: {body}");
        // A duplicate field, even an equal one, is refused as serde refuses it.
        let create = review("CREATE", &object, None);
        let body = reordered(&create, &["kind", "object"]).replacen(
            "\"request\":{",
            &format!("\"request\":{{\"uid\":\"x\",\"object\":{object},"),
            1,
        );
        assert!(general(&body).is_none() || !agree(&body), "taken: {body}");
    }
}
