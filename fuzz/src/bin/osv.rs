//! OSV advisories into an ecosystem's index: a zip export (input starting with `PK`) or one
//! JSON record.

use std::io::Cursor;

use palisade_scanner::osv::schema::Vulnerability;
use palisade_scanner::osv::{Ecosystem, Index, Limits};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some(ecosystem) = Ecosystem::from_name("Debian:12") else {
            return;
        };
        if data.starts_with(b"PK") {
            let limits = Limits {
                max_entry_bytes: 1 << 20,
                max_entries: 1000,
                ..Limits::default()
            };
            let _ = Index::from_zip(ecosystem, Cursor::new(data), "fuzz.zip", limits);
        } else if let Ok(record) = serde_json::from_slice::<Vulnerability>(data) {
            let index = Index::from_records(ecosystem, [&record]);
            for i in 0..index.advisory_count() {
                let _ = index.advisory(i as u32);
            }
        }
    });
}
