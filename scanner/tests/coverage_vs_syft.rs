//! The scanner's inventory measured against syft's on images of real packages: Debian's Go
//! binaries, Java jars and Ruby gems, wheels from PyPI, an npm application, a program built
//! with `cargo auditable` (all laid out by hack/coverage-images.sh) and an Amazon Linux 2
//! rpm database in Berkeley DB format (built here from rpm's own headers).
//!
//! Each image is pushed to a real registry as a layer; the scanner inventories it the way a
//! scan does, and syft reads the same image from the same registry. The two package sets
//! (ecosystem, name, version) must be equal but for the differences listed per image below,
//! each with its reason. A difference not listed fails, and so does a listed one that no
//! longer occurs, so the lists stay true.
//!
//! Then advisories written for packages these images really hold (OSV records, real ids where
//! the advisory is public, `PALISADE-COV-*` ids otherwise) are matched against the
//! inventories: each one for an installed version below its fix must be found, and none whose
//! fix is at or below the installed version may be.
//!
//! Run `hack/coverage-images.sh` first (`make unit` does): a missing image or syft fails
//! the test, never skips it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use palisade_imageref::ImageRef;
use palisade_oci_fixtures::{Compression, LayerBuilder, Registry, repo_root};
use palisade_scanner::inventory::PackageKind;
use palisade_scanner::inventory::language::python;
use palisade_scanner::layers::Limits;
use palisade_scanner::oci::{ClientConfig, Platform, RegistryClient};
use palisade_scanner::osv::{self, local};
use palisade_scanner::scan::{ImageInventory, inventory_image};

mod rpmdb;

/// (ecosystem, name, version): what both sides are compared on. OS packages are in
/// `deb debian:12`-like ecosystems (the package format, then the os-release `ID` and
/// `VERSION_ID` each side read), language packages in their OSV ecosystem.
type Key = (String, String, String);

/// Which side reports a package the other does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Palisade,
    Syft,
}

/// A package only one side reports, and why.
struct Only {
    side: Side,
    ecosystem: &'static str,
    name: &'static str,
    version: &'static str,
    reason: &'static str,
}

const fn syft_only(
    ecosystem: &'static str,
    name: &'static str,
    version: &'static str,
    reason: &'static str,
) -> Only {
    Only {
        side: Side::Syft,
        ecosystem,
        name,
        version,
        reason,
    }
}

/// One image and its explained differences.
struct Case {
    image: &'static str,
    only: &'static [Only],
}

const CASES: &[Case] = &[
    Case {
        image: "debian-go",
        only: &[
            syft_only(
                "Go",
                "go.etcd.io/etcd",
                "(devel)",
                "Debian builds in GOPATH mode: the build information has a `path` but no `mod` line, so the scanner names no main module; syft names the path, version (devel)",
            ),
            syft_only(
                "Go",
                "example.com/coverage/vendored-demo",
                "(devel)",
                "the main module of a module-mode build is (devel), a version no advisory range holds: the scanner leaves it out",
            ),
            syft_only(
                "Go",
                "github.com/docker/distribution/cmd/registry",
                "v2.8.2+ds1",
                "as for etcd, no `mod` line; syft takes the version from a string the linker set in the binary's data (Debian's -X flag, 2.8.2+ds1)",
            ),
        ],
    },
    Case {
        image: "python",
        only: &[],
    },
    Case {
        image: "npm",
        only: &[syft_only(
            "npm",
            "coverage-app",
            "1.0.0",
            "the application's own /app/package.json: syft reads every package.json, the scanner only those under node_modules (installed packages)",
        )],
    },
    Case {
        image: "java",
        only: &[],
    },
    Case {
        image: "ruby",
        only: &[],
    },
    Case {
        image: "rust",
        only: &[syft_only(
            "crates.io",
            "auditable-demo",
            "0.1.0",
            "the program itself (the root crate, source `local`): not a crates.io package, so the scanner leaves it out",
        )],
    },
    Case {
        image: "amazonlinux-rpm",
        only: &[],
    },
];

/// Where hack/coverage-images.sh put the images and syft.
fn coverage_dir() -> PathBuf {
    std::env::var_os("PALISADE_COVERAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/coverage-images"))
}

