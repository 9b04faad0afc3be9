//! What the certificates are for and how long they live.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::error::Error;

const DAY: Duration = Duration::from_secs(24 * 3600);

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
    /// How often [`run`](crate::certs::run()) re-checks without a Secret event.
    pub resync: Duration,
    /// The owner of the Secret (see [`crate::certs::owner`]); never set on an external Secret.
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

    pub(super) fn validate(&self) -> Result<(), Error> {
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
