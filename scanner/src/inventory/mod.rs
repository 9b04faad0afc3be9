//! What an image installs: the OS it is built on and the packages its package databases
//! list. Parsers are pure functions over the bytes of the files the layer walker collected.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod apk;
pub mod dpkg;
pub mod language;
pub mod os_release;
pub mod rpm;

/// The largest package database (or other [`wanted`] file) the layer walker keeps in memory,
/// 256 MiB. Real databases are far smaller (a full Fedora workstation's `rpmdb.sqlite` is
/// about 100 MiB, a large Debian `status` a few MiB); a bigger file is refused so that a
/// hostile image cannot make the scanner hold gigabytes. The walker reports such a file as a
/// [`crate::Error::PackageDb`] rather than skipping it, so the scan does not look clean.
pub const MAX_DB_BYTES: u64 = 256 * 1024 * 1024;

/// How a wanted path is recognised.
enum Matcher {
    /// Exactly this path.
    Exact(&'static str),
    /// Any path the function accepts (directory entries, file names anywhere).
    Predicate(fn(&str) -> bool),
}

/// The files inventory reads. Language package manifests (lock files, `*.jar`, Python
/// `METADATA`) are added here as rows with a predicate, next to their parser.
const WANTED: &[Matcher] = &[
    Matcher::Exact(os_release::OS_RELEASE_PATHS[0]),
    Matcher::Exact(os_release::OS_RELEASE_PATHS[1]),
    Matcher::Exact(os_release::ALPINE_RELEASE),
    Matcher::Exact(os_release::DEBIAN_VERSION),
    Matcher::Exact(dpkg::STATUS),
    Matcher::Predicate(dpkg::is_status_d_entry),
    Matcher::Exact(apk::INSTALLED),
    Matcher::Exact(rpm::SQLITE_PATHS[0]),
    Matcher::Exact(rpm::SQLITE_PATHS[1]),
    Matcher::Predicate(is_rpmdb_wal),
    Matcher::Exact(rpm::NDB_PATHS[0]),
    Matcher::Exact(rpm::NDB_PATHS[1]),
    Matcher::Exact(rpm::BDB_PATHS[0]),
    Matcher::Exact(rpm::BDB_PATHS[1]),
];

fn is_rpmdb_wal(path: &str) -> bool {
    path.strip_suffix(rpm::WAL_SUFFIX)
        .is_some_and(|db| rpm::SQLITE_PATHS.contains(&db))
}

/// Whether the layer walker must keep a file for inventory. `path` is as a layer's tar entry
/// names it; a leading `./` or `/` is ignored.
pub fn wanted(path: &str) -> bool {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    WANTED.iter().any(|m| match m {
        Matcher::Exact(p) => *p == path,
        Matcher::Predicate(f) => f(path),
    })
}

/// A parser of one kind of package database: every database of its kind the files hold.
type Parser = fn(&dyn FileSource) -> Result<Parsed, crate::Error>;

const PARSERS: &[Parser] = &[dpkg::read, apk::read, rpm::read];

/// The OS and the packages of every package database among the files (an image may have
/// several: a distroless image on top of an Alpine builder stage, dpkg next to rpm).
///
/// Packages are sorted by kind, name, version (then architecture and location) so that the
/// same image always gives the same list. A damaged entry of a database is skipped and
/// recorded in [`Inventory::unreadable`], so the scan says its packages were not judged; a
/// database none of whose entries can be read fails the whole inventory, because it is
/// probably not the database it is named after.
pub fn from_files(files: &dyn FileSource) -> Result<Inventory, crate::Error> {
    let os = os_release::detect(files);
    let mut packages = Vec::new();
    let mut unreadable = Vec::new();
    for parse in PARSERS {
        let parsed = parse(files)?;
        packages.extend(parsed.packages);
        unreadable.extend(parsed.unreadable);
    }
    unreadable.sort_by(|a: &Unreadable, b: &Unreadable| a.path.cmp(&b.path));
    packages.sort_by(|a, b| {
        (a.kind, &a.name, &a.version, &a.arch, &a.location).cmp(&(
            b.kind,
            &b.name,
            &b.version,
            &b.arch,
            &b.location,
        ))
    });
    Ok(Inventory {
        os,
        packages,
        language_packages: Vec::new(),
        unreadable,
    })
}

/// What a parser read from the databases of its kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub packages: Vec<Package>,
    /// The databases it could read only in part.
    pub unreadable: Vec<Unreadable>,
}

