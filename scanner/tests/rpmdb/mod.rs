//! rpm databases for tests, in every format rpm has written, around real header blobs: the
//! packages are built with Debian's `rpmbuild` and installed with `rpm` into a SQLite
//! database, whose header blobs are then stored in a Berkeley DB hash database by Berkeley
//! DB's own `db5.3_load`, or in an ndb database by [`write_ndb`].
//!
//! Debian's rpm reads SQLite and, read-only, Berkeley DB (its `bdb_ro` backend), so a
//! Berkeley DB fixture is checked with `rpm -qa` too; it has no ndb backend (`rpm
//! --define '_db_backend ndb' --initdb` falls back to a dummy database), so [`write_ndb`]
//! writes that format itself, following the layout rpm's `lib/backend/ndb/rpmpkg.c` defines.
//!
//! Shared by several test files, each of which uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run a tool and return its standard output, failing the test with a hint if it is missing.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{program} could not be run ({e}): run `make scan-tools` (hack/scan-tools.sh) to install the scan tools"
            )
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

/// Tiny rpm packages: one plain, one with an epoch and a file, one sub-package whose
/// source rpm has another name.
const SPECS: &[(&str, &str)] = &[
    (
        "palisade-alpha.spec",
        "Name: palisade-alpha\nVersion: 1.2.3\nRelease: 4.el9\nSummary: plain\nLicense: MIT\n\
         BuildArch: noarch\n%description\nplain\n%files\n",
    ),
    (
        "palisade-beta.spec",
        "Name: palisade-beta\nEpoch: 1\nVersion: 2.0\nRelease: 1.fc40\nSummary: epoch\n\
         License: MIT\nBuildArch: noarch\n%description\nepoch\n%install\n\
         mkdir -p %{buildroot}/usr/share/palisade\n\
         echo beta > %{buildroot}/usr/share/palisade/beta\n\
         %files\n/usr/share/palisade/beta\n",
    ),
    (
        "palisade-src.spec",
        "Name: palisade-src\nVersion: 0.9~rc1\nRelease: 7\nSummary: source\nLicense: MIT\n\
         BuildArch: noarch\n%description\nsource\n\
         %package -n libpalisade-gamma\nSummary: sub-package\n\
         %description -n libpalisade-gamma\nsub-package\n%files -n libpalisade-gamma\n",
    ),
];

/// Build the packages and install them into a fresh SQLite rpm database; the database
/// directory.
pub fn build_rpmdb(top: &Path) -> PathBuf {
    // palisade-alpha, palisade-beta, libpalisade-gamma (palisade-src has no %files: no package).
    build_rpmdb_from(top, SPECS, 3)
}

/// As [`build_rpmdb`], from other spec files (name, text), which must give `packages`
/// binary rpms (of any architecture).
pub fn build_rpmdb_from(top: &Path, specs: &[(&str, &str)], packages: usize) -> PathBuf {
    let topdir = format!("_topdir {}", top.display());
    let spec_dir = top.join("SPECS");
    std::fs::create_dir_all(&spec_dir).expect("SPECS");
    for (name, text) in specs {
        let spec = spec_dir.join(name);
        std::fs::write(&spec, text).expect("write spec");
        run(
            "rpmbuild",
            &[
                "-bb",
                "--quiet",
                "--define",
                &topdir,
                spec.to_str().expect("utf-8 path"),
            ],
        );
    }
    let mut rpms: Vec<String> = std::fs::read_dir(top.join("RPMS"))
        .expect("rpmbuild wrote RPMS")
        .flat_map(|arch| std::fs::read_dir(arch.expect("entry").path()).expect("RPMS/ARCH"))
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    rpms.sort();
    assert_eq!(rpms.len(), packages, "{rpms:?}");
    let db = top.join("db");
    let dbpath = db.to_str().expect("utf-8 path");
    run("rpm", &["--dbpath", dbpath, "--initdb"]);
    let mut args = vec![
        "-i",
        "--justdb",
        "--nodeps",
        "--ignoreos",
        "--ignorearch",
        "--nosignature",
        "--dbpath",
        dbpath,
    ];
    args.extend(rpms.iter().map(String::as_str));
    run("rpm", &args);
    db
}

