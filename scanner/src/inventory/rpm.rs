//! The rpm database of current distributions (RHEL/Rocky/Alma 9, Fedora 33+, SUSE, Amazon
//! Linux 2023): SQLite, with one rpm header blob per package in table `Packages`.
//!
//! The database is opened from memory (`sqlite3_deserialize`), never from the image's files.
//! rpm keeps it in WAL mode; the memory VFS cannot open WAL databases, so the copy is marked
//! as a rollback-journal database (header bytes 18 and 19), which changes nothing else. rpm
//! checkpoints on close, so images normally ship an empty or no `rpmdb.sqlite-wal`. When an
//! image does ship one with committed frames (a layer built while rpm was killed), they are
//! applied to the copy first, as SQLite would on open; frames after the last valid commit are
//! ignored, as SQLite does.
//!
//! Every offset and count of a header is checked against the blob: a hostile header is an
//! error for that package (skipped with a warning and recorded as unreadable, like the other
//! databases), never a panic
//! or an allocation its counts ask for. Older Berkeley DB (`Packages`: RHEL and its rebuilds
//! up to 8, CentOS 7) and ndb (`Packages.db`: SUSE) databases are not read; an image that
//! has one and no SQLite database gets it recorded as unreadable, since its packages are
//! missing from the inventory.

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::{FileSource, Package, PackageKind, Parsed, Unreadable};
use crate::Error;

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

/// The suffix of SQLite's write-ahead log beside a database.
pub const WAL_SUFFIX: &str = "-wal";

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

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

/// Parse an rpm SQLite database (with its write-ahead log, if the image has one).
pub fn parse_sqlite(path: &str, db: &[u8], wal: Option<&[u8]>) -> Result<Parsed, Error> {
    if db.len() < 100 || !db.starts_with(SQLITE_MAGIC) {
        return Err(db_error(path, "not a SQLite database (no SQLite header)"));
    }
    let mut image = db.to_vec();
    if let Some(wal) = wal.filter(|w| !w.is_empty()) {
        apply_wal(&mut image, wal).map_err(|reason| db_error(path, reason))?;
    }
    // Bytes 18 and 19 (read and write format version) are 2 for WAL; 1 is a rollback journal.
    if let Some(versions) = image.get_mut(18..20) {
        versions.copy_from_slice(&[1, 1]);
    }
    let conn =
        open(&image).map_err(|e| db_error(path, format!("not a readable SQLite database: {e}")))?;
    let mut statement = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| {
            db_error(
                path,
                format!("no readable Packages table (is this an rpm database?): {e}"),
            )
        })?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(|e| db_error(path, format!("reading table Packages: {e}")))?;

    let mut packages = Vec::new();
    let mut problems = 0usize;
    let mut first_problem: Option<String> = None;
    for row in rows {
        let (hnum, blob) =
            row.map_err(|e| db_error(path, format!("reading table Packages: {e}")))?;
        match parse_header(&blob) {
            Ok(header) => {
                if let Some(package) = header.into_package(path) {
                    packages.push(package);
                }
            }
            Err(reason) => {
                let reason = format!("package header {hnum}: {reason}");
                tracing::warn!(path, %reason, "skipping an unreadable rpm header");
                problems += 1;
                first_problem.get_or_insert(reason);
            }
        }
    }
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

/// A read-only in-memory connection over a copy of the database.
fn open(image: &[u8]) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.deserialize_read_exact(MAIN_DB, image, image.len(), true)?;
    // Corrupt databases must fail with an error; never let SQLite trust a hostile schema.
    conn.execute_batch("PRAGMA trusted_schema = OFF; PRAGMA query_only = ON;")?;
    Ok(conn)
}

