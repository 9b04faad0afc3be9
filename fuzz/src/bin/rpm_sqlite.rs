//! rpm's SQLite database with an optional WAL (the input is split in two by its first two
//! bytes). SQLite itself is C and not instrumented; what is covered is the WAL replay and
//! the reading of the rows.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (db, wal) = palisade_fuzz::split(data);
        let wal = (!wal.is_empty()).then_some(wal);
        let _ = palisade_scanner::inventory::rpm::parse_sqlite("var/lib/rpm/rpmdb.sqlite", db, wal);
    });
}
