//! The webhook's CA and serving certificate: created, stored in a Secret, renewed before
//! expiry, with the old CA kept in the bundle during a switch.
//!
//! # The Secret
//!
//! One Secret of type `kubernetes.io/tls`, written by server-side apply under
//! [`crate::FIELD_MANAGER`]:
//!
//! | key | content |
//! | --- | --- |
//! | `tls.crt`, `tls.key` | the serving certificate (ECDSA P-256, SANs from [`CertConfig`]) and its key |
//! | `ca.crt`, `ca.key` | the current CA and its key |
//! | `ca-previous.crt` | during a CA rotation only: the CA being replaced |
//!
//! The published bundle ([`CaBundle`]) is `ca.crt` followed by `ca-previous.crt`.
//!
//! # Shape
//!
//! - [`plan`] is pure: it looks at the Secret and the clock and says what to do ([`Plan`]).
//! - [`ensure`] performs one step of that plan, mirrors the files into
//!   [`CertConfig::cert_dir`] if set, and returns the bundle to put in `caBundle`.
//! - [`confirm_published`] records (in an annotation) that a bundle is now in the webhook
//!   configuration; a CA rotation waits for that before switching the serving certificate.
//! - [`run`] loops: on every change of the Secret (watch) and every
//!   [`CertConfig::resync`], it calls [`ensure`], hands the bundle to the caller's
//!   `on_bundle` (which applies the webhook configuration), then [`confirm_published`].
//!
//! # CA rotation
//!
//! A CA is replaced when less than a third of its life (or less than `renew_before`) remains,
//! when its key is lost, or when someone sets the annotation [`ANNOTATION_ROTATE_REQUEST`] to a
//! new value. The switch never leaves the API server with a certificate it cannot verify:
//!
//! 1. `RotateCa`: a new CA goes to `ca.crt`, the old one to `ca-previous.crt`; the serving
//!    certificate is untouched (still signed by the old CA). The bundle now holds both.
//! 2. `SwitchServing`: once that two-CA bundle has been confirmed as published for
//!    [`CertConfig::publish_grace`], a serving certificate signed by the new CA is issued and
//!    the time is recorded in [`ANNOTATION_SERVING_SWITCHED_AT`].
//! 3. `DropPreviousCa`: [`CertConfig::drain_grace`] after the switch (time for the kubelet to
//!    update every replica's Secret volume and the webhook to reload it), or once the old CA
//!    has expired, the old CA leaves the bundle.
//!
//! Every step is decided from the Secret alone, so an operator restarted at any point picks up
//! where it was. Renewing only the serving certificate (same CA) needs no such care.
//!
//! With [`CertConfig::external`] (cert-manager or any other issuer owns the Secret) the
//! Secret is only read: the bundle is its `ca.crt`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tracing::{debug, info, warn};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::FIELD_MANAGER;

/// Secret keys.
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const CA_PREVIOUS_CRT: &str = "ca-previous.crt";

/// `<fingerprint> <RFC 3339 time>`: the bundle last confirmed as published, and since when.
pub const ANNOTATION_BUNDLE_PUBLISHED: &str = "palisade.dev/ca-bundle-published";
/// When the serving certificate was switched to the new CA (step 2 of a rotation).
pub const ANNOTATION_SERVING_SWITCHED_AT: &str = "palisade.dev/serving-switched-at";
/// When the current CA rotation started (step 1); informational.
pub const ANNOTATION_ROTATION_STARTED_AT: &str = "palisade.dev/ca-rotation-started-at";
/// Set by a person (`kubectl annotate`) to any new value to force a CA rotation.
pub const ANNOTATION_ROTATE_REQUEST: &str = "palisade.dev/rotate-ca";
/// The value of [`ANNOTATION_ROTATE_REQUEST`] already acted on.
pub const ANNOTATION_ROTATE_DONE: &str = "palisade.dev/rotate-ca-done";

const DAY: Duration = Duration::from_secs(24 * 3600);
/// Certificates start a little in the past so that a clock behind ours accepts them.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} Secret {namespace}/{name}")]
    Kube {
        action: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot generate the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("external Secret {namespace}/{name}: {reason}")]
    External {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid certificate configuration: {0}")]
    Config(String),
}

