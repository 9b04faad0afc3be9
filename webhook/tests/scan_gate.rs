//! The scan gate through the admission router: tags resolved at a real registry, verdicts
//! from reports held in memory, waiting for a queued scan, a registry that is down, a
//! private registry reached with the pod's pull secrets, and stale reports re-scanned. An
//! in-process stand-in for the API server serves Secrets and ServiceAccounts and records
//! the gate's writes.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Bytes, to_bytes};
use axum::extract::State;
use axum::http::{Method, Request, StatusCode, Uri, header};
use common::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{LocalObjectReference, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use palisade_crds::{
    Coverage, FailOn, IgnoreEntry, ImageScanReport, ImageScanReportSpec, ImageScanReportStatus,
    Mode, OnUnscanned, ReportFinding, ScanPhase, ScanPolicy, ScanPolicySpec, SeveritySummary,
    SeverityThreshold, report_name,
};
use palisade_oci_fixtures::{Compression, LayerBuilder, Registry};
use palisade_policy::PolicySet;
use palisade_scanner::oci::{ClientConfig, RegistryClient};
use palisade_webhook::scans::{GateConfig, GateFeeder, RESCAN_ANNOTATION, ScanGate};
use palisade_webhook::{AppState, Metrics, PolicyStore, admission};
use serde_json::{Value, json};
use tower::ServiceExt;

fn registry_client() -> RegistryClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RegistryClient::new(ClientConfig::default()).expect("client")
}

fn gate(max_wait: Duration) -> (AppState, GateFeeder) {
    gate_with(max_wait, None)
}

