//! The certificate loop: a pass on start, on every change of the Secret and every resync.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{debug, warn};

use super::api::{confirm_published, ensure};
use super::config::CertConfig;
use super::plan::CaBundle;

/// Keep the certificates fresh until the future is dropped: one pass on start, on every
/// event of the Secret, and every `cfg.resync`. A pass is [`ensure`], then
/// `on_bundle(bundle)` (apply it to the webhook configuration; it should be idempotent), then
/// [`confirm_published`]. Failures are logged and retried after a few seconds.
pub async fn run<F, Fut, E>(client: Client, cfg: CertConfig, mut on_bundle: F)
where
    F: FnMut(CaBundle) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let api: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let events = watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={}", cfg.secret_name)),
    )
    .default_backoff()
    .touched_objects();
    let mut events = std::pin::pin!(events);
    let retry = Duration::from_secs(5);
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            event = events.next() => match event {
                Some(Ok(_)) => {}
                Some(Err(e)) => debug!(error = %e, "certificate Secret watch"),
                None => {}
            },
        }
        wait = match pass(&client, &cfg, &mut on_bundle).await {
            Ok(()) => cfg.resync,
            Err(e) => {
                warn!(error = %e, secret = %cfg.secret_name, "webhook certificate pass failed; retrying");
                retry
            }
        };
    }
}

async fn pass<F, Fut, E>(client: &Client, cfg: &CertConfig, on_bundle: &mut F) -> Result<(), String>
where
    F: FnMut(CaBundle) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let bundle = ensure(client, cfg).await.map_err(|e| report(&e))?;
    on_bundle(bundle.clone())
        .await
        .map_err(|e| format!("publishing the CA bundle: {e}"))?;
    confirm_published(client, cfg, &bundle)
        .await
        .map_err(|e| report(&e))
}

fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
