//! Everything the webhook library can fail at.
//!
//! `Display` says what was being done; the cause stays reachable through `source()`.
//! [`report`] renders the whole chain on one line for logs and start-up failures.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// An error of the webhook library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A policy file that cannot be parsed or put in force; the source names the document
    /// and the field.
    #[error("policy file {}", path.display())]
    PolicyFile {
        path: PathBuf,
        #[source]
        source: palisade_policy::Error,
    },

    #[error(
        "policy file {}: SecurityPolicy {name:?} is already defined in {}",
        path.display(),
        first.display()
    )]
    DuplicatePolicy {
        name: String,
        path: PathBuf,
        first: PathBuf,
    },

    #[error("TLS certificate {} and key {}", cert.display(), key.display())]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: TlsError,
    },

    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    #[error("the {name} server failed")]
    Serve {
        name: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the certificate file holds no PEM CERTIFICATE block")]
    NoCertificate,

    #[error("the certificate file is not valid PEM")]
    CertificatePem(#[source] rustls::pki_types::pem::Error),

    #[error("the key file is not a PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    Key(#[source] rustls::pki_types::pem::Error),

    #[error("the certificate and key are not a usable pair")]
    Config(#[source] rustls::Error),

    #[error("the certificate is not a valid X.509 certificate")]
    Certificate(#[source] x509_parser::error::X509Error),
}

pub use palisade_process::report;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_skips_causes_already_shown() {
        let inner = serde_json::from_str::<u8>("x").expect_err("not a number");
        let inner_text = inner.to_string();
        let policy = palisade_policy::Error::Schema {
            index: Some(1),
            name: Some("p".into()),
            field: "spec.mode".into(),
            source: inner,
        };
        let err = Error::PolicyFile {
            path: "/etc/p.yaml".into(),
            source: policy,
        };
        let text = report(&err);
        assert!(
            text.starts_with(
                "policy file /etc/p.yaml: document 1 (SecurityPolicy p): field spec.mode: "
            ),
            "{text}"
        );
        assert_eq!(text.matches(&inner_text).count(), 1, "{text}");
    }
}
