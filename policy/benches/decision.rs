//! In-process decision cost: `cargo bench -p palisade-policy --bench decision`.
//!
//! Reports nanoseconds per decision (median of rounds) for the stages of the hot path, so a
//! regression shows where it comes from. It measures and prints; it asserts nothing.

use std::hint::black_box;
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use palisade_policy::{Facts, PolicySet, Subject, parse_policies, review, review_request};
use serde_json::json;

const POLICY: &str = "
apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: restricted}
spec:
  mode: Enforce
  podSecurity: {level: restricted, version: latest}
";

fn pod(privileged: bool) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-7d9f8", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d9f8"}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "serviceAccountName": "web",
            "containers": [{
                "name": "app", "image": "registry.example.com/shop/web:2.4.1",
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "MODE", "value": "prod"}],
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "privileged": privileged,
                                    "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
            }, {
                "name": "proxy", "image": "registry.example.com/mesh/proxy:1.30",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "web"}}]
        }
    })
}

fn review_json(pod: &serde_json::Value) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web-7d9f8", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod, "dryRun": false
        }
    })
    .to_string()
}

/// Median ns per call over `rounds` rounds of `iters` calls.
fn measure(name: &str, iters: u32, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let mut rounds: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    println!(
        "{name:<58} median {:>9.0} ns   min {:>9.0} ns",
        rounds[rounds.len() / 2],
        rounds[0]
    );
}

fn main() {
    let parsed = parse_policies(POLICY).expect("policy");
    let (set, errors) = PolicySet::compile_all(&parsed);
    assert!(errors.is_empty());
    let now = Timestamp::now();
    let facts = Facts {
        namespace_labels: None,
        now,
    };

    let pass_obj: DynamicObject = serde_json::from_value(pod(false)).expect("pod");
    let fail_obj: DynamicObject = serde_json::from_value(pod(true)).expect("pod");
    let pass = Subject::from_manifest(&pass_obj, "default")
        .expect("ok")
        .expect("pod");
    let fail = Subject::from_manifest(&fail_obj, "default")
        .expect("ok")
        .expect("pod");
    assert!(review(&set, &pass, &facts).allowed());
    assert!(!review(&set, &fail, &facts).allowed());

    let pass_json = review_json(&pod(false));
    let fail_json = review_json(&pod(true));
    let req: AdmissionRequest<DynamicObject> =
        serde_json::from_str::<AdmissionReview<DynamicObject>>(&pass_json)
            .expect("review")
            .try_into()
            .expect("request");

    println!(
        "restricted preset, 2-container pod ({} bytes of AdmissionReview)",
        pass_json.len()
    );
    measure(
        "review: passing pod (policy evaluation only)",
        200_000,
        || {
            black_box(review(&set, black_box(&pass), &facts));
        },
    );
    measure("review + denial text: privileged pod", 100_000, || {
        let d = review(&set, black_box(&fail), &facts);
        black_box(d.denial_message());
    });
    measure(
        "review_request: pod spec extraction + evaluation",
        50_000,
        || {
            black_box(review_request(&set, black_box(&req), &facts).expect("ok"));
        },
    );
    measure(
        "parse AdmissionReview JSON + review_request (passing)",
        20_000,
        || {
            let r: AdmissionReview<DynamicObject> =
                serde_json::from_str(black_box(&pass_json)).expect("json");
            let req: AdmissionRequest<DynamicObject> = r.try_into().expect("request");
            black_box(review_request(&set, &req, &facts).expect("ok"));
        },
    );
    measure(
        "parse AdmissionReview JSON + review_request + denial",
        20_000,
        || {
            let r: AdmissionReview<DynamicObject> =
                serde_json::from_str(black_box(&fail_json)).expect("json");
            let req: AdmissionRequest<DynamicObject> = r.try_into().expect("request");
            let d = review_request(&set, &req, &facts).expect("ok");
            black_box(d.denial_message());
        },
    );
}
