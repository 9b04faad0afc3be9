//! The rpm database of SUSE (SLES and openSUSE Leap 15, Tumbleweed until its move to SQLite):
//! `Packages.db` in rpm's own "ndb" format.
//!
//! The file is little-endian and counted in 16-byte blocks. It starts with a 32-byte header
//! (magic `RpmP`, version 0, generation, number of slot pages, next package number), which
//! shares the first 4096-byte slot page with the slots that follow it. Each 16-byte slot
//! (magic `Slot`, package number, first block, block count) points at one blob: a head
//! (magic `BlbS`, package number, timestamp, length), the package's header blob, zero padding,
//! and a tail (checksum, length, magic `BlbE`) ending the last block. A slot whose first block
//! is 0 is free.
//!
//! Every slot and blob is checked against the file before it is read; slots are a fixed
//! table, so reading them cannot loop. As rpm does when it reads a package, the tail's
//! length and magic are checked, not its checksum.

use std::collections::BTreeSet;

use super::{Headers, db_error};
use crate::Error;
use crate::inventory::Parsed;

const MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const BLOB_HEAD_MAGIC: &[u8; 4] = b"BlbS";
const BLOB_TAIL_MAGIC: &[u8; 4] = b"BlbE";
const VERSION: u32 = 0;
const HEADER_SIZE: usize = 32;
const SLOT_SIZE: usize = 16;
const BLOCK_SIZE: u64 = 16;
const SLOT_PAGE_SIZE: usize = 4096;
const BLOB_HEAD_SIZE: u64 = 16;
const BLOB_TAIL_SIZE: u64 = 12;

/// Parse rpm's ndb `Packages.db` file.
pub fn parse_ndb(path: &str, db: &[u8]) -> Result<Parsed, Error> {
    let slot_pages = slot_pages(db).map_err(|reason| db_error(path, reason))?;
    let slot_area = db.get(..slot_pages * SLOT_PAGE_SIZE).unwrap_or_default();
    let mut headers = Headers::new(path);
    let mut numbers = BTreeSet::new();
    // The header takes the place of the first two slots.
    for (i, slot) in slot_area
        .chunks_exact(SLOT_SIZE)
        .enumerate()
        .skip(HEADER_SIZE / SLOT_SIZE)
    {
        match read_slot(db, slot_pages, slot) {
            Ok(None) => {}
            Ok(Some((number, _))) if !numbers.insert(number) => {
                headers.problem(format!("slot {i}: package {number} has another slot too"));
            }
            Ok(Some((number, blob))) => headers.add(number, blob),
            Err(reason) => headers.problem(format!("slot {i}: {reason}")),
        }
    }
    headers.finish()
}

/// The number of slot pages the header declares, checked against the file.
fn slot_pages(db: &[u8]) -> Result<usize, String> {
    let header = db.get(..HEADER_SIZE).ok_or_else(|| {
        format!(
            "is {} bytes, shorter than an ndb database header ({HEADER_SIZE})",
            db.len()
        )
    })?;
    if !header.starts_with(MAGIC) {
        return Err("not an ndb package database (no RpmP magic)".into());
    }
    let version = le32(header, 4);
    if version != VERSION {
        return Err(format!(
            "ndb version {version}, not one this scanner reads ({VERSION})"
        ));
    }
    let pages = le32(header, 12);
    let fits = db.len() / SLOT_PAGE_SIZE;
    if pages == 0 || pages as usize > fits {
        return Err(format!(
            "declares {pages} slot pages; the file has room for {fits}"
        ));
    }
    Ok(pages as usize)
}

