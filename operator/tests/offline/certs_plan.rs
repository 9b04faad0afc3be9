//! `certs::plan` over Secrets in every state, and what `issue_*` produces.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use palisade_operator::certs::{
    self, ANNOTATION_BUNDLE_PUBLISHED, ANNOTATION_ROTATE_DONE, ANNOTATION_ROTATE_REQUEST,
    ANNOTATION_SERVING_SWITCHED_AT, CA_CRT, CA_KEY, CA_PREVIOUS_CRT, CertConfig, Issued, Plan,
    TLS_CRT, TLS_KEY,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn cfg() -> CertConfig {
    let mut cfg = CertConfig::new("palisade-system", "palisade-webhook");
    cfg.ip_sans = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    cfg
}

fn now() -> SystemTime {
    // A fixed instant keeps the tables readable; certificates are issued relative to it.
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn ca_at(issued: SystemTime) -> Issued {
    certs::issue_ca(&cfg(), issued).expect("CA")
}

fn serving_at(cfg: &CertConfig, ca: &Issued, issued: SystemTime) -> Issued {
    certs::issue_serving(cfg, ca, issued).expect("serving certificate")
}

#[derive(Default, Clone)]
struct Parts {
    tls_crt: Option<String>,
    tls_key: Option<String>,
    ca_crt: Option<String>,
    ca_key: Option<String>,
    ca_previous: Option<String>,
    annotations: BTreeMap<String, String>,
}

impl Parts {
    fn new(ca: &Issued, serving: &Issued) -> Parts {
        Parts {
            tls_crt: Some(serving.cert_pem.clone()),
            tls_key: Some(serving.key_pem.clone()),
            ca_crt: Some(ca.cert_pem.clone()),
            ca_key: Some(ca.key_pem.clone()),
            ..Parts::default()
        }
    }

    fn secret(&self) -> Secret {
        let mut data = BTreeMap::new();
        for (k, v) in [
            (TLS_CRT, &self.tls_crt),
            (TLS_KEY, &self.tls_key),
            (CA_CRT, &self.ca_crt),
            (CA_KEY, &self.ca_key),
            (CA_PREVIOUS_CRT, &self.ca_previous),
        ] {
            if let Some(v) = v {
                data.insert(k.to_string(), ByteString(v.clone().into_bytes()));
            }
        }
        let mut secret = Secret {
            data: Some(data),
            type_: Some("kubernetes.io/tls".into()),
            ..Secret::default()
        };
        secret.metadata.annotations = Some(self.annotations.clone());
        secret
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
    block.contents
}

fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).expect("time").to_string()
}

#[derive(Debug, PartialEq)]
enum Want {
    Keep,
    Create,
    RenewServing,
    RotateCa,
    SwitchServing,
    DropPreviousCa,
    Invalid,
}

fn kind(plan: &Plan) -> Want {
    match plan {
        Plan::Keep => Want::Keep,
        Plan::Create => Want::Create,
        Plan::RenewServing { .. } => Want::RenewServing,
        Plan::RotateCa { .. } => Want::RotateCa,
        Plan::SwitchServing { .. } => Want::SwitchServing,
        Plan::DropPreviousCa { .. } => Want::DropPreviousCa,
        Plan::Invalid { .. } => Want::Invalid,
    }
}

