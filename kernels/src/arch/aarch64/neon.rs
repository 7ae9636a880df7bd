//! NEON: 4 lanes per register; the tail is copied into a zeroed register-sized buffer.

use crate::arch::generic::F32Vector;
use crate::Isa;
use core::arch::aarch64::*;

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

crate::arch::instantiate!(Isa::Neon, Neon, "neon");
