//! Build benchmark: inserting a generated clustered set of 20,000 × 128 (M = 16,
//! ef_construction = 200) with 1 thread and with every core, in one run, so the parallel
//! speed-up is read from one machine state. Each build's recall@10 at ef = 64 is printed
//! first.
//!
//! Run: `cargo bench --bench build`.

use criterion::{BenchmarkId, Criterion, Throughput};
use hnswx::data::{exact_knn, gaussian_mixture, recall, Table};
use hnswx::{Index, Metric, Params};
use std::time::Duration;

const N: usize = 20_000;
const DIM: usize = 128;

fn build(base: &Table<f32>, threads: usize) -> Index {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let index = Index::new(Params::new(DIM, Metric::L2), N).unwrap();
    pool.install(|| index.add_batch(&(0..N as u64).collect::<Vec<_>>(), base.as_slice()))
        .unwrap();
    index
}

fn main() {
    let (base, queries) = gaussian_mixture(N + 200, DIM, 100, 1.0, 2).split_at(N);
    let truth = exact_knn(&base, &queries, Metric::L2, 10).unwrap();
    println!("{}", hnswx::build_info());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<usize> = if cores > 1 { vec![1, cores] } else { vec![1] };

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Elements(N as u64));
    for &t in &threads {
        let index = build(&base, t);
        let found: Vec<Vec<u64>> = queries
            .rows()
            .map(|q| index.search(q, 10, 64).unwrap().iter().map(|h| h.label).collect())
            .collect();
        println!("{t} thread(s): recall@10 at ef 64 = {:.4}", recall(&found, &truth, 10));
        g.bench_function(BenchmarkId::new("threads", t), |b| b.iter(|| build(&base, t)));
    }
    g.finish();
    c.final_summary();
}
