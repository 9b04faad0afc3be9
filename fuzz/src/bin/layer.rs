//! A layer blob (plain tar, gzip or zstd) through the layer walker with the inventory's
//! file selection and language derivation, then the inventory over the merged files.

use palisade_scanner::inventory::{self, language};
use palisade_scanner::layers::{Deriving, LayerWalker, Limits};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        // Small limits so a decompression bomb ends as an error rather than a timeout.
        let limits = Limits {
            max_file_bytes: 1 << 20,
            max_layer_bytes: 16 << 20,
            max_symlinks: 1024,
        };
        let mut walker = LayerWalker::new(inventory::wanted, limits).deriving(Deriving {
            wants: language::wants,
            derive: language::derive,
        });
        // A digest without the sha256: prefix is not checked, so any input gets past it.
        if walker.apply("fuzz", None, data).is_ok() {
            let fs = walker.finish();
            let _ = inventory::from_files(&fs);
        }
    });
}
