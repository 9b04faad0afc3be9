//! The parser and the conversion on snippets in the shape of Amazon Linux's documents.

use std::io::Write as _;

use super::*;
use crate::inventory::{Inventory, OsRelease, Package as InstalledPackage, PackageKind};
use crate::osv::schema::Vulnerability;
use crate::osv::{Database, match_inventory};
use crate::report::Severity;

/// Two Amazon Linux 2 advisories (one with an epoch, several arches, a source package),
/// a bugfix, and one without severity.
const AL2: &str = r#"<?xml version="1.0" ?>
<updates>
  <update author="linux-security@amazon.com" from="linux-security@amazon.com" status="final" type="security" version="1.4">
    <id>ALAS2-2023-2020</id>
    <title>Amazon Linux 2 - ALAS2-2023-2020: important priority package update for openssl</title>
    <issued date="2023-04-26 20:10" />
    <updated date="2023-05-02 18:57" />
    <severity>important</severity>
    <description>Package updates are available for Amazon Linux 2 that fix the following vulnerabilities:
CVE-2023-0286:
	A type confusion vulnerability relating to X.400 address processing inside an X.509 GeneralName &amp; more.
</description>
    <references>
      <reference href="https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2023-0286" id="CVE-2023-0286" title="" type="cve" />
      <reference href="https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2023-0215" id="CVE-2023-0215" title="" type="cve" />
      <reference href="https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2023-0286" id="CVE-2023-0286" title="" type="cve" />
    </references>
    <pkglist>
      <collection short="amazon-linux-2">
        <name>amazon-linux-2</name>
        <package arch="aarch64" epoch="1" name="openssl" release="24.amzn2.0.6" version="1.0.2k">
          <filename>Packages/openssl-1.0.2k-24.amzn2.0.6.aarch64.rpm</filename>
        </package>
        <package arch="x86_64" epoch="1" name="openssl-libs" release="24.amzn2.0.6" version="1.0.2k">
          <filename>Packages/openssl-libs-1.0.2k-24.amzn2.0.6.x86_64.rpm</filename>
        </package>
        <package arch="i686" epoch="1" name="openssl-libs" release="24.amzn2.0.5" version="1.0.2k">
          <filename>Packages/openssl-libs-1.0.2k-24.amzn2.0.5.i686.rpm</filename>
        </package>
        <package arch="x86_64" epoch="1" name="openssl" release="24.amzn2.0.6" version="1.0.2k">
          <filename>Packages/openssl-1.0.2k-24.amzn2.0.6.x86_64.rpm</filename>
        </package>
        <package arch="src" epoch="1" name="openssl" release="24.amzn2.0.6" version="1.0.2k">
          <filename>Packages/openssl-1.0.2k-24.amzn2.0.6.src.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
  <update author="linux-security@amazon.com" from="linux-security@amazon.com" status="final" type="bugfix" version="1.4">
    <id>ALAS2-2023-2021</id>
    <title>Amazon Linux 2 - ALAS2-2023-2021: bugfix update for tzdata</title>
    <issued date="2023-04-27 00:00" />
    <pkglist><collection short="amazon-linux-2"><name>amazon-linux-2</name>
      <package arch="noarch" epoch="0" name="tzdata" release="1.amzn2.0.1" version="2023c"><filename>Packages/tzdata-2023c-1.amzn2.0.1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update author="linux-security@amazon.com" from="linux-security@amazon.com" status="final" type="security" version="1.4">
    <id>ALAS2-2023-2053</id>
    <title>Amazon Linux 2 - ALAS2-2023-2053: medium priority package update for ca-certificates</title>
    <issued date="2023-05-18 21:41" />
    <updated date="2023-05-18 21:41" />
    <severity>medium</severity>
    <description><![CDATA[CVE-2023-0000: a <certificate> problem]]></description>
    <references>
      <reference href="https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2023-0000" id="CVE-2023-0000" title="" type="cve" />
    </references>
    <pkglist>
      <collection short="amazon-linux-2">
        <name>amazon-linux-2</name>
        <package arch="noarch" epoch="0" name="ca-certificates" release="1.0.amzn2.0.1" version="2023.2.62_v7.0.401">
          <filename>Packages/ca-certificates-2023.2.62_v7.0.401-1.0.amzn2.0.1.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
  <update author="linux-security@amazon.com" from="linux-security@amazon.com" status="final" type="security" version="1.4">
    <id>ALAS2-2024-2400</id>
    <title>Amazon Linux 2 - ALAS2-2024-2400: package update for curl</title>
    <issued date="2024-01-03 19:08" />
    <references>
      <reference href="https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2023-46218" id="CVE-2023-46218" title="" type="cve" />
    </references>
    <pkglist>
      <collection short="amazon-linux-2">
        <name>amazon-linux-2</name>
        <package arch="x86_64" name="libcurl" release="13.amzn2.0.5" version="8.3.0" />
        <package arch="x86_64" epoch="" name="curl" release="13.amzn2.0.5" version="8.3.0" />
      </collection>
    </pkglist>
  </update>
