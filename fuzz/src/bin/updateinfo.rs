//! A yum/dnf updateinfo.xml (plain, gzip or zstd) into an ecosystem's index: the streaming
//! parser, the decompression and the conversion to OSV records; the input's first byte picks
//! a repository's repomd.xml instead when it is `!`.

use palisade_scanner::osv::{Ecosystem, Limits};
use palisade_scanner::updateinfo;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Some(repomd) = data.strip_prefix(b"!") {
            let _ = updateinfo::repo::updateinfo_location("/r/repodata/repomd.xml", repomd);
            return;
        }
        let Some(ecosystem) = Ecosystem::from_name("Amazon Linux:2") else {
            return;
        };
        // Small bounds, so that a hang is a finding rather than a large input.
        let limits = Limits {
            max_entry_bytes: 1 << 16,
            max_entries: 1000,
            max_document_bytes: 1 << 22,
        };
        if let Ok(index) = updateinfo::index(ecosystem, data, "fuzz.xml", limits) {
            for i in 0..index.advisory_count() {
                let _ = index.advisory(i as u32);
            }
        }
    });
}
