//! The distance algorithms, written once over a vector type and instantiated per
//! instruction set by [`instantiate!`](crate::arch::instantiate).
//!
//! Everything here is `#[inline(always)]`: it is compiled inside the caller, a function
//! carrying `#[target_feature(enable = ...)]`, so the generic code gets the caller's
//! instruction set.

use crate::Prefetch;

/// A SIMD register of [`LANES`](F32Vector::LANES) `f32` lanes.
///
/// # Safety (for every method)
/// The CPU must support the instruction set of the implementing type, and the method must be
/// inlined into a function compiled for it. Pointer arguments must be valid for reads of the
/// stated number of `f32`s and aligned to `align_of::<f32>()`.
pub(crate) trait F32Vector: Copy {
    /// How many `f32` lanes one register holds.
    const LANES: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// Loads `LANES` floats from `p` (no alignment beyond `f32`'s needed).
    unsafe fn load(p: *const f32) -> Self;
    /// Loads `n < LANES` floats from `p` and zeroes the other lanes; reads nothing past `p + n`.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self;
    /// Lane-wise `self + b`.
    unsafe fn add(self, b: Self) -> Self;
    /// Lane-wise `self - b`.
    unsafe fn sub(self, b: Self) -> Self;
    /// Lane-wise `self * b + acc` (fused where the instruction set has FMA).
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self;
    /// Sum of all lanes.
    unsafe fn sum(self) -> f32;
}

/// Loading `LANES` row elements of type `T` into one `f32` register, widening or converting
/// on the way: the identity for `f32` rows, `u8 → u32 → f32` for SQ8 codes, `f16 → f32` for
/// half-precision rows. Every conversion is exact (a `u8` and an `f16` are values of `f32`),
/// so only the arithmetic rounds.
///
/// # Safety (for every method)
/// As for [`F32Vector`]; pointers valid for reads of the stated number of `T`s, aligned to
/// `align_of::<T>()`.
pub(crate) trait Load<T>: F32Vector {
    /// Loads `LANES` elements from `p`.
    unsafe fn load_from(p: *const T) -> Self;
    /// Loads `n < LANES` elements from `p`, zeroes the other lanes; reads nothing past `p + n`.
    unsafe fn load_from_partial(p: *const T, n: usize) -> Self;
    /// Loads `4·LANES` elements from `p` into four registers. By default four [`Load::load_from`]s;
    /// an instruction set that widens better from one wide load (NEON: 16 bytes, then
    /// `vmovl`) overrides it.
    #[inline(always)]
    unsafe fn load4_from(p: *const T) -> [Self; 4] {
        let w = Self::LANES;
        // SAFETY: the caller guarantees `4·LANES` readable elements at `p`.
        unsafe {
            [
                Self::load_from(p),
                Self::load_from(p.add(w)),
                Self::load_from(p.add(2 * w)),
                Self::load_from(p.add(3 * w)),
            ]
        }
    }
}

impl<V: F32Vector> Load<f32> for V {
    #[inline(always)]
    unsafe fn load_from(p: *const f32) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe { V::load(p) }
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe { V::load_partial(p, n) }
    }
}

