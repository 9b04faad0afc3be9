//! The rpm package database, in the three formats rpm has written: SQLite (current
//! distributions), ndb (SUSE) and Berkeley DB (RHEL and its rebuilds up to 8, CentOS 7,
//! Amazon Linux 2). Each stores one header blob per package ([`header`]); the formats differ
//! only in how they find the blobs, so each file here reads one format and hands its blobs
//! to the same header parser.
//!
//! Every offset and count of a header is checked against the blob: a hostile header is an
//! error for that package (skipped with a warning and recorded as unreadable, like the other
//! databases), never a panic or an allocation its counts ask for. The same holds for the
//! pages, slots and blobs of each format around the headers.

use std::fmt::Display;

use super::{FileSource, Package, Parsed};
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
pub const SQLITE_PATHS: [&str; 2] = [
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];

/// Where SUSE keeps the ndb database (`var/lib/rpm` is a link to `usr/lib/sysimage/rpm`).
pub const NDB_PATHS: [&str; 2] = [
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages.db",
];

/// Where the Berkeley DB database is kept (SUSE had it in `usr/lib/sysimage/rpm`).
pub const BDB_PATHS: [&str; 2] = ["var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages"];

/// The formats in the order they are preferred. An image has more than one when rpm
/// converted its database (a newer rpm in a later layer, `rpmdb --rebuilddb`) and left the
/// old file behind; rpm then reads only the newer one, so the first format found is read and
/// the others are leftovers, neither read nor reported: SQLite, then ndb, then Berkeley DB.
const FORMATS: [Format; 3] = [Format::Sqlite, Format::Ndb, Format::Bdb];

#[derive(Clone, Copy, Debug)]
enum Format {
    Sqlite,
    Ndb,
    Bdb,
}

impl Format {
    fn paths(self) -> [&'static str; 2] {
        match self {
            Format::Sqlite => SQLITE_PATHS,
            Format::Ndb => NDB_PATHS,
            Format::Bdb => BDB_PATHS,
        }
    }

    fn parse(self, files: &dyn FileSource, path: &str, db: &[u8]) -> Result<Parsed, Error> {
        match self {
            Format::Sqlite => {
                let wal = files.get(&format!("{path}{WAL_SUFFIX}"));
                parse_sqlite(path, db, wal)
            }
            Format::Ndb => parse_ndb(path, db),
            Format::Bdb => parse_bdb(path, db),
        }
    }
}

/// The packages of the image's rpm database, in the preferred format it has ([`FORMATS`]).
/// Both locations of a format may exist (one a link to the other is resolved by the file
/// source); a path that has no file is skipped.
pub fn read(files: &dyn FileSource) -> Result<Parsed, Error> {
    for format in FORMATS {
        let mut parsed = Parsed::default();
        let mut seen: Vec<&[u8]> = Vec::new();
        for path in format.paths() {
            let Some(db) = files.get(path) else { continue };
            // `var/lib/rpm` is usually a link to `usr/lib/sysimage/rpm`: read the content once.
            if seen.contains(&db) {
                continue;
            }
            seen.push(db);
            parsed.extend(format.parse(files, path, db)?);
        }
        if !seen.is_empty() {
            return Ok(parsed);
        }
    }
    Ok(Parsed::default())
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
    fn the_newest_format_is_read_and_the_others_left() {
        use crate::inventory::Files;
        let blob = |name: &str| package(name, "1", "1", None, &format!("{name}-1-1.src.rpm"));
        let sqlite = sqlite::tests::rpmdb(&[blob("from-sqlite")]);
        let key = 1u32.to_le_bytes();
        let bdb =
            bdb::tests::hand_built(bdb::ByteOrder::Little, 4096, &[(&key, &blob("from-bdb"))]);
        // Junk where a format must not be read: reading it would fail the inventory.
        let junk = b"junk".to_vec();
        type Case<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, Result<&'a str, &'a str>);
        let table: Vec<Case> = vec![
            ("none", vec![], Ok("")),
            (
                "SQLite before ndb and Berkeley DB",
                vec![
                    (SQLITE_PATHS[1], sqlite.clone()),
                    (NDB_PATHS[1], junk.clone()),
                    (BDB_PATHS[0], junk.clone()),
                ],
                Ok("from-sqlite usr/lib/sysimage/rpm/rpmdb.sqlite"),
            ),
            (
                "ndb before Berkeley DB",
                vec![(NDB_PATHS[0], junk.clone()), (BDB_PATHS[0], bdb.clone())],
                Err("var/lib/rpm/Packages.db: is 4 bytes, shorter than an ndb database header"),
            ),
            (
                "Berkeley DB alone",
                vec![(BDB_PATHS[0], bdb.clone())],
                Ok("from-bdb var/lib/rpm/Packages"),
            ),
            (
                "Berkeley DB reached by both paths",
                vec![(BDB_PATHS[0], bdb.clone()), (BDB_PATHS[1], bdb.clone())],
                Ok("from-bdb var/lib/rpm/Packages"),
            ),
            (
                "a damaged SQLite database is not passed over",
                vec![(SQLITE_PATHS[0], junk.clone()), (BDB_PATHS[0], bdb.clone())],
                Err("var/lib/rpm/rpmdb.sqlite: not a SQLite database"),
            ),
        ];
        for (what, paths, want) in table {
            let mut files = Files::new();
            for (path, content) in paths {
                files.insert(path, content);
            }
            match (read(&files), want) {
                (Ok(parsed), Ok(want)) => {
                    let got: Vec<String> = parsed
                        .packages
                        .iter()
                        .map(|p| format!("{} {}", p.name, p.location))
                        .collect();
                    assert_eq!(got.join(","), want, "{what}");
                    assert_eq!(parsed.unreadable, [], "{what}");
                }
                (Err(err), Err(want)) => {
                    assert!(err.to_string().starts_with(want), "{what}: {err}");
                }
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }
}
