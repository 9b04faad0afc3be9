//! A client for the OCI distribution API: resolve tags to digests, fetch manifests and
//! indexes, and stream blobs. Anonymous, basic and bearer-token authentication.
//!
//! Written over reqwest rather than taken from a registry crate because the scanner needs
//! things those clients leave to the caller: a hard cap on every manifest it reads, digest
//! verification of everything fetched by digest, and blob bodies it can stream through a
//! blocking tar reader without holding a layer in memory.

pub mod auth;
pub mod manifest;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_imageref::ImageRef;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sha2::{Digest as _, Sha256};

pub use auth::{Credentials, Login};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform};

use crate::Error;

/// Docker Hub's API lives on another host than the one references name.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// How the client reaches registries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Registry hosts reached over plain HTTP. Loopback hosts (`localhost`, `127.0.0.1`,
    /// `[::1]`, with any port) always are, as container runtimes treat them.
    pub insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM) trusted beside the public web roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Longest wait for any single read; a stalled registry fails instead of hanging.
    pub read_timeout: Duration,
    /// Largest manifest or index accepted.
    pub max_manifest_bytes: usize,
    pub credentials: Credentials,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            extra_ca_pem: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            max_manifest_bytes: 4 << 20,
            credentials: Credentials::default(),
        }
    }
}

/// An image resolved down to one platform's manifest.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The digest the reference resolves to (an index's digest for multi-platform images):
    /// the key of its scan report.
    pub digest: String,
    /// The digest of the single-platform manifest that was read.
    pub manifest_digest: String,
    /// The platform chosen from an index; `None` for a single-platform image.
    pub platform: Option<Platform>,
    pub manifest: ImageManifest,
}

#[derive(Clone)]
struct CachedToken {
    value: String,
    expires: Instant,
}