/// A gate that reads and writes through `client` (pull secrets, re-scan requests).
fn gate_with(max_wait: Duration, client: Option<kube::Client>) -> (AppState, GateFeeder) {
    let config = GateConfig {
        max_wait,
        ..GateConfig::default()
    };
    let (gate, feeder) = ScanGate::new(config, registry_client(), client);
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
            ..ReportFinding::default()
        })
        .collect();
    let mut r = ImageScanReport::new(
        &report_name(digest),
        ImageScanReportSpec {
            image: image.into(),
            digest: digest.into(),
            platform: None,
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
    judge_review(state, review("uid-1", "CREATE", pod, None)).await
}

async fn judge_dry_run(state: &AppState, pod: &Value) -> Value {
    let mut body = review("uid-1", "CREATE", pod, None);
    body["request"]["dryRun"] = json!(true);
    judge_review(state, body).await
}

async fn judge_review(state: &AppState, body: Value) -> Value {
    let body = body.to_string();
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

/// A stand-in for the API server: GETs answered from `objects` (404 otherwise), writes
/// recorded and acknowledged.
#[derive(Clone, Default)]
struct FakeApi {
    objects: Arc<Mutex<HashMap<String, Value>>>,
    reads: Arc<Mutex<Vec<String>>>,
    writes: Arc<Mutex<Vec<(Method, String, Value)>>>,
}

impl FakeApi {
    fn put_secret(&self, secret: Secret) {
        let m = &secret.metadata;
        let path = format!(
            "/api/v1/namespaces/{}/secrets/{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default()
        );
        let mut v = serde_json::to_value(&secret).expect("secret");
        v["apiVersion"] = json!("v1");
        v["kind"] = json!("Secret");
        self.objects.lock().expect("lock").insert(path, v);
    }

    fn put_service_account(&self, account: ServiceAccount) {
        let m = &account.metadata;
        let path = format!(
            "/api/v1/namespaces/{}/serviceaccounts/{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default()
        );
        let mut v = serde_json::to_value(&account).expect("service account");
        v["apiVersion"] = json!("v1");
        v["kind"] = json!("ServiceAccount");
        self.objects.lock().expect("lock").insert(path, v);
    }

    fn reads_of(&self, path: &str) -> usize {
        let reads = self.reads.lock().expect("lock");
        reads.iter().filter(|p| *p == path).count()
    }

    fn writes(&self) -> Vec<(Method, String, Value)> {
        self.writes.lock().expect("lock").clone()
    }

    /// Serve on a free port; a client for it.
    async fn start(&self) -> kube::Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .fallback(fake_api)
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        palisade_webhook::tls::install_crypto_provider();
        let config = kube::Config::new(url.parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }
}

async fn fake_api(
    State(api): State<FakeApi>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let path = uri.path().to_owned();
    if method == Method::GET {
        api.reads.lock().expect("lock").push(path.clone());
        return match api.objects.lock().expect("lock").get(&path) {
            Some(object) => (StatusCode::OK, json, object.to_string()),
            None => (
                StatusCode::NOT_FOUND,
                json,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Failure", "message": format!("{path} not found"),
                       "reason": "NotFound", "code": 404})
                .to_string(),
            ),
        };
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.writes
        .lock()
        .expect("lock")
        .push((method, path.clone(), body));
    // What a client decodes the answer of a create or patch of an ImageScanReport as.
    let name = path.rsplit('/').next().unwrap_or_default();
    let answer = json!({"apiVersion": "palisade.dev/v1alpha1", "kind": "ImageScanReport",
                        "metadata": {"name": name},
                        "spec": {"image": "r/a@sha256:0", "digest": "sha256:0"}});
    (StatusCode::OK, json, answer.to_string())
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

fn pull_secret(name: &str, type_: &str, key: &str, value: &str) -> Secret {
    Secret {
        metadata: meta("shop", name),
        type_: Some(type_.into()),
        data: Some(BTreeMap::from([(
            key.to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// `pod_with` plus pod-level settings (`imagePullSecrets`, `serviceAccountName`).
fn pod_spec_with(images: &[&str], spec: Value) -> Value {
    let mut pod = pod_with(images, false);
    for (k, v) in spec.as_object().expect("an object") {
        pod["spec"][k] = v.clone();
    }
    pod
}

#[tokio::test]
async fn a_private_registry_is_reached_with_the_pods_pull_secrets_as_the_kubelet_would() {
    let registry = Registry::start_with_login("alice", "s3cret").expect("registry");
    let push = registry.pusher().expect("pusher");
    let layer = LayerBuilder::new()
        .file("etc/os-release", "ID=alpine\nVERSION_ID=3.18.4\n")
        .build(Compression::Gzip);
    let mut images = Vec::new();
    for tag in ["1.0", "2.0", "3.0"] {
        let pushed = push
            .image(
                "shop/app",
                tag,
                std::slice::from_ref(&layer),
                "linux",
                "amd64",
            )
            .await
            .expect("push");
        images.push((format!("{}/shop/app:{tag}", registry.host()), pushed.digest));
    }
    let host = registry.host().to_owned();

    let api = FakeApi::default();
    let good = registry.docker_config_json();
    // base64 of alice:wrong
    let wrong = json!({"auths": {&host: {"auth": "YWxpY2U6d3Jvbmc="}}}).to_string();
    // The older .dockercfg form: the same entries without "auths".
    let auths: Value = serde_json::from_str(&good).expect("config");
    let dockercfg = auths["auths"].to_string();
    api.put_secret(pull_secret(
        "regcred",
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        &good,
    ));
    api.put_secret(pull_secret(
        "wrong",
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        &wrong,
    ));
    api.put_secret(pull_secret(
        "sa-cfg",
        "kubernetes.io/dockercfg",
        ".dockercfg",
        &dockercfg,
    ));
    // Not a pull secret: skipped with a warning, the next one is tried.
    api.put_secret(pull_secret("opaque", "Opaque", "token", "x"));
    api.put_service_account(ServiceAccount {
        metadata: meta("shop", "builder"),
        image_pull_secrets: Some(vec![LocalObjectReference {
            name: "sa-cfg".into(),
        }]),
        ..ServiceAccount::default()
    });
    let client = api.start().await;

    let policy = scan_policy(ScanPolicySpec {
        scan_wait: Some("0s".into()),
        ..enforce()
    });
    let fresh_gate = |client: &kube::Client| {
        let (state, mut feeder) = gate_with(Duration::from_secs(5), Some(client.clone()));
        feeder.set_policies(std::slice::from_ref(&policy));
        for (image, digest) in &images {
            feeder.apply_report(report(digest, image, 0));
        }
        (state, feeder)
    };
    let (image1, image2, image3) = (&images[0].0, &images[1].0, &images[2].0);

    // Without a pull secret (the default ServiceAccount does not exist here), the registry
    // refuses: the image cannot be judged.
    let (state, _feeder) = fresh_gate(&client);
    let r = judge(&state, &pod_with(&[image1], false)).await;
    assert_eq!(r["allowed"], false, "{r}");
    let m = message(&r);
    assert!(
        m.contains("cannot be scanned: its digest cannot be resolved: registry ")
            && m.contains("needs credentials"),
        "{m}"
    );
    assert_eq!(
        api.reads_of("/api/v1/namespaces/shop/serviceaccounts/default"),
        1
    );

    // The same image for a pod that brings its pull secrets: the failure remembered for
    // the anonymous attempt is not served to it. An Opaque Secret and a wrong login are
    // passed over, in order, for the next.
    let secrets = json!({"imagePullSecrets": [{"name": "opaque"}, {"name": "missing"},
                                              {"name": "wrong"}, {"name": "regcred"}]});
    let r = judge(&state, &pod_spec_with(&[image1], secrets.clone())).await;
    assert_eq!(r["allowed"], true, "{r}");
    // Another tag: resolved again, the Secrets and the ServiceAccount from the cache.
    let r = judge(&state, &pod_spec_with(&[image2], secrets)).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(api.reads_of("/api/v1/namespaces/shop/secrets/regcred"), 1);
    assert_eq!(api.reads_of("/api/v1/namespaces/shop/secrets/missing"), 1);
    assert_eq!(
        api.reads_of("/api/v1/namespaces/shop/serviceaccounts/default"),
        1
    );

    // Only the ServiceAccount's pull secret (the older .dockercfg form).
    let r = judge(
        &state,
        &pod_spec_with(&[image3], json!({"serviceAccountName": "builder"})),
    )
    .await;
    assert_eq!(r["allowed"], true, "{r}");

    // A wrong login alone: the message says which login was refused.
    let (state, _feeder) = fresh_gate(&client);
    let r = judge(
        &state,
        &pod_spec_with(&[image1], json!({"imagePullSecrets": [{"name": "wrong"}]})),
    )
    .await;
    assert_eq!(r["allowed"], false, "{r}");
    let m = message(&r);
    assert!(
        m.contains("its digest cannot be resolved with the login of Secret shop/wrong: registry "),
        "{m}"
    );
    // The gate wrote nothing: every image had its report.
    assert!(api.writes().is_empty(), "{:?}", api.writes());
}

/// A report of `digest` scanned `days` ago.
fn old_report(digest: &str, image: &str, critical: u32, days: i64) -> (ImageScanReport, Timestamp) {
    let scanned_at = Timestamp::now() - SignedDuration::from_hours(24 * days);
    let mut r = report(digest, image, critical);
    if let Some(s) = r.status.as_mut() {
        s.scanned_at = Some(Time(scanned_at));
    }
    (r, scanned_at)
}

fn rescan_requests(api: &FakeApi, digest: &str) -> Vec<Value> {
    let path = format!(
        "/apis/palisade.dev/v1alpha1/imagescanreports/{}",
        report_name(digest)
    );
    api.writes()
        .into_iter()
        .filter(|(m, p, _)| *m == Method::PATCH && *p == path)
        .map(|(_, _, body)| body)
        .collect()
}

#[tokio::test]
async fn a_report_past_max_report_age_still_decides_and_is_rescanned_once() {
    let api = FakeApi::default();
    let client = api.start().await;
    let (state, mut feeder) = gate_with(Duration::from_secs(2), Some(client));
    feeder.set_policies(&[
        scan_policy(ScanPolicySpec {
            max_report_age: Some("1d".into()),
            ..enforce()
        }),
        // Judges the same images with a longer age: the smaller one counts.
        ScanPolicy::new(
            "lenient",
            ScanPolicySpec {
                mode: Mode::Warn,
                max_report_age: Some("7d".into()),
                ..enforce()
            },
        ),
    ]);
    let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let image = |d: &str| format!("127.0.0.1:1/shop/app@{d}");
    let (vulnerable, dry, asked) = (digest('a'), digest('b'), digest('c'));
    let (r, scanned_at) = old_report(&vulnerable, &image(&vulnerable), 1, 2);
    feeder.apply_report(r);

    // The old report's verdict, with the warning; the report gets the annotation.
    let pod = pod_with(&[&image(&vulnerable)], false);
    let r = judge(&state, &pod).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        message(&r).contains("1 Critical vulnerability (CVE-2023-5360"),
        "{}",
        message(&r)
    );
    let warning = format!(
        "image {} (sha256:aaaaaaaaaaaa…): its scan report is 2d old (maxReportAge 1d of ScanPolicy/prod); a re-scan is queued",
        image(&vulnerable)
    );
    let warnings = r["warnings"].as_array().cloned().unwrap_or_default();
    assert!(warnings.contains(&json!(warning)), "{r}");
    let mut requests = Vec::new();
    for _ in 0..50 {
        requests = rescan_requests(&api, &vulnerable);
        if !requests.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        requests,
        [json!({"metadata": {"annotations": {RESCAN_ANNOTATION: scanned_at.to_string()}}})]
    );

    // Within the interval: the same answer, no second request.
    let r = judge(&state, &pod).await;
    let warnings = r["warnings"].as_array().cloned().unwrap_or_default();
    assert!(warnings.contains(&json!(warning)), "{r}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rescan_requests(&api, &vulnerable).len(), 1);

    // A dry run asks for nothing, and says so; the next real request asks.
    let (r, _) = old_report(&dry, &image(&dry), 0, 3);
    feeder.apply_report(r);
    let pod = pod_with(&[&image(&dry)], false);
    let r = judge_dry_run(&state, &pod).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        r["warnings"],
        json!([format!(
            "image {} (sha256:bbbbbbbbbbbb…): its scan report is 3d old (maxReportAge 1d of ScanPolicy/prod); a re-scan is due (a dry run queues none)",
            image(&dry)
        )]),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rescan_requests(&api, &dry).is_empty());
    let r = judge(&state, &pod).await;
    assert!(
        r["warnings"][0]
            .as_str()
            .is_some_and(|w| w.ends_with("a re-scan is queued")),
        "{r}"
    );

    // A report that already carries the request (another replica asked) is not patched.
    let (mut r, scanned_at) = old_report(&asked, &image(&asked), 0, 2);
    r.metadata.annotations = Some(BTreeMap::from([(
        RESCAN_ANNOTATION.to_owned(),
        scanned_at.to_string(),
    )]));
    feeder.apply_report(r);
    let r = judge(&state, &pod_with(&[&image(&asked)], false)).await;
    assert!(
        r["warnings"][0]
            .as_str()
            .is_some_and(|w| w.ends_with("a re-scan is queued")),
        "{r}"
    );
    // A fresh report: no warning at all.
    let fresh = digest('d');
    feeder.apply_report(report(&fresh, &image(&fresh), 0));
    let r = judge(&state, &pod_with(&[&image(&fresh)], false)).await;
    assert!(r["warnings"].is_null(), "{r}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rescan_requests(&api, &dry).len(), 1);
    assert!(rescan_requests(&api, &asked).is_empty());
    assert!(rescan_requests(&api, &fresh).is_empty());
}