/// The layer of a root filesystem: its directories, files (executables keep their mode) and
/// symbolic links, in path order.
fn layer_of(rootfs: &Path) -> palisade_oci_fixtures::Blob {
    fn walk(dir: &Path, prefix: &str, mut layer: LayerBuilder) -> LayerBuilder {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().into_string().expect("UTF-8 file name");
            let path = format!("{prefix}{name}");
            let meta = std::fs::symlink_metadata(entry.path()).expect("metadata");
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(entry.path()).expect("link");
                layer = layer.symlink(&path, target.to_str().expect("UTF-8 link"));
            } else if meta.is_dir() {
                layer = walk(&entry.path(), &format!("{path}/"), layer.dir(&path));
            } else if meta.is_file() {
                let content = std::fs::read(entry.path()).expect("file");
                layer = if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
                {
                    layer.executable(&path, content)
                } else {
                    layer.file(&path, content)
                };
            }
        }
        layer
    }
    walk(rootfs, "", LayerBuilder::new()).build(Compression::None)
}

/// Specs after Amazon Linux 2's own packages (names, epochs, releases, a sub-package whose
/// source rpm is named otherwise), built by rpmbuild so the headers are rpm's own.
const AMAZON_SPECS: &[(&str, &str)] = &[
    (
        "system-release.spec",
        "Name: system-release\nVersion: 2\nRelease: 15.amzn2\nSummary: Amazon Linux release files\n\
         License: GPLv2\nBuildArch: noarch\n%description\nrelease\n%files\n",
    ),
    (
        "bash.spec",
        "Name: bash\nVersion: 4.2.46\nRelease: 34.amzn2\nSummary: The GNU Bourne Again shell\n\
         License: GPLv3+\n%description\nshell\n%files\n",
    ),
    (
        "openssl.spec",
        "Name: openssl\nEpoch: 1\nVersion: 1.0.2k\nRelease: 24.amzn2.0.6\nSummary: TLS toolkit\n\
         License: OpenSSL\n%description\ntoolkit\n\
         %package libs\nSummary: A general purpose cryptography library\n\
         %description libs\nlibraries\n%files libs\n",
    ),
    (
        "glibc.spec",
        "Name: glibc\nVersion: 2.26\nRelease: 63.amzn2\nSummary: The GNU libc libraries\n\
         License: LGPLv2+\n%description\nlibc\n%files\n\
         %package common\nSummary: Common binaries and locale data for glibc\n\
         %description common\ncommon\n%files common\n",
    ),
    (
        "ca-certificates.spec",
        "Name: ca-certificates\nVersion: 2021.2.50\nRelease: 72.amzn2.0.1\n\
         Summary: The Mozilla CA root certificate bundle\nLicense: Public Domain\n\
         BuildArch: noarch\n%description\ncertificates\n%files\n",
    ),
];

const AMAZON_OS_RELEASE: &str = "NAME=\"Amazon Linux\"\nVERSION=\"2\"\nID=\"amzn\"\n\
ID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2\"\nPRETTY_NAME=\"Amazon Linux 2\"\n\
ANSI_COLOR=\"0;33\"\nCPE_NAME=\"cpe:2.3:o:amazon:amazon_linux:2\"\n\
HOME_URL=\"https://amazonlinux.com/\"\n";

/// The Amazon Linux 2 image: os-release and a Berkeley DB `Packages` at rpm's path there.
fn amazon_layer() -> palisade_oci_fixtures::Blob {
    let top = tempfile::tempdir().expect("tempdir");
    let sqlite = rpmdb::build_rpmdb_from(top.path(), AMAZON_SPECS, 6);
    let headers = rpmdb::header_blobs(&sqlite);
    let bdb = rpmdb::write_bdb(
        &top.path().join("bdb"),
        &headers,
        rpmdb::BdbLayout::new(false, 4096),
    );
    LayerBuilder::new()
        .dir("etc")
        .file("etc/os-release", AMAZON_OS_RELEASE)
        .dir("var")
        .dir("var/lib")
        .dir("var/lib/rpm")
        .file("var/lib/rpm/Packages", bdb)
        .build(Compression::Gzip)
}

