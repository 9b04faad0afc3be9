//! The package database parsers against the package managers themselves: this machine's dpkg
//! database and `dpkg-query`, rpm databases in every format around headers that `rpm`
//! installed (see `rpmdb/mod.rs`), and hostile inputs.
//!
//! The tools come from `hack/scan-tools.sh`; a missing tool fails the test (a skipped
//! comparison would look like a passing one).

use std::collections::BTreeMap;
use std::path::Path;

use palisade_scanner::inventory::{
    self, FileSource, Files, PackageKind, apk, dpkg, os_release, rpm,
};
use proptest::prelude::*;

mod rpmdb;
use rpmdb::run;

/// (name, arch) → (version, source name, source version): multi-arch packages appear once
/// per architecture.
type DpkgView = BTreeMap<(String, String), (String, String, String)>;

/// What `dpkg-query -W` lists, without the packages whose files are gone (config-files,
/// not-installed): the inventory leaves those out on purpose.
fn dpkg_query(admindir: &Path) -> DpkgView {
    let admindir = format!("--admindir={}", admindir.display());
    let out = run(
        "dpkg-query",
        &[
            &admindir,
            "-W",
            "-f",
            "${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${Architecture}\\t${db:Status-Status}\\n",
        ],
    );
    let mut view = DpkgView::new();
    for line in out.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let [name, version, source, source_version, arch, status] = cols[..] else {
            panic!("unexpected dpkg-query line {line:?}");
        };
        if matches!(status, "config-files" | "not-installed") {
            continue;
        }
        let previous = view.insert(
            (name.to_string(), arch.to_string()),
            (
                version.to_string(),
                source.to_string(),
                source_version.to_string(),
            ),
        );
        assert!(previous.is_none(), "dpkg-query listed {name}:{arch} twice");
    }
    view
}

fn dpkg_view(packages: &[inventory::Package]) -> DpkgView {
    let mut view = DpkgView::new();
    for p in packages {
        assert_eq!(p.kind, PackageKind::Dpkg);
        let previous = view.insert(
            (p.name.clone(), p.arch.clone().unwrap_or_default()),
            (
                p.version.clone(),
                p.source_name.clone().unwrap_or_default(),
                p.source_version.clone().unwrap_or_default(),
            ),
        );
        assert!(previous.is_none(), "parsed {}:{:?} twice", p.name, p.arch);
    }
    view
}

#[test]
fn dpkg_matches_dpkg_query_on_this_machine() {
    let expected = dpkg_query(Path::new("/var/lib/dpkg"));
    let content = std::fs::read("/var/lib/dpkg/status").expect("this machine has a dpkg database");
    let packages = dpkg::parse_status(dpkg::STATUS, &content)
        .expect("real status parses")
        .packages;
    let got = dpkg_view(&packages);
    assert!(
        expected.len() > 50,
        "a real system has packages: {}",
        expected.len()
    );
    assert_eq!(got.len(), expected.len(), "package count");
    for (key, want) in &expected {
        assert_eq!(got.get(key), Some(want), "{key:?}");
    }
    assert_eq!(got, expected);

    // Through the public entry point, as the layer walker calls it.
    let mut files = Files::new();
    files.insert(dpkg::STATUS, content);
    let inventory = inventory::from_files(&files).expect("inventory");
    assert_eq!(inventory.packages.len(), expected.len());
    let mut sorted = inventory.packages.clone();
    sorted.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    assert_eq!(sorted, inventory.packages, "sorted by name and version");
}

/// Cases this machine may not have: a package installed for two architectures, removed
/// packages whose configuration remains, an interrupted configuration, a binNMU whose
/// source version differs.
#[test]
fn dpkg_matches_dpkg_query_on_crafted_database() {
    let status = "\
Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation.

Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: i386
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries

Package: ifupdown
Status: deinstall ok config-files
Maintainer: Debian Networking Team <team+networking@tracker.debian.org>
Architecture: amd64
Version: 0.8.41
Conffiles:
 /etc/default/networking 1a4d4a0cfd6c5ee8e5bc1a1c0fa2e3d4
Description: high level tools to configure network interfaces

Package: libfoo1
Status: install reinstreq half-configured
Maintainer: Someone <someone@example.org>
Architecture: amd64
Source: foo (1.0-2)
Version: 1:1.0-2+b1
Description: an interrupted configuration

Package: tzdata
Status: install ok unpacked
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data
";
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("status"), status).expect("write status");
    std::fs::write(dir.path().join("available"), "").expect("write available");
    std::fs::create_dir(dir.path().join("info")).expect("info dir");
    let expected = dpkg_query(dir.path());
    assert_eq!(expected.len(), 4, "{expected:?}");
    let packages = dpkg::parse_status(dpkg::STATUS, status.as_bytes())
        .expect("parses")
        .packages;
    assert_eq!(dpkg_view(&packages), expected);
}

