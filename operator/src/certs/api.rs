//! The certificate Secret on the API server, one step of the plan at a time; the record
//! that a bundle is published; the ClusterRole that owns what the operator creates.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tracing::{debug, info};

use super::config::CertConfig;
use super::error::Error;
use super::files::mirror;
use super::owner::reference_to;
use super::plan::{ANNOTATION_BUNDLE_PUBLISHED, CaBundle, Plan, Stored, advance, plan};
use super::x509::{parse_all, rfc3339, unix};
use crate::FIELD_MANAGER;

/// Make sure the Secret holds a good CA and serving certificate (one step of [`plan`]),
/// mirror it into `cert_dir`, and return the bundle to publish.
pub async fn ensure(client: &Client, cfg: &CertConfig) -> Result<CaBundle, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let existing = api
        .get_opt(&cfg.secret_name)
        .await
        .map_err(|source| kube_error(cfg, "cannot read", source))?;
    if cfg.external {
        return ensure_external(cfg, existing.as_ref()).await;
    }
    cfg.validate()?;
    let now = SystemTime::now();
    let step = plan(existing.as_ref(), cfg, now);
    let stored = match (&step, &existing) {
        // A Secret from before the owner was configured gains it without other change.
        (Plan::Keep, Some(secret)) if super::owner::has(&secret.metadata, cfg.owner.as_ref()) => {
            Stored::from_secret(secret)
        }
        _ => {
            let current = existing
                .as_ref()
                .map(Stored::from_secret)
                .unwrap_or_default();
            let next = advance(current, &step, cfg, now)?;
            info!(secret = %cfg.secret_name, namespace = %cfg.namespace, plan = %step, "updating the webhook certificate Secret");
            write(&api, cfg, &next).await?;
            next
        }
    };
    if let Some(dir) = &cfg.cert_dir {
        mirror(dir, &stored).await?;
    }
    Ok(stored.bundle())
}

async fn ensure_external(cfg: &CertConfig, existing: Option<&Secret>) -> Result<CaBundle, Error> {
    let external = |reason: &str| Error::External {
        namespace: cfg.namespace.clone(),
        name: cfg.secret_name.clone(),
        reason: reason.to_string(),
    };
    let secret = existing.ok_or_else(|| external("not found"))?;
    let stored = Stored::from_secret(secret);
    let ca = stored
        .ca_crt
        .as_deref()
        .ok_or_else(|| external("no ca.crt (for cert-manager, use an Issuer that sets it, e.g. a CA or self-signed Issuer)"))?;
    if parse_all(ca).is_empty() {
        return Err(external("ca.crt holds no certificate"));
    }
    if let Some(dir) = &cfg.cert_dir {
        mirror(dir, &stored).await?;
    }
    Ok(CaBundle::from_pem(ca))
}

/// Record that `bundle` is now in the webhook configuration (the caller has applied it).
/// Writes only when the recorded bundle differs; a no-op for external Secrets.
pub async fn confirm_published(
    client: &Client,
    cfg: &CertConfig,
    bundle: &CaBundle,
) -> Result<(), Error> {
    if cfg.external {
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let Some(secret) = api
        .get_opt(&cfg.secret_name)
        .await
        .map_err(|source| kube_error(cfg, "cannot read", source))?
    else {
        return Ok(());
    };
    let mut stored = Stored::from_secret(&secret);
    if !stored.is_complete() {
        // Nothing sound to re-apply; the next ensure repairs it.
        return Ok(());
    }
    if stored.published().map(|(fp, _)| fp) == Some(bundle.fingerprint()) {
        return Ok(());
    }
    stored.annotations.insert(
        ANNOTATION_BUNDLE_PUBLISHED.into(),
        format!(
            "{} {}",
            bundle.fingerprint(),
            rfc3339(unix(SystemTime::now()))
        ),
    );
    debug!(secret = %cfg.secret_name, "CA bundle published");
    write(&api, cfg, &stored).await
}

pub(super) async fn write(
    api: &Api<Secret>,
    cfg: &CertConfig,
    stored: &Stored,
) -> Result<(), Error> {
    api.patch(
        &cfg.secret_name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(stored.to_secret(cfg)),
    )
    .await
    .map_err(|source| kube_error(cfg, "cannot apply", source))?;
    Ok(())
}

fn kube_error(cfg: &CertConfig, action: &'static str, source: kube::Error) -> Error {
    Error::Kube {
        action,
        namespace: cfg.namespace.clone(),
        name: cfg.secret_name.clone(),
        source: Box::new(source),
    }
}

/// The owner reference to ClusterRole `name`, read from the API server for its uid.
pub async fn cluster_role(client: &Client, name: &str) -> Result<OwnerReference, crate::Error> {
    let role = Api::<ClusterRole>::all(client.clone())
        .get(name)
        .await
        .map_err(crate::Error::kube(format!(
            "cannot read ClusterRole {name}, the owner of the webhook registration and certificate Secret"
        )))?;
    reference_to(&role).ok_or_else(|| crate::Error::Owner {
        kind: "ClusterRole",
        name: name.to_owned(),
        reason: "it has no uid",
    })
}
