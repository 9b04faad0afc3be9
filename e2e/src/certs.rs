//! Certificates for the webhook: a CA and serving certificates for 127.0.0.1, written in the
//! layout of a mounted Kubernetes Secret (`tls.crt -> ..data/tls.crt`, `..data ->
//! ..<version>/`), so a rotation is one atomic rename of the `..data` symlink — the layout
//! the webhook's reloader is built for.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority (X.509 v3, as every certificate rcgen makes).
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    pub fn new(name: &str) -> Result<Ca, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A serving certificate with SANs `IP:127.0.0.1` and `DNS:localhost`: (cert PEM, key PEM).
    pub fn serving_pair(&self, common_name: &str) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        // rcgen turns "127.0.0.1" into an IP SAN; the API server checks the IP.
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A directory laid out like a mounted Secret holding `tls.crt` and `tls.key`.
#[derive(Debug)]
pub struct SecretDir {
    dir: PathBuf,
}

static VERSION: AtomicU64 = AtomicU64::new(0);

impl SecretDir {
    pub fn create(dir: &Path, cert_pem: &str, key_pem: &str) -> io::Result<SecretDir> {
        std::fs::create_dir_all(dir)?;
        let secret = SecretDir {
            dir: dir.to_owned(),
        };
        secret.swap(cert_pem, key_pem)?;
        for name in ["tls.crt", "tls.key"] {
            let link = dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link)?;
            }
        }
        Ok(secret)
    }

    pub fn cert_file(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    /// Publish a new pair the way the kubelet updates a Secret volume: write a new version
    /// dir, point a temporary symlink at it, rename that over `..data`, remove the old dir.
    pub fn swap(&self, cert_pem: &str, key_pem: &str) -> io::Result<()> {
        let n = VERSION.fetch_add(1, Ordering::Relaxed);
        let version = format!("..{}_{n}", std::process::id());
        let vdir = self.dir.join(&version);
        std::fs::create_dir_all(&vdir)?;
        std::fs::write(vdir.join("tls.crt"), cert_pem)?;
        std::fs::write(vdir.join("tls.key"), key_pem)?;
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&version, &tmp)?;
        std::fs::rename(&tmp, self.dir.join("..data"))?;
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
        Ok(())
    }
}
