//! The rpm database of RHEL and its rebuilds up to 8, CentOS 7, Amazon Linux 2 and older SUSE:
//! `Packages`, a Berkeley DB hash database mapping a package number (four bytes, in the
//! database's byte order) to the package's header blob.
//!
//! Berkeley DB is not linked: this is a read-only walk of its on-disk hash format. Page 0 is
//! the metadata page (magic, byte order, page size, buckets and where each doubling of the
//! table starts). Each bucket is a chain of hash pages holding key/value items; a value too
//! big for a page is a reference to a chain of overflow pages. Both byte orders are read, as
//! rpm's own read-only backend (`bdb_ro`) does, since an image may come from a big-endian
//! machine.
//!
//! Nothing in the file is trusted: every page number is checked against the file, every
//! length against its page and the file, and each page is visited at most once, so a chain
//! that loops (or two chains that share pages) ends in an error instead of going round.

use std::borrow::Cow;

use super::{Headers, db_error};
use crate::Error;
use crate::inventory::Parsed;

const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
/// Hash format versions: 8 (Berkeley DB before 4.6) to 10 (6.x).
const HASH_VERSIONS: std::ops::RangeInclusive<u32> = 8..=10;
const META_SIZE: usize = 512;
/// Every page starts with this header: lsn, page number, previous and next page, entry
/// count, free-space offset (the data length on an overflow page), level, page type.
const PAGE_HEADER: usize = 26;
/// Pages of a database with checksums carry them (2 unused bytes and a 4-byte sum) between
/// the header and the entries. rpm never turns them on, but `db_load -c chksum=1` does.
const CHECKSUM_SIZE: usize = 6;
/// Metadata flag: pages carry checksums.
const META_CHECKSUM: u8 = 0x01;

/// Page types.
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;

/// Item types on a hash page.
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;

/// Parse rpm's Berkeley DB `Packages` file.
pub fn parse_bdb(path: &str, db: &[u8]) -> Result<Parsed, Error> {
    let hash = HashDb::open(db).map_err(|reason| db_error(path, reason))?;
    let mut headers = Headers::new(path);
    for record in hash.records() {
        match record {
            Ok(Record { key, value }) => match hash.number(&key) {
                // Record 0 is rpm's own: the next package number, not a package.
                Some(0) => {}
                Some(number) => headers.add(number, &value),
                None => headers.problem(format!(
                    "a record whose key has {} bytes, not a 4-byte package number",
                    key.len()
                )),
            },
            Err(reason) => headers.problem(reason),
        }
    }
    headers.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ByteOrder {
    Little,
    Big,
}

/// One key and its value, borrowed from the file unless it spans overflow pages.
#[derive(Debug)]
struct Record<'a> {
    key: Cow<'a, [u8]>,
    value: Cow<'a, [u8]>,
}

/// A Berkeley DB hash database, checked as far as its metadata page goes.
#[derive(Debug)]
struct HashDb<'a> {
    bytes: &'a [u8],
    order: ByteOrder,
    page_size: usize,
    /// Pages the metadata declares that the file holds.
    pages: u32,
    /// Where entries start on a page: after the header (and checksum).
    overhead: usize,
    max_bucket: u32,
    /// For each doubling of the table, what to add to a bucket number to get its first page.
    spares: [u32; 32],
}

