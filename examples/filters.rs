//! Filtered search at 50%, 10%, 1% and 0.1% selectivity: recall@10 and mean latency of the
//! graph walk (hnswlib's rule), the exact scan of the accepted set, and what
//! `search_filtered` / `search_in` choose, at the `ef` where unfiltered search reaches
//! recall 0.95. This is the measurement behind `SCAN_TEST_COST` and the cost model in
//! src/filter.rs.
//!
//! Run: `cargo run --release --example filters [-- BASE.fvecs QUERY.fvecs [l2|ip|cosine]]`
//! (default: a generated 50,000 × 128 mixture, L2). Labels pass a filter when
//! `hash(label) % 1000 < 1000 × selectivity`, so accepted labels are spread over the data.

use hnswx::data::{exact_knn, gaussian_mixture, read_fvecs, recall, Table};
use hnswx::{Index, Metric, Params};
use std::time::Instant;

fn pass(label: u64, per_mille: u64) -> bool {
    (label.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 1000 < per_mille
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, queries, metric) = if args.len() >= 2 {
        let metric = match args.get(2).map(String::as_str) {
            Some("ip") => Metric::InnerProduct,
            Some("cosine") => Metric::Cosine,
            _ => Metric::L2,
        };
        let q = read_fvecs(&args[1]).unwrap();
        let q = q.truncated(200);
        (read_fvecs(&args[0]).unwrap(), q, metric)
    } else {
        let (b, q) = gaussian_mixture(50_200, 128, 100, 2.0, 11).split_at(50_000);
        (b, q, Metric::L2)
    };
    let n = base.len();
    println!("{}", hnswx::build_info());
    println!("{n} × {} ({metric:?}), {} queries", base.dim(), queries.len());
    let index = Index::new(Params::new(base.dim(), metric), n).unwrap();
    index
        .add_batch(&(0..n as u64).collect::<Vec<_>>(), base.as_slice())
        .unwrap();
    // The ef where unfiltered recall@10 reaches 0.95.
    let truth = exact_knn(&base, &queries, metric, 10).unwrap();
    let ef = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256]
        .into_iter()
        .find(|&ef| {
            let found: Vec<Vec<u64>> = queries
                .rows()
                .map(|q| index.search(q, 10, ef).unwrap().iter().map(|h| h.label).collect())
                .collect();
            recall(&found, &truth, 10) >= 0.95
        })
        .unwrap_or(256);
    println!("ef = {ef} (unfiltered recall@10 ≥ 0.95)\n");
    println!("| selectivity | path | recall@10 | µs/query |");
    println!("|---|---|---|---|");
    for per_mille in [500u64, 100, 50, 20, 10, 1] {
        let accepted: Vec<u64> = (0..n as u64).filter(|&l| pass(l, per_mille)).collect();
        let sub_rows: Vec<f32> = accepted.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
        let sub = Table::new(base.dim(), sub_rows).unwrap();
        let t = exact_knn(&sub, &queries, metric, 10).unwrap();
        let t: Vec<Vec<u64>> = t
            .iter()
            .map(|r| r.iter().map(|&i| accepted[i as usize]).collect())
            .collect();
        let set = index.label_set(accepted.iter().copied());
        let f = |l: u64| pass(l, per_mille);
        let run = |name: &str, go: &dyn Fn(&[f32]) -> Vec<u64>| {
            let start = Instant::now();
            let found: Vec<Vec<u64>> = queries.rows().map(go).collect();
            let us = start.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
            println!(
                "| {:.1}% | {name} | {:.4} | {us:.1} |",
                per_mille as f64 / 10.0,
                recall(&found, &t, 10)
            );
        };
        let labels = |h: Vec<hnswx::Neighbour>| h.into_iter().map(|n| n.label).collect::<Vec<u64>>();
        run("graph walk", &|q| {
            labels(index.search_filtered_graph(q, 10, ef, f).unwrap())
        });
        run("exact scan", &|q| labels(index.search_filtered_scan(q, 10, f).unwrap()));
        run("search_filtered (auto)", &|q| {
            labels(index.search_filtered(q, 10, ef, f).unwrap())
        });
        run("search_in (LabelSet)", &|q| {
            labels(index.search_in(q, 10, ef, &set).unwrap())
        });
    }
}
