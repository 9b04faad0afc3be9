//! The scanner against a real registry (Debian's docker-registry on loopback) holding images
//! built in the test: Alpine-, distroless- and Debian-style layers, rpm databases in every
//! format, whiteouts, a multi-arch index, a private repository, and broken or hostile
//! content.

use palisade_imageref::ImageRef;
use palisade_oci_fixtures::{Compression, LayerBuilder, Registry, compress};
use palisade_scanner::inventory::{Package, PackageKind};
use palisade_scanner::layers::Limits;
use palisade_scanner::oci::{ClientConfig, Credentials, Platform, RegistryClient};
use palisade_scanner::scan::{ImageInventory, inventory_image};

mod rpmdb;

fn client(credentials: Credentials) -> RegistryClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RegistryClient::new(ClientConfig {
        credentials,
        ..ClientConfig::default()
    })
    .expect("client")
}

async fn scan(
    c: &RegistryClient,
    reference: &str,
    platform: &str,
) -> Result<ImageInventory, palisade_scanner::Error> {
    let image = ImageRef::parse(reference).expect("reference");
    inventory_image(
        c,
        &image,
        &Platform::parse(platform).expect("platform"),
        Limits::default(),
    )
    .await
}

fn names(pkgs: &[Package]) -> Vec<String> {
    pkgs.iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect()
}

const ALPINE_OS: &str =
    "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n";

fn apk_record(name: &str, version: &str, origin: &str) -> String {
    format!(
        "C:Q1abc=\nP:{name}\nV:{version}\nA:x86_64\nS:1\nI:2\nT:t\nU:https://example\nL:MIT\no:{origin}\nm:x\nt:1\nc:abc\n\n"
    )
}

#[tokio::test]
async fn alpine_layers_upgrade_and_whiteouts() {
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    let base = LayerBuilder::new()
        .dir("etc/")
        .file("usr/lib/os-release", ALPINE_OS)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("etc/alpine-release", "3.18.4\n")
        .file(
            "lib/apk/db/installed",
            [
                apk_record("musl", "1.2.4-r2", "musl"),
                apk_record("libcrypto3", "3.1.3-r0", "openssl"),
                apk_record("libssl3", "3.1.3-r0", "openssl"),
                apk_record("busybox", "1.36.1-r5", "busybox"),
            ]
            .concat(),
        )
        .file("bin/busybox", vec![0u8; 100_000])
        .build(Compression::Gzip);
    // The next layer upgrades openssl (a new database replaces the old one) and removes a
    // file with a whiteout.
    let upgrade = LayerBuilder::new()
        .file(
            "lib/apk/db/installed",
            [
                apk_record("musl", "1.2.4-r2", "musl"),
                apk_record("libcrypto3", "3.1.4-r0", "openssl"),
                apk_record("libssl3", "3.1.4-r0", "openssl"),
                apk_record("busybox", "1.36.1-r5", "busybox"),
            ]
            .concat(),
        )
        .whiteout("etc/alpine-release")
        .build(Compression::Gzip);
    push.image(
        "alpine",
        "3.18.4",
        std::slice::from_ref(&base),
        "linux",
        "amd64",
    )
    .await
    .expect("push old");
    let pushed = push
        .image("alpine", "3.18.5", &[base, upgrade], "linux", "amd64")
        .await
        .expect("push new");

    let c = client(Credentials::new());
    let old = scan(
        &c,
        &format!("{}/alpine:3.18.4", registry.host()),
        "linux/amd64",
    )
    .await
    .expect("scan old");
    let new = scan(
        &c,
        &format!("{}/alpine:3.18.5", registry.host()),
        "linux/amd64",
    )
    .await
    .expect("scan new");

    let os = new.inventory.os.as_ref().expect("os through the symlink");
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("alpine", Some("3.18.4"))
    );
    assert_eq!(
        names(&old.inventory.packages),
        [
            "busybox=1.36.1-r5",
            "libcrypto3=3.1.3-r0",
            "libssl3=3.1.3-r0",
            "musl=1.2.4-r2"
        ]
    );
    assert_eq!(
        names(&new.inventory.packages),
        [
            "busybox=1.36.1-r5",
            "libcrypto3=3.1.4-r0",
            "libssl3=3.1.4-r0",
            "musl=1.2.4-r2"
        ]
    );
    assert!(
        new.inventory
            .packages
            .iter()
            .all(|p| p.kind == PackageKind::Apk)
    );
    let libssl = new
        .inventory
        .packages
        .iter()
        .find(|p| p.name == "libssl3")
        .expect("libssl3");
    assert_eq!(libssl.source_name.as_deref(), Some("openssl"));
    assert_eq!(new.digest, pushed.digest);
    assert_eq!(new.manifest_digest, pushed.digest);
    assert_eq!(new.layers, 2);
    assert_eq!(
        new.platform, None,
        "a single-platform image has no index entry to choose"
    );
    assert_eq!(
        c.resolve(&ImageRef::parse(&format!("{}/alpine:3.18.5", registry.host())).expect("ref"))
            .await
            .expect("resolve"),
        pushed.digest
    );
}

