//! A token server for the distribution token protocol, run in-process on loopback, so the
//! scanner's Bearer authentication meets a real registry (docker-registry with `auth: token`).
//!
//! `GET /token?service=…&scope=repository:REPO:pull` with Basic credentials answers
//! `{"token": JWT, "expires_in": N}`. The JWT is ES256-signed by a leaf certificate sent in
//! the `x5c` header; the leaf is issued by a CA the registry trusts (`rootcertbundle`), which
//! is how distribution 2.8 verifies tokens. Requests without credentials get a token that
//! grants nothing (as Docker Hub answers for a private repository); wrong credentials get 401.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

use crate::FixtureError;

/// The `service` the registry names in its challenges and expects as the token's audience.
pub const SERVICE: &str = "palisade-test-registry";
/// The token's `iss`, which the registry checks.
pub const ISSUER: &str = "palisade-test-token-server";
/// Lifetime of issued tokens, in seconds.
pub const EXPIRES_IN: u64 = 300;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Signs tokens: an ES256 key and its certificate (issued by `ca_pem`).
pub struct TokenIssuer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// Base64 (standard, padded) DER of the signing certificate: the JWT's `x5c`.
    x5c: Vec<String>,
    ca_pem: String,
    serial: AtomicUsize,
}

fn setup(what: &str) -> impl FnOnce(rcgen::Error) -> FixtureError + '_ {
    move |e| FixtureError::Setup(format!("{what}: {e}"))
}

impl TokenIssuer {
    /// A fresh CA and signing certificate.
    pub fn generate() -> Result<Self, FixtureError> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(setup("token CA parameters"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "palisade test token CA");
        let ca_key = KeyPair::generate().map_err(setup("token CA key"))?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(setup("token CA"))?;

        let leaf_key = KeyPair::generate().map_err(setup("token signing key"))?;
        let mut leaf_params = CertificateParams::new(Vec::<String>::new())
            .map_err(setup("token signer parameters"))?;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "palisade test token signer");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .map_err(setup("token signing certificate"))?;

        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &leaf_key.serialize_der(),
            &rng,
        )
        .map_err(|e| FixtureError::Setup(format!("token signing key for ring: {e}")))?;
        Ok(TokenIssuer {
            key,
            rng,
            x5c: vec![B64.encode(leaf.der())],
            ca_pem: ca.pem(),
            serial: AtomicUsize::new(0),
        })
    }

    /// The CA certificate (PEM) the registry's `rootcertbundle` holds.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A signed token for `subject` granting `actions` on each repository in `access`.
    pub fn mint(&self, subject: &str, access: &[(String, Vec<String>)]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let header = serde_json::json!({ "typ": "JWT", "alg": "ES256", "x5c": self.x5c });
        let access: Vec<serde_json::Value> = access
            .iter()
            .map(|(name, actions)| {
                serde_json::json!({ "type": "repository", "name": name, "actions": actions })
            })
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + EXPIRES_IN,
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": format!("palisade-{now}-{}", self.serial.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        // ES256 in JWS is the fixed-width r‖s form, which is what this ring algorithm yields.
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .unwrap_or_else(|e| panic!("ES256 signing failed: {e}"));
        format!("{signing_input}.{}", B64URL.encode(signature.as_ref()))
    }
}