</updates>
"#;

/// An Amazon Linux 2023 advisory, with a namespace-prefixed attribute and a self link.
const AL2023: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates xmlns:x="urn:x">
  <update from="alas-securitybot@amazon.com" status="stable" type="security" version="2.0">
    <id>ALAS2023-2024-500</id>
    <title>Critical: kernel</title>
    <issued date="2024-02-01 21:49:00"/>
    <updated date="2024-02-15 19:00:00"/>
    <severity>Critical</severity>
    <references>
      <reference type="cve" id="CVE-2024-1086" href="https://www.cve.org/CVERecord?id=CVE-2024-1086"/>
      <reference type="self" id="ALAS2023-2024-500" href="https://alas.aws.amazon.com/AL2023/ALAS-2024-500.html"/>
    </references>
    <pkglist>
      <collection short="amazonlinux">
        <name>Amazon Linux 2023</name>
        <package name="kernel" arch="x86_64" version="6.1.72" release="96.166.amzn2023" epoch="0" x:extra="1">
          <filename>Packages/kernel-6.1.72-96.166.amzn2023.x86_64.rpm</filename>
          <reboot_suggested>1</reboot_suggested>
        </package>
        <package name="kernel" arch="aarch64" version="6.1.72" release="96.166.amzn2023" epoch="0"/>
      </collection>
    </pkglist>
  </update>
</updates>
"#;

fn parse_all(doc: &[u8]) -> Result<Vec<Advisory>, Error> {
    let mut out = Vec::new();
    parse::for_each_advisory(doc, "test.xml", Limits::default(), |a| out.push(a))?;
    Ok(out)
}

#[test]
fn amazon_linux_2_entries_parse_field_by_field() {
    let advisories = parse_all(AL2.as_bytes()).expect("parses");
    let ids: Vec<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ALAS2-2023-2020",
            "ALAS2-2023-2021",
            "ALAS2-2023-2053",
            "ALAS2-2024-2400"
        ]
    );
    let openssl = &advisories[0];
    assert_eq!(openssl.kind, Kind::Security);
    assert_eq!(openssl.severity.as_deref(), Some("important"));
    assert_eq!(openssl.issued.as_deref(), Some("2023-04-26 20:10"));
    assert_eq!(openssl.updated.as_deref(), Some("2023-05-02 18:57"));
    assert_eq!(
        openssl.title.as_deref(),
        Some("Amazon Linux 2 - ALAS2-2023-2020: important priority package update for openssl")
    );
    let description = openssl.description.as_deref().expect("description");
    assert!(description.starts_with("Package updates are available"));
    assert!(
        description.ends_with("GeneralName & more."),
        "entities resolved, whitespace trimmed: {description:?}"
    );
    assert_eq!(openssl.cves(), ["CVE-2023-0286", "CVE-2023-0215"]);
    assert_eq!(openssl.packages.len(), 5);
    assert_eq!(
        openssl.packages[0],
        Package {
            name: "openssl".into(),
            epoch: Some("1".into()),
            version: "1.0.2k".into(),
            release: "24.amzn2.0.6".into(),
            arch: "aarch64".into(),
        }
    );
    assert_eq!(advisories[1].kind, Kind::Bugfix);
    assert_eq!(
        advisories[2].description.as_deref(),
        Some("CVE-2023-0000: a <certificate> problem"),
        "CDATA kept as written"
    );
    let curl = &advisories[3];
    assert_eq!(curl.severity, None);
    assert_eq!(curl.packages[0].epoch, None, "no epoch attribute");
    assert_eq!(curl.packages[1].epoch, None, "an empty epoch is none");
}

