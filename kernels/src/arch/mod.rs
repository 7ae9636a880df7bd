//! One folder per instruction set; each implements [`generic::F32Vector`] for its register
//! type, [`generic::Load`] for the row elements it widens (`u8` codes, `f16`), and
//! instantiates the generic algorithms with [`instantiate_float!`] and [`instantiate_codes!`]
//! inside functions that carry its `#[target_feature]`. Each instruction set's module then
//! holds three submodules with a `KERNELS` table each: `f32_rows`, `f16_rows`, `u8_codes`
//! (AVX-512 has three SQ8 ones). An SQ8 module also has its integer kernel as a type,
//! `IntKernelOf` ([`crate::IntKernel`]), and `run_int`, which runs a caller's generic code
//! inside a function with the module's `#[target_feature]`
//! ([`crate::Kernels::with_int_kernel`]).

pub(crate) mod generic;
pub(crate) mod portable;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;

/// Cache-line size assumed for prefetching (true of every x86_64 and of common aarch64 cores).
const LINE: usize = 64;

/// Asks the CPU to bring `bytes` bytes starting at `p` closer (x86_64: into L2; aarch64: into
/// L1): every line the range touches, also when it does not start on a line (rows of a table
/// whose stride is not a whole number of lines straddle one more line than their length
/// suggests). A hint only: it never faults, whatever the address, and is a no-op where the
/// target has no prefetch.
///
/// One prefetch every 64 bytes from `p`, then one at the last byte: that touches every line
/// of the range without computing where the lines start (the last line may be asked for
/// twice, which costs one instruction and no memory traffic).
///
/// Why L2 on x86_64 (`PREFETCHT1`, not `T0`): the walk asks for whole rows well before it
/// reads them, dozens of lines at a time. The likely reason it pays: a prefetch into L1 that
/// misses holds one of the core's few L1 miss buffers until its line arrives, so the loads of
/// the row being scored queue behind the rows asked for next. Measured on a Zen 4 VM
/// (`benches/results/zen4/`, alternating pairs on saved graphs, one core): single-thread QPS
/// 1.45x on fashion-mnist-784 f32, 1.41x minilm-100k f32, 1.27x mixture-100k f32, 1.39x
/// fashion SQ8, 1.48x minilm SQ8; 0.98-0.99x where the table sits in cache (sift5k). Link
/// rows and the look-ahead's rows too: `T0` there cost 1-20% more (minilm SQ8 0.80x with `T0`
/// look-ahead). Not yet measured on Intel cores (the Xeon numbers in the README were taken
/// with `T0`). aarch64 keeps `PLDL1KEEP`: nothing has been measured on ARM hardware yet.
#[inline(always)]
pub(crate) fn prefetch_bytes(p: *const u8, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let mut off = 0;
    while off < bytes {
        prefetch_line(p.wrapping_add(off));
        off += LINE;
    }
    prefetch_line(p.wrapping_add(bytes - 1));
}

