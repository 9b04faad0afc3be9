//! Test fixtures for the scanner and the end-to-end suite: a real registry (Debian's
//! `docker-registry`, the CNCF distribution server) on a loopback port, optionally behind
//! htpasswd Basic authentication, and images assembled byte by byte and pushed through the
//! distribution API, so tests control every layer, whiteout and manifest. The registry can
//! also sit behind the distribution token protocol, with a token server run in-process
//! ([`Registry::start_with_token_auth`]).

pub mod alpine;
pub mod osv;
#[cfg(feature = "sbom-schemas")]
pub mod sbom;
pub mod token;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub use token::{TokenIssuer, TokenServer};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Why a fixture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FixtureError {
    let what = what.into();
    move |source| FixtureError::Io { what, source }
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A running `docker-registry` on 127.0.0.1, storing in a temporary directory; killed on drop.
pub struct Registry {
    child: Option<Child>,
    host: String,
    login: Option<(String, String)>,
    token: Option<TokenServer>,
    dir: tempfile::TempDir,
}

/// How a registry authenticates clients.
enum Auth {
    Anonymous,
    Htpasswd(String, String),
    Token(String, String),
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Result<Self, FixtureError> {
        Self::spawn(Auth::Anonymous)
    }

    /// A registry that needs `user`/`password` (htpasswd, bcrypt) for everything.
    pub fn start_with_login(user: &str, password: &str) -> Result<Self, FixtureError> {
        Self::spawn(Auth::Htpasswd(user.to_owned(), password.to_owned()))
    }

    /// A registry behind the distribution token protocol: its challenges send clients to an
    /// in-process [`TokenServer`] that grants pull and push to `user`/`password`, and it
    /// verifies the ES256 tokens against the token server's CA. [`Registry::pusher`]
    /// signs its own push tokens, so pushes do not count as token requests.
    pub fn start_with_token_auth(user: &str, password: &str) -> Result<Self, FixtureError> {
        Self::spawn(Auth::Token(user.to_owned(), password.to_owned()))
    }