#[test]
fn rpm_matches_rpm_query() {
    let top = tempfile::tempdir().expect("tempdir");
    let db = rpmdb::build_rpmdb(top.path());
    let expected = rpmdb::rpm_query(&db, "sqlite");
    assert_eq!(expected.len(), 3, "{expected:?}");

    let bytes = std::fs::read(db.join("rpmdb.sqlite")).expect("rpm wrote rpmdb.sqlite");
    let wal = std::fs::read(db.join("rpmdb.sqlite-wal")).ok();
    let mut files = Files::new();
    files.insert("usr/lib/sysimage/rpm/rpmdb.sqlite", bytes.clone());
    if let Some(wal) = &wal {
        files.insert("usr/lib/sysimage/rpm/rpmdb.sqlite-wal", wal.clone());
    }
    let inventory = inventory::from_files(&files).expect("inventory");
    for p in &inventory.packages {
        assert_eq!(p.kind, PackageKind::Rpm);
        assert_eq!(p.location, "usr/lib/sysimage/rpm/rpmdb.sqlite");
    }
    let got = rpmdb::as_queried(&inventory.packages);
    assert_eq!(got, expected);

    // The exact strings the inventory reports.
    let by_name = |n: &str| {
        inventory
            .packages
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(by_name("palisade-beta").version, "1:2.0-1.fc40");
    assert_eq!(by_name("palisade-alpha").version, "1.2.3-4.el9");
    let gamma = by_name("libpalisade-gamma");
    assert_eq!(gamma.source_name.as_deref(), Some("palisade-src"));
    assert_eq!(gamma.source_version.as_deref(), Some("0.9~rc1-7"));
    assert_eq!(gamma.version, "0.9~rc1-7");

    // The walker keeps these files.
    assert!(inventory::wanted("usr/lib/sysimage/rpm/rpmdb.sqlite"));
    assert!(inventory::wanted("./var/lib/rpm/rpmdb.sqlite"));

    // The real database, truncated anywhere, gives an error or fewer packages: never a panic.
    for len in (0..bytes.len()).step_by(bytes.len() / 64 + 1) {
        if let Ok(parsed) = rpm::parse_sqlite("rpmdb.sqlite", &bytes[..len], None) {
            assert!(parsed.packages.len() <= 3);
        }
    }

    // Every real header blob, truncated at every length or with corrupted counts, is an
    // error: never a panic or a huge allocation.
    let conn = rusqlite::Connection::open(db.join("rpmdb.sqlite")).expect("open rpmdb");
    let mut statement = conn.prepare("SELECT blob FROM Packages").expect("Packages");
    let blobs: Vec<Vec<u8>> = statement
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("blobs");
    assert_eq!(blobs.len(), 3);
    for blob in &blobs {
        let header = rpm::parse_header(blob).expect("real header");
        assert!(header.name.contains("palisade"));
        for len in 0..blob.len() {
            if let Ok(h) = rpm::parse_header(&blob[..len]) {
                panic!("a header truncated to {len} bytes parsed: {h:?}");
            }
        }
        for (at, value) in [
            (0, u32::MAX),
            (0, 0x0001_0000),
            (4, u32::MAX),
            (4, 0x0fff_ffff),
        ] {
            let mut hostile = blob.clone();
            hostile[at..at + 4].copy_from_slice(&value.to_be_bytes());
            let err = rpm::parse_header(&hostile).expect_err("hostile count");
            assert!(!err.is_empty());
        }
        // Every entry's offset pointed far away.
        let entries = u32::from_be_bytes(blob[..4].try_into().expect("4 bytes")) as usize;
        for i in 0..entries {
            let mut hostile = blob.clone();
            let at = 8 + i * 16 + 8;
            hostile[at..at + 4].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
            let _ = rpm::parse_header(&hostile);
        }
    }
}

/// The fields of a page header of a Berkeley DB file, as a test reads them: (page number,
/// next page, type).
fn bdb_page(db: &[u8], page_size: usize, pgno: usize, big_endian: bool) -> (u32, u32, u8) {
    let page = &db[pgno * page_size..(pgno + 1) * page_size];
    let word = |at: usize| {
        let bytes: [u8; 4] = page[at..at + 4].try_into().expect("4 bytes");
        if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    };
    (word(8), word(16), page[25])
}

/// Berkeley DB `Packages` files that Berkeley DB's own `db5.3_load` wrote around real rpm
/// headers, in both byte orders and in page sizes from the smallest (every header spans
/// overflow pages) to the largest: rpm's read-only Berkeley DB backend and the inventory
/// must list the same packages as rpm did from the SQLite database they came from.
#[test]
fn berkeley_db_matches_rpm_query() {
    let top = tempfile::tempdir().expect("tempdir");
    let sqlite = rpmdb::build_rpmdb(top.path());
    let expected = rpmdb::rpm_query(&sqlite, "sqlite");
    assert_eq!(expected.len(), 3, "{expected:?}");
    let headers = rpmdb::header_blobs(&sqlite);
    // (what, big-endian, page size, page checksums)
    let table: &[(&str, bool, u32, bool)] = &[
        ("little-endian, 512-byte pages", false, 512, false),
        ("big-endian, 512-byte pages", true, 512, false),
        ("little-endian, 4096-byte pages", false, 4096, false),
        ("big-endian, 8192-byte pages", true, 8192, false),
        ("little-endian, 65536-byte pages", false, 65536, false),
        ("big-endian, 512-byte pages with checksums", true, 512, true),
    ];
    for (i, (what, big_endian, page_size, checksums)) in table.iter().enumerate() {
        let dir = top.path().join(format!("bdb-{i}"));
        let layout = rpmdb::BdbLayout {
            checksums: *checksums,
            ..rpmdb::BdbLayout::new(*big_endian, *page_size)
        };
        let bytes = rpmdb::write_bdb(&dir, &headers, layout);
        let page_size = *page_size as usize;
        assert_eq!(bytes.len() % page_size, 0, "{what}");
        let magic: [u8; 4] = bytes[12..16].try_into().expect("magic");
        let want_magic = if *big_endian {
            [0, 6, 0x15, 0x61]
        } else {
            [0x61, 0x15, 6, 0]
        };
        assert_eq!(magic, want_magic, "{what}: byte order");
        assert_eq!(bytes[26] & 1, u8::from(*checksums), "{what}: checksum flag");
        let overflow_pages = (1..bytes.len() / page_size)
            .filter(|pgno| bdb_page(&bytes, page_size, *pgno, *big_endian).2 == 7)
            .count();
        if page_size == 512 {
            assert!(
                overflow_pages >= 6,
                "{what}: {overflow_pages} overflow pages"
            );
        }
        // The fixture is what rpm reads (rpm's reader does not know page checksums, which
        // rpm never writes).
        if !checksums {
            assert_eq!(rpmdb::rpm_query(&dir, "bdb_ro"), expected, "{what}: rpm");
        }

        let mut files = Files::new();
        files.insert("var/lib/rpm/Packages", bytes.clone());
        let inventory = inventory::from_files(&files).expect(what);
        assert_eq!(inventory.unreadable, [], "{what}");
        for p in &inventory.packages {
            assert_eq!(p.location, "var/lib/rpm/Packages", "{what}");
        }
        assert_eq!(rpmdb::as_queried(&inventory.packages), expected, "{what}");

        // Truncated anywhere: an error or fewer packages, never a panic.
        for len in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
            if let Ok(parsed) = rpm::parse_bdb("var/lib/rpm/Packages", &bytes[..len]) {
                assert!(parsed.packages.len() < 3, "{what}: truncated to {len}");
            }
        }
    }

    // Many records: the hash table doubles several times, so buckets are found through
    // several of the metadata's split points.
    let many: Vec<(u32, Vec<u8>)> = (1..=600u32)
        .map(|n| (n, headers[(n as usize) % headers.len()].1.clone()))
        .collect();
    for big_endian in [false, true] {
        let dir = top.path().join(format!("many-{big_endian}"));
        let layout = rpmdb::BdbLayout {
            fill_factor: Some(4),
            ..rpmdb::BdbLayout::new(big_endian, 4096)
        };
        let bytes = rpmdb::write_bdb(&dir, &many, layout);
        let max_bucket: [u8; 4] = bytes[72..76].try_into().expect("4 bytes");
        let max_bucket = if big_endian {
            u32::from_be_bytes(max_bucket)
        } else {
            u32::from_le_bytes(max_bucket)
        };
        assert!(max_bucket >= 16, "{max_bucket} buckets");
        assert_eq!(rpmdb::rpm_query(&dir, "bdb_ro").len(), 600);
        let parsed = rpm::parse_bdb("var/lib/rpm/Packages", &bytes).expect("many");
        assert_eq!(parsed.unreadable, []);
        let mut got = rpmdb::as_queried(&parsed.packages);
        got.dedup();
        assert_eq!(parsed.packages.len(), 600);
        assert_eq!(got, expected);
    }

    // Damage to a real database: each overflow chain turned into a loop, or pointed past
    // the file, loses that package and says why.
    let bytes = rpmdb::write_bdb(
        &top.path().join("damaged"),
        &headers,
        rpmdb::BdbLayout::new(false, 512),
    );
    let chains: Vec<usize> = (1..bytes.len() / 512)
        .filter(|pgno| {
            let (_, next, kind) = bdb_page(&bytes, 512, *pgno, false);
            kind == 7 && next != 0
        })
        .collect();
    assert!(!chains.is_empty());
    for pgno in chains {
        for (next, want) in [
            (pgno as u32, format!("page {pgno} is reached twice")),
            (
                1 << 30,
                "page 1073741824 is past the end of the file".to_string(),
            ),
        ] {
            let mut hostile = bytes.clone();
            hostile[pgno * 512 + 16..pgno * 512 + 20].copy_from_slice(&next.to_le_bytes());
            let parsed = rpm::parse_bdb("var/lib/rpm/Packages", &hostile).expect("others");
            assert_eq!(parsed.packages.len(), 2, "page {pgno}");
            assert!(
                parsed.unreadable[0].reason.contains(&want),
                "page {pgno}: {:?}",
                parsed.unreadable
            );
        }
    }
    let mut huge_page = bytes.clone();
    huge_page[20..24].copy_from_slice(&(1u32 << 17).to_le_bytes());
    let err = rpm::parse_bdb("var/lib/rpm/Packages", &huge_page).expect_err("page size");
    assert_eq!(
        err.to_string(),
        "var/lib/rpm/Packages: page size 131072; Berkeley DB pages are a power of two from \
         512 to 65536"
    );
}