/// `group:artifact` from a Maven package URL (`pkg:maven/GROUP/ARTIFACT@VERSION?…`).
fn maven_name(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:maven/")?;
    let path = rest.split(['@', '?', '#']).next()?;
    let (group, artifact) = path.split_once('/')?;
    Some(format!(
        "{}:{}",
        group.replace("%2F", "/"),
        artifact.replace("%2F", "/")
    ))
}

/// The scanner's packages as keys.
fn palisade_keys(inv: &ImageInventory) -> BTreeSet<Key> {
    let inventory = &inv.inventory;
    let os = inventory
        .os
        .as_ref()
        .map(|os| format!("{}:{}", os.id, os.version_id.as_deref().unwrap_or("")))
        .unwrap_or_default();
    let mut keys = BTreeSet::new();
    for p in &inventory.packages {
        let format = match p.kind {
            PackageKind::Dpkg => "deb",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
            other => panic!("a package kind this test does not know: {other:?}"),
        };
        keys.insert((format!("{format} {os}"), p.name.clone(), p.version.clone()));
    }
    for p in &inventory.language_packages {
        keys.insert((
            p.language.osv_ecosystem().to_owned(),
            p.name.clone(),
            p.version.clone(),
        ));
    }
    keys
}

/// syft's artifacts as keys: its package type mapped to the OSV ecosystem, names and
/// versions in the form that ecosystem's advisories use. A type with no counterpart keeps
/// its own name (`syft:binary`), so it shows up as a difference.
fn syft_keys(json: &serde_json::Value) -> BTreeSet<Key> {
    let distro = &json["distro"];
    let os = format!(
        "{}:{}",
        distro["id"].as_str().unwrap_or(""),
        distro["versionID"].as_str().unwrap_or("")
    );
    let mut keys = BTreeSet::new();
    for a in json["artifacts"].as_array().expect("syft's artifacts") {
        let text = |field: &str| a[field].as_str().unwrap_or("").to_owned();
        let (kind, mut name, mut version, purl) =
            (text("type"), text("name"), text("version"), text("purl"));
        let ecosystem = match kind.as_str() {
            "deb" | "rpm" | "apk" => format!("{kind} {os}"),
            "go-module" => {
                // The toolchain: `go1.19.8` to syft, `1.19.8` in OSV's Go ecosystem.
                if name == "stdlib" {
                    version = version.trim_start_matches("go").to_owned();
                }
                "Go".into()
            }
            "rust-crate" => "crates.io".into(),
            "npm" => "npm".into(),
            "python" => {
                // syft keeps the name as METADATA spells it; PEP 503 form compares.
                name = python::normalize(&name);
                "PyPI".into()
            }
            "java-archive" => {
                name = maven_name(&purl).unwrap_or(name);
                "Maven".into()
            }
            "gem" => "RubyGems".into(),
            "php-composer" => "Packagist".into(),
            "dotnet" => "NuGet".into(),
            other => format!("syft:{other}"),
        };
        keys.insert((ecosystem, name, version));
    }
    keys
}