/// What to manage and how long things live.
#[derive(Clone, Debug)]
pub struct CertConfig {
    pub namespace: String,
    pub secret_name: String,
    pub service_name: String,
    /// DNS SANs of the serving certificate; the first is also its common name.
    pub dns_names: Vec<String>,
    /// IP SANs (127.0.0.1 when the API server calls a webhook on loopback).
    pub ip_sans: Vec<IpAddr>,
    pub ca_validity: Duration,
    pub cert_validity: Duration,
    /// The serving certificate is renewed when less than this remains.
    pub renew_before: Duration,
    /// How long a new two-CA bundle must have been published before the serving certificate
    /// switches to the new CA (API servers pick up webhook configuration changes by watch).
    pub publish_grace: Duration,
    /// How long the old CA stays in the bundle after the switch (kubelet Secret volume sync
    /// plus the webhook's reload interval, with margin).
    pub drain_grace: Duration,
    /// Also write `tls.crt`, `tls.key`, `ca.crt` here, laid out like a Secret volume.
    pub cert_dir: Option<PathBuf>,
    /// Someone else (e.g. cert-manager) owns the Secret: only read `ca.crt`.
    pub external: bool,
    /// How often [`run`] re-checks without a Secret event.
    pub resync: Duration,
    /// The owner of the Secret (see [`crate::owner`]); never set on an external Secret.
    pub owner: Option<OwnerReference>,
}

impl CertConfig {
    /// Defaults for Service `service_name` in `namespace`: Secret `<service>-tls`, the
    /// Service's DNS names, CA 1 year, serving certificate 90 days renewed 30 days ahead.
    pub fn new(namespace: impl Into<String>, service_name: impl Into<String>) -> CertConfig {
        let namespace = namespace.into();
        let service_name = service_name.into();
        CertConfig {
            secret_name: format!("{service_name}-tls"),
            dns_names: service_dns_names(&service_name, &namespace),
            ip_sans: Vec::new(),
            ca_validity: 365 * DAY,
            cert_validity: 90 * DAY,
            renew_before: 30 * DAY,
            publish_grace: Duration::from_secs(30),
            drain_grace: Duration::from_secs(10 * 60),
            cert_dir: None,
            external: false,
            resync: Duration::from_secs(60),
            owner: None,
            namespace,
            service_name,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.dns_names.is_empty() && self.ip_sans.is_empty() {
            return Err(Error::Config("no DNS names and no IP addresses".into()));
        }
        if self.renew_before >= self.cert_validity {
            // Every fresh certificate would already be due for renewal.
            return Err(Error::Config(format!(
                "renew_before ({:?}) must be shorter than cert_validity ({:?})",
                self.renew_before, self.cert_validity
            )));
        }
        if self.ca_validity < self.cert_validity {
            return Err(Error::Config(format!(
                "ca_validity ({:?}) must not be shorter than cert_validity ({:?})",
                self.ca_validity, self.cert_validity
            )));
        }
        if self.renew_before.saturating_mul(2) >= self.ca_validity {
            return Err(Error::Config(format!(
                "ca_validity ({:?}) must be more than twice renew_before ({:?})",
                self.ca_validity, self.renew_before
            )));
        }
        Ok(())
    }
}

/// The names a Service answers to inside the cluster.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_string(),
    ]
}

/// PEM CA certificates for a webhook configuration's `caBundle`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaBundle {
    pem: String,
}

impl CaBundle {
    /// A bundle from PEM text (one or more certificates).
    pub fn from_pem(pem: impl Into<String>) -> CaBundle {
        CaBundle { pem: pem.into() }
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.pem.as_bytes()
    }

    /// How many certificates parse from the bundle.
    pub fn len(&self) -> usize {
        parse_all(&self.pem).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Identifies the bundle in an annotation (FNV-1a: not a security measure).
    pub fn fingerprint(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.pem.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

impl fmt::Display for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pem)
    }
}

