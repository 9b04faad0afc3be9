//! Certificate rotation under load: the served certificate changes, nothing fails.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use tokio::task::JoinSet;

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Requests on new connections that were served `watch_for`.
    fresh_with_watched_cert: AtomicU64,
}

/// Requests on one kept-alive connection until told to stop. Returns the certificate that
/// connection saw, which must not change under it.
async fn keep_alive_client(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    id: u64,
) -> Vec<u8> {
    let mut conn = Conn::open(addr, config).await.expect("connect");
    let mut n = 0u64;
    // Bounded even if `stop` never comes.
    while !stop.load(Ordering::Relaxed) && n < 200_000 {
        n += 1;
        let uid = format!("ka-{id}-{n}");
        match conn
            .review(
                "/validate",
                &review(&uid, "CREATE", &pod("p", n.is_multiple_of(2)), None),
            )
            .await
        {
            Ok(r) if r["uid"] == uid.as_str() && r["allowed"] == (!n.is_multiple_of(2)) => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                eprintln!("keep-alive request {uid} failed: {other:?}");
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    conn.peer_cert
}

/// A new connection (new handshake) per request.
async fn new_connection_client(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    watch_for: Vec<u8>,
) -> Vec<u8> {
    let mut n = 0u64;
    let mut last_cert = Vec::new();
    while !stop.load(Ordering::Relaxed) && n < 50_000 {
        n += 1;
        let uid = format!("nc-{n}");
        let result = async {
            let mut conn = Conn::open(addr, config.clone()).await?;
            let r = conn
                .review("/validate", &review(&uid, "CREATE", &pod("p", false), None))
                .await?;
            Ok::<_, BoxError>((conn.peer_cert, r))
        }
        .await;
        match result {
            Ok((cert, r)) if r["uid"] == uid.as_str() && r["allowed"] == true => {
                if cert == watch_for {
                    tally
                        .fresh_with_watched_cert
                        .fetch_add(1, Ordering::Relaxed);
                }
                last_cert = cert;
                tally.ok.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                eprintln!("new-connection request {uid} failed: {other:?}");
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    last_cert
}

async fn served_cert(addr: std::net::SocketAddr, config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    Conn::open(addr, config).await.expect("connect").peer_cert
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_seamless_and_bad_pairs_are_refused() {
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let (cert1, key1, der1) = old_ca.serving_pair("webhook v1");
    let (cert2, key2, der2) = new_ca.serving_pair("webhook v2");
    let mut t = start_server(&[NO_PRIVILEGED], &cert1, &key1).await;
    let addr = t.server.addr;
    let both = client_config(&[&old_ca, &new_ca]);
    assert_eq!(served_cert(addr, both.clone()).await, der1);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut keep_alive = JoinSet::new();
    for id in 0..2 {
        keep_alive.spawn(keep_alive_client(
            addr,
            both.clone(),
            stop.clone(),
            tally.clone(),
            id,
        ));
    }
    let fresh = tokio::spawn(new_connection_client(
        addr,
        both.clone(),
        stop.clone(),
        tally.clone(),
        der2.clone(),
    ));

    wait_for("traffic before the swap", async || {
        tally.ok.load(Ordering::Relaxed) >= 50
    })
    .await;
    t.secret.swap(&cert2, &key2);
    wait_for("the new certificate to be served", async || {
        served_cert(addr, both.clone()).await == der2
    })
    .await;
    let after_swap = tally.ok.load(Ordering::Relaxed);
    wait_for("traffic after the swap", async || {
        tally.ok.load(Ordering::Relaxed) >= after_swap + 50
            && tally.fresh_with_watched_cert.load(Ordering::Relaxed) >= 5
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    while let Some(cert) = keep_alive.join_next().await {
        // Open connections keep the certificate they were established with.
        assert_eq!(cert.expect("client task"), der1);
    }
    assert_eq!(fresh.await.expect("client task"), der2);
    eprintln!(
        "{} requests answered, {} after the new certificate was first served",
        tally.ok.load(Ordering::Relaxed),
        tally.ok.load(Ordering::Relaxed) - after_swap
    );
    assert_eq!(
        tally.failed.load(Ordering::Relaxed),
        0,
        "failed requests across the swap"
    );
    assert!(tally.ok.load(Ordering::Relaxed) >= after_swap + 50);

    // A key that does not match its certificate is refused; the current pair stays.
    let metrics = t.state.metrics.clone();
    let reloads = |result: &str| {
        let line = format!("palisade_tls_reloads_total{{result=\"{result}\"}} ");
        metrics
            .encode()
            .ok()
            .and_then(|m| {
                m.lines().find_map(|l| {
                    l.strip_prefix(line.as_str())
                        .and_then(|n| n.parse::<u64>().ok())
                })
            })
            .unwrap_or(0)
    };
    assert_eq!(reloads("success"), 1);
    let (cert3, _key3, _) = new_ca.serving_pair("webhook v3");
    for (cert, key) in [
        (cert3.as_str(), key1.as_str()),
        ("not a certificate", "not a key"),
    ] {
        let errors = reloads("error");
        t.secret.swap(cert, key);
        wait_for("the bad pair to be rejected", async || {
            reloads("error") > errors
        })
        .await;
        let mut conn = Conn::open(addr, both.clone()).await.expect("still serving");
        assert_eq!(conn.peer_cert, der2);
        let r = conn
            .review(
                "/validate",
                &review("after", "CREATE", &pod("p", true), None),
            )
            .await
            .expect("review");
        assert_eq!(r["allowed"], false);
    }
    assert_eq!(reloads("success"), 1);

    t.server.shutdown().await.expect("clean shutdown");
}