/// ndb `Packages.db` files around real rpm headers. Debian's rpm has no ndb backend (`rpm
/// --define '_db_backend ndb' --initdb` falls back to a dummy database), so the file is
/// written by the test's own writer ([`rpmdb::write_ndb`]), which follows rpm's layout; the
/// headers in it are the ones rpm installed.
#[test]
fn ndb_matches_rpm_query() {
    let top = tempfile::tempdir().expect("tempdir");
    let sqlite = rpmdb::build_rpmdb(top.path());
    let expected = rpmdb::rpm_query(&sqlite, "sqlite");
    let headers = rpmdb::header_blobs(&sqlite);
    let bytes = rpmdb::write_ndb(&headers);
    let path = "usr/lib/sysimage/rpm/Packages.db";
    let mut files = Files::new();
    files.insert(path, bytes.clone());
    let inventory = inventory::from_files(&files).expect("ndb");
    assert_eq!(inventory.unreadable, []);
    assert_eq!(rpmdb::as_queried(&inventory.packages), expected);
    assert!(inventory.packages.iter().all(|p| p.location == path));

    for len in 0..bytes.len() {
        if let Ok(parsed) = rpm::parse_ndb(path, &bytes[..len]) {
            assert!(parsed.packages.len() < 3, "truncated to {len}");
        }
    }

    // Hostile slots and blobs: (what, byte offset, new bytes, what the error says). The
    // first slot is at byte 32, its blob at the first block after the slot page.
    let le = |n: u32| n.to_le_bytes().to_vec();
    let blob = 4096;
    let table: &[(&str, usize, Vec<u8>, &str)] = &[
        ("slot magic", 32, b"Tols".to_vec(), "slot 2: no Slot magic"),
        ("package 0", 36, le(0), "package 0 in"),
        ("block count 0", 44, le(0), "in 0 blocks"),
        (
            "blob past the end",
            40,
            le(u32::MAX),
            "is outside the blob area",
        ),
        (
            "blob in the slot pages",
            40,
            le(4),
            "is outside the blob area",
        ),
        (
            "block count past the end",
            44,
            le(u32::MAX),
            "is outside the blob area",
        ),
        ("blob magic", blob, b"BlbX".to_vec(), "no blob (BlbS magic)"),
        ("blob owner", blob + 4, le(77), "belongs to package 77"),
        (
            "blob length larger than the file",
            blob + 12,
            le(u32::MAX),
            "declares 4294967295 bytes",
        ),
        ("blob length", blob + 12, le(3), "declares 3 bytes"),
        // The second slot a copy of the first.
        (
            "duplicate slot",
            48,
            bytes[32..48].to_vec(),
            "package 1 has another slot too",
        ),
    ];
    for (what, at, patch, want) in table {
        let mut hostile = bytes.clone();
        hostile[*at..at + patch.len()].copy_from_slice(patch);
        let parsed = rpm::parse_ndb(path, &hostile).expect(what);
        assert_eq!(parsed.packages.len(), 2, "{what}");
        assert!(
            parsed.unreadable[0].reason.contains(want),
            "{what}: {:?}",
            parsed.unreadable
        );
    }
    // A torn blob: its tail gone.
    let first_blocks = u32::from_le_bytes(bytes[44..48].try_into().expect("4 bytes")) as usize;
    let mut torn = bytes.clone();
    torn[blob + first_blocks * 16 - 4..blob + first_blocks * 16].fill(0);
    let parsed = rpm::parse_ndb(path, &torn).expect("torn");
    assert!(parsed.unreadable[0].reason.contains("has no matching tail"));
}

