//! aarch64 kernels: NEON (128-bit, part of the base ARMv8-A ISA).

pub(crate) mod neon;
