//! The plain scalar kernels: one accumulator, one element at a time, in order. This is the
//! baseline the SIMD kernels are measured against (`HNSWX_KERNEL=scalar`), and it runs on any
//! target. (The compiler does not vectorise these loops: float addition is not associative.)
//! Row elements are converted to `f32` one at a time (`u8 as f32`, `f16::to_f32`), exactly.

/// `f32` rows.
pub(crate) mod f32_rows {
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

    crate::arch::table!(Isa::Scalar, f32, l2sq, dot);
}

/// Half-precision rows.
pub(crate) mod f16_rows {
    use crate::Isa;
    use half::f16;

    /// # Safety
    /// `a`, `b` valid for `n` reads.
    unsafe fn l2sq(a: *const f32, b: *const f16, n: usize) -> f32 {
        let mut s = 0.0f32;
        for i in 0..n {
            // SAFETY: `i < n`, and the caller guarantees `n` readable elements behind each
            // pointer.
            let d = unsafe { *a.add(i) - (*b.add(i)).to_f32() };
            s += d * d;
        }
        s
    }

    /// # Safety
    /// `a`, `b` valid for `n` reads.
    unsafe fn dot(a: *const f32, b: *const f16, n: usize) -> f32 {
        let mut s = 0.0f32;
        for i in 0..n {
            // SAFETY: as in `l2sq`.
            s += unsafe { *a.add(i) * (*b.add(i)).to_f32() };
        }
        s
    }

    crate::arch::table!(Isa::Scalar, f16, l2sq, dot);
}

/// SQ8 codes.
pub(crate) mod u8_codes {
    use crate::Isa;

    /// `Σ wᵢ·cᵢ` in order: the reference order for the SQ8 kernels.
    ///
    /// # Safety
    /// `w`, `c` valid for `n` reads.
    unsafe fn dot(w: *const f32, c: *const u8, n: usize) -> f32 {
        let mut s = 0.0f32;
        for i in 0..n {
            // SAFETY: `i < n`, and the caller guarantees `n` readable elements behind each
            // pointer.
            s += unsafe { *w.add(i) * *c.add(i) as f32 };
        }
        s
    }

    /// `Σ wᵢ·cᵢ` over `i16` weights, in order, exactly (`i64`).
    ///
    /// # Safety
    /// `w`, `c` valid for `n` reads.
    unsafe fn idot(w: *const i16, c: *const u8, n: usize) -> f32 {
        let mut s = 0i64;
        for i in 0..n {
            // SAFETY: `i < n` readable elements behind each pointer (caller).
            s += unsafe { i64::from(*w.add(i)) * i64::from(*c.add(i)) };
        }
        s as f32
    }

    /// [`idot`] against each listed row, in order.
    ///
    /// # Safety
    /// As for `crate::IntManyFn`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn idot_many(
        w: *const i16,
        base: *const u8,
        stride: usize,
        dim: usize,
        ids: *const u32,
        count: usize,
        out: *mut f32,
        prefetch: crate::Prefetch,
    ) {
        // SAFETY: pointers are the caller's (`IntManyFn`).
        unsafe {
            crate::arch::generic::gather(|a, b, n| idot(a, b, n), w, base, stride, dim, ids, count, out, prefetch)
        }
    }

    /// [`idot_many`], then each result mapped by `finish(j, sum)`.
    ///
    /// # Safety
    /// As for `crate::IntManyFn`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn idot_many_then(
        w: *const i16,
        base: *const u8,
        stride: usize,
        dim: usize,
        ids: *const u32,
        count: usize,
        out: *mut f32,
        prefetch: crate::Prefetch,
        finish: impl Fn(usize, f32) -> f32,
    ) {
        // SAFETY: pointers are the caller's (`IntManyFn`): `out[j]` for `j < count` is
        // writable, and readable once `idot_many` wrote it.
        unsafe {
            idot_many(w, base, stride, dim, ids, count, out, prefetch);
            crate::arch::generic::finish_in_place(out, count, finish);
        }
    }

    crate::arch::code_table!(Isa::Scalar, dot, idot, idot_many, idot_many_then);
}