#[test]
fn not_a_database_is_a_clear_error() {
    let err = rpm::parse_sqlite("var/lib/rpm/rpmdb.sqlite", b"Berkeley DB junk", None)
        .expect_err("not sqlite");
    assert_eq!(
        err.to_string(),
        "var/lib/rpm/rpmdb.sqlite: not a SQLite database (no SQLite header)"
    );
    let err = dpkg::parse_status(
        dpkg::STATUS,
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0",
    )
    .expect_err("binary junk");
    let text = err.to_string();
    assert!(
        text.starts_with("var/lib/dpkg/status: no readable package stanza"),
        "{text}"
    );
    let err = apk::parse_installed(apk::INSTALLED, b"\0\0\0\0junk").expect_err("junk");
    assert!(
        err.to_string().starts_with("lib/apk/db/installed: "),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = rpm::parse_header(&bytes);
        let _ = dpkg::parse_status(dpkg::STATUS, &bytes);
        let _ = apk::parse_installed(apk::INSTALLED, &bytes);
        let _ = os_release::parse(&bytes);
        let mut sqlite = b"SQLite format 3\0".to_vec();
        sqlite.extend_from_slice(&bytes);
        let _ = rpm::parse_sqlite("rpmdb.sqlite", &sqlite, Some(&bytes));
        let _ = rpm::parse_bdb("Packages", &bytes);
        let _ = rpm::parse_ndb("Packages.db", &bytes);
    }

    #[test]
    fn headers_with_random_index_never_panic(
        entries in 1u32..8,
        data_len in 0u32..64,
        index in proptest::collection::vec(any::<u32>(), 0..32),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut blob = Vec::new();
        blob.extend_from_slice(&entries.to_be_bytes());
        blob.extend_from_slice(&data_len.to_be_bytes());
        for (i, word) in index.iter().enumerate() {
            // Make the tags the ones the parser reads, so offsets and types get exercised.
            let word = if i % 4 == 0 { 1000 + word % 45 } else if i % 4 == 1 { word % 10 } else { *word };
            blob.extend_from_slice(&word.to_be_bytes());
        }
        blob.extend_from_slice(&data);
        let _ = rpm::parse_header(&blob);
    }

    #[test]
    fn dpkg_text_never_panics(text in "[A-Za-z: \\n\\t()~+.-]{0,400}") {
        let _ = dpkg::parse_status(dpkg::STATUS, text.as_bytes());
        let _ = apk::parse_installed(apk::INSTALLED, text.as_bytes());
        let _ = os_release::parse(text.as_bytes());
    }
}

/// The file source the tests use must look like the layer walker's: a sanity check that
/// `list_dir` gives `status.d` entries.
#[test]
fn files_list_status_d() {
    let mut files = Files::new();
    files.insert(
        "var/lib/dpkg/status.d/libc6",
        "Package: libc6\nVersion: 2.36-9\n",
    );
    files.insert("var/lib/dpkg/status.d/libc6.md5sums", "x");
    assert_eq!(files.list_dir(dpkg::STATUS_D).len(), 2);
    let inventory = inventory::from_files(&files).expect("inventory");
    assert_eq!(inventory.packages.len(), 1);
}
