//! Which distance kernel does this machine use, and how fast is it?
//!
//! `cargo run --release --example kernels` prints the build facts, the instruction set chosen
//! by run-time dispatch (or by `HNSWX_KERNEL`), and a quick median timing of every kernel this
//! CPU can run at a few dimensions. For the full, statistically sound comparison against the
//! scalar loop and simsimd, run `cargo bench --bench kernels`.

use hnswx::kernels::{self, Choice, Isa, Metric};
use std::hint::black_box;
use std::time::Instant;

/// Median over 15 runs of the mean time per call over enough calls to take ~2 ms.
fn ns_per_call(f: impl Fn() -> f32) -> f64 {
    let mut calls = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..calls {
            black_box(f());
        }
        if t.elapsed().as_micros() > 2_000 {
            break;
        }
        calls *= 2;
    }
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    println!("hnswx {} kernels demo\n", env!("CARGO_PKG_VERSION"));
    println!("{}\n", hnswx::build_info());
    let chosen = match kernels::from_env() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let how = if std::env::var_os(kernels::ENV_VAR).is_some() {
        "forced by HNSWX_KERNEL"
    } else {
        "auto-detected"
    };
    println!("kernel in use: {} ({how})", chosen.isa());
    for isa in Isa::ALL {
        match isa.availability() {
            Ok(()) => println!("  {:<9} available", isa.name()),
            Err(why) => println!("  {:<9} not available: {why}", isa.name()),
        }
    }

    let dims = [96usize, 128, 384, 768, 1536];
    println!("\nL2² one-to-one, median ns per call (GFLOP/s, 3 flops per element):\n");
    print!("| kernel   |");
    for d in dims {
        print!(" dim {d:<9} |");
    }
    println!("\n|----------|{}", "---------------|".repeat(dims.len()));
    for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
        let k = kernels::select(Choice::Force(isa))
            .expect("available")
            .metric(Metric::L2);
        print!("| {:<8} |", isa.name());
        for d in dims {
            let a: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..d).map(|i| (i as f32 * 0.11).cos()).collect();
            let ns = ns_per_call(|| k.distance(black_box(&a), black_box(&b)));
            print!(" {:>5.1} ({:>5.1}) |", ns, 3.0 * d as f64 / ns);
        }
        println!();
    }
    println!("\nA quick look, not a benchmark: see `cargo bench --bench kernels` for the real comparison.");
}