/// A package as `rpm -q` prints it and as the tests compare: name, `epoch:version-release`
/// (epoch 0 when absent), source rpm file, architecture.
pub type Queried = (String, String, String, String);

/// What `rpm -qa` lists from the database in `dbpath`, read with `backend` (`sqlite`, or
/// `bdb_ro` for a Berkeley DB `Packages`), sorted.
pub fn rpm_query(dbpath: &Path, backend: &str) -> Vec<Queried> {
    let backend = format!("_db_backend {backend}");
    let query = run(
        "rpm",
        &[
            "-qa",
            "--dbpath",
            dbpath.to_str().expect("utf-8 path"),
            "--define",
            &backend,
            "--qf",
            "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{SOURCERPM}\\t%{ARCH}\\n",
        ],
    );
    let mut packages: Vec<Queried> = query
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let [name, evr, srpm, arch] = cols[..] else {
                panic!("unexpected rpm -qa line {line:?}");
            };
            (name.into(), evr.into(), srpm.into(), arch.into())
        })
        .collect();
    packages.sort();
    packages
}

/// The inventory's packages in the form [`rpm_query`] gives, sorted.
pub fn as_queried(packages: &[palisade_scanner::inventory::Package]) -> Vec<Queried> {
    let mut got: Vec<Queried> = packages
        .iter()
        .map(|p| {
            // rpm prints an absent epoch as 0 with EPOCHNUM.
            let evr = if p.version.contains(':') {
                p.version.clone()
            } else {
                format!("0:{}", p.version)
            };
            let srpm = format!(
                "{}-{}.src.rpm",
                p.source_name.as_deref().expect("source name"),
                p.source_version.as_deref().expect("source version")
            );
            (
                p.name.clone(),
                evr,
                srpm,
                p.arch.clone().unwrap_or_default(),
            )
        })
        .collect();
    got.sort();
    got
}

/// The header blobs of a SQLite rpm database, by package number.
pub fn header_blobs(dbpath: &Path) -> Vec<(u32, Vec<u8>)> {
    let conn = rusqlite::Connection::open(dbpath.join("rpmdb.sqlite")).expect("open rpmdb");
    let mut statement = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .expect("Packages");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("blobs")
}

/// A Berkeley DB hash database as rpm's `Packages`, written by `db5.3_load`: each package
/// number (in the database's byte order, as rpm stores it) maps to its header blob, and
/// record 0 holds the next package number, as rpm keeps it. The file is `dir/Packages`.
pub fn write_bdb(dir: &Path, headers: &[(u32, Vec<u8>)], layout: BdbLayout) -> Vec<u8> {
    let BdbLayout {
        big_endian,
        page_size,
        checksums,
        fill_factor,
    } = layout;
    let key = |n: u32| {
        hex(&if big_endian {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        })
    };
    let next = headers.iter().map(|(n, _)| n + 1).max().unwrap_or(1);
    // db_load's dump format: a header, then key and value lines of hex bytes.
    let lorder = if big_endian { 4321 } else { 1234 };
    let chksum = u8::from(checksums);
    let mut dump = format!(
        "VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize={page_size}\n\
         db_lorder={lorder}\nchksum={chksum}\n"
    );
    if let Some(fill_factor) = fill_factor {
        dump.push_str(&format!("h_ffactor={fill_factor}\n"));
    }
    dump.push_str("HEADER=END\n");
    dump.push_str(&format!(" {}\n {}\n", key(0), key(next)));
    for (number, blob) in headers {
        dump.push_str(&format!(" {}\n {}\n", key(*number), hex(blob)));
    }
    dump.push_str("DATA=END\n");
    std::fs::create_dir_all(dir).expect("database directory");
    let input = dir.join("Packages.dump");
    std::fs::write(&input, dump).expect("write dump");
    let packages = dir.join("Packages");
    let _ = std::fs::remove_file(&packages);
    run(
        "db5.3_load",
        &[
            "-f",
            input.to_str().expect("utf-8 path"),
            packages.to_str().expect("utf-8 path"),
        ],
    );
    std::fs::remove_file(&input).expect("remove dump");
    std::fs::read(&packages).expect("db5.3_load wrote Packages")
}

