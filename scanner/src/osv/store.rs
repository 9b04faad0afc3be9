//! The database's I/O edge: fetch an ecosystem's export, keep it on disk, refresh it safely.
//!
//! Two kinds of source: OSV exports (`<base>/<ECOSYSTEM>/all.zip`, [`Source`]) for most
//! ecosystems, and for those given one ([`Store::with_updateinfo`], by default Amazon
//! Linux's, [`crate::updateinfo::DEFAULT_SOURCES`]) a yum/dnf `updateinfo.xml`, found
//! through a `mirror.list` and the repository's `repomd.xml` when the location names those
//! ([`crate::updateinfo::repo`]). Both take the same path below: the transfer, the digest,
//! the cache, the conditional refresh and the safety rules are shared; only the parser
//! differs.
//!
//! Layout of the cache directory, one folder per ecosystem (`Debian_12/`):
//! - `<sha256>.zip` (an export) or `<sha256>.xml[.gz|.zst]` (an updateinfo document, as
//!   fetched): the last good copy, named by its digest;
//! - `meta.json`: [`Metadata`], naming that file; written (atomically) only after the
//!   export parsed.
//!
//! [`Store::refresh`] downloads (or copies, for a [`Source::Dir`]) to a temporary file in
//! that folder while hashing it, within a size cap and a timeout, parses it into an
//! [`Index`], and only then renames it into place and rewrites `meta.json`. A failed,
//! truncated, corrupt or oversized transfer leaves the previous export and its metadata as
//! they were. [`Store::load`] reads the cache (a restart does not re-download), checks the
//! digest, and fetches only when there is no usable copy.
//!
//! Scheduling is the caller's: call [`Store::refresh_database`] (or [`Store::refresh`] per
//! ecosystem) on a timer, and swap in the returned [`Database`] when it changed. Heavy work
//! (hashing, unzipping, JSON) runs on tokio's blocking pool.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Database, Ecosystem, Index, Limits};
use crate::Error;
use crate::updateinfo::{self, repo};

/// Where exports come from. Both have the layout of the public OSV bucket:
/// `<base>/<ECOSYSTEM>/all.zip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A base URL (`https://osv-vulnerabilities.storage.googleapis.com`, or a mirror).
    Url(String),
    /// A directory (a mounted volume, for air-gapped clusters).
    Dir(PathBuf),
}

impl Source {
    /// Where an ecosystem's export is, as a URL or a path.
    pub fn location(&self, ecosystem: &str) -> String {
        match self {
            Source::Url(base) => format!(
                "{}/{}/all.zip",
                base.trim_end_matches('/'),
                encode_segment(ecosystem)
            ),
            Source::Dir(dir) => dir.join(ecosystem).join("all.zip").display().to_string(),
        }
    }
}

/// What the cache records about an ecosystem's export (`meta.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub ecosystem: String,
    /// The URL or path it was fetched from: the export, or the configured updateinfo
    /// location (a document, a repository or a mirror list).
    pub source: String,
    /// For updateinfo: the document that location led to, which the validators belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Validators for the next conditional request. For a directory source, the etag is the
    /// file's size and modification time.
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Hex digest of the export.
    pub sha256: String,
    pub size: u64,
    pub fetched_at: jiff::Timestamp,
    /// Advisories that affect this ecosystem (withdrawn ones not counted).
    pub advisories: usize,
    /// The export's file name in the ecosystem's cache folder.
    pub file: String,
}

/// An ecosystem's index with what the cache knows about it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub index: Arc<Index>,
    pub meta: Metadata,
}

/// What a refresh did.
#[derive(Clone, Debug)]
pub enum Refresh {
    /// A new export was fetched, parsed and stored (boxed: far larger than the other case).
    Updated(Box<Loaded>),
    /// The source has the same export (304 Not Modified, an unchanged file, or the same
    /// digest); the cached copy stays.
    NotModified,
}

