//! Which OSV ecosystem an image's OS belongs to, and which name and version of an installed
//! package that ecosystem's advisories are written against.
//!
//! | os-release `ID` | OSV ecosystem | versions | advisories name |
//! | --- | --- | --- | --- |
//! | `debian` | `Debian:<major>` (`Debian:12`) | dpkg | source package, source version |
//! | `ubuntu` | `Ubuntu:<YY.MM>` + `:LTS` for even-year `.04` (`Ubuntu:22.04:LTS`) | dpkg | source package, source version |
//! | `alpine` | `Alpine:v<major>.<minor>` (`Alpine:v3.20`) | apk | origin (source) package |
//! | `rocky` | `Rocky Linux:<major>` | rpm | source RPM name (binary name also tried) |
//! | `almalinux` | `AlmaLinux:<major>` | rpm | source RPM name (binary name also tried) |
//! | `mageia` | `Mageia:<major>` | rpm | source RPM name (binary name also tried) |
//! | `photon` | `Photon OS:<major>.<minor>` | rpm | RPM name |
//! | `opensuse-leap`, `opensuse-tumbleweed` | `openSUSE:<PRETTY_NAME without the vendor>` (`openSUSE:Leap 15.5`) | rpm | source RPM name |
//! | `sles` | `SUSE:<PRETTY_NAME without the vendor>` (`SUSE:Linux Enterprise Server 15 SP5`) | rpm | source RPM name |
//! | `wolfi` | `Wolfi` | apk | origin package |
//! | `chainguard` | `Chainguard` | apk | origin package |
//! | `rhel` | `Red Hat:enterprise_linux:<major>`, read from the `Red Hat` export | rpm | source RPM name (binary name also tried) |
//! | `amzn` (`VERSION_ID` `2` or `2023`) | `Amazon Linux:2`, `Amazon Linux:2023`, read from the distribution's `updateinfo.xml` ([`crate::updateinfo`]) | rpm | binary RPM name |
//!
//! Amazon Linux has no OSV export: its advisories (ALAS) are published only in the yum/dnf
//! `updateinfo.xml` of its repositories, which list binary packages. Other Amazon Linux
//! releases (AMI 2018.03) are not judged.
//!
//! The language ecosystems (`Go`, `crates.io`, `npm`, `PyPI`, `Maven`, `RubyGems`,
//! `Packagist`, `NuGet`) are known by name too, each with its own version order.
//!
//! Red Hat's advisories name a product stream (`Red Hat:enterprise_linux:9::appstream`,
//! `…::baseos`, `…::crb`), which an image's package database does not record; every stream
//! of the major release applies, since a package is shipped in one stream only. The
//! extended-support products (`rhel_eus`, `rhel_e4s`, …) are not the release an image is
//! built from and are left out.

use super::Scheme;
use crate::inventory::{OsRelease, Package, PackageKind};

/// An OSV ecosystem: the name its advisories carry, and how its versions compare.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ecosystem {
    /// As the OSV exports spell it (`Debian:12`, `Alpine:v3.20`, `Ubuntu:22.04:LTS`).
    pub name: String,
    pub scheme: Scheme,
}

impl Ecosystem {
    /// An ecosystem by its OSV name, with the version scheme of its family; `None` for a
    /// family this scanner does not know.
    pub fn from_name(name: &str) -> Option<Ecosystem> {
        let family = name.split(':').next().unwrap_or(name);
        let scheme = match family {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
            "Rocky Linux" | "AlmaLinux" | "Mageia" | "Photon OS" | "openSUSE" | "SUSE"
            | "Red Hat" | "Amazon Linux" => Scheme::Rpm,
            // The language ecosystems (see inventory::language::Language).
            "Go" | "crates.io" | "npm" | "NuGet" => Scheme::Semver,
            "PyPI" => Scheme::Pep440,
            "Maven" => Scheme::Maven,
            "RubyGems" => Scheme::RubyGems,
            "Packagist" => Scheme::Composer,
            _ => return None,
        };
        Some(Ecosystem {
            name: name.to_owned(),
            scheme,
        })
    }

