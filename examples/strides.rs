//! What the row stride costs and buys at search time: one saved index, its vectors laid out
//! at several strides (`dim` rounded up to 16, 8 and 4 floats, unpadded, and whole lines plus
//! a tail rounded up to a power of two), the same graph each time, searched in turn round
//! after round (each round a different slice of the queries, layouts in rotated order, so
//! that the machine's other load falls on every layout alike), timed in this thread's CPU
//! time (Linux). Prints, per stride, the slab's bytes per vector, the index's own count of
//! bytes per vector (`Index::memory_bytes`), recall@k, the median single-thread QPS over the
//! rounds and the median of each round's QPS ratio to rows rounded to 16. Strides that
//! coincide are listed once. The README's row-stride table comes from this.
//!
//! The layouts are made by rewriting the file's slab section (rows re-laid at the new stride,
//! later sections moved, checksums recomputed), which is how a file written with that stride
//! (`HNSWX_ROW_ALIGN`) looks; every one is loaded with `Index::read_from`, checks and all.
//!
//! Run (pinned to one core): `taskset -c 1 cargo run --release --example strides --
//! INDEX.hnswx QUERY.fvecs GT.ivecs [EF=64] [ROUNDS=20] [K=10]`

use hnswx::data::{read_fvecs, read_ivecs};
use hnswx::Index;
use std::io::Cursor;

// The file rewrite the tests use for old-layout files (`restride`), shared rather than copied.
#[path = "../tests/common/mod.rs"]
mod common;
use common::restride;

/// This thread's CPU time in seconds (Linux): unlike wall time it leaves out the time the
/// thread waited for a core that other processes held, which on a shared machine is most of
/// the noise.
fn cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant Linux defines.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(r, 0);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: strides INDEX.hnswx QUERY.fvecs GT.ivecs [EF=64] [ROUNDS=20] [K=10]");
        std::process::exit(2);
    }
    let file = std::fs::read(&args[0]).unwrap();
    let queries = read_fvecs(&args[1]).unwrap();
    let truth = read_ivecs(&args[2]).unwrap();
    let ef: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let rounds: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(20);
    let k: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(10);
    let dim = u32::from_le_bytes(file[24..28].try_into().unwrap()) as usize;
    let mut strides: Vec<(String, usize)> = Vec::new();
    // Whole lines and then a tail of 1, 2, 4, 8 or 16 floats (the tail rounded up to a
    // power of two): the fewest floats for which every row touches as few cache lines as a
    // row rounded to 16.
    let full = 16 * ((dim - 1) / 16);
    let tail = full + (dim - full).next_power_of_two();
    let candidates = [
        ("16", dim.div_ceil(16) * 16),
        ("8", dim.div_ceil(8) * 8),
        ("4", dim.div_ceil(4) * 4),
        ("none", dim),
        ("pow2 tail", tail),
    ];
    for (name, s) in candidates {
        match strides.iter_mut().find(|(_, t)| *t == s) {
            Some((n, _)) => *n = format!("{n}, {name}"),
            None => strides.push((name.into(), s)),
        }
    }
    let indexes: Vec<Index> = strides
        .iter()
        .map(|&(_, s)| {
            let b = restride(&file, s);
            Index::read_from(&mut Cursor::new(&b), b.len() as u64).unwrap()
        })
        .collect();
    let n = indexes[0].len();
    println!("{}", hnswx::build_info());
    println!("kernels:         {}", hnswx::kernels::auto().isa());
    println!(
        "{} × {dim}, {} queries, k = {k}, ef = {ef}, {rounds} rounds",
        n,
        queries.len()
    );
    let mut out = Vec::with_capacity(k);
    let mut recall = vec![0.0; indexes.len()];
    for (i, index) in indexes.iter().enumerate() {
        let mut hit = 0;
        for (j, q) in queries.rows().enumerate() {
            index.search_into(q, k, ef, &mut out).unwrap();
            hit += out
                .iter()
                .filter(|h| truth.row(j)[..k].contains(&(h.label as u32)))
                .count();
        }
        recall[i] = hit as f64 / (queries.len() * k) as f64;
    }
    // Each round runs every layout once, on a slice of the queries, starting with a
    // different layout each round; the ratio to the first layout (rows rounded to 16) is
    // taken within the round, so that load from elsewhere that spans a round cancels out.
    let per_round = queries.len().div_ceil(rounds.max(1)).max(200).min(queries.len());
    let mut qps = vec![Vec::new(); indexes.len()];
    let mut ratio = vec![Vec::new(); indexes.len()];
    for r in 0..rounds {
        let start = (r * per_round) % queries.len();
        let slice: Vec<&[f32]> = queries.rows().cycle().skip(start).take(per_round).collect();
        let mut this = vec![0.0; indexes.len()];
        for j in 0..indexes.len() {
            let i = (j + r) % indexes.len();
            let t = cpu_seconds();
            for q in &slice {
                indexes[i].search_into(q, k, ef, &mut out).unwrap();
            }
            this[i] = slice.len() as f64 / (cpu_seconds() - t);
        }
        for i in 0..indexes.len() {
            qps[i].push(this[i]);
            ratio[i].push(this[i] / this[0]);
        }
    }
    println!(
        "{} queries a round; QPS (queries per second of this thread's CPU time): median over rounds, and the median of each round's ratio to rows rounded to 16",
        per_round
    );
    println!("| rows rounded to | stride | slab B/vector | index B/vector | recall@{k} | median QPS | ratio to 16 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, (name, s)) in strides.iter().enumerate() {
        println!(
            "| {name} | {s} | {} | {:.0} | {:.4} | {:.0} | {:.3} |",
            4 * s,
            indexes[i].memory_bytes() as f64 / n as f64,
            recall[i],
            median(&qps[i]),
            median(&ratio[i]),
        );
    }
}
