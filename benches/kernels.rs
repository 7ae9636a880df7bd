//! Distance-kernel benchmark: every instruction set this CPU has, the plain scalar loop, and
//! the `simsimd` crate (the kernels usearch uses), for L2² and inner product, one-to-one and
//! one-to-many, at the dimensions of common embedding and descriptor sets.
//!
//! Run: `cargo bench --bench kernels` (add a criterion filter such as `-- l2sq/one` to narrow
//! it). After the measurements it prints the build and CPU facts and a table of median
//! ns/call, GFLOP/s and ratios, read from criterion's own estimates of this run.
//!
//! FLOPs counted per element: 3 for L2² (sub, mul, add), 2 for the dot product (mul, add).
//!
//! One-to-one: two vectors that stay in L1, so this measures the arithmetic and call overhead.
//! One-to-many: 32 random rows (a layer-0 neighbour list at M = 16) out of a 256 MiB table
//! laid out like the index's (stride = dim rounded up to 8 floats; up to 2026-11-25, when the
//! index rounded to 16, 16: of the dims here only 100 differs, 104 now, 112 then), a different list each
//! call, so rows mostly come from DRAM as in a real search; our kernels prefetch the rows
//! ahead, simsimd is called once per row.
//!
//! Quantised rows (`quant/one`, `quant/many`; filter with `-- quant`): the SQ8 kernels
//! `dot_f32_u8` and, one-to-many only, `dot_i16_u8_many` (`u8-idot`: integer weights, the
//! kernel the index's walk uses; the safe call checks the weights once per call, 1/32 of
//! the row work, so its one-to-one form would mostly time that check) and the `f16` kernels (`l2sq_f32_f16`, `dot_f32_f16`) beside the `f32` ones,
//! every instruction set, at dims 96/128/384/768. One-to-many draws its 32 rows from tables of
//! the same row count (that of a 128 MiB `f32` table, rows padded to 64 bytes), so the `f16`
//! and `u8` tables are a half and a quarter of its size, as they would be in an index.
//!
//! Prefetch on and off (`prefetch`; filter with `-- prefetch`): the one-to-many SQ8 integer
//! kernel and the `f32` L2² kernel at 128-d, 32 random rows a call from tables of 256 KiB
//! (in L2 where it holds 1 MiB: the id lists take another 512 KiB), 8 MiB (in a large L3) and 256 MiB (DRAM), with `Prefetch::Ahead` and
//! `Prefetch::Off`, on the best instruction set and AVX2: what the index's rule (no row
//! prefetch while the walked rows fit L2) rests on, in isolation.
//!
//! simsimd picks its own best backend at run time (AVX-512 where the CPU has it). To compare
//! against its AVX2 ("haswell") kernels instead, build it without the newer ones, e.g.
//! `SIMSIMD_TARGET_SKYLAKE=0 SIMSIMD_TARGET_ICE=0 SIMSIMD_TARGET_GENOA=0
//! SIMSIMD_TARGET_SAPPHIRE=0 SIMSIMD_TARGET_TURIN=0 SIMSIMD_TARGET_SIERRA=0
//! CARGO_TARGET_DIR=target/simsimd-haswell cargo bench --bench kernels`.

use aligned_vec::{AVec, ConstAlign};
use criterion::{BenchmarkId, Criterion, Throughput};
use hnswx::kernels::{self, f16, Choice, Element, Isa, Metric, Prefetch, Rows};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use simsimd::SpatialSimilarity;
use std::hint::black_box;
use std::time::Duration;

const DIMS: [usize; 9] = [32, 96, 100, 128, 256, 384, 768, 960, 1536];
const MANY_TABLE_BYTES: usize = 256 << 20;
const MANY_IDS: usize = 32;
const MANY_LISTS: usize = 4096;

fn random_vec(rng: &mut Xoshiro256PlusPlus, n: usize) -> AVec<f32, ConstAlign<64>> {
    AVec::from_iter(
        64,
        (0..n).map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0),
    )
}

fn ours() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
}

fn flops(metric: Metric, dim: usize) -> u64 {
    match metric {
        Metric::L2 => 3 * dim as u64,
        _ => 2 * dim as u64,
    }
}

fn simsimd_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    match metric {
        Metric::L2 => f32::l2sq(a, b).unwrap(),
        _ => 1.0 - f32::dot(a, b).unwrap(),
    }
}

fn group_name(metric: Metric, mode: &str) -> String {
    let m = if metric == Metric::L2 { "l2sq" } else { "ip" };
    format!("{m}/{mode}")
}