/// Fetches and caches OSV exports. Cheap to share behind an `Arc`; refreshes of one store are
/// serialized.
#[derive(Debug)]
pub struct Store {
    source: Source,
    cache_dir: PathBuf,
    client: reqwest::Client,
    max_download_bytes: u64,
    timeout: Duration,
    limits: Limits,
    /// Ecosystems read from an updateinfo location instead of an OSV export.
    updateinfo: std::collections::BTreeMap<String, String>,
    refreshing: tokio::sync::Mutex<()>,
}

impl Store {
    /// A store reading `source` and caching in `cache_dir` (created when needed). The client
    /// is the caller's (with its proxy, roots and the process's TLS provider).
    pub fn new(source: Source, cache_dir: impl Into<PathBuf>, client: reqwest::Client) -> Self {
        Store {
            source,
            cache_dir: cache_dir.into(),
            client,
            max_download_bytes: 1 << 30,
            timeout: Duration::from_secs(600),
            limits: Limits::default(),
            updateinfo: updateinfo::DEFAULT_SOURCES
                .iter()
                .map(|(e, l)| ((*e).to_owned(), (*l).to_owned()))
                .collect(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Read `ecosystem` (`Amazon Linux:2`) from an updateinfo location: an http(s) URL or a
    /// path naming the document (`.xml`, `.xml.gz`, `.xml.zst`), a repository (its base or
    /// `repodata/repomd.xml`) or a `mirror.list`. Replaces the default for that ecosystem,
    /// and takes precedence over the OSV source.
    pub fn with_updateinfo(
        mut self,
        ecosystem: impl Into<String>,
        location: impl Into<String>,
    ) -> Self {
        self.updateinfo.insert(ecosystem.into(), location.into());
        self
    }

    /// The updateinfo location of an ecosystem, if it is read from one.
    pub fn updateinfo_location(&self, ecosystem: &str) -> Option<&str> {
        self.updateinfo.get(ecosystem).map(String::as_str)
    }

    /// The ecosystems read from updateinfo, with their locations, by name.
    pub fn updateinfo_sources(&self) -> impl Iterator<Item = (&str, &str)> {
        self.updateinfo
            .iter()
            .map(|(e, l)| (e.as_str(), l.as_str()))
    }

    /// Where an ecosystem's data comes from: its updateinfo location, else its export's.
    pub fn location(&self, ecosystem: &Ecosystem) -> String {
        match self.updateinfo_location(&ecosystem.name) {
            Some(l) => l.to_owned(),
            None => self.source.location(ecosystem.export_name()),
        }
    }

    fn kind(&self, ecosystem: &Ecosystem) -> Kind {
        match self.updateinfo_location(&ecosystem.name) {
            Some(_) => Kind::Updateinfo,
            None => Kind::Export,
        }
    }

    /// Refuse exports larger than this (default 1 GiB).
    pub fn with_max_download_bytes(mut self, bytes: u64) -> Self {
        self.max_download_bytes = bytes;
        self
    }

    /// Give up on a transfer that takes longer than this, from request to last byte
    /// (default 10 minutes).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bounds on the archive's content.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The cache folder of an ecosystem.
    pub fn ecosystem_dir(&self, ecosystem: &str) -> PathBuf {
        let safe: String = ecosystem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache_dir.join(safe)
    }

    /// The metadata of the cached export, if there is one.
    pub async fn cached_metadata(&self, ecosystem: &str) -> Option<Metadata> {
        let path = self.ecosystem_dir(ecosystem).join("meta.json");
        let bytes = tokio::fs::read(&path).await.ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable database metadata; ignoring the cached copy");
                None
            }
        }
    }

    /// An ecosystem's index: from the cache when it holds a good copy, else fetched.
    pub async fn load(&self, ecosystem: &Ecosystem) -> Result<Loaded, Error> {
        if let Some(loaded) = self.load_cached(ecosystem).await {
            return Ok(loaded);
        }
        let _guard = self.refreshing.lock().await;
        // Another task may have fetched it while this one waited.
        if let Some(loaded) = self.load_cached(ecosystem).await {
            return Ok(loaded);
        }
        match self.fetch(ecosystem, None).await? {
            Refresh::Updated(loaded) => Ok(*loaded),
            Refresh::NotModified => Err(Error::VulnDb {
                source_name: self.location(ecosystem),
                reason: "answered 'not modified' to an unconditional request".to_owned(),
            }),
        }
    }

    /// Load several ecosystems into one database.
    pub async fn database(&self, ecosystems: &[Ecosystem]) -> Result<Database, Error> {
        let mut db = Database::new();
        for e in ecosystems {
            db.insert_loaded(&self.load(e).await?);
        }
        Ok(db)
    }

    /// Fetch the export again if the source has a newer one (a conditional request with the
    /// cached ETag / Last-Modified). On any failure the cached export stays as it was.
    pub async fn refresh(&self, ecosystem: &Ecosystem) -> Result<Refresh, Error> {
        let _guard = self.refreshing.lock().await;
        let previous = self
            .cached_metadata(&ecosystem.name)
            .await
            .filter(|m| self.ecosystem_dir(&ecosystem.name).join(&m.file).is_file());
        self.fetch(ecosystem, previous).await
    }

    /// Refresh every ecosystem of `db`. Returns the new database when any changed, and the
    /// errors of those that failed (they keep their current index).
    pub async fn refresh_database(&self, db: &Database) -> (Option<Database>, Vec<Error>) {
        let mut next = db.clone();
        let mut changed = false;
        let mut errors = Vec::new();
        let names: Vec<String> = db.ecosystems().map(str::to_owned).collect();
        for name in names {
            let Some(eco) = db.get(&name).map(|i| i.ecosystem().clone()) else {
                continue;
            };
            match self.refresh(&eco).await {
                Ok(Refresh::Updated(loaded)) => {
                    next.insert_loaded(&loaded);
                    changed = true;
                }
                Ok(Refresh::NotModified) => {}
                Err(e) => errors.push(e),
            }
        }
        (changed.then_some(next), errors)
    }

    async fn load_cached(&self, ecosystem: &Ecosystem) -> Option<Loaded> {
        let meta = self.cached_metadata(&ecosystem.name).await?;
        let kind = self.kind(ecosystem);
        if Kind::of_file(&meta.file) != kind {
            // The ecosystem moved between an export and an updateinfo source.
            return None;
        }
        let path = self.ecosystem_dir(&ecosystem.name).join(&meta.file);
        let eco = ecosystem.clone();
        let limits = self.limits;
        let expected = meta.sha256.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<Index, String> {
            let digest = hash_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if digest != expected {
                return Err(format!(
                    "{}: digest {digest} is not the recorded {expected}",
                    path.display()
                ));
            }
            let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            let name = path.display().to_string();
            kind.parse(eco, file, &name, limits)
                .map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(index)) => Some(Loaded {
                index: Arc::new(index),
                meta,
            }),
            Ok(Err(reason)) => {
                tracing::warn!(ecosystem = %ecosystem.name, %reason, "cached vulnerability database unusable; fetching it again");
                None
            }
            Err(e) => {
                tracing::warn!(ecosystem = %ecosystem.name, error = %e, "loading the cached vulnerability database failed");
                None
            }
        }
    }

