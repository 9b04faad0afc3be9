//! Helpers shared by the integration tests and the load generator: certificates, an HTTPS
//! client that shows the served certificate, temporary directories and AdmissionReviews.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A test certificate authority.
pub struct Ca {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign CA");
        Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for 127.0.0.1 (X.509 v3, SAN IP): (cert PEM, key PEM, cert DER).
    pub fn serving_pair(&self, common_name: &str) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().expect("generate serving key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("serving params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign serving cert");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// A client configuration trusting the given CAs.
pub fn client_config(cas: &[&Ca]) -> Arc<ClientConfig> {
    palisade_webhook::tls::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.cert_der.clone()).expect("add CA");
    }
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One keep-alive HTTP/1.1 connection over TLS.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    /// DER of the certificate the server presented.
    pub peer_cert: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<Conn, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tls = TlsConnector::from(config)
            .connect(ServerName::from(addr.ip()), tcp)
            .await?;
        let peer_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, peer_cert })
    }

    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), BoxError> {
        self.sender.ready().await?;
        let req = Request::post(path)
            .header(header::HOST, "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Post a review and return the `response` of the AdmissionReview that comes back.
    pub async fn review(&mut self, path: &str, review: &Value) -> Result<Value, BoxError> {
        let body = Bytes::from(serde_json::to_vec(review)?);
        let (status, body) = self.post(path, body).await?;
        if status != StatusCode::OK {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        let v: Value = serde_json::from_slice(&body)?;
        Ok(v.get("response")
            .cloned()
            .ok_or("no response in the review")?)
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "palisade-webhook-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const NO_PRIVILEGED: &str = "apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: no-privileged
spec:
  privileged: Deny
";

pub const WARN_NON_ROOT: &str = "apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: non-root-advice
spec:
  mode: Warn
  runAsNonRoot: true
";

/// The Pod Security Standards `restricted` preset plus the individual controls that
/// overlap it, the shape of a typical production policy.
pub const RESTRICTED: &str = "apiVersion: palisade.dev/v1alpha1
kind: SecurityPolicy
metadata:
  name: restricted
spec:
  podSecurity:
    level: restricted
    version: latest
  privileged: Deny
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  capabilities:
    requireDropAll: true
  images:
    forbidLatestTag: true
";

/// A pod spec that satisfies the restricted preset, or one that runs privileged.
pub fn pod_spec(privileged: bool) -> Value {
    let mut sc = json!({
        "allowPrivilegeEscalation": false,
        "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}
    });
    if privileged {
        sc["privileged"] = json!(true);
    }
    json!({
        "containers": [{
            "name": "app",
            "image": "registry.example.com/team/app:1.4.2",
            "securityContext": sc
        }]
    })
}

pub fn pod(name: &str, privileged: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "labels": {"app": name}},
        "spec": pod_spec(privileged)
    })
}

pub fn deployment(name: &str, privileged: bool) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": pod_spec(privileged)
            }
        }
    })
}

/// An AdmissionReview v1 request as the API server sends it.
pub fn review(uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = format!("{}s", kind.to_lowercase());
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// Certificate files laid out as the kubelet mounts a Secret: `tls.crt` and `tls.key` are
/// symlinks through `..data`, which is itself a symlink swapped atomically on update.
pub struct SecretDir {
    dir: TempDir,
    version: u32,
}

impl SecretDir {
    pub fn new(cert_pem: &str, key_pem: &str) -> SecretDir {
        let mut s = SecretDir {
            dir: TempDir::new("secret"),
            version: 0,
        };
        s.swap(cert_pem, key_pem);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), s.dir.path().join(name))
                .expect("symlink");
        }
        s
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Write a new version beside the old one and point `..data` at it in one rename.
    pub fn swap(&mut self, cert_pem: &str, key_pem: &str) {
        self.version += 1;
        let name = format!("..v{}", self.version);
        let version_dir = self.dir.path().join(&name);
        std::fs::create_dir(&version_dir).expect("version dir");
        std::fs::write(version_dir.join("tls.crt"), cert_pem).expect("write cert");
        std::fs::write(version_dir.join("tls.key"), key_pem).expect("write key");
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).expect("symlink");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("rename");
    }
}

/// A webhook on loopback, serving the given policies with a certificate from `ca`.
pub struct TestServer {
    pub server: palisade_webhook::server::Server,
    pub state: palisade_webhook::AppState,
    pub secret: SecretDir,
}

pub async fn start_server(policies: &[&str], cert_pem: &str, key_pem: &str) -> TestServer {
    palisade_webhook::tls::install_crypto_provider();
    let mut parsed = Vec::new();
    for text in policies {
        parsed.extend(palisade_policy::parse_policies(text).expect("policy parses"));
    }
    let (set, errors) = palisade_policy::PolicySet::compile_all(&parsed);
    assert!(errors.is_empty(), "{errors:?}");
    start_server_with(set, cert_pem, key_pem).await
}

pub async fn start_server_with(
    set: palisade_policy::PolicySet,
    cert_pem: &str,
    key_pem: &str,
) -> TestServer {
    start_server_with_gate(set, None, cert_pem, key_pem).await
}

/// The same, judging images through `gate` too when given one.
pub async fn start_server_with_gate(
    set: palisade_policy::PolicySet,
    gate: Option<palisade_webhook::ScanGate>,
    cert_pem: &str,
    key_pem: &str,
) -> TestServer {
    palisade_webhook::tls::install_crypto_provider();
    let metrics = Arc::new(palisade_webhook::Metrics::new());
    let mut state = palisade_webhook::AppState::new(
        palisade_webhook::PolicyStore::fixed(set, metrics.clone()),
        metrics,
    );
    if let Some(gate) = gate {
        state = state.with_scan_gate(gate);
    }
    let secret = SecretDir::new(cert_pem, key_pem);
    let options = palisade_webhook::server::Options {
        addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        tls: palisade_webhook::tls::TlsFiles {
            cert: secret.cert(),
            key: secret.key(),
        },
        tls_reload_interval: std::time::Duration::from_millis(100),
        shutdown_delay: std::time::Duration::ZERO,
        shutdown_grace: std::time::Duration::from_secs(5),
    };
    let server = palisade_webhook::server::start(options, state.clone())
        .await
        .expect("server starts");
    TestServer {
        server,
        state,
        secret,
    }
}

/// GET over plain HTTP (the admin port): (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
