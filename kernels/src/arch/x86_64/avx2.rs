//! AVX2 + FMA: 8 lanes per register; the tail is read with a masked load (f32) or copied
//! into a zeroed buffer (`u8` codes, `f16`). Codes widen with `vpmovzxbd` + `vcvtdq2ps`;
//! `f16` converts with F16C's `vcvtph2ps`, so the `f16` table also needs F16C (checked at
//! run time with AVX2 and FMA; without it `f16` falls back to the portable kernels).

use crate::arch::generic::{F32Vector, IntDot, Load};
use crate::Isa;
use core::arch::x86_64::*;
use half::f16;

/// A `__m256` (8 × f32).
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256);

// SAFETY (for every method below): the trait's contract requires the CPU to have AVX2 and
// FMA and the call to be inlined into a function compiled with those features; pointers are
// valid for the reads stated by the trait.
impl F32Vector for Avx2 {
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl's comment.
        Avx2(unsafe { _mm256_setzero_ps() })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: 8 readable floats at `p`; `loadu` has no alignment requirement.
        Avx2(unsafe { _mm256_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        debug_assert!(n < 8);
        // SAFETY: lane i is loaded only when i < n, and `n` floats at `p` are readable;
        // VMASKMOVPS does not touch (or fault on) masked-off lanes.
        unsafe {
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            Avx2(_mm256_maskload_ps(p, mask))
        }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx2(unsafe { _mm256_add_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx2(unsafe { _mm256_sub_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx2(unsafe { _mm256_fmadd_ps(self.0, b.0, acc.0) })
    }

    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        // SAFETY: see the impl's comment.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
            _mm_cvtss_f32(s)
        }
    }
}

// SAFETY (for both impls below): as for `F32Vector`; the `f16` impl is only instantiated in
// functions that also enable F16C, and only handed out where the CPU has it.
impl Load<u8> for Avx2 {
    #[inline(always)]
    unsafe fn load_from(p: *const u8) -> Self {
        // SAFETY: 8 readable bytes at `p`; MOVQ reads exactly 8 bytes, unaligned.
        Avx2(unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))) })
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const u8, n: usize) -> Self {
        debug_assert!(n < 8);
        let mut buf = [0u8; 8];
        // SAFETY: `n` readable bytes at `p`, and `buf` holds 8 > n.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self::load_from(buf.as_ptr())
        }
    }
}

impl Load<f16> for Avx2 {
    #[inline(always)]
    unsafe fn load_from(p: *const f16) -> Self {
        // SAFETY: 8 readable `f16`s (16 bytes) at `p`; `loadu` has no alignment requirement.
        Avx2(unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) })
    }

    #[inline(always)]
    unsafe fn load_from_partial(p: *const f16, n: usize) -> Self {
        debug_assert!(n < 8);
        let mut buf = [f16::ZERO; 8];
        // SAFETY: `n` readable `f16`s at `p`, and `buf` holds 8 > n.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self::load_from(buf.as_ptr())
        }
    }
}

crate::arch::instantiate_float!(f32_rows, f32, Isa::Avx2, Avx2, "avx2,fma");
crate::arch::instantiate_float!(f16_rows, half::f16, Isa::Avx2, Avx2, "avx2,fma,f16c");
/// A `__m256i` of 8 × i32 accumulators for the integer SQ8 kernel: 16 codes widen with
/// `vpmovzxbw` and `vpmaddwd` multiplies them by 16 `i16` weights, adding pairs into lanes.
#[derive(Clone, Copy)]
pub(crate) struct Avx2Int(__m256i);

// SAFETY (for every method): as for `F32Vector` above (AVX2 present, inlined into a function
// compiled with it); 16 readable elements at each pointer (the trait's contract).
impl IntDot for Avx2Int {
    const STEP: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl's comment.
        Avx2Int(unsafe { _mm256_setzero_si256() })
    }

    #[inline(always)]
    unsafe fn madd(self, w: *const i16, c: *const u8) -> Self {
        // SAFETY: 16 bytes at `c` and 16 `i16`s (32 bytes) at `w`, unaligned loads.
        unsafe {
            let c = _mm256_cvtepu8_epi16(_mm_loadu_si128(c.cast()));
            let w = _mm256_loadu_si256(w.cast());
            Avx2Int(_mm256_add_epi32(self.0, _mm256_madd_epi16(c, w)))
        }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: see the impl's comment.
        Avx2Int(unsafe { _mm256_add_epi32(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn hsum4(a: Self, b: Self, c: Self, d: Self) -> [i32; 4] {
        // SAFETY: see the impl's comment. `vphaddd` adds adjacent lanes within each 128-bit
        // half: after two rounds lane k of each half holds half of row k's sum, and the two
        // halves added give the four sums (exact: no lane overflows, see `INT_CHUNK`). The
        // unaligned 16-byte store writes exactly the four `i32`s of `out`.
        unsafe {
            let ab = _mm256_hadd_epi32(a.0, b.0);
            let cd = _mm256_hadd_epi32(c.0, d.0);
            let abcd = _mm256_hadd_epi32(ab, cd);
            let s = _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256::<1>(abcd));
            let mut out = [0i32; 4];
            _mm_storeu_si128(out.as_mut_ptr().cast(), s);
            out
        }
    }

    #[inline(always)]
    unsafe fn hsum(self) -> i32 {
        // SAFETY: see the impl's comment.
        unsafe {
            let s = _mm_add_epi32(_mm256_castsi256_si128(self.0), _mm256_extracti128_si256::<1>(self.0));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
            _mm_cvtsi128_si32(s)
        }
    }
}

crate::arch::instantiate_codes!(u8_codes, Isa::Avx2, Avx2, Avx2Int, "avx2,fma");
