//! The scan gate through the admission router: tags resolved at a real registry, verdicts
//! from reports held in memory, waiting for a queued scan, and a registry that is down.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::to_bytes;
use axum::http::{Request, StatusCode, header};
use common::*;
use palisade_crds::{
    Coverage, FailOn, IgnoreEntry, ImageScanReport, ImageScanReportSpec, ImageScanReportStatus,
    Mode, OnUnscanned, ReportFinding, ScanPhase, ScanPolicy, ScanPolicySpec, SeveritySummary,
    SeverityThreshold, report_name,
};
use palisade_oci_fixtures::{Compression, LayerBuilder, Registry};
use palisade_policy::PolicySet;
use palisade_scanner::oci::{ClientConfig, RegistryClient};
use palisade_webhook::scans::{GateConfig, GateFeeder, ScanGate};
use palisade_webhook::{AppState, Metrics, PolicyStore, admission};
use serde_json::{Value, json};
use tower::ServiceExt;

fn registry_client() -> RegistryClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RegistryClient::new(ClientConfig::default()).expect("client")
}

fn gate(max_wait: Duration) -> (AppState, GateFeeder) {
    let config = GateConfig {
        max_wait,
        ..GateConfig::default()
    };
    let (gate, feeder) = ScanGate::new(config, registry_client(), None);
    let mut parsed = Vec::new();
    parsed.extend(palisade_policy::parse_policies(NO_PRIVILEGED).expect("policy"));
    let (set, _) = PolicySet::compile_all(&parsed);
    let metrics = Arc::new(Metrics::new());
    let state =
        AppState::new(PolicyStore::fixed(set, metrics.clone()), metrics).with_scan_gate(gate);
    (state, feeder)
}

fn scan_policy(spec: ScanPolicySpec) -> ScanPolicy {
    ScanPolicy::new("prod", spec)
}

fn enforce() -> ScanPolicySpec {
    ScanPolicySpec {
        mode: Mode::Enforce,
        fail_on: FailOn {
            severity: SeverityThreshold::High,
            only_fixable: false,
        },
        ..ScanPolicySpec::default()
    }
}

fn report(digest: &str, image: &str, critical: u32) -> ImageScanReport {
    let findings = (0..critical)
        .map(|i| ReportFinding {
            id: format!("ALPINE-CVE-2023-536{i}"),
            aliases: vec![format!("CVE-2023-536{i}")],
            package: "openssl".into(),
            installed_version: "3.1.2-r0".into(),
            fixed_version: Some("3.1.4-r0".into()),
            severity: "Critical".into(),
        })
        .collect();
    let mut r = ImageScanReport::new(
        &report_name(digest),
        ImageScanReportSpec {
            image: image.into(),
            digest: digest.into(),
        },
    );
    r.status = Some(ImageScanReportStatus {
        phase: ScanPhase::Scanned,
        ecosystem: Some("Alpine:v3.18".into()),
        coverage: Some(Coverage::Full),
        summary: Some(SeveritySummary {
            critical,
            ..SeveritySummary::default()
        }),
        fixable: Some(SeveritySummary {
            critical,
            ..SeveritySummary::default()
        }),
        findings,
        ..ImageScanReportStatus::default()
    });
    r
}

fn pod_with(images: &[&str], privileged: bool) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            json!({"name": format!("c{i}"), "image": image,
                   "securityContext": {"privileged": privileged}})
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"containers": containers}})
}

async fn judge(state: &AppState, pod: &Value) -> Value {
    let body = review("uid-1", "CREATE", pod, None).to_string();
    let judged = admission::router(state.clone()).oneshot(
        Request::post("/validate/pods")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .expect("request"),
    );
    // Whatever the registry does, the answer comes within the budget; this only catches a hang.
    let resp = tokio::time::timeout(Duration::from_secs(30), judged)
        .await
        .expect("an answer, not a hang")
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    let v: Value = serde_json::from_slice(&body).expect("review");
    v["response"].clone()
}

