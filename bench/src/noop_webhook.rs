//! `noop-webhook`: a validating admission webhook that admits every review at once, over TLS
//! on loopback. It does the least any webhook must (read the review, echo its uid, say
//! allowed), so the API server's cost of calling a webhook shows on its own:
//! `hack/bench-admission.sh` measures it beside Palisade as the floor.

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

    /// Write the PEM certificate the webhook serves with here, for the registration's
    /// caBundle (it is self-signed, for the address's IP).
    #[arg(long)]
    cert_out: PathBuf,
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
    let cert = rcgen::generate_simple_self_signed(vec![args.addr.ip().to_string()])
        .context("generating the serving certificate")?;
    let cert_pem = cert.cert.pem();
    std::fs::write(&args.cert_out, &cert_pem)
        .with_context(|| format!("writing {}", args.cert_out.display()))?;
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.into_bytes(),
        cert.signing_key.serialize_pem().into_bytes(),
    )
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