impl Parsed {
    /// Add another database's result.
    pub fn extend(&mut self, other: Parsed) {
        self.packages.extend(other.packages);
        self.unreadable.extend(other.unreadable);
    }

    /// The packages read from one database of which `skipped` entries (the first for
    /// `first_reason`) were not: those are recorded as unreadable.
    fn with_skipped(
        path: &str,
        packages: Vec<Package>,
        skipped: usize,
        what: &str,
        first_reason: Option<String>,
    ) -> Parsed {
        let unreadable = first_reason
            .map(|first| Unreadable {
                path: path.to_owned(),
                reason: format!("{skipped} unreadable {what} skipped (first: {first})"),
            })
            .into_iter()
            .collect();
        Parsed {
            packages,
            unreadable,
        }
    }
}

/// Read access to the files of an image's final filesystem that [`wanted`] selected.
///
/// Paths are relative to the root, without a leading `/` (`etc/os-release`). Symbolic links
/// are already resolved by the implementation.
pub trait FileSource {
    /// The content of a file, if the image has it.
    fn get(&self, path: &str) -> Option<&[u8]>;
    /// The files directly inside a directory (their full paths), sorted.
    fn list_dir(&self, dir: &str) -> Vec<&str>;
}

/// An in-memory [`FileSource`]: the form tests and the layer walker use.
#[derive(Clone, Debug, Default)]
pub struct Files {
    files: BTreeMap<String, Vec<u8>>,
}

impl Files {
    pub fn new() -> Self {
        Self::default()
    }
    /// Add or replace a file (`path` without a leading `/`).
    pub fn insert(&mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), content.into());
    }
    pub fn remove(&mut self, path: &str) -> Option<Vec<u8>> {
        self.files.remove(path)
    }
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
    pub fn len(&self) -> usize {
        self.files.len()
    }
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FileSource for Files {
    fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }
    fn list_dir(&self, dir: &str) -> Vec<&str> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.files
            .range(prefix.clone()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(&prefix))
            .filter(|k| !k[prefix.len()..].contains('/'))
            .collect()
    }
}

/// The OS an image is built on, from `/etc/os-release` (or `/usr/lib/os-release`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsRelease {
    /// `ID`: `debian`, `alpine`, `rhel`, `rocky`, `almalinux`, `ubuntu`, …
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// `VERSION_ID`: `12`, `3.20.3`, `9.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`: `bookworm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    /// `PRETTY_NAME`: `Debian GNU/Linux 12 (bookworm)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

/// Which package database listed a package; also decides how its versions compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PackageKind {
    Dpkg,
    Apk,
    Rpm,
}

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub kind: PackageKind,
    /// Binary package name (`libssl3`).
    pub name: String,
    /// Installed version as the package manager writes it (`3.0.11-1~deb12u2`, `1:1.2.3-4.el9`).
    pub version: String,
    /// Source package name, where the database keeps it (`openssl`); advisories of Debian and
    /// Alpine are written against source packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source package version: dpkg gives it for every package (the binary's version unless
    /// `Source: name (ver)` names another), rpm the `version-release` of its source rpm (no
    /// epoch); apk keeps none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The database file that listed it (`var/lib/dpkg/status`).
    pub location: String,
}

/// Everything the scanner learned about an image's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
    /// Packages of the language ecosystems, each with the file it was read from; sorted by
    /// ecosystem, name, version and file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language_packages: Vec<language::LanguagePackage>,
    /// Package databases (or parts of them) present in the image but not read: their
    /// packages are missing from `packages`, so a scan cannot call the image clean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

impl Inventory {
    /// Add what the layer walker derived from files as it read them (language packages,
    /// and the files that should have told some and could not), keeping the order stable.
    pub fn add_derived<'a>(
        &mut self,
        derived: impl IntoIterator<Item = (&'a str, &'a crate::layers::Derived)>,
    ) {
        for (_, d) in derived {
            self.language_packages.extend(d.packages.iter().cloned());
            self.unreadable.extend(d.unreadable.iter().cloned());
        }
        self.language_packages.sort();
        self.language_packages.dedup();
        self.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// Every package, OS and language, counted.
    pub fn package_count(&self) -> usize {
        self.packages.len() + self.language_packages.len()
    }
}