#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT1 is part of SSE, which every x86_64 CPU has; a prefetch does not
    // access memory architecturally and cannot fault, so any address is fine.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint in the base aarch64 ISA; it cannot fault and writes nothing.
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Defines, in the module where it is invoked, a submodule `$module` holding one instruction
/// set's kernels for float rows of element type `$elem` (`f32` or `half::f16`), built from
/// the generic algorithms, and a `KERNELS` table of them.
///
/// `instantiate_float!(f32_rows, f32, Isa::Avx2, Avx2, "avx2,fma")` compiles every function
/// with those target features; the generic code is inlined into them. The vector type must
/// implement [`generic::Load<$elem>`](generic::Load).
macro_rules! instantiate_float {
    ($module:ident, $elem:ty, $isa:expr, $vector:ty $(, $feature:literal)?) => {
        pub(crate) mod $module {
            #[allow(unused_imports)]
            use super::*;

            $(#[target_feature(enable = $feature)])?
            #[inline]
            unsafe fn l2sq(a: *const f32, b: *const $elem, n: usize) -> f32 {
                // SAFETY: the table is handed out only after the CPU was found to have this
                // instruction set; pointer validity is the caller's (see `OneToOneFn`).
                unsafe { $crate::arch::generic::l2sq::<$vector, $elem>(a, b, n) }
            }

            $(#[target_feature(enable = $feature)])?
            #[inline]
            unsafe fn dot(a: *const f32, b: *const $elem, n: usize) -> f32 {
                // SAFETY: as for `l2sq`.
                unsafe { $crate::arch::generic::dot::<$vector, $elem>(a, b, n) }
            }

            $crate::arch::table!($isa, $elem, l2sq, dot $(, $feature)?);
        }
    };
}
pub(crate) use instantiate_float;

/// Defines a submodule `$module` holding one instruction set's SQ8 kernel `Σ wᵢ·cᵢ` over `u8`
/// codes (one-to-one and one-to-many) and its `KERNELS` table, as [`instantiate_float!`]
/// does for float rows. The vector type must implement [`generic::Load<u8>`](generic::Load).
macro_rules! instantiate_codes {
    ($module:ident, $isa:expr, $vector:ty, $int:ty $(, $feature:literal)?) => {
        pub(crate) mod $module {
            #[allow(unused_imports)]
            use super::*;

            $(#[target_feature(enable = $feature)])?
            #[inline]
            unsafe fn dot(w: *const f32, c: *const u8, n: usize) -> f32 {
                // SAFETY: the table is handed out only after the CPU was found to have this
                // instruction set; pointer validity is the caller's (see `OneToOneFn`).
                unsafe { $crate::arch::generic::dot::<$vector, u8>(w, c, n) }
            }

            $(#[target_feature(enable = $feature)])?
            #[inline]
            unsafe fn idot(w: *const i16, c: *const u8, n: usize) -> f32 {
                // SAFETY: as for `dot` (see `IntOneFn`).
                unsafe { $crate::arch::generic::idot::<$int>(w, c, n) }
            }

            // The raw one-to-many ABI (`crate::IntManyFn`).
            #[allow(clippy::too_many_arguments)]
            $(#[target_feature(enable = $feature)])?
            unsafe fn idot_many(
                w: *const i16,
                base: *const u8,
                stride: usize,
                dim: usize,
                ids: *const u32,
                count: usize,
                out: *mut f32,
                prefetch: $crate::Prefetch,
            ) {
                // SAFETY: instruction set as for `dot`; pointers are the caller's (`IntManyFn`).
                unsafe { idot_many_then(w, base, stride, dim, ids, count, out, prefetch, |_, sum| sum) }
            }

            /// `idot_many`'s body, each sum mapped by `finish(j, sum)` before it is stored:
            /// inlined into `idot_many` (the identity) and, through `IntKernelOf`, into the
            /// code `run_int` runs. Compiled for this instruction set where it is inlined into
            /// a function that is (those two, when the caller's code is inlined into
            /// `run_int` as `crate::IntKernelUser` asks); elsewhere its intrinsics are called
            /// out of line: as sound, only slower.
            ///
            /// # Safety
            /// As for `crate::IntManyFn`, on a CPU with this instruction set.
            #[allow(clippy::too_many_arguments)]
            #[inline(always)]
            unsafe fn idot_many_then(
                w: *const i16,
                base: *const u8,
                stride: usize,
                dim: usize,
                ids: *const u32,
                count: usize,
                out: *mut f32,
                prefetch: $crate::Prefetch,
                finish: impl Fn(usize, f32) -> f32,
            ) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    $crate::arch::generic::gather_int::<$int>(
                        |a, b, n| idot(a, b, n),
                        w,
                        base,
                        stride,
                        dim,
                        ids,
                        count,
                        out,
                        prefetch,
                        finish,
                    )
                }
            }

            $crate::arch::code_table!($isa, dot, idot, idot_many, idot_many_then $(, $feature)?);
        }
    };
}
pub(crate) use instantiate_codes;

/// Given one instruction set's one-to-one `l2sq` and `dot` for rows of `$elem` (functions in
/// scope with the [`crate::OneToOneFn<$elem>`] signature), defines the inner-product
/// distance, the one-to-many kernels and the `KERNELS` table, all compiled with the same
/// target features.
macro_rules! table {
    ($isa:expr, $elem:ty, $l2sq:ident, $dot:ident $(, $feature:literal)?) => {
        $(#[target_feature(enable = $feature)])?
        unsafe fn ip(a: *const f32, b: *const $elem, n: usize) -> f32 {
            // SAFETY: same contract as `dot`, forwarded from the caller.
            1.0 - unsafe { $dot(a, b, n) }
        }

        // The raw one-to-many ABI (`crate::OneToManyFn`).
        #[allow(clippy::too_many_arguments)]
        $(#[target_feature(enable = $feature)])?
        unsafe fn l2sq_many(
            q: *const f32,
            base: *const $elem,
            stride: usize,
            dim: usize,
            ids: *const u32,
            count: usize,
            out: *mut f32,
            prefetch: $crate::Prefetch,
        ) {
            // SAFETY: instruction set as for `l2sq`; pointers are the caller's (`OneToManyFn`).
            unsafe { $crate::arch::generic::gather(|a, b, n| $l2sq(a, b, n), q, base, stride, dim, ids, count, out, prefetch) }
        }

        // The raw one-to-many ABI (`crate::OneToManyFn`).
        #[allow(clippy::too_many_arguments)]
        $(#[target_feature(enable = $feature)])?
        unsafe fn ip_many(
            q: *const f32,
            base: *const $elem,
            stride: usize,
            dim: usize,
            ids: *const u32,
            count: usize,
            out: *mut f32,
            prefetch: $crate::Prefetch,
        ) {
            // SAFETY: as for `l2sq_many`.
            unsafe { $crate::arch::generic::gather(|a, b, n| ip(a, b, n), q, base, stride, dim, ids, count, out, prefetch) }
        }

        /// This instruction set's kernels for rows of this element type. Only reachable
        /// through `crate::select_for`, which checks the CPU first.
        pub(crate) static KERNELS: $crate::Kernels<$elem> = $crate::Kernels {
            isa: $isa,
            fns: $crate::sealed::FloatFns {
                l2sq: $l2sq,
                dot: $dot,
                ip,
                l2sq_many,
                ip_many,
            },
        };
    };
}
pub(crate) use table;

/// Given one instruction set's one-to-one SQ8 `dot` (a [`crate::OneToOneFn<u8>`] in scope)
/// and its integer kernels `idot` / `idot_many` ([`crate::IntOneFn`], [`crate::IntManyFn`];
/// `$idot_many_then`: `idot_many` with each sum mapped by a `finish(j, sum)` closure before
/// it is stored, for code compiled with the same instruction set, ideally
/// `#[inline(always)]`), defines the one-to-many `dot` kernel, the `KERNELS`
/// table of `u8` codes, the integer kernel as a type ([`crate::IntKernel`]) and `run_int`,
/// which runs a [`crate::IntKernelUser`] compiled for this instruction set.
macro_rules! code_table {
    ($isa:expr, $dot:ident, $idot:ident, $idot_many:ident, $idot_many_then:ident $(, $feature:literal)?) => {
        // The raw one-to-many ABI (`crate::OneToManyFn`).
        #[allow(clippy::too_many_arguments)]
        $(#[target_feature(enable = $feature)])?
        unsafe fn dot_many(
            w: *const f32,
            base: *const u8,
            stride: usize,
            dim: usize,
            ids: *const u32,
            count: usize,
            out: *mut f32,
            prefetch: $crate::Prefetch,
        ) {
            // SAFETY: instruction set as for `dot`; pointers are the caller's (`OneToManyFn`).
            unsafe { $crate::arch::generic::gather(|a, b, n| $dot(a, b, n), w, base, stride, dim, ids, count, out, prefetch) }
        }

        $(#[target_feature(enable = $feature)])?
        fn prepare_l2(q: &[f32], offsets: &[f32], scales: &[f32], wi: &mut [i16]) -> Option<(f32, f32)> {
            $crate::arch::generic::prepare_sq8::<true>(q, offsets, scales, wi)
        }

        $(#[target_feature(enable = $feature)])?
        fn prepare_ip(q: &[f32], offsets: &[f32], scales: &[f32], wi: &mut [i16]) -> Option<(f32, f32)> {
            $crate::arch::generic::prepare_sq8::<false>(q, offsets, scales, wi)
        }

        /// This instruction set's SQ8 kernels. Only reachable through `crate::select_for`,
        /// `crate::auto_for` and `crate::avx512_u8_variants`, which check the CPU first.
        pub(crate) static KERNELS: $crate::Kernels<u8> = $crate::Kernels {
            isa: $isa,
            fns: $crate::sealed::CodeFns {
                dot: $dot,
                dot_many,
                idot: $idot,
                idot_many: $idot_many,
                prepare_l2,
                prepare_ip,
            },
        };

        /// This table's integer one-to-many kernel as a type. Made only by `run_int`, which
        /// is reached only through `KERNELS` (handed out after the CPU check), so one exists
        /// only on a CPU with this instruction set.
        #[derive(Clone, Copy)]
        pub(crate) struct IntKernelOf(());

        impl $crate::sealed::IntSealed for IntKernelOf {}

        impl $crate::IntKernel for IntKernelOf {
            #[inline(always)]
            unsafe fn dot_many_then(
                self,
                w: *const i16,
                base: *const u8,
                stride: usize,
                dim: usize,
                ids: &[u32],
                out: *mut f32,
                prefetch: $crate::Prefetch,
                finish: impl Fn(usize, f32) -> f32,
            ) {
                debug_assert!(stride >= dim);
                // SAFETY: the pointers are the caller's (`IntKernel::dot_many_then`, as
                // `IntManyFn`); the CPU has this instruction set (an `IntKernelOf` exists only
                // there). Inlined into code compiled for it (what `run_int` runs, when the
                // user's code is inlined as `IntKernelUser` asks), the kernel is compiled for
                // it; anywhere else its intrinsics are called out of line, as sound on this
                // CPU, only slower.
                unsafe { $idot_many_then(w, base, stride, dim, ids.as_ptr(), ids.len(), out, prefetch, finish) }
            }
        }

        /// Runs `user` with this table's integer kernel, compiled for this instruction set
        /// (what `user.run` inlines is compiled with it).
        ///
        /// # Safety
        /// The CPU has this instruction set (the caller holds `KERNELS`).
        $(#[target_feature(enable = $feature)])?
        pub(crate) unsafe fn run_int<U: $crate::IntKernelUser>(user: U) -> U::Output {
            user.run(IntKernelOf(()))
        }
    };
}
pub(crate) use code_table;
