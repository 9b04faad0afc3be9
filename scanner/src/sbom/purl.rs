//! Package URLs (purl) for what the inventory lists: the identifier SBOM consumers match
//! packages by. The encoding follows the purl specification's build rules (per-type case
//! folding, percent-encoding of everything but `A-Za-z0-9.-_~` and `:`, qualifiers sorted
//! by key, empty values dropped). Written here rather than taken from the `packageurl`
//! crate: the rules are short, and that crate's encode set (0.7) leaves characters unencoded
//! that the current specification encodes (`&`, `,`, `!`, `*`, `(`, `)` … in names and
//! versions), which gives strings that other tools parse or compare differently.

use std::fmt;

use crate::inventory::language::{Language, LanguagePackage};
use crate::inventory::{OsRelease, Package, PackageKind};

/// A package URL's parts, before encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purl {
    /// The package type (`deb`, `npm`), lowercase.
    pub ty: &'static str,
    /// Namespace segments (`["github.com", "gorilla"]`), not yet encoded.
    pub namespace: Vec<String>,
    pub name: String,
    /// `None` (or empty) leaves out `@version`.
    pub version: Option<String>,
    /// Key and value pairs; empty values are dropped and keys sorted when printed.
    pub qualifiers: Vec<(&'static str, String)>,
}

impl Purl {
    fn new(ty: &'static str, name: impl Into<String>, version: &str) -> Purl {
        Purl {
            ty,
            namespace: Vec::new(),
            name: name.into(),
            version: Some(version.to_owned()).filter(|v| !v.is_empty()),
            qualifiers: Vec::new(),
        }
    }

    fn namespace(mut self, segments: impl IntoIterator<Item = impl Into<String>>) -> Purl {
        self.namespace = segments.into_iter().map(Into::into).collect();
        self
    }

    fn qualifier(mut self, key: &'static str, value: Option<&str>) -> Purl {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.qualifiers.push((key, v.to_owned()));
        }
        self
    }
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.ty)?;
        for segment in self.namespace.iter().filter(|s| !s.is_empty()) {
            write!(f, "{}/", Encoded(segment))?;
        }
        write!(f, "{}", Encoded(&self.name))?;
        if let Some(v) = self.version.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "@{}", Encoded(v))?;
        }
        let mut qualifiers: Vec<&(&str, String)> = self
            .qualifiers
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        qualifiers.sort_by_key(|(k, _)| *k);
        for (i, (key, value)) in qualifiers.into_iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{key}={}", Encoded(value))?;
        }
        Ok(())
    }
}

/// A component percent-encoded as the purl specification says: its allowed set is the
/// alphanumerics and `.-_~`, and the colon is never encoded.
struct Encoded<'a>(&'a str);

impl fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// The `distro` qualifier: `debian-12`, `alpine-3.20.3`; the ID alone without a version.
fn distro(os: &OsRelease) -> String {
    match os.version_id.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => format!("{}-{v}", os.id.to_lowercase()),
        None => os.id.to_lowercase(),
    }
}

/// The purl of an OS package. The namespace is the distribution's ID from os-release; an
/// image without one gets the format's originating distribution (`debian`, `alpine`,
/// `redhat`), since the type requires a namespace.
pub fn os_package(p: &Package, os: Option<&OsRelease>) -> Purl {
    let vendor = |fallback: &str| {
        os.map(|o| o.id.to_lowercase())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| fallback.to_owned())
    };
    let distro = os.filter(|o| !o.id.is_empty()).map(distro);
    match p.kind {
        // deb and apk names are case-insensitive, and lowercase in the canonical form.
        PackageKind::Dpkg => Purl::new("deb", p.name.to_lowercase(), &p.version)
            .namespace([vendor("debian")])
            .qualifier("arch", p.arch.as_deref())
            .qualifier("distro", distro.as_deref()),
        PackageKind::Apk => Purl::new("apk", p.name.to_lowercase(), &p.version)
            .namespace([vendor("alpine")])
            .qualifier("arch", p.arch.as_deref())
            .qualifier("distro", distro.as_deref()),
        // rpm's version is `version-release`; the epoch goes into its own qualifier.
        PackageKind::Rpm => {
            let (epoch, version) = match p.version.split_once(':') {
                Some((e, v)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                    (Some(e), v)
                }
                _ => (None, p.version.as_str()),
            };
            Purl::new("rpm", p.name.as_str(), version)
                .namespace([vendor("redhat")])
                .qualifier("arch", p.arch.as_deref())
                .qualifier("epoch", epoch)
                .qualifier("distro", distro.as_deref())
        }
    }
}

