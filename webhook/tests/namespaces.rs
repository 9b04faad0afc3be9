//! `/validate/namespaces` (`namespaces.palisade.dev`): the exempt label outside the excluded
//! namespaces is refused, in memory with `oneshot` and over real HTTPS.

mod common;

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use common::*;
use palisade_policy::PolicySet;
use palisade_webhook::{AppState, ExemptLabelGuard, Metrics, PolicyStore, admission};
use serde_json::{Value, json};
use tower::ServiceExt;

const OPERATOR: &str = "system:serviceaccount:security:palisade-operator";

fn guard() -> ExemptLabelGuard {
    ExemptLabelGuard::new("security", ["monitoring"])
        .trust_service_account("security", "palisade-operator")
}

fn state_with(store: PolicyStore, metrics: Arc<Metrics>) -> AppState {
    AppState::new(store, metrics).with_exempt_label_guard(guard())
}

fn state() -> AppState {
    let metrics = Arc::new(Metrics::new());
    state_with(
        PolicyStore::fixed(PolicySet::default(), metrics.clone()),
        metrics,
    )
}

fn namespace(name: &str, exempt: Option<&str>) -> Value {
    let mut labels = json!({"team": "a"});
    if let Some(v) = exempt {
        labels["palisade.dev/exempt"] = json!(v);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels},
        "spec": {"finalizers": ["kubernetes"]}
    })
}

/// A Namespace review as the API server sends it (cluster-scoped: no namespace of its own).
fn ns_review(uid: &str, user: &str, new: &Value, old: Option<&Value>) -> Value {
    let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
    let mut r = review(uid, operation, new, old);
    r["request"]["namespace"] = json!("");
    r["request"]["userInfo"]["username"] = json!(user);
    r
}

async fn judge(state: &AppState, review: &Value) -> Value {
    let resp = admission::router(state.clone())
        .oneshot(
            Request::post("/validate/namespaces")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(review.to_string()))
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("JSON review");
    assert_eq!(v["kind"], "AdmissionReview");
    v["response"].clone()
}

#[tokio::test]
async fn the_label_is_refused_outside_the_excluded_namespaces() {
    let s = state();
    let plain = namespace("team-a", None);
    let labelled = namespace("team-a", Some("true"));
    // (uid, user, new, old, allowed)
    let cases = [
        ("add", "alice", &labelled, None, false),
        ("add-on-update", "alice", &labelled, Some(&plain), false),
        ("keep", "alice", &labelled, Some(&labelled), false),
        ("remove", "alice", &plain, Some(&labelled), true),
        ("operator-adds", OPERATOR, &labelled, Some(&plain), true),
    ];
    for (uid, user, new, old, allowed) in cases {
        let r = judge(&s, &ns_review(uid, user, new, old)).await;
        assert_eq!(r["uid"], uid);
        assert_eq!(r["allowed"], allowed, "{uid}: {r}");
        if !allowed {
            assert_eq!(r["status"]["code"], 403, "{uid}");
            assert_eq!(r["status"]["reason"], "Forbidden", "{uid}");
        }
    }
    let r = judge(&s, &ns_review("msg", "alice", &labelled, Some(&plain))).await;
    let message = r["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "namespace \"team-a\" may not be given the label palisade.dev/exempt=true. The label leaves a namespace out of every SecurityPolicy, so only the namespaces Palisade is configured to exclude may carry it (kube-system, monitoring, security). To exempt a namespace, add it to the operator's --exclude-namespace"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn the_excluded_namespaces_may_carry_it() {
    let s = state();
    for name in ["kube-system", "security", "monitoring"] {
        let r = judge(
            &s,
            &ns_review(name, "alice", &namespace(name, Some("true")), None),
        )
        .await;
        assert_eq!(r["allowed"], true, "{name}: {r}");
        let r = judge(
            &s,
            &ns_review(
                name,
                "alice",
                &namespace(name, Some("true")),
                Some(&namespace(name, Some("true"))),
            ),
        )
        .await;
        assert_eq!(r["allowed"], true, "{name}: {r}");
    }
}

#[tokio::test]
async fn other_kinds_and_operations_pass_and_malformed_bodies_get_400() {
    let s = state();
    // Only Namespace CREATE/UPDATE is judged here; a pod sent by mistake is not refused.
    let r = judge(&s, &review("pod", "CREATE", &pod("x", true), None)).await;
    assert_eq!(r["allowed"], true, "{r}");
    let mut delete = ns_review("del", "alice", &namespace("team-a", Some("true")), None);
    delete["request"]["operation"] = json!("DELETE");
    delete["request"]["oldObject"] = delete["request"]["object"].take();
    let r = judge(&s, &delete).await;
    assert_eq!(r["allowed"], true, "{r}");

    let resp = admission::router(s)
        .oneshot(
            Request::post("/validate/namespaces")
                .body(Body::from("{"))
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn answers_before_the_policies_are_synced() {
    // The check needs no policies: it must not wait for the first sync (and fail closed).
    let metrics = Arc::new(Metrics::new());
    let s = state_with(PolicyStore::pending(metrics.clone()), metrics);
    let r = judge(
        &s,
        &ns_review("early", "alice", &namespace("team-a", Some("true")), None),
    )
    .await;
    assert_eq!(r["allowed"], false, "{r}");
}

#[tokio::test]
async fn refuses_the_label_over_https() {
    let ca = Ca::new("palisade test CA");
    let (cert, key, _) = ca.serving_pair("palisade-webhook.palisade-system.svc");
    // The default guard: kube-system and palisade-system.
    let t = start_server(&[NO_PRIVILEGED], &cert, &key).await;
    let mut conn = Conn::open(t.server.addr, client_config(&[&ca]))
        .await
        .expect("TLS connection");
    let r = conn
        .review(
            "/validate/namespaces",
            &ns_review("h-1", "alice", &namespace("team-a", Some("true")), None),
        )
        .await
        .expect("review");
    assert_eq!(
        (r["uid"].clone(), r["allowed"].clone()),
        (json!("h-1"), json!(false))
    );
    let message = r["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("(kube-system, palisade-system)"),
        "{message}"
    );
    let r = conn
        .review(
            "/validate/namespaces",
            &ns_review(
                "h-2",
                "alice",
                &namespace("palisade-system", Some("true")),
                None,
            ),
        )
        .await
        .expect("review");
    assert_eq!(r["allowed"], true, "{r}");
    t.server.shutdown().await.expect("shutdown");
}
