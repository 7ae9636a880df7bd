//! Builds an index on a generated clustered data set (or a texmex set given on the command
//! line), then prints build time, recall@10 against exact search, and queries per second.
//!
//! ```sh
//! cargo run --release --example quickstart                       # 50,000 × 128 generated
//! cargo run --release --example quickstart -- ../shared/data/sift5k/sift5k_base.fvecs \
//!     ../shared/data/sift5k/sift5k_query.fvecs
//! ```

use hnswx::data::{exact_knn, gaussian_mixture, read_fvecs, recall};
use hnswx::{Index, Metric, Params};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let metric = match args.get(2).map(String::as_str) {
        None | Some("l2") => Metric::L2,
        Some("ip") => Metric::InnerProduct,
        Some("cos") => Metric::Cosine,
        Some(m) => return Err(format!("unknown metric {m:?}: l2, ip or cos").into()),
    };
    let (name, base, queries) = match &args[..] {
        [b, q] | [b, q, _] => (b.clone(), read_fvecs(b)?, read_fvecs(q)?),
        [] => {
            let (base, queries) = gaussian_mixture(51_000, 128, 100, 1.0, 1).split_at(50_000);
            ("generated: 100-cluster Gaussian mixture".into(), base, queries)
        }
        _ => return Err("usage: quickstart [BASE.fvecs QUERY.fvecs [l2|ip|cos]]".into()),
    };
    let (n, dim, k) = (base.len(), base.dim(), 10);
    let threads = rayon::current_num_threads();
    println!(
        "hnswx quickstart — {name}: {n} × {dim}, {} queries, {metric:?}",
        queries.len()
    );
    println!("{}", hnswx::build_info());

    let t = Instant::now();
    let index = Index::new(Params::new(dim, metric), n)?;
    let labels: Vec<u64> = (0..n as u64).collect();
    index.add_batch(&labels, base.as_slice())?;
    let build = t.elapsed().as_secs_f64();
    println!(
        "built in {build:.2} s on {threads} threads (M = 16, ef_construction = 200, kernel {}); {:.0} bytes per vector",
        index.kernel().isa(),
        index.memory_bytes() as f64 / n as f64
    );

    let truth = exact_knn(&base, &queries, metric, k)?;

    println!("\n{:>5} {:>10} {:>14}", "ef", "recall@10", "QPS (1 thread)");
    let mut out = Vec::with_capacity(k);
    for ef in [10, 16, 32, 64, 128, 256] {
        let mut found = Vec::with_capacity(queries.len());
        let t = Instant::now();
        for q in queries.rows() {
            index.search_into(q, k, ef, &mut out)?;
            found.push(out.iter().map(|h| h.label).collect::<Vec<_>>());
        }
        let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
        println!("{ef:>5} {:>10.4} {qps:>14.0}", recall(&found, &truth, k));
    }
    Ok(())
}
