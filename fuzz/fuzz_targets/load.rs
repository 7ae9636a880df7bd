//! Any bytes given to the index loader: a typed error or a working index, never a panic or
//! undefined behaviour. Run: `cargo +nightly fuzz run load` (see the README).
#![no_main]

use hnswx::Index;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = Index::read_from(&mut Cursor::new(data), data.len() as u64) {
        // A file that loads must also search.
        let q = vec![0.5f32; index.dim()];
        let _ = index.search(&q, 3, 16).expect("a loaded index searches");
        let _ = index.graph_stats();
    }
});
