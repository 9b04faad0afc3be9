//! `certs::ensure` against a real API server: create, idempotence, renewal, a full CA
//! rotation, external Secrets and the `run` loop. Needs PALISADE_E2E_KUBECONFIG.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::common::{client, suffix};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use palisade_operator::certs::{
    self, ANNOTATION_BUNDLE_PUBLISHED, ANNOTATION_ROTATE_REQUEST, CA_CRT, CA_KEY, CA_PREVIOUS_CRT,
    CaBundle, CertConfig, Issued, Plan, TLS_CRT, TLS_KEY,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", suffix());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

fn config(ns: &str, dir: &std::path::Path) -> CertConfig {
    let mut cfg = CertConfig::new(ns, "palisade-webhook");
    cfg.ip_sans = vec!["127.0.0.1".parse().expect("ip")];
    cfg.publish_grace = Duration::ZERO;
    cfg.drain_grace = Duration::ZERO;
    cfg.cert_dir = Some(dir.to_path_buf());
    cfg
}

fn field(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

async fn get(api: &Api<Secret>, name: &str) -> Secret {
    api.get(name).await.expect("get Secret")
}

/// Someone else's write, as `kubectl` would do it.
async fn merge(api: &Api<Secret>, name: &str, patch: serde_json::Value) {
    api.patch(
        name,
        &PatchParams {
            field_manager: Some("test-editor".into()),
            ..Default::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .expect("patch Secret");
}

fn b64(s: &str) -> serde_json::Value {
    serde_json::to_value(ByteString(s.as_bytes().to_vec())).expect("bytes")
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn ensure_creates_renews_and_rotates() {
    let client = client().await;
    let ns = namespace(&client, "palisade-certs").await;
    let dir = std::env::temp_dir().join(format!("palisade-certs-{}", suffix()));
    let cfg = config(&ns, &dir);
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);

    // Create.
    let bundle = certs::ensure(&client, &cfg).await.expect("ensure");
    assert_eq!(bundle.len(), 1);
    let secret = get(&api, &cfg.secret_name).await;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    for key in [TLS_CRT, TLS_KEY, CA_CRT, CA_KEY] {
        assert!(field(&secret, key).is_some(), "{key}");
    }
    assert_eq!(field(&secret, CA_PREVIOUS_CRT), None);
    assert_eq!(
        secret
            .labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("palisade-operator")
    );
    assert!(secret.managed_fields().iter().any(|m| m.manager.as_deref()
        == Some(palisade_operator::FIELD_MANAGER)
        && m.operation.as_deref() == Some("Apply")));
    assert_eq!(
        certs::plan(Some(&secret), &cfg, SystemTime::now()),
        Plan::Keep
    );
    assert_eq!(bundle, certs::bundle(&secret));
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.crt")).expect("cert dir"),
        field(&secret, TLS_CRT).unwrap_or_default()
    );

    // Idempotent.
    let again = certs::ensure(&client, &cfg).await.expect("ensure");
    assert_eq!(again, bundle);
    let rv = secret.resource_version();
    assert_eq!(get(&api, &cfg.secret_name).await.resource_version(), rv);

    // Confirming publication writes once, then nothing.
    certs::confirm_published(&client, &cfg, &bundle)
        .await
        .expect("confirm");
    let confirmed = get(&api, &cfg.secret_name).await;
    assert_ne!(confirmed.resource_version(), rv);
    assert!(
        confirmed
            .annotations()
            .get(ANNOTATION_BUNDLE_PUBLISHED)
            .is_some_and(|v| v.starts_with(&bundle.fingerprint()))
    );
    certs::confirm_published(&client, &cfg, &bundle)
        .await
        .expect("confirm");
    assert_eq!(
        get(&api, &cfg.secret_name).await.resource_version(),
        confirmed.resource_version()
    );

    // An expiring serving certificate is renewed by the same CA.
    let ca = Issued {
        cert_pem: field(&confirmed, CA_CRT).unwrap_or_default(),
        key_pem: field(&confirmed, CA_KEY).unwrap_or_default(),
    };
    let old = certs::issue_serving(&cfg, &ca, SystemTime::now() - 70 * DAY).expect("issue");
    merge(
        &api,
        &cfg.secret_name,
        serde_json::json!({"data": {TLS_CRT: b64(&old.cert_pem), TLS_KEY: b64(&old.key_pem)}}),
    )
    .await;
    let renewed_bundle = certs::ensure(&client, &cfg).await.expect("ensure");
    assert_eq!(renewed_bundle, bundle, "renewal keeps the CA");
    let renewed = get(&api, &cfg.secret_name).await;
    let renewed_crt = field(&renewed, TLS_CRT).unwrap_or_default();
    assert_ne!(renewed_crt, old.cert_pem);
    assert_eq!(
        certs::plan(Some(&renewed), &cfg, SystemTime::now()),
        Plan::Keep
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.crt")).expect("cert dir"),
        renewed_crt
    );

    // CA rotation, forced the way a person would: annotate the Secret.
    merge(
        &api,
        &cfg.secret_name,
        serde_json::json!({"metadata": {"annotations": {ANNOTATION_ROTATE_REQUEST: "test-1"}}}),
    )
    .await;
    let two = certs::ensure(&client, &cfg).await.expect("ensure: step 1");
    assert_eq!(two.len(), 2, "old and new CA are both published");
    let step1 = get(&api, &cfg.secret_name).await;
    assert_eq!(field(&step1, CA_PREVIOUS_CRT), Some(ca.cert_pem.clone()));
    assert_ne!(field(&step1, CA_CRT), Some(ca.cert_pem.clone()));
    assert!(two.pem().contains(ca.cert_pem.trim_end()));
    assert_eq!(
        field(&step1, TLS_CRT),
        Some(renewed_crt.clone()),
        "the serving certificate waits for the bundle"
    );
    // Not published yet: nothing moves.
    assert_eq!(certs::ensure(&client, &cfg).await.expect("ensure"), two);
    assert_eq!(
        get(&api, &cfg.secret_name).await.resource_version(),
        step1.resource_version()
    );

    // Step 2 after the two-CA bundle is published.
    certs::confirm_published(&client, &cfg, &two)
        .await
        .expect("confirm");
    let still_two = certs::ensure(&client, &cfg).await.expect("ensure: step 2");
    assert_eq!(still_two, two, "both CAs stay while replicas switch");
    let step2 = get(&api, &cfg.secret_name).await;
    let switched = field(&step2, TLS_CRT).unwrap_or_default();
    assert_ne!(switched, renewed_crt);
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.crt")).expect("cert dir"),
        switched
    );

    // Step 3 (drain grace zero here): the old CA leaves.
    let one = certs::ensure(&client, &cfg).await.expect("ensure: step 3");
    assert_eq!(one.len(), 1);
    let step3 = get(&api, &cfg.secret_name).await;
    assert_eq!(field(&step3, CA_PREVIOUS_CRT), None);
    assert_eq!(
        one,
        CaBundle::from_pem(format!(
            "{}\n",
            field(&step3, CA_CRT).unwrap_or_default().trim_end()
        ))
    );
    assert_eq!(field(&step3, TLS_CRT), Some(switched));
    assert_eq!(
        certs::plan(Some(&step3), &cfg, SystemTime::now()),
        Plan::Keep
    );

    // Settled: no more writes, and the annotation request is not acted on twice.
    certs::ensure(&client, &cfg).await.expect("ensure");
    assert_eq!(
        get(&api, &cfg.secret_name).await.resource_version(),
        step3.resource_version()
    );

    // External mode reads ca.crt and never writes.
    let mut external = cfg.clone();
    external.external = true;
    external.cert_dir = None;
    let read = certs::ensure(&client, &external).await.expect("external");
    assert_eq!(
        read.pem().trim_end(),
        field(&step3, CA_CRT).unwrap_or_default().trim_end()
    );
    certs::confirm_published(&client, &external, &read)
        .await
        .expect("confirm");
    assert_eq!(
        get(&api, &cfg.secret_name).await.resource_version(),
        step3.resource_version()
    );
    external.secret_name = "does-not-exist".into();
    assert!(matches!(
        certs::ensure(&client, &external).await,
        Err(certs::Error::External { .. })
    ));
    assert!(api.get_opt("does-not-exist").await.expect("get").is_none());

    delete_namespace(&client, &ns).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn garbage_secret_is_replaced() {
    let client = client().await;
    let ns = namespace(&client, "palisade-certs").await;
    let dir = std::env::temp_dir().join(format!("palisade-certs-{}", suffix()));
    let mut cfg = config(&ns, &dir);
    cfg.cert_dir = None;
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut data = BTreeMap::new();
    data.insert(TLS_CRT.to_string(), ByteString(b"garbage".to_vec()));
    data.insert(TLS_KEY.to_string(), ByteString(b"garbage".to_vec()));
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(cfg.secret_name.clone()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    api.create(&PostParams::default(), &secret)
        .await
        .expect("create");
    let bundle = certs::ensure(&client, &cfg).await.expect("ensure");
    assert_eq!(bundle.len(), 1);
    let fixed = get(&api, &cfg.secret_name).await;
    assert_eq!(
        certs::plan(Some(&fixed), &cfg, SystemTime::now()),
        Plan::Keep
    );
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
#[ignore = "needs PALISADE_E2E_KUBECONFIG"]
async fn run_publishes_and_confirms() {
    let client = client().await;
    let ns = namespace(&client, "palisade-certs").await;
    let dir = std::env::temp_dir().join(format!("palisade-certs-{}", suffix()));
    let mut cfg = config(&ns, &dir);
    cfg.cert_dir = None;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<CaBundle>();
    let seen = Arc::new(std::sync::Mutex::new(0usize));
    let counter = seen.clone();
    let task = tokio::spawn(certs::run(client.clone(), cfg.clone(), move |bundle| {
        let tx = tx.clone();
        let counter = counter.clone();
        async move {
            if let Ok(mut n) = counter.lock() {
                *n += 1;
            }
            tx.send(bundle).map_err(|e| e.to_string())
        }
    }));
    let bundle = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a bundle within 30 s")
        .expect("bundle");
    assert_eq!(bundle.len(), 1);
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let secret = get(&api, &cfg.secret_name).await;
        if secret
            .annotations()
            .get(ANNOTATION_BUNDLE_PUBLISHED)
            .is_some_and(|v| v.starts_with(&bundle.fingerprint()))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    task.abort();
    delete_namespace(&client, &ns).await;
}