/// The token endpoint: one user, who may pull and push every repository.
pub struct TokenServer {
    addr: SocketAddr,
    issuer: Arc<TokenIssuer>,
    user: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Listen on a loopback port, serving tokens to `user`/`password`.
    pub fn start(user: &str, password: &str) -> Result<Self, FixtureError> {
        let issuer = Arc::new(TokenIssuer::generate()?);
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| FixtureError::Io {
            what: "binding the token server".into(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| FixtureError::Io {
            what: "the token server's address".into(),
            source,
        })?;
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let state = Handler {
            issuer: issuer.clone(),
            user: user.to_owned(),
            password: password.to_owned(),
            requests: requests.clone(),
        };
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("token-server".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop_flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = conn {
                        state.serve(stream);
                    }
                }
            })
            .map_err(|source| FixtureError::Io {
                what: "starting the token server".into(),
                source,
            })?;
        Ok(TokenServer {
            addr,
            issuer,
            user: user.to_owned(),
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/token`: the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn issuer(&self) -> &Arc<TokenIssuer> {
        &self.issuer
    }

    /// The user it serves.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// How many token requests it has answered (granted or refused).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Handler {
    issuer: Arc<TokenIssuer>,
    user: String,
    password: String,
    requests: Arc<AtomicUsize>,
}

impl Handler {
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Ok(read_half) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
            return;
        }
        let mut authorization = None;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_owned());
            }
        }
        let (status, body) = self.answer(&request_line, authorization.as_deref());
        let mut stream = stream;
        let extra = if status == 401 {
            "WWW-Authenticate: Basic realm=\"palisade-test-token\"\r\n"
        } else {
            ""
        };
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            404 => "Not Found",
            _ => "Bad Request",
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.flush();
    }

    fn answer(&self, request_line: &str, authorization: Option<&str>) -> (u16, String) {
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return (400, r#"{"details":"bad request line"}"#.into());
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if method != "GET" || path != "/token" {
            return (404, r#"{"details":"not found"}"#.into());
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut service = None;
        let mut scopes = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "service" => service = Some(v),
                "scope" => scopes.push(v),
                _ => {}
            }
        }
        if service.as_deref() != Some(SERVICE) {
            return (
                400,
                format!(r#"{{"details":"unknown service {service:?}"}}"#),
            );
        }
        let subject = match authorization {
            None => None,
            Some(a) => match self.check_basic(a) {
                true => Some(self.user.as_str()),
                false => return (401, r#"{"details":"invalid username or password"}"#.into()),
            },
        };
        // Anonymous requests get a valid token that grants nothing.
        let mut access = Vec::new();
        if subject.is_some() {
            for scope in &scopes {
                let Some((rest, actions)) = scope.rsplit_once(':') else {
                    continue;
                };
                let Some(("repository", name)) = rest.split_once(':') else {
                    continue;
                };
                let granted: Vec<String> = actions
                    .split(',')
                    .filter(|a| matches!(*a, "pull" | "push"))
                    .map(str::to_owned)
                    .collect();
                access.push((name.to_owned(), granted));
            }
        }
        let token = self.issuer.mint(subject.unwrap_or(""), &access);
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": EXPIRES_IN,
        });
        (200, body.to_string())
    }

    fn check_basic(&self, authorization: &str) -> bool {
        let Some(encoded) = authorization
            .strip_prefix("Basic ")
            .or_else(|| authorization.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = B64.decode(encoded.trim()) else {
            return false;
        };
        decoded == format!("{}:{}", self.user, self.password).as_bytes()
    }
}

/// `application/x-www-form-urlencoded` value decoding (`%3A` → `:`, `+` → space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_scopes() {
        assert_eq!(
            percent_decode("repository%3Ateam%2Fapp%3Apull%2Cpush"),
            "repository:team/app:pull,push"
        );
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn tokens_are_es256_jwts_with_the_signing_certificate() {
        let issuer = TokenIssuer::generate().expect("issuer");
        let token = issuer.mint("ci", &[("app".into(), vec!["pull".into()])]);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "ES256");
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["aud"], SERVICE);
        assert_eq!(claims["access"][0]["name"], "app");
        // The signature verifies with the x5c certificate's key.
        let leaf = B64
            .decode(header["x5c"][0].as_str().expect("x5c"))
            .expect("der");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            ring::signature::KeyPair::public_key(&issuer.key).as_ref(),
        );
        let signature = B64URL.decode(parts[2]).expect("sig");
        assert_eq!(signature.len(), 64, "r‖s, not DER");
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("valid signature");
        let point = ring::signature::KeyPair::public_key(&issuer.key).as_ref();
        assert!(
            leaf.windows(point.len()).any(|w| w == point),
            "x5c[0] carries the signing key"
        );
    }
}
