//! The OSV store against a real HTTP server on loopback serving export zips built here.

use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use palisade_scanner::inventory::{Inventory, OsRelease, Package, PackageKind};
use palisade_scanner::osv::{Database, Ecosystem, Refresh, Source, Store, match_inventory};
use palisade_scanner::report::Severity;

const OPENSSL_CVE: &str = r#"{
  "schema_version": "1.7.0",
  "id": "DEBIAN-CVE-2023-5363",
  "modified": "2024-09-18T03:00:00Z",
  "published": "2023-10-25T18:17:43Z",
  "upstream": ["CVE-2023-5363"],
  "details": "Issue summary: A bug has been identified in the processing of key and\ninitialisation vector (IV) lengths.",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}],
    "versions": ["3.0.9-1", "3.0.11-1~deb12u1"],
    "ecosystem_specific": {"urgency": "not yet assigned"}
  }]
}"#;

const OPENSSL_DSA: &str = r#"{
  "id": "DSA-5532-1",
  "modified": "2023-10-26T00:00:00Z",
  "published": "2023-10-26T00:00:00Z",
  "related": ["CVE-2023-5363", "CVE-2023-5678"],
  "summary": "openssl - security update",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}]
  }]
}"#;

const GLIBC_LOOPING_TUNABLES: &str = r#"{
  "id": "DEBIAN-CVE-2023-4911",
  "upstream": ["CVE-2023-4911"],
  "details": "A buffer overflow was discovered in the GNU C Library's dynamic loader ld.so",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "glibc"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}],
    "ecosystem_specific": {"urgency": "not yet assigned"}
  }]
}"#;

const WITHDRAWN: &str = r#"{
  "id": "DEBIAN-CVE-2000-0001",
  "withdrawn": "2024-01-01T00:00:00Z",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
  }]
}"#;

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(*name, opts).expect("test fixture");
        w.write_all(data.as_bytes()).expect("test fixture");
    }
    w.finish().expect("test fixture").into_inner()
}

fn export_a() -> Vec<u8> {
    zip_of(&[
        ("DEBIAN-CVE-2023-5363.json", OPENSSL_CVE),
        ("DSA-5532-1.json", OPENSSL_DSA),
        ("DEBIAN-CVE-2000-0001.json", WITHDRAWN),
    ])
}

fn export_b() -> Vec<u8> {
    zip_of(&[
        ("DEBIAN-CVE-2023-5363.json", OPENSSL_CVE),
        ("DSA-5532-1.json", OPENSSL_DSA),
        ("DEBIAN-CVE-2023-4911.json", GLIBC_LOOPING_TUNABLES),
    ])
}

#[derive(Clone)]
enum Mode {
    /// 200 with this body and ETag; 304 when If-None-Match matches.
    Serve(Vec<u8>, &'static str),
    /// 200 with a body that is not a zip.
    Corrupt,
    /// Content-Length of the full export, half the body, then the connection drops.
    Truncated(Vec<u8>),
    Status500,
    /// Answers headers, then never sends the body.
    Hang,
}

struct Server {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(mode: Mode) -> Server {
        let mode = Arc::new(Mutex::new(mode));
        let requests = Arc::new(AtomicUsize::new(0));
        let (m, r) = (mode.clone(), requests.clone());
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let (m, r) = (m.clone(), r.clone());
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                assert_eq!(uri.path(), "/Debian:12/all.zip");
                let mode = m.lock().expect("test fixture").clone();
                respond(mode, &headers)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test fixture");
        let addr = listener.local_addr().expect("test fixture");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test fixture");
        });
        Server {
            addr,
            mode,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("test fixture") = mode;
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn respond(mode: Mode, headers: &HeaderMap) -> Response {
    let builder = Response::builder();
    match mode {
        Mode::Serve(body, etag) => {
            let quoted = format!("\"{etag}\"");
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some(&quoted)
            {
                return builder
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Body::empty())
                    .expect("test fixture");
            }
            builder
                .header(header::ETAG, quoted)
                .header(header::LAST_MODIFIED, "Wed, 18 Sep 2024 03:00:00 GMT")
                .body(Body::from(body))
                .expect("test fixture")
        }
        Mode::Corrupt => builder
            .header(header::ETAG, "\"corrupt\"")
            .body(Body::from("<html>upstream error</html>"))
            .expect("test fixture"),
        Mode::Truncated(body) => {
            let len = body.len();
            let half = body[..len / 2].to_vec();
            // Half the body goes out, then the connection drops mid-transfer.
            let stream = futures::StreamExt::chain(
                futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(half))]),
                futures::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(std::io::Error::other("connection lost"))
                }),
            );
            builder
                .header(header::CONTENT_LENGTH, len)
                .header(header::ETAG, "\"truncated\"")
                .body(Body::from_stream(stream))
                .expect("test fixture")
        }
        Mode::Status500 => builder
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("internal error"))
            .expect("test fixture"),
        Mode::Hang => {
            let stream = futures::stream::once(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, std::io::Error>(bytes::Bytes::new())
            });
            builder
                .body(Body::from_stream(stream))
                .expect("test fixture")
        }
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("test fixture")
}