const DEBIAN_OS: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";

fn dpkg_stanza(name: &str, version: &str, source: Option<&str>) -> String {
    let source = source.map(|s| format!("Source: {s}\n")).unwrap_or_default();
    format!(
        "Package: {name}\n{source}Version: {version}\nArchitecture: amd64\nMaintainer: x\nDescription: d\n\n"
    )
}

#[tokio::test]
async fn distroless_status_d_zstd_and_a_multi_arch_index() {
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    let amd64 = LayerBuilder::new()
        .file("etc/os-release", DEBIAN_OS)
        .file(
            "var/lib/dpkg/status.d/base",
            dpkg_stanza("base-files", "12.4+deb12u5", None),
        )
        .file(
            "var/lib/dpkg/status.d/libssl3",
            dpkg_stanza("libssl3", "3.0.11-1~deb12u2", Some("openssl")),
        )
        .file(
            "var/lib/dpkg/status.d/libssl3.md5sums",
            "d41d8cd98f00b204e9800998ecf8427e  usr/lib/x\n",
        )
        .file(
            "var/lib/dpkg/status.d/tzdata",
            dpkg_stanza("tzdata", "2024a-0+deb12u1", None),
        )
        .build(Compression::Zstd);
    // A later layer removes tzdata's record.
    let slim = LayerBuilder::new()
        .whiteout("var/lib/dpkg/status.d/tzdata")
        .build(Compression::None);
    let arm64 = LayerBuilder::new()
        .file("etc/os-release", DEBIAN_OS)
        .file(
            "var/lib/dpkg/status.d/libssl3",
            dpkg_stanza("libssl3", "3.0.13-1~deb12u1", Some("openssl")),
        )
        .build(Compression::Gzip);
    let a = push
        .image("distroless", "amd64", &[amd64, slim], "linux", "amd64")
        .await
        .expect("amd64");
    let b = push
        .image("distroless", "arm64", &[arm64], "linux", "arm64")
        .await
        .expect("arm64");
    let index = push
        .index(
            "distroless",
            "latest",
            &[(&b, "linux/arm64/v8"), (&a, "linux/amd64")],
        )
        .await
        .expect("index");

    let c = client(Credentials::new());
    let reference = format!("{}/distroless", registry.host());
    let x86 = scan(&c, &reference, "linux/amd64")
        .await
        .expect("amd64 scan");
    assert_eq!(
        x86.digest, index.digest,
        "the report key is the index digest"
    );
    assert_eq!(x86.manifest_digest, a.digest);
    assert_eq!(x86.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        names(&x86.inventory.packages),
        ["base-files=12.4+deb12u5", "libssl3=3.0.11-1~deb12u2"]
    );
    assert_eq!(
        x86.inventory
            .os
            .as_ref()
            .and_then(|o| o.version_codename.as_deref()),
        Some("bookworm")
    );

    let arm = scan(&c, &reference, "linux/arm64")
        .await
        .expect("arm64 scan");
    assert_eq!(arm.manifest_digest, b.digest);
    assert_eq!(arm.platform.as_deref(), Some("linux/arm64/v8"));
    assert_eq!(names(&arm.inventory.packages), ["libssl3=3.0.13-1~deb12u1"]);
    assert_eq!(x86.platform_requested, None);
    assert_eq!(
        arm.platform_requested, None,
        "an index entry's variant fills in"
    );

    // Another variant of the architecture stands in, and the inventory says so.
    let v9 = scan(&c, &reference, "linux/arm64/v9")
        .await
        .expect("arm64/v9 scan");
    assert_eq!(v9.manifest_digest, b.digest);
    assert_eq!(v9.platform.as_deref(), Some("linux/arm64/v8"));
    assert_eq!(v9.platform_requested.as_deref(), Some("linux/arm64/v9"));

    let err = scan(&c, &reference, "linux/s390x")
        .await
        .expect_err("no such platform")
        .to_string();
    assert!(
        err.contains("has no linux/s390x image") && err.contains("linux/amd64"),
        "{err}"
    );

    // Pinned by digest, the index is read by digest too.
    let pinned = scan(&c, &format!("{reference}@{}", index.digest), "linux/amd64")
        .await
        .expect("pinned");
    assert_eq!(pinned.inventory, x86.inventory);
}

