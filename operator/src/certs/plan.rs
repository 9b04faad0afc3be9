//! What to do with the certificate Secret, as pure functions of its content and the clock:
//! the [`Plan`], and the Secret's content after each step.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::config::CertConfig;
use super::error::Error;
use super::x509::{
    CertInfo, Issued, issue_ca, issue_serving, key_matches, parse_all, parse_cert, parse_time,
    rfc3339, secs, signed_by, unix,
};

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

/// What [`ensure`](crate::certs::ensure()) should do with the Secret.
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

/// The Secret's content as this module reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stored {
    pub(super) tls_crt: Option<String>,
    pub(super) tls_key: Option<String>,
    pub(super) ca_crt: Option<String>,
    pub(super) ca_key: Option<String>,
    pub(super) ca_previous_crt: Option<String>,
    /// Only the annotations this module owns.
    pub(super) annotations: BTreeMap<String, String>,
}

const OWNED_ANNOTATIONS: [&str; 4] = [
    ANNOTATION_BUNDLE_PUBLISHED,
    ANNOTATION_SERVING_SWITCHED_AT,
    ANNOTATION_ROTATION_STARTED_AT,
    ANNOTATION_ROTATE_DONE,
];

impl Stored {
    pub(super) fn from_secret(secret: &Secret) -> Stored {
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

    pub(super) fn is_complete(&self) -> bool {
        self.tls_crt.is_some()
            && self.tls_key.is_some()
            && self.ca_crt.is_some()
            && self.ca_key.is_some()
    }

    pub(super) fn bundle(&self) -> CaBundle {
        let mut pem = String::new();
        for part in [&self.ca_crt, &self.ca_previous_crt].into_iter().flatten() {
            pem.push_str(part.trim_end());
            pem.push('\n');
        }
        CaBundle { pem }
    }

    pub(super) fn published(&self) -> Option<(String, i64)> {
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

    pub(super) fn to_secret(&self, cfg: &CertConfig) -> Secret {
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
                owner_references: super::owner::references(cfg.owner.as_ref()),
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
pub(super) fn advance(
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