    fn spawn(auth_mode: Auth) -> Result<Self, FixtureError> {
        let binary = which("docker-registry").ok_or_else(|| {
            FixtureError::Setup("docker-registry is not installed: run hack/scan-tools.sh".into())
        })?;
        let dir = tempfile::tempdir().map_err(io("creating the registry's directory"))?;
        let port = free_port()?;
        let host = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        let mut token = None;
        let login = match auth_mode {
            Auth::Anonymous => None,
            Auth::Htpasswd(u, p) => Some((u, p)),
            Auth::Token(u, p) => {
                let server = TokenServer::start(&u, &p)?;
                let bundle = dir.path().join("token-ca.pem");
                std::fs::write(&bundle, server.issuer().ca_pem())
                    .map_err(io("writing the token CA bundle"))?;
                auth = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm(),
                    token::SERVICE,
                    token::ISSUER,
                    bundle.display()
                );
                token = Some(server);
                Some((u, p))
            }
        };
        if let Some((user, password)) = login.as_ref().filter(|_| token.is_none()) {
            let htpasswd = which("htpasswd").ok_or_else(|| {
                FixtureError::Setup("htpasswd is not installed: run hack/scan-tools.sh".into())
            })?;
            let out = Command::new(htpasswd)
                .args(["-Bbn", user, password])
                .output()
                .map_err(io("running htpasswd"))?;
            if !out.status.success() {
                return Err(FixtureError::Setup(format!(
                    "htpasswd failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).map_err(io("writing htpasswd"))?;
            auth = format!(
                "auth:\n  htpasswd:\n    realm: palisade-test\n    path: {}\n",
                file.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n{auth}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(io("writing the registry config"))?;
        let log = std::fs::File::create(dir.path().join("registry.log"))
            .map_err(io("creating the registry log"))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("registry log"))?)
            .stderr(log)
            .spawn()
            .map_err(io("starting docker-registry"))?;
        let mut registry = Registry {
            child: Some(child),
            host,
            login,
            token,
            dir,
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> Result<(), FixtureError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(FixtureError::Setup(format!(
                    "docker-registry exited ({status}): {}",
                    self.log()
                )));
            }
            if std::net::TcpStream::connect(&self.host).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(FixtureError::Setup(format!(
            "docker-registry did not listen on {} within 20s: {}",
            self.host,
            self.log()
        )))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The login it requires, if any.
    pub fn login(&self) -> Option<(&str, &str)> {
        self.login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The token server, for a registry started with [`Registry::start_with_token_auth`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// A `.dockerconfigjson` document with this registry's login.
    pub fn docker_config_json(&self) -> String {
        let (user, password) = self.login().unwrap_or(("", ""));
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        serde_json::json!({ "auths": { self.host.clone(): { "auth": auth } } }).to_string()
    }

    /// The registry's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where it stores blobs (tests corrupt them here).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stop it (the "registry down" case); the port stays unanswered.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A client that pushes to this registry.
    pub fn pusher(&self) -> Result<Pusher, FixtureError> {
        let mut pusher = Pusher::new(&self.host, self.login.clone())?;
        if let Some(server) = &self.token {
            pusher.auth = PushAuth::Token(server.issuer().clone(), server.user().to_owned());
        }
        Ok(pusher)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, FixtureError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(l.local_addr().map_err(io("finding a free port"))?.port())
}

/// How a layer is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A blob ready to push.
#[derive(Clone, Debug)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

impl Blob {
    pub fn new(bytes: Vec<u8>, media_type: &str) -> Self {
        Blob {
            digest: digest(&bytes),
            bytes,
            media_type: media_type.to_owned(),
        }
    }
}

/// Builds one layer's tar stream, entry by entry.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        LayerBuilder { tar }
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_700_000_000);
        h
    }

    /// A regular file.
    pub fn file(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
        let content = content.as_ref();
        let mut h = Self::header(tar::EntryType::Regular, content.len() as u64);
        self.tar
            .append_data(&mut h, path, content)
            .unwrap_or_else(|e| panic!("tar entry {path}: {e}"));
        self
    }

    /// A regular file with its execute bits set (mode 0755), as binaries are installed.
    pub fn executable(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
        let content = content.as_ref();
        let mut h = Self::header(tar::EntryType::Regular, content.len() as u64);
        h.set_mode(0o755);
        self.tar
            .append_data(&mut h, path, content)
            .unwrap_or_else(|e| panic!("tar entry {path}: {e}"));
        self
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, 0);
        self.tar
            .append_data(&mut h, path, std::io::empty())
            .unwrap_or_else(|e| panic!("tar entry {path}: {e}"));
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0);
        self.tar
            .append_link(&mut h, path, target)
            .unwrap_or_else(|e| panic!("tar entry {path}: {e}"));
        self
    }

    /// A whiteout: `path` disappears from the layers below.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, b"")
    }

    /// An opaque directory: everything below `dir` in lower layers disappears.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// A file whose header names `raw_path` verbatim (up to 100 bytes), bypassing the tar
    /// writer's own checks: for hostile layers (`../../etc/passwd`).
    pub fn raw_file(mut self, raw_path: &[u8], content: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, content.len() as u64);
        if let Some(gnu) = h.as_gnu_mut() {
            let n = raw_path.len().min(gnu.name.len());
            gnu.name[..n].copy_from_slice(&raw_path[..n]);
        }
        h.set_cksum();
        self.tar
            .append(&h, content)
            .unwrap_or_else(|e| panic!("raw tar entry: {e}"));
        self
    }

