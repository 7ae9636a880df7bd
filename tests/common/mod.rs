//! Helpers shared by the integration tests.
#![allow(dead_code)]

use hnswx::data::{exact_knn, gaussian_mixture, recall, Table};
use hnswx::{Index, Metric, Params};
use std::path::{Path, PathBuf};

/// A clustered base set and held-out queries drawn from the same mixture.
pub fn mixture(n: usize, queries: usize, dim: usize, seed: u64) -> (Table<f32>, Table<f32>) {
    gaussian_mixture(n + queries, dim, 50, 1.0, seed).split_at(n)
}

/// Builds an index over `base` (labels 0..n) on a rayon pool of `threads`.
pub fn build(params: Params, base: &Table<f32>, threads: usize) -> Index {
    let index = Index::new(params, base.len()).unwrap();
    let labels: Vec<u64> = (0..base.len() as u64).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| index.add_batch(&labels, base.as_slice())).unwrap();
    index
}

/// Exact `k` nearest labels of every query.
pub fn truth(base: &Table<f32>, queries: &Table<f32>, metric: Metric, k: usize) -> Vec<Vec<u64>> {
    exact_knn(base, queries, metric, k).unwrap()
}

pub fn labels(hits: Vec<Vec<hnswx::Neighbour>>) -> Vec<Vec<u64>> {
    hits.into_iter()
        .map(|h| h.into_iter().map(|n| n.label).collect())
        .collect()
}

/// Recall@k of `index` at `ef` against `truth`.
pub fn recall_at(index: &Index, queries: &Table<f32>, truth: &[Vec<u64>], k: usize, ef: usize) -> f64 {
    let found = labels(index.search_batch(queries.as_slice(), k, ef).unwrap());
    recall(&found, truth, k)
}

/// A file under `../shared/data`, or `None` (with a note on stderr) when the shared data is
/// not beside the checkout.
pub fn shared(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(path);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} not found (the shared data sets sit beside the checkout)",
            p.display()
        );
        None
    }
}

/// The row stride (floats) recorded in an hnswx index file's header.
pub fn file_stride(file: &[u8]) -> usize {
    u32::from_le_bytes(file[28..32].try_into().unwrap()) as usize
}

/// The hnswx index file `file` with its rows re-laid `stride` floats apart (zero-padded),
/// every later section moved and every checksum recomputed: the file an index with that
/// stride writes. With `stride` = `dim` rounded up to 16 this is byte for byte the layout
/// every build wrote before strides were chosen per dimension.
pub fn restride(file: &[u8], stride: usize) -> Vec<u8> {
    const HEADER_SPACE: usize = 320;
    const SECTIONS: usize = 88;
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let put = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    let align = |x: usize| x.div_ceil(64) * 64;
    let dim = u32::from_le_bytes(file[24..28].try_into().unwrap()) as usize;
    let old = file_stride(file);
    let count = u64_at(file, 56) as usize;
    assert_eq!(u64_at(file, SECTIONS) as usize, HEADER_SPACE);
    let old_end = align(HEADER_SPACE + count * old * 4);
    let new_len = count * stride * 4;
    let new_end = align(HEADER_SPACE + new_len);
    let shift = |x: u64| (x as usize + new_end - old_end) as u64;
    let mut out = file[..HEADER_SPACE].to_vec();
    for i in 0..count {
        out.extend_from_slice(&file[HEADER_SPACE + i * old * 4..][..dim * 4]);
        out.resize(out.len() + (stride - dim) * 4, 0);
    }
    let slab_sum = xxhash_rust::xxh3::xxh3_64(&out[HEADER_SPACE..]);
    out.resize(new_end, 0);
    out.extend_from_slice(&file[old_end..]);
    out[28..32].copy_from_slice(&(stride as u32).to_le_bytes());
    let len = out.len() as u64;
    put(&mut out, 80, len);
    put(&mut out, SECTIONS + 8, new_len as u64);
    put(&mut out, SECTIONS + 16, slab_sum);
    for i in 1..5 {
        let v = shift(u64_at(&out, SECTIONS + 32 * i));
        put(&mut out, SECTIONS + 32 * i, v);
    }
    // The kinds and quantiser sections' offsets (reserved words 0 and 3; 0 when absent).
    for at in [248, 272] {
        let v = u64_at(&out, at);
        if v != 0 {
            put(&mut out, at, shift(v));
        }
    }
    // Version 4 on: the quantiser block holds the codes section's offset (0 when none are
    // stored), under the block's own checksum.
    let q = u64_at(&out, 272) as usize;
    if u32::from_le_bytes(out[8..12].try_into().unwrap()) >= 4 && q != 0 {
        let trained = u32::from_le_bytes(out[q + 4..q + 8].try_into().unwrap()) as usize;
        let n = 48 + 8 * dim * trained;
        let codes = u64_at(&out, q + n - 40);
        if codes != 0 {
            put(&mut out, q + n - 40, shift(codes));
            let sum = xxhash_rust::xxh3::xxh3_64(&out[q..q + n - 8]);
            put(&mut out, q + n - 8, sum);
        }
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out[..280]);
    put(&mut out, 280, sum);
    out
}

/// Recomputes an index file's header checksum (after a deliberate edit of the header).
pub fn reseal_header(file: &mut [u8]) {
    let sum = xxhash_rust::xxh3::xxh3_64(&file[..280]);
    file[280..288].copy_from_slice(&sum.to_le_bytes());
}

/// A scratch folder for one test, removed with everything in it when dropped (the test
/// passing or failing), so `cargo test` leaves nothing behind in the temporary directory.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    /// A new empty folder named `hnswx-{name}-{random}` under the temporary directory.
    pub fn new(name: &str) -> Scratch {
        Scratch(
            tempfile::Builder::new()
                .prefix(&format!("hnswx-{name}-"))
                .tempdir()
                .unwrap(),
        )
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}