/// How `db5.3_load` lays out a database.
#[derive(Clone, Copy, Debug)]
pub struct BdbLayout {
    pub big_endian: bool,
    pub page_size: u32,
    /// Every page carries a checksum (rpm never asks for them).
    pub checksums: bool,
    /// Records per bucket before the table grows; Berkeley DB's default when `None`.
    pub fill_factor: Option<u32>,
}

impl BdbLayout {
    pub fn new(big_endian: bool, page_size: u32) -> Self {
        BdbLayout {
            big_endian,
            page_size,
            checksums: false,
            fill_factor: None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An ndb `Packages.db` holding these header blobs, laid out as rpm's `rpmpkg.c` writes it:
/// a 32-byte header (`RpmP`, version 0, generation, slot pages, next package number) at the
/// start of the first 4096-byte slot page; 16-byte slots (`Slot`, package number, first
/// 16-byte block, block count), free ones with block 0; after the slot pages, one blob per
/// package (`BlbS`, package number, timestamp, length; the header blob; zero padding to the
/// block; adler32 of all before it, length, `BlbE`).
pub fn write_ndb(headers: &[(u32, Vec<u8>)]) -> Vec<u8> {
    const PAGE: usize = 4096;
    const SLOT: usize = 16;
    const BLOCK: usize = 16;
    let slots_per_page = PAGE / SLOT;
    // The header takes the first two slots of the first page.
    let pages = (headers.len() + 2).div_ceil(slots_per_page).max(1);
    let mut slots = Vec::new();
    let mut blobs = Vec::new();
    let blob_start = pages * PAGE;
    for (number, header) in headers {
        let mut blob = Vec::new();
        blob.extend_from_slice(b"BlbS");
        blob.extend_from_slice(&number.to_le_bytes());
        blob.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        blob.extend_from_slice(&(header.len() as u32).to_le_bytes());
        blob.extend_from_slice(header);
        while (blob.len() + 12) % BLOCK != 0 {
            blob.push(0);
        }
        let sum = adler32(&blob);
        blob.extend_from_slice(&sum.to_le_bytes());
        blob.extend_from_slice(&(header.len() as u32).to_le_bytes());
        blob.extend_from_slice(b"BlbE");
        let first = (blob_start + blobs.len()) / BLOCK;
        let mut slot = Vec::new();
        slot.extend_from_slice(b"Slot");
        slot.extend_from_slice(&number.to_le_bytes());
        slot.extend_from_slice(&(first as u32).to_le_bytes());
        slot.extend_from_slice(&((blob.len() / BLOCK) as u32).to_le_bytes());
        slots.push(slot);
        blobs.extend(blob);
    }
    let next = headers.iter().map(|(n, _)| n + 1).max().unwrap_or(1);
    let mut db = Vec::new();
    db.extend_from_slice(b"RpmP");
    db.extend_from_slice(&0u32.to_le_bytes());
    db.extend_from_slice(&(headers.len() as u32 + 1).to_le_bytes());
    db.extend_from_slice(&(pages as u32).to_le_bytes());
    db.extend_from_slice(&next.to_le_bytes());
    db.resize(32, 0);
    for slot in slots {
        db.extend(slot);
    }
    while db.len() < blob_start {
        db.extend_from_slice(b"Slot\0\0\0\0\0\0\0\0\0\0\0\0");
    }
    db.extend(blobs);
    db
}

/// Adler-32 (RFC 1950), the checksum of an ndb blob's tail.
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in bytes {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}
