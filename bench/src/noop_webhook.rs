//! `noop-webhook`: a validating admission webhook that admits every review at once, over TLS
//! on loopback. It does the least any webhook must (read the review, echo its uid, say
//! allowed), so the API server's cost of calling a webhook shows on its own:
//! `hack/bench-admission.sh` measures it beside Palisade as the floor, on loopback and in a
//! pod behind a Service as Palisade's chart runs.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use axum::Json;
use axum::routing::post;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "noop-webhook")]
struct Args {
    /// Address to serve HTTPS on (POST /validate).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,

    /// Make a self-signed certificate for the address's IP and write it here (PEM), for
    /// the registration's caBundle. Exclusive with --tls-cert-file.
    #[arg(
        long,
        conflicts_with = "tls_cert_file",
        required_unless_present = "tls_cert_file"
    )]
    cert_out: Option<PathBuf>,

    /// Serve this PEM certificate (e.g. from a Secret volume) instead.
    #[arg(long, requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,

    /// The key of --tls-cert-file.
    #[arg(long, requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
}

/// The answer to one AdmissionReview: allowed, with the request's uid.
fn admit(review: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": true}
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cert_pem, key_pem) = match (&args.tls_cert_file, &args.tls_key_file, &args.cert_out) {
        (Some(cert), Some(key), _) => {
            let read =
                |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            (read(cert)?, read(key)?)
        }
        (_, _, Some(out)) => {
            let cert = rcgen::generate_simple_self_signed(vec![args.addr.ip().to_string()])
                .context("generating the serving certificate")?;
            let pem = cert.cert.pem();
            std::fs::write(out, &pem).with_context(|| format!("writing {}", out.display()))?;
            (
                pem.into_bytes(),
                cert.signing_key.serialize_pem().into_bytes(),
            )
        }
        _ => anyhow::bail!("give --cert-out, or --tls-cert-file and --tls-key-file"),
    };
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem, key_pem)
        .await
        .context("TLS configuration")?;
    let app = axum::Router::new().route(
        "/validate",
        post(|Json(review): Json<Value>| async move { Json(admit(&review)) }),
    );
    eprintln!("noop-webhook: https://{}/validate", args.addr);
    axum_server::bind_rustls(args.addr, tls)
        .serve(app.into_make_service())
        .await
        .context("serving")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_one_source_of_certificate() {
        use clap::CommandFactory as _;
        Args::command().debug_assert();
        assert!(Args::try_parse_from(["noop-webhook"]).is_err());
        assert!(Args::try_parse_from(["noop-webhook", "--cert-out", "c.pem"]).is_ok());
        assert!(
            Args::try_parse_from([
                "noop-webhook",
                "--tls-cert-file",
                "c.pem",
                "--tls-key-file",
                "k.pem"
            ])
            .is_ok()
        );
        assert!(Args::try_parse_from(["noop-webhook", "--tls-cert-file", "c.pem"]).is_err());
        assert!(
            Args::try_parse_from([
                "noop-webhook",
                "--cert-out",
                "o.pem",
                "--tls-cert-file",
                "c.pem",
                "--tls-key-file",
                "k.pem"
            ])
            .is_err()
        );
    }

    #[test]
    fn every_review_is_allowed_with_its_uid() {
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "operation": "CREATE"}});
        let answer = admit(&review);
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(
            answer["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        assert_eq!(answer["kind"], "AdmissionReview");
    }
}
