//! The portable kernels: `wide::f32x8`, which compiles to whatever SIMD the *compile-time*
//! target has (SSE2 on a default x86_64 build, NEON on aarch64, plain scalar code elsewhere).
//! No run-time feature check is needed, so this table is available everywhere. `u8` codes
//! and `f16` values are converted eight at a time through an array (`half`'s software
//! conversion unless the compile-time target has a hardware one), then summed in `f32x8`.

use super::generic::{F32Vector, Load};
use crate::Isa;
use half::f16;
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

impl Load<u8> for f32x8 {
    #[inline(always)]
    unsafe fn load_from(p: *const u8) -> Self {
        // SAFETY: the caller guarantees 8 readable bytes at `p`.
        let c = unsafe { p.cast::<[u8; 8]>().read_unaligned() };
        f32x8::from(c.map(f32::from))
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const u8, n: usize) -> Self {
        debug_assert!(n < 8);
        let mut buf = [0u8; 8];
        // SAFETY: the caller guarantees `n` readable bytes at `p`; `buf` holds 8 > n.
        unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n) };
        f32x8::from(buf.map(f32::from))
    }
}

impl Load<f16> for f32x8 {
    #[inline(always)]
    unsafe fn load_from(p: *const f16) -> Self {
        // SAFETY: the caller guarantees 8 readable, aligned `f16`s at `p`.
        let h = unsafe { p.cast::<[f16; 8]>().read_unaligned() };
        f32x8::from(h.map(f16::to_f32))
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const f16, n: usize) -> Self {
        debug_assert!(n < 8);
        let mut buf = [f16::ZERO; 8];
        // SAFETY: the caller guarantees `n` readable `f16`s at `p`; `buf` holds 8 > n.
        unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n) };
        f32x8::from(buf.map(f16::to_f32))
    }
}

super::instantiate_float!(f32_rows, f32, Isa::Portable, f32x8);
super::instantiate_float!(f16_rows, half::f16, Isa::Portable, f32x8);
super::instantiate_codes!(u8_codes, Isa::Portable, f32x8, crate::arch::generic::Lanes);
