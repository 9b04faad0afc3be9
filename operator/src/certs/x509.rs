//! Issuing and reading X.509 certificates, as pure functions: a CA, a serving certificate
//! signed by it, and the facts the plan is decided by.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::config::CertConfig;
use super::error::Error;

/// Certificates start a little in the past so that a clock behind ours accepts them.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

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

/// The facts about one certificate that [`plan`] needs.
#[derive(Clone, Debug)]
pub(super) struct CertInfo {
    pub(super) der: Vec<u8>,
    pub(super) not_before: i64,
    pub(super) not_after: i64,
    pub(super) is_ca: bool,
    pub(super) public_key: Vec<u8>,
    pub(super) dns: BTreeSet<String>,
    pub(super) ips: BTreeSet<IpAddr>,
}

/// The first certificate of a PEM text.
pub(super) fn parse_cert(pem: &str) -> Result<CertInfo, String> {
    parse_all(pem)
        .into_iter()
        .next()
        .ok_or_else(|| "no PEM certificate".to_string())?
}

pub(super) fn parse_all(pem: &str) -> Vec<Result<CertInfo, String>> {
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

pub(super) fn info(cert: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
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
pub(super) fn signed_by(cert: &CertInfo, issuer: &CertInfo) -> bool {
    let (Ok((_, child)), Ok((_, parent))) = (
        X509Certificate::from_der(&cert.der),
        X509Certificate::from_der(&issuer.der),
    ) else {
        return false;
    };
    child.issuer().as_raw() == parent.subject().as_raw()
        && child.verify_signature(Some(parent.public_key())).is_ok()
}

pub(super) fn key_matches(key_pem: &str, cert: &CertInfo) -> Result<(), String> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("bad private key: {e}"))?;
    if rcgen::PublicKeyData::der_bytes(&key) != cert.public_key.as_slice() {
        return Err("the key does not belong to the certificate".into());
    }
    Ok(())
}

pub(super) fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub(super) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn offset(t: SystemTime) -> Result<time::OffsetDateTime, Error> {
    time::OffsetDateTime::from_unix_timestamp(unix(t))
        .map_err(|e| Error::Config(format!("time out of range: {e}")))
}

pub(super) fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

pub(super) fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}
