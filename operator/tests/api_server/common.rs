//! What the API-server test modules share: a client for the named cluster, unique names,
//! polling with a deadline, and the CRDs applied from the Rust types.

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};

/// How long [`eventually`] polls.
pub const WAIT: Duration = Duration::from_secs(60);

/// A client for the kubeconfig at `path`.
pub async fn client_from(path: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(path).expect("a readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a client")
}

/// A client for the cluster of `PALISADE_E2E_KUBECONFIG`, with the operator's logs captured
/// for failing tests.
pub async fn client() -> Client {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,palisade_operator=info",
        ))
        .with_test_writer()
        .try_init();
    let path = std::env::var("PALISADE_E2E_KUBECONFIG")
        .expect("PALISADE_E2E_KUBECONFIG must name a kubeconfig for these tests");
    client_from(&path).await
}

/// Hex of this process and the clock: names that repeated and parallel runs do not share.
pub fn suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", std::process::id(), nanos)
}

/// `prefix-<suffix>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", suffix())
}

/// Poll `f` until it gives a value, or fail after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Apply Palisade's CRDs from the Rust types (field manager `manager`) and wait until they
/// are served.
pub async fn install_crds(client: &Client, manager: &str) {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in palisade_crds::all() {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD applied");
        eventually("CRD established", || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}