    /// A package name as this ecosystem compares names: PyPI's by PEP 503 (`PyYAML` and
    /// `pyyaml`, `zope.interface` and `zope-interface` are one project), NuGet's and
    /// Packagist's without case, the others exactly. Both the index and the lookup use it.
    pub fn package_key<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        use std::borrow::Cow;
        match self.name.as_str() {
            "PyPI" => Cow::Owned(crate::inventory::language::python::normalize(name)),
            "NuGet" | "Packagist" if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                Cow::Owned(name.to_ascii_lowercase())
            }
            _ => Cow::Borrowed(name),
        }
    }

    /// The family part of the name (`Debian` for `Debian:12`): advisories scoped to the
    /// family without a release apply to every release.
    pub fn family(&self) -> &str {
        self.name.split(':').next().unwrap_or(&self.name)
    }

    /// Whether advisories written for `named` (an `affected[].package.ecosystem`) apply to
    /// this ecosystem: the same name, or its family without a release (which the schema
    /// defines as every release).
    pub fn covers(&self, named: &str) -> bool {
        if named == self.name || named == self.family() {
            return true;
        }
        // Red Hat's streams of this release: `Red Hat:enterprise_linux:9::appstream`.
        self.family() == "Red Hat"
            && named
                .strip_prefix(self.name.as_str())
                .is_some_and(|stream| stream.starts_with("::"))
    }

    /// The export its advisories are published in (`<base>/<export>/all.zip`): its own name,
    /// except for Red Hat, whose releases and streams share the one `Red Hat` export.
    pub fn export_name(&self) -> &str {
        match self.family() {
            "Red Hat" => "Red Hat",
            _ => &self.name,
        }
    }
}

/// The OSV ecosystem of an OS, or `None` when OSV has none for it (or the os-release lacks
/// the version it needs).
pub fn ecosystem_for(os: &OsRelease) -> Option<Ecosystem> {
    let version = os.version_id.as_deref().map(str::trim).unwrap_or("");
    let name = match os.id.as_str() {
        "debian" => {
            let major =
                major(version).or_else(|| debian_release(os.version_codename.as_deref()?))?;
            format!("Debian:{major}")
        }
        "ubuntu" => {
            let (year, month) = version.split_once('.')?;
            let (y, m) = (year.parse::<u32>().ok()?, month.get(..2)?);
            m.parse::<u32>().ok()?;
            // Ubuntu's LTS releases are the April releases of even years.
            let lts = if y % 2 == 0 && m == "04" { ":LTS" } else { "" };
            format!("Ubuntu:{y}.{m}{lts}")
        }
        "alpine" => format!("Alpine:v{}", major_minor(version)?),
        "rocky" => format!("Rocky Linux:{}", major(version)?),
        "almalinux" => format!("AlmaLinux:{}", major(version)?),
        "mageia" => format!("Mageia:{}", major(version)?),
        "photon" => format!("Photon OS:{}", major_minor(version)?),
        "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => {
            let pretty = os.pretty_name.as_deref()?.trim();
            format!("openSUSE:{}", pretty.strip_prefix("openSUSE ")?)
        }
        "sles" | "sled" | "sle-micro" => {
            let pretty = os.pretty_name.as_deref()?.trim();
            format!("SUSE:{}", pretty.strip_prefix("SUSE ")?)
        }
        "rhel" => format!("Red Hat:enterprise_linux:{}", major(version)?),
        // Amazon Linux 2 and 2023 only: the 2018.03 AMI has no maintained feed here.
        "amzn" => match version {
            "2" | "2023" => format!("Amazon Linux:{version}"),
            _ => return None,
        },
        "wolfi" => "Wolfi".to_owned(),
        "chainguard" => "Chainguard".to_owned(),
        _ => return None,
    };
    Ecosystem::from_name(&name)
}

/// The leading number of a version (`12` of `12.4`), if it is one.
fn major(version: &str) -> Option<&str> {
    let m = version.split('.').next()?;
    (!m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())).then_some(m)
}

