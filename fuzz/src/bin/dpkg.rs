//! dpkg's status file.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = palisade_scanner::inventory::dpkg::parse_status("var/lib/dpkg/status", data);
    });
}