#[test]
fn security_advisories_become_osv_records() {
    let advisories = parse_all(AL2.as_bytes()).expect("parses");
    let records: Vec<Option<Vulnerability>> = advisories
        .iter()
        .map(|a| convert::to_osv(a, "Amazon Linux:2"))
        .collect();
    assert!(records[1].is_none(), "a bugfix is no advisory");
    let openssl = records[0].as_ref().expect("security");
    assert_eq!(openssl.id, "ALAS2-2023-2020");
    assert_eq!(openssl.aliases, ["CVE-2023-0286", "CVE-2023-0215"]);
    assert_eq!(openssl.published.as_deref(), Some("2023-04-26 20:10"));
    // One entry per binary name, the highest EVR of its arches, no source package.
    let fixed: Vec<(&str, &str, &str)> = openssl
        .affected
        .iter()
        .map(|a| {
            let p = a.package.as_ref().expect("package");
            let events = &a.ranges[0].events;
            (
                p.name.as_str(),
                events[0].introduced.as_deref().expect("introduced"),
                events[1].fixed.as_deref().expect("fixed"),
            )
        })
        .collect();
    assert_eq!(
        fixed,
        [
            ("openssl", "0", "1:1.0.2k-24.amzn2.0.6"),
            ("openssl-libs", "0", "1:1.0.2k-24.amzn2.0.6"),
        ]
    );
    assert!(
        openssl
            .affected
            .iter()
            .all(|a| a.package.as_ref().expect("package").ecosystem == "Amazon Linux:2")
    );
    let ca = records[2].as_ref().expect("security");
    let ca_fixed = ca.affected[0].ranges[0].events[1].fixed.as_deref();
    assert_eq!(
        ca_fixed,
        Some("2023.2.62_v7.0.401-1.0.amzn2.0.1"),
        "epoch 0 not written"
    );
    let curl = records[3].as_ref().expect("security");
    assert_eq!(curl.database_specific, None, "no severity, no url");
}

#[test]
fn severity_words_map_to_levels() {
    let table = [
        (Some("critical"), Severity::Critical),
        (Some("Critical"), Severity::Critical),
        (Some("important"), Severity::High),
        (Some("medium"), Severity::Medium),
        (Some("Moderate"), Severity::Medium),
        (Some("low"), Severity::Low),
        (Some("none"), Severity::Unknown),
        (None, Severity::Unknown),
    ];
    for (word, want) in table {
        let advisory = Advisory {
            id: "ALAS2-2024-1".into(),
            kind: Kind::Security,
            severity: word.map(Into::into),
            packages: vec![Package {
                name: "p".into(),
                epoch: None,
                version: "1".into(),
                release: "1".into(),
                arch: "x86_64".into(),
            }],
            ..Advisory::default()
        };
        let record = convert::to_osv(&advisory, "Amazon Linux:2").expect("record");
        let got = crate::osv::severity::severity_of(&record, &record.affected[0]);
        assert_eq!(got, want, "{word:?}");
    }
}

#[test]
fn amazon_linux_2023_with_self_link_and_prefixed_attributes() {
    let advisories = parse_all(AL2023.as_bytes()).expect("parses");
    assert_eq!(advisories.len(), 1);
    let kernel = &advisories[0];
    assert_eq!(
        kernel.url(),
        Some("https://alas.aws.amazon.com/AL2023/ALAS-2024-500.html")
    );
    let record = convert::to_osv(kernel, "Amazon Linux:2023").expect("record");
    assert_eq!(record.aliases, ["CVE-2024-1086"]);
    assert_eq!(record.affected.len(), 1, "two arches, one name");
    assert_eq!(
        record.affected[0].ranges[0].events[1].fixed.as_deref(),
        Some("6.1.72-96.166.amzn2023")
    );
}