#[test]
fn plan_table() {
    let cfg = cfg();
    let t = now();
    let ca = ca_at(t - 10 * DAY);
    let serving = serving_at(&cfg, &ca, t - DAY);
    let good = Parts::new(&ca, &serving);

    let other_ca = ca_at(t - 10 * DAY);
    let other_serving = serving_at(&cfg, &other_ca, t - DAY);

    let mut wrong_names = cfg.clone();
    wrong_names.dns_names.push("extra.example.com".into());
    let wrong_names_serving = serving_at(&wrong_names, &ca, t - DAY);

    let old_ca = ca_at(t - 250 * DAY);
    let ca100 = ca_at(t - 100 * DAY);
    let expired_ca = ca_at(t - 400 * DAY);

    // A rotation in progress: new CA current, old CA previous, serving still from the old one.
    let new_ca = ca_at(t - DAY);
    let rotating = |serving: &Issued| Parts {
        ca_crt: Some(new_ca.cert_pem.clone()),
        ca_key: Some(new_ca.key_pem.clone()),
        ca_previous: Some(ca.cert_pem.clone()),
        ..Parts::new(&new_ca, serving)
    };
    let publishing = rotating(&serving);
    let two_ca_bundle = certs::bundle(&publishing.secret());
    assert_eq!(two_ca_bundle.len(), 2);
    let published = |parts: &Parts, fingerprint: &str, at: SystemTime| {
        let mut parts = parts.clone();
        parts.annotations.insert(
            ANNOTATION_BUNDLE_PUBLISHED.into(),
            format!("{fingerprint} {}", rfc3339(at)),
        );
        parts
    };
    let switched_serving = serving_at(&cfg, &new_ca, t - DAY);
    let draining = |switched: SystemTime| {
        let mut parts = rotating(&switched_serving);
        parts
            .annotations
            .insert(ANNOTATION_SERVING_SWITCHED_AT.into(), rfc3339(switched));
        parts
    };
    let with_annotations = |pairs: &[(&str, &str)]| {
        let mut parts = good.clone();
        for (k, v) in pairs {
            parts.annotations.insert(k.to_string(), v.to_string());
        }
        parts
    };

    let cases: Vec<(&str, Option<Parts>, Want)> = vec![
        ("no Secret", None, Want::Create),
        ("fresh", Some(good.clone()), Want::Keep),
        (
            "serving expires in 20 days",
            Some(Parts::new(&ca, &serving_at(&cfg, &ca, t - 70 * DAY))),
            Want::RenewServing,
        ),
        (
            "serving expires in 31 days",
            Some(Parts::new(&ca, &serving_at(&cfg, &ca, t - 59 * DAY))),
            Want::Keep,
        ),
        (
            "serving expired",
            Some(Parts::new(&ca100, &serving_at(&cfg, &ca100, t - 95 * DAY))),
            Want::RenewServing,
        ),
        (
            "wrong SANs",
            Some(Parts::new(&ca, &wrong_names_serving)),
            Want::RenewServing,
        ),
        (
            "serving signed by another CA",
            Some(Parts::new(&ca, &other_serving)),
            Want::RenewServing,
        ),
        (
            "garbage tls.crt",
            Some(Parts {
                tls_crt: Some(
                    "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into(),
                ),
                ..good.clone()
            }),
            Want::RenewServing,
        ),
        (
            "tls.key of another certificate",
            Some(Parts {
                tls_key: Some(other_serving.key_pem.clone()),
                ..good.clone()
            }),
            Want::RenewServing,
        ),
        (
            "no tls.key",
            Some(Parts {
                tls_key: None,
                ..good.clone()
            }),
            Want::RenewServing,
        ),
        (
            "no tls.crt",
            Some(Parts {
                tls_crt: None,
                ..good.clone()
            }),
            Want::RenewServing,
        ),
        (
            "garbage ca.crt",
            Some(Parts {
                ca_crt: Some("hello".into()),
                ..good.clone()
            }),
            Want::Invalid,
        ),
        (
            "no ca.crt",
            Some(Parts {
                ca_crt: None,
                ..good.clone()
            }),
            Want::Invalid,
        ),
        (
            "ca.crt is a leaf",
            Some(Parts {
                ca_crt: Some(serving.cert_pem.clone()),
                ..good.clone()
            }),
            Want::Invalid,
        ),
        ("empty Secret", Some(Parts::default()), Want::Invalid),
        (
            "ca.key of another CA",
            Some(Parts {
                ca_key: Some(other_ca.key_pem.clone()),
                ..good.clone()
            }),
            Want::RotateCa,
        ),
        (
            "no ca.key",
            Some(Parts {
                ca_key: None,
                ..good.clone()
            }),
            Want::RotateCa,
        ),
        (
            "CA with less than a third of its life left",
            Some(Parts::new(&old_ca, &serving_at(&cfg, &old_ca, t - DAY))),
            Want::RotateCa,
        ),
        (
            "CA expired",
            Some(Parts::new(&expired_ca, &serving)),
            Want::Invalid,
        ),
        (
            "rotation requested",
            Some(with_annotations(&[(ANNOTATION_ROTATE_REQUEST, "1")])),
            Want::RotateCa,
        ),
        (
            "rotation request already done",
            Some(with_annotations(&[
                (ANNOTATION_ROTATE_REQUEST, "1"),
                (ANNOTATION_ROTATE_DONE, "1"),
            ])),
            Want::Keep,
        ),
        (
            "rotating, two-CA bundle not yet published",
            Some(publishing.clone()),
            Want::Keep,
        ),
        (
            "rotating, another bundle published",
            Some(published(
                &publishing,
                "0000000000000000",
                t - 3600 * Duration::from_secs(1),
            )),
            Want::Keep,
        ),
        (
            "rotating, published 10 s ago (grace 30 s)",
            Some(published(
                &publishing,
                &two_ca_bundle.fingerprint(),
                t - Duration::from_secs(10),
            )),
            Want::Keep,
        ),
        (
            "rotating, published a minute ago",
            Some(published(
                &publishing,
                &two_ca_bundle.fingerprint(),
                t - Duration::from_secs(60),
            )),
            Want::SwitchServing,
        ),
        (
            "rotating, old serving certificate about to expire",
            Some(rotating(&serving_at(&cfg, &ca, t - 80 * DAY))),
            Want::SwitchServing,
        ),
        (
            "rotating, serving certificate broken",
            Some(Parts {
                tls_crt: None,
                ..publishing.clone()
            }),
            Want::SwitchServing,
        ),
        (
            "switched a minute ago (drain 10 min)",
            Some(draining(t - Duration::from_secs(60))),
            Want::Keep,
        ),
        (
            "switched an hour ago",
            Some(draining(t - Duration::from_secs(3600))),
            Want::DropPreviousCa,
        ),
        (
            "switched, no time recorded",
            Some(rotating(&switched_serving)),
            Want::DropPreviousCa,
        ),
        (
            "garbage ca-previous.crt",
            Some(Parts {
                ca_previous: Some("junk".into()),
                ..good.clone()
            }),
            Want::DropPreviousCa,
        ),
    ];

    let mut failures = Vec::new();
    for (name, parts, want) in cases {
        let secret = parts.map(|p| p.secret());
        let got = certs::plan(secret.as_ref(), &cfg, t);
        if kind(&got) != want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn plan_reasons_name_the_problem() {
    let cfg = cfg();
    let t = now();
    let ca = ca_at(t - 10 * DAY);
    let expiring = Parts::new(&ca, &serving_at(&cfg, &ca, t - 70 * DAY));
    match certs::plan(Some(&expiring.secret()), &cfg, t) {
        Plan::RenewServing { reason } => assert!(reason.contains("expires at"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mismatched = Parts {
        tls_key: Some(serving_at(&cfg, &ca, t).key_pem),
        ..Parts::new(&ca, &serving_at(&cfg, &ca, t))
    };
    match certs::plan(Some(&mismatched.secret()), &cfg, t) {
        Plan::RenewServing { reason } => {
            assert!(reason.contains("does not belong"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn issued_ca_is_a_v3_ca() {
    let ca = ca_at(now());
    let der = der_of(&ca.cert_pem);
    let (_, cert) = X509Certificate::from_der(&der).expect("DER");
    assert_eq!(cert.version(), X509Version::V3);
    let bc = cert
        .basic_constraints()
        .expect("extension")
        .expect("basicConstraints");
    assert!(bc.value.ca);
    let ku = cert.key_usage().expect("extension").expect("keyUsage");
    assert!(ku.value.key_cert_sign());
    let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    // One year plus the backdating.
    assert!((365 * 86400..366 * 86400).contains(&life), "{life}");
}

#[test]
fn issued_serving_certificate_is_accepted_by_a_tls_client() {
    let cfg = cfg();
    let t = SystemTime::now();
    let ca = ca_at(t);
    let serving = serving_at(&cfg, &ca, t);

    let der = der_of(&serving.cert_pem);
    let (_, cert) = X509Certificate::from_der(&der).expect("DER");
    assert_eq!(cert.version(), X509Version::V3);
    let eku = cert
        .extended_key_usage()
        .expect("extension")
        .expect("extendedKeyUsage");
    assert!(eku.value.server_auth);
    let bc = cert.basic_constraints().expect("extension");
    assert!(bc.is_none_or(|bc| !bc.value.ca));
    let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!((90 * 86400..91 * 86400).contains(&life), "{life}");

    // The same checks a TLS client makes: chain to the CA, name, usage, validity.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).expect("CA PEM"))
        .expect("root");
    let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
        .build()
        .expect("verifier");
    let leaf = CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).expect("leaf PEM");
    for name in [
        "palisade-webhook.palisade-system.svc",
        "palisade-webhook.palisade-system.svc.cluster.local",
        "127.0.0.1",
    ] {
        let server_name = ServerName::try_from(name).expect("name");
        verifier
            .verify_server_cert(&leaf, &[], &server_name, &[], UnixTime::now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = ServerName::try_from("evil.example.com").expect("name");
    assert!(
        verifier
            .verify_server_cert(&leaf, &[], &wrong, &[], UnixTime::now())
            .is_err()
    );
}

#[test]
fn serving_certificate_never_outlives_its_ca() {
    let cfg = cfg();
    let t = now();
    let ca = ca_at(t - 360 * DAY);
    let serving = serving_at(&cfg, &ca, t);
    let parse = |pem: &str| {
        let der = der_of(pem);
        let (_, cert) = X509Certificate::from_der(&der).expect("DER");
        cert.validity().not_after.timestamp()
    };
    assert_eq!(parse(&serving.cert_pem), parse(&ca.cert_pem));
}

#[tokio::test]
async fn cert_dir_has_the_secret_volume_layout() {
    let dir = std::env::temp_dir().join(format!(
        "palisade-certdir-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let changed = certs::write_cert_dir(&dir, "crt1", "key1", "ca1")
        .await
        .expect("write");
    assert!(changed);
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.crt")).expect("read"),
        "crt1"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.key")).expect("read"),
        "key1"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ca.crt")).expect("read"),
        "ca1"
    );
    assert_eq!(
        std::fs::read_link(dir.join("tls.crt")).expect("symlink"),
        std::path::Path::new("..data/tls.crt")
    );
    let first = std::fs::read_link(dir.join("..data")).expect("..data");

    assert!(
        !certs::write_cert_dir(&dir, "crt1", "key1", "ca1")
            .await
            .expect("write")
    );
    assert!(
        certs::write_cert_dir(&dir, "crt2", "key2", "ca2")
            .await
            .expect("write")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.key")).expect("read"),
        "key2"
    );
    let second = std::fs::read_link(dir.join("..data")).expect("..data");
    assert_ne!(first, second);
    // The old version is gone; only the new one, ..data and the three links remain.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