/// The purl of a language package, with the type its ecosystem is registered under.
pub fn language_package(p: &LanguagePackage) -> Purl {
    let name = p.name.as_str();
    let version = p.version.as_str();
    match p.language {
        // A module path: the last element is the name, the rest the namespace. Go module
        // paths are case-sensitive (the type says so too), so their case is kept.
        Language::Go => {
            let mut segments: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
            let last = segments.pop().unwrap_or(name);
            Purl::new("golang", last, version).namespace(segments)
        }
        Language::Rust => Purl::new("cargo", name, version),
        // A scoped package's scope is its namespace, `@` included (and encoded).
        Language::Npm => match name.split_once('/') {
            Some((scope, rest)) if scope.starts_with('@') => {
                Purl::new("npm", rest, version).namespace([scope])
            }
            _ => Purl::new("npm", name, version),
        },
        Language::Python => Purl::new(
            "pypi",
            crate::inventory::language::python::normalize(name),
            version,
        ),
        // Advisories name Maven packages `group:artifact`.
        Language::Java => match name.split_once(':') {
            Some((group, artifact)) => Purl::new("maven", artifact, version).namespace([group]),
            None => Purl::new("maven", name, version),
        },
        Language::Ruby => Purl::new("gem", name, version),
        // Composer's `vendor/name`, both case-insensitive.
        Language::Php => match name.split_once('/') {
            Some((vendor, rest)) => Purl::new("composer", rest.to_lowercase(), version)
                .namespace([vendor.to_lowercase()]),
            None => Purl::new("composer", name.to_lowercase(), version),
        },
        Language::DotNet => Purl::new("nuget", name, version),
    }
}