fn configure(c: &mut Criterion) -> Criterion {
    std::mem::take(c)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
        .sample_size(20)
}

fn one_to_one(c: &mut Criterion, metric: Metric) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut group = c.benchmark_group(group_name(metric, "one"));
    for dim in DIMS {
        let a = random_vec(&mut rng, dim);
        let b = random_vec(&mut rng, dim);
        group.throughput(Throughput::Elements(flops(metric, dim)));
        for isa in ours() {
            let k = kernels::select(Choice::Force(isa)).unwrap().metric(metric);
            group.bench_with_input(BenchmarkId::new(isa.name(), dim), &dim, |bench, _| {
                bench.iter(|| k.distance(black_box(&a), black_box(&b)))
            });
        }
        group.bench_with_input(BenchmarkId::new("simsimd", dim), &dim, |bench, _| {
            bench.iter(|| simsimd_distance(metric, black_box(&a), black_box(&b)))
        });
    }
    group.finish();
}

fn one_to_many(c: &mut Criterion, metric: Metric) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let mut group = c.benchmark_group(group_name(metric, "many"));
    for dim in DIMS {
        let stride = dim.div_ceil(8) * 8;
        let n = MANY_TABLE_BYTES / (stride * 4);
        let table = random_vec(&mut rng, n * stride);
        let rows = Rows::new(&table, dim, stride).unwrap();
        let q = random_vec(&mut rng, dim);
        let lists: Vec<u32> = (0..MANY_IDS * MANY_LISTS)
            .map(|_| (rng.next_u64() % n as u64) as u32)
            .collect();
        let mut out = vec![0.0f32; MANY_IDS];
        group.throughput(Throughput::Elements(flops(metric, dim) * MANY_IDS as u64));
        for isa in ours() {
            let k = kernels::select(Choice::Force(isa)).unwrap().metric(metric);
            let mut next = lists.chunks_exact(MANY_IDS).cycle();
            group.bench_with_input(BenchmarkId::new(isa.name(), dim), &dim, |bench, _| {
                bench.iter(|| {
                    k.distances(black_box(&q), rows, next.next().unwrap(), &mut out);
                    black_box(&out);
                })
            });
        }
        let mut next = lists.chunks_exact(MANY_IDS).cycle();
        group.bench_with_input(BenchmarkId::new("simsimd", dim), &dim, |bench, _| {
            bench.iter(|| {
                for (o, &id) in out.iter_mut().zip(next.next().unwrap()) {
                    *o = simsimd_distance(metric, black_box(&q), rows.row(id as usize).unwrap()) as f32;
                }
                black_box(&out);
            })
        });
    }
    group.finish();
}

const QUANT_DIMS: [usize; 4] = [96, 128, 384, 768];
const QUANT_TABLE_BYTES: usize = 128 << 20;
/// The kernels of the quantised groups, in report order: (name, the f32 kernel it replaces).
const QUANT_KINDS: [(&str, &str); 6] = [
    ("f32-l2sq", "f32-l2sq"),
    ("f32-dot", "f32-dot"),
    ("f16-l2sq", "f32-l2sq"),
    ("f16-dot", "f32-dot"),
    ("u8-dot", "f32-dot"),
    ("u8-idot", "f32-dot"),
];

fn available<E: Element>() -> Vec<Isa> {
    Isa::ALL
        .into_iter()
        .filter(|i| i.availability_for::<E>().is_ok())
        .collect()
}

fn to_halves(v: &[f32]) -> AVec<f16, ConstAlign<64>> {
    AVec::from_iter(64, v.iter().map(|&x| f16::from_f32(x)))
}

/// A value in [-1, 1) as an SQ8 code (offset −1, scale 2/255).
fn code(x: f32) -> u8 {
    ((x + 1.0) * 127.5) as u8
}

fn to_codes(v: &[f32]) -> AVec<u8, ConstAlign<64>> {
    AVec::from_iter(64, v.iter().map(|&x| code(x)))
}

/// A query in [-1, 1) as the integer weights of `dot_i16_u8` (the walk's form: scaled to
/// ±`MAX_INT_WEIGHT` and rounded).
fn to_weights(v: &[f32]) -> Vec<i16> {
    let max = f32::from(kernels::MAX_INT_WEIGHT);
    v.iter().map(|&x| (x * max).round().clamp(-max, max) as i16).collect()
}

