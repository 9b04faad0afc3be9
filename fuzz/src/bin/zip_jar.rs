//! A Java archive (jar, war, ear; zip with nested archives) and its pom.properties.

use palisade_scanner::inventory::language::java;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        // The default limits, with the nested and total sizes cut so that a zip bomb ends as
        // an error rather than a timeout.
        let limits = java::Limits {
            max_nested_bytes: 8 << 20,
            max_total_bytes: 16 << 20,
            ..java::Limits::default()
        };
        let _ = java::read("app/fuzz.jar", data, limits);
    });
}
