//! Single-thread search speed on a saved index, for before/after comparisons on one graph:
//! loads INDEX (building it on one thread from BASE and saving it first if it does not
//! exist), then times every query at each ef, five times, and prints the median QPS.
//!
//! Run: `cargo run --release --example qps -- INDEX.hnswx BASE.fvecs QUERY.fvecs [l2|ip]`

use hnswx::data::read_fvecs;
use hnswx::{Index, Metric, Params};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index_path, base, query, rest @ ..] = &args[..] else {
        panic!("usage: qps INDEX BASE QUERY [l2|ip]");
    };
    let metric = if rest.first().map(String::as_str) == Some("ip") {
        Metric::InnerProduct
    } else {
        Metric::L2
    };
    if !std::path::Path::new(index_path).exists() {
        let base = read_fvecs(base).unwrap();
        let index = Index::new(Params::new(base.dim(), metric).seed(1), base.len()).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        pool.install(|| index.add_batch(&(0..base.len() as u64).collect::<Vec<_>>(), base.as_slice()))
            .unwrap();
        index.save(index_path).unwrap();
    }
    let index = Index::load(index_path).unwrap();
    let queries = read_fvecs(query).unwrap();
    let mut out = Vec::with_capacity(10);
    for ef in [16, 64, 128] {
        let mut qps: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for q in queries.rows() {
                    index.search_into(q, 10, ef, &mut out).unwrap();
                }
                queries.len() as f64 / t.elapsed().as_secs_f64()
            })
            .collect();
        qps.sort_by(f64::total_cmp);
        println!(
            "ef {ef:>4}: {:>9.0} QPS (median of 5; min {:.0}, max {:.0})",
            qps[2], qps[0], qps[4]
        );
    }
    // Whether transparent huge pages back the index (Linux).
    if let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        if let Some(line) = s.lines().find(|l| l.starts_with("AnonHugePages")) {
            println!("{line}");
        }
    }
}