/// `f32`, `f16` and `u8` kernels side by side, one-to-one: both vectors in L1.
fn quant_one(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let mut group = c.benchmark_group("quant/one");
    for dim in QUANT_DIMS {
        let q = random_vec(&mut rng, dim);
        let x = random_vec(&mut rng, dim);
        let (xh, xc) = (to_halves(&x), to_codes(&x));
        group.throughput(Throughput::Elements(dim as u64));
        for isa in available::<f32>() {
            let k = kernels::select(Choice::Force(isa)).unwrap();
            group.bench_with_input(BenchmarkId::new(format!("f32-l2sq-{isa}"), dim), &dim, |b, _| {
                b.iter(|| k.l2sq(black_box(&q), black_box(&x)))
            });
            group.bench_with_input(BenchmarkId::new(format!("f32-dot-{isa}"), dim), &dim, |b, _| {
                b.iter(|| k.dot(black_box(&q), black_box(&x)))
            });
        }
        for isa in available::<f16>() {
            let k = kernels::select_for::<f16>(Choice::Force(isa)).unwrap();
            group.bench_with_input(BenchmarkId::new(format!("f16-l2sq-{isa}"), dim), &dim, |b, _| {
                b.iter(|| k.l2sq(black_box(&q), black_box(&xh)))
            });
            group.bench_with_input(BenchmarkId::new(format!("f16-dot-{isa}"), dim), &dim, |b, _| {
                b.iter(|| k.dot(black_box(&q), black_box(&xh)))
            });
        }
        for isa in available::<u8>() {
            let k = kernels::select_for::<u8>(Choice::Force(isa)).unwrap();
            group.bench_with_input(BenchmarkId::new(format!("u8-dot-{isa}"), dim), &dim, |b, _| {
                b.iter(|| k.dot_f32_u8(black_box(&q), black_box(&xc)))
            });
        }
    }
    group.finish();
}

