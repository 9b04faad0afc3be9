//! The real server on loopback: TLS, AdmissionReview JSON, the admin port, shutdown.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn judges_reviews_over_https() {
    let ca = Ca::new("palisade test CA");
    let (cert, key, _) = ca.serving_pair("palisade-webhook.palisade-system.svc");
    let t = start_server(&[NO_PRIVILEGED, WARN_NON_ROOT], &cert, &key).await;
    assert_ne!(t.server.addr.port(), 0, "the bound port is reported");

    let mut conn = Conn::open(t.server.addr, client_config(&[&ca]))
        .await
        .expect("TLS connection trusting the CA");

    // Several reviews over one keep-alive connection.
    let r = conn
        .review(
            "/validate/pods",
            &review("a-1", "CREATE", &pod("ok", false), None),
        )
        .await
        .expect("review");
    assert_eq!(
        (r["uid"].clone(), r["allowed"].clone()),
        (json!("a-1"), json!(true))
    );

    let r = conn
        .review(
            "/validate/pods",
            &review("a-2", "CREATE", &pod("x", true), None),
        )
        .await
        .expect("review");
    assert_eq!(r["uid"], "a-2");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    let message = r["status"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Pod x: 1 violation\n- SecurityPolicy/no-privileged: container \"app\": securityContext.privileged=true is not allowed; remove it or set false"), "{message}");

    let mut root = pod("root", false);
    root["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);
    let r = conn
        .review("/validate", &review("a-3", "CREATE", &root, None))
        .await
        .expect("review");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["warnings"].as_array().map(Vec::len), Some(1), "{r}");

    let r = conn
        .review(
            "/validate/workloads",
            &review("a-4", "CREATE", &deployment("web", true), None),
        )
        .await
        .expect("review");
    assert_eq!(r["allowed"], false);

    let (status, body) = conn
        .post("/validate", axum::body::Bytes::from_static(b"{oops"))
        .await
        .expect("response");
    assert_eq!(status.as_u16(), 400, "{}", String::from_utf8_lossy(&body));

    // The admin port.
    let (status, body) = http_get(t.server.admin_addr, "/readyz")
        .await
        .expect("readyz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = http_get(t.server.admin_addr, "/metrics")
        .await
        .expect("metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("palisade_admission_requests_total{kind=\"Pod\",operation=\"CREATE\",decision=\"warned\"} 1"),
        "{body}"
    );

    let addr = t.server.addr;
    t.server.shutdown().await.expect("clean shutdown");
    assert!(
        Conn::open(addr, client_config(&[&ca])).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused() {
    let ca = Ca::new("palisade test CA");
    let other = Ca::new("some other CA");
    let (cert, key, _) = ca.serving_pair("webhook");
    let t = start_server(&[NO_PRIVILEGED], &cert, &key).await;
    let err = Conn::open(t.server.addr, client_config(&[&other])).await;
    assert!(err.is_err(), "handshake must fail against an unknown CA");
    t.server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_fails_readiness_closes_idle_connections_and_the_listener() {
    let ca = Ca::new("palisade test CA");
    let (cert, key, _) = ca.serving_pair("webhook");
    let t = start_server(&[NO_PRIVILEGED], &cert, &key).await;
    let addr = t.server.addr;
    let mut conn = Conn::open(addr, client_config(&[&ca]))
        .await
        .expect("connect");
    conn.review(
        "/validate",
        &review("s-1", "CREATE", &pod("p", false), None),
    )
    .await
    .expect("first review");

    let readiness = t.state.clone();
    let stopping = tokio::spawn(t.server.shutdown());
    // Draining shows on readiness at once.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !readiness.is_draining() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("draining");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown within the grace period")
        .expect("task")
        .expect("clean shutdown");
    assert!(Conn::open(addr, client_config(&[&ca])).await.is_err());
}

#[tokio::test]
async fn speaks_http2_when_the_client_offers_it() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls::pki_types::ServerName;

    let ca = Ca::new("palisade test CA");
    let (cert, key, _) = ca.serving_pair("webhook");
    let t = start_server(&[NO_PRIVILEGED], &cert, &key).await;
    let addr = t.server.addr;

    let mut config = (*client_config(&[&ca])).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::from(addr.ip()), tcp)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);

    for (uid, privileged) in [("h2-1", true), ("h2-2", false)] {
        let body = review(uid, "CREATE", &pod("p", privileged), None).to_string();
        let req = hyper::Request::post(format!("https://{addr}/validate/pods"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(axum::body::Bytes::from(body)))
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(v["response"]["uid"], uid);
        assert_eq!(v["response"]["allowed"], !privileged);
    }
    t.server.shutdown().await.expect("clean shutdown");
}
