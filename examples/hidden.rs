//! What removed nodes awaiting consolidation cost a reader: single-thread query latency
//! (ef = 64, k = 10) with no removed node (the fast path: one sorted candidate pool), with
//! one removed node, with as many removed as `ef` (64) and with 1% removed. Up to `ef`
//! removed nodes the search stays on the pool, `hidden` entries larger; past that it takes
//! the two-heap path, on which removed nodes guide the search but do not count towards `ef`. The states alternate round by round on one index
//! (remove, measure, restore, measure, …), so that the machine's other load falls on both
//! alike; the table gives the median over rounds of each round's p50 and p99, and recall@10
//! against exact search over the live vectors.
//!
//! Run: `cargo run --release --example hidden -- [BASE.fvecs QUERY.fvecs] [ROUNDS]`
//! (default: a generated 20,000 × 128 mixture, 7 rounds).

use hnswx::data::{gaussian_mixture, read_fvecs, recall, Table};
use hnswx::{BruteForce, Index, Metric, Params};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, queries) = if args.len() >= 2 {
        (
            read_fvecs(&args[0]).unwrap(),
            read_fvecs(&args[1]).unwrap().truncated(1000),
        )
    } else {
        gaussian_mixture(21_000, 128, 100, 2.0, 3).split_at(20_000)
    };
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(7);
    let (n, dim) = (base.len(), base.dim());
    println!("{}", hnswx::build_info());
    let index = Index::new(Params::new(dim, Metric::L2), n).unwrap();
    index
        .add_batch(&(0..n as u64).collect::<Vec<_>>(), base.as_slice())
        .unwrap();
    // 1% of the labels, spread out; the first of them alone is the "one removed" state.
    let removed: Vec<u64> = (0..n as u64).step_by(100).collect();
    let states: [(&str, &[u64]); 5] = [
        ("none removed", &[]),
        ("1 removed", &removed[..1]),
        ("8 removed (ef/8)", &removed[..8]),
        ("16 removed (ef/4)", &removed[..16]),
        ("1% removed", &removed),
    ];
    let truth = |gone: &[u64]| -> Vec<Vec<u64>> {
        let live: Vec<u64> = (0..n as u64).filter(|l| !gone.contains(l)).collect();
        let rows: Vec<f32> = live.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
        let mut exact = BruteForce::new(dim, Metric::L2).unwrap();
        exact.add_batch(&live, &rows).unwrap();
        queries
            .rows()
            .map(|q| exact.search(q, 10).unwrap().iter().map(|h| h.label).collect())
            .collect()
    };
    let truths: Vec<Vec<Vec<u64>>> = states.iter().map(|s| truth(s.1)).collect();
    let mut p50 = vec![Vec::new(); states.len()];
    let mut p99 = vec![Vec::new(); states.len()];
    let mut recalls = vec![0.0; states.len()];
    let mut out = Vec::with_capacity(10);
    for round in 0..rounds {
        for (s, (_, gone)) in states.iter().enumerate() {
            for &l in *gone {
                index.remove(l).unwrap();
            }
            let (lat, found) = measure(&index, &queries, &mut out);
            for &l in *gone {
                index.restore(l).unwrap();
            }
            p50[s].push(lat[lat.len() / 2]);
            p99[s].push(lat[lat.len() * 99 / 100]);
            if round == 0 {
                recalls[s] = recall(&found, &truths[s], 10);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("{n} × {dim}, {} queries, ef 64, k 10, {rounds} rounds\n", queries.len());
    println!("| state | p50 µs | p99 µs | p50 ÷ none | recall@10 |\n|---|---:|---:|---:|---:|");
    let base50 = median(&mut p50[0].clone());
    for (s, (name, _)) in states.iter().enumerate() {
        let (a, b) = (median(&mut p50[s]), median(&mut p99[s]));
        println!("| {name} | {a:.1} | {b:.1} | {:.2}× | {:.4} |", a / base50, recalls[s]);
    }
}

/// Latencies (µs, sorted) and results of one pass over the queries.
fn measure(index: &Index, queries: &Table<f32>, out: &mut Vec<hnswx::Neighbour>) -> (Vec<f64>, Vec<Vec<u64>>) {
    let mut lat = Vec::with_capacity(queries.len());
    let mut found = Vec::with_capacity(queries.len());
    for q in queries.rows() {
        let t = Instant::now();
        index.search_into(q, 10, 64, out).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        found.push(out.iter().map(|h| h.label).collect());
    }
    lat.sort_by(f64::total_cmp);
    (lat, found)
}
