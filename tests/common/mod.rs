//! Helpers shared by the integration tests.
#![allow(dead_code)]

use hnswx::data::{exact_knn, gaussian_mixture, recall, Table};
use hnswx::{Index, Metric, Params};
use std::path::PathBuf;

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
