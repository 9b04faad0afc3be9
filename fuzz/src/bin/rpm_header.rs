//! One rpm header blob, as each database format stores it per package.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = palisade_scanner::inventory::rpm::parse_header(data);
    });
}