/// Walks `a` (`n` floats) and `b` (`n` elements of `T`, converted to `f32` by [`Load`]) with
/// four independent accumulators, so that the loop is bound by loads rather than by the
/// latency of one accumulator's FMA chain, then one register at a time, then a zero-filled
/// partial register for the tail.
///
/// # Safety
/// As for [`F32Vector`] and [`Load`]; `a` and `b` valid for `n` reads.
#[inline(always)]
unsafe fn fold<V: Load<T>, T>(a: *const f32, b: *const T, n: usize, step: impl Fn(V, V, V) -> V) -> f32 {
    let w = V::LANES;
    // SAFETY: the caller guarantees the instruction set and that `a`/`b` hold `n` elements;
    // every load below reads inside `[0, n)`: full loads only while `i + w <= n` (four
    // registers only while `i + 4w <= n`), and the last one through the partial loads, which
    // read exactly `n - i` elements.
    unsafe {
        let (mut s0, mut s1, mut s2, mut s3) = (V::zero(), V::zero(), V::zero(), V::zero());
        let mut i = 0;
        while i + 4 * w <= n {
            let [b0, b1, b2, b3] = V::load4_from(b.add(i));
            s0 = step(V::load(a.add(i)), b0, s0);
            s1 = step(V::load(a.add(i + w)), b1, s1);
            s2 = step(V::load(a.add(i + 2 * w)), b2, s2);
            s3 = step(V::load(a.add(i + 3 * w)), b3, s3);
            i += 4 * w;
        }
        if i + w <= n {
            s0 = step(V::load(a.add(i)), V::load_from(b.add(i)), s0);
            i += w;
            if i + w <= n {
                s1 = step(V::load(a.add(i)), V::load_from(b.add(i)), s1);
                i += w;
                if i + w <= n {
                    s2 = step(V::load(a.add(i)), V::load_from(b.add(i)), s2);
                    i += w;
                }
            }
        }
        if i < n {
            let rest = n - i;
            s3 = step(
                V::load_partial(a.add(i), rest),
                V::load_from_partial(b.add(i), rest),
                s3,
            );
        }
        s0.add(s1).add(s2.add(s3)).sum()
    }
}

/// `Σ aᵢ·bᵢ`, with `b` of any element type [`Load`] converts (`f32`, `u8`, `f16`).
///
/// # Safety
/// As for [`fold`].
#[inline(always)]
pub(crate) unsafe fn dot<V: Load<T>, T>(a: *const f32, b: *const T, n: usize) -> f32 {
    // SAFETY: forwarded from the caller.
    unsafe { fold::<V, T>(a, b, n, |x, y, acc| x.mul_add(y, acc)) }
}

/// `Σ (aᵢ − bᵢ)²`, with `b` of any element type [`Load`] converts.
///
/// # Safety
/// As for [`fold`].
#[inline(always)]
pub(crate) unsafe fn l2sq<V: Load<T>, T>(a: *const f32, b: *const T, n: usize) -> f32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        fold::<V, T>(a, b, n, |x, y, acc| {
            let d = x.sub(y);
            d.mul_add(d, acc)
        })
    }
}

/// Cache lines [`gather`] tries to keep in flight: it prefetches enough rows ahead of the one
/// being scored that their lines add up to about this many (at most 16 rows), so short rows
/// are fetched further ahead than long ones. With the prefetch into L1 (`PREFETCHT0`, before
/// the tenth session) 64 lines beat 8 and 24 on a Zen 3 (`cargo bench --bench kernels --
/// many`, rows drawn at random from a 256 MiB table; 128-d AVX2: 1.03 µs per 32 rows against
/// 1.36 µs with 24 lines). Into L2, on a Zen 4 (paired alternating runs on saved graphs,
/// `benches/results/zen4/prefetch-ab.txt`), 128 lines gained 1.04-1.10x over 64 and 256 a
/// further 1.01-1.05x on the f32 walks of fashion-mnist, minilm and the mixture (SQ8 level,
/// rows in cache level).
pub(crate) const PREFETCH_LINES: usize = 256;

/// Rows fetched ahead for rows of `bytes` bytes: `PREFETCH_LINES` lines' worth, 1 to 16 rows.
#[inline(always)]
fn rows_ahead(bytes: usize) -> usize {
    (PREFETCH_LINES / bytes.div_ceil(super::LINE).max(1)).clamp(1, 16)
}

