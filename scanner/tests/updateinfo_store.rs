//! The store reading an ecosystem from updateinfo: a real HTTP server on loopback serving
//! a mirror list, a repository's repomd.xml and its updateinfo.xml.gz; and a repository on
//! disk.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use palisade_scanner::inventory::{Inventory, OsRelease, Package, PackageKind};
use palisade_scanner::osv::{Database, Ecosystem, Refresh, Source, Store, match_inventory};
use palisade_scanner::report::Severity;

fn update(
    id: &str,
    severity: &str,
    cve: &str,
    name: &str,
    epoch: &str,
    vr: (&str, &str),
) -> String {
    format!(
        r#"  <update author="linux-security@amazon.com" from="linux-security@amazon.com" status="final" type="security" version="1.4">
    <id>{id}</id>
    <title>Amazon Linux 2 - {id}: {severity} priority package update for {name}</title>
    <issued date="2024-01-03 19:08" />
    <updated date="2024-01-03 19:08" />
    <severity>{severity}</severity>
    <description>Package updates are available for Amazon Linux 2 that fix the following vulnerabilities: {cve}</description>
    <references>
      <reference href="https://cve.mitre.org/cgi-bin/cvename.cgi?name={cve}" id="{cve}" title="" type="cve" />
    </references>
    <pkglist>
      <collection short="amazon-linux-2">
        <name>amazon-linux-2</name>
        <package arch="x86_64" epoch="{epoch}" name="{name}" release="{r}" version="{v}"><filename>Packages/{name}-{v}-{r}.x86_64.rpm</filename></package>
        <package arch="aarch64" epoch="{epoch}" name="{name}" release="{r}" version="{v}"><filename>Packages/{name}-{v}-{r}.aarch64.rpm</filename></package>
        <package arch="src" epoch="{epoch}" name="{name}" release="{r}" version="{v}"><filename>Packages/{name}-{v}-{r}.src.rpm</filename></package>
      </collection>
    </pkglist>
  </update>
"#,
        v = vr.0,
        r = vr.1,
    )
}

fn document(updates: &[String]) -> Vec<u8> {
    let xml = format!(
        "<?xml version=\"1.0\" ?>\n<updates>\n{}</updates>\n",
        updates.concat()
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(xml.as_bytes()).expect("test fixture");
    gz.finish().expect("test fixture")
}

fn openssl() -> String {
    update(
        "ALAS2-2023-2020",
        "important",
        "CVE-2023-0286",
        "openssl-libs",
        "1",
        ("1.0.2k", "24.amzn2.0.6"),
    )
}

fn curl() -> String {
    update(
        "ALAS2-2024-2400",
        "medium",
        "CVE-2023-46218",
        "curl",
        "0",
        ("8.3.0", "13.amzn2.0.5"),
    )
}

fn repomd(href: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1704309000</revision>
  <data type="primary"><location href="repodata/0-primary.sqlite.gz"/></data>
  <data type="updateinfo">
    <checksum type="sha256">x</checksum>
    <location href="{href}"/>
  </data>
</repomd>
"#
    )
    .into_bytes()
}

/// Path → (body, ETag); a path not in the map is 404. Requests are counted by path, and
/// those that carried If-None-Match apart.
#[derive(Default)]
struct Files {
    files: HashMap<String, (Vec<u8>, String)>,
    requests: HashMap<String, usize>,
    conditional: HashMap<String, usize>,
}

struct Server {
    addr: SocketAddr,
    files: Arc<Mutex<Files>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let files = Arc::new(Mutex::new(Files::default()));
        let f = files.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let f = f.clone();
            async move {
                let mut files = f.lock().expect("test fixture");
                let path = uri.path().to_owned();
                *files.requests.entry(path.clone()).or_default() += 1;
                let Some((body, etag)) = files.files.get(&path).cloned() else {
                    return Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Body::empty())
                        .expect("test fixture");
                };
                let quoted = format!("\"{etag}\"");
                if let Some(sent) = headers.get(header::IF_NONE_MATCH) {
                    *files.conditional.entry(path).or_default() += 1;
                    if sent.to_str().ok() == Some(quoted.as_str()) {
                        return Response::builder()
                            .status(StatusCode::NOT_MODIFIED)
                            .body(Body::empty())
                            .expect("test fixture");
                    }
                }
                Response::builder()
                    .header(header::ETAG, quoted)
                    .body(Body::from(body))
                    .expect("test fixture")
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
            files,
            _task: task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn put(&self, path: &str, body: Vec<u8>, etag: &str) {
        let mut files = self.files.lock().expect("test fixture");
        files.files.insert(path.to_owned(), (body, etag.to_owned()));
    }

