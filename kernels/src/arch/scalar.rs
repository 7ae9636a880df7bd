//! The plain scalar kernels: one accumulator, one element at a time, in order. This is the
//! baseline the SIMD kernels are measured against (`HNSWX_KERNEL=scalar`), and it runs on any
//! target. (The compiler does not vectorise these loops: float addition is not associative.)

use crate::Isa;

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

super::table!(Isa::Scalar, l2sq, dot);