fn message(r: &Value) -> String {
    r["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

struct Images {
    _registry: Registry,
    vulnerable: String,
    vulnerable_digest: String,
    fixed: String,
    fixed_digest: String,
    unscanned: String,
    unscanned_digest: String,
}

async fn images() -> Images {
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    let mut digests = Vec::new();
    for (tag, openssl) in [
        ("1.0", "3.1.2-r0"),
        ("1.1", "3.1.4-r5"),
        ("1.2", "3.1.5-r0"),
    ] {
        let layer = LayerBuilder::new()
            .file("etc/os-release", "ID=alpine\nVERSION_ID=3.18.4\n")
            .file(
                "lib/apk/db/installed",
                format!("P:libssl3\nV:{openssl}\nA:x86_64\no:openssl\n\n"),
            )
            .build(Compression::Gzip);
        let pushed = push
            .image("shop/app", tag, &[layer], "linux", "amd64")
            .await
            .expect("push");
        digests.push(pushed.digest);
    }
    let host = registry.host().to_owned();
    Images {
        vulnerable: format!("{host}/shop/app:1.0"),
        vulnerable_digest: digests[0].clone(),
        fixed: format!("{host}/shop/app:1.1"),
        fixed_digest: digests[1].clone(),
        unscanned: format!("{host}/shop/app:1.2"),
        unscanned_digest: digests[2].clone(),
        _registry: registry,
    }
}

#[tokio::test]
async fn reports_decide_tags_after_resolution_and_ignores_waive_until_expiry() {
    let img = images().await;
    let (state, mut feeder) = gate(Duration::from_secs(2));
    feeder.set_policies(&[scan_policy(enforce())]);
    feeder.apply_report(report(&img.vulnerable_digest, &img.vulnerable, 2));
    feeder.apply_report(report(&img.fixed_digest, &img.fixed, 0));

    let r = judge(&state, &pod_with(&[&img.vulnerable], false)).await;
    assert_eq!(r["allowed"], false);
    let m = message(&r);
    let short = &img.vulnerable_digest[..19];
    assert!(
        m.starts_with(&format!(
            "Pod web: 1 violation\n- ScanPolicy/prod: image {} ({short}…): 2 Critical vulnerabilities (CVE-2023-5360 in openssl 3.1.2-r0 fixed in 3.1.4-r0, CVE-2023-5361",
            img.vulnerable
        )),
        "{m}"
    );
    assert!(m.contains("this policy allows at most Medium; update the image, or ask the owner of ScanPolicy/prod for an ignore entry"), "{m}");

    // The fixed tag is admitted; so is the vulnerable one pinned by a digest that has a
    // clean report (the digest, not the tag, is judged).
    let r = judge(&state, &pod_with(&[&img.fixed], false)).await;
    assert_eq!(r["allowed"], true, "{r}");

    // SecurityPolicy and ScanPolicy violations come in one answer.
    let r = judge(&state, &pod_with(&[&img.vulnerable], true)).await;
    let m = message(&r);
    assert!(
        m.starts_with("Pod web: 2 violations\n- SecurityPolicy/no-privileged: "),
        "{m}"
    );
    assert!(m.contains("\n- ScanPolicy/prod: image "), "{m}");

    // Ignore entries: both CVEs waived until a future date admits; an expired one does not.
    let ignore = |expires: &str| {
        ["CVE-2023-5360", "CVE-2023-5361"]
            .iter()
            .map(|id| IgnoreEntry {
                id: (*id).into(),
                reason: Some("not reachable in this service".into()),
                owner: Some("team-shop".into()),
                expires: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    expires.parse().expect("time"),
                )),
                ..IgnoreEntry::default()
            })
            .collect::<Vec<_>>()
    };
    feeder.set_policies(&[scan_policy(ScanPolicySpec {
        ignore: ignore("2999-01-01T00:00:00Z"),
        ..enforce()
    })]);
    let r = judge(&state, &pod_with(&[&img.vulnerable], false)).await;
    assert_eq!(r["allowed"], true, "{r}");
    feeder.set_policies(&[scan_policy(ScanPolicySpec {
        ignore: ignore("2020-01-01T00:00:00Z"),
        ..enforce()
    })]);
    let r = judge(&state, &pod_with(&[&img.vulnerable], false)).await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains(
            "(exception \"CVE-2023-5360\" expired at 2020-01-01T00:00:00Z, so it no longer applies)"
        ),
        "{}",
        message(&r)
    );
}