/// `3.20` of `3.20.3` (and of `3.21_alpha20240807`, an edge build).
fn major_minor(version: &str) -> Option<String> {
    let version = version.split(['_', '-']).next()?;
    let mut parts = version.split('.');
    let (ma, mi) = (parts.next()?, parts.next()?);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(ma) && numeric(mi)).then(|| format!("{ma}.{mi}"))
}

/// Debian releases by codename, for images whose os-release has no `VERSION_ID`.
fn debian_release(codename: &str) -> Option<&'static str> {
    Some(match codename {
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        _ => return None,
    })
}

/// The (name, version) pairs under which an installed package may appear in its
/// ecosystem's advisories, most specific first.
///
/// - dpkg: the source package with the source version (a binNMU `1.2-3+b1` is source
///   `1.2-3`), else the binary's own name and version.
/// - apk: the origin package with the installed version (an origin's subpackages share its
///   version).
/// - rpm: the source RPM name, then the binary name, both with the installed EVR (the
///   exports differ in which one they use); for Amazon Linux the binary name only, since
///   its `updateinfo.xml` lists binary packages and a source name could meet another
///   binary package's entry.
pub fn advisory_keys<'p>(ecosystem: &Ecosystem, pkg: &'p Package) -> Vec<(&'p str, &'p str)> {
    let source = pkg
        .source_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match pkg.kind {
        PackageKind::Dpkg => match source {
            Some(src) => {
                let v = pkg.source_version.as_deref().unwrap_or(&pkg.version);
                vec![(src, v)]
            }
            None => vec![(pkg.name.as_str(), pkg.version.as_str())],
        },
        PackageKind::Apk => vec![(source.unwrap_or(&pkg.name), pkg.version.as_str())],
        PackageKind::Rpm if ecosystem.family() == "Amazon Linux" => {
            vec![(pkg.name.as_str(), pkg.version.as_str())]
        }
        PackageKind::Rpm => {
            let mut keys = Vec::with_capacity(2);
            if let Some(src) = source.map(source_rpm_name) {
                keys.push((src, pkg.version.as_str()));
            }
            if keys.iter().all(|(n, _)| *n != pkg.name) {
                keys.push((pkg.name.as_str(), pkg.version.as_str()));
            }
            keys
        }
    }
}

