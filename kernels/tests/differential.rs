//! Every kernel this CPU can run against the `f64` reference, for every dimension 1..=1100,
//! from aligned and misaligned starts, on random and adversarial values.
//!
//! Tolerance: `reference::error_bound(n, Σ|termᵢ|)` — the worst-case rounding error of any
//! f32 summation order (see its docs for the derivation). Inputs made of small integers must
//! come out exact, and one-hot inputs catch any skipped or doubled element exactly.

use aligned_vec::{AVec, ConstAlign};
use hnswx_kernels::{reference, select, Choice, Isa, Kernels, Metric, Prefetch, Rows};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::io::Write;
use std::sync::Once;

const MAX_DIM: usize = 1100;
/// Start offsets (in floats) from a 64-byte boundary: aligned, and off by every kind of amount.
const OFFSETS: [(usize, usize); 5] = [(0, 0), (1, 3), (3, 8), (8, 1), (15, 7)];

/// The kernels this CPU can run; reports once per test binary which ran and which were skipped
/// (written to stderr directly, so it shows without `--nocapture`).
fn kernels() -> Vec<&'static Kernels> {
    static REPORT: Once = Once::new();
    REPORT.call_once(|| {
        let mut line = String::from("hnswx-kernels differential tests:");
        for isa in Isa::ALL {
            match isa.availability() {
                Ok(()) => line += &format!(" {isa}=ran"),
                Err(why) => line += &format!(" {isa}=skipped ({why})"),
            }
        }
        let _ = writeln!(std::io::stderr(), "{line}");
    });
    Isa::ALL
        .into_iter()
        .filter_map(|isa| select(Choice::Force(isa)).ok())
        .collect()
}

type Gen = fn(&mut Xoshiro256PlusPlus) -> f32;