    /// `fut` within the store's timeout; past it, an error naming `what` did not finish.
    async fn within_timeout<T>(
        &self,
        location: &str,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(Error::VulnDb {
                    source_name: location.to_owned(),
                    reason: format!("{what} not finished within {}s", self.timeout.as_secs()),
                })
            })
    }

    /// Transfer the export into a temporary file, parse it, then put it in place.
    async fn fetch(
        &self,
        ecosystem: &Ecosystem,
        previous: Option<Metadata>,
    ) -> Result<Refresh, Error> {
        let location = self.location(ecosystem);
        let kind = self.kind(ecosystem);
        let dir = self.ecosystem_dir(&ecosystem.name);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::Io {
                what: format!("creating the database cache {}", dir.display()),
                source: e,
            })?;
        // Validators only apply to the same source: a changed mirror is fetched in full.
        let previous = previous.filter(|m| m.source == location);
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(|e| Error::Io {
                what: format!("creating a temporary file in {}", dir.display()),
                source: e,
            })?;
        let transfer = match (&self.source, kind) {
            (_, Kind::Updateinfo) => {
                let fut = self.transfer_updateinfo(&location, previous.as_ref(), &tmp);
                self.within_timeout(&location, "transfer", fut).await?
            }
            (Source::Url(_), Kind::Export) => {
                let fut = self.download(&location, previous.as_ref(), &tmp);
                self.within_timeout(&location, "download", fut).await?
            }
            (Source::Dir(_), Kind::Export) => {
                self.copy_file(&location, previous.as_ref(), &tmp).await?
            }
        };
        let Some(transfer) = transfer else {
            return Ok(Refresh::NotModified);
        };
        if let Some(prev) = &previous
            && prev.sha256 == transfer.sha256
        {
            // Same content under new validators: keep the cached copy, remember them.
            let meta = Metadata {
                etag: transfer.etag,
                last_modified: transfer.last_modified,
                resolved: transfer.resolved,
                fetched_at: jiff::Timestamp::now(),
                ..prev.clone()
            };
            write_metadata(&dir, &meta).await?;
            return Ok(Refresh::NotModified);
        }
        let eco = ecosystem.clone();
        let limits = self.limits;
        // Parse errors name the document a mirror list or repository led to.
        let name = transfer
            .resolved
            .clone()
            .unwrap_or_else(|| location.clone());
        let tmp_path = tmp.path().to_path_buf();
        let index = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&tmp_path).map_err(|e| Error::Io {
                what: format!("reading the downloaded database {}", tmp_path.display()),
                source: e,
            })?;
            kind.parse(eco, file, &name, limits)
        })
        .await
        .map_err(|e| Error::VulnDb {
            source_name: location.clone(),
            reason: format!("parsing stopped: {e}"),
        })??;
        let file = format!("{}{}", transfer.sha256, kind.suffix(tmp.path()));
        let target = dir.join(&file);
        tmp.persist(&target).map_err(|e| Error::Io {
            what: format!("storing the database as {}", target.display()),
            source: e.error,
        })?;
        let meta = Metadata {
            ecosystem: ecosystem.name.clone(),
            source: location,
            resolved: transfer.resolved,
            etag: transfer.etag,
            last_modified: transfer.last_modified,
            sha256: transfer.sha256,
            size: transfer.size,
            fetched_at: jiff::Timestamp::now(),
            advisories: index.advisory_count(),
            file,
        };
        write_metadata(&dir, &meta).await?;
        remove_stale_exports(&dir, &meta.file).await;
        tracing::info!(
            ecosystem = %meta.ecosystem,
            advisories = meta.advisories,
            sha256 = %meta.sha256,
            "vulnerability database updated"
        );
        Ok(Refresh::Updated(Box::new(Loaded {
            index: Arc::new(index),
            meta,
        })))
    }

    /// Follow an updateinfo location to its document and transfer that into `tmp`; `None`
    /// when it is the document fetched last time and unchanged (304 Not Modified, or the
    /// same file stamp). A mirror list's repositories are tried in order until one works;
    /// the error names each failure.
    async fn transfer_updateinfo(
        &self,
        location: &str,
        previous: Option<&Metadata>,
        tmp: &tempfile::NamedTempFile,
    ) -> Result<Option<Transfer>, Error> {
        let repositories = match repo::shape(location) {
            repo::Shape::Document => {
                return self.transfer_document(location, previous, tmp).await;
            }
            repo::Shape::Repository => vec![location.to_owned()],
            repo::Shape::MirrorList => {
                let list = self.read_small(location).await?;
                let list = String::from_utf8_lossy(&list);
                let mirrors: Vec<String> = repo::mirrors(&list)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if mirrors.is_empty() {
                    return Err(Error::VulnDb {
                        source_name: location.to_owned(),
                        reason: "the mirror list names no repository".to_owned(),
                    });
                }
                mirrors
            }
        };
        let mut failures = Vec::new();
        for repository in repositories {
            let attempt = async {
                let repomd = repo::repomd_location(&repository);
                let content = self.read_small(&repomd).await?;
                let document = repo::updateinfo_location(&repomd, &content)?;
                self.transfer_document(&document, previous, tmp).await
            };
            match attempt.await {
                Ok(t) => return Ok(t),
                Err(e) => {
                    tracing::warn!(%location, %repository, error = %error_chain(&e), "updateinfo repository unusable; trying the next one");
                    failures.push(e.to_string());
                    // A failed attempt may have written part of a document.
                    rewind(tmp)?;
                }
            }
        }
        Err(Error::VulnDb {
            source_name: location.to_owned(),
            reason: format!("no repository worked: {}", failures.join("; ")),
        })
    }

    /// Transfer an updateinfo document (URL or path) into `tmp`, conditionally when it is
    /// the one the cached copy came from.
    async fn transfer_document(
        &self,
        document: &str,
        previous: Option<&Metadata>,
        tmp: &tempfile::NamedTempFile,
    ) -> Result<Option<Transfer>, Error> {
        // A repository names a new document on each update: validators of another one
        // do not apply.
        let previous = previous.filter(|m| m.resolved.as_deref() == Some(document));
        let transfer = if repo::is_url(document) {
            self.download(document, previous, tmp).await?
        } else {
            self.copy_file(document, previous, tmp).await?
        };
        Ok(transfer.map(|t| Transfer {
            resolved: Some(document.to_owned()),
            ..t
        }))
    }

    /// A mirror list or a `repomd.xml`, whole, within [`repo::MAX_INDEX_BYTES`].
    async fn read_small(&self, location: &str) -> Result<Vec<u8>, Error> {
        let cap = repo::MAX_INDEX_BYTES;
        let fail = |reason: String| Error::VulnDb {
            source_name: location.to_owned(),
            reason,
        };
        let too_big = || fail(format!("more than the {cap} bytes allowed"));
        if !repo::is_url(location) {
            let file = tokio::fs::File::open(location)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let mut out = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(
                &mut tokio::io::AsyncReadExt::take(file, cap + 1),
                &mut out,
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
            if out.len() as u64 > cap {
                return Err(too_big());
            }
            return Ok(out);
        }
        let response = self
            .client
            .get(location)
            .send()
            .await
            .map_err(|e| fail(format!("request failed: {}", error_chain(&e))))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        let mut out = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(format!("interrupted: {}", error_chain(&e))))?;
            if (out.len() + chunk.len()) as u64 > cap {
                return Err(too_big());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// GET the export into `tmp`; `None` on 304 Not Modified.
    async fn download(
        &self,
        url: &str,
        previous: Option<&Metadata>,
        tmp: &tempfile::NamedTempFile,
    ) -> Result<Option<Transfer>, Error> {
        let fail = |reason: String| Error::VulnDb {
            source_name: url.to_owned(),
            reason,
        };
        let mut request = self.client.get(url);
        if let Some(prev) = previous {
            if let Some(etag) = &prev.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &prev.last_modified {
                request = request.header(IF_MODIFIED_SINCE, lm);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| fail(format!("request failed: {}", error_chain(&e))))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && previous.is_some() {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
        let expected = response.content_length();
        if let Some(len) = expected
            && len > self.max_download_bytes
        {
            return Err(fail(format!(
                "{len} bytes, more than the {} allowed",
                self.max_download_bytes
            )));
        }
        let std_file = tmp.as_file().try_clone().map_err(|e| Error::Io {
            what: format!("opening {}", tmp.path().display()),
            source: e,
        })?;
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                fail(format!(
                    "download interrupted after {size} bytes: {}",
                    error_chain(&e)
                ))
            })?;
            size += chunk.len() as u64;
            if size > self.max_download_bytes {
                return Err(fail(format!(
                    "more than the {} bytes allowed",
                    self.max_download_bytes
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| Error::Io {
                what: format!("writing {}", tmp.path().display()),
                source: e,
            })?;
        }
        if let Some(len) = expected
            && len != size
        {
            return Err(fail(format!("truncated: {size} of {len} bytes received")));
        }
        file.sync_all().await.map_err(|e| Error::Io {
            what: format!("writing {}", tmp.path().display()),
            source: e,
        })?;
        Ok(Some(Transfer {
            sha256: hex::encode(hasher.finalize()),
            size,
            etag,
            last_modified,
            resolved: None,
        }))
    }

    /// Copy the export from a directory source into `tmp`; `None` when the file has the
    /// size and modification time recorded last time.
    async fn copy_file(
        &self,
        path: &str,
        previous: Option<&Metadata>,
        tmp: &tempfile::NamedTempFile,
    ) -> Result<Option<Transfer>, Error> {
        let source = PathBuf::from(path);
        let stamp = tokio::fs::metadata(&source)
            .await
            .map(|m| file_stamp(&m))
            .map_err(|e| Error::VulnDb {
                source_name: path.to_owned(),
                reason: e.to_string(),
            })?;
        if previous.and_then(|p| p.etag.as_deref()) == Some(stamp.as_str()) {
            return Ok(None);
        }
        let out = tmp.as_file().try_clone().map_err(|e| Error::Io {
            what: format!("opening {}", tmp.path().display()),
            source: e,
        })?;
        let cap = self.max_download_bytes;
        let name = path.to_owned();
        tokio::task::spawn_blocking(move || copy_hashing(&source, out, cap, &name))
            .await
            .map_err(|e| Error::VulnDb {
                source_name: path.to_owned(),
                reason: format!("copy stopped: {e}"),
            })?
            .map(|(sha256, size)| {
                Some(Transfer {
                    sha256,
                    size,
                    etag: Some(stamp),
                    last_modified: None,
                    resolved: None,
                })
            })
    }
}

struct Transfer {
    sha256: String,
    size: u64,
    etag: Option<String>,
    last_modified: Option<String>,
    /// The updateinfo document a location led to.
    resolved: Option<String>,
}

/// What an ecosystem's source holds, and so which parser reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Export,
    Updateinfo,
}

impl Kind {
    /// The kind of a cached file, by the name the store gave it.
    fn of_file(name: &str) -> Kind {
        if name.ends_with(".zip") {
            Kind::Export
        } else {
            Kind::Updateinfo
        }
    }

    fn parse(
        self,
        ecosystem: Ecosystem,
        file: std::fs::File,
        name: &str,
        limits: Limits,
    ) -> Result<Index, Error> {
        let reader = std::io::BufReader::new(file);
        match self {
            Kind::Export => Index::from_zip(ecosystem, reader, name, limits),
            Kind::Updateinfo => updateinfo::index(ecosystem, reader, name, limits),
        }
    }

    /// The cache file's suffix: `.zip`, or for a document its compression's (read from its
    /// first bytes), for whoever looks into the cache.
    fn suffix(self, path: &Path) -> &'static str {
        if self == Kind::Export {
            return ".zip";
        }
        let mut head = [0u8; 4];
        let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut head));
        match (read, head) {
            (Ok(n), [0x1f, 0x8b, ..]) if n >= 2 => ".xml.gz",
            (Ok(4), [0x28, 0xb5, 0x2f, 0xfd]) => ".xml.zst",
            _ => ".xml",
        }
    }
}