/// rpm databases in each format, as the layers of real images leave them: Rocky 8's
/// Berkeley DB, SUSE's ndb reached through the `var/lib/rpm` link, a Berkeley DB database
/// converted to SQLite in a later layer (the old file whited out, or left behind), and one
/// removed by a whiteout or an opaque directory. The databases hold headers `rpm` installed
/// (see `rpmdb/mod.rs`).
#[tokio::test]
async fn rpm_databases_in_every_format_through_layers() {
    let top = tempfile::tempdir().expect("tempdir");
    let sqlite_dir = rpmdb::build_rpmdb(top.path());
    let expected = rpmdb::rpm_query(&sqlite_dir, "sqlite");
    let headers = rpmdb::header_blobs(&sqlite_dir);
    let bdb = rpmdb::write_bdb(
        &top.path().join("bdb"),
        &headers,
        rpmdb::BdbLayout::new(false, 4096),
    );
    let ndb = rpmdb::write_ndb(&headers);
    // rpm leaves a checkpointed database: the main file holds every package.
    let sqlite = std::fs::read(sqlite_dir.join("rpmdb.sqlite")).expect("rpmdb.sqlite");

    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    let rocky_os = "ID=\"rocky\"\nVERSION_ID=\"8.9\"\nPRETTY_NAME=\"Rocky Linux 8.9\"\n";
    let rocky = || {
        LayerBuilder::new()
            .file("etc/os-release", rocky_os)
            .file("var/lib/rpm/Packages", &bdb)
            .build(Compression::Gzip)
    };
    let images = [
        ("rocky", vec![rocky()]),
        (
            "suse",
            vec![
                LayerBuilder::new()
                    .file("usr/lib/sysimage/rpm/Packages.db", &ndb)
                    .symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm")
                    .build(Compression::Zstd),
            ],
        ),
        (
            "converted",
            vec![
                rocky(),
                LayerBuilder::new()
                    .whiteout("var/lib/rpm/Packages")
                    .file("var/lib/rpm/rpmdb.sqlite", &sqlite)
                    .build(Compression::Gzip),
            ],
        ),
        (
            "leftover",
            vec![
                rocky(),
                LayerBuilder::new()
                    .file("var/lib/rpm/rpmdb.sqlite", &sqlite)
                    .build(Compression::Gzip),
            ],
        ),
        (
            "removed",
            vec![
                rocky(),
                LayerBuilder::new()
                    .whiteout("var/lib/rpm/Packages")
                    .build(Compression::Gzip),
            ],
        ),
        (
            "opaque",
            vec![
                rocky(),
                LayerBuilder::new()
                    .opaque("var/lib/rpm")
                    .file("var/lib/rpm/Packages.db", &ndb)
                    .build(Compression::Gzip),
            ],
        ),
    ];
    for (name, layers) in &images {
        push.image(name, "1", layers, "linux", "amd64")
            .await
            .expect(name);
    }
    let c = client(Credentials::new());
    // (image, the database read, or none)
    let table = [
        ("rocky", Some("var/lib/rpm/Packages")),
        ("suse", Some("var/lib/rpm/Packages.db")),
        ("converted", Some("var/lib/rpm/rpmdb.sqlite")),
        ("leftover", Some("var/lib/rpm/rpmdb.sqlite")),
        ("removed", None),
        ("opaque", Some("var/lib/rpm/Packages.db")),
    ];
    for (image, location) in table {
        let inv = scan(&c, &format!("{}/{image}:1", registry.host()), "linux/amd64")
            .await
            .expect(image);
        assert_eq!(inv.inventory.unreadable, [], "{image}");
        let packages = &inv.inventory.packages;
        match location {
            Some(location) => {
                assert_eq!(rpmdb::as_queried(packages), expected, "{image}");
                assert!(
                    packages.iter().all(|p| p.location == location),
                    "{image}: {packages:?}"
                );
            }
            None => assert_eq!(packages, &[], "{image}"),
        }
    }
}