/// Scores `query` against the rows `ids[j]` of a strided table of `T`s (`stride` elements
/// apart), writing `out[j]`, while rows further down the list ([`rows_ahead`] of them) are
/// being fetched into cache (unless `prefetch` is [`Prefetch::Off`]).
///
/// # Safety
/// `query` valid for `dim` reads; `ids` and `out` valid for `count` reads / writes; for every
/// id in `ids`, `base + id * stride` valid for `dim` reads; and the safety conditions of `one`.
// The arguments are the raw one-to-many ABI (`crate::OneToManyFn`) plus the row kernel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn gather<Q, T>(
    one: impl Fn(*const Q, *const T, usize) -> f32,
    query: *const Q,
    base: *const T,
    stride: usize,
    dim: usize,
    ids: *const u32,
    count: usize,
    out: *mut f32,
    prefetch: Prefetch,
) {
    // SAFETY: forwarded from the caller. One loop per setting, so that the loop without
    // prefetches carries no test for them.
    unsafe {
        match prefetch {
            Prefetch::Ahead => gather_rows::<Q, T, true>(one, query, base, stride, dim, ids, count, out),
            Prefetch::Off => gather_rows::<Q, T, false>(one, query, base, stride, dim, ids, count, out),
        }
    }
}

/// [`gather`] with the prefetches (`AHEAD`) or without.
///
/// # Safety
/// As for [`gather`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn gather_rows<Q, T, const AHEAD: bool>(
    one: impl Fn(*const Q, *const T, usize) -> f32,
    query: *const Q,
    base: *const T,
    stride: usize,
    dim: usize,
    ids: *const u32,
    count: usize,
    out: *mut f32,
) {
    let bytes = dim * core::mem::size_of::<T>();
    // SAFETY: `ids[j]` for `j < count` is readable and names a readable row (caller);
    // `out[j]` for `j < count` is writable (caller); prefetches never fault.
    unsafe {
        let row = |j: usize| base.add(*ids.add(j) as usize * stride);
        if !AHEAD {
            for j in 0..count {
                *out.add(j) = one(query, row(j), dim);
            }
            return;
        }
        let ahead = rows_ahead(bytes);
        for j in 0..count.min(ahead) {
            super::prefetch_bytes(row(j).cast(), bytes);
        }
        for j in 0..count {
            if j + ahead < count {
                super::prefetch_bytes(row(j + ahead).cast(), bytes);
            }
            *out.add(j) = one(query, row(j), dim);
        }
    }
}

/// Largest `|wᵢ|` the integer SQ8 kernel ([`Kernels::dot_i16_u8`](crate::Kernels::dot_i16_u8)) takes: `Σ wᵢ·cᵢ` is then exact (integer
/// arithmetic, no overflow) for any length.
pub const MAX_INT_WEIGHT: i16 = 2047;

/// Elements summed in `i32` lanes before the partial sum moves to an `i64`: with
/// `|wᵢ| ≤ 2047` and `cᵢ ≤ 255`, 2048 products total at most 2047·255·2048 < 2³⁰, so neither
/// a lane nor the lanes' sum can overflow.
const INT_CHUNK: usize = 2048;

/// Lanes [`prepare_sq8`] keeps its running maximum and sums in: independent partial results
/// let the compiler use SIMD for the reductions (it may not reorder one running `f64` sum).
/// Every table uses the same lanes, so every table's results are identical.
const PREP_LANES: usize = 4;

/// The SQ8 query weight of one component: `−2(x − o)s` for L2 (the cross term of
/// `‖q − (o + s·c)‖²`), `−x·s` for inner product and cosine.
#[inline(always)]
fn sq8_weight<const L2: bool>(x: f32, o: f32, s: f32) -> f64 {
    let (x, o, s) = (f64::from(x), f64::from(o), f64::from(s));
    if L2 {
        -2.0 * (x - o) * s
    } else {
        -x * s
    }
}

/// The query's part of the constant term: `(x − o)²` for L2, `x·o` for inner product.
#[inline(always)]
fn sq8_term<const L2: bool>(x: f32, o: f32) -> f64 {
    let (x, o) = (f64::from(x), f64::from(o));
    if L2 {
        (x - o) * (x - o)
    } else {
        x * o
    }
}

