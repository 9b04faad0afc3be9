//! Matching semantics, the index and hostile archives.

use std::io::{Cursor, Write};
use std::sync::Arc;

use super::index::{Event, Index, Limits};
use super::matching::affects;
use super::schema::Vulnerability;
use super::*;
use crate::inventory::{Package, PackageKind};
use crate::report::Severity;

fn debian12() -> Ecosystem {
    Ecosystem::from_name("Debian:12").expect("test fixture")
}

fn rec(json: &str) -> Vulnerability {
    serde_json::from_str(json).expect("test fixture")
}

/// An index of one advisory for package `p` with the given `affected` body.
fn one(eco: &Ecosystem, affected_body: &str) -> Index {
    let json = format!(
        r#"{{"id": "T-1", "affected": [{{"package": {{"ecosystem": "{}", "name": "p"}}, {affected_body}}}]}}"#,
        eco.name
    );
    Index::from_records(eco.clone(), [&rec(&json)])
}

/// `None` if unaffected, else the fixed version reported.
fn check(eco: &Ecosystem, body: &str, version: &str) -> Option<Option<String>> {
    let index = one(eco, body);
    let entries = index.affected("p");
    assert_eq!(entries.len(), 1, "{body}");
    affects(eco.scheme, &entries[0], version)
}