/// Apply the committed frames of a write-ahead log to a copy of its database.
fn apply_wal(image: &mut Vec<u8>, wal: &[u8]) -> Result<(), String> {
    let bad = |what: &str| format!("its write-ahead log ({WAL_SUFFIX}) {what}");
    let header = wal
        .get(..32)
        .ok_or_else(|| bad("is shorter than its header"))?;
    let word = |b: &[u8], at: usize| -> u32 {
        b.get(at..at + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, u32::from_be_bytes)
    };
    let magic = word(header, 0);
    let big_endian = match magic {
        0x377f_0682 => false,
        0x377f_0683 => true,
        _ => return Err(bad("has no write-ahead log header")),
    };
    let page_size = usize::try_from(word(header, 8)).map_err(|_| bad("has a bad page size"))?;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(bad("has a bad page size"));
    }
    let db_page_size = match image.get(16..18).and_then(|b| <[u8; 2]>::try_from(b).ok()) {
        Some([0, 1]) => 65536,
        Some(b) => usize::from(u16::from_be_bytes(b)),
        None => 0,
    };
    if db_page_size != page_size {
        // A log of another database generation; SQLite ignores it too.
        tracing::warn!("rpm database write-ahead log has another page size; ignoring it");
        return Ok(());
    }
    let salts = (word(header, 16), word(header, 20));
    let mut sum = checksum((0, 0), header.get(..24).unwrap_or_default(), big_endian);
    if sum != (word(header, 24), word(header, 28)) {
        // SQLite treats a log with a bad header checksum as empty.
        return Ok(());
    }

    let mut pending: Vec<(usize, &[u8])> = Vec::new();
    let mut committed: Vec<(usize, &[u8])> = Vec::new();
    let mut committed_pages: Option<usize> = None;
    let mut frames = wal
        .get(32..)
        .unwrap_or_default()
        .chunks_exact(24 + page_size);
    for frame in frames.by_ref() {
        let (frame_header, page) = frame.split_at(24);
        if (word(frame_header, 8), word(frame_header, 12)) != salts {
            break;
        }
        sum = checksum(sum, frame_header.get(..8).unwrap_or_default(), big_endian);
        sum = checksum(sum, page, big_endian);
        if sum != (word(frame_header, 16), word(frame_header, 20)) {
            break;
        }
        let page_number = usize::try_from(word(frame_header, 0)).unwrap_or(0);
        if page_number == 0 {
            break;
        }
        pending.push((page_number, page));
        let commit_size = word(frame_header, 4);
        if commit_size != 0 {
            committed.append(&mut pending);
            committed_pages = usize::try_from(commit_size).ok();
        }
    }
    let Some(pages) = committed_pages else {
        return Ok(());
    };
    // The database never grows beyond the log's own bytes plus the original file.
    let new_len = pages
        .checked_mul(page_size)
        .filter(|len| *len <= image.len().saturating_add(wal.len()))
        .ok_or_else(|| bad("declares more pages than it holds"))?;
    image.resize(new_len, 0);
    for (page_number, page) in committed {
        let range = (page_number - 1)
            .checked_mul(page_size)
            .and_then(|start| Some(start..start.checked_add(page_size)?));
        // Pages beyond the committed size were truncated away by that commit.
        if let Some(target) = range.and_then(|r| image.get_mut(r)) {
            target.copy_from_slice(page);
        }
    }
    Ok(())
}

/// SQLite's WAL checksum, continued from `(s0, s1)` over `data` (a multiple of 8 bytes).
fn checksum((mut s0, mut s1): (u32, u32), data: &[u8], big_endian: bool) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let (a, b) = pair.split_at(4);
        let read = |x: &[u8]| {
            let bytes = <[u8; 4]>::try_from(x).unwrap_or_default();
            if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        };
        s0 = s0.wrapping_add(read(a)).wrapping_add(s1);
        s1 = s1.wrapping_add(read(b)).wrapping_add(s0);
    }
    (s0, s1)
}

/// The tags of an rpm header this inventory reads.
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own limits (`hdrchk`): at most 64 Ki entries and 256 MiB of data per header.
const MAX_ENTRIES: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

/// What the inventory needs from one rpm header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: Option<String>,
    /// `openssl-3.0.7-24.el9.src.rpm`.
    pub source_rpm: Option<String>,
}

impl Header {
    /// The package, or `None` for the `gpg-pubkey` pseudo packages rpm keeps imported keys in.
    fn into_package(self, path: &str) -> Option<Package> {
        if self.name == "gpg-pubkey" {
            return None;
        }
        let version = self.evr();
        let (source_name, source_version) =
            match self.source_rpm.as_deref().and_then(split_source_rpm) {
                Some((name, version)) => (Some(name), Some(version)),
                None => (None, None),
            };
        Some(Package {
            kind: PackageKind::Rpm,
            name: self.name,
            version,
            source_name,
            source_version,
            arch: self.arch,
            location: path.to_string(),
        })
    }

    /// `[epoch:]version-release`, as rpm's `%{EVR}` prints it.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }
}

/// `openssl-3.0.7-24.el9.src.rpm` → (`openssl`, `3.0.7-24.el9`). The source rpm's name
/// carries no epoch.
pub fn split_source_rpm(file: &str) -> Option<(String, String)> {
    let nvr = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (name_version, _release) = nvr.rsplit_once('-')?;
    let (name, _version) = name_version.rsplit_once('-')?;
    if name.is_empty() {
        return None;
    }
    let version_release = nvr.get(name.len() + 1..)?;
    Some((name.to_string(), version_release.to_string()))
}