/// Empty `tmp` for another attempt.
fn rewind(tmp: &tempfile::NamedTempFile) -> Result<(), Error> {
    use std::io::Seek as _;
    let io = |e| Error::Io {
        what: format!("emptying {}", tmp.path().display()),
        source: e,
    };
    tmp.as_file().set_len(0).map_err(io)?;
    tmp.as_file()
        .seek(std::io::SeekFrom::Start(0))
        .map_err(io)?;
    Ok(())
}

/// `<size>-<mtime in ns>`: changes when a mounted export is replaced.
fn file_stamp(m: &std::fs::Metadata) -> String {
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}-{mtime}", m.len())
}

fn copy_hashing(
    source: &Path,
    mut out: std::fs::File,
    cap: u64,
    name: &str,
) -> Result<(String, u64), Error> {
    let fail = |reason: String| Error::VulnDb {
        source_name: name.to_owned(),
        reason,
    };
    let input = std::fs::File::open(source).map_err(|e| fail(e.to_string()))?;
    let mut input = input.take(cap + 1);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > cap {
            return Err(fail(format!("more than the {cap} bytes allowed")));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::Io {
            what: "copying the database into the cache".to_owned(),
            source: e,
        })?;
    }
    out.sync_all().map_err(|e| Error::Io {
        what: "copying the database into the cache".to_owned(),
        source: e,
    })?;
    Ok((hex::encode(hasher.finalize()), size))
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Write `meta.json` through a temporary file and a rename, so readers see the old or the
/// new metadata, never half of one.
async fn write_metadata(dir: &Path, meta: &Metadata) -> Result<(), Error> {
    let dir = dir.to_path_buf();
    let json = serde_json::to_vec_pretty(meta).map_err(|e| Error::VulnDb {
        source_name: meta.source.clone(),
        reason: format!("encoding metadata: {e}"),
    })?;
    tokio::task::spawn_blocking(move || {
        let io = |e: std::io::Error| Error::Io {
            what: format!("writing {}", dir.join("meta.json").display()),
            source: e,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".meta-")
            .tempfile_in(&dir)
            .map_err(io)?;
        tmp.write_all(&json).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(dir.join("meta.json"))
            .map_err(|e| io(e.error))?;
        Ok(())
    })
    .await
    .map_err(|e| Error::VulnDb {
        source_name: "metadata".to_owned(),
        reason: e.to_string(),
    })?
}

