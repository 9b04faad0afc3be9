//! The package database parsers against the package managers themselves: this machine's dpkg
//! database and `dpkg-query`, an rpm database that `rpm` builds, and hostile inputs.
//!
//! The tools come from `hack/scan-tools.sh`; a missing tool fails the test (a skipped
//! comparison would look like a passing one).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use palisade_scanner::inventory::{
    self, FileSource, Files, PackageKind, apk, dpkg, os_release, rpm,
};
use proptest::prelude::*;

/// Run a tool and return its standard output, failing the test with a hint if it is missing.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{program} could not be run ({e}): run hack/scan-tools.sh to install the scan tools"
            )
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

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

/// Tiny rpm packages: one plain, one with an epoch and a file, one sub-package whose
/// source rpm has another name.
const SPECS: &[(&str, &str)] = &[
    (
        "palisade-alpha.spec",
        "Name: palisade-alpha\nVersion: 1.2.3\nRelease: 4.el9\nSummary: plain\nLicense: MIT\n\
         BuildArch: noarch\n%description\nplain\n%files\n",
    ),
    (
        "palisade-beta.spec",
        "Name: palisade-beta\nEpoch: 1\nVersion: 2.0\nRelease: 1.fc40\nSummary: epoch\n\
         License: MIT\nBuildArch: noarch\n%description\nepoch\n%install\n\
         mkdir -p %{buildroot}/usr/share/palisade\n\
         echo beta > %{buildroot}/usr/share/palisade/beta\n\
         %files\n/usr/share/palisade/beta\n",
    ),
    (
        "palisade-src.spec",
        "Name: palisade-src\nVersion: 0.9~rc1\nRelease: 7\nSummary: source\nLicense: MIT\n\
         BuildArch: noarch\n%description\nsource\n\
         %package -n libpalisade-gamma\nSummary: sub-package\n\
         %description -n libpalisade-gamma\nsub-package\n%files -n libpalisade-gamma\n",
    ),
];

/// Build the packages and install them into a fresh SQLite rpm database; the database
/// directory.
fn build_rpmdb(top: &Path) -> std::path::PathBuf {
    let topdir = format!("_topdir {}", top.display());
    let specs = top.join("SPECS");
    std::fs::create_dir_all(&specs).expect("SPECS");
    for (name, text) in SPECS {
        let spec = specs.join(name);
        std::fs::write(&spec, text).expect("write spec");
        run(
            "rpmbuild",
            &[
                "-bb",
                "--quiet",
                "--define",
                &topdir,
                spec.to_str().expect("utf-8 path"),
            ],
        );
    }
    let mut rpms: Vec<String> = std::fs::read_dir(top.join("RPMS/noarch"))
        .expect("rpmbuild wrote RPMS/noarch")
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    rpms.sort();
    // palisade-alpha, palisade-beta, libpalisade-gamma (palisade-src has no %files: no package).
    assert_eq!(rpms.len(), 3, "{rpms:?}");
    let db = top.join("db");
    let dbpath = db.to_str().expect("utf-8 path");
    run("rpm", &["--dbpath", dbpath, "--initdb"]);
    let mut args = vec![
        "-i",
        "--justdb",
        "--nodeps",
        "--ignoreos",
        "--ignorearch",
        "--nosignature",
        "--dbpath",
        dbpath,
    ];
    args.extend(rpms.iter().map(String::as_str));
    run("rpm", &args);
    db
}

#[test]
fn rpm_matches_rpm_query() {
    let top = tempfile::tempdir().expect("tempdir");
    let db = build_rpmdb(top.path());
    let query = run(
        "rpm",
        &[
            "-qa",
            "--dbpath",
            db.to_str().expect("utf-8 path"),
            "--qf",
            "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{SOURCERPM}\\t%{ARCH}\\n",
        ],
    );
    let mut expected: Vec<(String, String, String, String)> = query
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let [name, evr, srpm, arch] = cols[..] else {
                panic!("unexpected rpm -qa line {line:?}");
            };
            (name.into(), evr.into(), srpm.into(), arch.into())
        })
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 3, "{expected:?}");

    let bytes = std::fs::read(db.join("rpmdb.sqlite")).expect("rpm wrote rpmdb.sqlite");
    let wal = std::fs::read(db.join("rpmdb.sqlite-wal")).ok();
    let mut files = Files::new();
    files.insert("usr/lib/sysimage/rpm/rpmdb.sqlite", bytes.clone());
    if let Some(wal) = &wal {
        files.insert("usr/lib/sysimage/rpm/rpmdb.sqlite-wal", wal.clone());
    }
    let inventory = inventory::from_files(&files).expect("inventory");
    let mut got: Vec<(String, String, String, String)> = inventory
        .packages
        .iter()
        .map(|p| {
            assert_eq!(p.kind, PackageKind::Rpm);
            assert_eq!(p.location, "usr/lib/sysimage/rpm/rpmdb.sqlite");
            // rpm prints an absent epoch as 0 with EPOCHNUM.
            let evr = if p.version.contains(':') {
                p.version.clone()
            } else {
                format!("0:{}", p.version)
            };
            let srpm = format!(
                "{}-{}.src.rpm",
                p.source_name.as_deref().expect("source name"),
                p.source_version.as_deref().expect("source version")
            );
            (
                p.name.clone(),
                evr,
                srpm,
                p.arch.clone().unwrap_or_default(),
            )
        })
        .collect();
    got.sort();
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
