//! AVX-512F: 16 lanes per register; the tail is read with a zero-masking load.

use crate::arch::generic::F32Vector;
use crate::Isa;
use core::arch::x86_64::*;

/// A `__m512` (16 × f32).
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512);

// SAFETY (for every method below): the trait's contract requires the CPU to have AVX-512F and
// the call to be inlined into a function compiled with it; pointers are valid for the reads
// stated by the trait.
impl F32Vector for Avx512 {
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl's comment.
        Avx512(unsafe { _mm512_setzero_ps() })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: 16 readable floats at `p`; `loadu` has no alignment requirement.
        Avx512(unsafe { _mm512_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        debug_assert!(n < 16);
        let mask: __mmask16 = ((1u32 << n) - 1) as u16;
        // SAFETY: only lanes i < n are read and `n` floats at `p` are readable; masked-off
        // lanes of a masked load are neither accessed nor able to fault.
        Avx512(unsafe { _mm512_maskz_loadu_ps(mask, p) })
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx512(unsafe { _mm512_add_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx512(unsafe { _mm512_sub_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx512(unsafe { _mm512_fmadd_ps(self.0, b.0, acc.0) })
    }

    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        // SAFETY: see the impl's comment.
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
}

crate::arch::instantiate!(Isa::Avx512, Avx512, "avx512f");
