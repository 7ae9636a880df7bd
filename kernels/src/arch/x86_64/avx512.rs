//! AVX-512F: 16 lanes per register; the tail is read with a zero-masking load (f32) or
//! copied into a zeroed buffer (`u8` codes, `f16`: byte and word masked loads would need
//! AVX-512BW). Codes widen with `vpmovzxbd` + `vcvtdq2ps`, `f16` converts with `vcvtph2ps`,
//! all AVX-512F.

use crate::arch::generic::{F32Vector, IntDot, Load};
use crate::Isa;
use core::arch::x86_64::*;
use half::f16;

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

// SAFETY (for both impls below): as for `F32Vector`.
impl Load<u8> for Avx512 {
    #[inline(always)]
    unsafe fn load_from(p: *const u8) -> Self {
        // SAFETY: 16 readable bytes at `p`; `loadu` has no alignment requirement.
        Avx512(unsafe { _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()))) })
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const u8, n: usize) -> Self {
        debug_assert!(n < 16);
        let mut buf = [0u8; 16];
        // SAFETY: `n` readable bytes at `p`, and `buf` holds 16 > n.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self::load_from(buf.as_ptr())
        }
    }
}

impl Load<f16> for Avx512 {
    #[inline(always)]
    unsafe fn load_from(p: *const f16) -> Self {
        // SAFETY: 16 readable `f16`s (32 bytes) at `p`; `loadu` has no alignment requirement.
        Avx512(unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) })
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const f16, n: usize) -> Self {
        debug_assert!(n < 16);
        let mut buf = [f16::ZERO; 16];
        // SAFETY: `n` readable `f16`s at `p`, and `buf` holds 16 > n.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self::load_from(buf.as_ptr())
        }
    }
}

crate::arch::instantiate_float!(f32_rows, f32, Isa::Avx512, Avx512, "avx512f");
crate::arch::instantiate_float!(f16_rows, half::f16, Isa::Avx512, Avx512, "avx512f");
/// A `__m512i` of 16 × i32 accumulators for the integer SQ8 kernel (AVX-512BW): 32 codes
/// widen with `vpmovzxbw` and `vpmaddwd` multiplies them by 32 `i16` weights, adding pairs
/// into lanes.
#[derive(Clone, Copy)]
pub(crate) struct Avx512Int(__m512i);

// SAFETY (for every method): the CPU has AVX-512F and AVX-512BW and the call is inlined into a
// function compiled with them; 32 readable elements at each pointer (the trait's contract).
impl IntDot for Avx512Int {
    const STEP: usize = 32;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl's comment.
        Avx512Int(unsafe { _mm512_setzero_si512() })
    }

    #[inline(always)]
    unsafe fn madd(self, w: *const i16, c: *const u8) -> Self {
        // SAFETY: 32 bytes at `c` and 32 `i16`s (64 bytes) at `w`, unaligned loads.
        unsafe {
            let c = _mm512_cvtepu8_epi16(_mm256_loadu_si256(c.cast()));
            let w = _mm512_loadu_si512(w.cast());
            Avx512Int(_mm512_add_epi32(self.0, _mm512_madd_epi16(c, w)))
        }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx512Int(unsafe { _mm512_add_epi32(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn hsum(self) -> i32 {
        // SAFETY: see the impl's comment. The lanes cannot overflow (`INT_CHUNK`), so the
        // wrapping sum is the exact one.
        unsafe { _mm512_reduce_add_epi32(self.0) }
    }
}

/// [`Avx512Int`] with AVX512_VNNI: `vpdpwssd` multiplies the word pairs and adds them into the
/// lanes in one instruction (the non-saturating form, so the sums are exactly those of
/// `vpmaddwd` + `vpaddd`).
#[derive(Clone, Copy)]
pub(crate) struct VnniInt(__m512i);

// SAFETY (for every method): as for `Avx512Int`, with AVX512_VNNI present as well.
impl IntDot for VnniInt {
    const STEP: usize = 32;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl's comment.
        VnniInt(unsafe { _mm512_setzero_si512() })
    }

    #[inline(always)]
    unsafe fn madd(self, w: *const i16, c: *const u8) -> Self {
        // SAFETY: as for `Avx512Int::madd`.
        unsafe {
            let c = _mm512_cvtepu8_epi16(_mm256_loadu_si256(c.cast()));
            let w = _mm512_loadu_si512(w.cast());
            VnniInt(_mm512_dpwssd_epi32(self.0, c, w))
        }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        VnniInt(unsafe { _mm512_add_epi32(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn hsum(self) -> i32 {
        // SAFETY: see the impl's comment.
        unsafe { _mm512_reduce_add_epi32(self.0) }
    }
}

// Three SQ8 tables for AVX-512, chosen at run time by `crate::sealed` (`u8`'s `table`): VNNI
// (`vpdpwssd`), plain AVX-512BW (`vpmaddwd` on zmm), and, for an AVX-512F CPU without BW, the
// 256-bit AVX2 accumulator (those tables then also require AVX2, checked at run time).
crate::arch::instantiate_codes!(
    u8_codes_vnni,
    Isa::Avx512,
    Avx512,
    VnniInt,
    "avx512f,avx512bw,avx512vnni"
);
crate::arch::instantiate_codes!(u8_codes_bw, Isa::Avx512, Avx512, Avx512Int, "avx512f,avx512bw");
crate::arch::instantiate_codes!(
    u8_codes,
    Isa::Avx512,
    Avx512,
    crate::arch::x86_64::avx2::Avx2Int,
    "avx512f,avx2"
);