/// The package number and header blob a slot points at, or `None` for a free slot.
fn read_slot<'a>(
    db: &'a [u8],
    slot_pages: usize,
    slot: &[u8],
) -> Result<Option<(u32, &'a [u8])>, String> {
    if !slot.starts_with(SLOT_MAGIC) {
        return Err("no Slot magic".into());
    }
    let (number, first, blocks) = (le32(slot, 4), le32(slot, 8), le32(slot, 12));
    if first == 0 {
        return Ok(None);
    }
    if number == 0 || blocks == 0 {
        return Err(format!(
            "package {number} in {blocks} blocks: neither may be 0"
        ));
    }
    // Blobs follow the slot pages; all of it within the file. u64: no overflow.
    let start = u64::from(first) * BLOCK_SIZE;
    let end = start + u64::from(blocks) * BLOCK_SIZE;
    if start < (slot_pages * SLOT_PAGE_SIZE) as u64 || end > db.len() as u64 {
        return Err(format!(
            "its blob at bytes {start}..{end} is outside the blob area of a {}-byte file",
            db.len()
        ));
    }
    let blob = db.get(start as usize..end as usize).unwrap_or_default();
    if !blob.starts_with(BLOB_HEAD_MAGIC) {
        return Err(format!("no blob (BlbS magic) at byte {start}"));
    }
    let owner = le32(blob, 4);
    if owner != number {
        return Err(format!(
            "the blob at byte {start} belongs to package {owner}, not {number}"
        ));
    }
    let len = u64::from(le32(blob, 12));
    // The blob fills its blocks: head, data, padding to the block, tail.
    let needed = (BLOB_HEAD_SIZE + len + BLOB_TAIL_SIZE).div_ceil(BLOCK_SIZE);
    if needed != u64::from(blocks) {
        return Err(format!(
            "its blob declares {len} bytes, which take {needed} blocks, not {blocks}"
        ));
    }
    let tail = blob
        .get(blob.len() - BLOB_TAIL_SIZE as usize..)
        .unwrap_or_default();
    if u64::from(le32(tail, 4)) != len || !tail.ends_with(BLOB_TAIL_MAGIC) {
        return Err(format!(
            "the blob at byte {start} has no matching tail (torn write?)"
        ));
    }
    let data = blob
        .get(BLOB_HEAD_SIZE as usize..(BLOB_HEAD_SIZE + len) as usize)
        .unwrap_or_default();
    Ok(Some((number, data)))
}

/// A little-endian word; 0 past the end (callers have checked the length).
fn le32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the header: slots and blobs are tested on databases that
    /// `tests/inventory_real.rs` writes around real rpm headers.
    #[test]
    fn bad_headers_are_errors() {
        let header = |magic: &[u8; 4], version: u32, pages: u32, len: usize| {
            let mut db = vec![0; len];
            if len >= HEADER_SIZE {
                db[..4].copy_from_slice(magic);
                db[4..8].copy_from_slice(&version.to_le_bytes());
                db[12..16].copy_from_slice(&pages.to_le_bytes());
            }
            db
        };
        let table: &[(&str, Vec<u8>, &str)] = &[
            (
                "empty",
                vec![],
                "is 0 bytes, shorter than an ndb database header",
            ),
            ("truncated", header(MAGIC, 0, 1, 20), "is 20 bytes"),
            ("magic", header(b"RpmI", 0, 1, 4096), "no RpmP magic"),
            ("version", header(MAGIC, 7, 1, 4096), "ndb version 7"),
            (
                "no slot page",
                header(MAGIC, 0, 0, 4096),
                "declares 0 slot pages",
            ),
            (
                "slot pages past the end",
                header(MAGIC, 0, 2, 4096 + 100),
                "declares 2 slot pages; the file has room for 1",
            ),
            (
                "huge slot pages",
                header(MAGIC, 0, u32::MAX, 4096),
                "declares 4294967295 slot pages",
            ),
        ];
        for (what, db, want) in table {
            let err = parse_ndb("usr/lib/sysimage/rpm/Packages.db", db)
                .expect_err(what)
                .to_string();
            assert!(
                err.starts_with("usr/lib/sysimage/rpm/Packages.db: "),
                "{what}: {err}"
            );
            assert!(err.contains(want), "{what}: {err}");
        }

        // A valid header over free slots: an empty database.
        let mut db = header(MAGIC, 0, 1, 4096);
        for slot in db[HEADER_SIZE..].chunks_exact_mut(SLOT_SIZE) {
            slot[..4].copy_from_slice(SLOT_MAGIC);
        }
        let parsed = parse_ndb("usr/lib/sysimage/rpm/Packages.db", &db).expect("empty");
        assert!(parsed.packages.is_empty());
        // A slot without its magic is an unreadable record.
        db[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(b"junk");
        let err = parse_ndb("usr/lib/sysimage/rpm/Packages.db", &db).expect_err("bad slot");
        assert!(err.to_string().contains("slot 2: no Slot magic"), "{err}");
    }
}
