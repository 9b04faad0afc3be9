//! Registering the webhooks on the API server: the configuration by server-side apply, and
//! in label mode the exempt label on the namespaces.

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use tracing::{info, warn};

use super::plan::{EXEMPT_LABEL, Error, NamespaceSelectorMode, RegistrationConfig, render, same};
use crate::FIELD_MANAGER;
use crate::certs::CaBundle;

/// Register the webhooks: in label mode first label the excluded namespaces (so they are
/// left out from the first moment) and unlabel the others, then apply the configuration.
/// Idempotent: a second call with the same input writes nothing.
pub async fn apply(
    client: &Client,
    cfg: &RegistrationConfig,
    ca_bundle: &CaBundle,
) -> Result<(), Error> {
    cfg.validate()?;
    if cfg.namespace_selector_mode == NamespaceSelectorMode::ExemptLabel {
        sync_exempt_labels(client, cfg).await?;
    }
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let desired = render(cfg, ca_bundle);
    // Skip the write when nothing differs, so the resourceVersion (and every API server's
    // webhook client cache) stays put.
    if let Some(current) = api
        .get_opt(&cfg.name)
        .await
        .map_err(|source| Error::Apply {
            name: cfg.name.clone(),
            source: Box::new(source),
        })?
        && same(&current, &desired)
    {
        return Ok(());
    }
    api.patch(
        &cfg.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired),
    )
    .await
    .map_err(|source| Error::Apply {
        name: cfg.name.clone(),
        source: Box::new(source),
    })?;
    info!(name = %cfg.name, "webhook configuration applied");
    Ok(())
}

async fn sync_exempt_labels(client: &Client, cfg: &RegistrationConfig) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let excluded = cfg.excluded();
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    for name in &excluded {
        let namespace = match api.get_opt(name).await {
            Ok(Some(ns)) => ns,
            // Not there (yet): nothing to exclude; the next apply labels it.
            Ok(None) => continue,
            Err(source) => {
                return Err(Error::Namespace {
                    action: "read",
                    namespace: name.clone(),
                    source: Box::new(source),
                });
            }
        };
        let labelled = namespace
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(EXEMPT_LABEL))
            .is_some_and(|v| v == "true");
        if labelled {
            continue;
        }
        // A merge patch, not apply: apply would create a namespace deleted meanwhile.
        let patch = serde_json::json!({"metadata": {"labels": {EXEMPT_LABEL: "true"}}});
        match api.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => info!(namespace = %name, "namespace exempted from admission checks"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(Error::Namespace {
                    action: "label",
                    namespace: name.clone(),
                    source: Box::new(source),
                });
            }
        }
    }
    let labelled = api
        .list_metadata(&ListParams::default().labels(EXEMPT_LABEL))
        .await
        .map_err(|e| Error::ListNamespaces(Box::new(e)))?;
    for namespace in labelled.items {
        let Some(name) = namespace.metadata.name else {
            continue;
        };
        if excluded.contains(&name) {
            continue;
        }
        warn!(namespace = %name, label = EXEMPT_LABEL, "namespace carries the exempt label but is not configured as excluded; removing it");
        let patch = serde_json::json!({"metadata": {"labels": {EXEMPT_LABEL: null}}});
        match api.patch(&name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(Error::Namespace {
                    action: "unlabel",
                    namespace: name,
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(())
}