/// The purl of a container image: `pkg:oci/<name>@<digest>`, with the repository it was
/// pulled from (the registry and path, without tag) and the tag it was asked by.
pub fn image(reference: &str, digest: &str, arch: Option<&str>) -> Purl {
    let (repository, tag) = match palisade_imageref::ImageRef::parse(reference) {
        Ok(r) => (
            format!("{}/{}", r.registry(), r.repository()),
            r.tag().map(str::to_owned),
        ),
        // The reference was parsed before the scan; keep whatever it is rather than fail.
        Err(_) => (reference.to_owned(), None),
    };
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or(&repository)
        .to_lowercase();
    Purl::new("oci", name, digest)
        .qualifier("arch", arch)
        .qualifier("repository_url", Some(&repository))
        .qualifier("tag", tag.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build cases of the purl specification's own test suite (tests/types/*-test.json),
    /// through the encoder.
    #[test]
    fn encodes_as_the_specification_builds() {
        let p = |ty, ns: &[&str], name: &str, version: Option<&str>, q: &[(&'static str, &str)]| {
            Purl {
                ty,
                namespace: ns.iter().map(|s| s.to_string()).collect(),
                name: name.into(),
                version: version.map(str::to_owned),
                qualifiers: q.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            }
            .to_string()
        };
        let table = [
            (
                p(
                    "deb",
                    &["debian"],
                    "curl",
                    Some("7.50.3-1"),
                    &[("arch", "i386"), ("distro", "jessie")],
                ),
                "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie",
            ),
            (
                p(
                    "deb",
                    &["debian"],
                    "attr",
                    Some("1:2.4.47-2"),
                    &[("arch", "source")],
                ),
                "pkg:deb/debian/attr@1:2.4.47-2?arch=source",
            ),
            (
                p(
                    "deb",
                    &["debian"],
                    "attr",
                    Some("1:2.4.47-2+b1"),
                    &[("arch", "amd64")],
                ),
                "pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64",
            ),
            (
                p(
                    "apk",
                    &["alpine"],
                    "curl",
                    Some("7.83.0-r0"),
                    &[("arch", "x86")],
                ),
                "pkg:apk/alpine/curl@7.83.0-r0?arch=x86",
            ),
            (
                p(
                    "rpm",
                    &["fedora"],
                    "centerim",
                    Some("4.22.10-1.el6"),
                    &[("epoch", "1"), ("distro", "fedora-25"), ("arch", "i686")],
                ),
                "pkg:rpm/fedora/centerim@4.22.10-1.el6?arch=i686&distro=fedora-25&epoch=1",
            ),
            (
                p("npm", &["@angular"], "animation", Some("12.3.1"), &[]),
                "pkg:npm/%40angular/animation@12.3.1",
            ),
            (
                p(
                    "npm",
                    &[],
                    "mypackage",
                    Some("12.4.5"),
                    &[("vcs_url", "git://host.com/path/to/repo.git@4345abcd34343")],
                ),
                "pkg:npm/mypackage@12.4.5?vcs_url=git:%2F%2Fhost.com%2Fpath%2Fto%2Frepo.git%404345abcd34343",
            ),
            (
                p("pypi", &[], "django-package", Some("1.11.1.dev1"), &[]),
                "pkg:pypi/django-package@1.11.1.dev1",
            ),
            (
                p("maven", &["org.apache.commons"], "io", None, &[]),
                "pkg:maven/org.apache.commons/io",
            ),
            (
                p(
                    "maven",
                    &["mygroup"],
                    "myartifact",
                    Some("1.0.0 Final"),
                    &[("mykey", "my value")],
                ),
                "pkg:maven/mygroup/myartifact@1.0.0%20Final?mykey=my%20value",
            ),
            (
                p(
                    "maven",
                    &["groovy"],
                    "groovy",
                    Some("1.0"),
                    &[("repository_url", "https://maven.google.com")],
                ),
                "pkg:maven/groovy/groovy@1.0?repository_url=https:%2F%2Fmaven.google.com",
            ),
            (
                p(
                    "golang",
                    &["github.com", "gorilla"],
                    "context",
                    Some("234fd47e07d1004f0aed9c"),
                    &[],
                ),
                "pkg:golang/github.com/gorilla/context@234fd47e07d1004f0aed9c",
            ),
            (
                p(
                    "gem",
                    &[],
                    "jruby-launcher",
                    Some("1.1.2"),
                    &[("platform", "java")],
                ),
                "pkg:gem/jruby-launcher@1.1.2?platform=java",
            ),
            (
                p("composer", &["laravel"], "laravel", Some("5.5.0"), &[]),
                "pkg:composer/laravel/laravel@5.5.0",
            ),
            (
                p(
                    "nuget",
                    &[],
                    "EnterpriseLibrary.Common",
                    Some("6.0.1304"),
                    &[],
                ),
                "pkg:nuget/EnterpriseLibrary.Common@6.0.1304",
            ),
            (
                p("cargo", &[], "rand", Some("0.7.2"), &[]),
                "pkg:cargo/rand@0.7.2",
            ),
            // Empty values are no qualifier; an empty version is no version.
            (
                p("cargo", &[], "rand", Some(""), &[("arch", "")]),
                "pkg:cargo/rand",
            ),
            // UTF-8 is encoded byte by byte.
            (
                p("generic", &[], "café", None, &[]),
                "pkg:generic/caf%C3%A9",
            ),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
    }

    fn os(id: &str, version: Option<&str>) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: version.map(str::to_owned),
            ..OsRelease::default()
        }
    }

    fn package(kind: PackageKind, name: &str, version: &str, arch: Option<&str>) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            source_name: None,
            source_version: None,
            arch: arch.map(str::to_owned),
            location: "db".into(),
        }
    }

    #[test]
    fn os_packages() {
        let debian = os("debian", Some("12"));
        let alpine = os("alpine", Some("3.20.3"));
        let rocky = os("rocky", Some("9.4"));
        let table = [
            (
                package(
                    PackageKind::Dpkg,
                    "openssl",
                    "3.0.11-1~deb12u2",
                    Some("amd64"),
                ),
                Some(&debian),
                "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
            ),
            (
                package(
                    PackageKind::Dpkg,
                    "zlib1g",
                    "1:1.2.13.dfsg-1",
                    Some("amd64"),
                ),
                Some(&debian),
                "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12",
            ),
            (
                package(PackageKind::Dpkg, "libstdc++6", "12.2.0-14", Some("arm64")),
                Some(&os("Ubuntu", Some("22.04"))),
                "pkg:deb/ubuntu/libstdc%2B%2B6@12.2.0-14?arch=arm64&distro=ubuntu-22.04",
            ),
            (
                package(PackageKind::Dpkg, "base-files", "12.4", None),
                None,
                "pkg:deb/debian/base-files@12.4",
            ),
            (
                package(PackageKind::Apk, "musl", "1.2.5-r0", Some("x86_64")),
                Some(&alpine),
                "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3",
            ),
            (
                package(
                    PackageKind::Rpm,
                    "openssl-libs",
                    "1:3.0.7-27.el9",
                    Some("x86_64"),
                ),
                Some(&rocky),
                "pkg:rpm/rocky/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rocky-9.4&epoch=1",
            ),
            (
                package(
                    PackageKind::Rpm,
                    "NetworkManager",
                    "1.46.0-8.el9",
                    Some("x86_64"),
                ),
                Some(&os("rhel", None)),
                "pkg:rpm/rhel/NetworkManager@1.46.0-8.el9?arch=x86_64&distro=rhel",
            ),
            (
                package(PackageKind::Rpm, "gpg-pubkey", "fd431d51-4ae0493b", None),
                None,
                "pkg:rpm/redhat/gpg-pubkey@fd431d51-4ae0493b",
            ),
        ];
        for (p, os, want) in table {
            assert_eq!(os_package(&p, os).to_string(), want, "{p:?}");
        }
    }

    #[test]
    fn language_packages() {
        let l = |language, name: &str, version: &str| {
            language_package(&LanguagePackage {
                language,
                name: name.into(),
                version: version.into(),
                location: "f".into(),
            })
            .to_string()
        };
        let table = [
            (
                l(Language::Go, "golang.org/x/net", "v0.17.0"),
                "pkg:golang/golang.org/x/net@v0.17.0",
            ),
            (
                l(
                    Language::Go,
                    "github.com/Azure/azure-sdk-for-go",
                    "v68.0.0+incompatible",
                ),
                "pkg:golang/github.com/Azure/azure-sdk-for-go@v68.0.0%2Bincompatible",
            ),
            (
                l(Language::Go, "stdlib", "1.21.5"),
                "pkg:golang/stdlib@1.21.5",
            ),
            (
                l(Language::Rust, "serde_json", "1.0.108"),
                "pkg:cargo/serde_json@1.0.108",
            ),
            (
                l(Language::Npm, "lodash", "4.17.21"),
                "pkg:npm/lodash@4.17.21",
            ),
            (
                l(Language::Npm, "@babel/core", "7.23.2"),
                "pkg:npm/%40babel/core@7.23.2",
            ),
            (
                l(Language::Python, "PyYAML", "6.0.1"),
                "pkg:pypi/pyyaml@6.0.1",
            ),
            (
                l(Language::Python, "zope.interface", "6.1"),
                "pkg:pypi/zope-interface@6.1",
            ),
            (
                l(
                    Language::Java,
                    "org.apache.logging.log4j:log4j-core",
                    "2.14.1",
                ),
                "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            ),
            (l(Language::Ruby, "rack", "3.0.8"), "pkg:gem/rack@3.0.8"),
            (
                l(Language::Php, "Symfony/Console", "v6.3.4"),
                "pkg:composer/symfony/console@v6.3.4",
            ),
            (
                l(Language::DotNet, "Newtonsoft.Json", "13.0.1"),
                "pkg:nuget/Newtonsoft.Json@13.0.1",
            ),
            (l(Language::Npm, "left-pad", ""), "pkg:npm/left-pad"),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn images() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            image("registry.example:5000/team/app:1.2", &digest, Some("amd64")).to_string(),
            format!(
                "pkg:oci/app@{digest}?arch=amd64&repository_url=registry.example:5000%2Fteam%2Fapp&tag=1.2"
            )
        );
        assert_eq!(
            image(&format!("nginx@{digest}"), &digest, None).to_string(),
            format!("pkg:oci/nginx@{digest}?repository_url=docker.io%2Flibrary%2Fnginx")
        );
    }
}
