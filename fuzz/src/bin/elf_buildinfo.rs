//! An executable through the Go build-info and cargo-auditable readers. Inputs that are not
//! ELF go straight to the inner parsers: `z` first for a compressed cargo-auditable list,
//! anything else as Go's module info text.

use palisade_scanner::inventory::language::{go, rust};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let path = "usr/bin/fuzz";
        if data.starts_with(b"\x7fELF") {
            if let Ok(Some(info)) = go::read_elf(path, data) {
                let _ = info.packages(path);
            }
            let _ = rust::read_elf(path, data);
        } else if let Some(rest) = data.strip_prefix(b"z") {
            let _ = rust::parse(path, rest);
        } else if let Ok(text) = std::str::from_utf8(data) {
            let info = go::parse_modinfo(text);
            let _ = info.packages(path);
            let _ = go::stdlib_version(text);
        }
    });
}
