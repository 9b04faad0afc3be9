//! apk's `installed` database.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = palisade_scanner::inventory::apk::parse_installed("lib/apk/db/installed", data);
    });
}