/// What [`ensure`] should do with the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Keep,
    /// No Secret yet.
    Create,
    /// A new serving certificate from the current CA.
    RenewServing {
        reason: String,
    },
    /// Rotation step 1: a new CA, the old one kept in the bundle.
    RotateCa {
        reason: String,
    },
    /// Rotation step 2: a serving certificate from the new CA.
    SwitchServing {
        reason: String,
    },
    /// Rotation step 3: the old CA leaves the bundle.
    DropPreviousCa {
        reason: String,
    },
    /// The CA cannot be used: start again with a new CA and serving certificate.
    Invalid {
        reason: String,
    },
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Keep => f.write_str("keep"),
            Plan::Create => f.write_str("create"),
            Plan::RenewServing { reason } => write!(f, "renew the serving certificate: {reason}"),
            Plan::RotateCa { reason } => write!(f, "rotate the CA: {reason}"),
            Plan::SwitchServing { reason } => {
                write!(f, "switch the serving certificate to the new CA: {reason}")
            }
            Plan::DropPreviousCa { reason } => write!(f, "drop the previous CA: {reason}"),
            Plan::Invalid { reason } => write!(f, "recreate everything: {reason}"),
        }
    }
}

/// A certificate and its key, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A new self-signed CA valid from `now` (minus a few minutes) for `cfg.ca_validity`.
pub fn issue_ca(cfg: &CertConfig, now: SystemTime) -> Result<Issued, Error> {
    let generate = |source| Error::Generate { what: "CA", source };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // A distinct name per CA, so old and new CA are told apart in the bundle and in logs.
    dn.push(
        DnType::CommonName,
        format!("palisade-webhook-ca@{}", unix(now)),
    );
    dn.push(DnType::OrganizationName, "palisade");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = offset(now - BACKDATE)?;
    params.not_after = offset(now + cfg.ca_validity)?;
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A serving certificate for `cfg`'s names, signed by the given CA, valid for
/// `cfg.cert_validity` but never beyond the CA.
pub fn issue_serving(cfg: &CertConfig, ca: &Issued, now: SystemTime) -> Result<Issued, Error> {
    let generate = |source| Error::Generate {
        what: "serving certificate",
        source,
    };
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(generate)?;
    let ca_info =
        parse_cert(&ca.cert_pem).map_err(|reason| Error::Config(format!("CA: {reason}")))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(generate)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let cn = cfg
        .dns_names
        .first()
        .cloned()
        .unwrap_or_else(|| cfg.service_name.clone());
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "palisade");
    params.distinguished_name = dn;
    let mut sans = Vec::new();
    for name in &cfg.dns_names {
        sans.push(SanType::DnsName(name.clone().try_into().map_err(generate)?));
    }
    sans.extend(cfg.ip_sans.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = offset(now - BACKDATE)?;
    let not_after = unix(now + cfg.cert_validity).min(ca_info.not_after);
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after)
        .map_err(|e| Error::Config(format!("validity end: {e}")))?;
    let cert = params.signed_by(&key, &issuer).map_err(generate)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The bundle a Secret written by this module publishes: `ca.crt`, then `ca-previous.crt`.
pub fn bundle(secret: &Secret) -> CaBundle {
    Stored::from_secret(secret).bundle()
}

/// Decide what to do with `existing` at `now`. See the module doc for the rotation steps.
pub fn plan(existing: Option<&Secret>, cfg: &CertConfig, now: SystemTime) -> Plan {
    let Some(secret) = existing else {
        return Plan::Create;
    };
    let stored = Stored::from_secret(secret);
    let now = unix(now);

    let ca = match stored.ca_crt.as_deref().map(parse_cert) {
        None => return invalid(format!("no {CA_CRT}")),
        Some(Err(e)) => return invalid(format!("{CA_CRT}: {e}")),
        Some(Ok(ca)) => ca,
    };
    if !ca.is_ca {
        return invalid(format!("{CA_CRT} is not a CA certificate"));
    }
    if ca.not_after <= now {
        return invalid(format!("the CA expired at {}", rfc3339(ca.not_after)));
    }
    let ca_key = match stored.ca_key.as_deref() {
        None => Err(format!("no {CA_KEY}")),
        Some(pem) => key_matches(pem, &ca).map_err(|e| format!("{CA_KEY}: {e}")),
    };
    let serving = check_serving(&stored);

    if let Some(previous) = stored.ca_previous_crt.as_deref() {
        let previous = match parse_cert(previous) {
            Ok(previous) => previous,
            Err(e) => {
                return Plan::DropPreviousCa {
                    reason: format!("{CA_PREVIOUS_CRT}: {e}"),
                };
            }
        };
        let by_previous = serving.as_ref().is_ok_and(|s| signed_by(s, &previous));
        let by_current = serving.as_ref().is_ok_and(|s| signed_by(s, &ca));
        if by_previous && ca_key.is_ok() {
            let Ok(serving) = &serving else {
                return Plan::Keep;
            };
            if serving.not_after <= now + secs(cfg.renew_before) {
                return Plan::SwitchServing {
                    reason: format!(
                        "the serving certificate expires at {}",
                        rfc3339(serving.not_after)
                    ),
                };
            }
            let bundle = stored.bundle();
            return match stored.published() {
                Some((fingerprint, since)) if fingerprint == bundle.fingerprint() => {
                    if now >= since + secs(cfg.publish_grace) {
                        Plan::SwitchServing {
                            reason: format!("both CAs published since {}", rfc3339(since)),
                        }
                    } else {
                        Plan::Keep
                    }
                }
                // Waiting for the caller to publish the two-CA bundle.
                _ => Plan::Keep,
            };
        }
        if by_current {
            if previous.not_after <= now {
                return Plan::DropPreviousCa {
                    reason: format!("it expired at {}", rfc3339(previous.not_after)),
                };
            }
            match stored.annotation_time(ANNOTATION_SERVING_SWITCHED_AT) {
                Some(at) if now < at + secs(cfg.drain_grace) => {}
                Some(at) => {
                    return Plan::DropPreviousCa {
                        reason: format!("the serving certificate switched at {}", rfc3339(at)),
                    };
                }
                None => {
                    return Plan::DropPreviousCa {
                        reason: "no switch time recorded".into(),
                    };
                }
            }
        } else if !by_previous && ca_key.is_ok() {
            return Plan::SwitchServing {
                reason: match &serving {
                    Err(e) => e.clone(),
                    Ok(_) => "the serving certificate is signed by neither CA".into(),
                },
            };
        }
    }

    if let Err(reason) = ca_key {
        return Plan::RotateCa { reason };
    }
    let life = ca.not_after - ca.not_before;
    let remaining = ca.not_after - now;
    if remaining < life / 3 || remaining < secs(cfg.renew_before) {
        return Plan::RotateCa {
            reason: format!("the CA expires at {}", rfc3339(ca.not_after)),
        };
    }
    if stored.ca_previous_crt.is_none()
        && let Some(request) = stored.annotations.get(ANNOTATION_ROTATE_REQUEST)
        && stored.annotations.get(ANNOTATION_ROTATE_DONE) != Some(request)
    {
        return Plan::RotateCa {
            reason: format!("requested ({ANNOTATION_ROTATE_REQUEST}={request})"),
        };
    }

    let serving = match serving {
        Ok(serving) => serving,
        Err(reason) => return Plan::RenewServing { reason },
    };
    if !signed_by(&serving, &ca) {
        return Plan::RenewServing {
            reason: "the serving certificate is not signed by the current CA".into(),
        };
    }
    let want_dns: BTreeSet<String> = cfg.dns_names.iter().cloned().collect();
    let want_ips: BTreeSet<IpAddr> = cfg.ip_sans.iter().copied().collect();
    if serving.dns != want_dns || serving.ips != want_ips {
        return Plan::RenewServing {
            reason: format!(
                "its names {:?} {:?} differ from the configured {:?} {:?}",
                serving.dns, serving.ips, want_dns, want_ips
            ),
        };
    }
    if serving.not_after <= now {
        return Plan::RenewServing {
            reason: format!("it expired at {}", rfc3339(serving.not_after)),
        };
    }
    if serving.not_after - now < secs(cfg.renew_before) {
        return Plan::RenewServing {
            reason: format!("it expires at {}", rfc3339(serving.not_after)),
        };
    }
    Plan::Keep
}

fn invalid(reason: String) -> Plan {
    Plan::Invalid { reason }
}

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
        (Plan::Keep, Some(secret)) if crate::owner::has(&secret.metadata, cfg.owner.as_ref()) => {
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

fn kube_error(cfg: &CertConfig, action: &'static str, source: kube::Error) -> Error {
    Error::Kube {
        action,
        namespace: cfg.namespace.clone(),
        name: cfg.secret_name.clone(),
        source: Box::new(source),
    }
}

/// The Secret's content as this module reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Stored {
    tls_crt: Option<String>,
    tls_key: Option<String>,
    ca_crt: Option<String>,
    ca_key: Option<String>,
    ca_previous_crt: Option<String>,
    /// Only the annotations this module owns.
    annotations: BTreeMap<String, String>,
}

const OWNED_ANNOTATIONS: [&str; 4] = [
    ANNOTATION_BUNDLE_PUBLISHED,
    ANNOTATION_SERVING_SWITCHED_AT,
    ANNOTATION_ROTATION_STARTED_AT,
    ANNOTATION_ROTATE_DONE,
];

impl Stored {
    fn from_secret(secret: &Secret) -> Stored {
        let get = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .or_else(|| {
                    secret
                        .string_data
                        .as_ref()
                        .and_then(|d| d.get(key))
                        .cloned()
                })
        };
        let annotations = secret
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| {
                OWNED_ANNOTATIONS.contains(&k.as_str()) || k == ANNOTATION_ROTATE_REQUEST
            })
            .collect();
        Stored {
            tls_crt: get(TLS_CRT),
            tls_key: get(TLS_KEY),
            ca_crt: get(CA_CRT),
            ca_key: get(CA_KEY),
            ca_previous_crt: get(CA_PREVIOUS_CRT),
            annotations,
        }
    }

    fn is_complete(&self) -> bool {
        self.tls_crt.is_some()
            && self.tls_key.is_some()
            && self.ca_crt.is_some()
            && self.ca_key.is_some()
    }

    fn bundle(&self) -> CaBundle {
        let mut pem = String::new();
        for part in [&self.ca_crt, &self.ca_previous_crt].into_iter().flatten() {
            pem.push_str(part.trim_end());
            pem.push('\n');
        }
        CaBundle { pem }
    }

    fn published(&self) -> Option<(String, i64)> {
        let value = self.annotations.get(ANNOTATION_BUNDLE_PUBLISHED)?;
        let (fingerprint, at) = value.split_once(' ')?;
        Some((fingerprint.to_string(), parse_time(at)?))
    }

    fn annotation_time(&self, key: &str) -> Option<i64> {
        parse_time(self.annotations.get(key)?)
    }

    fn ca(&self) -> Option<Issued> {
        Some(Issued {
            cert_pem: self.ca_crt.clone()?,
            key_pem: self.ca_key.clone()?,
        })
    }

    fn set_serving(&mut self, serving: Issued) {
        self.tls_crt = Some(serving.cert_pem);
        self.tls_key = Some(serving.key_pem);
    }

    fn to_secret(&self, cfg: &CertConfig) -> Secret {
        let mut data = BTreeMap::new();
        for (key, value) in [
            (TLS_CRT, &self.tls_crt),
            (TLS_KEY, &self.tls_key),
            (CA_CRT, &self.ca_crt),
            (CA_KEY, &self.ca_key),
            (CA_PREVIOUS_CRT, &self.ca_previous_crt),
        ] {
            if let Some(value) = value {
                data.insert(key.to_string(), ByteString(value.clone().into_bytes()));
            }
        }
        // The request annotation belongs to whoever set it; never claim it.
        let annotations: BTreeMap<String, String> = self
            .annotations
            .iter()
            .filter(|(k, _)| OWNED_ANNOTATIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Secret {
            metadata: ObjectMeta {
                name: Some(cfg.secret_name.clone()),
                namespace: Some(cfg.namespace.clone()),
                labels: Some(labels()),
                annotations: (!annotations.is_empty()).then_some(annotations),
                owner_references: crate::owner::references(cfg.owner.as_ref()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(data),
            ..Secret::default()
        }
    }
}

fn labels() -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "palisade"),
        ("app.kubernetes.io/part-of", "palisade"),
        ("app.kubernetes.io/managed-by", "palisade-operator"),
        ("app.kubernetes.io/component", "webhook-certificate"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The Secret content after `step`.
fn advance(
    mut stored: Stored,
    step: &Plan,
    cfg: &CertConfig,
    now: SystemTime,
) -> Result<Stored, Error> {
    let at = rfc3339(unix(now));
    match step {
        Plan::Keep => {}
        Plan::Create | Plan::Invalid { .. } => {
            let ca = issue_ca(cfg, now)?;
            let serving = issue_serving(cfg, &ca, now)?;
            let request = stored.annotations.get(ANNOTATION_ROTATE_REQUEST).cloned();
            stored = Stored {
                ca_crt: Some(ca.cert_pem),
                ca_key: Some(ca.key_pem),
                ..Stored::default()
            };
            stored.set_serving(serving);
            if let Some(request) = request {
                stored
                    .annotations
                    .insert(ANNOTATION_ROTATE_DONE.into(), request);
            }
        }
        Plan::RenewServing { .. } | Plan::SwitchServing { .. } => {
            let ca = stored
                .ca()
                .ok_or_else(|| Error::Config("no CA to sign with".into()))?;
            stored.set_serving(issue_serving(cfg, &ca, now)?);
            if matches!(step, Plan::SwitchServing { .. }) && stored.ca_previous_crt.is_some() {
                stored
                    .annotations
                    .insert(ANNOTATION_SERVING_SWITCHED_AT.into(), at);
            }
        }
        Plan::RotateCa { .. } => {
            // Keep in the bundle whichever CA signed the certificate being served.
            let serving = check_serving(&stored).ok();
            let signer_of_serving = [&stored.ca_crt, &stored.ca_previous_crt]
                .into_iter()
                .flatten()
                .find(|pem| match (&serving, parse_cert(pem)) {
                    (Some(s), Ok(ca)) => signed_by(s, &ca),
                    _ => false,
                })
                .cloned();
            let previous = signer_of_serving.or_else(|| stored.ca_crt.clone());
            let ca = issue_ca(cfg, now)?;
            stored.ca_crt = Some(ca.cert_pem);
            stored.ca_key = Some(ca.key_pem);
            stored.ca_previous_crt = previous;
            stored.annotations.remove(ANNOTATION_SERVING_SWITCHED_AT);
            stored
                .annotations
                .insert(ANNOTATION_ROTATION_STARTED_AT.into(), at);
            if let Some(request) = stored.annotations.get(ANNOTATION_ROTATE_REQUEST).cloned() {
                stored
                    .annotations
                    .insert(ANNOTATION_ROTATE_DONE.into(), request);
            }
        }
        Plan::DropPreviousCa { .. } => {
            stored.ca_previous_crt = None;
            stored.annotations.remove(ANNOTATION_SERVING_SWITCHED_AT);
            stored.annotations.remove(ANNOTATION_ROTATION_STARTED_AT);
        }
    }
    Ok(stored)
}

async fn write(api: &Api<Secret>, cfg: &CertConfig, stored: &Stored) -> Result<(), Error> {
    api.patch(
        &cfg.secret_name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(stored.to_secret(cfg)),
    )
    .await
    .map_err(|source| kube_error(cfg, "cannot apply", source))?;
    Ok(())
}

/// The facts about one certificate that [`plan`] needs.
#[derive(Clone, Debug)]
struct CertInfo {
    der: Vec<u8>,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    public_key: Vec<u8>,
    dns: BTreeSet<String>,
    ips: BTreeSet<IpAddr>,
}

/// The first certificate of a PEM text.
fn parse_cert(pem: &str) -> Result<CertInfo, String> {
    parse_all(pem)
        .into_iter()
        .next()
        .ok_or_else(|| "no PEM certificate".to_string())?
}

fn parse_all(pem: &str) -> Vec<Result<CertInfo, String>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|block| {
            let block = block.map_err(|e| format!("bad PEM: {e}"))?;
            if block.label != "CERTIFICATE" {
                return Err(format!("PEM block {:?} is not a certificate", block.label));
            }
            let cert = block
                .parse_x509()
                .map_err(|e| format!("bad certificate: {e}"))?;
            Ok(info(&cert, &block.contents))
        })
        .collect()
}

