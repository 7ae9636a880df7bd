//! The distance algorithms, written once over a vector type and instantiated per
//! instruction set by [`instantiate!`](crate::arch::instantiate).
//!
//! Everything here is `#[inline(always)]`: it is compiled inside the caller, a function
//! carrying `#[target_feature(enable = ...)]`, so the generic code gets the caller's
//! instruction set.

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

/// Walks `a` and `b` (each `n` floats) with four independent accumulators, so that the
/// loop is bound by loads rather than by the latency of one accumulator's FMA chain, then
/// one register at a time, then a zero-filled partial register for the tail.
///
/// # Safety
/// As for [`F32Vector`]; `a` and `b` valid for `n` reads.
#[inline(always)]
unsafe fn fold<V: F32Vector>(a: *const f32, b: *const f32, n: usize, step: impl Fn(V, V, V) -> V) -> f32 {
    let w = V::LANES;
    // SAFETY: the caller guarantees the instruction set and that `a`/`b` hold `n` floats;
    // every load below reads inside `[0, n)`: full loads only while `i + w <= n`, and the
    // last one through `load_partial`, which reads exactly `n - i` floats.
    unsafe {
        let (mut s0, mut s1, mut s2, mut s3) = (V::zero(), V::zero(), V::zero(), V::zero());
        let mut i = 0;
        while i + 4 * w <= n {
            s0 = step(V::load(a.add(i)), V::load(b.add(i)), s0);
            s1 = step(V::load(a.add(i + w)), V::load(b.add(i + w)), s1);
            s2 = step(V::load(a.add(i + 2 * w)), V::load(b.add(i + 2 * w)), s2);
            s3 = step(V::load(a.add(i + 3 * w)), V::load(b.add(i + 3 * w)), s3);
            i += 4 * w;
        }
        while i + w <= n {
            s0 = step(V::load(a.add(i)), V::load(b.add(i)), s0);
            i += w;
        }
        if i < n {
            let rest = n - i;
            s1 = step(V::load_partial(a.add(i), rest), V::load_partial(b.add(i), rest), s1);
        }
        s0.add(s1).add(s2.add(s3)).sum()
    }
}

/// `Σ aᵢ·bᵢ`.
///
/// # Safety
/// As for [`fold`].
#[inline(always)]
pub(crate) unsafe fn dot<V: F32Vector>(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: forwarded from the caller.
    unsafe { fold::<V>(a, b, n, |x, y, acc| x.mul_add(y, acc)) }
}

/// `Σ (aᵢ − bᵢ)²`.
///
/// # Safety
/// As for [`fold`].
#[inline(always)]
pub(crate) unsafe fn l2sq<V: F32Vector>(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        fold::<V>(a, b, n, |x, y, acc| {
            let d = x.sub(y);
            d.mul_add(d, acc)
        })
    }
}

/// Cache lines [`gather`] tries to keep in flight: it prefetches enough rows ahead of the one
/// being scored that their lines add up to about this many, so short rows are fetched further
/// ahead than long ones. Measured with `cargo bench --bench kernels -- many` on rows drawn at
/// random from a 256 MiB table: 64 lines beat 8 and 24 at dim ≤ 384 (128-d, AVX2: 1.03 µs per
/// 32 rows against 1.36 µs with 24 lines) and tie at longer rows, where one row ahead is
/// already more than the budget.
pub(crate) const PREFETCH_LINES: usize = 64;

/// Rows fetched ahead for rows of `bytes` bytes: `PREFETCH_LINES` lines' worth, 1 to 16 rows.
#[inline(always)]
fn rows_ahead(bytes: usize) -> usize {
    (PREFETCH_LINES / bytes.div_ceil(super::LINE).max(1)).clamp(1, 16)
}

/// Scores `query` against the rows `ids[j]` of a strided table, writing `out[j]`, while rows
/// further down the list ([`rows_ahead`] of them) are being fetched into cache.
///
/// # Safety
/// `query` valid for `dim` reads; `ids` and `out` valid for `count` reads / writes; for every
/// id in `ids`, `base + id * stride` valid for `dim` reads; and the safety conditions of `one`.
// The arguments are the raw one-to-many ABI (`crate::OneToManyFn`) plus the row kernel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn gather(
    one: impl Fn(*const f32, *const f32, usize) -> f32,
    query: *const f32,
    base: *const f32,
    stride: usize,
    dim: usize,
    ids: *const u32,
    count: usize,
    out: *mut f32,
) {
    let bytes = dim * core::mem::size_of::<f32>();
    // SAFETY: `ids[j]` for `j < count` is readable and names a readable row (caller);
    // `out[j]` for `j < count` is writable (caller); prefetches never fault.
    unsafe {
        let row = |j: usize| base.add(*ids.add(j) as usize * stride);
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