fn unit(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn sign(rng: &mut Xoshiro256PlusPlus) -> f32 {
    if rng.next_u32() & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// Value distributions: name and generator.
const CASES: [(&str, Gen); 5] = [
    ("uniform", |r| (unit(r) * 2.0 - 1.0) as f32),
    // Up to 1e17: squares and sums stay below f32::MAX (4·1e34·1100 ≈ 4.4e37 < 3.4e38).
    ("large", |r| sign(r) * (1e15 * 100f64.powf(unit(r))) as f32),
    // Subnormals (below 1.18e-38) and zeros: products underflow.
    ("denormal", |r| {
        if r.next_u32() % 4 == 0 {
            0.0
        } else {
            sign(r) * f32::from_bits(1 + r.next_u32() % 0x007f_ffff)
        }
    }),
    ("zeros", |_| 0.0),
    // Magnitudes from 2^-40 to 2^40 with random signs: heavy cancellation in dot products.
    ("mixed", |r| sign(r) * (2f64.powf(unit(r) * 80.0 - 40.0)) as f32),
];

/// A buffer of `n` values starting `offset` floats past a 64-byte boundary.
struct Buf {
    data: AVec<f32, ConstAlign<64>>,
    offset: usize,
}

impl Buf {
    fn new(rng: &mut Xoshiro256PlusPlus, gen: Gen, n: usize, offset: usize) -> Buf {
        let data = AVec::from_iter(
            64,
            (0..n + offset).map(|i| if i < offset { f32::NAN } else { gen(rng) }),
        );
        Buf { data, offset }
    }
    fn get(&self) -> &[f32] {
        &self.data[self.offset..]
    }
}

#[test]
fn l2sq_dot_and_ip_match_the_f64_reference_for_every_dim() {
    let ks = kernels();
    let u = f64::powi(2.0, -24);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5eed);
    for (case, gen) in CASES {
        for n in 1..=MAX_DIM {
            for offs in OFFSETS {
                let a = Buf::new(&mut rng, gen, n, offs.0);
                let b = Buf::new(&mut rng, gen, n, offs.1);
                let (a, b) = (a.get(), b.get());
                let l2 = reference::l2sq(a, b);
                let l2_tol = reference::error_bound(n, l2);
                let dot = reference::dot(a, b);
                let dot_tol = reference::error_bound(n, reference::dot_magnitude(a, b));
                // 1 − dot rounds once more, relative to |1 − dot| ≤ 1 + |dot|.
                let ip_tol = dot_tol + 2.0 * u * (1.0 + dot.abs());
                let check = |isa: Isa, what: &str, got: f32, want: f64, tol: f64| {
                    assert!(
                        got.is_finite() && (got as f64 - want).abs() <= tol,
                        "{isa} {what} [{case}] dim {n} offsets {offs:?}: got {got:e}, want {want:e} ± {tol:e}"
                    )
                };
                for k in &ks {
                    let isa = k.isa();
                    check(isa, "l2sq", k.l2sq(a, b), l2, l2_tol);
                    check(isa, "dot", k.dot(a, b), dot, dot_tol);
                    check(isa, "ip", k.distance(Metric::InnerProduct, a, b), 1.0 - dot, ip_tol);
                    check(isa, "cosine", k.distance(Metric::Cosine, a, b), 1.0 - dot, ip_tol);
                }
            }
        }
    }
}

#[test]
fn small_integer_inputs_are_exact_for_every_dim() {
    // |values| ≤ 8 and n ≤ 1100: every partial sum is an integer below 2^24, so any order of
    // f32 additions is exact and every kernel must return the reference exactly.
    let ks = kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let gen: Gen = |r| (r.next_u32() % 17) as f32 - 8.0;
    for n in 1..=MAX_DIM {
        let offs = OFFSETS[n % OFFSETS.len()];
        let a = Buf::new(&mut rng, gen, n, offs.0);
        let b = Buf::new(&mut rng, gen, n, offs.1);
        let (a, b) = (a.get(), b.get());
        for k in &ks {
            assert_eq!(k.l2sq(a, b) as f64, reference::l2sq(a, b), "{} l2sq dim {n}", k.isa());
            assert_eq!(k.dot(a, b) as f64, reference::dot(a, b), "{} dot dim {n}", k.isa());
        }
    }
}

#[test]
fn one_hot_inputs_find_every_element_exactly_once() {
    // A kernel that skips or double-counts any element (a tail bug, an off-by-one in the
    // unrolled loop) gives a wrong integer here.
    let ks = kernels();
    let dims: Vec<usize> = (1..=80)
        .chain([127, 128, 129, 255, 256, 257, 383, 384, 385, 767, 1023, 1100])
        .collect();
    for n in dims {
        let ramp: Vec<f32> = (1..=n).map(|i| i as f32).collect();
        let mut hot = vec![0.0f32; n];
        for j in 0..n {
            hot[j] = 2.0;
            let mut other = vec![0.0f32; n];
            other[j] = 1.0;
            for k in &ks {
                assert_eq!(
                    k.dot(&hot, &ramp),
                    2.0 * (j + 1) as f32,
                    "{} dot dim {n} index {j}",
                    k.isa()
                );
                assert_eq!(k.l2sq(&hot, &other), 1.0, "{} l2sq dim {n} index {j}", k.isa());
            }
            hot[j] = 0.0;
        }
    }
}

#[test]
fn one_to_many_equals_one_to_one_bit_for_bit() {
    let ks = kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let dims: Vec<usize> = (1..=70).chain([96, 100, 128, 255, 384, 768, 960, 1100]).collect();
    for dim in dims {
        for stride in [dim, dim.div_ceil(16) * 16, dim + 5] {
            let rows_n = 50;
            for base_off in [0usize, 3] {
                let table = Buf::new(&mut rng, CASES[0].1, rows_n * stride, base_off);
                let rows = Rows::new(table.get(), dim, stride).unwrap();
                let q = Buf::new(&mut rng, CASES[0].1, dim, 1);
                let count = (rng.next_u32() % 41) as usize; // 0..=40, repeats allowed
                let ids: Vec<u32> = (0..count).map(|_| rng.next_u32() % rows_n as u32).collect();
                for k in &ks {
                    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
                        let m = k.metric(metric);
                        let mut out = vec![f32::NAN; count];
                        m.distances_with(q.get(), rows, &ids, &mut out, Prefetch::Ahead);
                        // Without the prefetches: the same results, bit for bit.
                        let mut off = vec![f32::NAN; out.len()];
                        m.distances_with(q.get(), rows, &ids, &mut off, Prefetch::Off);
                        assert!(
                            out.iter().zip(&off).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{} distances_with: prefetch off differs",
                            m.isa()
                        );
                        for (j, &id) in ids.iter().enumerate() {
                            let one = m.distance(q.get(), rows.row(id as usize).unwrap());
                            assert_eq!(
                                out[j].to_bits(),
                                one.to_bits(),
                                "{} {metric:?} dim {dim} stride {stride} row {id}",
                                k.isa()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn nan_in_either_input_gives_nan_and_infinity_overflows_to_infinity() {
    for k in kernels() {
        for n in [1usize, 7, 8, 9, 15, 16, 17, 33, 100, 1100] {
            for pos in [0, n / 2, n - 1] {
                let mut a = vec![0.5f32; n];
                let b = vec![0.25f32; n];
                a[pos] = f32::NAN;
                assert!(k.l2sq(&a, &b).is_nan(), "{} l2sq dim {n} pos {pos}", k.isa());
                assert!(k.dot(&b, &a).is_nan(), "{} dot dim {n} pos {pos}", k.isa());
                a[pos] = f32::INFINITY;
                assert_eq!(k.l2sq(&a, &b), f32::INFINITY, "{} l2sq inf dim {n}", k.isa());
                // Squares above f32::MAX overflow to +inf, as the reference does in f32.
                let big = vec![1e30f32; n];
                assert_eq!(k.l2sq(&big, &b), f32::INFINITY, "{} l2sq overflow dim {n}", k.isa());
            }
        }
    }
}

#[test]
fn empty_vectors_have_zero_distance() {
    for k in kernels() {
        assert_eq!(k.l2sq(&[], &[]), 0.0);
        assert_eq!(k.dot(&[], &[]), 0.0);
        assert_eq!(k.distance(Metric::InnerProduct, &[], &[]), 1.0);
    }
}

#[test]
#[should_panic(expected = "different lengths")]
fn mismatched_lengths_panic_with_a_clear_message() {
    let _ = hnswx_kernels::auto().l2sq(&[1.0, 2.0], &[1.0]);
}