fn info(cert: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => {
                    dns.insert((*n).to_string());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    CertInfo {
        der: der.to_vec(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        dns,
        ips,
    }
}

/// Whether `cert` carries `issuer`'s name as issuer and `issuer`'s key signed it.
fn signed_by(cert: &CertInfo, issuer: &CertInfo) -> bool {
    let (Ok((_, child)), Ok((_, parent))) = (
        X509Certificate::from_der(&cert.der),
        X509Certificate::from_der(&issuer.der),
    ) else {
        return false;
    };
    child.issuer().as_raw() == parent.subject().as_raw()
        && child.verify_signature(Some(parent.public_key())).is_ok()
}

fn key_matches(key_pem: &str, cert: &CertInfo) -> Result<(), String> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("bad private key: {e}"))?;
    if rcgen::PublicKeyData::der_bytes(&key) != cert.public_key.as_slice() {
        return Err("the key does not belong to the certificate".into());
    }
    Ok(())
}

/// The serving certificate, parsed, with its key checked.
fn check_serving(stored: &Stored) -> Result<CertInfo, String> {
    let crt = stored
        .tls_crt
        .as_deref()
        .ok_or_else(|| format!("no {TLS_CRT}"))?;
    let cert = parse_cert(crt).map_err(|e| format!("{TLS_CRT}: {e}"))?;
    let key = stored
        .tls_key
        .as_deref()
        .ok_or_else(|| format!("no {TLS_KEY}"))?;
    key_matches(key, &cert).map_err(|e| format!("{TLS_KEY}: {e}"))?;
    Ok(cert)
}

