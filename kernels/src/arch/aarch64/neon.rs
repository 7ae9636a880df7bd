//! NEON: 4 lanes per register; the tail is copied into a zeroed register-sized buffer.
//!
//! `u8` codes widen with `vmovl_u8` / `vmovl_u16` / `vcvtq_f32_u32`, sixteen at a time from
//! one 16-byte load. `f16` converts with `FCVTL`/`FCVTL2` (half → single, part of base
//! ARMv8-A Advanced SIMD, no FEAT_FP16 needed), written as inline assembly because Rust's
//! `vcvt_f32_f16` takes a `float16x4_t`, which is unstable (`stdarch_neon_f16`).

use crate::arch::generic::{F32Vector, IntDot, Load};
use crate::Isa;
use core::arch::aarch64::*;
use half::f16;

/// A `float32x4_t` (4 × f32).
#[derive(Clone, Copy)]
pub(crate) struct Neon(float32x4_t);

// SAFETY (for every method below): the trait's contract requires the CPU to have NEON and the
// call to be inlined into a function compiled with it; pointers are valid for the reads stated
// by the trait.
impl F32Vector for Neon {
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl's comment.
        Neon(unsafe { vdupq_n_f32(0.0) })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: 4 readable floats at `p`; LD1 needs only element alignment.
        Neon(unsafe { vld1q_f32(p) })
    }

    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        debug_assert!(n < 4);
        let mut buf = [0.0f32; 4];
        // SAFETY: `n` floats are readable at `p`, and `buf` holds 4 > n.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Neon(vld1q_f32(buf.as_ptr()))
        }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Neon(unsafe { vaddq_f32(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Neon(unsafe { vsubq_f32(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        // SAFETY: see the impl's comment.
        Neon(unsafe { vfmaq_f32(acc.0, self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        // SAFETY: see the impl's comment.
        unsafe { vaddvq_f32(self.0) }
    }
}

/// Four `u8` codes in the low lanes of a `uint8x8_t` → four `f32` lanes.
///
/// # Safety
/// NEON, inlined into a function compiled with it.
#[inline(always)]
unsafe fn widen4(c: uint8x8_t) -> Neon {
    // SAFETY: register-only NEON operations.
    Neon(unsafe { vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(c)))) })
}

// SAFETY (for both impls below): as for `F32Vector`.
impl Load<u8> for Neon {
    #[inline(always)]
    unsafe fn load_from(p: *const u8) -> Self {
        // SAFETY: 4 readable bytes at `p`, read unaligned into the low lanes.
        unsafe {
            let word = p.cast::<u32>().read_unaligned();
            widen4(vcreate_u8(word as u64))
        }
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const u8, n: usize) -> Self {
        debug_assert!(n < 4);
        let mut buf = [0u8; 4];
        // SAFETY: `n` readable bytes at `p`, and `buf` holds 4 > n.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self::load_from(buf.as_ptr())
        }
    }

    #[inline(always)]
    unsafe fn load4_from(p: *const u8) -> [Self; 4] {
        // SAFETY: 16 readable bytes at `p`; LD1 needs no alignment; the rest is registers.
        unsafe {
            let c = vld1q_u8(p);
            let lo = vmovl_u8(vget_low_u8(c));
            let hi = vmovl_high_u8(c);
            [
                Neon(vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)))),
                Neon(vcvtq_f32_u32(vmovl_high_u16(lo))),
                Neon(vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)))),
                Neon(vcvtq_f32_u32(vmovl_high_u16(hi))),
            ]
        }
    }
}

/// The low four `f16`s of `h` (as raw bits) → four `f32` lanes (`FCVTL`).
///
/// # Safety
/// NEON, inlined into a function compiled with it.
#[inline(always)]
unsafe fn cvt_low(h: uint16x8_t) -> Neon {
    let out: float32x4_t;
    // SAFETY: FCVTL is base ARMv8-A Advanced SIMD; it only reads and writes registers.
    unsafe {
        core::arch::asm!("fcvtl {o:v}.4s, {i:v}.4h", o = lateout(vreg) out, i = in(vreg) h,
            options(pure, nomem, nostack, preserves_flags));
    }
    Neon(out)
}