/// A package database, or part of one, that the image has and the inventory could not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreadable {
    /// The database file (`var/lib/dpkg/status`).
    pub path: String,
    /// What was not read, and why.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_paths() {
        let table: &[(&str, bool)] = &[
            ("etc/os-release", true),
            ("./etc/os-release", true),
            ("/usr/lib/os-release", true),
            ("etc/alpine-release", true),
            ("etc/debian_version", true),
            ("var/lib/dpkg/status", true),
            ("var/lib/dpkg/status-old", false),
            ("var/lib/dpkg/status.d/libssl3", true),
            ("var/lib/dpkg/status.d/libssl3.md5sums", false),
            ("var/lib/dpkg/info/libssl3.list", false),
            ("lib/apk/db/installed", true),
            ("lib/apk/db/scripts.tar", false),
            ("var/lib/rpm/rpmdb.sqlite", true),
            ("var/lib/rpm/rpmdb.sqlite-wal", true),
            ("var/lib/rpm/rpmdb.sqlite-shm", false),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite", true),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite-wal", true),
            ("var/lib/rpm/Packages", true),
            ("./var/lib/rpm/Packages.db", true),
            ("/usr/lib/sysimage/rpm/Packages", true),
            ("usr/lib/sysimage/rpm/Packages.db", true),
            ("var/lib/rpm/Packages.old", false),
            ("var/lib/rpm/Packages.db-journal", false),
            ("var/lib/rpm/Index.db", false),
            ("var/lib/rpm/Name", false),
            ("var/cache/Packages", false),
            ("home/user/etc/os-release", false),
            ("", false),
        ];
        for (path, want) in table {
            assert_eq!(wanted(path), *want, "{path}");
        }
    }

    #[test]
    fn several_databases_sorted() {
        let mut files = Files::new();
        files.insert("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
        files.insert(
            "var/lib/dpkg/status",
            "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\
             Architecture: amd64\nSource: zlib\n\n\
             Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\
             Architecture: amd64\nSource: glibc\n",
        );
        files.insert(
            "var/lib/dpkg/status.d/base",
            "Package: base-files\nVersion: 12.4\n",
        );
        files.insert(
            "lib/apk/db/installed",
            "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n",
        );
        let inventory = from_files(&files).expect("inventory");
        assert_eq!(inventory.os.as_ref().map(|o| o.id.as_str()), Some("debian"));
        let got: Vec<_> = inventory
            .packages
            .iter()
            .map(|p| (p.kind, p.name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (PackageKind::Dpkg, "base-files"),
                (PackageKind::Dpkg, "libc6"),
                (PackageKind::Dpkg, "zlib1g"),
                (PackageKind::Apk, "musl"),
            ]
        );
    }

    #[test]
    fn partly_readable_databases_are_recorded() {
        let mut files = Files::new();
        files.insert("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\n\nP:broken\n");
        files.insert(
            "var/lib/dpkg/status",
            "Package: a\nVersion: 1\n\nVersion: 2\n\nPackage: b\n",
        );
        let inventory = from_files(&files).expect("inventory");
        assert_eq!(inventory.packages.len(), 2);
        let got: Vec<_> = inventory
            .unreadable
            .iter()
            .map(|u| (u.path.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "lib/apk/db/installed",
                    "1 unreadable record(s) skipped (first: record 2 (broken) has no V: \
                     (version) line)"
                ),
                (
                    "var/lib/dpkg/status",
                    "2 unreadable stanza(s) skipped (first: stanza 2 has no Package field)"
                ),
            ]
        );
    }

    #[test]
    fn one_unreadable_database_fails_the_inventory() {
        let mut files = Files::new();
        files.insert("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\n");
        files.insert("var/lib/rpm/rpmdb.sqlite", "not sqlite");
        let err = from_files(&files).expect_err("rpmdb is junk");
        assert!(
            err.to_string()
                .starts_with("var/lib/rpm/rpmdb.sqlite: not a SQLite database")
        );
        assert_eq!(
            from_files(&Files::new()).expect("empty"),
            Inventory::default()
        );
    }
}