/// Write `tls.crt`, `tls.key`, `ca.crt` the way the kubelet fills a Secret volume: files in a
/// fresh `..<time>` directory, the `..data` symlink swapped to it by rename, and top-level
/// symlinks through `..data`. A reader sees the old set or the new set, never a mix of files.
/// Returns whether anything changed.
pub async fn write_cert_dir(
    dir: &Path,
    tls_crt: &str,
    tls_key: &str,
    ca_crt: &str,
) -> Result<bool, Error> {
    let dir = dir.to_path_buf();
    let files = [
        (TLS_CRT, tls_crt.to_string()),
        (TLS_KEY, tls_key.to_string()),
        (CA_CRT, ca_crt.to_string()),
    ];
    tokio::task::spawn_blocking(move || write_cert_dir_blocking(&dir, &files))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::new(),
            source: io::Error::other(e),
        })?
}

async fn mirror(dir: &Path, stored: &Stored) -> Result<(), Error> {
    let (Some(crt), Some(key), Some(ca)) = (&stored.tls_crt, &stored.tls_key, &stored.ca_crt)
    else {
        return Ok(());
    };
    if write_cert_dir(dir, crt, key, ca).await? {
        info!(dir = %dir.display(), "webhook certificate files updated");
    }
    Ok(())
}