#[test]
fn documents_that_are_not_updateinfo_or_break_a_limit_are_errors() {
    let limits = |entry: u64, entries: usize, document: u64| Limits {
        max_entry_bytes: entry,
        max_entries: entries,
        max_document_bytes: document,
    };
    let big = Limits::default();
    let cut = &AL2[..AL2.find("</pkglist>").expect("fixture")];
    let table: &[(&str, &[u8], Limits, &str)] = &[
        ("truncated", cut.as_bytes(), big, "truncated: the document ends inside <pkglist> (in ALAS2-2023-2020)"),
        ("empty", b"", big, "no <updates> element"),
        ("another root", b"<repomd><data/></repomd>", big, "its root element is <repomd>"),
        ("two roots", b"<updates/><updates/>", big, "an element after the root"),
        ("no id", b"<updates><update type=\"security\"><title>x</title></update></updates>", big, "an update without an <id>"),
        (
            "package without version",
            b"<updates><update type=\"security\"><id>A-1</id><pkglist><collection><package name=\"p\" release=\"1\"/></collection></pkglist></update></updates>",
            big,
            "update A-1: a package without version",
        ),
        ("mismatched end", b"<updates><update><id>A</title></update></updates>", big, "not well-formed XML at byte"),
        ("bad attribute", b"<updates><update type=security><id>A</id></update></updates>", big, "a malformed attribute in <update>"),
        ("too many updates", AL2.as_bytes(), limits(1 << 20, 3, 1 << 30), "more than the 3 updates allowed"),
        ("update too big", AL2.as_bytes(), limits(1000, 100, 1 << 30), "more than the 1000 bytes allowed"),
        ("document too big", AL2.as_bytes(), limits(1 << 20, 100, 4096), "more than the 4096 bytes allowed for the uncompressed document"),
        (
            "too deep",
            b"<updates><update><a><b><c><d><e><f><g><h><i><j><k><l><m><n><o><p><q><r><s><t><u><v><w><x><y><z><a><b><c><d><e><f></f></e></d></c></b></a></z></y></x></w></v></u></t></s></r></q></p></o></n></m></l></k></j></i></h></g></f></e></d></c></b></a></update></updates>",
            big,
            "nested deeper than 32",
        ),
    ];
    for (case, doc, limits, want) in table {
        let mut n = 0;
        let err = parse::for_each_advisory(*doc, "test.xml", *limits, |_| n += 1)
            .expect_err(case)
            .to_string();
        assert!(err.contains(want), "{case}: {err}");
        assert!(
            err.starts_with("vulnerability database test.xml: "),
            "{case}: {err}"
        );
    }
    // The well-formed ones within their limits parse.
    assert_eq!(
        parse::for_each_advisory(AL2.as_bytes(), "t", limits(4096, 4, 1 << 20), |_| {})
            .expect("within limits"),
        4
    );
    assert_eq!(parse_all(b"<updates/>").expect("empty list").len(), 0);
}

