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

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::{Headers, db_error};
use crate::Error;
use crate::inventory::Parsed;

/// The suffix of SQLite's write-ahead log beside a database.
pub const WAL_SUFFIX: &str = "-wal";

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

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

    let mut headers = Headers::new(path);
    for row in rows {
        let (hnum, blob) =
            row.map_err(|e| db_error(path, format!("reading table Packages: {e}")))?;
        headers.add(hnum, &blob);
    }
    headers.finish()
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::inventory::rpm::header::fixtures::package;

    /// An rpm-like SQLite database (WAL mode in its header, as rpm leaves it).
    pub(in crate::inventory::rpm) fn rpmdb(blobs: &[Vec<u8>]) -> Vec<u8> {
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