    fn requests(&self, path: &str) -> (usize, usize) {
        let files = self.files.lock().expect("test fixture");
        (
            files.requests.get(path).copied().unwrap_or(0),
            files.conditional.get(path).copied().unwrap_or(0),
        )
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("test fixture")
}

fn al2() -> Ecosystem {
    Ecosystem::from_name("Amazon Linux:2").expect("test fixture")
}

fn inventory() -> Inventory {
    let rpm = |name: &str, version: &str| Package {
        kind: PackageKind::Rpm,
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        arch: Some("x86_64".into()),
        location: "var/lib/rpm/Packages".into(),
    };
    Inventory {
        os: Some(OsRelease {
            id: "amzn".into(),
            version_id: Some("2".into()),
            pretty_name: Some("Amazon Linux 2".into()),
            ..Default::default()
        }),
        packages: vec![
            rpm("openssl-libs", "1:1.0.2k-24.amzn2.0.4"),
            rpm("curl", "8.3.0-13.amzn2.0.2"),
        ],
        ..Default::default()
    }
}

/// (id and aliases, package, fixed, severity) of each finding.
fn findings(loaded: &palisade_scanner::osv::Loaded) -> Vec<(String, String, String, Severity)> {
    let mut db = Database::new();
    db.insert_loaded(loaded);
    match_inventory(&db, &inventory())
        .into_iter()
        .map(|f| {
            let names = std::iter::once(f.id).chain(f.aliases).collect::<Vec<_>>();
            (
                names.join(" "),
                f.package,
                f.fixed_version.unwrap_or_default(),
                f.severity,
            )
        })
        .collect()
}

const DOC_1: &str = "/al2/core/2.0/x86_64/abc/repodata/111-updateinfo.xml.gz";
const DOC_2: &str = "/al2/core/2.0/x86_64/abc/repodata/222-updateinfo.xml.gz";
const REPOMD: &str = "/al2/core/2.0/x86_64/abc/repodata/repomd.xml";
const MIRRORS: &str = "/al2/core/latest/x86_64/mirror.list";

#[tokio::test]
async fn mirror_list_to_repomd_to_updateinfo_with_conditional_refresh_and_safe_failures() {
    let server = Server::start().await;
    // The first mirror has no repository; the second is used.
    server.put(
        MIRRORS,
        format!(
            "{}\n{}\n",
            server.url("/gone/x86_64"),
            server.url("/al2/core/2.0/x86_64/abc")
        )
        .into_bytes(),
        "m",
    );
    server.put(REPOMD, repomd("repodata/111-updateinfo.xml.gz"), "r1");
    server.put(DOC_1, document(&[openssl()]), "d1");
    let cache = tempfile::tempdir().expect("test fixture");
    let new_store = || {
        // The OSV source is never asked for this ecosystem.
        Store::new(
            Source::Url(server.url("/osv-unused")),
            cache.path(),
            client(),
        )
        .with_updateinfo("Amazon Linux:2", server.url(MIRRORS))
    };
    let store = new_store();

    let first = store.load(&al2()).await.expect("loads");
    assert_eq!(first.meta.advisories, 1);
    assert_eq!(first.meta.source, server.url(MIRRORS));
    assert_eq!(first.meta.resolved, Some(server.url(DOC_1)));
    assert_eq!(first.meta.etag.as_deref(), Some("\"d1\""));
    assert!(first.meta.file.ends_with(".xml.gz"), "{}", first.meta.file);
    assert_eq!(
        findings(&first),
        [(
            "ALAS2-2023-2020 CVE-2023-0286".into(),
            "openssl-libs".into(),
            "1:1.0.2k-24.amzn2.0.6".into(),
            Severity::High
        )]
    );
    assert_eq!(server.requests("/gone/x86_64/repodata/repomd.xml"), (1, 0));
    assert_eq!(
        server.requests("/osv-unused/Amazon%20Linux:2/all.zip"),
        (0, 0)
    );

    // A restart reads the cache: nothing fetched.
    new_store().load(&al2()).await.expect("cached");
    assert_eq!(server.requests(DOC_1), (1, 0));

    // Refresh: the same document answers 304.
    assert!(matches!(
        store.refresh(&al2()).await.expect("refresh"),
        Refresh::NotModified
    ));
    assert_eq!(server.requests(DOC_1), (2, 1), "asked with If-None-Match");

    // A corrupt or truncated document under the same name: an error, the old copy kept.
    let mut truncated = document(&[openssl(), curl()]);
    truncated.truncate(truncated.len() / 2);
    for (body, want) in [
        (
            b"<html>upstream error</html>".to_vec(),
            "its root element is <html>",
        ),
        (truncated, "111-updateinfo.xml.gz"),
    ] {
        server.put(DOC_1, body, "bad");
        let err = store
            .refresh(&al2())
            .await
            .expect_err("corrupt update")
            .to_string();
        assert!(err.contains(want), "{err} (wanted {want})");
        let meta = store
            .cached_metadata("Amazon Linux:2")
            .await
            .expect("metadata kept");
        assert_eq!(meta.sha256, first.meta.sha256);
        let reloaded = new_store().load(&al2()).await.expect("old copy");
        assert_eq!(reloaded.meta.sha256, first.meta.sha256);
        assert_eq!(findings(&reloaded).len(), 1);
    }

    // The repository publishes a new document: fetched in full, the old copy replaced.
    server.put(REPOMD, repomd("repodata/222-updateinfo.xml.gz"), "r2");
    server.put(DOC_2, document(&[openssl(), curl()]), "d2");
    let Refresh::Updated(second) = store.refresh(&al2()).await.expect("refresh") else {
        panic!("a new document was published");
    };
    assert_eq!(
        server.requests(DOC_2),
        (1, 0),
        "another document: unconditional"
    );
    assert_eq!(second.meta.resolved, Some(server.url(DOC_2)));
    assert_eq!(second.meta.advisories, 2);
    assert_eq!(
        findings(&second)
            .iter()
            .map(|f| (f.0.as_str(), f.3))
            .collect::<Vec<_>>(),
        [
            ("ALAS2-2023-2020 CVE-2023-0286", Severity::High),
            ("ALAS2-2024-2400 CVE-2023-46218", Severity::Medium)
        ]
    );
    let mut names: Vec<String> = std::fs::read_dir(store.ecosystem_dir("Amazon Linux:2"))
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [second.meta.file.clone(), "meta.json".to_owned()]);

