//! A namespace missing from the webhook's cache (created a moment before its Pod, or while
//! the watch re-establishes) is read from the API server within a time limit; when it cannot
//! be read in time, a policy that selects namespaces by label and would refuse the pod
//! refuses with a retry message. The store here has no watch at all, so every namespace is a
//! miss: the race is certain, not hoped for.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use palisade_policy::PolicySet;
use palisade_webhook::{AppState, Metrics, NamespaceReader, PolicyStore, admission};
use serde_json::{Value, json};
use tower::ServiceExt;

const PROD_ONLY: &str = "apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: prod-only
spec:
  privileged: Deny
  match:
    namespaceSelector:
      matchLabels: {env: prod}
";

fn state(client: kube::Client, timeout: Duration) -> AppState {
    let parsed = palisade_policy::parse_policies(PROD_ONLY).expect("policy parses");
    let (set, errors) = PolicySet::compile_all(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    let metrics = Arc::new(Metrics::new());
    let store = PolicyStore::fixed(set, metrics.clone())
        .with_namespace_reader(NamespaceReader::new(client, timeout));
    AppState::new(store, metrics)
}

fn pod_in(namespace: &str, privileged: bool) -> Value {
    let mut p = pod("web", privileged);
    p["metadata"]["namespace"] = json!(namespace);
    p
}

async fn judge(state: &AppState, object: &Value) -> Value {
    let resp = admission::router(state.clone())
        .oneshot(
            Request::post("/validate")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(review("u", "CREATE", object, None).to_string()))
                .expect("request"),
        )
        .await
        .expect("infallible");
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    let v: Value = serde_json::from_slice(&body).expect("JSON review");
    v["response"].clone()
}

async fn metrics_text(state: &AppState) -> String {
    let resp = palisade_webhook::admin::router(state.clone())
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

/// An "API server" that accepts connections and never answers.
fn silent_api_server() -> (std::net::TcpListener, kube::Client) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let config = kube::Config::new(url.parse().expect("url"));
    (listener, kube::Client::try_from(config).expect("client"))
}

#[tokio::test]
async fn a_namespace_that_cannot_be_read_in_time_refuses_only_what_the_policy_would() {
    palisade_webhook::tls::install_crypto_provider();
    let (_listener, client) = silent_api_server();
    let s = state(client, Duration::from_millis(300));

    let started = Instant::now();
    let r = judge(&s, &pod_in("billing", true)).await;
    let took = started.elapsed();
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(
        r["status"]["message"],
        "Pod web: cannot be judged now\n\
         - SecurityPolicy/prod-only: the labels of namespace \"billing\" could not be read from the API server in time, \
         and this policy selects namespaces by label; nothing was decided as if it had none: retry in a few seconds"
    );
    // Bounded by the read's limit, well inside any webhook timeout (reported, not asserted
    // as a wall-clock figure beyond that bound's order).
    eprintln!("refused after {} ms", took.as_millis());
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A pod the policy would admit anyway is admitted: its verdict does not depend on the labels.
    let r = judge(&s, &pod_in("billing", false)).await;
    assert_eq!(r["allowed"], true, "{r}");

    let text = metrics_text(&s).await;
    assert!(
        text.contains("palisade_webhook_namespace_reads_total{result=\"unreadable\"} 2"),
        "{text}"
    );
}

/// The cluster of `PALISADE_E2E_KUBECONFIG` (run by `hack/e2e.sh`).
async fn cluster_client() -> kube::Client {
    palisade_webhook::tls::install_crypto_provider();
    let path = std::env::var("PALISADE_E2E_KUBECONFIG")
        .expect("PALISADE_E2E_KUBECONFIG must name a kubeconfig for these tests");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("a readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("a usable kubeconfig");
    kube::Client::try_from(config).expect("a client")
}

#[tokio::test]
#[ignore = "needs the API server of PALISADE_E2E_KUBECONFIG; run by hack/e2e.sh"]
async fn a_namespace_missing_from_the_cache_is_read_from_the_api_server() {
    let client = cluster_client().await;
    let api = kube::Api::<Namespace>::all(client.clone());
    let suffix = format!("{:x}", std::process::id());
    let prod = format!("e2e-ns-read-prod-{suffix}");
    let plain = format!("e2e-ns-read-plain-{suffix}");
    for (name, labels) in [
        (&prod, json!({"env": "prod", "palisade.dev/e2e": "true"})),
        (&plain, json!({"palisade.dev/e2e": "true"})),
    ] {
        let ns: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}
        }))
        .expect("namespace");
        api.create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
    }
    let s = state(client, Duration::from_secs(5));

    // Found: judged by its labels, the moment it exists.
    let r = judge(&s, &pod_in(&prod, true)).await;
    assert_eq!(r["allowed"], false, "{r}");
    let message = r["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Pod web: 1 violation\n- SecurityPolicy/prod-only: container \"app\": securityContext.privileged=true is not allowed"),
        "{message}"
    );
    // Found without the label: the policy does not select it.
    let r = judge(&s, &pod_in(&plain, true)).await;
    assert_eq!(r["allowed"], true, "{r}");
    // A namespace that does not exist cannot be vouched for.
    let r = judge(&s, &pod_in(&format!("e2e-ns-read-absent-{suffix}"), true)).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not be read from the API server in time")),
        "{r}"
    );
    let text = metrics_text(&s).await;
    assert!(
        text.contains("palisade_webhook_namespace_reads_total{result=\"found\"} 2"),
        "{text}"
    );

    for name in [&prod, &plain] {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
}