/// Parse an rpm header blob as the database stores it: big-endian entry count and data
/// length, 16-byte entries (tag, type, offset, count), then the data store.
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    let be32 = |at: usize| -> Option<u32> {
        let bytes = blob.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes(<[u8; 4]>::try_from(bytes).ok()?))
    };
    let entries = be32(0).ok_or("shorter than a header preamble")?;
    let data_len = be32(4).ok_or("shorter than a header preamble")?;
    if entries == 0 || entries > MAX_ENTRIES {
        return Err(format!(
            "has {entries} entries (at most {MAX_ENTRIES} allowed)"
        ));
    }
    if data_len > MAX_DATA {
        return Err(format!(
            "declares {data_len} bytes of data (at most {MAX_DATA} allowed)"
        ));
    }
    // Both factors are bounded above, so this cannot overflow even on 32-bit targets.
    let index_len = entries as usize * 16;
    let data_start = 8 + index_len;
    let data_end = data_start + data_len as usize;
    let data = blob.get(data_start..data_end).ok_or_else(|| {
        format!(
            "is {} bytes but its {entries} entries and {data_len} bytes of data need {data_end}",
            blob.len()
        )
    })?;

    let find = |tag: u32| -> Option<(u32, usize, u32)> {
        (0..index_len / 16).find_map(|i| {
            let at = 8 + i * 16;
            (be32(at)? == tag).then_some(())?;
            Some((be32(at + 4)?, be32(at + 8)? as usize, be32(at + 12)?))
        })
    };
    let string = |tag: u32, tag_name: &str| -> Result<Option<String>, String> {
        let Some((kind, offset, count)) = find(tag) else {
            return Ok(None);
        };
        if kind != TYPE_STRING && kind != TYPE_I18NSTRING {
            return Err(format!("{tag_name} has type {kind}, not a string"));
        }
        if count == 0 {
            return Err(format!("{tag_name} has no value"));
        }
        let rest = data.get(offset..).ok_or_else(|| {
            format!("{tag_name} points outside the header data ({offset} > {data_len})")
        })?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| format!("{tag_name} is not terminated"))?;
        let bytes = rest.get(..end).unwrap_or_default();
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    };
    let required = |tag: u32, tag_name: &str| -> Result<String, String> {
        string(tag, tag_name)?.ok_or_else(|| format!("has no {tag_name} tag"))
    };
    let epoch = match find(TAG_EPOCH) {
        None => None,
        Some((TYPE_INT32, offset, count)) if count >= 1 => {
            let bytes = data.get(offset..offset.saturating_add(4)).ok_or_else(|| {
                format!("EPOCH points outside the header data ({offset} > {data_len})")
            })?;
            Some(u32::from_be_bytes(
                <[u8; 4]>::try_from(bytes).map_err(|_| "EPOCH is truncated")?,
            ))
        }
        Some((kind, _, count)) => {
            return Err(format!(
                "EPOCH has type {kind} and count {count}, not one int32"
            ));
        }
    };
    Ok(Header {
        name: required(TAG_NAME, "NAME")?,
        version: required(TAG_VERSION, "VERSION")?,
        release: required(TAG_RELEASE, "RELEASE")?,
        epoch,
        arch: string(TAG_ARCH, "ARCH")?,
        source_rpm: string(TAG_SOURCERPM, "SOURCERPM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob from (tag, type, count, data) entries, laid out as rpm does.
    fn header(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, count, bytes) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            for word in [*tag, *kind, data.len() as u32, *count] {
                index.extend_from_slice(&word.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    fn s(tag: u32, value: &str) -> (u32, u32, u32, Vec<u8>) {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        (tag, TYPE_STRING, 1, bytes)
    }

    fn package(
        name: &str,
        version: &str,
        release: &str,
        epoch: Option<u32>,
        srpm: &str,
    ) -> Vec<u8> {
        let mut entries = vec![
            s(TAG_NAME, name),
            s(TAG_VERSION, version),
            s(TAG_RELEASE, release),
            s(TAG_ARCH, "x86_64"),
            s(TAG_SOURCERPM, srpm),
        ];
        if let Some(epoch) = epoch {
            entries.push((TAG_EPOCH, TYPE_INT32, 1, epoch.to_be_bytes().to_vec()));
        }
        header(&entries)
    }

    /// An rpm-like SQLite database (WAL mode in its header, as rpm leaves it).
    fn rpmdb(blobs: &[Vec<u8>]) -> Vec<u8> {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
             CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL);",
        )
        .expect("schema");
        for blob in blobs {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .expect("insert");
        }
        let mut conn = conn;
        let mut bytes = conn.serialize(MAIN_DB).expect("serialize").to_vec();
        bytes[18] = 2;
        bytes[19] = 2;
        bytes
    }

    #[test]
    fn header_fields_and_evr() {
        let blob = package(
            "openssl-libs",
            "3.0.7",
            "24.el9",
            Some(1),
            "openssl-3.0.7-24.el9.src.rpm",
        );
        let h = parse_header(&blob).expect("header");
        assert_eq!(h.name, "openssl-libs");
        assert_eq!(h.evr(), "1:3.0.7-24.el9");
        assert_eq!(h.arch.as_deref(), Some("x86_64"));
        let p = h.into_package("var/lib/rpm/rpmdb.sqlite").expect("package");
        assert_eq!(p.source_name.as_deref(), Some("openssl"));
        assert_eq!(p.source_version.as_deref(), Some("3.0.7-24.el9"));
        assert_eq!(p.kind, PackageKind::Rpm);

        let h = parse_header(&package(
            "bash",
            "5.1.8",
            "9.el9",
            None,
            "bash-5.1.8-9.el9.src.rpm",
        ))
        .expect("header");
        assert_eq!(h.evr(), "5.1.8-9.el9");
        // An i18n string (SUMMARY-like) type is accepted for string tags.
        let blob = header(&[
            (TAG_NAME, TYPE_I18NSTRING, 1, b"x\0".to_vec()),
            s(TAG_VERSION, "1"),
            s(TAG_RELEASE, "1"),
        ]);
        assert_eq!(parse_header(&blob).expect("header").name, "x");
    }

    #[test]
    fn source_rpm_names() {
        let table: &[(&str, Option<(&str, &str)>)] = &[
            (
                "openssl-3.0.7-24.el9.src.rpm",
                Some(("openssl", "3.0.7-24.el9")),
            ),
            (
                "python3.11-3.11.7-1.el9.src.rpm",
                Some(("python3.11", "3.11.7-1.el9")),
            ),
            (
                "glibc-2.34-100.el9_4.2.src.rpm",
                Some(("glibc", "2.34-100.el9_4.2")),
            ),
            (
                "kernel-rt-5.14.0-1.nosrc.rpm",
                Some(("kernel-rt", "5.14.0-1")),
            ),
            ("noversion.src.rpm", None),
            ("-1-2.src.rpm", None),
            ("openssl-3.0.7-24.el9.rpm", None),
            ("", None),
        ];
        for (file, want) in table {
            let got = split_source_rpm(file);
            let want = want.map(|(n, v)| (n.to_string(), v.to_string()));
            assert_eq!(got, want, "{file}");
        }
    }

    #[test]
    fn hostile_headers_are_errors() {
        let good = package("a", "1", "1", Some(2), "a-1-1.src.rpm");
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut huge_data = good.clone();
        huge_data[4..8].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        let mut bad_offset = good.clone();
        // NAME's offset (first entry, bytes 16..20) far past the data.
        bad_offset[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let mut unterminated = header(&[(TAG_NAME, TYPE_STRING, 1, b"abc".to_vec())]);
        unterminated.truncate(unterminated.len());
        let wrong_type = header(&[(TAG_NAME, TYPE_INT32, 1, vec![0, 0, 0, 1])]);
        let bad_epoch = header(&[
            s(TAG_NAME, "a"),
            s(TAG_VERSION, "1"),
            s(TAG_RELEASE, "1"),
            (TAG_EPOCH, TYPE_STRING, 1, b"1\0".to_vec()),
        ]);
        let cases: &[(&str, Vec<u8>, &str)] = &[
            ("empty", vec![], "shorter than a header preamble"),
            (
                "preamble only",
                vec![0, 0, 0, 1],
                "shorter than a header preamble",
            ),
            ("no entries", vec![0; 8], "has 0 entries"),
            ("huge count", huge_count, "entries (at most 65535"),
            ("huge data", huge_data, "bytes of data (at most"),
            ("truncated", good[..good.len() - 3].to_vec(), "need"),
            ("offset", bad_offset, "NAME points outside the header data"),
            ("unterminated", unterminated, "NAME is not terminated"),
            ("wrong type", wrong_type, "NAME has type 4"),
            (
                "no version",
                header(&[s(TAG_NAME, "a")]),
                "has no VERSION tag",
            ),
            ("bad epoch", bad_epoch, "EPOCH has type 6"),
        ];
        for (what, blob, want) in cases {
            let err = parse_header(blob).expect_err(what);
            assert!(err.contains(want), "{what}: {err}");
        }
    }

    #[test]
    fn sqlite_database_in_wal_mode() {
        let db = rpmdb(&[
            package(
                "openssl-libs",
                "3.0.7",
                "24.el9",
                Some(1),
                "openssl-3.0.7-24.el9.src.rpm",
            ),
            package("gpg-pubkey", "fd431d51", "4ae0493b", None, ""),
            package("bash", "5.1.8", "9.el9", None, "bash-5.1.8-9.el9.src.rpm"),
            vec![1, 2, 3],
        ]);
        let parsed = parse_sqlite("var/lib/rpm/rpmdb.sqlite", &db, Some(b"")).expect("rpmdb");
        let got: Vec<_> = parsed
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [("openssl-libs", "1:3.0.7-24.el9"), ("bash", "5.1.8-9.el9")]
        );
        // The junk header is skipped, and the inventory says so.
        assert_eq!(parsed.unreadable.len(), 1);
        assert_eq!(parsed.unreadable[0].path, "var/lib/rpm/rpmdb.sqlite");
        assert!(
            parsed.unreadable[0]
                .reason
                .starts_with("1 unreadable package header(s) skipped (first: package header 4: "),
            "{:?}",
            parsed.unreadable
        );
    }

    #[test]
    fn sqlite_errors() {
        let path = "var/lib/rpm/rpmdb.sqlite";
        let err = parse_sqlite(path, b"\x7fELF junk", None).expect_err("junk");
        assert_eq!(
            err.to_string(),
            "var/lib/rpm/rpmdb.sqlite: not a SQLite database (no SQLite header)"
        );

        let mut corrupt = rpmdb(&[package("a", "1", "1", None, "a-1-1.src.rpm")]);
        let len = corrupt.len();
        corrupt[100..len].fill(0xa5);
        let err = parse_sqlite(path, &corrupt, None).expect_err("corrupt");
        assert!(err.to_string().contains(path), "{err}");

        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE Other (x)")
            .expect("schema");
        let mut conn = conn;
        let other = conn.serialize(MAIN_DB).expect("serialize").to_vec();
        let err = parse_sqlite(path, &other, None).expect_err("no table");
        assert!(
            err.to_string().contains("no readable Packages table"),
            "{err}"
        );

        let only_bad = rpmdb(&[vec![0, 0, 0, 1, 0, 0, 0, 0]]);
        let err = parse_sqlite(path, &only_bad, None).expect_err("all bad");
        assert!(
            err.to_string().contains("package header 1: is 8 bytes"),
            "{err}"
        );
    }

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
        let sqlite = rpmdb(&[package("a", "1", "1", None, "a-1-1.src.rpm")]);
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

    #[test]
    fn committed_wal_frames_are_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rpmdb.sqlite");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
        )
        .expect("schema");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
        let blob = package(
            "zlib",
            "1.2.11",
            "40.el9",
            None,
            "zlib-1.2.11-40.el9.src.rpm",
        );
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [&blob])
            .expect("insert");
        // Read the files while the connection is open: the insert is only in the log.
        let db = std::fs::read(&path).expect("db");
        let wal = std::fs::read(dir.path().join("rpmdb.sqlite-wal")).expect("wal");
        assert!(wal.len() > 32, "the insert is in the log");
        let rpm_path = "var/lib/rpm/rpmdb.sqlite";
        let without = parse_sqlite(rpm_path, &db, None).expect("main file alone");
        assert!(without.packages.is_empty());
        let with = parse_sqlite(rpm_path, &db, Some(&wal))
            .expect("with log")
            .packages;
        assert_eq!(with.len(), 1);
        assert_eq!(with[0].name, "zlib");

        // A torn last frame (bad checksum) is ignored, as SQLite does: nothing committed.
        let mut torn = wal.clone();
        let last = torn.len() - 1;
        torn[last] ^= 0xff;
        let torn_result = parse_sqlite(rpm_path, &db, Some(&torn)).expect("torn log");
        assert!(torn_result.packages.is_empty());
        // A log that is not one is an error that names it.
        let err = parse_sqlite(rpm_path, &db, Some(b"short")).expect_err("bad log");
        assert!(err.to_string().contains("write-ahead log"), "{err}");
        drop(conn);
    }
}