impl<'a> HashDb<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let meta = bytes.get(..META_SIZE).ok_or_else(|| {
            format!(
                "is {} bytes, shorter than a Berkeley DB metadata page ({META_SIZE})",
                bytes.len()
            )
        })?;
        let magic = <[u8; 4]>::try_from(&meta[12..16]).unwrap_or_default();
        let order = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
            (HASH_MAGIC, _) => ByteOrder::Little,
            (_, HASH_MAGIC) => ByteOrder::Big,
            (BTREE_MAGIC, _) | (_, BTREE_MAGIC) => {
                return Err(
                    "a Berkeley DB btree database; rpm's Packages is a hash database".into(),
                );
            }
            _ => return Err("not a Berkeley DB hash database (no hash magic number)".into()),
        };
        let word = |at: usize| read_u32(meta, at, order).unwrap_or_default();
        let version = word(16);
        if !HASH_VERSIONS.contains(&version) {
            return Err(format!(
                "Berkeley DB hash version {version}, not one this scanner reads (8 to 10)"
            ));
        }
        let page_size = word(20);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(format!(
                "page size {page_size}; Berkeley DB pages are a power of two from 512 to 65536"
            ));
        }
        let page_size = page_size as usize;
        if meta[24] != 0 {
            return Err("is encrypted".into());
        }
        if meta[25] != P_HASHMETA {
            return Err(format!(
                "page 0 has type {}, not a hash metadata page",
                meta[25]
            ));
        }
        let overhead = if meta[26] & META_CHECKSUM != 0 {
            PAGE_HEADER + CHECKSUM_SIZE
        } else {
            PAGE_HEADER
        };
        let in_file = u32::try_from(bytes.len() / page_size).unwrap_or(u32::MAX);
        // The last page number the metadata records; pages past the file's end are errors
        // when something points at them.
        let pages = word(32).saturating_add(1).min(in_file);
        let max_bucket = word(72);
        if max_bucket >= pages {
            return Err(format!(
                "declares {} buckets, more than the {pages} pages of the file",
                u64::from(max_bucket) + 1
            ));
        }
        let mut spares = [0u32; 32];
        for (i, spare) in spares.iter_mut().enumerate() {
            *spare = word(96 + 4 * i);
        }
        Ok(HashDb {
            bytes,
            order,
            page_size,
            pages,
            overhead,
            max_bucket,
            spares,
        })
    }

    /// A 4-byte key as a number, in the database's byte order.
    fn number(&self, key: &[u8]) -> Option<u32> {
        (key.len() == 4).then(|| read_u32(key, 0, self.order))?
    }

    /// Every record, bucket by bucket. What cannot be read is an error in its place: a
    /// damaged item, or the rest of a bucket after a damaged page.
    fn records(&self) -> Vec<Result<Record<'a>, String>> {
        let mut visited = vec![false; self.pages as usize];
        if let Some(meta) = visited.first_mut() {
            *meta = true;
        }
        let mut records = Vec::new();
        for bucket in 0..=self.max_bucket {
            if let Err(reason) = self.bucket(bucket, &mut visited, &mut records) {
                records.push(Err(format!("bucket {bucket}: {reason}")));
            }
        }
        records
    }

    /// The records of one bucket's chain of pages.
    fn bucket(
        &self,
        bucket: u32,
        visited: &mut [bool],
        records: &mut Vec<Result<Record<'a>, String>>,
    ) -> Result<(), String> {
        // The doubling a bucket belongs to is the bit length of its number.
        let doubling = (u32::BITS - bucket.leading_zeros()) as usize;
        let mut pgno = self
            .spares
            .get(doubling)
            .and_then(|spare| bucket.checked_add(*spare))
            .ok_or_else(|| "its first page number overflows".to_string())?;
        loop {
            let page = self.page(pgno, visited)?;
            if !matches!(page[25], P_HASH | P_HASH_UNSORTED) {
                return Err(format!(
                    "page {pgno} has type {}, not a hash page",
                    page[25]
                ));
            }
            let entries = usize::from(self.u16_at(page, 20));
            if entries % 2 != 0 {
                return Err(format!(
                    "page {pgno} has {entries} entries, not key and value pairs"
                ));
            }
            let index_end = self.overhead + 2 * entries;
            if index_end > self.page_size {
                return Err(format!(
                    "page {pgno} declares {entries} entries, more than fit in a page"
                ));
            }
            for pair in 0..entries / 2 {
                let record = self
                    .item(page, index_end, 2 * pair, visited)
                    .and_then(|key| {
                        let value = self.item(page, index_end, 2 * pair + 1, visited)?;
                        Ok(Record { key, value })
                    });
                records.push(record.map_err(|reason| {
                    format!(
                        "bucket {bucket}, page {pgno}, record {}: {reason}",
                        pair + 1
                    )
                }));
            }
            match self.u32_at(page, 16) {
                0 => return Ok(()),
                next => pgno = next,
            }
        }
    }

    /// Entry `i` of a hash page. Items are packed from the page's end down, each ending
    /// where the previous one starts.
    fn item(
        &self,
        page: &'a [u8],
        index_end: usize,
        i: usize,
        visited: &mut [bool],
    ) -> Result<Cow<'a, [u8]>, String> {
        let offset = |i: usize| usize::from(self.u16_at(page, self.overhead + 2 * i));
        let start = offset(i);
        let end = if i == 0 {
            self.page_size
        } else {
            offset(i - 1)
        };
        if start < index_end || start >= end || end > self.page_size {
            return Err(format!(
                "item {i} has offsets {start}..{end} outside its page"
            ));
        }
        let item = &page[start..end];
        match item[0] {
            H_KEYDATA => Ok(Cow::Borrowed(&item[1..])),
            H_OFFPAGE => {
                if item.len() < 12 {
                    return Err("an overflow reference shorter than 12 bytes".into());
                }
                let first = read_u32(item, 4, self.order).unwrap_or_default();
                let len = read_u32(item, 8, self.order).unwrap_or_default();
                self.overflow(first, len, visited).map(Cow::Owned)
            }
            H_DUPLICATE | H_OFFDUP => {
                Err("duplicate values for one key, which rpm never writes".into())
            }
            kind => Err(format!("an item of unknown type {kind}")),
        }
    }

    /// A value kept on a chain of overflow pages: `len` bytes from page `first` on.
    fn overflow(&self, first: u32, len: u32, visited: &mut [bool]) -> Result<Vec<u8>, String> {
        let len = len as usize;
        if len == 0 || len > self.bytes.len() {
            return Err(format!(
                "an overflow value of {len} bytes, in a file of {}",
                self.bytes.len()
            ));
        }
        let mut value = Vec::with_capacity(len);
        let mut pgno = first;
        while value.len() < len {
            if pgno == 0 {
                return Err(format!(
                    "its overflow pages end after {} of its {len} bytes",
                    value.len()
                ));
            }
            let page = self.page(pgno, visited)?;
            if page[25] != P_OVERFLOW {
                return Err(format!(
                    "page {pgno} has type {}, not an overflow page",
                    page[25]
                ));
            }
            let here = usize::from(self.u16_at(page, 22));
            let rest = len - value.len();
            if here == 0 || here > rest || self.overhead + here > self.page_size {
                return Err(format!(
                    "overflow page {pgno} holds {here} bytes ({rest} wanted, at most {} fit)",
                    self.page_size - self.overhead
                ));
            }
            value.extend_from_slice(&page[self.overhead..self.overhead + here]);
            pgno = self.u32_at(page, 16);
        }
        Ok(value)
    }

    /// Page `pgno`, marked visited: a page reached twice is an error, which is what ends a
    /// chain of pages that loops.
    fn page(&self, pgno: u32, visited: &mut [bool]) -> Result<&'a [u8], String> {
        let seen = visited.get_mut(pgno as usize).ok_or_else(|| {
            format!(
                "page {pgno} is past the end of the file ({} pages)",
                self.pages
            )
        })?;
        if *seen {
            return Err(format!("page {pgno} is reached twice (its pages loop)"));
        }
        *seen = true;
        let start = pgno as usize * self.page_size;
        let page = self
            .bytes
            .get(start..start + self.page_size)
            .ok_or_else(|| format!("page {pgno} is past the end of the file"))?;
        let recorded = self.u32_at(page, 8);
        if recorded != pgno {
            return Err(format!("page {pgno} says it is page {recorded}"));
        }
        Ok(page)
    }

    fn u16_at(&self, page: &[u8], at: usize) -> u16 {
        let bytes = page
            .get(at..at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .unwrap_or_default();
        match self.order {
            ByteOrder::Little => u16::from_le_bytes(bytes),
            ByteOrder::Big => u16::from_be_bytes(bytes),
        }
    }

    fn u32_at(&self, page: &[u8], at: usize) -> u32 {
        read_u32(page, at, self.order).unwrap_or_default()
    }
}

