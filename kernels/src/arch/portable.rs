//! The portable kernels: `wide::f32x8`, which compiles to whatever SIMD the *compile-time*
//! target has (SSE2 on a default x86_64 build, NEON on aarch64, plain scalar code elsewhere).
//! No run-time feature check is needed, so this table is available everywhere.

use super::generic::F32Vector;
use crate::Isa;
use wide::f32x8;

impl F32Vector for f32x8 {
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> Self {
        f32x8::ZERO
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable, f32-aligned floats at `p`;
        // `read_unaligned` needs no more alignment than that.
        f32x8::from(unsafe { p.cast::<[f32; 8]>().read_unaligned() })
    }

    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        debug_assert!(n < 8);
        let mut buf = [0.0f32; 8];
        // SAFETY: the caller guarantees `n` readable floats at `p`; `buf` holds 8 > n.
        unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n) };
        f32x8::from(buf)
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        self + b
    }

    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        self - b
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        f32x8::mul_add(self, b, acc)
    }

    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        self.reduce_add()
    }
}

super::instantiate!(Isa::Portable, f32x8);