/// The SQ8 query preparation ([`Kernels::prepare_sq8`](crate::Kernels::prepare_sq8)) for
/// one metric (`L2` or inner product), over slices of one length: one pass for the largest
/// weight and the constant, one to round the weights to `i16`. Computed in `f64` (no
/// product of finite `f32`s overflows there), in the same order by every table.
#[inline(always)]
pub(crate) fn prepare_sq8<const L2: bool>(
    q: &[f32],
    offsets: &[f32],
    scales: &[f32],
    wi: &mut [i16],
) -> Option<(f32, f32)> {
    const L: usize = PREP_LANES;
    // `Kernels::prepare_sq8`, the only caller, checks the lengths (and nothing below relies
    // on them for soundness: the zips stop at the shortest slice).
    debug_assert!(q.len() == offsets.len() && q.len() == scales.len() && q.len() == wi.len());
    let (qc, qr) = q.as_chunks::<L>();
    let (oc, or) = offsets.as_chunks::<L>();
    let (sc, sr) = scales.as_chunks::<L>();
    let (mut tops, mut sums) = ([0.0f64; L], [0.0f64; L]);
    // Finite inputs give finite weights and terms in `f64` (so the plain comparisons below
    // serve as the maximum); anything else is refused here.
    if !q
        .iter()
        .chain(offsets)
        .chain(scales)
        .fold(true, |ok, v| ok & v.is_finite())
    {
        return None;
    }
    for ((x, o), s) in qc.iter().zip(oc).zip(sc) {
        for j in 0..L {
            let w = sq8_weight::<L2>(x[j], o[j], s[j]).abs();
            tops[j] = if w > tops[j] { w } else { tops[j] };
            sums[j] += sq8_term::<L2>(x[j], o[j]);
        }
    }
    let mut top = tops.into_iter().fold(0.0f64, f64::max);
    let mut sum: f64 = sums.iter().sum();
    for ((&x, &o), &s) in qr.iter().zip(or).zip(sr) {
        top = top.max(sq8_weight::<L2>(x, o, s).abs());
        sum += sq8_term::<L2>(x, o);
    }
    let bias = if L2 { sum } else { 1.0 - sum };
    let max = f64::from(MAX_INT_WEIGHT);
    let scale = top / max;
    let usable = bias.is_finite() && (bias as f32).is_finite() && (top == 0.0 || (scale as f32).is_normal());
    if !usable {
        return None;
    }
    let inv = if top > 0.0 { max / top } else { 0.0 };
    for (w, ((&x, &o), &s)) in wi.iter_mut().zip(q.iter().zip(offsets).zip(scales)) {
        // Round half away from zero by adding ±0.5 and truncating in the conversion: the
        // same as `f64::round` for these magnitudes (|v| ≤ MAX_INT_WEIGHT, up to the last
        // bit of a half), without the libm call that `round` is on baseline x86_64.
        let v = (sq8_weight::<L2>(x, o, s) * inv).clamp(-max, max);
        let r = v + 0.5f64.copysign(v);
        debug_assert!(r.is_finite() && r.abs() <= max + 0.5);
        // SAFETY: `r` is finite and within ±(MAX_INT_WEIGHT + 0.5): every weight is finite
        // (finite inputs, checked first) with |w| ≤ `top`, and `inv` is finite (0 when `top`
        // is 0; else `top / max` is a normal `f32`, tested by `usable`), so `v` is finite
        // and the clamp bounds it. The truncation therefore fits `i32` (and `i16`). Unlike
        // `as`, the unchecked conversion needs no saturation code, so the loop vectorises.
        *w = unsafe { r.to_int_unchecked::<i32>() } as i16;
    }
    Some((bias as f32, scale as f32))
}