    /// The finished tar stream, compressed.
    pub fn build(self, compression: Compression) -> Blob {
        let tar = self
            .tar
            .into_inner()
            .unwrap_or_else(|e| panic!("finishing tar: {e}"));
        compress(tar, compression)
    }
}

/// Wrap a tar stream (or any bytes, for broken layers) as a layer blob.
pub fn compress(tar: Vec<u8>, compression: Compression) -> Blob {
    match compression {
        Compression::None => Blob::new(tar, "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &tar).unwrap_or_else(|e| panic!("gzip: {e}"));
            let bytes = gz.finish().unwrap_or_else(|e| panic!("gzip: {e}"));
            Blob::new(bytes, "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Compression::Zstd => {
            let bytes = zstd::encode_all(&tar[..], 3).unwrap_or_else(|e| panic!("zstd: {e}"));
            Blob::new(bytes, "application/vnd.oci.image.layer.v1.tar+zstd")
        }
    }
}

/// A pushed image.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: String,
    pub size: usize,
    pub media_type: String,
}

/// Pushes blobs and manifests through the distribution API (monolithic uploads).
pub struct Pusher {
    http: reqwest::Client,
    base: String,
    auth: PushAuth,
}

enum PushAuth {
    None,
    Basic(String, String),
    /// Tokens signed directly with the token server's key, per repository.
    Token(std::sync::Arc<TokenIssuer>, String),
}

impl Pusher {
    pub fn new(host: &str, login: Option<(String, String)>) -> Result<Self, FixtureError> {
        // The process's one provider; installing twice is harmless here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .build()
            .map_err(|source| FixtureError::Http {
                what: "building a client".into(),
                source,
            })?;
        Ok(Pusher {
            http,
            base: format!("http://{host}"),
            auth: match login {
                Some((u, p)) => PushAuth::Basic(u, p),
                None => PushAuth::None,
            },
        })
    }

    fn auth(&self, repo: &str, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            PushAuth::Basic(u, p) => r.basic_auth(u, Some(p)),
            PushAuth::Token(issuer, user) => {
                let access = [(repo.to_owned(), vec!["pull".into(), "push".into()])];
                r.bearer_auth(issuer.mint(user, &access))
            }
            PushAuth::None => r,
        }
    }

    async fn send(
        &self,
        repo: &str,
        what: &str,
        r: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, FixtureError> {
        let resp = self
            .auth(repo, r)
            .send()
            .await
            .map_err(|source| FixtureError::Http {
                what: what.to_owned(),
                source,
            })?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Err(FixtureError::Setup(format!("{what}: {status}: {body}")));
        }
        Ok(resp)
    }

