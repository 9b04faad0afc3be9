//! The serving certificate: loaded from PEM files and reloaded when their content changes.
//!
//! Kubernetes updates a mounted Secret by swapping the `..data` symlink, so the files are
//! re-read by path and compared by content; inode watches would miss the swap. A new
//! configuration only affects new handshakes: open connections keep theirs, so nothing is
//! dropped across a rotation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{info, warn};

use crate::error::{Error, TlsError};
use crate::metrics::Metrics;

/// Select the process-wide rustls crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Paths of the serving certificate (chain first) and its private key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Build a server configuration from PEM, checking that the key belongs to the certificate.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, TlsError> {
    install_crypto_provider();
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::CertificatePem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::Key)?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    // The API server may speak either.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// notAfter of the first certificate of the chain (the one served), as Unix seconds.
pub fn not_after(cert_pem: &[u8]) -> Result<i64, TlsError> {
    let first = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .ok_or(TlsError::NoCertificate)?
        .map_err(TlsError::CertificatePem)?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&first).map_err(|e| TlsError::Certificate(e.into()))?;
    Ok(cert.validity().not_after.timestamp())
}

/// Export the certificate's notAfter; a certificate rustls serves but x509-parser cannot read
/// only costs the metric, which keeps its previous value.
fn export_expiry(metrics: &Metrics, files: &TlsFiles, cert_pem: &[u8]) {
    match not_after(cert_pem) {
        Ok(at) => metrics.set_certificate_expiry(at),
        Err(source) => {
            let e = Error::Tls {
                cert: files.cert.clone(),
                key: files.key.clone(),
                source,
            };
            warn!(error = %crate::error::report(&e), "cannot read the serving certificate's expiry for the metric");
        }
    }
}

/// Keeps the served configuration in step with the files.
#[derive(Debug)]
pub struct Reloader {
    files: TlsFiles,
    config: RustlsConfig,
    /// The content last tried, good or bad, so a bad pair is reported once, not every poll.
    seen: (Vec<u8>, Vec<u8>),
    metrics: Arc<Metrics>,
}

/// What one poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    Unchanged,
    Reloaded,
    /// The files changed but cannot be served; the previous pair stays in use.
    Rejected,
}

impl Reloader {
    /// Load the pair once; failing here stops start-up.
    pub async fn load(files: TlsFiles, metrics: Arc<Metrics>) -> Result<Reloader, Error> {
        let (cert, key) = read_pair(&files).await?;
        let config = server_config(&cert, &key).map_err(|source| Error::Tls {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
        info!(cert = %files.cert.display(), "serving certificate loaded");
        export_expiry(&metrics, &files, &cert);
        Ok(Reloader {
            config: RustlsConfig::from_config(Arc::new(config)),
            files,
            seen: (cert, key),
            metrics,
        })
    }

    /// The configuration the server accepts connections with; reloads show through it.
    pub fn config(&self) -> RustlsConfig {
        self.config.clone()
    }

    /// Re-read the files and swap the configuration if they changed and make a good pair.
    pub async fn poll(&mut self) -> Poll {
        let (cert, key) = match read_pair(&self.files).await {
            Ok(pair) => pair,
            Err(e) => {
                // Possibly mid-update by hand; the next poll will tell.
                warn!(error = %crate::error::report(&e), "cannot re-read the serving certificate; keeping the current one");
                return Poll::Unchanged;
            }
        };
        if (&cert, &key) == (&self.seen.0, &self.seen.1) {
            return Poll::Unchanged;
        }
        // Two reads are not atomic: a `..data` swap between them gives a torn pair. Reading
        // the certificate again tells; the next poll then sees the new version whole.
        match read(&self.files.cert).await {
            Ok(again) if again == cert => {}
            _ => return Poll::Unchanged,
        }
        let result = server_config(&cert, &key);
        self.seen = (cert, key);
        match result {
            Ok(config) => {
                self.config.reload_from_config(Arc::new(config));
                self.metrics.tls_reload(true);
                export_expiry(&self.metrics, &self.files, &self.seen.0);
                info!(cert = %self.files.cert.display(), "serving certificate reloaded");
                Poll::Reloaded
            }
            Err(source) => {
                self.metrics.tls_reload(false);
                let e = Error::Tls {
                    cert: self.files.cert.clone(),
                    key: self.files.key.clone(),
                    source,
                };
                warn!(error = %crate::error::report(&e), "new serving certificate rejected; keeping the current one");
                Poll::Rejected
            }
        }
    }

    /// Poll forever at `interval`.
    pub async fn run(mut self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            self.poll().await;
        }
    }
}

async fn read_pair(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), Error> {
    Ok((read(&files.cert).await?, read(&files.key).await?))
}

async fn read(path: &Path) -> Result<Vec<u8>, Error> {
    tokio::fs::read(path).await.map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, date_time_ymd};

    /// A self-signed certificate for localhost valid until midnight UTC of the given day:
    /// (cert PEM, key PEM).
    fn pair(year: i32, month: u8, day: u8) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.not_after = date_time_ymd(year, month, day);
        let cert = params.self_signed(&key).expect("self-signed");
        (cert.pem(), key.serialize_pem())
    }

    fn expiry_metric(metrics: &Metrics) -> String {
        let text = metrics.encode().expect("encodes");
        text.lines()
            .find_map(|l| l.strip_prefix("palisade_webhook_certificate_expiry_timestamp_seconds "))
            .unwrap_or_else(|| panic!("no expiry sample in\n{text}"))
            .to_owned()
    }

    #[test]
    fn not_after_is_the_served_certificates_not_the_chains_later_ones() {
        let (leaf, _) = pair(2031, 3, 1);
        let (ca, _) = pair(2040, 1, 1);
        let chain = format!("{leaf}{ca}");
        // 2031-03-01T00:00:00Z
        assert_eq!(not_after(chain.as_bytes()).expect("parses"), 1_930_089_600);
        assert!(matches!(not_after(b""), Err(TlsError::NoCertificate)));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            not_after(garbage.as_bytes()),
            Err(TlsError::Certificate(_))
        ));
    }

    #[tokio::test]
    async fn the_expiry_metric_follows_every_reload_and_ignores_rejected_pairs() {
        let dir = std::env::temp_dir().join(format!("palisade-tls-expiry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let files = TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        let write = |(cert, key): &(String, String)| {
            std::fs::write(&files.cert, cert).expect("write cert");
            std::fs::write(&files.key, key).expect("write key");
        };
        let metrics = Arc::new(Metrics::new());
        write(&pair(2030, 1, 1));
        let mut reloader = Reloader::load(files.clone(), metrics.clone())
            .await
            .expect("loads");
        assert_eq!(expiry_metric(&metrics), "1893456000");

        write(&pair(2030, 4, 1));
        assert_eq!(reloader.poll().await, Poll::Reloaded);
        assert_eq!(expiry_metric(&metrics), "1901232000");

        // A certificate whose key is another's is not served, so its expiry is not shown.
        let (cert, _) = pair(2035, 1, 1);
        let (_, other_key) = pair(2035, 1, 1);
        write(&(cert, other_key));
        assert_eq!(reloader.poll().await, Poll::Rejected);
        assert_eq!(expiry_metric(&metrics), "1901232000");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
