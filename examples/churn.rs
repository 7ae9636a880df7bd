//! Churn: build on half of a set, remove a random 50% of it, consolidate, add as many
//! held-out vectors (reusing the freed slots: capacity unchanged), and compare recall@10 at
//! each ef with a fresh build on the same live set; also recall before consolidation, and
//! after 10 rounds of 10% churn (remove 10%, consolidate, add 10% new).
//!
//! Run: `cargo run --release --example churn -- BASE.fvecs QUERY.fvecs [l2|ip|cosine]`
//! (default: a generated 40,000 × 64 mixture).

use hnswx::data::{gaussian_mixture, read_fvecs, recall};
use hnswx::{BruteForce, Index, Metric, Params};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use std::collections::HashSet;
use std::time::Instant;

const EFS: [usize; 4] = [16, 32, 64, 128];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, queries, metric) = if args.len() >= 2 {
        let metric = match args.get(2).map(String::as_str) {
            Some("ip") => Metric::InnerProduct,
            Some("cosine") => Metric::Cosine,
            _ => Metric::L2,
        };
        (
            read_fvecs(&args[0]).unwrap(),
            read_fvecs(&args[1]).unwrap().truncated(1000),
            metric,
        )
    } else {
        let (b, q) = gaussian_mixture(40_200, 64, 100, 2.0, 5).split_at(40_000);
        (b, q, Metric::L2)
    };
    let (n, dim) = (base.len() / 2, base.dim());
    println!("{}", hnswx::build_info());
    println!(
        "{n} of {} × {dim} ({metric:?}), {} queries; ef {EFS:?}",
        base.len(),
        queries.len()
    );
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let index = Index::new(Params::new(dim, metric), n).unwrap();
    let t = Instant::now();
    index
        .add_batch(&(0..n as u64).collect::<Vec<_>>(), &base.as_slice()[..n * dim])
        .unwrap();
    println!("build {:.1} s", t.elapsed().as_secs_f64());
    let mut live: Vec<u64> = (0..n as u64).collect();
    let mut next = n as u64;
    let report = |what: &str, index: &Index, live: &[u64]| {
        let rows: Vec<f32> = live.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
        let mut exact = BruteForce::new(dim, metric).unwrap();
        exact.add_batch(live, &rows).unwrap();
        let truth: Vec<Vec<u64>> = queries
            .rows()
            .map(|q| exact.search(q, 10).unwrap().iter().map(|h| h.label).collect())
            .collect();
        let recalls: Vec<String> = EFS
            .iter()
            .map(|&ef| {
                let found: Vec<Vec<u64>> = queries
                    .rows()
                    .map(|q| index.search(q, 10, ef).unwrap().iter().map(|h| h.label).collect())
                    .collect();
                format!("{:.4}", recall(&found, &truth, 10))
            })
            .collect();
        println!(
            "| {what} | {} | {} | {} |",
            recalls.join(" | "),
            index.len(),
            index.capacity()
        );
    };
    println!(
        "\n| state | {} | live | capacity |",
        EFS.map(|e| format!("ef {e}")).join(" | ")
    );
    println!("|---|{}---|---|", "---|".repeat(EFS.len()));
    // Remove a random half.
    let mut order: Vec<u64> = live.clone();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let (gone, kept) = order.split_at(n / 2);
    for &l in gone {
        index.remove(l).unwrap();
    }
    live = kept.to_vec();
    report("50% removed, not consolidated", &index, &live);
    let t = Instant::now();
    let freed = index.consolidate();
    let consolidate_s = t.elapsed().as_secs_f64();
    let add: Vec<u64> = (next..next + gone.len() as u64).collect();
    next += add.len() as u64;
    let rows: Vec<f32> = add.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
    index.add_batch(&add, &rows).unwrap();
    live.extend(&add);
    report("consolidated + 50% new", &index, &live);
    println!("(consolidate: {freed} slots in {consolidate_s:.1} s)");
    // Fresh build of the same live set.
    let fresh = Index::new(Params::new(dim, metric), n).unwrap();
    let rows: Vec<f32> = live.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
    fresh.add_batch(&live, &rows).unwrap();
    report("fresh build, same live set", &fresh, &live);
    // Ten rounds of 10% churn.
    for _ in 0..10 {
        let k = live.len() / 10;
        for _ in 0..k {
            let i = (rng.next_u64() % live.len() as u64) as usize;
            index.remove(live.swap_remove(i)).unwrap();
        }
        index.consolidate();
        let add: Vec<u64> = (next..next + k as u64).map(|l| l % base.len() as u64).collect();
        // Labels past the set wrap around onto vectors removed long ago: new labels, old rows.
        let alive: HashSet<u64> = live.iter().copied().collect();
        let add: Vec<u64> = add.into_iter().filter(|l| !alive.contains(l)).collect();
        next += k as u64;
        let rows: Vec<f32> = add.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
        index.add_batch(&add, &rows).unwrap();
        live.extend(&add);
    }
    report("after 10 rounds of 10% churn", &index, &live);
    let fresh = Index::new(Params::new(dim, metric), n).unwrap();
    let rows: Vec<f32> = live.iter().flat_map(|&l| base.row(l as usize).to_vec()).collect();
    fresh.add_batch(&live, &rows).unwrap();
    report("fresh build, same live set", &fresh, &live);
    println!("graph after churn: {:?}", index.graph_stats().is_healthy());
}
