//! A stream of small batches against one big batch: the same vectors, inserted with one
//! `add_batch` call, then with one call per `B` rows. Prints wall times and recall@10 at
//! ef 64 for both. Before add_batch repaired connectivity only after the graph had grown by
//! an eighth, every call walked the whole graph and a stream of single-row batches was
//! quadratic.
//!
//! Run: `cargo run --release --example batches [-- N [B]]` (default N 20000, B 1).

use hnswx::data::{exact_knn, gaussian_mixture, recall};
use hnswx::{Index, Metric, Params};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let n = args.next().unwrap_or(20_000);
    let b = args.next().unwrap_or(1).max(1);
    let dim = 128;
    let (base, queries) = gaussian_mixture(n + 200, dim, 100, 1.0, 7).split_at(n);
    let truth = exact_knn(&base, &queries, Metric::L2, 10).unwrap();
    let labels: Vec<u64> = (0..n as u64).collect();
    let score = |index: &Index| {
        let found: Vec<Vec<u64>> = queries
            .rows()
            .map(|q| index.search(q, 10, 64).unwrap().iter().map(|h| h.label).collect())
            .collect();
        recall(&found, &truth, 10)
    };
    println!("{}", hnswx::build_info());
    let one = Index::new(Params::new(dim, Metric::L2), n).unwrap();
    let t = Instant::now();
    one.add_batch(&labels, base.as_slice()).unwrap();
    let one_s = t.elapsed().as_secs_f64();
    println!("one batch of {n}: {one_s:.2} s, recall@10 (ef 64) {:.4}", score(&one));
    let many = Index::new(Params::new(dim, Metric::L2), n).unwrap();
    let t = Instant::now();
    for (l, v) in labels.chunks(b).zip(base.as_slice().chunks(b * dim)) {
        many.add_batch(l, v).unwrap();
    }
    let many_s = t.elapsed().as_secs_f64();
    println!(
        "{} batches of {b}: {many_s:.2} s ({:.2}x one batch), recall@10 (ef 64) {:.4}, unreachable {}",
        n.div_ceil(b),
        many_s / one_s,
        score(&many),
        many.graph_stats().unreachable
    );
}
