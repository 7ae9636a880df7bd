//! The quantised-row kernels (`f16` rows, SQ8 `u8` codes) of every instruction set this CPU
//! can run against the `f64` reference, for every dimension 1..=1100, from aligned and
//! misaligned starts (codes at odd byte offsets, `f16` rows at every 2-byte offset of a cache
//! line), on random and adversarial values; one-to-many against one-to-one bit for bit.
//!
//! Tolerance: `reference::error_bound(n, Σ|termᵢ|)`, the bound of the `f32` kernels
//! unchanged. Why it holds: a `u8` code (≤ 255) and an `f16` are both exactly representable in
//! `f32`, and every kernel converts them exactly (`vcvtdq2ps` of a `u8`, `vcvtph2ps`/`FCVTL`
//! of an `f16`), so the computation is an `f32` dot product (or L2²) of `f32` values, with the
//! same roundings as the derivation in `reference::error_bound`: one per product (a 24-bit
//! weight times an 8-bit code needs 32 bits), one per difference for L2², one per addition.
//! Small-integer inputs must come out exact, and one-hot inputs catch a skipped or doubled
//! element exactly.
//!
//! Every input buffer has 16 guard elements after its end (NaN weights and NaN halves, code
//! 255): a kernel that read past a slice and let it count would fail.

use aligned_vec::{AVec, ConstAlign};
use hnswx_kernels::{
    f16, reference, select_for, Choice, Element, Error, IntKernel, IntKernelUser, Isa, Kernels, Metric, Prefetch, Rows,
};
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::io::Write;
use std::sync::Once;

const MAX_DIM: usize = 1100;
/// Start offsets (query in floats, codes in bytes) from a 64-byte boundary.
const U8_OFFSETS: [(usize, usize); 5] = [(0, 0), (1, 3), (3, 33), (8, 1), (15, 63)];
/// Start offsets (query in floats, row in `f16`s, i.e. 2-byte steps) from a 64-byte boundary.
const F16_OFFSETS: [(usize, usize); 5] = [(0, 0), (1, 3), (3, 8), (8, 1), (15, 31)];
const GUARD: usize = 16;

/// Reports (once per element and test binary) which instruction sets ran and which were
/// skipped, on stderr so that it shows without `--nocapture`.
fn report<E: Element>(name: &str, once: &Once) {
    once.call_once(|| {
        let mut line = format!("hnswx-kernels quantised tests, {name} rows:");
        for isa in Isa::ALL {
            match isa.availability_for::<E>() {
                Ok(()) => line += &format!(" {isa}=ran"),
                Err(why) => line += &format!(" {isa}=skipped ({why})"),
            }
        }
        let _ = writeln!(std::io::stderr(), "{line}");
    });
}

fn tables<E: Element>() -> Vec<&'static Kernels<E>> {
    Isa::ALL
        .into_iter()
        .filter_map(|isa| select_for::<E>(Choice::Force(isa)).ok())
        .collect()
}

/// Every SQ8 table this CPU can run: one per instruction set, plus each AVX-512 integer
/// variant (VNNI, BW, AVX2 accumulator) that the AVX-512 table did not pick.
fn u8_kernels() -> Vec<&'static Kernels<u8>> {
    static ONCE: Once = Once::new();
    report::<u8>("u8 (SQ8)", &ONCE);
    #[allow(unused_mut)]
    let mut all = tables::<u8>();
    #[cfg(target_arch = "x86_64")]
    {
        static VARIANTS: Once = Once::new();
        let variants = hnswx_kernels::avx512_u8_variants();
        VARIANTS.call_once(|| {
            let names: Vec<&str> = variants.iter().map(|v| v.0).collect();
            let _ = writeln!(
                std::io::stderr(),
                "hnswx-kernels quantised tests, AVX-512 SQ8 variants: {names:?}"
            );
        });
        for &(_, k) in variants {
            if !all.iter().any(|&t| std::ptr::eq(t, k)) {
                all.push(k);
            }
        }
    }
    all
}

fn f16_kernels() -> Vec<&'static Kernels<f16>> {
    static ONCE: Once = Once::new();
    report::<f16>("f16", &ONCE);
    tables::<f16>()
}

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

/// `n` values starting `offset` elements past a 64-byte boundary, with `pad` before and
/// after (`GUARD` of them after the end).
struct Buf<T> {
    data: AVec<T, ConstAlign<64>>,
    offset: usize,
    n: usize,
}

impl<T: Copy> Buf<T> {
    fn new(n: usize, offset: usize, pad: T, mut gen: impl FnMut() -> T) -> Buf<T> {
        let data = AVec::from_iter(
            64,
            (0..offset + n + GUARD).map(|i| if i < offset || i >= offset + n { pad } else { gen() }),
        );
        Buf { data, offset, n }
    }
    fn get(&self) -> &[T] {
        &self.data[self.offset..self.offset + self.n]
    }
}