fn write_cert_dir_blocking(dir: &Path, files: &[(&str, String)]) -> Result<bool, Error> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let unchanged = files.iter().all(|(name, content)| {
        std::fs::read(dir.join(name)).is_ok_and(|c| c == content.as_bytes())
    });
    if unchanged {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let version = format!("..{nanos}");
    let version_dir = dir.join(&version);
    std::fs::create_dir(&version_dir).map_err(io_err(&version_dir))?;
    for (name, content) in files {
        let path = version_dir.join(name);
        std::fs::write(&path, content).map_err(io_err(&path))?;
        // Keys stay private; the webhook runs as the same user.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(&path))?;
    }
    let data_tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&data_tmp);
    symlink(&version, &data_tmp).map_err(io_err(&data_tmp))?;
    let data = dir.join("..data");
    std::fs::rename(&data_tmp, &data).map_err(io_err(&data))?;
    for (name, _) in files {
        let link = dir.join(name);
        let target = Path::new("..data").join(name);
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        symlink(&target, &tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io_err(&link))?;
    }
    // Old versions are unreachable now; a reader holding one open keeps its file.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("..")
                && name != version
                && name != "..data"
                && entry.path().is_dir()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(true)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn offset(t: SystemTime) -> Result<time::OffsetDateTime, Error> {
    time::OffsetDateTime::from_unix_timestamp(unix(t))
        .map_err(|e| Error::Config(format!("time out of range: {e}")))
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(CaBundle::from_pem("").fingerprint(), "cbf29ce484222325");
        assert_ne!(
            CaBundle::from_pem("a").fingerprint(),
            CaBundle::from_pem("b").fingerprint()
        );
    }
}