/// `openssl` of `openssl-3.0.7-27.el9.src.rpm` (the rpm header's SOURCERPM); a plain name
/// is returned as is.
fn source_rpm_name(s: &str) -> &str {
    let Some(nvr) = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))
    else {
        return s;
    };
    // name-version-release: the name is what precedes the last two dashes.
    nvr.rsplitn(3, '-').nth(2).unwrap_or(nvr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(
        id: &str,
        version: Option<&str>,
        codename: Option<&str>,
        pretty: Option<&str>,
    ) -> OsRelease {
        OsRelease {
            id: id.into(),
            id_like: vec![],
            version_id: version.map(Into::into),
            version_codename: codename.map(Into::into),
            pretty_name: pretty.map(Into::into),
        }
    }

    #[test]
    fn language_ecosystems_by_name() {
        use crate::inventory::language::Language;
        let schemes: Vec<Scheme> = Language::ALL
            .iter()
            .map(|l| {
                Ecosystem::from_name(l.osv_ecosystem())
                    .expect("known")
                    .scheme
            })
            .collect();
        use Scheme::*;
        assert_eq!(
            schemes,
            [
                Semver, Semver, Semver, Pep440, Maven, RubyGems, Composer, Semver
            ]
        );
        assert!(Ecosystem::from_name("Hackage").is_none());
    }

    #[test]
    fn ecosystem_names_as_the_exports_spell_them() {
        let table: &[(OsRelease, Option<&str>, Option<Scheme>)] = &[
            (
                os("debian", Some("12"), Some("bookworm"), None),
                Some("Debian:12"),
                Some(Scheme::Dpkg),
            ),
            (
                os("debian", Some("11.9"), None, None),
                Some("Debian:11"),
                Some(Scheme::Dpkg),
            ),
            (
                os("debian", None, Some("trixie"), None),
                Some("Debian:13"),
                Some(Scheme::Dpkg),
            ),
            (os("debian", None, Some("sid"), None), None, None),
            (
                os("ubuntu", Some("22.04"), Some("jammy"), None),
                Some("Ubuntu:22.04:LTS"),
                Some(Scheme::Dpkg),
            ),
            (
                os("ubuntu", Some("24.04"), None, None),
                Some("Ubuntu:24.04:LTS"),
                Some(Scheme::Dpkg),
            ),
            (
                os("ubuntu", Some("24.10"), None, None),
                Some("Ubuntu:24.10"),
                Some(Scheme::Dpkg),
            ),
            (
                os("ubuntu", Some("23.04"), None, None),
                Some("Ubuntu:23.04"),
                Some(Scheme::Dpkg),
            ),
            (
                os("alpine", Some("3.20.3"), None, None),
                Some("Alpine:v3.20"),
                Some(Scheme::Apk),
            ),
            (
                os("alpine", Some("3.21_alpha20240807"), None, None),
                Some("Alpine:v3.21"),
                Some(Scheme::Apk),
            ),
            (os("alpine", Some("3"), None, None), None, None),
            (
                os("rocky", Some("9.4"), None, None),
                Some("Rocky Linux:9"),
                Some(Scheme::Rpm),
            ),
            (
                os("almalinux", Some("8.10"), None, None),
                Some("AlmaLinux:8"),
                Some(Scheme::Rpm),
            ),
            (
                os("mageia", Some("9"), None, None),
                Some("Mageia:9"),
                Some(Scheme::Rpm),
            ),
            (
                os("photon", Some("5.0"), None, None),
                Some("Photon OS:5.0"),
                Some(Scheme::Rpm),
            ),
            (
                os(
                    "opensuse-leap",
                    Some("15.5"),
                    None,
                    Some("openSUSE Leap 15.5"),
                ),
                Some("openSUSE:Leap 15.5"),
                Some(Scheme::Rpm),
            ),
            (
                os(
                    "sles",
                    Some("15.5"),
                    None,
                    Some("SUSE Linux Enterprise Server 15 SP5"),
                ),
                Some("SUSE:Linux Enterprise Server 15 SP5"),
                Some(Scheme::Rpm),
            ),
            (
                os("wolfi", Some("20230201"), None, None),
                Some("Wolfi"),
                Some(Scheme::Apk),
            ),
            (
                os("rhel", Some("9.4"), None, None),
                Some("Red Hat:enterprise_linux:9"),
                Some(Scheme::Rpm),
            ),
            (os("rhel", None, None, None), None, None),
            (
                os("amzn", Some("2"), None, Some("Amazon Linux 2")),
                Some("Amazon Linux:2"),
                Some(Scheme::Rpm),
            ),
            (
                os(
                    "amzn",
                    Some("2023"),
                    None,
                    Some("Amazon Linux 2023.5.20240805"),
                ),
                Some("Amazon Linux:2023"),
                Some(Scheme::Rpm),
            ),
            (os("amzn", Some("2018.03"), None, None), None, None),
            (os("amzn", None, None, None), None, None),
            (os("arch", None, None, None), None, None),
            (os("debian", Some(""), None, None), None, None),
        ];
        for (release, name, scheme) in table {
            let got = ecosystem_for(release);
            assert_eq!(got.as_ref().map(|e| e.name.as_str()), *name, "{release:?}");
            assert_eq!(got.map(|e| e.scheme), *scheme, "{release:?}");
        }
    }

    fn pkg(
        kind: PackageKind,
        name: &str,
        version: &str,
        src: Option<&str>,
        src_ver: Option<&str>,
    ) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            source_name: src.map(Into::into),
            source_version: src_ver.map(Into::into),
            arch: None,
            location: String::new(),
        }
    }

    #[test]
    fn which_advisories_an_ecosystem_takes_and_from_which_export() {
        let table = [
            // (ecosystem, advisory's ecosystem, applies)
            ("Debian:12", "Debian:12", true),
            ("Debian:12", "Debian", true),
            ("Debian:12", "Debian:11", false),
            ("Debian:12", "Debian:12::x", false),
            (
                "Red Hat:enterprise_linux:9",
                "Red Hat:enterprise_linux:9::appstream",
                true,
            ),
            (
                "Red Hat:enterprise_linux:9",
                "Red Hat:enterprise_linux:9::baseos",
                true,
            ),
            (
                "Red Hat:enterprise_linux:9",
                "Red Hat:enterprise_linux:9",
                true,
            ),
            ("Red Hat:enterprise_linux:9", "Red Hat", true),
            (
                "Red Hat:enterprise_linux:9",
                "Red Hat:enterprise_linux:8::appstream",
                false,
            ),
            (
                "Red Hat:enterprise_linux:9",
                "Red Hat:enterprise_linux:90::baseos",
                false,
            ),
            (
                "Red Hat:enterprise_linux:9",
                "Red Hat:rhel_eus:9.2::appstream",
                false,
            ),
            (
                "Red Hat:enterprise_linux:8",
                "Red Hat:enterprise_linux:8.6::appstream",
                false,
            ),
        ];
        for (eco, named, want) in table {
            let e = Ecosystem::from_name(eco).expect("known");
            assert_eq!(e.covers(named), want, "{eco} takes {named}");
        }
        let export = |n: &str| {
            Ecosystem::from_name(n)
                .expect("known")
                .export_name()
                .to_owned()
        };
        assert_eq!(export("Red Hat:enterprise_linux:9"), "Red Hat");
        assert_eq!(export("Debian:12"), "Debian:12");
        assert_eq!(export("npm"), "npm");
    }

    #[test]
    fn advisories_are_looked_up_by_source_package() {
        use PackageKind::*;
        // Any ecosystem but Amazon Linux's takes the source name first.
        fn advisory_keys(p: &Package) -> Vec<(&str, &str)> {
            super::advisory_keys(&Ecosystem::from_name("Debian:12").expect("known"), p)
        }
        let p = pkg(Dpkg, "libssl3", "3.0.11-1~deb12u2", Some("openssl"), None);
        assert_eq!(advisory_keys(&p), [("openssl", "3.0.11-1~deb12u2")]);
        let p = pkg(Dpkg, "libfoo1", "1.2-3+b1", Some("foo"), Some("1.2-3"));
        assert_eq!(advisory_keys(&p), [("foo", "1.2-3")]);
        let p = pkg(Dpkg, "bash", "5.2.15-2+b2", None, None);
        assert_eq!(advisory_keys(&p), [("bash", "5.2.15-2+b2")]);
        let p = pkg(Apk, "libcrypto3", "3.3.2-r0", Some("openssl"), None);
        assert_eq!(advisory_keys(&p), [("openssl", "3.3.2-r0")]);
        let p = pkg(
            Rpm,
            "openssl-libs",
            "1:3.0.7-27.el9",
            Some("openssl-3.0.7-27.el9.src.rpm"),
            None,
        );
        assert_eq!(
            advisory_keys(&p),
            [
                ("openssl", "1:3.0.7-27.el9"),
                ("openssl-libs", "1:3.0.7-27.el9")
            ]
        );
        let p = pkg(Rpm, "bash", "5.1.8-9.el9", Some("bash"), None);
        assert_eq!(advisory_keys(&p), [("bash", "5.1.8-9.el9")]);
        // Amazon Linux's updateinfo names binary packages: the source name is not tried.
        let amazon = Ecosystem::from_name("Amazon Linux:2").expect("known");
        let p = pkg(
            Rpm,
            "openssl-libs",
            "1:1.0.2k-24.amzn2.0.6",
            Some("openssl-1.0.2k-24.amzn2.0.6.src.rpm"),
            None,
        );
        assert_eq!(
            super::advisory_keys(&amazon, &p),
            [("openssl-libs", "1:1.0.2k-24.amzn2.0.6")]
        );
    }
}