/// A registry client; cheap to clone, shares connections and tokens.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    insecure: Arc<Vec<String>>,
    credentials: Arc<Credentials>,
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
    max_manifest_bytes: usize,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Build a client. The process must have installed a rustls `CryptoProvider`.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // reqwest and rustls would panic; say what the program forgot instead.
            return Err(Error::Registry {
                registry: "*".into(),
                reason: "no rustls CryptoProvider is installed in this process".into(),
            });
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for (i, pem) in config.extra_ca_pem.iter().enumerate() {
            let mut added = 0;
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem) {
                let cert: rustls::pki_types::CertificateDer<'static> =
                    cert.map_err(|e| Error::Registry {
                        registry: "*".into(),
                        reason: format!("extra CA bundle {i}: {e}"),
                    })?;
                roots.add(cert).map_err(|e| Error::Registry {
                    registry: "*".into(),
                    reason: format!("extra CA bundle {i}: {e}"),
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(Error::Registry {
                    registry: "*".into(),
                    reason: format!("extra CA bundle {i} holds no PEM certificate"),
                });
            }
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("palisade-scanner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Registry {
                registry: "*".into(),
                reason: format!("building the HTTP client: {e}"),
            })?;
        Ok(RegistryClient {
            http,
            insecure: Arc::new(config.insecure_registries),
            credentials: Arc::new(config.credentials),
            tokens: Arc::default(),
            max_manifest_bytes: config.max_manifest_bytes,
        })
    }

    /// The underlying HTTP client (same trust roots and timeouts), for other downloads such
    /// as the vulnerability database.
    pub fn http_client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// The same client with other credentials (tokens are shared, keyed by login).
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        RegistryClient {
            credentials: Arc::new(credentials),
            ..self.clone()
        }
    }

    fn base_url(&self, registry: &str) -> String {
        let host = if registry == palisade_imageref::DEFAULT_REGISTRY {
            DOCKER_HUB_API
        } else {
            registry
        };
        let plain = is_loopback(registry) || self.insecure.iter().any(|h| h == registry);
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    /// The digest a reference names: its own digest if pinned, else what its tag points at
    /// now (one HEAD request, falling back to GET for registries that omit the header).
    pub async fn resolve(&self, image: &ImageRef<'_>) -> Result<String, Error> {
        if let Some(d) = image.digest() {
            return Ok(d.to_owned());
        }
        let tag = image.effective_tag().unwrap_or("latest");
        let url = format!(
            "{}/v2/{}/manifests/{tag}",
            self.base_url(image.registry()),
            image.repository()
        );
        let resp = self
            .send(
                image.registry(),
                image.repository(),
                Method::HEAD,
                &url,
                manifest::ACCEPT,
            )
            .await?;
        let resp = expect_ok(
            image.registry(),
            &format!("manifest {}:{tag}", image.repository()),
            resp,
        )
        .await?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| manifest::is_sha256_digest(d))
        {
            return Ok(d.to_owned());
        }
        let (_, digest, _) = self
            .fetch_manifest(image.registry(), image.repository(), tag)
            .await?;
        Ok(digest)
    }

    /// Fetch and parse a manifest by tag or digest. Returns the document, its digest (verified
    /// when fetched by digest) and its size.
    pub async fn fetch_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<(Manifest, String, usize), Error> {
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url(registry)
        );
        let what = format!("manifest {repository}:{reference}");
        let resp = self
            .send(registry, repository, Method::GET, &url, manifest::ACCEPT)
            .await?;
        let mut resp = expect_ok(registry, &what, resp).await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bad = |reason: String| Error::Registry {
            registry: registry.to_owned(),
            reason: format!("{what}: {reason}"),
        };
        if let Some(len) = resp.content_length()
            && len > self.max_manifest_bytes as u64
        {
            return Err(bad(format!(
                "{len} bytes is over the {} byte limit for manifests",
                self.max_manifest_bytes
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Unreachable {
            registry: registry.to_owned(),
            what: format!("reading {what}"),
            source: e,
        })? {
            body.extend_from_slice(&chunk);
            if body.len() > self.max_manifest_bytes {
                return Err(bad(format!(
                    "over the {} byte limit for manifests",
                    self.max_manifest_bytes
                )));
            }
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(bad(format!(
                "content does not match its digest (got {digest})"
            )));
        }
        let parsed = manifest::parse(content_type.as_deref(), &body).map_err(|e| bad(e.0))?;
        Ok((parsed, digest, body.len()))
    }

    /// Resolve an image to one platform's manifest: through its index if it has one
    /// (choosing `platform`), else the manifest itself. Indexes nested in indexes are
    /// followed once.
    pub async fn image_manifest(
        &self,
        image: &ImageRef<'_>,
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        let registry = image.registry();
        let repository = image.repository();
        let reference = match image.digest() {
            Some(d) => d.to_owned(),
            None => image.effective_tag().unwrap_or("latest").to_owned(),
        };
        let (top, top_digest, _) = self
            .fetch_manifest(registry, repository, &reference)
            .await?;
        let mut current = top;
        let mut current_digest = top_digest.clone();
        let mut chosen = None;
        for _ in 0..2 {
            match current {
                Manifest::Image(m) => {
                    return Ok(ResolvedImage {
                        digest: top_digest,
                        manifest_digest: current_digest,
                        platform: chosen,
                        manifest: m,
                    });
                }
                Manifest::Index(index) => {
                    let entry = manifest::select_platform(&index, platform).ok_or_else(|| {
                        let have: Vec<String> = index
                            .manifests
                            .iter()
                            .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                            .collect();
                        Error::Registry {
                            registry: registry.to_owned(),
                            reason: format!(
                                "{repository}@{current_digest} has no {platform} image (it has: {})",
                                if have.is_empty() { "none named".into() } else { have.join(", ") }
                            ),
                        }
                    })?;
                    chosen = entry.platform.clone();
                    let digest = entry.digest.clone();
                    let (next, next_digest, _) =
                        self.fetch_manifest(registry, repository, &digest).await?;
                    current = next;
                    current_digest = next_digest;
                }
            }
        }
        Err(Error::Registry {
            registry: registry.to_owned(),
            reason: format!("{repository}@{top_digest}: indexes nested more than one deep"),
        })
    }

    /// Start downloading a blob; the caller streams the body and verifies its digest
    /// (see [`crate::layers`]).
    pub async fn blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Response, Error> {
        if !manifest::is_sha256_digest(digest) {
            return Err(Error::Registry {
                registry: registry.to_owned(),
                reason: format!("blob digest {digest:?} is not a sha256 digest"),
            });
        }
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url(registry));
        let resp = self
            .send(registry, repository, Method::GET, &url, "*/*")
            .await?;
        expect_ok(registry, &format!("blob {digest}"), resp).await
    }

    /// Send a request, answering an authentication challenge once: basic credentials for a
    /// Basic challenge, a token from the realm (with credentials if there are any) for a
    /// Bearer one. Tokens are cached per registry, repository and login until they expire.
    async fn send(
        &self,
        registry: &str,
        repository: &str,
        method: Method,
        url: &str,
        accept: &str,
    ) -> Result<Response, Error> {
        let login = self.credentials.for_host(registry);
        let key = format!(
            "{registry}|{repository}|{}",
            login.map_or("", |l| l.username.as_str())
        );
        let cached = self.cached_token(&key);
        let request = |auth: Option<String>| {
            let mut r: RequestBuilder = self
                .http
                .request(method.clone(), url)
                .header(ACCEPT, accept);
            if let Some(a) = auth {
                r = r.header(AUTHORIZATION, a);
            }
            r
        };
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            registry: registry.to_owned(),
            what: format!("{method} {url}"),
            source: e,
        };
        let first = request(cached.map(|t| format!("Bearer {t}")))
            .send()
            .await
            .map_err(unreachable)?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        let authorization = match challenge {
            Some(auth::Challenge::Basic) => {
                let login = login.ok_or_else(|| Error::Registry {
                    registry: registry.to_owned(),
                    reason: format!(
                        "{repository} needs credentials (Basic authentication) and none are configured for {registry}: add a dockerconfigjson Secret to the ScanPolicy's registryCredentials"
                    ),
                })?;
                basic(login)
            }
            Some(auth::Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{repository}:pull"));
                let token = self
                    .fetch_token(registry, &realm, service.as_deref(), &scope, login)
                    .await?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, token.clone());
                format!("Bearer {}", token.value)
            }
            None => {
                return Err(Error::Registry {
                    registry: registry.to_owned(),
                    reason: format!(
                        "{method} {url}: 401 Unauthorized without a usable WWW-Authenticate challenge"
                    ),
                });
            }
        };
        let second = request(Some(authorization))
            .send()
            .await
            .map_err(unreachable)?;
        if second.status() == StatusCode::UNAUTHORIZED || second.status() == StatusCode::FORBIDDEN {
            return Err(Error::Registry {
                registry: registry.to_owned(),
                reason: format!(
                    "{repository}: access denied ({}){}",
                    second.status(),
                    if login.is_some() {
                        " with the configured credentials: check the registryCredentials Secret"
                    } else {
                        ": the repository is private or does not exist; add a dockerconfigjson Secret to the ScanPolicy's registryCredentials"
                    }
                ),
            });
        }
        Ok(second)
    }

    fn cached_token(&self, key: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(key)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.value.clone())
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        login: Option<&Login>,
    ) -> Result<CachedToken, Error> {
        let mut url = reqwest::Url::parse(realm).map_err(|e| Error::Registry {
            registry: registry.to_owned(),
            reason: format!("token realm {realm:?} is not a URL: {e}"),
        })?;
        url.query_pairs_mut().append_pair("scope", scope);
        if let Some(s) = service {
            url.query_pairs_mut().append_pair("service", s);
        }
        let mut req = self.http.get(url);
        if let Some(l) = login {
            req = req.header(AUTHORIZATION, basic(l));
        }
        let resp = req.send().await.map_err(|e| Error::Unreachable {
            registry: registry.to_owned(),
            what: format!("token endpoint {realm}"),
            source: e,
        })?;
        if !resp.status().is_success() {
            return Err(Error::Registry {
                registry: registry.to_owned(),
                reason: format!(
                    "token endpoint {realm} refused {scope} ({}){}",
                    resp.status(),
                    if login.is_some() {
                        ": check the registryCredentials Secret"
                    } else {
                        ""
                    }
                ),
            });
        }
        let body: auth::TokenResponse = resp.json().await.map_err(|e| Error::Registry {
            registry: registry.to_owned(),
            reason: format!("token endpoint {realm}: invalid answer: {e}"),
        })?;
        let value = body
            .token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Registry {
                registry: registry.to_owned(),
                reason: format!("token endpoint {realm} answered without a token"),
            })?;
        // Renew a little early; the distribution spec's default lifetime is 60 s.
        let lifetime = body.expires_in.unwrap_or(60).clamp(10, 3600);
        Ok(CachedToken {
            value,
            expires: Instant::now() + Duration::from_secs(lifetime - 5),
        })
    }
}

fn basic(login: &Login) -> String {
    use base64::Engine as _;
    let raw = format!("{}:{}", login.username, login.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn expect_ok(registry: &str, what: &str, resp: Response) -> Result<Response, Error> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    // The distribution API explains errors in a JSON body; keep its first message.
    let detail = resp
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v.pointer("/errors/0/message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        });
    let hint = match status {
        StatusCode::NOT_FOUND => ": no such image (check the repository and tag)",
        StatusCode::TOO_MANY_REQUESTS => ": rate limited by the registry; scans retry later",
        _ => "",
    };
    Err(Error::Registry {
        registry: registry.to_owned(),
        reason: format!(
            "{what}: {status}{}{hint}",
            detail.map(|d| format!(" ({d})")).unwrap_or_default()
        ),
    })
}

/// Loopback registries are reached over plain HTTP, as container runtimes do.
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_plain_http() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.evil.com",
            "docker.io",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