/// One-to-many: 32 random rows per call from tables of the same row count, a different list
/// each call.
fn quant_many(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let mut group = c.benchmark_group("quant/many");
    for dim in QUANT_DIMS {
        let stride = dim.div_ceil(16) * 16;
        let n = QUANT_TABLE_BYTES / (stride * 4);
        let table = random_vec(&mut rng, n * stride);
        // Codes padded with zeros to 64 bytes, halves to 32 (64 bytes), as f32 rows to 16 floats.
        let stride_c = dim.div_ceil(64) * 64;
        let stride_h = dim.div_ceil(32) * 32;
        let src: &[f32] = &table;
        let relaid = |to: usize| {
            (0..n * to).map(move |i| {
                let (row, col) = (i / to, i % to);
                if col < dim {
                    src[row * stride + col]
                } else {
                    0.0
                }
            })
        };
        let codes: AVec<u8, ConstAlign<64>> = AVec::from_iter(64, relaid(stride_c).map(code));
        let halves: AVec<f16, ConstAlign<64>> = AVec::from_iter(64, relaid(stride_h).map(f16::from_f32));
        let rows = Rows::new(&table, dim, stride).unwrap();
        let rows_h = Rows::new(&halves[..], dim, stride_h).unwrap();
        let rows_c = Rows::new(&codes[..], dim, stride_c).unwrap();
        let q = random_vec(&mut rng, dim);
        let lists: Vec<u32> = (0..MANY_IDS * MANY_LISTS)
            .map(|_| (rng.next_u64() % n as u64) as u32)
            .collect();
        let mut out = vec![0.0f32; MANY_IDS];
        group.throughput(Throughput::Elements((dim * MANY_IDS) as u64));
        for isa in available::<f32>() {
            let k = kernels::select(Choice::Force(isa)).unwrap();
            for (name, metric) in [("f32-l2sq", Metric::L2), ("f32-dot", Metric::InnerProduct)] {
                let m = k.metric(metric);
                let mut next = lists.chunks_exact(MANY_IDS).cycle();
                group.bench_with_input(BenchmarkId::new(format!("{name}-{isa}"), dim), &dim, |b, _| {
                    b.iter(|| {
                        m.distances(black_box(&q), rows, next.next().unwrap(), &mut out);
                        black_box(&out);
                    })
                });
            }
        }
        for isa in available::<f16>() {
            let k = kernels::select_for::<f16>(Choice::Force(isa)).unwrap();
            for (name, metric) in [("f16-l2sq", Metric::L2), ("f16-dot", Metric::InnerProduct)] {
                let m = k.metric(metric);
                let mut next = lists.chunks_exact(MANY_IDS).cycle();
                group.bench_with_input(BenchmarkId::new(format!("{name}-{isa}"), dim), &dim, |b, _| {
                    b.iter(|| {
                        m.distances(black_box(&q), rows_h, next.next().unwrap(), &mut out);
                        black_box(&out);
                    })
                });
            }
        }
        let w = to_weights(&q);
        for isa in available::<u8>() {
            let k = kernels::select_for::<u8>(Choice::Force(isa)).unwrap();
            let mut next = lists.chunks_exact(MANY_IDS).cycle();
            group.bench_with_input(BenchmarkId::new(format!("u8-dot-{isa}"), dim), &dim, |b, _| {
                b.iter(|| {
                    k.dot_f32_u8_many(black_box(&q), rows_c, next.next().unwrap(), &mut out);
                    black_box(&out);
                })
            });
            let mut next = lists.chunks_exact(MANY_IDS).cycle();
            group.bench_with_input(BenchmarkId::new(format!("u8-idot-{isa}"), dim), &dim, |b, _| {
                b.iter(|| {
                    k.dot_i16_u8_many(black_box(&w), rows_c, next.next().unwrap(), &mut out);
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

/// The quantised groups' table: median ns per call (per 32-row call for `many`) and the
/// speed-up over the `f32` kernel of the same metric, instruction set and dimension.
fn quant_report() {
    for mode in ["one", "many"] {
        let group = format!("quant/{mode}");
        if !QUANT_DIMS
            .iter()
            .any(|&d| median_ns(&group, &format!("f32-dot-{}", Isa::Scalar), d).is_some())
        {
            continue;
        }
        let isas = ours();
        println!(
            "### {group} (median ns per {}; speed-up over the same ISA's f32 kernel in brackets)\n",
            if mode == "one" { "call" } else { "32-row call" }
        );
        print!("| dim | kernel |");
        for isa in &isas {
            print!(" {isa} |");
        }
        println!();
        print!("|---:|---|");
        for _ in &isas {
            print!("---:|");
        }
        println!();
        for dim in QUANT_DIMS {
            for (kind, base) in QUANT_KINDS {
                print!("| {dim} | {kind} |");
                for isa in &isas {
                    match (
                        median_ns(&group, &format!("{kind}-{isa}"), dim),
                        median_ns(&group, &format!("{base}-{isa}"), dim),
                    ) {
                        (Some(ns), Some(f)) if kind != base => print!(" {ns:.1} ({:.2}×) |", f / ns),
                        (Some(ns), _) => print!(" {ns:.1} |"),
                        _ => print!(" – |"),
                    }
                }
                println!();
            }
        }
        println!();
    }
}

/// Median time in ns of one criterion benchmark of this run, from its `estimates.json`.
fn median_ns(group: &str, function: &str, dim: usize) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!(
        "{dir}/criterion/{}/{function}/{dim}/new/estimates.json",
        group.replace('/', "_")
    );
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn report() {
    let info = hnswx::build_info();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("\n## Kernel benchmark report\n");
    println!("cpu:       {cpu}");
    println!(
        "dispatch:  auto = {} (available: {})",
        kernels::auto().isa(),
        ours().iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
    );
    let caps = simsimd::capabilities::uses_sapphire()
        .then_some("sapphire")
        .or(simsimd::capabilities::uses_genoa().then_some("genoa"))
        .or(simsimd::capabilities::uses_ice().then_some("ice"))
        .or(simsimd::capabilities::uses_skylake().then_some("skylake (AVX-512)"))
        .or(simsimd::capabilities::uses_haswell().then_some("haswell (AVX2)"))
        .or(simsimd::capabilities::uses_neon().then_some("neon"))
        .unwrap_or("serial");
    println!("simsimd:   highest backend this CPU allows: {caps}");
    let overrides: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SIMSIMD_TARGET_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !overrides.is_empty() {
        // simsimd's build script compiles out the backends set to 0 here (assuming the bench
        // was built in this same environment), so simsimd runs its best remaining one.
        println!("simsimd:   backends overridden at build time: {}", overrides.join(" "));
    }
    println!("{info}\n");
    quant_report();
    let best = kernels::auto().isa().name();
    for metric in [Metric::L2, Metric::InnerProduct] {
        for mode in ["one", "many"] {
            let group = group_name(metric, mode);
            let calls = if mode == "one" { 1.0 } else { MANY_IDS as f64 };
            let mut cols: Vec<&str> = ours().iter().map(|i| i.name()).collect();
            cols.push("simsimd");
            // A filtered run (`-- '/one/'`) measures only some groups: print only those.
            if !DIMS
                .iter()
                .any(|&dim| cols.iter().any(|c| median_ns(&group, c, dim).is_some()))
            {
                continue;
            }
            println!(
                "### {group} (median ns per {}; GFLOP/s in brackets)\n",
                if mode == "one" { "call" } else { "32-row call" }
            );
            print!("| dim |");
            for c in &cols {
                print!(" {c} |");
            }
            println!(" avx2 / simsimd | {best} / simsimd | {best} / scalar |");
            print!("|---:|");
            for _ in 0..cols.len() + 3 {
                print!("---:|");
            }
            println!();
            for dim in DIMS {
                print!("| {dim} |");
                for c in &cols {
                    match median_ns(&group, c, dim) {
                        Some(ns) => print!(" {ns:.1} ({:.1}) |", flops(metric, dim) as f64 * calls / ns),
                        None => print!(" – |"),
                    }
                }
                let ratio = |num: &str, den: &str| match (median_ns(&group, num, dim), median_ns(&group, den, dim)) {
                    (Some(a), Some(b)) => format!("{:.2}×", b / a),
                    _ => "–".to_string(),
                };
                println!(
                    " {} | {} | {} |",
                    ratio("avx2", "simsimd"),
                    ratio(best, "simsimd"),
                    ratio(best, "scalar")
                );
            }
            println!("\n(ratios are speed-ups: how many times faster the first is than the second)\n");
        }
    }
}

/// `prefetch` group: the same 32-row calls with and without the kernels' row prefetch, on
/// tables that fit L2, a large L3, or neither.
fn prefetch_on_off(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let mut group = c.benchmark_group("prefetch");
    let dim = 128;
    let mut isas = vec![kernels::auto().isa()];
    if isas[0] != Isa::Avx2 && Isa::Avx2.is_available() {
        isas.push(Isa::Avx2);
    }
    for (label, bytes) in [("256K", 256usize << 10), ("8M", 8 << 20), ("256M", 256 << 20)] {
        // Rows as the index lays them out: f32 rows of `dim` floats, code rows of 128 bytes.
        let n = bytes / (dim * 4);
        let table = random_vec(&mut rng, n * dim);
        let rows = Rows::new(&table, dim, dim).unwrap();
        let nc = bytes / dim;
        let codes: AVec<u8, ConstAlign<64>> = AVec::from_iter(64, (0..nc * dim).map(|_| rng.next_u32() as u8));
        let rows_c = Rows::new(&codes[..], dim, dim).unwrap();
        let q = random_vec(&mut rng, dim);
        let w = to_weights(&q);
        let pick = |rng: &mut Xoshiro256PlusPlus, n: usize| -> Vec<u32> {
            (0..MANY_IDS * MANY_LISTS)
                .map(|_| (rng.next_u64() % n as u64) as u32)
                .collect()
        };
        let (lists, lists_c) = (pick(&mut rng, n), pick(&mut rng, nc));
        let mut out = vec![0.0f32; MANY_IDS];
        for &isa in &isas {
            let k = kernels::select(Choice::Force(isa)).unwrap().metric(Metric::L2);
            // An AVX-512F CPU with neither BW nor AVX2 has no SQ8 table of that name.
            let kc = kernels::select_for::<u8>(Choice::Force(isa)).ok();
            for (mode, prefetch) in [("ahead", Prefetch::Ahead), ("off", Prefetch::Off)] {
                let mut next = lists.chunks_exact(MANY_IDS).cycle();
                group.bench_function(format!("f32-l2sq-{isa}-{mode}/{label}"), |b| {
                    b.iter(|| {
                        k.distances_with(black_box(&q), rows, next.next().unwrap(), &mut out, prefetch);
                        black_box(&out);
                    })
                });
                let Some(kc) = kc else { continue };
                let mut next = lists_c.chunks_exact(MANY_IDS).cycle();
                group.bench_function(format!("u8-idot-{isa}-{mode}/{label}"), |b| {
                    b.iter(|| {
                        kc.dot_i16_u8_many_with(black_box(&w), rows_c, next.next().unwrap(), &mut out, prefetch);
                        black_box(&out);
                    })
                });
            }
        }
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    c = configure(&mut c);
    for metric in [Metric::L2, Metric::InnerProduct] {
        one_to_one(&mut c, metric);
        one_to_many(&mut c, metric);
    }
    quant_one(&mut c);
    quant_many(&mut c);
    prefetch_on_off(&mut c);
    c.final_summary();
    report();
}