#[tokio::test]
async fn private_repository_needs_its_login() {
    let registry = Registry::start_with_login("ci", "s3cret").expect("registry");
    let push = registry.pusher().expect("pusher");
    let layer = LayerBuilder::new()
        .file("etc/os-release", ALPINE_OS)
        .file(
            "lib/apk/db/installed",
            apk_record("musl", "1.2.4-r2", "musl"),
        )
        .build(Compression::Gzip);
    push.image("team/app", "1.0", &[layer], "linux", "amd64")
        .await
        .expect("push");
    let reference = format!("{}/team/app:1.0", registry.host());

    let err = scan(&client(Credentials::new()), &reference, "linux/amd64")
        .await
        .expect_err("anonymous")
        .to_string();
    assert!(
        err.contains("needs credentials") && err.contains("registryCredentials"),
        "{err}"
    );

    let mut wrong = Credentials::new();
    wrong
        .add_docker_config(
            "secret t/wrong",
            br#"{"auths":{"127.0.0.1:1":{"username":"x","password":"y"}}}"#,
        )
        .expect("config");
    wrong.insert(
        registry.host(),
        palisade_scanner::oci::Login {
            username: "ci".into(),
            password: "nope".into(),
        },
    );
    let err = scan(&client(wrong), &reference, "linux/amd64")
        .await
        .expect_err("wrong password")
        .to_string();
    assert!(
        err.contains("access denied") && err.contains("check the registryCredentials Secret"),
        "{err}"
    );

    let mut good = Credentials::new();
    good.add_docker_config("secret t/regcred", registry.docker_config_json().as_bytes())
        .expect("config");
    let inv = scan(&client(good), &reference, "linux/amd64")
        .await
        .expect("with the login");
    assert_eq!(names(&inv.inventory.packages), ["musl=1.2.4-r2"]);
}

#[tokio::test]
async fn broken_and_hostile_images_fail_clearly() {
    let registry = Registry::start().expect("registry");
    let push = registry.pusher().expect("pusher");
    let c = client(Credentials::new());
    let host = registry.host().to_owned();

    // Path traversal in a layer.
    let evil = LayerBuilder::new()
        .raw_file(b"../../../../tmp/palisade-escape", b"x")
        .build(Compression::Gzip);
    push.image("evil", "traversal", &[evil], "linux", "amd64")
        .await
        .expect("push");
    let err = scan(&c, &format!("{host}/evil:traversal"), "linux/amd64")
        .await
        .expect_err("traversal")
        .to_string();
    assert!(err.contains("climbs out of the image root"), "{err}");
    assert!(
        !std::path::Path::new("/tmp/palisade-escape").exists(),
        "nothing is written outside"
    );

    // A layer that is not a tar stream.
    let junk = compress(
        b"this is not a tar archive, just text that goes on for a while".repeat(20),
        Compression::Gzip,
    );
    push.image("evil", "junk", &[junk], "linux", "amd64")
        .await
        .expect("push");
    let err = scan(&c, &format!("{host}/evil:junk"), "linux/amd64")
        .await
        .expect_err("junk")
        .to_string();
    assert!(err.starts_with("layer sha256:"), "{err}");

    // A manifest that names a layer the registry does not have.
    let missing = format!("sha256:{}", "0".repeat(64));
    let config = push
        .blob(
            "evil",
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .await
        .expect("config");
    let manifest = serde_json::json!({"schemaVersion":2,"mediaType":palisade_oci_fixtures::OCI_MANIFEST,
        "config":{"mediaType":palisade_oci_fixtures::OCI_CONFIG,"digest":config,"size":79},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":missing,"size":10}]}).to_string();
    // The registry refuses manifests with unknown blobs, which is itself the clear error a
    // scanner never sees; a missing tag is what it does see.
    assert!(
        push.manifest(
            "evil",
            "missing",
            palisade_oci_fixtures::OCI_MANIFEST,
            manifest.as_bytes()
        )
        .await
        .is_err()
    );
    let err = scan(&c, &format!("{host}/evil:missing"), "linux/amd64")
        .await
        .expect_err("no tag")
        .to_string();
    assert!(
        err.contains("404") && err.contains("no such image"),
        "{err}"
    );

    // A blob corrupted in the registry's storage: the digest check catches it.
    let layer = LayerBuilder::new()
        .file("etc/os-release", ALPINE_OS)
        .build(Compression::None);
    let digest = layer.digest.clone();
    push.image("evil", "corrupt", &[layer], "linux", "amd64")
        .await
        .expect("push");
    let hex = &digest["sha256:".len()..];
    let data = registry.storage().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).expect("blob on disk");
    bytes[600] ^= 0xff;
    std::fs::write(&data, bytes).expect("corrupt");
    let err = scan(&c, &format!("{host}/evil:corrupt"), "linux/amd64")
        .await
        .expect_err("corrupt")
        .to_string();
    assert!(err.contains("does not match its digest"), "{err}");

    // The registry goes away: a prompt, clear error.
    let mut registry = registry;
    registry.stop();
    let started = std::time::Instant::now();
    let err = scan(&c, &format!("{host}/evil:junk"), "linux/amd64")
        .await
        .expect_err("down")
        .to_string();
    assert!(err.starts_with(&format!("registry {host}:")), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