fn debian12() -> Ecosystem {
    Ecosystem::from_name("Debian:12").expect("test fixture")
}

fn inventory() -> Inventory {
    let pkg = |name: &str, version: &str, source: &str| Package {
        kind: PackageKind::Dpkg,
        name: name.into(),
        version: version.into(),
        source_name: Some(source.into()),
        source_version: None,
        arch: Some("amd64".into()),
        location: "var/lib/dpkg/status".into(),
    };
    Inventory {
        os: Some(OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            version_codename: Some("bookworm".into()),
            ..Default::default()
        }),
        packages: vec![
            pkg("libssl3", "3.0.9-1", "openssl"),
            pkg("libc6", "2.36-9+deb12u1", "glibc"),
        ],
        ..Default::default()
    }
}

/// (id and aliases, package, severity) of each finding.
fn ids(db: &Database) -> Vec<(String, String, Severity)> {
    match_inventory(db, &inventory())
        .into_iter()
        .map(|f| {
            let names = std::iter::once(f.id).chain(f.aliases).collect::<Vec<_>>();
            (names.join(" "), f.package, f.severity)
        })
        .collect()
}

fn db_of(loaded: &palisade_scanner::osv::Loaded) -> Database {
    let mut db = Database::new();
    db.insert_loaded(loaded);
    db
}