#[test]
fn the_xml_error_keeps_its_source() {
    let err = parse_all(b"<updates><update><id>A</title>").expect_err("malformed");
    assert!(matches!(err, Error::VulnDbXml { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

#[test]
fn the_index_reads_plain_gzip_and_zstd_and_refuses_xz() {
    let eco = || Ecosystem::from_name("Amazon Linux:2").expect("known");
    let zst = zstd::encode_all(AL2.as_bytes(), 1).expect("zstd");
    for (format, doc) in [
        ("plain", AL2.as_bytes().to_vec()),
        ("gzip", gzip(AL2.as_bytes())),
        ("zstd", zst),
    ] {
        let index = index(eco(), doc.as_slice(), "t", Limits::default()).expect(format);
        assert_eq!(
            index.advisory_count(),
            3,
            "{format}: the three security updates"
        );
        assert_eq!(index.affected("openssl-libs").len(), 1, "{format}");
        assert!(index.affected("tzdata").is_empty(), "{format}: bugfix only");
    }
    let xz = [0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2];
    let err = index(eco(), &xz[..], "u.xml.xz", Limits::default())
        .expect_err("xz")
        .to_string();
    assert!(err.contains("xz-compressed"), "{err}");
    let mut bad_gzip = gzip(AL2.as_bytes());
    bad_gzip.truncate(bad_gzip.len() / 2);
    let err = index(eco(), bad_gzip.as_slice(), "u.xml.gz", Limits::default())
        .expect_err("truncated gzip")
        .to_string();
    assert!(err.contains("u.xml.gz"), "{err}");
}

fn rpm(name: &str, version: &str) -> InstalledPackage {
    InstalledPackage {
        kind: PackageKind::Rpm,
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        arch: Some("x86_64".into()),
        location: "var/lib/rpm/Packages".into(),
    }
}

#[test]
fn an_amazon_linux_2_inventory_is_matched_by_binary_name_and_evr() {
    let index = index(
        Ecosystem::from_name("Amazon Linux:2").expect("known"),
        AL2.as_bytes(),
        "t",
        Limits::default(),
    )
    .expect("index");
    let mut db = Database::new();
    db.insert(std::sync::Arc::new(index), "0".repeat(64));
    let mut openssl_libs = rpm("openssl-libs", "1:1.0.2k-24.amzn2.0.4");
    // The source name would also be `openssl`: Amazon is matched by binary name only.
    openssl_libs.source_name = Some("openssl-1.0.2k-24.amzn2.0.4.src.rpm".into());
    let inventory = Inventory {
        os: Some(OsRelease {
            id: "amzn".into(),
            id_like: vec!["centos".into(), "rhel".into(), "fedora".into()],
            version_id: Some("2".into()),
            version_codename: None,
            pretty_name: Some("Amazon Linux 2".into()),
        }),
        packages: vec![
            openssl_libs,
            // Fixed exactly, and newer: not reported.
            rpm("openssl", "1:1.0.2k-24.amzn2.0.6"),
            rpm("ca-certificates", "2023.2.64-1.0.amzn2.0.1"),
            // Vulnerable without an epoch in its header.
            rpm("curl", "8.3.0-13.amzn2.0.2"),
            // An explicit epoch 0 is no epoch: newer than the fix, not reported.
            rpm("libcurl", "0:9.0-1.amzn2"),
        ],
        ..Inventory::default()
    };
    let findings = match_inventory(&db, &inventory);
    /// (id, package, fixed version, severity, aliases) of a finding.
    type Seen<'a> = (&'a str, &'a str, Option<&'a str>, Severity, Vec<&'a str>);
    let got: Vec<Seen> = findings
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.package.as_str(),
                f.fixed_version.as_deref(),
                f.severity,
                f.aliases.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "ALAS2-2023-2020",
                "openssl-libs",
                Some("1:1.0.2k-24.amzn2.0.6"),
                Severity::High,
                vec!["CVE-2023-0286", "CVE-2023-0215"]
            ),
            (
                "ALAS2-2024-2400",
                "curl",
                Some("8.3.0-13.amzn2.0.5"),
                Severity::Unknown,
                vec!["CVE-2023-46218"]
            ),
        ]
    );
}

#[test]
fn source_arguments() {
    let table = [
        (
            "Amazon Linux:2=https://m.example/al2/mirror.list",
            Ok(("Amazon Linux:2", "https://m.example/al2/mirror.list")),
        ),
        (
            " Amazon Linux:2023 = /mnt/al2023/ ",
            Ok(("Amazon Linux:2023", "/mnt/al2023/")),
        ),
        (
            "Rocky Linux:9=/mnt/rocky/updateinfo.xml.gz",
            Ok(("Rocky Linux:9", "/mnt/rocky/updateinfo.xml.gz")),
        ),
        ("Amazon Linux:2", Err("not ECOSYSTEM=URL|PATH")),
        ("Debian:12=/x", Err("updateinfo lists rpm packages")),
        ("Fedora:40=/x", Err("not an ecosystem this scanner knows")),
        ("Amazon Linux:2=", Err("no URL or path")),
    ];
    for (arg, want) in table {
        let got = parse_source(arg);
        match (got, want) {
            (Ok((e, l)), Ok((we, wl))) => assert_eq!((e.as_str(), l.as_str()), (we, wl), "{arg}"),
            (Err(e), Err(w)) => assert!(e.contains(w), "{arg}: {e}"),
            (got, want) => panic!("{arg}: {got:?}, wanted {want:?}"),
        }
    }
}
