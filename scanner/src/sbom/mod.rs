//! Software bills of materials: an image's inventory written as CycloneDX 1.5 JSON or SPDX
//! 2.3 JSON, each package named by its package URL and by the file it was read from.
//!
//! Pure: the documents are built from an inventory, the image's identity and a timestamp the
//! caller passes in, so the same input always gives the same bytes (and tests can say what
//! they are). Identifiers are derived from content (hashes of the digest, the purl and the
//! file), never drawn at random.

use sha2::{Digest as _, Sha256};

use crate::inventory::{Inventory, OsRelease, PackageKind};
use crate::scan::ImageInventory;

pub mod cyclonedx;
pub mod purl;
#[cfg(test)]
mod schema_tests;
pub mod spdx;

/// A document format, as `--sbom` and the operator's `?format=` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CycloneDX 1.5 JSON.
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

impl Format {
    /// Every format, by its name.
    pub const ALL: [Format; 2] = [Format::CycloneDx, Format::Spdx];

    /// `cyclonedx` or `spdx`.
    pub fn name(self) -> &'static str {
        match self {
            Format::CycloneDx => "cyclonedx",
            Format::Spdx => "spdx",
        }
    }

    /// The format named `name` (as [`Format::name`] gives it, in any case).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The media type each format registers for its JSON form.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::CycloneDx => "application/vnd.cyclonedx+json",
            Format::Spdx => "application/spdx+json",
        }
    }
}

/// The document of `subject` in `format`, written at `now`, as pretty JSON ending in a
/// newline.
pub fn render(
    format: Format,
    subject: &Subject<'_>,
    now: jiff::Timestamp,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut json = match format {
        Format::CycloneDx => serde_json::to_vec_pretty(&cyclonedx::bom(subject, now)),
        Format::Spdx => serde_json::to_vec_pretty(&spdx::document(subject, now)),
    }?;
    json.push(b'\n');
    Ok(json)
}

/// What an SBOM describes: one image, as the scan resolved it, and what it installs.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The reference as given, normalised (`registry.example/app:1`).
    pub reference: &'a str,
    /// The digest the reference resolved to (an index's for multi-platform images).
    pub digest: &'a str,
    /// The single-platform manifest that was read.
    pub manifest_digest: &'a str,
    /// `linux/amd64`, when the image came from an index.
    pub platform: Option<&'a str>,
    pub inventory: &'a Inventory,
}

impl<'a> Subject<'a> {
    /// The subject of a scanned image.
    pub fn of(image: &'a ImageInventory) -> Subject<'a> {
        Subject {
            reference: &image.image,
            digest: &image.digest,
            manifest_digest: &image.manifest_digest,
            platform: image.platform.as_deref(),
            inventory: &image.inventory,
        }
    }

    fn os(&self) -> Option<&'a OsRelease> {
        self.inventory.os.as_ref()
    }

    /// The architecture part of the platform (`amd64` of `linux/amd64/v2`).
    fn arch(&self) -> Option<&'a str> {
        self.platform.and_then(|p| p.split('/').nth(1))
    }

    fn image_purl(&self) -> String {
        purl::image(self.reference, self.digest, self.arch()).to_string()
    }

    /// The OS as a person reads it: `PRETTY_NAME`, else `ID VERSION_ID`.
    fn os_description(os: &OsRelease) -> String {
        os.pretty_name.clone().unwrap_or_else(|| {
            format!("{} {}", os.id, os.version_id.as_deref().unwrap_or(""))
                .trim()
                .to_owned()
        })
    }

    /// Every package of the inventory, OS packages first, in inventory order, each with an
    /// identifier unique within the document.
    fn entries(&self) -> Vec<Entry<'a>> {
        let os = self.os();
        let mut out: Vec<Entry<'a>> = Vec::with_capacity(self.inventory.package_count());
        for p in &self.inventory.packages {
            out.push(Entry {
                purl: purl::os_package(p, os).to_string(),
                name: &p.name,
                version: &p.version,
                location: &p.location,
                kind: match p.kind {
                    PackageKind::Dpkg => "dpkg",
                    PackageKind::Apk => "apk",
                    PackageKind::Rpm => "rpm",
                },
                id: String::new(),
            });
        }
        for p in &self.inventory.language_packages {
            out.push(Entry {
                purl: purl::language_package(p).to_string(),
                name: &p.name,
                version: &p.version,
                location: &p.location,
                kind: p.language.osv_ecosystem(),
                id: String::new(),
            });
        }
        assign_ids(&mut out);
        out
    }

    /// What the inventory could not read, one line each: an SBOM that leaves packages out
    /// must say so.
    fn unreadable(&self) -> Vec<String> {
        self.inventory
            .unreadable
            .iter()
            .map(|u| format!("{}: {}", u.path, u.reason))
            .collect()
    }
}

