//! rpm's ndb `Packages.db` file (SUSE).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = palisade_scanner::inventory::rpm::parse_ndb("var/lib/rpm/Packages.db", data);
    });
}
