//! x86_64 kernels: AVX2+FMA (256-bit) and AVX-512F (512-bit).

pub(crate) mod avx2;
pub(crate) mod avx512;