/// One package as both formats list it.
#[derive(Clone, Debug)]
struct Entry<'a> {
    purl: String,
    name: &'a str,
    version: &'a str,
    /// The file it was read from.
    location: &'a str,
    /// The package database (`dpkg`), or the ecosystem as scan reports name it (`PyPI`).
    kind: &'static str,
    /// Stable and unique within the document: a hash of the purl and the file, so that the
    /// same package in the same file keeps its identifier from one image version to the next.
    id: String,
}

fn assign_ids(entries: &mut [Entry<'_>]) {
    let mut seen = std::collections::HashSet::new();
    for e in entries.iter_mut() {
        let base = short_hash(&[&e.purl, e.location]);
        let mut id = base.clone();
        // Two identical entries (a database that lists a package twice) still get two ids.
        let mut n = 2;
        while !seen.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        e.id = id;
    }
}

/// The first 16 hex digits of the SHA-256 of the parts, each ended by a NUL.
fn short_hash(parts: &[&str]) -> String {
    let digest = hash(parts);
    hex::encode(&digest[..8])
}

fn hash(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

/// A UUID made from the hash of the parts (RFC 9562's version 8, "custom"): deterministic,
/// and as unlikely to collide as a random one for different input.
fn uuid_from(parts: &[&str]) -> String {
    let mut b = hash(parts);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(&b[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// RFC 3339 in whole seconds and UTC (`2024-05-01T12:00:00Z`): the form both formats'
/// examples use, and the only one SPDX 2.3 allows.
fn seconds(ts: jiff::Timestamp) -> String {
    let whole = jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts);
    whole.to_string()
}

/// The tool that wrote the document.
const TOOL_NAME: &str = "palisade";
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inventory::language::{Language, LanguagePackage};
    use crate::inventory::{Package, Unreadable};

    /// An image with a package of every kind the inventory knows, a scoped npm package, an
    /// rpm with an epoch, a package listed twice in one file, and one without a version.
    pub(crate) fn varied() -> ImageInventory {
        let os_pkg = |kind, name: &str, version: &str, arch: &str, location: &str| Package {
            kind,
            name: name.into(),
            version: version.into(),
            source_name: None,
            source_version: None,
            arch: Some(arch.to_owned()),
            location: location.into(),
        };
        let lang = |language, name: &str, version: &str, location: &str| LanguagePackage {
            language,
            name: name.into(),
            version: version.into(),
            location: location.into(),
        };
        let digest = format!("sha256:{}", "cd".repeat(32));
        ImageInventory {
            image: "registry.example/team/app:1.0".into(),
            digest: digest.clone(),
            manifest_digest: format!("sha256:{}", "ef".repeat(32)),
            platform: Some("linux/amd64".into()),
            platform_requested: None,
            layers: 2,
            layer_bytes: 100,
            inventory: Inventory {
                os: Some(OsRelease {
                    id: "debian".into(),
                    version_id: Some("12".into()),
                    version_codename: Some("bookworm".into()),
                    pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
                    ..OsRelease::default()
                }),
                packages: vec![
                    os_pkg(
                        PackageKind::Dpkg,
                        "libssl3",
                        "3.0.11-1~deb12u2",
                        "amd64",
                        "var/lib/dpkg/status",
                    ),
                    os_pkg(
                        PackageKind::Dpkg,
                        "libssl3",
                        "3.0.11-1~deb12u2",
                        "amd64",
                        "var/lib/dpkg/status",
                    ),
                    os_pkg(
                        PackageKind::Apk,
                        "musl",
                        "1.2.5-r0",
                        "x86_64",
                        "lib/apk/db/installed",
                    ),
                    os_pkg(
                        PackageKind::Rpm,
                        "openssl-libs",
                        "1:3.0.7-27.el9",
                        "x86_64",
                        "var/lib/rpm/rpmdb.sqlite",
                    ),
                ],
                language_packages: vec![
                    lang(Language::Go, "stdlib", "1.21.5", "usr/local/bin/app"),
                    lang(
                        Language::Go,
                        "golang.org/x/net",
                        "v0.17.0",
                        "usr/local/bin/app",
                    ),
                    lang(Language::Rust, "serde", "1.0.193", "usr/local/bin/tool"),
                    lang(
                        Language::Npm,
                        "@babel/core",
                        "7.23.2",
                        "app/node_modules/@babel/core/package.json",
                    ),
                    lang(
                        Language::Npm,
                        "lodash",
                        "4.17.21",
                        "app/node_modules/lodash/package.json",
                    ),
                    lang(
                        Language::Npm,
                        "local-thing",
                        "",
                        "app/node_modules/local-thing/package.json",
                    ),
                    lang(
                        Language::Python,
                        "pyyaml",
                        "6.0.1",
                        "usr/lib/python3/dist-packages/PyYAML-6.0.1.dist-info/METADATA",
                    ),
                    lang(
                        Language::Java,
                        "org.apache.logging.log4j:log4j-core",
                        "2.14.1",
                        "app/lib/log4j-core-2.14.1.jar!META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                    ),
                    lang(
                        Language::Ruby,
                        "rack",
                        "3.0.8",
                        "usr/lib/ruby/gems/3.1.0/specifications/rack-3.0.8.gemspec",
                    ),
                    lang(
                        Language::Php,
                        "symfony/console",
                        "v6.3.4",
                        "app/vendor/composer/installed.json",
                    ),
                    lang(
                        Language::DotNet,
                        "Newtonsoft.Json",
                        "13.0.1",
                        "app/App.deps.json",
                    ),
                ],
                unreadable: vec![Unreadable {
                    path: "lib/apk/db/installed".into(),
                    reason:
                        "1 unreadable record(s) skipped (first: record 2 has no P: (name) line)"
                            .into(),
                }],
            },
        }
    }

    pub(crate) fn at() -> jiff::Timestamp {
        "2024-05-01T12:00:00.123456Z".parse().expect("timestamp")
    }

    #[test]
    fn entries_have_unique_stable_ids() {
        let image = varied();
        let entries = Subject::of(&image).entries();
        assert_eq!(entries.len(), image.inventory.package_count());
        let ids: std::collections::HashSet<_> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), entries.len(), "ids are unique");
        assert_eq!(
            entries[1].id,
            format!("{}-2", entries[0].id),
            "a duplicate gets a suffix"
        );
        let again = Subject::of(&image).entries();
        let same: Vec<_> = again.iter().map(|e| &e.id).collect();
        assert_eq!(same, entries.iter().map(|e| &e.id).collect::<Vec<_>>());
    }

    #[test]
    fn formats_by_name_and_rendered() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
            assert_eq!(Format::from_name(&f.name().to_uppercase()), Some(f));
        }
        assert_eq!(Format::from_name("swid"), None);
        assert_eq!(Format::from_name(""), None);
        let image = varied();
        let subject = Subject::of(&image);
        let cdx = render(Format::CycloneDx, &subject, at()).expect("render");
        assert_eq!(cdx.last(), Some(&b'\n'));
        let cdx: serde_json::Value = serde_json::from_slice(&cdx).expect("json");
        assert_eq!(cdx["bomFormat"], "CycloneDX");
        let spdx = render(Format::Spdx, &subject, at()).expect("render");
        let spdx: serde_json::Value = serde_json::from_slice(&spdx).expect("json");
        assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    }

    #[test]
    fn uuids_and_timestamps() {
        let u = uuid_from(&["sha256:x"]);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8", "version 8: {u}");
        assert!(
            matches!(&u[19..20], "8" | "9" | "a" | "b"),
            "RFC variant: {u}"
        );
        assert_ne!(u, uuid_from(&["sha256:y"]));
        assert_eq!(seconds(at()), "2024-05-01T12:00:00Z");
    }
}