/// The high four `f16`s of `h` → four `f32` lanes (`FCVTL2`).
///
/// # Safety
/// NEON, inlined into a function compiled with it.
#[inline(always)]
unsafe fn cvt_high(h: uint16x8_t) -> Neon {
    let out: float32x4_t;
    // SAFETY: as in `cvt_low`.
    unsafe {
        core::arch::asm!("fcvtl2 {o:v}.4s, {i:v}.8h", o = lateout(vreg) out, i = in(vreg) h,
            options(pure, nomem, nostack, preserves_flags));
    }
    Neon(out)
}

impl Load<f16> for Neon {
    #[inline(always)]
    unsafe fn load_from(p: *const f16) -> Self {
        // SAFETY: 4 readable `f16`s (8 bytes) at `p`; LD1 needs only element alignment.
        unsafe { cvt_low(vcombine_u16(vld1_u16(p.cast()), vdup_n_u16(0))) }
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const f16, n: usize) -> Self {
        debug_assert!(n < 4);
        let mut buf = [f16::ZERO; 4];
        // SAFETY: `n` readable `f16`s at `p`, and `buf` holds 4 > n.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self::load_from(buf.as_ptr())
        }
    }

    #[inline(always)]
    unsafe fn load4_from(p: *const f16) -> [Self; 4] {
        // SAFETY: 16 readable `f16`s (32 bytes) at `p`; LD1 needs only element alignment.
        unsafe {
            let a = vld1q_u16(p.cast());
            let b = vld1q_u16(p.cast::<u16>().add(8));
            [cvt_low(a), cvt_high(a), cvt_low(b), cvt_high(b)]
        }
    }
}

crate::arch::instantiate_float!(f32_rows, f32, Isa::Neon, Neon, "neon");
crate::arch::instantiate_float!(f16_rows, half::f16, Isa::Neon, Neon, "neon");
/// Two `int32x4_t` accumulators for the integer SQ8 kernel: 16 codes widen with `vmovl_u8`
/// (their `u16` lanes are below 256, so valid `i16`) and `vmlal_s16` / `vmlal_high_s16`
/// multiply-accumulate them with 16 `i16` weights into `i32` lanes. (The dot-product
/// instructions, `sdot`/`udot`, take 8-bit operands on both sides, so they do not fit `i16`
/// weights.)
#[derive(Clone, Copy)]
pub(crate) struct NeonInt(int32x4_t, int32x4_t);

// SAFETY (for every method): as for `F32Vector` above (NEON present, inlined into a function
// compiled with it); 16 readable elements at each pointer (the trait's contract).
impl IntDot for NeonInt {
    const STEP: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl's comment.
        unsafe { NeonInt(vdupq_n_s32(0), vdupq_n_s32(0)) }
    }

    #[inline(always)]
    unsafe fn madd(self, w: *const i16, c: *const u8) -> Self {
        // SAFETY: 16 bytes at `c`, 16 `i16`s at `w` (two 8-lane loads), unaligned.
        unsafe {
            let c = vld1q_u8(c);
            let lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(c)));
            let hi = vreinterpretq_s16_u16(vmovl_high_u8(c));
            let (w0, w1) = (vld1q_s16(w), vld1q_s16(w.add(8)));
            let a = vmlal_high_s16(vmlal_s16(self.0, vget_low_s16(lo), vget_low_s16(w0)), lo, w0);
            let b = vmlal_high_s16(vmlal_s16(self.1, vget_low_s16(hi), vget_low_s16(w1)), hi, w1);
            NeonInt(a, b)
        }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        unsafe { NeonInt(vaddq_s32(self.0, b.0), vaddq_s32(self.1, b.1)) }
    }

    #[inline(always)]
    unsafe fn hsum(self) -> i32 {
        // SAFETY: see the impl's comment.
        unsafe { vaddvq_s32(vaddq_s32(self.0, self.1)) }
    }
}

crate::arch::instantiate_codes!(u8_codes, Isa::Neon, Neon, NeonInt, "neon");