fn reason(e: palisade_scanner::Error) -> String {
    match e {
        palisade_scanner::Error::VulnDb { reason, .. } => reason,
        other => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn download_cache_refresh_and_failures_keep_the_good_copy() {
    let server = Server::start(Mode::Serve(export_a(), "a")).await;
    let cache = tempfile::tempdir().expect("test fixture");
    let store = Store::new(Source::Url(server.url()), cache.path(), client());

    // First load downloads.
    let first = store.load(&debian12()).await.expect("test fixture");
    assert_eq!(server.requests(), 1);
    assert_eq!(first.meta.advisories, 2, "withdrawn one skipped");
    assert_eq!(first.meta.etag.as_deref(), Some("\"a\""));
    assert_eq!(
        first.meta.source,
        format!("{}/Debian:12/all.zip", server.url())
    );
    let db_a = db_of(&first);
    let version_a = db_a.version();
    assert!(version_a.starts_with("Debian:12@"), "{version_a}");
    // Both advisories loaded: one finding, the DSA with Debian's CVE record among its names.
    assert_eq!(
        ids(&db_a),
        [(
            "DSA-5532-1 CVE-2023-5363 CVE-2023-5678 DEBIAN-CVE-2023-5363".into(),
            "libssl3".into(),
            Severity::High
        )]
    );

    // A second load on the same store reads the cache.
    store.load(&debian12()).await.expect("test fixture");
    assert_eq!(server.requests(), 1);

    // 304 Not Modified keeps it.
    assert!(matches!(
        store.refresh(&debian12()).await.expect("test fixture"),
        Refresh::NotModified
    ));
    assert_eq!(server.requests(), 2);

    // Failures: each a clear error, and the cached database unchanged.
    let failures = [
        (Mode::Corrupt, "not a readable zip archive"),
        (Mode::Truncated(export_b()), "download interrupted"),
        (Mode::Status500, "HTTP 500"),
    ];
    for (mode, want) in failures {
        server.set(mode);
        let err = reason(store.refresh(&debian12()).await.expect_err("must fail"));
        assert!(err.contains(want), "{err} (wanted {want})");
        let meta = store
            .cached_metadata("Debian:12")
            .await
            .expect("test fixture");
        assert_eq!(meta.sha256, first.meta.sha256);
        let again = Store::new(Source::Url(server.url()), cache.path(), client());
        let reloaded = again.load(&debian12()).await.expect("test fixture");
        assert_eq!(db_of(&reloaded).version(), version_a);
    }
    // No stray temporary files are left behind.
    let dir = store.ecosystem_dir("Debian:12");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("test fixture")
        .map(|e| {
            e.expect("test fixture")
                .file_name()
                .into_string()
                .expect("test fixture")
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [format!("{}.zip", first.meta.sha256), "meta.json".into()]
    );

    // A timeout is an error too.
    server.set(Mode::Hang);
    let impatient = Store::new(Source::Url(server.url()), cache.path(), client())
        .with_timeout(Duration::from_millis(300));
    let err = reason(impatient.refresh(&debian12()).await.expect_err("must fail"));
    assert!(err.contains("not finished within"), "{err}");

    // A size cap is an error.
    server.set(Mode::Serve(export_b(), "b"));
    let small =
        Store::new(Source::Url(server.url()), cache.path(), client()).with_max_download_bytes(100);
    let err = reason(small.refresh(&debian12()).await.expect_err("must fail"));
    assert!(err.contains("more than the 100"), "{err}");

    // A changed export replaces it and changes the version.
    let Refresh::Updated(second) = store.refresh(&debian12()).await.expect("test fixture") else {
        panic!("not updated");
    };
    assert_ne!(second.meta.sha256, first.meta.sha256);
    let db_b = db_of(&second);
    assert_ne!(db_b.version(), version_a);
    assert_eq!(
        ids(&db_b)[0],
        (
            "DEBIAN-CVE-2023-4911 CVE-2023-4911".into(),
            "libc6".into(),
            Severity::High
        )
    );
    assert!(!dir.join(format!("{}.zip", first.meta.sha256)).exists());

    // refresh_database: nothing new now.
    let (changed, errors) = store.refresh_database(&db_b).await;
    assert!(changed.is_none() && errors.is_empty(), "{errors:?}");

    // Server down: a new store on the same cache still loads, without the network.
    let url = server.url();
    server.task.abort();
    let _ = server.task.await;
    let offline = Store::new(Source::Url(url), cache.path(), client());
    let loaded = offline.load(&debian12()).await.expect("test fixture");
    assert_eq!(db_of(&loaded).version(), db_b.version());
    let err = reason(offline.refresh(&debian12()).await.expect_err("must fail"));
    assert!(err.contains("request failed"), "{err}");
    assert_eq!(
        offline
            .load(&debian12())
            .await
            .expect("test fixture")
            .meta
            .sha256,
        second.meta.sha256
    );
}

#[tokio::test]
async fn no_cache_and_no_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("test fixture");
    let addr = listener.local_addr().expect("test fixture");
    drop(listener);
    let cache = tempfile::tempdir().expect("test fixture");
    let store = Store::new(
        Source::Url(format!("http://{addr}")),
        cache.path(),
        client(),
    );
    let err = store.load(&debian12()).await.expect_err("must fail");
    assert!(err.to_string().contains("request failed"), "{err}");
}

#[tokio::test]
async fn a_directory_source_for_air_gapped_clusters() {
    let mount = tempfile::tempdir().expect("test fixture");
    let export = mount.path().join("Debian:12").join("all.zip");
    std::fs::create_dir_all(export.parent().expect("test fixture")).expect("test fixture");
    std::fs::write(&export, export_a()).expect("test fixture");
    let cache = tempfile::tempdir().expect("test fixture");
    let store = Store::new(Source::Dir(mount.path().into()), cache.path(), client());

    let first = store.load(&debian12()).await.expect("test fixture");
    assert_eq!(first.meta.advisories, 2);
    assert!(matches!(
        store.refresh(&debian12()).await.expect("test fixture"),
        Refresh::NotModified
    ));

    // A damaged file on the mount does not replace the good copy.
    std::fs::write(&export, b"PK\x03\x04 not really").expect("test fixture");
    let err = reason(store.refresh(&debian12()).await.expect_err("must fail"));
    assert!(err.contains("not a readable zip archive"), "{err}");
    let again = Store::new(Source::Dir(mount.path().into()), cache.path(), client());
    assert_eq!(
        again
            .load(&debian12())
            .await
            .expect("test fixture")
            .meta
            .sha256,
        first.meta.sha256
    );

    // A missing file is an error, and the cache still serves.
    std::fs::remove_file(&export).expect("test fixture");
    assert!(store.refresh(&debian12()).await.is_err());
    assert!(store.load(&debian12()).await.is_ok());

    // A new export is picked up.
    std::fs::write(&export, export_b()).expect("test fixture");
    let Refresh::Updated(second) = store.refresh(&debian12()).await.expect("test fixture") else {
        panic!("not updated");
    };
    assert_ne!(db_of(&second).version(), db_of(&first).version());
    assert_eq!(second.meta.advisories, 3);
}