    // No repository in the list works: one error naming each failure.
    server.put(MIRRORS, server.url("/gone/x86_64").into_bytes(), "m2");
    let err = store
        .refresh(&al2())
        .await
        .expect_err("no mirror")
        .to_string();
    assert!(err.contains("no repository worked"), "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
}

#[tokio::test]
async fn a_repository_on_disk_and_the_default_sources() {
    let repo = tempfile::tempdir().expect("test fixture");
    std::fs::create_dir_all(repo.path().join("repodata")).expect("test fixture");
    std::fs::write(
        repo.path().join("repodata/repomd.xml"),
        repomd("repodata/abc-updateinfo.xml.gz"),
    )
    .expect("test fixture");
    std::fs::write(
        repo.path().join("repodata/abc-updateinfo.xml.gz"),
        document(&[curl()]),
    )
    .expect("test fixture");
    let cache = tempfile::tempdir().expect("test fixture");
    let defaults = Store::new(Source::Dir("/nonexistent".into()), cache.path(), client());
    assert_eq!(
        defaults.updateinfo_location("Amazon Linux:2023"),
        Some("https://cdn.amazonlinux.com/al2023/core/mirrors/latest/x86_64/mirror.list")
    );
    assert_eq!(defaults.updateinfo_location("Debian:12"), None);
    let location = repo.path().display().to_string();
    let store = defaults.with_updateinfo("Amazon Linux:2", location.clone());
    let loaded = store.load(&al2()).await.expect("loads");
    assert_eq!(loaded.meta.advisories, 1);
    assert_eq!(loaded.meta.source, location);
    assert_eq!(
        loaded.meta.resolved,
        Some(format!("{location}/repodata/abc-updateinfo.xml.gz"))
    );
    assert!(matches!(
        store.refresh(&al2()).await.expect("refresh"),
        Refresh::NotModified
    ));
    // The document itself is a location too.
    let direct = Store::new(Source::Dir("/nonexistent".into()), cache.path(), client())
        .with_updateinfo(
            "Amazon Linux:2",
            format!("{location}/repodata/abc-updateinfo.xml.gz"),
        );
    let Refresh::Updated(again) = direct.refresh(&al2()).await.expect("refresh") else {
        panic!("another location is fetched in full");
    };
    assert_eq!(again.meta.sha256, loaded.meta.sha256);
}