/// Run syft on an image in the registry; its JSON document.
fn syft(bin: &Path, image: &str) -> serde_json::Value {
    let out = Command::new(bin)
        .arg(format!("registry:{image}"))
        .args(["-o", "json", "-q"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .output()
        .unwrap_or_else(|e| panic!("{} could not be run ({e})", bin.display()));
    assert!(
        out.status.success(),
        "syft {image} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("syft's JSON")
}

/// What one image gave.
struct Measured {
    image: &'static str,
    inventory: ImageInventory,
    palisade: BTreeSet<Key>,
    syft: BTreeSet<Key>,
}

/// Compare one image's sets with its table; the problems, one line each.
fn compare(case: &Case, palisade: &BTreeSet<Key>, syft: &BTreeSet<Key>) -> Vec<String> {
    let mut problems = Vec::new();
    let explained: BTreeMap<(Side, Key), &Only> = case
        .only
        .iter()
        .map(|o| {
            let key = (o.ecosystem.into(), o.name.into(), o.version.into());
            ((o.side, key), o)
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (side, mine, theirs) in [
        (Side::Palisade, palisade, syft),
        (Side::Syft, syft, palisade),
    ] {
        for key in mine.difference(theirs) {
            let entry = (side, key.clone());
            if explained.contains_key(&entry) {
                seen.insert(entry);
            } else {
                problems.push(format!(
                    "{}: only {side:?} reports {key:?}, and no reason is listed",
                    case.image
                ));
            }
        }
    }
    for (entry, only) in &explained {
        if !seen.contains(entry) {
            problems.push(format!(
                "{}: listed as reported by {:?} only, but it no longer is: {:?} ({})",
                case.image, entry.0, entry.1, only.reason
            ));
        }
    }
    problems
}

/// An advisory written for a package one of the images holds, and whether the installed
/// version is affected.
struct Advisory {
    image: &'static str,
    id: &'static str,
    ecosystem: &'static str,
    package: &'static str,
    installed: &'static str,
    /// `SEMVER` (npm, Go, crates.io) or `ECOSYSTEM`, as OSV's own exports use them.
    range: &'static str,
    introduced: &'static str,
    fixed: &'static str,
    affected: bool,
}

#[allow(clippy::too_many_arguments)]
const fn advisory(
    image: &'static str,
    id: &'static str,
    ecosystem: &'static str,
    package: &'static str,
    installed: &'static str,
    range: &'static str,
    (introduced, fixed): (&'static str, &'static str),
    affected: bool,
) -> Advisory {
    Advisory {
        image,
        id,
        ecosystem,
        package,
        installed,
        range,
        introduced,
        fixed,
        affected,
    }
}

/// Real ids (GHSA, RUSTSEC) where the advisory is public, with its affected range for the
/// package; `PALISADE-COV-*` records otherwise. The Amazon Linux image's advisories are
/// ALAS entries of an updateinfo.xml ([`AMAZON_UPDATEINFO`]), not OSV records.
const ADVISORIES: &[Advisory] = &[
    // Debian's advisories name the source package and its version (etcd 3.4.23-4, binary
    // etcd-server 3.4.23-4+b4).
    advisory(
        "debian-go",
        "PALISADE-COV-DEB-0001",
        "Debian:12",
        "etcd-server",
        "3.4.23-4+b4",
        "ECOSYSTEM",
        ("0", "3.4.23-5"),
        true,
    ),
    advisory(
        "debian-go",
        "PALISADE-COV-DEB-0002",
        "Debian:12",
        "etcd-server",
        "3.4.23-4+b4",
        "ECOSYSTEM",
        ("0", "3.4.23-4"),
        false,
    ),
    advisory(
        "debian-go",
        "PALISADE-COV-GO-0001",
        "Go",
        "stdlib",
        "1.19.8",
        "SEMVER",
        ("1.19.0", "1.19.9"),
        true,
    ),
    advisory(
        "debian-go",
        "PALISADE-COV-GO-0002",
        "Go",
        "stdlib",
        "1.19.8",
        "SEMVER",
        ("0", "1.19.8"),
        false,
    ),
    advisory(
        "debian-go",
        "PALISADE-COV-GO-0003",
        "Go",
        "github.com/google/uuid",
        "v1.3.0",
        "SEMVER",
        ("0", "1.3.1"),
        true,
    ),
    advisory(
        "debian-go",
        "GHSA-hp87-p4gw-j4gq",
        "Go",
        "gopkg.in/yaml.v3",
        "v3.0.1",
        "SEMVER",
        ("0", "3.0.0"),
        false,
    ),
    advisory(
        "python",
        "GHSA-j8r2-6x86-q33q",
        "PyPI",
        "requests",
        "2.25.1",
        "ECOSYSTEM",
        ("2.3.0", "2.31.0"),
        true,
    ),
    advisory(
        "python",
        "GHSA-q2q7-5pp4-w6pg",
        "PyPI",
        "urllib3",
        "1.26.4",
        "ECOSYSTEM",
        ("0", "1.26.5"),
        true,
    ),
    advisory(
        "python",
        "GHSA-g3rq-g295-4j3m",
        "PyPI",
        "jinja2",
        "2.11.2",
        "ECOSYSTEM",
        ("0", "2.11.3"),
        true,
    ),
    advisory(
        "python",
        "GHSA-8q59-q68h-6hv4",
        "PyPI",
        "pyyaml",
        "6.0.1",
        "ECOSYSTEM",
        ("0", "5.4"),
        false,
    ),
    advisory(
        "python",
        "PALISADE-COV-PYPI-0001",
        "PyPI",
        "certifi",
        "2020.12.5",
        "ECOSYSTEM",
        ("0", "2020.12.5"),
        false,
    ),
    advisory(
        "npm",
        "GHSA-p6mc-m468-83gw",
        "npm",
        "lodash",
        "4.17.15",
        "SEMVER",
        ("3.7.0", "4.17.19"),
        true,
    ),
    advisory(
        "npm",
        "GHSA-35jh-r3h4-6jhm",
        "npm",
        "lodash",
        "4.17.15",
        "SEMVER",
        ("0", "4.17.21"),
        true,
    ),
    advisory(
        "npm",
        "GHSA-vh95-rmgr-6w4m",
        "npm",
        "minimist",
        "1.2.0",
        "SEMVER",
        ("1.0.0", "1.2.3"),
        true,
    ),
    advisory(
        "npm",
        "GHSA-xvch-5gv4-984h",
        "npm",
        "minimist",
        "1.2.0",
        "SEMVER",
        ("1.0.0", "1.2.6"),
        true,
    ),
    advisory(
        "npm",
        "GHSA-hrpp-h998-j3pp",
        "npm",
        "qs",
        "6.7.0",
        "SEMVER",
        ("6.7.0", "6.7.3"),
        true,
    ),
    advisory(
        "npm",
        "GHSA-rv95-896h-c2vc",
        "npm",
        "express",
        "4.17.1",
        "SEMVER",
        ("0", "4.19.2"),
        true,
    ),
    advisory(
        "npm",
        "PALISADE-COV-NPM-0001",
        "npm",
        "express",
        "4.17.1",
        "SEMVER",
        ("0", "4.17.1"),
        false,
    ),
    advisory(
        "java",
        "GHSA-mjmj-j48q-9wg2",
        "Maven",
        "org.yaml:snakeyaml",
        "1.33",
        "ECOSYSTEM",
        ("0", "2.0"),
        true,
    ),
    advisory(
        "java",
        "GHSA-7g45-4rm6-3mm3",
        "Maven",
        "com.google.guava:guava",
        "31.1-jre",
        "ECOSYSTEM",
        ("1.0", "32.0.0-android"),
        true,
    ),
    advisory(
        "java",
        "GHSA-jfh8-c2jp-5v3q",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.19.0",
        "ECOSYSTEM",
        ("2.0-beta9", "2.15.0"),
        false,
    ),
    advisory(
        "java",
        "GHSA-599f-7c49-w659",
        "Maven",
        "org.apache.commons:commons-text",
        "1.10.0",
        "ECOSYSTEM",
        ("1.5", "1.10.0"),
        false,
    ),
    advisory(
        "ruby",
        "PALISADE-COV-GEM-0001",
        "RubyGems",
        "rack",
        "2.2.22",
        "ECOSYSTEM",
        ("2.2.0", "2.2.23"),
        true,
    ),
    advisory(
        "ruby",
        "PALISADE-COV-GEM-0002",
        "RubyGems",
        "nokogiri",
        "1.13.10",
        "ECOSYSTEM",
        ("0", "1.14.3"),
        true,
    ),
    advisory(
        "ruby",
        "PALISADE-COV-GEM-0003",
        "RubyGems",
        "sinatra",
        "3.0.5",
        "ECOSYSTEM",
        ("0", "3.0.5"),
        false,
    ),
    advisory(
        "rust",
        "RUSTSEC-2021-0003",
        "crates.io",
        "smallvec",
        "1.6.0",
        "SEMVER",
        ("0.6.3", "1.6.1"),
        true,
    ),
    advisory(
        "rust",
        "RUSTSEC-2022-0013",
        "crates.io",
        "regex",
        "1.5.4",
        "SEMVER",
        ("0", "1.5.5"),
        true,
    ),
    advisory(
        "rust",
        "PALISADE-COV-RUST-0001",
        "crates.io",
        "serde_json",
        "1.0.108",
        "SEMVER",
        ("0", "1.0.108"),
        false,
    ),
];

/// ALAS entries for the Amazon Linux 2 image, as the repository's updateinfo.xml has them:
/// (id, type, severity, fixed packages as (name, epoch, version, release)), and the packages
/// each must be reported for. Fixture ids (`ALAS2-2099-*`); the shapes are Amazon's.
const AMAZON_UPDATEINFO: &[AmazonAdvisory] = &[
    // Below the installed 1:1.0.2k-24.amzn2.0.6: reported.
    (
        "ALAS2-2099-0001",
        "security",
        "important",
        &[
            ("openssl-libs", "1", "1.0.2k", "24.amzn2.0.7"),
            ("openssl", "1", "1.0.2k", "24.amzn2.0.7"),
        ],
        &["openssl-libs"],
    ),
    // Both binary packages of glibc are older than the fix.
    (
        "ALAS2-2099-0002",
        "security",
        "medium",
        &[
            ("glibc", "0", "2.26", "64.amzn2"),
            ("glibc-common", "0", "2.26", "64.amzn2"),
        ],
        &["glibc", "glibc-common"],
    ),
    // Fixed in exactly the installed version: not reported.
    (
        "ALAS2-2099-0003",
        "security",
        "low",
        &[("bash", "0", "4.2.46", "34.amzn2")],
        &[],
    ),
    // A higher version-release but epoch 0, below the installed epoch 1: not reported.
    (
        "ALAS2-2099-0004",
        "security",
        "critical",
        &[("openssl-libs", "0", "1.0.2k", "25.amzn2")],
        &[],
    ),
    // Fixed long before the installed version: not reported.
    (
        "ALAS2-2099-0005",
        "security",
        "medium",
        &[("ca-certificates", "0", "2019.2.32", "76.amzn2.0.3")],
        &[],
    ),
    // Not a security update: never an advisory, whatever its version.
    (
        "ALAS2-2099-0006",
        "bugfix",
        "",
        &[("system-release", "0", "2", "16.amzn2")],
        &[],
    ),
];

type AmazonAdvisory = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, &'static str, &'static str)],
    &'static [&'static str],
);

/// [`AMAZON_UPDATEINFO`] as an updateinfo.xml document.
fn amazon_updateinfo() -> String {
    let mut xml = String::from("<?xml version=\"1.0\" ?>\n<updates>\n");
    for (n, (id, kind, severity, packages, _)) in AMAZON_UPDATEINFO.iter().enumerate() {
        let cve = format!("CVE-2099-{:04}", n + 1);
        let _ = write!(
            xml,
            "  <update author=\"linux-security@amazon.com\" from=\"linux-security@amazon.com\" \
             status=\"final\" type=\"{kind}\" version=\"1.4\">\n    <id>{id}</id>\n    \
             <title>Amazon Linux 2 - {id}</title>\n    <issued date=\"2099-01-01 00:00\" />\n    \
             <severity>{severity}</severity>\n    <references>\n      \
             <reference href=\"https://cve.mitre.org/cgi-bin/cvename.cgi?name={cve}\" id=\"{cve}\" \
             title=\"\" type=\"cve\" />\n    </references>\n    <pkglist>\n      \
             <collection short=\"amazon-linux-2\">\n        <name>amazon-linux-2</name>\n"
        );
        for (name, epoch, version, release) in *packages {
            for arch in ["x86_64", "aarch64", "src"] {
                let _ = writeln!(
                    xml,
                    "        <package arch=\"{arch}\" epoch=\"{epoch}\" name=\"{name}\" \
                     release=\"{release}\" version=\"{version}\">\
                     <filename>Packages/{name}-{version}-{release}.{arch}.rpm</filename></package>"
                );
            }
        }
        xml.push_str("      </collection>\n    </pkglist>\n  </update>\n");
    }
    xml.push_str("</updates>\n");
    xml
}

/// The Amazon Linux image judged through the store, reading `Amazon Linux:2` from an
/// updateinfo.xml file as `--updateinfo 'Amazon Linux:2=FILE'` makes it; the problems.
async fn check_amazon_advisories(measured: &[Measured]) -> Vec<String> {
    let Some(m) = measured.iter().find(|m| m.image == "amazonlinux-rpm") else {
        return vec!["no amazonlinux-rpm image measured".to_owned()];
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("updateinfo.xml");
    std::fs::write(&file, amazon_updateinfo()).expect("updateinfo.xml");
    let wanted = osv::needed_ecosystems(&m.inventory.inventory);
    let names: Vec<&str> = wanted.iter().map(|e| e.name.as_str()).collect();
    if names != ["Amazon Linux:2"] {
        return vec![format!(
            "amazonlinux-rpm needs {names:?}, not [\"Amazon Linux:2\"]"
        )];
    }
    let store = osv::Store::new(
        osv::Source::Dir(dir.path().join("no-osv-exports")),
        dir.path().join("cache"),
        reqwest::Client::new(),
    )
    .with_updateinfo("Amazon Linux:2", file.display().to_string());
    let db = match store.database(&wanted).await {
        Ok(db) => db,
        Err(e) => return vec![format!("Amazon Linux:2 from updateinfo.xml: {e}")],
    };
    let found: BTreeSet<(String, String)> = db
        .match_inventory(&m.inventory.inventory)
        .into_iter()
        .map(|f| (f.id, f.package))
        .collect();
    let expected: BTreeSet<(String, String)> = AMAZON_UPDATEINFO
        .iter()
        .flat_map(|(id, _, _, _, reported)| {
            reported.iter().map(|p| (id.to_string(), p.to_string()))
        })
        .collect();
    let mut problems = Vec::new();
    for missing in expected.difference(&found) {
        problems.push(format!("amazonlinux-rpm: ALAS not found: {missing:?}"));
    }
    for extra in found.difference(&expected) {
        problems.push(format!(
            "amazonlinux-rpm: reported, but not affected: {extra:?}"
        ));
    }
    problems
}

/// An advisory's OSV record.
fn osv_record(a: &Advisory) -> serde_json::Value {
    // Debian's records name the source package.
    let name = if a.ecosystem == "Debian:12" {
        "etcd"
    } else {
        a.package
    };
    serde_json::json!({
        "id": a.id,
        "modified": "2024-01-01T00:00:00Z",
        "summary": format!("{} before {}", a.package, a.fixed),
        "affected": [{
            "package": { "ecosystem": a.ecosystem, "name": name },
            "ranges": [{ "type": a.range, "events": [{ "introduced": a.introduced }, { "fixed": a.fixed }] }],
        }],
    })
}

/// Match each image's inventory against the advisories; the problems, one line each.
fn check_advisories(measured: &[Measured]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<serde_json::Value> = ADVISORIES.iter().map(osv_record).collect();
    palisade_oci_fixtures::osv::write_json_dir(dir.path(), &records).expect("OSV records");
    let mut problems = Vec::new();
    for m in measured {
        let wanted = osv::needed_ecosystems(&m.inventory.inventory);
        let db = local::load(
            dir.path(),
            local::Format::JsonDir,
            &wanted,
            osv::Limits::default(),
        )
        .expect("the records load");
        let found: BTreeSet<(String, String, String)> = db
            .match_inventory(&m.inventory.inventory)
            .into_iter()
            .map(|f| (f.id, f.package, f.installed_version))
            .collect();
        let expected: BTreeSet<(String, String, String)> = ADVISORIES
            .iter()
            .filter(|a| a.image == m.image && a.affected)
            .map(|a| (a.id.into(), a.package.into(), a.installed.into()))
            .collect();
        for missing in expected.difference(&found) {
            problems.push(format!("{}: advisory not found: {missing:?}", m.image));
        }
        for extra in found.difference(&expected) {
            let fixed = ADVISORIES
                .iter()
                .any(|a| a.id == extra.0 && a.image == m.image && !a.affected);
            let why = if fixed {
                "its fix is at or below the installed version"
            } else {
                "no advisory was written for it"
            };
            problems.push(format!("{}: reported, but {why}: {extra:?}", m.image));
        }
    }
    problems
}

/// The table is held both ways: an unexplained difference fails, and so does an explanation
/// of a difference that no longer occurs.
#[test]
fn compare_fails_unexplained_and_stale_differences() {
    const ONLY: &[Only] = &[
        syft_only("npm", "app", "1.0.0", "the application itself"),
        syft_only("npm", "gone", "2.0.0", "a difference since fixed"),
    ];
    let case = Case {
        image: "example",
        only: ONLY,
    };
    let key = |e: &str, n: &str, v: &str| (e.to_owned(), n.to_owned(), v.to_owned());
    let both = key("npm", "lodash", "4.17.15");
    let palisade = BTreeSet::from([both.clone(), key("PyPI", "requests", "2.25.1")]);
    let syft = BTreeSet::from([both, key("npm", "app", "1.0.0")]);
    let problems = compare(&case, &palisade, &syft);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("only Palisade reports") && problems[0].contains("requests"));
    assert!(problems[1].contains("no longer") && problems[1].contains("gone"));
    // With equal sets, every listed difference is stale.
    assert_eq!(compare(&case, &palisade, &palisade).len(), ONLY.len());
}

#[test]
fn every_advisory_names_an_image_and_both_outcomes_occur() {
    for a in ADVISORIES {
        assert!(
            CASES.iter().any(|c| c.image == a.image),
            "{}: no image {}",
            a.id,
            a.image
        );
    }
    assert!(ADVISORIES.iter().any(|a| a.affected));
    assert!(ADVISORIES.iter().any(|a| !a.affected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_equals_syft_and_advisories_are_found() {
    let dir = coverage_dir();
    let syft_bin = dir.join("syft");
    assert!(
        dir.join(".complete").is_file() && syft_bin.is_file(),
        "no coverage images in {}: run hack/coverage-images.sh (make unit runs it)",
        dir.display()
    );
    let started = Instant::now();
    let registry = Registry::start().expect("registry (run hack/scan-tools.sh)");
    let pusher = registry.pusher().expect("pusher");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = RegistryClient::new(ClientConfig::default()).expect("client");

    // syft reads each image on its own thread, one after the other, while the next image is
    // packed, pushed and inventoried here: the two share the machine, not the time.
    let (to_syft, queue) = std::sync::mpsc::channel::<String>();
    let syft_worker = std::thread::spawn(move || {
        queue
            .into_iter()
            .map(|reference| syft(&syft_bin, &reference))
            .collect::<Vec<_>>()
    });
    let mut inventories = Vec::new();
    for case in CASES {
        let layer = if case.image == "amazonlinux-rpm" {
            amazon_layer()
        } else {
            let rootfs = dir.join(case.image).join("rootfs");
            assert!(
                rootfs.is_dir(),
                "{} is missing: run hack/coverage-images.sh",
                rootfs.display()
            );
            layer_of(&rootfs)
        };
        pusher
            .image(case.image, "latest", &[layer], "linux", "amd64")
            .await
            .expect("push");
        let reference = format!("{}/{}:latest", registry.host(), case.image);
        to_syft.send(reference.clone()).expect("syft's thread");
        let image = ImageRef::parse(&reference).expect("reference");
        let inventory =
            inventory_image(&client, &image, &Platform::linux_amd64(), Limits::default())
                .await
                .expect("inventory");
        inventories.push(inventory);
    }
    drop(to_syft);
    let syft_documents = syft_worker.join().expect("syft's thread");
    let measured: Vec<Measured> = CASES
        .iter()
        .zip(inventories)
        .zip(&syft_documents)
        .map(|((case, inventory), json)| Measured {
            image: case.image,
            palisade: palisade_keys(&inventory),
            syft: syft_keys(json),
            inventory,
        })
        .collect();

    let mut problems = Vec::new();
    let mut table = String::from(
        "| image | Palisade | syft | equal | explained differences |\n| --- | --- | --- | --- | --- |\n",
    );
    for (case, m) in CASES.iter().zip(&measured) {
        problems.extend(compare(case, &m.palisade, &m.syft));
        let explained: Vec<String> = case
            .only
            .iter()
            .map(|o| {
                format!(
                    "{:?} only: {} {} {}",
                    o.side, o.ecosystem, o.name, o.version
                )
            })
            .collect();
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            m.image,
            m.palisade.len(),
            m.syft.len(),
            m.palisade.intersection(&m.syft).count(),
            if explained.is_empty() {
                "none".to_owned()
            } else {
                explained.join("; ")
            },
        );
    }
    println!("{table}");
    problems.extend(check_advisories(&measured));
    problems.extend(check_amazon_advisories(&measured).await);
    println!("measured in {:.1} s", started.elapsed().as_secs_f64());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