fn read_u32(bytes: &[u8], at: usize, order: ByteOrder) -> Option<u32> {
    let bytes = <[u8; 4]>::try_from(bytes.get(at..at.checked_add(4)?)?).ok()?;
    Some(match order {
        ByteOrder::Little => u32::from_le_bytes(bytes),
        ByteOrder::Big => u32::from_be_bytes(bytes),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::inventory::rpm::header::fixtures::package;

    /// A hand-built one-bucket hash database: page 0 the metadata, page 1 the bucket's items,
    /// then the overflow pages of the values longer than a quarter page. Tests without
    /// Berkeley DB's tools use it; `tests/inventory_real.rs` reads databases `db_load` wrote.
    pub(in crate::inventory::rpm) fn hand_built(
        order: ByteOrder,
        page_size: usize,
        records: &[(&[u8], &[u8])],
    ) -> Vec<u8> {
        let inline = page_size / 4;
        let put16 = |b: &mut [u8], at: usize, v: u16| {
            let bytes = match order {
                ByteOrder::Little => v.to_le_bytes(),
                ByteOrder::Big => v.to_be_bytes(),
            };
            b[at..at + 2].copy_from_slice(&bytes);
        };
        let put32 = |b: &mut [u8], at: usize, v: u32| {
            let bytes = match order {
                ByteOrder::Little => v.to_le_bytes(),
                ByteOrder::Big => v.to_be_bytes(),
            };
            b[at..at + 4].copy_from_slice(&bytes);
        };
        let mut pages: Vec<Vec<u8>> = vec![vec![0; page_size], vec![0; page_size]];
        let mut items: Vec<Vec<u8>> = Vec::new();
        for (key, value) in records {
            items.push([&[H_KEYDATA][..], key].concat());
            if value.len() <= inline {
                items.push([&[H_KEYDATA][..], value].concat());
                continue;
            }
            let first = pages.len() as u32;
            let chunks: Vec<&[u8]> = value.chunks(page_size - PAGE_HEADER).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let pgno = pages.len() as u32;
                let mut page = vec![0; page_size];
                put32(&mut page, 8, pgno);
                let next = if i + 1 < chunks.len() { pgno + 1 } else { 0 };
                put32(&mut page, 16, next);
                put16(&mut page, 22, chunk.len() as u16);
                page[25] = P_OVERFLOW;
                page[PAGE_HEADER..PAGE_HEADER + chunk.len()].copy_from_slice(chunk);
                pages.push(page);
            }
            let mut reference = vec![H_OFFPAGE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            put32(&mut reference, 4, first);
            put32(&mut reference, 8, value.len() as u32);
            items.push(reference);
        }
        let hash = &mut pages[1];
        put32(hash, 8, 1);
        put16(hash, 20, items.len() as u16);
        hash[25] = P_HASH;
        let mut end = page_size;
        for (i, item) in items.iter().enumerate() {
            let start = end - item.len();
            hash[start..end].copy_from_slice(item);
            put16(hash, PAGE_HEADER + 2 * i, start as u16);
            end = start;
        }
        let last = pages.len() as u32 - 1;
        let meta = &mut pages[0];
        put32(meta, 12, HASH_MAGIC);
        put32(meta, 16, 9);
        put32(meta, 20, page_size as u32);
        meta[25] = P_HASHMETA;
        put32(meta, 32, last);
        put32(meta, 72, 0);
        put32(meta, 96, 1);
        pages.concat()
    }

    fn names(parsed: &Parsed) -> Vec<(&str, &str)> {
        parsed
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect()
    }

    fn rpm_records(order: ByteOrder) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let key = |n: u32| match order {
            ByteOrder::Little => n.to_le_bytes().to_vec(),
            ByteOrder::Big => n.to_be_bytes().to_vec(),
        };
        let bash = package(
            "bash",
            "4.2.46",
            "35.el7_9",
            None,
            "bash-4.2.46-35.el7_9.src.rpm",
        );
        (key(0), key(1), bash)
    }

    #[test]
    fn both_byte_orders_and_overflow_pages() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            for page_size in [512, 4096, 65536] {
                let (zero, one, bash) = rpm_records(order);
                // On 512-byte pages the header goes to overflow pages; on the others it is
                // kept on the hash page.
                assert!(bash.len() > 128, "{}", bash.len());
                let db = hand_built(order, page_size, &[(&zero, &[9, 0, 0, 0]), (&one, &bash)]);
                let parsed = parse_bdb("var/lib/rpm/Packages", &db).expect("database");
                assert_eq!(
                    names(&parsed),
                    [("bash", "4.2.46-35.el7_9")],
                    "{order:?} {page_size}"
                );
                assert_eq!(parsed.unreadable, []);
            }
        }
    }

    #[test]
    fn empty_database_has_no_packages() {
        let db = hand_built(ByteOrder::Little, 512, &[]);
        let parsed = parse_bdb("var/lib/rpm/Packages", &db).expect("empty");
        assert!(parsed.packages.is_empty());
    }

    #[test]
    fn hostile_databases_are_errors() {
        let path = "var/lib/rpm/Packages";
        let (zero, one, _) = rpm_records(ByteOrder::Little);
        // A release long enough to need three overflow pages.
        let release = "1".repeat(1200);
        let bash = package("bash", "4.2.46", &release, None, "bash-4.2.46-1.src.rpm");
        let good = hand_built(
            ByteOrder::Little,
            512,
            &[(&zero, &[9, 0, 0, 0]), (&one, &bash)],
        );
        let patched = |at: usize, bytes: &[u8]| {
            let mut db = good.clone();
            db[at..at + bytes.len()].copy_from_slice(bytes);
            db
        };
        // Page 1 is the hash page; pages 2.. the overflow chain of the header.
        let overflow_pages = (good.len() / 512 - 2) as u32;
        assert!(overflow_pages >= 3, "{overflow_pages}");
        let last = 512 * (1 + overflow_pages as usize);
        // The value's overflow reference is the first item written, at the page's end.
        let reference = 2 * 512 - 27;
        let table: &[(&str, Vec<u8>, &str)] = &[
            ("empty", vec![], "shorter than a Berkeley DB metadata page"),
            (
                "truncated meta",
                good[..300].to_vec(),
                "is 300 bytes, shorter",
            ),
            ("zeros", vec![0; 4096], "not a Berkeley DB hash database"),
            (
                "wrong magic",
                patched(12, b"\x62\x31\x05\x00"),
                "a Berkeley DB btree",
            ),
            (
                "page size 0",
                patched(20, &0u32.to_le_bytes()),
                "page size 0;",
            ),
            (
                "page size huge",
                patched(20, &(1u32 << 20).to_le_bytes()),
                "page size 1048576;",
            ),
            (
                "page size odd",
                patched(20, &1000u32.to_le_bytes()),
                "page size 1000;",
            ),
            (
                "version",
                patched(16, &3u32.to_le_bytes()),
                "hash version 3",
            ),
            ("encrypted", patched(24, &[1]), "is encrypted"),
            ("meta type", patched(25, &[5]), "page 0 has type 5"),
            (
                "buckets",
                patched(72, &u32::MAX.to_le_bytes()),
                "declares 4294967296 buckets",
            ),
        ];
        for (what, db, want) in table {
            let err = parse_bdb(path, db).expect_err(what).to_string();
            assert!(err.starts_with(path), "{what}: {err}");
            assert!(err.contains(want), "{what}: {err}");
        }

        // Damage below the metadata fails the records it reaches; with no package left, the
        // database is an error that says why.
        let table: &[(&str, Vec<u8>, &str)] = &[
            (
                "truncated overflow",
                good[..last].to_vec(),
                "past the end of the file",
            ),
            (
                "overflow loop",
                patched(last - 512 + 16, &2u32.to_le_bytes()),
                "page 2 is reached twice",
            ),
            (
                "self loop",
                patched(512 * 2 + 16, &2u32.to_le_bytes()),
                "page 2 is reached twice",
            ),
            (
                "length over the file",
                patched(reference + 8, &u32::MAX.to_le_bytes()),
                "an overflow value of 4294967295 bytes",
            ),
            (
                "length over the chain",
                patched(reference + 8, &(bash.len() as u32 + 1).to_le_bytes()),
                "overflow pages end after",
            ),
            (
                "chain to the metadata",
                patched(reference + 4, &0u32.to_le_bytes()),
                "its overflow pages end after 0 of its",
            ),
            (
                "chain past the end",
                patched(reference + 4, &9999u32.to_le_bytes()),
                "page 9999 is past the end",
            ),
            (
                "not an overflow page",
                patched(512 * 2 + 25, &[P_HASH]),
                "page 2 has type 13, not an overflow page",
            ),
            (
                "overflow length 0",
                patched(512 * 2 + 22, &0u16.to_le_bytes()),
                "overflow page 2 holds 0 bytes",
            ),
            (
                "overflow length huge",
                patched(512 * 2 + 22, &u16::MAX.to_le_bytes()),
                "overflow page 2 holds 65535 bytes",
            ),
            (
                "page number",
                patched(512 * 2 + 8, &7u32.to_le_bytes()),
                "page 2 says it is page 7",
            ),
            (
                "hash page type",
                patched(512 + 25, &[0]),
                "bucket 0: page 1 has type 0, not a hash page",
            ),
            (
                "odd entries",
                patched(512 + 20, &3u16.to_le_bytes()),
                "has 3 entries, not key and value pairs",
            ),
            (
                "too many entries",
                patched(512 + 20, &(u16::MAX - 1).to_le_bytes()),
                "more than fit in a page",
            ),
            (
                "item offset",
                patched(512 + PAGE_HEADER + 6, &2u16.to_le_bytes()),
                "outside its page",
            ),
            (
                "duplicates",
                patched(reference, &[H_OFFDUP]),
                "duplicate values for one key",
            ),
        ];
        for (what, db, want) in table {
            let err = parse_bdb(path, db).expect_err(what).to_string();
            assert!(
                err.starts_with(&format!("{path}: no readable package header (1 unreadable")),
                "{what}: {err}"
            );
            assert!(err.contains(want), "{what}: {err}");
        }
    }

    #[test]
    fn a_damaged_record_is_skipped_and_recorded() {
        let a = package("a", "1", "1", None, "a-1-1.src.rpm");
        let b = package("b", "2", "1", Some(3), "b-2-1.src.rpm");
        let mut db = hand_built(
            ByteOrder::Big,
            512,
            &[(&1u32.to_be_bytes(), &a), (&2u32.to_be_bytes(), &b)],
        );
        assert!(
            a.len() <= 128 && b.len() > 128,
            "a on its page, b on overflow pages"
        );
        let good = db.clone();
        // b's first overflow page is not one.
        db[512 * 2 + 25] = 0;
        let parsed = parse_bdb("var/lib/rpm/Packages", &db).expect("one package left");
        assert_eq!(names(&parsed).len(), 1);
        assert_eq!(parsed.unreadable.len(), 1);
        assert!(
            parsed.unreadable[0]
                .reason
                .starts_with("1 unreadable package header(s) skipped (first: bucket 0, page 1"),
            "{:?}",
            parsed.unreadable
        );
        assert!(parsed.unreadable[0].reason.contains("page 2 has type 0"));

        // A bucket whose pages loop: its records are read once, and the loop is recorded.
        let mut db = good;
        db[512 + 16..512 + 20].copy_from_slice(&1u32.to_be_bytes());
        let parsed = parse_bdb("var/lib/rpm/Packages", &db).expect("both packages");
        assert_eq!(names(&parsed), [("a", "1-1"), ("b", "3:2-1")]);
        assert_eq!(
            parsed.unreadable[0].reason,
            "1 unreadable package header(s) skipped (first: bucket 0: page 1 is reached twice \
             (its pages loop))"
        );
    }
}
