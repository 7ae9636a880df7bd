//! Any bytes given to the hnswlib importer: a typed error or a working index, never a panic.
//! Run: `cargo +nightly fuzz run import_hnswlib`.
#![no_main]

use hnswx::{Index, Metric};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = Index::import_hnswlib_bytes(data, Metric::L2) {
        let q = vec![0.5f32; index.dim()];
        let _ = index.search(&q, 3, 16).expect("an imported index searches");
    }
});