fn weights(n: usize, offset: usize, gen: impl FnMut() -> f32) -> Buf<f32> {
    Buf::new(n, offset, f32::NAN, gen)
}

fn codes(n: usize, offset: usize, gen: impl FnMut() -> u8) -> Buf<u8> {
    Buf::new(n, offset, 255, gen)
}

fn halves(n: usize, offset: usize, gen: impl FnMut() -> f16) -> Buf<f16> {
    Buf::new(n, offset, f16::NAN, gen)
}

type WGen = fn(&mut Xoshiro256PlusPlus) -> f32;
type CGen = fn(&mut Xoshiro256PlusPlus) -> u8;

/// SQ8 distributions: name, weight generator, code generator.
const U8_CASES: [(&str, WGen, CGen); 6] = [
    ("uniform", |r| (unit(r) * 2.0 - 1.0) as f32, |r| r.next_u32() as u8),
    // Every code 255 and weights up to 1e32: the largest sums (1e32·255·1100 ≈ 2.8e37 <
    // f32::MAX), the largest widened values.
    (
        "all-255, large",
        |r| sign(r) * (1e28 * 1e4f64.powf(unit(r))) as f32,
        |_| 255,
    ),
    ("zero weights", |_| 0.0, |r| r.next_u32() as u8),
    ("zero codes", |r| (unit(r) * 2.0 - 1.0) as f32, |_| 0),
    // Weights from 2^-40 to 2^40 with random signs: heavy cancellation.
    (
        "mixed",
        |r| sign(r) * (2f64.powf(unit(r) * 80.0 - 40.0)) as f32,
        |r| r.next_u32() as u8,
    ),
    // Subnormal weights: products underflow.
    (
        "denormal",
        |r| sign(r) * f32::from_bits(1 + r.next_u32() % 0x007f_ffff),
        |r| r.next_u32() as u8,
    ),
];

type QGen = fn(&mut Xoshiro256PlusPlus) -> f32;
type HGen = fn(&mut Xoshiro256PlusPlus) -> f16;

/// `f16` distributions: name, query generator, row generator.
const F16_CASES: [(&str, QGen, HGen); 5] = [
    (
        "uniform",
        |r| (unit(r) * 2.0 - 1.0) as f32,
        |r| f16::from_f64(unit(r) * 2.0 - 1.0),
    ),
    // The largest halves (up to 65504) against queries up to 1e17.
    (
        "large",
        |r| sign(r) * (1e15 * 100f64.powf(unit(r))) as f32,
        |r| f16::from_f32(sign(r) * 65504f32.powf(unit(r) as f32)),
    ),
    // Subnormal halves (below 2^-14) and zeros against subnormal or tiny queries.
    (
        "denormal",
        |r| {
            if r.next_u32() % 2 == 0 {
                sign(r) * f32::from_bits(1 + r.next_u32() % 0x007f_ffff)
            } else {
                sign(r) * 1e-6
            }
        },
        |r| {
            if r.next_u32() % 4 == 0 {
                f16::ZERO
            } else {
                f16::from_bits((1 + (r.next_u32() % 0x3ff) as u16) | (r.next_u32() as u16 & 0x8000))
            }
        },
    ),
    ("zeros", |_| 0.0, |_| f16::ZERO),
    // Query magnitudes 2^-40..2^40, halves 2^-24..2^15, random signs: heavy cancellation.
    (
        "mixed",
        |r| sign(r) * (2f64.powf(unit(r) * 80.0 - 40.0)) as f32,
        |r| f16::from_f64(sign(r) as f64 * 2f64.powf(unit(r) * 39.0 - 24.0)),
    ),
];

#[track_caller]
fn check(what: std::fmt::Arguments<'_>, got: f32, want: f64, tol: f64) {
    assert!(
        got.is_finite() && (got as f64 - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e} ± {tol:e}"
    );
}

#[test]
fn dot_f32_u8_matches_the_f64_reference_for_every_dim() {
    let ks = u8_kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5138);
    for (case, wg, cg) in U8_CASES {
        for n in 1..=MAX_DIM {
            for offs in U8_OFFSETS {
                let w = weights(n, offs.0, || wg(&mut rng));
                let c = codes(n, offs.1, || cg(&mut rng));
                let (w, c) = (w.get(), c.get());
                let want = reference::dot_u8(w, c);
                let tol = reference::error_bound(n, reference::dot_u8_magnitude(w, c));
                for k in &ks {
                    let got = k.dot_f32_u8(w, c);
                    check(
                        format_args!("{} dot_f32_u8 [{case}] dim {n} offsets {offs:?}", k.isa()),
                        got,
                        want,
                        tol,
                    );
                }
            }
        }
    }
}

