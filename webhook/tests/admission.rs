//! The admission router, driven in memory with `oneshot`.

mod common;

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use common::*;
use palisade_policy::PolicySet;
use palisade_webhook::{AppState, Metrics, PolicyStore, admin, admission};
use serde_json::{Value, json};
use tower::ServiceExt;

fn state(policies: &[&str]) -> AppState {
    let mut parsed = Vec::new();
    for text in policies {
        parsed.extend(palisade_policy::parse_policies(text).expect("policy parses"));
    }
    let (set, errors) = PolicySet::compile_all(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    let metrics = Arc::new(Metrics::new());
    AppState::new(PolicyStore::fixed(set, metrics.clone()), metrics)
}

async fn post(state: &AppState, path: &str, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
    let resp = admission::router(state.clone())
        .oneshot(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, body.to_vec())
}

/// Post a review; expect HTTP 200 and an AdmissionReview v1 with a response.
async fn judge(state: &AppState, path: &str, review: &Value) -> Value {
    let (status, body) = post(state, path, review.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("JSON review");
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    v["response"].clone()
}

#[tokio::test]
async fn admits_a_compliant_pod() {
    let s = state(&[NO_PRIVILEGED]);
    let r = judge(
        &s,
        "/validate",
        &review("uid-1", "CREATE", &pod("web", false), None),
    )
    .await;
    assert_eq!(r["uid"], "uid-1");
    assert_eq!(r["allowed"], true);
    assert!(r.get("warnings").is_none(), "{r}");
}

#[tokio::test]
async fn denies_a_privileged_pod_with_an_actionable_message() {
    let s = state(&[NO_PRIVILEGED]);
    let uid = "705ab4f5-6393-11e8-b7cc-42010a800002";
    let r = judge(
        &s,
        "/validate/pods",
        &review(uid, "CREATE", &pod("x", true), None),
    )
    .await;
    assert_eq!(r["uid"], uid);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    assert_eq!(r["status"]["reason"], "Forbidden");
    assert_eq!(r["status"]["status"], "Failure");
    let message = r["status"]["message"].as_str().expect("message");
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "Pod x: 1 violation", "{message}");
    // What is wrong, how to fix it, how to waive it, the rule id, the field, the rule's page.
    assert_eq!(
        lines[1],
        "- SecurityPolicy/no-privileged: container \"app\": securityContext.privileged=true is not allowed; remove it or set false; \
         to waive it, ask the owner of SecurityPolicy/no-privileged for an exception (spec.exceptions: name, rules, owner, reason, expires) \
         (rule privileged at spec.containers[0].securityContext.privileged; \
         https://github.com/palisade-dev/palisade/blob/main/docs/rules/privileged.md)"
    );
    assert_eq!(lines.len(), 2, "{message}");
}

#[tokio::test]
async fn warn_mode_admits_with_warnings_and_denials_carry_them_too() {
    let s = state(&[NO_PRIVILEGED, WARN_NON_ROOT]);
    let mut obj = pod("w", false);
    obj["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);

    let r = judge(&s, "/validate", &review("u-warn", "CREATE", &obj, None)).await;
    assert_eq!(r["allowed"], true);
    let warnings = r["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{r}");
    let w = warnings[0].as_str().expect("string");
    assert!(
        w.starts_with("SecurityPolicy/non-root-advice: container \"app\": "),
        "{w}"
    );

    obj["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    let r = judge(&s, "/validate", &review("u-both", "CREATE", &obj, None)).await;
    assert_eq!(r["allowed"], false);
    assert_eq!(r["warnings"].as_array().map(Vec::len), Some(1), "{r}");
}

#[tokio::test]
async fn judges_a_deployment_by_its_pod_template() {
    let s = state(&[NO_PRIVILEGED]);
    let r = judge(
        &s,
        "/validate/workloads",
        &review("u-dep", "CREATE", &deployment("web", true), None),
    )
    .await;
    assert_eq!(r["allowed"], false);
    let message = r["status"]["message"].as_str().expect("message");
    assert!(
        message.starts_with(
            "Deployment web: 1 violation\n- SecurityPolicy/no-privileged: container \"app\": "
        ),
        "{message}"
    );

    let r = judge(
        &s,
        "/validate/workloads",
        &review("u-dep2", "CREATE", &deployment("web", false), None),
    )
    .await;
    assert_eq!(r["allowed"], true);
}

#[tokio::test]
async fn an_update_that_leaves_the_pod_spec_alone_is_admitted() {
    // The object was admitted before the policy existed; relabelling it must still work.
    let s = state(&[NO_PRIVILEGED]);
    let old = deployment("legacy", true);
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"team": "a"});
    let r = judge(
        &s,
        "/validate",
        &review("u-upd", "UPDATE", &new, Some(&old)),
    )
    .await;
    assert_eq!(r["allowed"], true, "{r}");

    // Changing the pod spec is judged.
    let mut changed = old.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example.com/team/app:1.5.0");
    let r = judge(
        &s,
        "/validate",
        &review("u-upd2", "UPDATE", &changed, Some(&old)),
    )
    .await;
    assert_eq!(r["allowed"], false, "{r}");
}

#[tokio::test]
async fn objects_without_a_pod_are_admitted() {
    let s = state(&[NO_PRIVILEGED]);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team-a"}, "data": {"a": "b"}});
    let r = judge(&s, "/validate", &review("u-cm", "CREATE", &cm, None)).await;
    assert_eq!(r["allowed"], true);
}

#[tokio::test]
async fn an_unreadable_pod_spec_is_denied_with_the_engines_reason() {
    let s = state(&[NO_PRIVILEGED]);
    let mut obj = pod("bad", false);
    obj["spec"]["containers"] = json!("not a list");
    let r = judge(&s, "/validate", &review("u-bad", "CREATE", &obj, None)).await;
    assert_eq!(r["uid"], "u-bad");
    assert_eq!(r["allowed"], false);
    let message = r["status"]["message"].as_str().expect("message");
    assert!(message.starts_with("Pod bad: "), "{message}");
    assert!(message.contains("not a valid pod spec"), "{message}");
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_reason() {
    let s = state(&[NO_PRIVILEGED]);
    let cases: [(&str, &str); 5] = [
        ("{\"apiVersion\": ", "not an AdmissionReview"),
        ("[1, 2, 3]", "not an AdmissionReview"),
        (
            r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#,
            "has no request",
        ),
        (
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}"#,
            "expected kind AdmissionReview",
        ),
        (
            r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}"#,
            "not an AdmissionReview",
        ),
    ];
    for (body, want) in cases {
        let (status, text) = post(&s, "/validate", body.to_owned()).await;
        let text = String::from_utf8_lossy(&text);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let s = state(&[]);
    let (status, _) = post(&s, "/mutate", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = admission::router(s)
        .oneshot(
            Request::get("/validate")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn metrics_count_decisions() {
    let s = state(&[NO_PRIVILEGED]);
    judge(
        &s,
        "/validate",
        &review("m1", "CREATE", &pod("a", true), None),
    )
    .await;
    judge(
        &s,
        "/validate",
        &review("m2", "CREATE", &pod("b", false), None),
    )
    .await;
    post(&s, "/validate", "nope").await;

    let resp = admin::router(s.clone())
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf-8");
    for line in [
        "palisade_admission_requests_total{kind=\"Pod\",operation=\"CREATE\",decision=\"denied\"} 1",
        "palisade_admission_requests_total{kind=\"Pod\",operation=\"CREATE\",decision=\"allowed\"} 1",
        "palisade_admission_requests_total{kind=\"\",operation=\"\",decision=\"error\"} 1",
        "palisade_admission_duration_seconds_count 3",
        "palisade_policies_loaded 1",
        "palisade_policy_errors 0",
        "palisade_admission_policy_violations_total{policy=\"SecurityPolicy/no-privileged\",mode=\"Enforce\"} 1",
        "palisade_webhook_ready 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

async fn metrics_text(s: &AppState) -> String {
    let resp = admin::router(s.clone())
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    String::from_utf8(
        to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf-8")
}

#[tokio::test]
async fn a_policy_counts_once_per_request_however_many_violations_it_finds() {
    let s = state(&[NO_PRIVILEGED, WARN_NON_ROOT]);
    let mut two_containers = pod("two", true);
    let mut container = two_containers["spec"]["containers"][0].clone();
    container["securityContext"]["runAsNonRoot"] = json!(false);
    let mut second = container.clone();
    second["name"] = json!("sidecar");
    two_containers["spec"]["containers"] = json!([container, second]);
    let r = judge(
        &s,
        "/validate",
        &review("two", "CREATE", &two_containers, None),
    )
    .await;
    assert_eq!(r["allowed"], false);
    let denial = r["status"]["message"].as_str().expect("a message");
    assert_eq!(
        denial.matches("- SecurityPolicy/no-privileged:").count(),
        2,
        "{denial}"
    );
    assert_eq!(
        r["warnings"].as_array().map(Vec::len),
        Some(2),
        "one warning per container: {r}"
    );
    judge(
        &s,
        "/validate",
        &review("one", "CREATE", &pod("one", false), None),
    )
    .await;
    let text = metrics_text(&s).await;
    for line in [
        "palisade_admission_policy_violations_total{policy=\"SecurityPolicy/no-privileged\",mode=\"Enforce\"} 1",
        "palisade_admission_policy_violations_total{policy=\"SecurityPolicy/non-root-advice\",mode=\"Warn\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn probes() {
    let s = state(&[]);
    for (path, want) in [("/livez", StatusCode::OK), ("/readyz", StatusCode::OK)] {
        let resp = admin::router(s.clone())
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(resp.status(), want, "{path}");
    }
    s.start_draining();
    let resp = admin::router(s)
        .oneshot(
            Request::get("/readyz")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn before_the_first_sync_calls_fail_so_the_failure_policy_decides() {
    let metrics = Arc::new(Metrics::new());
    let store = PolicyStore::pending(metrics.clone());
    let s = AppState::new(store.clone(), metrics);
    let body = review("early", "CREATE", &pod("x", true), None).to_string();
    let (status, text) = post(&s, "/validate", body.clone()).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        String::from_utf8_lossy(&text)
    );
    let resp = admin::router(s.clone())
        .oneshot(
            Request::get("/readyz")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = metrics_text(&s).await;
    assert!(text.contains("\npalisade_webhook_ready 0\n"), "{text}");

    let policies = palisade_policy::parse_policies(NO_PRIVILEGED).expect("parses");
    let (set, _) = PolicySet::compile_all(&policies);
    store.publish(palisade_webhook::policies::Compiled {
        set,
        errors: Vec::new(),
    });
    store.set_ready();
    let r = judge(
        &s,
        "/validate",
        &review("later", "CREATE", &pod("x", true), None),
    )
    .await;
    assert_eq!(r["allowed"], false);
}

const AUDIT_READ_ONLY: &str = "apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: read-only-root
spec:
  mode: Audit
  readOnlyRootFilesystem: true
";

#[tokio::test]
async fn warn_and_audit_violations_leave_audit_annotations_metrics_and_warnings() {
    let s = state(&[WARN_NON_ROOT, AUDIT_READ_ONLY]);
    let mut p = pod("web", false);
    p["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);
    let r = judge(&s, "/validate", &review("uid-a", "CREATE", &p, None)).await;
    assert_eq!(r["allowed"], true);
    // The API server writes these to its audit log as `<webhook>/warn-violations` and
    // `<webhook>/audit-violations`.
    let annotations = &r["auditAnnotations"];
    let warn: Value =
        serde_json::from_str(annotations["warn-violations"].as_str().expect("warn")).expect("JSON");
    assert_eq!(
        warn,
        json!([{
            "policy": "SecurityPolicy/non-root-advice",
            "rule": "runAsNonRoot",
            "field": "spec.containers[0].securityContext.runAsNonRoot",
            "message": warn[0]["message"],
        }])
    );
    let audit: Value =
        serde_json::from_str(annotations["audit-violations"].as_str().expect("audit"))
            .expect("JSON");
    assert_eq!(audit[0]["policy"], "SecurityPolicy/read-only-root");
    assert_eq!(audit[0]["rule"], "readOnlyRootFilesystem");
    // Warn violations are also kubectl warnings; Audit ones are not.
    let warnings = r["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("(rule runAsNonRoot at ")),
        "{warnings:?}"
    );
    let text = metrics_text(&s).await;
    for line in [
        "palisade_admission_violations_total{policy=\"SecurityPolicy/non-root-advice\",rule=\"runAsNonRoot\",mode=\"Warn\"} 1",
        "palisade_admission_violations_total{policy=\"SecurityPolicy/read-only-root\",rule=\"readOnlyRootFilesystem\",mode=\"Audit\"} 1",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    // A compliant pod leaves no annotation.
    let mut ok = pod("ok", false);
    ok["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(true);
    let r = judge(&s, "/validate", &review("uid-b", "CREATE", &ok, None)).await;
    assert!(
        r.get("auditAnnotations")
            .is_none_or(|a| a.as_object().is_none_or(|m| m.is_empty())),
        "{r}"
    );
}

#[tokio::test]
async fn denials_link_the_rule_pages_the_installation_names() {
    let s = state(&[NO_PRIVILEGED]).with_rule_docs(palisade_webhook::RuleDocs::new(
        "https://wiki.internal/palisade/rules",
    ));
    let r = judge(
        &s,
        "/validate",
        &review("u", "CREATE", &pod("x", true), None),
    )
    .await;
    let message = r["status"]["message"].as_str().expect("message");
    assert!(
        message.ends_with("(rule privileged at spec.containers[0].securityContext.privileged; https://wiki.internal/palisade/rules/privileged.md)"),
        "{message}"
    );
}

fn policy_review(uid: &str, operation: &str, object: &Value) -> Value {
    let mut r = review(uid, operation, object, None);
    r["request"]["resource"]["resource"] = json!(match object["kind"].as_str() {
        Some("ScanPolicy") => "scanpolicies",
        _ => "securitypolicies",
    });
    r
}

#[tokio::test]
async fn invalid_policies_are_refused_with_every_field_at_fault() {
    // Policies are checked before any sync: a webhook that is starting still says what is wrong.
    let metrics = Arc::new(Metrics::new());
    let s = AppState::new(PolicyStore::pending(metrics.clone()), metrics);
    let bad = json!({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "SecurityPolicy",
        "metadata": {"name": "prod"},
        "spec": {"exceptions": [{"name": "debug", "rules": ["privileged"]}],
                 "podSecurity": {"level": "baseline", "version": "v1.x"}}
    });
    let r = judge(
        &s,
        "/validate/policies",
        &policy_review("p1", "CREATE", &bad),
    )
    .await;
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    assert_eq!(r["status"]["reason"], "Forbidden");
    let message = r["status"]["message"].as_str().expect("message");
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(
        lines[0], "SecurityPolicy \"prod\" is invalid (4 problems):",
        "{message}"
    );
    for (line, field) in lines[1..].iter().zip([
        "spec.podSecurity.version",
        "spec.exceptions[0].owner",
        "spec.exceptions[0].reason",
        "spec.exceptions[0].expires",
    ]) {
        assert!(line.starts_with(&format!("- {field}: ")), "{line}");
    }

    let scan = json!({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "ScanPolicy",
        "metadata": {"name": "images"},
        "spec": {"ignore": [{"id": "CVE-2023-5363", "owner": "team-a", "reason": "not reachable",
                             "expires": "2099-01-01T00:00:00Z"}]}
    });
    let r = judge(
        &s,
        "/validate/policies",
        &policy_review("p2", "UPDATE", &scan),
    )
    .await;
    assert_eq!(r["allowed"], false);
    let message = r["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("- spec.ignore[0].expires: 2099-01-01T00:00:00Z is more than 180 days ahead (maxExceptionDays)"),
        "{message}"
    );

    let good = json!({
        "apiVersion": "palisade.dev/v1alpha1", "kind": "ScanPolicy",
        "metadata": {"name": "images"}, "spec": {"failOn": {"severity": "Critical"}}
    });
    let r = judge(
        &s,
        "/validate/policies",
        &policy_review("p3", "CREATE", &good),
    )
    .await;
    assert_eq!(r["allowed"], true, "{r}");
}