/// A SIMD accumulator of `i32` lanes for the integer SQ8 kernel: `i16` weights times `u8`
/// codes (widened to `i16`), adjacent products summed into `i32` lanes (`pmaddwd`, `smlal`).
///
/// # Safety (for every method)
/// As for [`F32Vector`]; pointers valid for reads of `STEP` elements.
pub(crate) trait IntDot: Copy {
    /// Elements one [`madd`](IntDot::madd) consumes.
    const STEP: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// `self` plus the products of `STEP` weights at `w` and `STEP` codes at `c`, summed
    /// into the lanes.
    unsafe fn madd(self, w: *const i16, c: *const u8) -> Self;
    /// Lane-wise `self + b` (exact: lanes stay below 2³⁰, see [`INT_CHUNK`]).
    unsafe fn add(self, b: Self) -> Self;
    /// Sum of all lanes.
    unsafe fn hsum(self) -> i32;
    /// The lane sums of four accumulators (four rows), `[a.hsum(), b.hsum(), c.hsum(),
    /// d.hsum()]`; an instruction set with horizontal adds reduces the four together.
    #[inline(always)]
    unsafe fn hsum4(a: Self, b: Self, c: Self, d: Self) -> [i32; 4] {
        // SAFETY: forwarded from the caller.
        unsafe { [a.hsum(), b.hsum(), c.hsum(), d.hsum()] }
    }
}

/// `Σ wᵢ·cᵢ` over `i16` weights and `u8` codes, exactly, as `f32` (rounded once, from the
/// exact integer). Weights must satisfy `|wᵢ| ≤ MAX_INT_WEIGHT`.
///
/// Rows up to [`INT_CHUNK`] long (every common dimension) are one pass in `i32` lanes; longer
/// ones are summed chunk by chunk into an `i64`.
///
/// # Safety
/// As for [`IntDot`]; `w` and `c` valid for `n` reads.
#[inline(always)]
pub(crate) unsafe fn idot<V: IntDot>(w: *const i16, c: *const u8, n: usize) -> f32 {
    // SAFETY: both branches read chunks inside `[0, n)`, which the caller guarantees
    // readable, each at most `INT_CHUNK` long (as `idot_chunk` requires); the instruction
    // set is the caller's.
    unsafe {
        if n <= INT_CHUNK {
            // An `i32` converts to `f32` with the same single rounding as the `i64` below.
            return idot_chunk::<V>(w, c, n) as f32;
        }
        let mut total = 0i64;
        let mut i = 0;
        while i < n {
            let len = (n - i).min(INT_CHUNK);
            total += i64::from(idot_chunk::<V>(w.add(i), c.add(i), len));
            i += len;
        }
        total as f32
    }
}

/// `Σ wᵢ·cᵢ` for `n ≤ INT_CHUNK` (so exact in `i32`, see [`INT_CHUNK`]): four steps a turn
/// into two accumulators (the adds, not the loads, would otherwise chain), then single
/// steps, one horizontal sum, and the last `n mod STEP` elements in scalar code.
///
/// # Safety
/// As for [`idot`], and `n ≤ INT_CHUNK`.
#[inline(always)]
unsafe fn idot_chunk<V: IntDot>(w: *const i16, c: *const u8, n: usize) -> i32 {
    debug_assert!(n <= INT_CHUNK);
    let s = V::STEP;
    // SAFETY: full steps only while `i + STEP ≤ n` (four only while `i + 4·STEP ≤ n`), the
    // scalar tail below `n`: every read inside `[0, n)` (the caller's guarantee).
    unsafe {
        let (mut a, mut b) = (V::zero(), V::zero());
        let mut i = 0;
        while i + 4 * s <= n {
            a = a.madd(w.add(i), c.add(i));
            b = b.madd(w.add(i + s), c.add(i + s));
            a = a.madd(w.add(i + 2 * s), c.add(i + 2 * s));
            b = b.madd(w.add(i + 3 * s), c.add(i + 3 * s));
            i += 4 * s;
        }
        while i + s <= n {
            a = a.madd(w.add(i), c.add(i));
            i += s;
        }
        let mut sum = a.add(b).hsum();
        while i < n {
            sum += i32::from(*w.add(i)) * i32::from(*c.add(i));
            i += 1;
        }
        sum
    }
}