fn range(events: &str) -> String {
    format!(r#""ranges": [{{"type": "ECOSYSTEM", "events": [{events}]}}]"#)
}

#[test]
fn range_semantics() {
    let d = debian12();
    let fixed = |v: &str| Some(Some(v.to_owned()));
    let table: Vec<(String, &str, Option<Option<String>>)> = vec![
        // introduced 0 .. fixed
        (range(r#"{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}"#), "3.0.9-1", fixed("3.0.11-1~deb12u2")),
        (range(r#"{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}"#), "3.0.11-1~deb12u1", fixed("3.0.11-1~deb12u2")),
        (range(r#"{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}"#), "3.0.11-1~deb12u2", None),
        // ~ sorts before the release: 3.0.11-1 is newer than the fix
        (range(r#"{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}"#), "3.0.11-1", None),
        (range(r#"{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}"#), "3.0.15-1~deb12u1", None),
        // unfixed: everything
        (range(r#"{"introduced": "0"}"#), "0.1-1", Some(None)),
        (range(r#"{"introduced": "0"}"#), "99:1.0", Some(None)),
        // introduced bound is inclusive
        (range(r#"{"introduced": "2.0-1"}, {"fixed": "2.5-1"}"#), "1.9-1", None),
        (range(r#"{"introduced": "2.0-1"}, {"fixed": "2.5-1"}"#), "2.0-1", fixed("2.5-1")),
        // last_affected is inclusive, and reports no fix
        (range(r#"{"introduced": "0"}, {"last_affected": "2.1.214-1"}"#), "2.1.214-1", Some(None)),
        (range(r#"{"introduced": "0"}, {"last_affected": "2.1.214-1"}"#), "2.1.214-2", None),
        // epochs dominate
        (range(r#"{"introduced": "0"}, {"fixed": "1:2.0-1"}"#), "2.9-1", fixed("1:2.0-1")),
        (range(r#"{"introduced": "0"}, {"fixed": "1:2.0-1"}"#), "1:1.9-1", fixed("1:2.0-1")),
        (range(r#"{"introduced": "0"}, {"fixed": "1:2.0-1"}"#), "1:2.0-1", None),
        (range(r#"{"introduced": "0"}, {"fixed": "2.0-1"}"#), "1:1.0-1", None),
        // two intervals in one range, listed out of order: sorted by version first
        (
            range(r#"{"introduced": "3.0.0-1"}, {"fixed": "3.2.5-1"}, {"introduced": "1.0.0-1"}, {"fixed": "1.0.2-1"}"#),
            "1.0.1-1",
            fixed("1.0.2-1"),
        ),
        (
            range(r#"{"introduced": "3.0.0-1"}, {"fixed": "3.2.5-1"}, {"introduced": "1.0.0-1"}, {"fixed": "1.0.2-1"}"#),
            "2.0-1",
            None,
        ),
        (
            range(r#"{"introduced": "3.0.0-1"}, {"fixed": "3.2.5-1"}, {"introduced": "1.0.0-1"}, {"fixed": "1.0.2-1"}"#),
            "3.1-1",
            fixed("3.2.5-1"),
        ),
        // limit: only below a limit
        (range(r#"{"introduced": "0"}, {"limit": "2.0-1"}"#), "1.5-1", Some(None)),
        (range(r#"{"introduced": "0"}, {"limit": "2.0-1"}"#), "2.0-1", None),
        (range(r#"{"introduced": "0"}, {"limit": "*"}"#), "9.0-1", Some(None)),
        // explicit versions only
        (r#""versions": ["1.2-3", "1.2-4"]"#.to_owned(), "1.2-4", Some(None)),
        (r#""versions": ["1.2-3", "1.2-4"]"#.to_owned(), "1.2-5", None),
        // versions compare by the scheme: 0:1.2-3 is 1.2-3
        (r#""versions": ["1.2-3"]"#.to_owned(), "0:1.2-3", Some(None)),
        // versions in addition to a range
        (
            format!(r#"{}, "versions": ["0.9-1"]"#, range(r#"{"introduced": "1.0-1"}, {"fixed": "1.1-1"}"#)),
            "0.9-1",
            Some(None),
        ),
        // several ranges: any one
        (
            r#""ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1"}]},
                          {"type": "ECOSYSTEM", "events": [{"introduced": "2.0-1"}, {"fixed": "2.3-1"}]}]"#
                .to_owned(),
            "2.1-1",
            fixed("2.3-1"),
        ),
        // GIT ranges are ignored; the ECOSYSTEM one decides
        (
            r#""ranges": [{"type": "GIT", "repo": "https://github.com/openssl/openssl", "events": [{"introduced": "0"}, {"fixed": "abc"}]},
                          {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1"}]}]"#
                .to_owned(),
            "1.0-1",
            None,
        ),
    ];
    for (body, version, want) in table {
        assert_eq!(check(&d, &body, version), want, "{version} in {body}");
    }
}

#[test]
fn alpine_and_rpm_ranges() {
    let alpine = Ecosystem::from_name("Alpine:v3.20").expect("test fixture");
    let body = range(r#"{"introduced": "0"}, {"fixed": "3.3.2-r0"}"#);
    assert_eq!(
        check(&alpine, &body, "3.3.1-r0"),
        Some(Some("3.3.2-r0".into()))
    );
    assert_eq!(check(&alpine, &body, "3.3.2-r0"), None);
    assert_eq!(check(&alpine, &body, "3.3.2-r1"), None);

    let rocky = Ecosystem::from_name("Rocky Linux:9").expect("test fixture");
    let body = range(r#"{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}"#);
    assert_eq!(
        check(&rocky, &body, "1:3.0.7-25.el9"),
        Some(Some("1:3.0.7-27.el9".into()))
    );
    assert_eq!(check(&rocky, &body, "1:3.0.7-27.el9"), None);
}

#[test]
fn withdrawn_advisories_and_other_ecosystems_are_skipped() {
    let recs = [
        rec(
            r#"{"id": "DEBIAN-CVE-2020-0001", "withdrawn": "2021-01-01T00:00:00Z",
               "affected": [{"package": {"ecosystem": "Debian:12", "name": "p"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#,
        ),
        rec(r#"{"id": "DEBIAN-CVE-2020-0002",
               "affected": [{"package": {"ecosystem": "Debian:11", "name": "p"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#),
        rec(r#"{"id": "DEBIAN-CVE-2020-0003",
               "affected": [{"package": {"ecosystem": "Debian", "name": "p"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#),
    ];
    let index = Index::from_records(debian12(), &recs);
    assert_eq!(index.withdrawn_count(), 1);
    assert_eq!(
        index.advisory_count(),
        1,
        "only the unscoped Debian record applies"
    );
    let ids: Vec<&str> = index
        .affected("p")
        .iter()
        .map(|e| &*index.advisory(e.advisory).expect("test fixture").id)
        .collect();
    assert_eq!(ids, ["DEBIAN-CVE-2020-0003"]);
}

#[test]
fn malformed_events_are_ignored_not_guessed() {
    let index = one(
        &debian12(),
        &range(
            r#"{"introduced": "0", "fixed": "1.0-1"}, {"introduced": "0"}, {"fixed": "2.0-1"}, {}"#,
        ),
    );
    let e = &index.affected("p")[0];
    assert_eq!(
        &*e.ranges[0],
        [Event::Introduced("0".into()), Event::Fixed("2.0-1".into())]
    );
}

fn package(
    kind: PackageKind,
    name: &str,
    version: &str,
    source: Option<&str>,
    source_version: Option<&str>,
) -> Package {
    Package {
        kind,
        name: name.into(),
        version: version.into(),
        source_name: source.map(Into::into),
        source_version: source_version.map(Into::into),
        arch: Some("amd64".into()),
        location: "var/lib/dpkg/status".into(),
    }
}

fn bookworm() -> OsRelease {
    OsRelease {
        id: "debian".into(),
        version_id: Some("12".into()),
        version_codename: Some("bookworm".into()),
        ..Default::default()
    }
}

const OPENSSL_CVE: &str = r#"{
  "id": "DEBIAN-CVE-2023-5363",
  "upstream": ["CVE-2023-5363"],
  "summary": "",
  "details": "Issue summary: A bug has been identified in the processing of key and\ninitialisation vector (IV) lengths.",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}],
    "ecosystem_specific": {"urgency": "not yet assigned"}
  }]
}"#;

const OPENSSL_DSA: &str = r#"{
  "id": "DSA-5532-1",
  "aliases": ["DEBIAN-CVE-2023-5363", "CVE-2023-5678", "CVE-2023-5363"],
  "summary": "openssl - security update",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}]
  }]
}"#;

const ZLIB_UNFIXED: &str = r#"{
  "id": "DEBIAN-CVE-2023-45853",
  "upstream": ["CVE-2023-45853"],
  "summary": "MiniZip in zlib through 1.3 has an integer overflow",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "zlib"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
    "ecosystem_specific": {"urgency": "unimportant"}
  }]
}"#;

#[test]
fn an_inventory_matches_by_source_package_one_finding_per_vulnerability_and_binary() {
    let recs = [rec(OPENSSL_CVE), rec(OPENSSL_DSA), rec(ZLIB_UNFIXED)];
    let mut db = Database::new();
    db.insert(
        Arc::new(Index::from_records(debian12(), &recs)),
        "ab".repeat(32),
    );
    assert_eq!(db.version(), format!("Debian:12@{}", "ab".repeat(6)));
    let inventory = Inventory {
        os: Some(bookworm()),
        packages: vec![
            package(
                PackageKind::Dpkg,
                "libssl3",
                "3.0.9-1",
                Some("openssl"),
                None,
            ),
            package(PackageKind::Dpkg, "openssl", "3.0.9-1", None, None),
            package(
                PackageKind::Dpkg,
                "zlib1g",
                "1:1.2.13.dfsg-1",
                Some("zlib"),
                None,
            ),
            package(
                PackageKind::Dpkg,
                "libssl-fixed",
                "3.0.11-1~deb12u2",
                Some("openssl"),
                None,
            ),
        ],
        ..Default::default()
    };
    let findings = match_inventory(&db, &inventory);
    let got: Vec<(&str, &str, Severity, Option<&str>)> = findings
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.package.as_str(),
                f.severity,
                f.fixed_version.as_deref(),
            )
        })
        .collect();
    // The DSA and Debian's record of its CVE are one finding per binary, named by the DSA,
    // with the CVE record's severity.
    assert_eq!(
        got,
        [
            (
                "DSA-5532-1",
                "libssl3",
                Severity::High,
                Some("3.0.11-1~deb12u2")
            ),
            (
                "DSA-5532-1",
                "openssl",
                Severity::High,
                Some("3.0.11-1~deb12u2")
            ),
            ("DEBIAN-CVE-2023-45853", "zlib1g", Severity::Low, None),
        ]
    );
    assert_eq!(findings[0].installed_version, "3.0.9-1");
    assert_eq!(
        findings[0].summary.as_deref(),
        Some("openssl - security update")
    );
    assert_eq!(
        findings[0].aliases,
        ["CVE-2023-5363", "CVE-2023-5678", "DEBIAN-CVE-2023-5363"],
        "CVE ids first"
    );
    assert_eq!(findings[2].aliases, ["CVE-2023-45853"]);
    assert_eq!(
        findings[2].summary.as_deref(),
        Some("MiniZip in zlib through 1.3 has an integer overflow")
    );

    // Another OS: not covered, no findings, and index_for says so.
    let alpine = OsRelease {
        id: "alpine".into(),
        version_id: Some("3.20.3".into()),
        ..Default::default()
    };
    assert!(db.index_for(&alpine).is_none());
    assert!(
        match_inventory(
            &db,
            &Inventory {
                os: Some(alpine),
                packages: inventory.packages.clone(),
                ..Default::default()
            }
        )
        .is_empty()
    );
}

#[test]
fn the_source_version_decides_for_binnmus() {
    let mut db = Database::new();
    db.insert(
        Arc::new(Index::from_records(debian12(), [&rec(OPENSSL_CVE)])),
        "00",
    );
    // Binary rebuilt (+b1) from the fixed source: not affected.
    let inventory = Inventory {
        os: Some(bookworm()),
        packages: vec![package(
            PackageKind::Dpkg,
            "libssl3",
            "3.0.11-1~deb12u2+b1",
            Some("openssl"),
            Some("3.0.11-1~deb12u2"),
        )],
        ..Default::default()
    };
    assert!(match_inventory(&db, &inventory).is_empty());
}

// -- hostile archives --

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(*name, opts).expect("test fixture");
        w.write_all(data).expect("test fixture");
    }
    w.finish().expect("test fixture").into_inner()
}

fn load(bytes: Vec<u8>, limits: Limits) -> Result<Index, crate::Error> {
    Index::from_zip(debian12(), Cursor::new(bytes), "test.zip", limits)
}

fn reason(r: Result<Index, crate::Error>) -> String {
    match r {
        Err(crate::Error::VulnDb {
            source_name,
            reason,
        }) => {
            assert_eq!(source_name, "test.zip");
            reason
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("loaded"),
    }
}

#[test]
fn a_good_archive_loads() {
    let bytes = zip_of(&[
        ("DEBIAN-CVE-2023-5363.json", OPENSSL_CVE.as_bytes()),
        ("DSA-5532-1.json", OPENSSL_DSA.as_bytes()),
    ]);
    let index = load(bytes, Limits::default()).expect("test fixture");
    assert_eq!(index.advisory_count(), 2);
    assert_eq!(index.package_count(), 1);
}

#[test]
fn not_a_zip_is_refused() {
    let r = reason(load(
        b"<html>503 Service Unavailable</html>".to_vec(),
        Limits::default(),
    ));
    assert!(r.contains("not a readable zip archive"), "{r}");
    let mut truncated = zip_of(&[("DSA-5532-1.json", OPENSSL_DSA.as_bytes())]);
    truncated.truncate(truncated.len() / 2);
    let r = reason(load(truncated, Limits::default()));
    assert!(r.contains("zip"), "{r}");
}

#[test]
fn an_entry_that_is_not_an_osv_record_refuses_the_whole_archive() {
    let bytes = zip_of(&[
        ("DSA-5532-1.json", OPENSSL_DSA.as_bytes()),
        ("README.txt", b"This archive holds advisories."),
    ]);
    let r = reason(load(bytes, Limits::default()));
    assert!(r.starts_with("README.txt: not an OSV record"), "{r}");
    let bytes = zip_of(&[("X.json", br#"{"id": "X", "affected": {"oops": 1}}"#)]);
    let r = reason(load(bytes, Limits::default()));
    assert!(r.starts_with("X.json: not an OSV record"), "{r}");
}

#[test]
fn an_oversized_entry_is_refused_without_reading_it_all() {
    // A zip bomb: 64 MiB of spaces compress to ~64 KiB.
    let bomb = vec![b' '; 64 << 20];
    let bytes = zip_of(&[("DSA-0000-1.json", &bomb)]);
    assert!(bytes.len() < 1 << 20);
    let r = reason(load(bytes, Limits::default()));
    assert!(r.contains("more than the 16777216"), "{r}");

    // Same with a tighter limit and a real record.
    let bytes = zip_of(&[("DSA-5532-1.json", OPENSSL_DSA.as_bytes())]);
    let limits = Limits {
        max_entry_bytes: 100,
        ..Limits::default()
    };
    let r = reason(load(bytes, limits));
    assert!(r.contains("DSA-5532-1.json"), "{r}");
}

#[test]
fn an_entry_whose_header_lies_about_its_size_is_still_bounded() {
    // Write a 4 KiB entry, then patch the central directory's uncompressed size to 10.
    let data = vec![b' '; 4096];
    let mut bytes = zip_of(&[("X.json", &data)]);
    let cd = bytes
        .windows(4)
        .rposition(|w| w == [0x50, 0x4b, 0x01, 0x02])
        .expect("test fixture");
    bytes[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
    let limits = Limits {
        max_entry_bytes: 1000,
        ..Limits::default()
    };
    // Either the reader notices the lie or the cap does; never a panic, never a load.
    assert!(load(bytes, limits).is_err());
}

#[test]
fn too_many_entries_are_refused() {
    let bytes = zip_of(&[("a.json", br#"{"id": "A"}"#), ("b.json", br#"{"id": "B"}"#)]);
    let limits = Limits {
        max_entries: 1,
        ..Limits::default()
    };
    let r = reason(load(bytes, limits));
    assert!(r.contains("2 files"), "{r}");
}

#[test]
fn red_hat_images_take_every_stream_of_their_release() {
    // As Red Hat's OSV records are written: one advisory, one affected entry per product
    // stream, epochs in the fixed versions, the source RPM's name as the package.
    let recs = [
        rec(r#"{
      "id": "RHSA-2024:0001", "upstream": ["CVE-2024-0001"],
      "summary": "Important: openssl security update",
      "affected": [
        {"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}]}]},
        {"package": {"ecosystem": "Red Hat:enterprise_linux:8::baseos", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.1.1k-12.el8"}]}]},
        {"package": {"ecosystem": "Red Hat:rhel_eus:9.2::baseos", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-99.el9_2"}]}]}
      ]}"#),
        rec(r#"{
      "id": "RHSA-2024:0002",
      "affected": [
        {"package": {"ecosystem": "Red Hat:enterprise_linux:9::appstream", "name": "nodejs"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:20.11.1-1.el9"}]}]}
      ]}"#),
    ];
    let os = OsRelease {
        id: "rhel".into(),
        version_id: Some("9.4".into()),
        ..Default::default()
    };
    let eco = ecosystem_for(&os).expect("rhel is mapped");
    assert_eq!(eco.name, "Red Hat:enterprise_linux:9");
    let mut db = Database::new();
    db.insert(Arc::new(Index::from_records(eco, &recs)), "cd".repeat(32));
    let rpm = |name: &str, version: &str, source: &str| Package {
        kind: PackageKind::Rpm,
        name: name.into(),
        version: version.into(),
        source_name: Some(source.into()),
        source_version: None,
        arch: Some("x86_64".into()),
        location: "var/lib/rpm/rpmdb.sqlite".into(),
    };
    let inventory = Inventory {
        os: Some(os),
        packages: vec![
            rpm(
                "openssl-libs",
                "1:3.0.7-25.el9",
                "openssl-3.0.7-25.el9.src.rpm",
            ),
            rpm("nodejs", "1:20.11.1-1.el9", "nodejs-20.11.1-1.el9.src.rpm"),
        ],
        ..Default::default()
    };
    let got: Vec<(String, String, Option<String>)> = match_inventory(&db, &inventory)
        .into_iter()
        .map(|f| (f.id, f.package, f.fixed_version))
        .collect();
    // The 9 baseos fix applies; the 8 and EUS ones do not; nodejs is at its fix.
    assert_eq!(
        got,
        [(
            "RHSA-2024:0001".to_owned(),
            "openssl-libs".to_owned(),
            Some("1:3.0.7-27.el9".to_owned())
        )]
    );
}
