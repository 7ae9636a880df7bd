//! Opening a saved index: `Index::load` (read into memory, every checksum and invariant
//! checked) against `Index::open_mmap` (mapped in place; graph invariants checked, and with
//! `Verify::All` the checksums too), on a 1,000,000-vector index, in one run.
//!
//! Run: `cargo bench --bench open`. The index (1M × 32 generated, M = 16,
//! ef_construction = 100) is built once and cached in `target/bench-data/` (a few minutes on
//! 2 cores); set `HNSWX_OPEN_N` for another size.

// SAFETY (every `open_mmap` below): the bench maps a file that only it writes, and only
// before mapping it.
use criterion::Criterion;
use hnswx::data::gaussian_mixture;
use hnswx::{Index, Metric, Params, Verify};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("HNSWX_OPEN_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let dir = target.join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("open-{n}x32.hnswx"));
    if unsafe { Index::open_mmap(&path, Verify::Structure) }.is_err() {
        eprintln!("building a {n} × 32 index for the open benchmark (once)…");
        let t = Instant::now();
        let data = gaussian_mixture(n, 32, 1000, 1.0, 9);
        let index = Index::new(Params::new(32, Metric::L2).ef_construction(100), n).unwrap();
        index
            .add_batch(&(0..n as u64).collect::<Vec<_>>(), data.as_slice())
            .unwrap();
        index.save(&path).unwrap();
        eprintln!("built and saved in {:.1} s", t.elapsed().as_secs_f64());
    }
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!("{}", hnswx::build_info());
    println!(
        "index: {} ({} vectors, {:.0} MiB)",
        path.display(),
        n,
        bytes as f64 / (1 << 20) as f64
    );
    let q = vec![0.25f32; 32];
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let mut g = c.benchmark_group("open");
    g.bench_function("load", |b| b.iter(|| Index::load(&path).unwrap()));
    g.bench_function("mmap-structure", |b| {
        b.iter(|| unsafe { Index::open_mmap(&path, Verify::Structure) }.unwrap())
    });
    g.bench_function("mmap-all", |b| {
        b.iter(|| unsafe { Index::open_mmap(&path, Verify::All) }.unwrap())
    });
    g.bench_function("mmap-structure+first-query", |b| {
        b.iter(|| {
            unsafe { Index::open_mmap(&path, Verify::Structure) }
                .unwrap()
                .search(&q, 10, 64)
                .unwrap()
        })
    });
    g.finish();
    c.final_summary();
}