#[test]
fn f16_l2sq_dot_ip_match_the_f64_reference_for_every_dim() {
    let ks = f16_kernels();
    let u = f64::powi(2.0, -24);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0xf16);
    for (case, qg, hg) in F16_CASES {
        for n in 1..=MAX_DIM {
            for offs in F16_OFFSETS {
                let q = weights(n, offs.0, || qg(&mut rng));
                let x = halves(n, offs.1, || hg(&mut rng));
                let (q, x) = (q.get(), x.get());
                let l2 = reference::l2sq_f16(q, x);
                let l2_tol = reference::error_bound(n, l2);
                let dot = reference::dot_f16(q, x);
                let dot_tol = reference::error_bound(n, reference::dot_f16_magnitude(q, x));
                // 1 − dot rounds once more, relative to |1 − dot| ≤ 1 + |dot|.
                let ip_tol = dot_tol + 2.0 * u * (1.0 + dot.abs());
                for k in &ks {
                    let isa = k.isa();
                    let at = |what: &str| format!("{isa} {what} [{case}] dim {n} offsets {offs:?}");
                    check(format_args!("{}", at("l2sq_f32_f16")), k.l2sq(q, x), l2, l2_tol);
                    check(format_args!("{}", at("dot_f32_f16")), k.dot(q, x), dot, dot_tol);
                    let ip = k.distance(Metric::InnerProduct, q, x);
                    check(format_args!("{}", at("ip")), ip, 1.0 - dot, ip_tol);
                    let cos = k.distance(Metric::Cosine, q, x);
                    check(format_args!("{}", at("cosine")), cos, 1.0 - dot, ip_tol);
                }
            }
        }
    }
}

#[test]
fn small_integer_inputs_are_exact_for_every_dim() {
    // |wᵢ| ≤ 8 integers, codes ≤ 255, n ≤ 1100: every partial sum is an integer below
    // 8·255·1100 < 2^24, so any order of f32 additions is exact. Likewise halves ≤ 8 in
    // magnitude against integer queries for L2² (16²·1100 < 2^24).
    let (ku, kh) = (u8_kernels(), f16_kernels());
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let int = |r: &mut Xoshiro256PlusPlus| (r.next_u32() % 17) as f32 - 8.0;
    for n in 1..=MAX_DIM {
        let (ow, oc) = U8_OFFSETS[n % U8_OFFSETS.len()];
        let w = weights(n, ow, || int(&mut rng));
        let c = codes(n, oc, || rng.next_u32() as u8);
        let (w, c) = (w.get(), c.get());
        for k in &ku {
            assert_eq!(
                k.dot_f32_u8(w, c) as f64,
                reference::dot_u8(w, c),
                "{} dot_f32_u8 dim {n}",
                k.isa()
            );
        }
        let (oq, ox) = F16_OFFSETS[n % F16_OFFSETS.len()];
        let q = weights(n, oq, || int(&mut rng));
        let x = halves(n, ox, || f16::from_f32(int(&mut rng)));
        let (q, x) = (q.get(), x.get());
        for k in &kh {
            assert_eq!(
                k.l2sq(q, x) as f64,
                reference::l2sq_f16(q, x),
                "{} l2sq_f32_f16 dim {n}",
                k.isa()
            );
            assert_eq!(
                k.dot(q, x) as f64,
                reference::dot_f16(q, x),
                "{} dot_f32_f16 dim {n}",
                k.isa()
            );
        }
    }
}

#[test]
fn one_hot_inputs_find_every_element_exactly_once() {
    // A kernel that skips or double-counts any element (a tail bug, an off-by-one in the
    // unrolled loop, a wrong lane order in the widening) gives a wrong integer here.
    let (ku, kh) = (u8_kernels(), f16_kernels());
    let dims: Vec<usize> = (1..=80)
        .chain([127, 128, 129, 255, 256, 257, 383, 384, 385, 767, 1023, 1100])
        .collect();
    for n in dims {
        let ramp_c: Vec<u8> = (0..n).map(|i| (i % 255) as u8 + 1).collect();
        let ramp_h: Vec<f16> = (0..n).map(|i| f16::from_f32((i % 2000) as f32 + 1.0)).collect();
        let mut hot = vec![0.0f32; n];
        for j in 0..n {
            hot[j] = 2.0;
            for k in &ku {
                assert_eq!(
                    k.dot_f32_u8(&hot, &ramp_c),
                    2.0 * ramp_c[j] as f32,
                    "{} dot_f32_u8 dim {n} index {j}",
                    k.isa()
                );
            }
            let mut other = vec![f16::ZERO; n];
            other[j] = f16::ONE;
            for k in &kh {
                assert_eq!(
                    k.dot(&hot, &ramp_h),
                    2.0 * ramp_h[j].to_f32(),
                    "{} dot_f32_f16 dim {n} index {j}",
                    k.isa()
                );
                assert_eq!(k.l2sq(&hot, &other), 1.0, "{} l2sq_f32_f16 dim {n} index {j}", k.isa());
            }
            hot[j] = 0.0;
        }
    }
}

