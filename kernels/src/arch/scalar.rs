//! The plain scalar kernels: one accumulator, one element at a time, in order. This is the
//! baseline the SIMD kernels are measured against (`HNSWX_KERNEL=scalar`), and it runs on any
//! target. (The compiler does not vectorise these loops: float addition is not associative.)

use crate::{Isa, Kernels};

/// # Safety
/// `a`, `b` valid for `n` reads.
unsafe fn l2sq(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut s = 0.0f32;
    for i in 0..n {
        // SAFETY: `i < n`, and the caller guarantees `n` readable floats behind each pointer.
        let d = unsafe { *a.add(i) - *b.add(i) };
        s += d * d;
    }
    s
}

/// # Safety
/// `a`, `b` valid for `n` reads.
unsafe fn dot(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut s = 0.0f32;
    for i in 0..n {
        // SAFETY: as in `l2sq`.
        s += unsafe { *a.add(i) * *b.add(i) };
    }
    s
}

/// # Safety
/// `a`, `b` valid for `n` reads.
unsafe fn ip(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: forwarded.
    1.0 - unsafe { dot(a, b, n) }
}

/// # Safety
/// See [`crate::OneToManyFn`].
unsafe fn l2sq_many(
    q: *const f32,
    base: *const f32,
    stride: usize,
    dim: usize,
    ids: *const u32,
    count: usize,
    out: *mut f32,
) {
    // SAFETY: forwarded; `gather` reads only the rows named by `ids`.
    unsafe { super::generic::gather(|a, b, n| l2sq(a, b, n), q, base, stride, dim, ids, count, out) }
}

/// # Safety
/// See [`crate::OneToManyFn`].
unsafe fn ip_many(
    q: *const f32,
    base: *const f32,
    stride: usize,
    dim: usize,
    ids: *const u32,
    count: usize,
    out: *mut f32,
) {
    // SAFETY: forwarded.
    unsafe { super::generic::gather(|a, b, n| ip(a, b, n), q, base, stride, dim, ids, count, out) }
}

pub(crate) static KERNELS: Kernels<f32> = Kernels {
    isa: Isa::Scalar,
    l2sq,
    dot,
    ip,
    l2sq_many,
    ip_many,
    _element: core::marker::PhantomData,
};