    /// Upload a blob unless the registry has it.
    pub async fn blob(&self, repo: &str, bytes: &[u8]) -> Result<String, FixtureError> {
        let d = digest(bytes);
        let head = self
            .auth(
                repo,
                self.http.head(format!("{}/v2/{repo}/blobs/{d}", self.base)),
            )
            .send()
            .await;
        if head.is_ok_and(|r| r.status().is_success()) {
            return Ok(d);
        }
        let what = format!("uploading {d} to {repo}");
        let start = self
            .send(
                repo,
                &what,
                self.http
                    .post(format!("{}/v2/{repo}/blobs/uploads/", self.base)),
            )
            .await?;
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| FixtureError::Setup(format!("{what}: no Location")))?
            .to_owned();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        self.send(
            repo,
            &what,
            self.http
                .put(format!("{url}{sep}digest={d}"))
                .header("content-type", "application/octet-stream")
                .body(bytes.to_vec()),
        )
        .await?;
        Ok(d)
    }

    /// Put a manifest (or index) under a tag or digest.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Pushed, FixtureError> {
        self.send(
            repo,
            &format!("putting manifest {repo}:{reference}"),
            self.http
                .put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
                .header("content-type", media_type)
                .body(bytes.to_vec()),
        )
        .await?;
        Ok(Pushed {
            digest: digest(bytes),
            size: bytes.len(),
            media_type: media_type.to_owned(),
        })
    }

    /// Push layers, a config for `os/arch`, and an OCI manifest tagged `tag`.
    pub async fn image(
        &self,
        repo: &str,
        tag: &str,
        layers: &[Blob],
        os: &str,
        arch: &str,
    ) -> Result<Pushed, FixtureError> {
        self.image_as(repo, tag, layers, os, arch, OCI_MANIFEST)
            .await
    }

    /// As [`Pusher::image`], with the manifest media type chosen (Docker v2 or OCI).
    pub async fn image_as(
        &self,
        repo: &str,
        tag: &str,
        layers: &[Blob],
        os: &str,
        arch: &str,
        manifest_type: &str,
    ) -> Result<Pushed, FixtureError> {
        let diff_ids: Vec<String> = layers.iter().map(diff_id).collect();
        let config = serde_json::json!({
            "architecture": arch, "os": os,
            "config": {}, "rootfs": { "type": "layers", "diff_ids": diff_ids },
        })
        .to_string();
        let config_type = if manifest_type == DOCKER_MANIFEST {
            "application/vnd.docker.container.image.v1+json"
        } else {
            OCI_CONFIG
        };
        let config_digest = self.blob(repo, config.as_bytes()).await?;
        let mut descs = Vec::new();
        for l in layers {
            self.blob(repo, &l.bytes).await?;
            let media_type = if manifest_type == DOCKER_MANIFEST && l.media_type.ends_with("+gzip")
            {
                "application/vnd.docker.image.rootfs.diff.tar.gzip".to_owned()
            } else {
                l.media_type.clone()
            };
            descs.push(serde_json::json!({ "mediaType": media_type, "digest": l.digest, "size": l.bytes.len() }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": { "mediaType": config_type, "digest": config_digest, "size": config.len() },
            "layers": descs,
        })
        .to_string();
        self.manifest(repo, tag, manifest_type, manifest.as_bytes())
            .await
    }

    /// Push an OCI index of already pushed images, each with its `os/arch[/variant]`.
    pub async fn index(
        &self,
        repo: &str,
        tag: &str,
        entries: &[(&Pushed, &str)],
    ) -> Result<Pushed, FixtureError> {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(p, platform)| {
                let mut parts = platform.split('/');
                let mut plat = serde_json::json!({
                    "os": parts.next().unwrap_or("linux"),
                    "architecture": parts.next().unwrap_or("amd64"),
                });
                if let Some(v) = parts.next() {
                    plat["variant"] = v.into();
                }
                serde_json::json!({ "mediaType": p.media_type, "digest": p.digest, "size": p.size, "platform": plat })
            })
            .collect();
        let index = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }).to_string();
        self.manifest(repo, tag, OCI_INDEX, index.as_bytes()).await
    }
}

/// The digest of a layer's uncompressed tar (what image configs list).
fn diff_id(layer: &Blob) -> String {
    let raw = if layer.media_type.ends_with("+gzip") {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(&layer.bytes[..]),
            &mut out,
        );
        out
    } else if layer.media_type.ends_with("+zstd") {
        zstd::decode_all(&layer.bytes[..]).unwrap_or_default()
    } else {
        layer.bytes.clone()
    };
    digest(&raw)
}

/// Copy an OCI image layout's image into the registry with skopeo (for images built by
/// `hack/debian-image.sh`).
pub fn skopeo_copy(
    layout: &Path,
    tag_in_layout: &str,
    registry: &Registry,
    repo_tag: &str,
) -> Result<(), FixtureError> {
    let skopeo = which("skopeo").ok_or_else(|| {
        FixtureError::Setup("skopeo is not installed: run hack/scan-tools.sh".into())
    })?;
    let mut cmd = Command::new(skopeo);
    cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
    if let Some((u, p)) = registry.login() {
        cmd.arg(format!("--dest-creds={u}:{p}"));
    }
    let out = cmd
        .arg(format!("oci:{}:{tag_in_layout}", layout.display()))
        .arg(format!("docker://{}/{repo_tag}", registry.host()))
        .output()
        .map_err(io("running skopeo"))?;
    if !out.status.success() {
        return Err(FixtureError::Setup(format!(
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The repository's root directory (for scripts under `hack/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Build (or reuse from the cache) the debootstrap Debian image; returns its OCI layout.
pub fn debian_layout(suite: &str) -> Result<PathBuf, FixtureError> {
    let script = repo_root().join("hack/debian-image.sh");
    let out = Command::new(&script)
        .arg(suite)
        .stderr(Stdio::inherit())
        .output()
        .map_err(io(format!("running {}", script.display())))?;
    if !out.status.success() {
        return Err(FixtureError::Setup(format!(
            "{} {suite} failed",
            script.display()
        )));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
