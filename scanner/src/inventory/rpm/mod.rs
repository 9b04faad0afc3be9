//! The rpm package database, in the formats rpm has written: SQLite (current
//! distributions). Each stores one header blob per package ([`header`]); the formats differ
//! only in how they find the blobs, so each file here reads one format and hands its blobs
//! to the same header parser.
//!
//! Every offset and count of a header is checked against the blob: a hostile header is an
//! error for that package (skipped with a warning and recorded as unreadable, like the other
//! databases), never a panic or an allocation its counts ask for. Older Berkeley DB
//! (`Packages`: RHEL and its rebuilds up to 8, CentOS 7) and ndb (`Packages.db`: SUSE)
//! databases are not read; an image that has one and no SQLite database gets it recorded as
//! unreadable, since its packages are missing from the inventory.

use std::fmt::Display;

use super::{FileSource, Package, Parsed, Unreadable};
use crate::Error;

mod bdb;
mod header;
mod ndb;
mod sqlite;

pub use bdb::parse_bdb;
pub use header::{Header, parse_header, split_source_rpm};
pub use ndb::parse_ndb;
pub use sqlite::{WAL_SUFFIX, parse_sqlite};

/// Where distributions keep the SQLite rpm database; the `-wal` file sits beside it.
pub const RPMDB_PATHS: [&str; 2] = [
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];

/// rpm databases in formats this inventory does not read, with the format's name. The
/// layer walker notes that they exist without keeping their content ([`super::noted`]).
pub const UNREAD_PATHS: [(&str, &str); 4] = [
    ("var/lib/rpm/Packages", "Berkeley DB"),
    ("usr/lib/sysimage/rpm/Packages", "Berkeley DB"),
    ("var/lib/rpm/Packages.db", "ndb"),
    ("usr/lib/sysimage/rpm/Packages.db", "ndb"),
];

/// The packages of every rpm database the image has. Both locations may exist (one a link
/// to the other is resolved by the file source); a path that has no file is skipped.
pub fn read(files: &dyn FileSource) -> Result<Parsed, Error> {
    let mut parsed = Parsed::default();
    let mut seen: Vec<&[u8]> = Vec::new();
    for path in RPMDB_PATHS {
        let Some(db) = files.get(path) else { continue };
        // `var/lib/rpm` is usually a link to `usr/lib/sysimage/rpm`: read the content once.
        if seen.contains(&db) {
            continue;
        }
        seen.push(db);
        let wal = files.get(&format!("{path}{WAL_SUFFIX}"));
        parsed.extend(parse_sqlite(path, db, wal)?);
    }
    if seen.is_empty() {
        parsed.unreadable.extend(unread_databases(files));
    }
    Ok(parsed)
}

/// The databases in formats this inventory does not read, one per format (`var/lib/rpm` is
/// often a link to `usr/lib/sysimage/rpm`, so one database can have both paths). Only
/// called when there is no SQLite database: beside one, an old-format file is a leftover of
/// a conversion.
fn unread_databases(files: &dyn FileSource) -> Vec<Unreadable> {
    let mut formats: Vec<&str> = Vec::new();
    let mut unreadable = Vec::new();
    for (path, format) in UNREAD_PATHS {
        if files.get(path).is_none() || formats.contains(&format) {
            continue;
        }
        formats.push(format);
        unreadable.push(Unreadable {
            path: path.to_owned(),
            reason: format!(
                "an rpm database in the {format} format, which this scanner does not read \
                 (only the SQLite one): none of its packages are listed"
            ),
        });
    }
    unreadable
}

fn db_error(path: &str, reason: impl Into<String>) -> Error {
    Error::PackageDb {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The packages of one database, added header by header: an unreadable header is skipped
/// and counted, so the inventory says the database was read only in part.
struct Headers<'p> {
    path: &'p str,
    packages: Vec<Package>,
    problems: usize,
    first_problem: Option<String>,
}

impl<'p> Headers<'p> {
    fn new(path: &'p str) -> Self {
        Headers {
            path,
            packages: Vec::new(),
            problems: 0,
            first_problem: None,
        }
    }

    /// The header blob the database numbers `number`.
    fn add(&mut self, number: impl Display, blob: &[u8]) {
        match parse_header(blob) {
            Ok(header) => {
                if let Some(package) = header.into_package(self.path) {
                    self.packages.push(package);
                }
            }
            Err(reason) => self.problem(format!("package header {number}: {reason}")),
        }
    }

    /// A record the database holds and that could not be read.
    fn problem(&mut self, reason: String) {
        tracing::warn!(path = self.path, %reason, "skipping an unreadable rpm header");
        self.problems += 1;
        self.first_problem.get_or_insert(reason);
    }

    /// The packages, or an error if there were headers and none could be read.
    fn finish(self) -> Result<Parsed, Error> {
        let Headers {
            path,
            packages,
            problems,
            first_problem,
        } = self;
        match first_problem {
            Some(reason) if packages.is_empty() => Err(db_error(
                path,
                format!("no readable package header ({problems} unreadable; first: {reason})"),
            )),
            first => Ok(Parsed::with_skipped(
                path,
                packages,
                problems,
                "package header(s)",
                first,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::header::fixtures::package;
    use super::*;

    #[test]
    fn databases_in_other_formats_are_unreadable() {
        use crate::inventory::Files;
        let files_of = |paths: &[&str]| {
            let mut files = Files::new();
            for p in paths {
                files.insert(*p, "");
            }
            files
        };
        let sqlite = sqlite::tests::rpmdb(&[package("a", "1", "1", None, "a-1-1.src.rpm")]);
        let table: &[(&str, &[&str], &[&str])] = &[
            ("none", &[], &[]),
            (
                "Berkeley DB",
                &["var/lib/rpm/Packages"],
                &["var/lib/rpm/Packages"],
            ),
            (
                "ndb, reached by both paths",
                &[
                    "var/lib/rpm/Packages.db",
                    "usr/lib/sysimage/rpm/Packages.db",
                ],
                &["var/lib/rpm/Packages.db"],
            ),
            (
                "both formats",
                &["usr/lib/sysimage/rpm/Packages", "var/lib/rpm/Packages.db"],
                &["usr/lib/sysimage/rpm/Packages", "var/lib/rpm/Packages.db"],
            ),
        ];
        for (what, paths, want) in table {
            let parsed = read(&files_of(paths)).expect(what);
            let got: Vec<&str> = parsed.unreadable.iter().map(|u| u.path.as_str()).collect();
            assert_eq!(got, *want, "{what}");
            assert!(parsed.packages.is_empty());

            // Beside a SQLite database, an old file is a leftover: not a gap.
            let mut with_sqlite = files_of(paths);
            with_sqlite.insert(RPMDB_PATHS[0], sqlite.clone());
            let parsed = read(&with_sqlite).expect(what);
            assert_eq!(parsed.unreadable, [], "{what} beside SQLite");
            assert_eq!(parsed.packages.len(), 1);
        }
        let parsed = read(&files_of(&["var/lib/rpm/Packages"])).expect("bdb");
        assert_eq!(
            parsed.unreadable[0].reason,
            "an rpm database in the Berkeley DB format, which this scanner does not read (only \
             the SQLite one): none of its packages are listed"
        );
    }
}