#[tokio::test]
async fn an_unscanned_image_waits_for_its_report_then_gets_the_real_verdict() {
    let img = images().await;
    let (state, mut feeder) = gate(Duration::from_secs(5));
    feeder.set_policies(&[scan_policy(ScanPolicySpec {
        scan_wait: Some("300ms".into()),
        ..enforce()
    })]);

    // No report within scanWait: onUnscanned (Deny) with "queued, retry".
    let r = judge(&state, &pod_with(&[&img.unscanned], false)).await;
    assert_eq!(r["allowed"], false);
    let m = message(&r);
    assert!(
        m.contains("not scanned yet; a scan is queued, retry in a minute"),
        "{m}"
    );
    assert!(m.contains(&report_name(&img.unscanned_digest)), "{m}");

    // Warn admits with the same line as a warning; Allow admits silently.
    feeder.set_policies(&[scan_policy(ScanPolicySpec {
        scan_wait: Some("0s".into()),
        on_unscanned: OnUnscanned::Warn,
        ..enforce()
    })]);
    let r = judge(&state, &pod_with(&[&img.unscanned], false)).await;
    assert_eq!(r["allowed"], true);
    assert!(
        r["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("admitted without a scan (onUnscanned: Warn)")),
        "{r}"
    );
    feeder.set_policies(&[scan_policy(ScanPolicySpec {
        on_unscanned: OnUnscanned::Allow,
        scan_wait: Some("0s".into()),
        ..enforce()
    })]);
    let r = judge(&state, &pod_with(&[&img.unscanned], false)).await;
    assert_eq!(r["allowed"], true);
    assert!(r["warnings"].is_null(), "{r}");

    // A report that lands while the request waits decides it.
    feeder.set_policies(&[scan_policy(ScanPolicySpec {
        scan_wait: Some("4s".into()),
        ..enforce()
    })]);
    let late = report(&img.unscanned_digest, &img.unscanned, 1);
    let judging = tokio::spawn({
        let state = state.clone();
        let pod = pod_with(&[&img.unscanned], false);
        async move { judge(&state, &pod).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    feeder.apply_report(late);
    let r = judging.await.expect("task");
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("1 Critical vulnerability (CVE-2023-5360"),
        "{}",
        message(&r)
    );
}

#[tokio::test]
async fn a_registry_that_is_down_gives_a_clear_message_within_the_budget() {
    // A port nothing listens on: connection refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (state, feeder) = gate(Duration::from_millis(500));
    feeder.set_policies(&[scan_policy(enforce())]);
    let image = format!("127.0.0.1:{port}/shop/app:1.0");
    let r = judge(&state, &pod_with(&[&image], false)).await;
    assert_eq!(r["allowed"], false);
    let m = message(&r);
    assert!(
        m.contains(&format!(
            "ScanPolicy/prod: image {image}: cannot be scanned: its digest cannot be resolved: "
        )),
        "{m}"
    );
    assert!(
        m.contains("this policy admits only scanned images (onUnscanned: Deny) (rule scan.unscanned at spec.containers[0].image; "),
        "{m}"
    );

    // A registry that accepts connections but never answers: the budget ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let image = format!("{}/shop/app:1.0", silent.local_addr().expect("addr"));
    let r = judge(&state, &pod_with(&[&image], false)).await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("did not answer within"),
        "{}",
        message(&r)
    );
}
