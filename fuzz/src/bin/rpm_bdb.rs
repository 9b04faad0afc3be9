//! rpm's Berkeley DB `Packages` file (a hash database of header blobs).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = palisade_scanner::inventory::rpm::parse_bdb("var/lib/rpm/Packages", data);
    });
}