/// `Σ wᵢ·cᵢ` of one weight vector against four code rows at once, for `n ≤ INT_CHUNK`:
/// one accumulator per row, the weights read once per step for all four (the compiler keeps
/// the load in a register), and one four-way horizontal sum. Exact, so each result is the one
/// [`idot_chunk`] gives for that row.
///
/// # Safety
/// As for [`idot_chunk`], for each of the four rows.
#[inline(always)]
unsafe fn idot4<V: IntDot>(w: *const i16, c: [*const u8; 4], n: usize) -> [i32; 4] {
    debug_assert!(n <= INT_CHUNK);
    let s = V::STEP;
    // SAFETY: two steps only while `i + 2·STEP ≤ n`, one more only while `i + STEP ≤ n`, the
    // scalar tail below `n`: every read inside `[0, n)` of the weights and of each row (the
    // caller's guarantee).
    unsafe {
        let (mut a0, mut a1, mut a2, mut a3) = (V::zero(), V::zero(), V::zero(), V::zero());
        // One step (`STEP` elements) for the four rows from element `$i`. A macro, not a
        // closure: a closure would not inherit the caller's target features, and its
        // intrinsics would not be inlined.
        macro_rules! step {
            ($i:expr) => {
                a0 = a0.madd(w.add($i), c[0].add($i));
                a1 = a1.madd(w.add($i), c[1].add($i));
                a2 = a2.madd(w.add($i), c[2].add($i));
                a3 = a3.madd(w.add($i), c[3].add($i));
            };
        }
        let mut i = 0;
        // Two steps a turn: at one step a turn, the loop's bookkeeping was 5 of the turn's 18
        // instructions (AVX2, rustc 1.95).
        while i + 2 * s <= n {
            step!(i);
            step!(i + s);
            i += 2 * s;
        }
        if i + s <= n {
            step!(i);
            i += s;
        }
        let mut sums = V::hsum4(a0, a1, a2, a3);
        while i < n {
            let x = i32::from(*w.add(i));
            for (sum, row) in sums.iter_mut().zip(c) {
                *sum += x * i32::from(*row.add(i));
            }
            i += 1;
        }
        sums
    }
}

/// The one-to-many integer SQ8 kernel: as [`gather`] with `one` (the instruction set's
/// [`idot`]), but rows up to [`INT_CHUNK`] long are scored four at a time ([`idot4`]),
/// sharing the weight loads and the horizontal sums, and each result goes through `finish`
/// (its index `j` and the sum; the identity for the raw ABI) before it is stored:
/// `out[j] = finish(j, Σ wᵢ·cᵢ of row ids[j])`. The sums equal [`idot`]'s for every row, bit
/// for bit (integer sums are exact and are rounded to `f32` once).
///
/// # Safety
/// As for [`gather`] with `one`; weights bounded by [`MAX_INT_WEIGHT`].
// The arguments are the raw one-to-many ABI (`crate::IntManyFn`) plus the row kernel and the
// finish.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn gather_int<V: IntDot>(
    one: impl Fn(*const i16, *const u8, usize) -> f32,
    w: *const i16,
    base: *const u8,
    stride: usize,
    dim: usize,
    ids: *const u32,
    count: usize,
    out: *mut f32,
    prefetch: Prefetch,
    finish: impl Fn(usize, f32) -> f32,
) {
    // SAFETY: forwarded from the caller (one loop per setting, as in `gather`); `out[j]` for
    // `j < count` is writable (and, once `gather` wrote it, readable).
    unsafe {
        if dim > INT_CHUNK {
            gather(one, w, base, stride, dim, ids, count, out, prefetch);
            finish_in_place(out, count, finish);
            return;
        }
        match prefetch {
            Prefetch::Ahead => gather_int_rows::<V, true>(w, base, stride, dim, ids, count, out, finish),
            Prefetch::Off => gather_int_rows::<V, false>(w, base, stride, dim, ids, count, out, finish),
        }
    }
}

