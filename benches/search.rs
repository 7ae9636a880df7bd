//! Search benchmark: one query at a time (as a service calls it) on a generated clustered set
//! of 50,000 × 128 (M = 16, ef_construction = 200), for several `ef`, for every kernel this
//! CPU has at `ef = 64`, and exact brute force as the baseline — all in one run. Recall@10
//! of each setting is printed before it is timed, so speed is always read next to quality.
//!
//! Run: `cargo bench --bench search` (pin it, e.g. `taskset -c 1`, on a shared machine).
//! Real-data comparisons with hnswlib are the `hnswx bench` command's job.

use criterion::{BenchmarkId, Criterion, Throughput};
use hnswx::data::{exact_knn, gaussian_mixture, recall, Table};
use hnswx::kernels::{Choice, Isa};
use hnswx::{BruteForce, Index, Metric, Params};
use std::hint::black_box;
use std::time::Duration;

const N: usize = 50_000;
const DIM: usize = 128;
const QUERIES: usize = 1_000;
const K: usize = 10;

/// Built on one thread: the graph is then the same on every run (the seed fixes it), so
/// two runs of this bench compare code, not graphs.
fn build(base: &Table<f32>, choice: Choice) -> Index {
    let index = Index::new(Params::new(DIM, Metric::L2).kernel(choice), N).unwrap();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    one.install(|| index.add_batch(&(0..N as u64).collect::<Vec<_>>(), base.as_slice()))
        .unwrap();
    index
}

fn main() {
    let (base, queries) = gaussian_mixture(N + QUERIES, DIM, 100, 1.0, 1).split_at(N);
    let truth = exact_knn(&base, &queries, Metric::L2, K).unwrap();
    // The exact index is also the baseline timed below.
    let mut exact = BruteForce::new(DIM, Metric::L2).unwrap();
    exact
        .add_batch(&(0..N as u64).collect::<Vec<_>>(), base.as_slice())
        .unwrap();
    let index = build(&base, Choice::Auto);
    println!("{}", hnswx::build_info());
    println!(
        "data: Gaussian mixture {N} × {DIM}, 100 clusters; {QUERIES} queries; kernel {}",
        index.kernel().isa()
    );

    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(4));
    let recall_of = |index: &Index, ef: usize| {
        let found: Vec<Vec<u64>> = queries
            .rows()
            .map(|q| index.search(q, K, ef).unwrap().iter().map(|h| h.label).collect())
            .collect();
        recall(&found, &truth, K)
    };

    let mut g = c.benchmark_group("search/ef");
    g.throughput(Throughput::Elements(1));
    for ef in [16, 32, 64, 128, 256] {
        println!("ef {ef}: recall@10 {:.4}", recall_of(&index, ef));
        let mut out = Vec::with_capacity(K);
        let mut i = 0;
        g.bench_function(BenchmarkId::from_parameter(ef), |b| {
            b.iter(|| {
                i = (i + 1) % QUERIES;
                index.search_into(black_box(queries.row(i)), K, ef, &mut out).unwrap();
                black_box(&out);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("search/kernel-ef64");
    g.throughput(Throughput::Elements(1));
    for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
        let index = build(&base, Choice::Force(isa));
        println!("{isa}: recall@10 at ef 64 {:.4}", recall_of(&index, 64));
        let mut out = Vec::with_capacity(K);
        let mut i = 0;
        g.bench_function(BenchmarkId::from_parameter(isa), |b| {
            b.iter(|| {
                i = (i + 1) % QUERIES;
                index.search_into(black_box(queries.row(i)), K, 64, &mut out).unwrap();
                black_box(&out);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("search/exact");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    let mut i = 0;
    g.bench_function("brute-force", |b| {
        b.iter(|| {
            i = (i + 1) % QUERIES;
            black_box(exact.search(black_box(queries.row(i)), K).unwrap());
        })
    });
    g.finish();
    c.final_summary();
}