fn many_dims() -> Vec<usize> {
    (1..=70).chain([96, 100, 128, 255, 384, 768, 960, 1100]).collect()
}

#[test]
fn u8_one_to_many_equals_one_to_one_bit_for_bit() {
    let ks = u8_kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    for dim in many_dims() {
        // Packed, padded to 64 bytes (the index's code rows), and an odd stride.
        for stride in [dim, dim.div_ceil(64) * 64, dim + 5] {
            let rows_n = 50;
            for base_off in [0usize, 3] {
                let table = codes(rows_n * stride, base_off, || rng.next_u32() as u8);
                let rows = Rows::new(table.get(), dim, stride).unwrap();
                let w = weights(dim, 1, || (unit(&mut rng) * 2.0 - 1.0) as f32);
                let count = (rng.next_u32() % 41) as usize; // 0..=40, repeats allowed
                let ids: Vec<u32> = (0..count).map(|_| rng.next_u32() % rows_n as u32).collect();
                for k in &ks {
                    let mut out = vec![f32::NAN; count];
                    k.dot_f32_u8_many_with(w.get(), rows, &ids, &mut out, Prefetch::Ahead);
                    // Without the prefetches: the same results, bit for bit.
                    let mut off = vec![f32::NAN; out.len()];
                    k.dot_f32_u8_many_with(w.get(), rows, &ids, &mut off, Prefetch::Off);
                    assert!(
                        out.iter().zip(&off).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{} dot_f32_u8_many_with: prefetch off differs",
                        k.isa()
                    );
                    for (j, &id) in ids.iter().enumerate() {
                        let one = k.dot_f32_u8(w.get(), rows.row(id as usize).unwrap());
                        assert_eq!(
                            out[j].to_bits(),
                            one.to_bits(),
                            "{} dot_f32_u8 dim {dim} stride {stride} base +{base_off} row {id}",
                            k.isa()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn f16_one_to_many_equals_one_to_one_bit_for_bit() {
    let ks = f16_kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
    for dim in many_dims() {
        // Packed, padded to 64 bytes (32 halves), and an odd stride.
        for stride in [dim, dim.div_ceil(32) * 32, dim + 5] {
            let rows_n = 50;
            for base_off in [0usize, 3] {
                let table = halves(rows_n * stride, base_off, || f16::from_f64(unit(&mut rng) * 2.0 - 1.0));
                let rows = Rows::new(table.get(), dim, stride).unwrap();
                let q = weights(dim, 1, || (unit(&mut rng) * 2.0 - 1.0) as f32);
                let count = (rng.next_u32() % 41) as usize;
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
                                "{} {metric:?} f16 dim {dim} stride {stride} base +{base_off} row {id}",
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
fn nan_and_infinite_halves_propagate() {
    for k in f16_kernels() {
        for n in [1usize, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 64, 100, 1100] {
            for pos in [0, n / 2, n - 1] {
                let q = vec![0.5f32; n];
                let mut x = vec![f16::from_f32(0.25); n];
                x[pos] = f16::NAN;
                assert!(k.l2sq(&q, &x).is_nan(), "{} l2sq NaN dim {n} pos {pos}", k.isa());
                assert!(k.dot(&q, &x).is_nan(), "{} dot NaN dim {n} pos {pos}", k.isa());
                x[pos] = f16::INFINITY;
                assert_eq!(k.l2sq(&q, &x), f32::INFINITY, "{} l2sq inf dim {n} pos {pos}", k.isa());
                assert_eq!(k.dot(&q, &x), f32::INFINITY, "{} dot inf dim {n} pos {pos}", k.isa());
                x[pos] = f16::NEG_INFINITY;
                assert_eq!(
                    k.dot(&q, &x),
                    f32::NEG_INFINITY,
                    "{} dot -inf dim {n} pos {pos}",
                    k.isa()
                );
            }
        }
    }
    for k in u8_kernels() {
        let mut w = vec![1.0f32; 37];
        w[36] = f32::NAN;
        assert!(
            k.dot_f32_u8(&w, &[0; 37]).is_nan(),
            "{} NaN weight times code 0",
            k.isa()
        );
    }
}

#[test]
fn empty_inputs_give_zero() {
    for k in u8_kernels() {
        assert_eq!(k.dot_f32_u8(&[], &[]), 0.0);
        let rows = Rows::new(&[][..], 3, 3).unwrap();
        k.dot_f32_u8_many(&[0.0; 3], rows, &[], &mut []);
    }
    for k in f16_kernels() {
        assert_eq!(k.l2sq(&[], &[]), 0.0);
        assert_eq!(k.distance(Metric::InnerProduct, &[], &[]), 1.0);
    }
}

#[test]
fn every_element_forces_each_available_isa_and_rejects_the_others() {
    fn one<E: Element>() {
        for isa in Isa::ALL {
            match (isa.availability_for::<E>(), select_for::<E>(Choice::Force(isa))) {
                (Ok(()), Ok(k)) => assert_eq!(k.isa(), isa),
                (Err(reason), Err(e)) => assert_eq!(e, Error::Unsupported { isa, reason }),
                (a, s) => panic!("{isa}: availability {a:?} but select {:?}", s.map(|k| k.isa())),
            }
            // An element never runs where the instruction set itself cannot.
            if isa.availability().is_err() {
                assert!(isa.availability_for::<E>().is_err());
            }
        }
        let best = hnswx_kernels::auto_for::<E>();
        assert_eq!(best.isa(), Isa::detect_for::<E>());
        assert!(std::ptr::eq(best, hnswx_kernels::auto_for::<E>()));
        assert!(std::ptr::eq(best, select_for::<E>(Choice::Auto).unwrap()));
    }
    one::<f32>();
    one::<f16>();
    one::<u8>();
    // SQ8 codes need nothing beyond the instruction set; f16 on AVX2 also needs F16C.
    for isa in Isa::ALL {
        assert_eq!(isa.availability_for::<u8>(), isa.availability());
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2.is_available() && !std::arch::is_x86_feature_detected!("f16c") {
        assert_eq!(Isa::Avx2.availability_for::<f16>(), Err("this CPU lacks F16C"));
    }
}

#[test]
#[should_panic(expected = "out of range")]
fn u8_one_to_many_rejects_an_id_past_the_table() {
    let codes = [0u8; 8];
    let rows = Rows::new(&codes[..], 4, 4).unwrap();
    hnswx_kernels::auto_for::<u8>().dot_f32_u8_many(&[0.0; 4], rows, &[2], &mut [0.0]);
}

#[test]
#[should_panic(expected = "different lengths")]
fn u8_mismatched_lengths_panic() {
    let _ = hnswx_kernels::auto_for::<u8>().dot_f32_u8(&[1.0, 2.0], &[1]);
}

/// A weight drawn evenly from `±MAX_INT_WEIGHT`.
fn random_weight(r: &mut Xoshiro256PlusPlus) -> i16 {
    let max = hnswx_kernels::MAX_INT_WEIGHT;
    (r.next_u32() % (2 * max as u32 + 1)) as i16 - max
}

/// The integer SQ8 kernel is exact: it must equal the `i64` sum rounded once to `f32`, for
/// every dimension 1..=1100, from misaligned starts (weights at odd `i16` offsets, codes at
/// odd bytes), on random, extreme (every weight ±MAX_INT_WEIGHT, every code 255: the
/// overflow case) and one-hot inputs. Guards after each buffer (weight MAX_INT_WEIGHT, code
/// 255) would show a read past the end.
#[test]
fn dot_i16_u8_is_exact_for_every_dim() {
    let ks = u8_kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x1d07);
    type IGen = fn(&mut Xoshiro256PlusPlus, usize) -> (i16, u8);
    const MAX: i16 = hnswx_kernels::MAX_INT_WEIGHT;
    let cases: [(&str, IGen); 4] = [
        ("random", |r, _| (random_weight(r), r.next_u32() as u8)),
        ("max", |_, _| (MAX, 255)),
        ("min", |_, _| (-MAX, 255)),
        ("alternating", |_, i| {
            (if i % 2 == 0 { MAX } else { -MAX }, (i % 256) as u8)
        }),
    ];
    let offsets = [(0usize, 0usize), (1, 3), (3, 33), (8, 1), (31, 63)];
    for (case, gen) in cases {
        for n in 1..=MAX_DIM {
            for offs in offsets {
                let pairs: Vec<(i16, u8)> = (0..n).map(|i| gen(&mut rng, i)).collect();
                let mut it = pairs.iter();
                let w = Buf::new(n, offs.0, MAX, || it.next().unwrap().0);
                let mut it = pairs.iter();
                let c = codes(n, offs.1, || it.next().unwrap().1);
                let want = pairs.iter().map(|&(w, c)| i64::from(w) * i64::from(c)).sum::<i64>() as f32;
                for k in &ks {
                    let got = k.dot_i16_u8(w.get(), c.get());
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{} dot_i16_u8 [{case}] dim {n} offsets {offs:?}: {got} vs {want}",
                        k.isa()
                    );
                }
            }
        }
    }
    // Long rows whose sum passes i32 (the kernel moves partial sums to i64 every 2048).
    for n in [2047, 2048, 2049, 4111, 10_000] {
        let (w, c) = (vec![MAX; n], vec![255u8; n]);
        let want = (n as i64 * i64::from(MAX) * 255) as f32;
        for k in &ks {
            assert_eq!(k.dot_i16_u8(&w, &c), want, "{} long row {n}", k.isa());
        }
    }
    // One-hot: a skipped or doubled element shows exactly.
    for n in [1, 15, 16, 17, 31, 32, 33, 100, 384, 1100] {
        let c: Vec<u8> = (0..n).map(|i| (i % 251 + 1) as u8).collect();
        for j in 0..n {
            let mut w = vec![0i16; n];
            w[j] = 1;
            for k in &ks {
                assert_eq!(
                    k.dot_i16_u8(&w, &c),
                    c[j] as f32,
                    "{} one-hot dim {n} index {j}",
                    k.isa()
                );
            }
        }
    }
}

/// The one-to-many integer kernel against the exact `i64` sums, for every dimension
/// 1..=1100: blocks of four rows and the rows past the last block, from misaligned weights
/// and rows, on random and extreme inputs (weights ±MAX_INT_WEIGHT with codes 255: the
/// largest sums).
#[test]
fn dot_i16_u8_many_is_exact_for_every_dim() {
    let ks = u8_kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5e8);
    let max = hnswx_kernels::MAX_INT_WEIGHT;
    for (n, case) in (1..=MAX_DIM).flat_map(|n| (0..4).map(move |case| (n, case))) {
        // Random; all at +max; all at -max; alternating signs at max.
        let weight = |r: &mut Xoshiro256PlusPlus, i: usize| match case {
            0 => random_weight(r),
            1 => max,
            2 => -max,
            _ if i.is_multiple_of(2) => max,
            _ => -max,
        };
        let mut i = 0;
        let w = Buf::new(n, n % 3, max, || {
            i += 1;
            weight(&mut rng, i - 1)
        });
        let stride = n + n % 5;
        let rows_n = 7;
        let table = codes(rows_n * stride, n % 7, || match case {
            0 => rng.next_u32() as u8,
            _ => 255 - (rng.next_u32() % 2) as u8,
        });
        let rows = Rows::new(table.get(), n, stride).unwrap();
        // Two blocks of four and one row past them.
        let ids: Vec<u32> = (0..9).map(|j| (j * 3 % rows_n) as u32).collect();
        let want: Vec<f32> = ids
            .iter()
            .map(|&id| {
                let row = rows.row(id as usize).unwrap();
                w.get()
                    .iter()
                    .zip(row)
                    .map(|(&a, &b)| i64::from(a) * i64::from(b))
                    .sum::<i64>() as f32
            })
            .collect();
        for k in &ks {
            let mut out = vec![f32::NAN; ids.len()];
            k.dot_i16_u8_many(w.get(), rows, &ids, &mut out);
            for (j, (got, want)) in out.iter().zip(&want).enumerate() {
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{} many dim {n} case {case} row {j}: {got} vs {want}",
                    k.isa()
                );
            }
        }
    }
}

/// `dot_i16_u8_many_with` through [`Kernels::with_int_kernel`]'s kernel type, each sum
/// mapped by [`finish`].
struct TypedMany<'a> {
    w: &'a [i16],
    /// The whole code table (`rows` views it).
    table: &'a [u8],
    rows: Rows<'a, u8>,
    ids: &'a [u32],
    out: &'a mut [f32],
    prefetch: Prefetch,
}

/// The map [`TypedMany`] applies: it depends on the row's index and its sum.
fn finish(j: usize, sum: f32) -> f32 {
    sum * 0.5 + j as f32
}

impl IntKernelUser for TypedMany<'_> {
    type Output = ();
    #[inline(always)]
    fn run<K: IntKernel>(self, k: K) {
        let (dim, stride) = (self.rows.dim(), self.rows.stride());
        assert!(self.w.len() == dim && self.out.len() >= self.ids.len());
        assert!(self
            .ids
            .iter()
            .all(|&id| id as usize * stride + dim <= self.table.len()));
        // `finish` must see each row's index exactly once, and no other (callers index with
        // it unchecked).
        let count = self.ids.len();
        let seen = std::cell::RefCell::new(vec![0u32; count]);
        let counted = |j: usize, sum: f32| {
            assert!(j < count, "finish called with j = {j} for {count} rows");
            seen.borrow_mut()[j] += 1;
            finish(j, sum)
        };
        // SAFETY: every id's `dim` codes at `id * stride` lie inside `table` (asserted), from
        // whose start the pointer is taken; `out` is long enough; the weights come from
        // `random_weight` or are MAX_INT_WEIGHT.
        unsafe {
            k.dot_many_then(
                self.w.as_ptr(),
                self.table.as_ptr(),
                stride,
                dim,
                self.ids,
                self.out.as_mut_ptr(),
                self.prefetch,
                counted,
            )
        }
        assert!(
            seen.into_inner().iter().all(|&n| n == 1),
            "finish not called once per row"
        );
    }
}

#[test]
fn dot_i16_u8_many_equals_one_to_one() {
    let ks = u8_kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
    // Past 2048 the many kernel scores row by row in i64 chunks instead of four rows at once.
    for dim in many_dims().into_iter().chain([2047, 2048, 2049, 4111]) {
        for stride in [dim, dim.div_ceil(16) * 16 + 4, dim + 5] {
            let rows_n = 40;
            for base_off in [0usize, 3] {
                // Every other table at the bound (codes 255, weights MAX_INT_WEIGHT: the
                // largest sums), but for one zeroed column per row, so that the rows differ.
                let extreme = base_off == 3;
                let mut at = 0usize;
                let table = codes(rows_n * stride, base_off, || {
                    let (row, col) = (at / stride, at % stride);
                    at += 1;
                    match extreme {
                        true if col == row % dim => 0,
                        true => 255,
                        false => rng.next_u32() as u8,
                    }
                });
                let rows = Rows::new(table.get(), dim, stride).unwrap();
                let w: Vec<i16> = (0..dim)
                    .map(|_| {
                        if extreme {
                            hnswx_kernels::MAX_INT_WEIGHT
                        } else {
                            random_weight(&mut rng)
                        }
                    })
                    .collect();
                // Every remainder of a block of four, and a random count.
                for count in [0, 1, 2, 3, 4, 5, 7, 40, (rng.next_u32() % 41) as usize] {
                    let ids: Vec<u32> = (0..count).map(|_| rng.next_u32() % rows_n as u32).collect();
                    for k in &ks {
                        let mut out = vec![f32::NAN; count];
                        k.dot_i16_u8_many_with(&w, rows, &ids, &mut out, Prefetch::Ahead);
                        // Without the prefetches: the same results, bit for bit.
                        let mut off = vec![f32::NAN; out.len()];
                        k.dot_i16_u8_many_with(&w, rows, &ids, &mut off, Prefetch::Off);
                        assert!(
                            out.iter().zip(&off).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{} dot_i16_u8_many_with: prefetch off differs",
                            k.isa()
                        );
                        // The same kernel as a type, run inside the table's instruction
                        // set (`with_int_kernel`): the same results, bit for bit.
                        for prefetch in [Prefetch::Ahead, Prefetch::Off] {
                            let mut typed = vec![f32::NAN; out.len()];
                            k.with_int_kernel(TypedMany {
                                w: &w,
                                table: table.get(),
                                rows,
                                ids: &ids,
                                out: &mut typed,
                                prefetch,
                            });
                            // `finish` sees each row's index and sum once: a map that depends
                            // on both.
                            let mapped: Vec<f32> = out.iter().enumerate().map(|(j, &x)| finish(j, x)).collect();
                            assert!(
                                mapped.iter().zip(&typed).all(|(a, b)| a.to_bits() == b.to_bits()),
                                "{} with_int_kernel ({prefetch:?}) differs: {mapped:?} vs {typed:?}",
                                k.isa()
                            );
                        }
                        for (j, &id) in ids.iter().enumerate() {
                            let one = k.dot_i16_u8(&w, rows.row(id as usize).unwrap());
                            assert_eq!(
                                out[j].to_bits(),
                                one.to_bits(),
                                "{} dim {dim} stride {stride} count {count} row {id}",
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
#[should_panic(expected = "outside")]
fn dot_i16_u8_refuses_weights_past_the_bound() {
    let k = hnswx_kernels::auto_for::<u8>();
    k.dot_i16_u8(&[2048], &[1]);
}

/// The SQ8 query preparation: every table gives the same bits for every dimension 1..=1100,
/// from misaligned slices, for L2 and inner product, and the weights are the formula's
/// (`−2(q − o)s` or `−q·s`, scaled so the largest is `MAX_INT_WEIGHT`, rounded half away
/// from zero); the bias is `Σ (q − o)²` or `1 − Σ q·o` (to rounding). Non-finite inputs give
/// `None` from every table; a zero weight vector gives zeros.
#[test]
fn prepare_sq8_is_the_same_on_every_table_and_follows_the_formula() {
    let ks = u8_kernels();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x9e9);
    let max = f64::from(hnswx_kernels::MAX_INT_WEIGHT);
    let mut uniform = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    for n in 1..=MAX_DIM {
        let off = n % 3;
        let q = weights(n, off, || (uniform() * 200.0 - 100.0) as f32);
        let o = weights(n, (off + 1) % 3, || (uniform() * 20.0 - 10.0) as f32);
        let s = weights(n, (off + 2) % 3, || (uniform() * 2.0) as f32);
        for l2 in [true, false] {
            let (q, o, s) = (q.get(), o.get(), s.get());
            let weight = |i: usize| {
                let (x, o, s) = (f64::from(q[i]), f64::from(o[i]), f64::from(s[i]));
                if l2 {
                    -2.0 * (x - o) * s
                } else {
                    -x * s
                }
            };
            let top = (0..n).map(|i| weight(i).abs()).fold(0.0f64, f64::max);
            let want_w: Vec<i16> = (0..n)
                .map(|i| {
                    let v = (weight(i) * (max / top)).clamp(-max, max);
                    (v + 0.5f64.copysign(v)).trunc() as i16
                })
                .collect();
            let sum: f64 = (0..n)
                .map(|i| {
                    let (x, o) = (f64::from(q[i]), f64::from(o[i]));
                    if l2 {
                        (x - o) * (x - o)
                    } else {
                        x * o
                    }
                })
                .sum();
            let want_bias = if l2 { sum } else { 1.0 - sum };
            let mut first: Option<(Vec<i16>, u32, u32)> = None;
            for k in &ks {
                let mut wi = vec![i16::MIN; n];
                let (bias, scale) = k.prepare_sq8(l2, q, o, s, &mut wi).unwrap();
                assert_eq!(wi, want_w, "{} dim {n} l2 {l2}: weights", k.isa());
                assert_eq!(scale, (top / max) as f32, "{} dim {n} l2 {l2}: scale", k.isa());
                let tol = 1e-9 * (0..n).map(|i| f64::from(q[i]).abs() * 110.0).sum::<f64>().max(1.0);
                assert!(
                    (f64::from(bias) - want_bias).abs() <= tol + f64::from(bias).abs() * 1e-7,
                    "{} dim {n} l2 {l2}: bias {bias} vs {want_bias}",
                    k.isa()
                );
                let got = (wi, bias.to_bits(), scale.to_bits());
                match &first {
                    None => first = Some(got),
                    Some(f) => assert_eq!(&got, f, "{} dim {n} l2 {l2}: differs from the first table", k.isa()),
                }
            }
        }
    }
    // Non-finite inputs anywhere: refused by every table (and the weights are not trusted).
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for n in [1usize, 5, 16, 37] {
            for which in 0..3 {
                let mut v = [vec![1.5f32; n], vec![0.25f32; n], vec![0.5f32; n]];
                v[which][n / 2] = bad;
                for k in &ks {
                    for l2 in [true, false] {
                        let mut wi = vec![0i16; n];
                        assert_eq!(
                            k.prepare_sq8(l2, &v[0], &v[1], &v[2], &mut wi),
                            None,
                            "{} n {n} input {which} = {bad} l2 {l2}",
                            k.isa()
                        );
                    }
                }
            }
        }
    }
    for k in &ks {
        // The query at the offsets (L2) or zero scales: every weight 0, a usable result.
        let mut wi = vec![7i16; 9];
        let (bias, _) = k.prepare_sq8(true, &[2.0; 9], &[2.0; 9], &[0.5; 9], &mut wi).unwrap();
        assert_eq!((wi, bias), (vec![0i16; 9], 0.0), "{}", k.isa());
        for l2 in [true, false] {
            let mut wi = vec![7i16; 9];
            let (_, scale) = k.prepare_sq8(l2, &[3.0; 9], &[1.0; 9], &[0.0; 9], &mut wi).unwrap();
            assert_eq!((wi, scale), (vec![0i16; 9], 0.0), "{} zero scales, l2 {l2}", k.isa());
        }
        // Finite inputs whose result does not fit `f32`: a bias past its range (L2, |q − o|
        // about 6e38), and a largest weight so small that the scale is not a normal `f32`.
        let mut wi = vec![0i16; 3];
        assert_eq!(
            k.prepare_sq8(true, &[3e38; 3], &[-3e38; 3], &[1.0; 3], &mut wi),
            None,
            "{}",
            k.isa()
        );
        assert_eq!(
            k.prepare_sq8(true, &[1e-30; 3], &[0.0; 3], &[1e-20; 3], &mut wi),
            None,
            "{}",
            k.isa()
        );
    }
}