/// `out[j] = finish(j, out[j])` for `j < count`, in order: the second pass of a kernel that
/// cannot map its sums as it makes them.
///
/// # Safety
/// `out` valid for `count` reads and writes.
#[inline(always)]
pub(crate) unsafe fn finish_in_place(out: *mut f32, count: usize, finish: impl Fn(usize, f32) -> f32) {
    for j in 0..count {
        // SAFETY: `j < count` (caller).
        unsafe { *out.add(j) = finish(j, *out.add(j)) };
    }
}

/// [`gather_int`] for rows up to [`INT_CHUNK`] long, with the prefetches (`AHEAD`) or
/// without.
///
/// # Safety
/// As for [`gather_int`], and `dim ≤ INT_CHUNK`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn gather_int_rows<V: IntDot, const AHEAD: bool>(
    w: *const i16,
    base: *const u8,
    stride: usize,
    dim: usize,
    ids: *const u32,
    count: usize,
    out: *mut f32,
    finish: impl Fn(usize, f32) -> f32,
) {
    debug_assert!(dim <= INT_CHUNK);
    // SAFETY: `ids[j]` for `j < count` is readable and names a row with `dim` readable codes
    // (caller); `out[j]` for `j < count` is writable (caller); prefetches never fault; `dim ≤
    // INT_CHUNK` (as `idot4` and `idot_chunk` require): `gather_int` sends longer rows to
    // `gather`.
    unsafe {
        let row = |j: usize| base.add(*ids.add(j) as usize * stride);
        // Each row's `dim` codes are prefetched, not its whole slot (measured: fetching SQ8's
        // row constant too cost 8% more instructions on rows in cache and gained nothing
        // visible on minilm-100k). At least a block of four ahead, so that long rows too are
        // fetched a block early.
        let ahead = rows_ahead(dim).max(4);
        if AHEAD {
            for j in 0..count.min(ahead) {
                super::prefetch_bytes(row(j), dim);
            }
        }
        let mut j = 0;
        while j + 4 <= count {
            if AHEAD {
                for k in j + ahead..(j + ahead + 4).min(count) {
                    super::prefetch_bytes(row(k), dim);
                }
            }
            let sums = idot4::<V>(w, [row(j), row(j + 1), row(j + 2), row(j + 3)], dim);
            for (k, sum) in sums.into_iter().enumerate() {
                *out.add(j + k) = finish(j + k, sum as f32);
            }
            j += 4;
        }
        while j < count {
            if AHEAD && j + ahead < count {
                super::prefetch_bytes(row(j + ahead), dim);
            }
            *out.add(j) = finish(j, idot_chunk::<V>(w, row(j), dim) as f32);
            j += 1;
        }
    }
}

/// The plain-Rust [`IntDot`]: eight `i32` lanes, sixteen elements a step (the scalar and
/// portable tables; the compiler vectorises it where the target allows).
#[derive(Clone, Copy)]
pub(crate) struct Lanes([i32; 8]);

impl IntDot for Lanes {
    const STEP: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([0; 8])
    }

    #[inline(always)]
    unsafe fn madd(mut self, w: *const i16, c: *const u8) -> Self {
        for j in 0..8 {
            // SAFETY: `2j + 1 < 16 = STEP` elements readable at both pointers (caller).
            let (p, q) = unsafe {
                (
                    i32::from(*w.add(2 * j)) * i32::from(*c.add(2 * j)),
                    i32::from(*w.add(2 * j + 1)) * i32::from(*c.add(2 * j + 1)),
                )
            };
            self.0[j] = self.0[j].wrapping_add(p).wrapping_add(q);
        }
        self
    }

    #[inline(always)]
    unsafe fn add(mut self, b: Self) -> Self {
        for (x, y) in self.0.iter_mut().zip(b.0) {
            *x = x.wrapping_add(y);
        }
        self
    }

    #[inline(always)]
    unsafe fn hsum(self) -> i32 {
        self.0.iter().fold(0i32, |s, &x| s.wrapping_add(x))
    }
}