/// Remove cached copies other than the current one (earlier versions, the other kind's).
async fn remove_stale_exports(dir: &Path, keep: &str) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let cached = name.ends_with(".zip") || name.contains(".xml");
        if name != keep && cached && !name.starts_with('.') {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

/// Percent-encode a path segment (`Rocky Linux:9` → `Rocky%20Linux:9`); `:` stays, as in the
/// bucket's own URLs.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error with its causes (reqwest's top-level message alone hides the reason).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_the_bucket_layout() {
        let url = Source::Url("https://osv-vulnerabilities.storage.googleapis.com/".into());
        assert_eq!(
            url.location("Debian:12"),
            "https://osv-vulnerabilities.storage.googleapis.com/Debian:12/all.zip"
        );
        assert_eq!(
            url.location("Rocky Linux:9"),
            "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux:9/all.zip"
        );
        let rhel = Ecosystem::from_name("Red Hat:enterprise_linux:9").expect("known");
        assert_eq!(
            url.location(rhel.export_name()),
            "https://osv-vulnerabilities.storage.googleapis.com/Red%20Hat/all.zip",
            "every Red Hat release reads the one Red Hat export"
        );
        let dir = Source::Dir("/mnt/osv".into());
        assert_eq!(
            dir.location("Alpine:v3.20"),
            "/mnt/osv/Alpine:v3.20/all.zip"
        );
    }
}
