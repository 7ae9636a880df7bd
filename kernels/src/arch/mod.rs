//! One folder per instruction set; each implements [`generic::F32Vector`] for its register
//! type and instantiates the generic algorithms with [`instantiate!`] inside functions that
//! carry its `#[target_feature]`.

pub(crate) mod generic;
pub(crate) mod portable;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;

/// Cache-line size assumed for prefetching (true of every x86_64 and of common aarch64 cores).
const LINE: usize = 64;

/// Asks the CPU to bring `bytes` bytes starting at `p` into the L1 cache. A hint only: it
/// never faults, whatever the address, and is a no-op where the target has no prefetch.
#[inline(always)]
pub(crate) fn prefetch_bytes(p: *const u8, bytes: usize) {
    let mut off = 0;
    while off < bytes {
        prefetch_line(p.wrapping_add(off));
        off += LINE;
    }
}

#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is part of SSE, which every x86_64 CPU has; a prefetch does not
    // access memory architecturally and cannot fault, so any address is fine.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint in the base aarch64 ISA; it cannot fault and writes nothing.
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Defines, in the module where it is invoked, the f32 kernels of one instruction set from
/// the generic algorithms, and a `KERNELS` table of them.
///
/// `instantiate!(Isa::Avx2, Avx2Vector, "avx2,fma")` compiles every function with those
/// target features; the generic code is inlined into them.
macro_rules! instantiate {
    ($isa:expr, $vector:ty $(, $feature:literal)?) => {
        $(#[target_feature(enable = $feature)])?
        #[inline]
        unsafe fn l2sq(a: *const f32, b: *const f32, n: usize) -> f32 {
            // SAFETY: the table is handed out only after the CPU was found to have this
            // instruction set; pointer validity is the caller's (see `OneToOneFn`).
            unsafe { $crate::arch::generic::l2sq::<$vector>(a, b, n) }
        }

        $(#[target_feature(enable = $feature)])?
        #[inline]
        unsafe fn dot(a: *const f32, b: *const f32, n: usize) -> f32 {
            // SAFETY: as for `l2sq`.
            unsafe { $crate::arch::generic::dot::<$vector>(a, b, n) }
        }

        $crate::arch::table!($isa, l2sq, dot $(, $feature)?);
    };
}
pub(crate) use instantiate;

/// Given one instruction set's one-to-one `l2sq` and `dot` (functions in scope with the
/// [`crate::OneToOneFn`] signature), defines the inner-product distance, the one-to-many
/// kernels and the `KERNELS` table, all compiled with the same target features.
macro_rules! table {
    ($isa:expr, $l2sq:ident, $dot:ident $(, $feature:literal)?) => {
        $(#[target_feature(enable = $feature)])?
        unsafe fn ip(a: *const f32, b: *const f32, n: usize) -> f32 {
            // SAFETY: same contract as `dot`, forwarded from the caller.
            1.0 - unsafe { $dot(a, b, n) }
        }

        $(#[target_feature(enable = $feature)])?
        unsafe fn l2sq_many(
            q: *const f32,
            base: *const f32,
            stride: usize,
            dim: usize,
            ids: *const u32,
            count: usize,
            out: *mut f32,
        ) {
            // SAFETY: instruction set as for `l2sq`; pointers are the caller's (`OneToManyFn`).
            unsafe { $crate::arch::generic::gather(|a, b, n| $l2sq(a, b, n), q, base, stride, dim, ids, count, out) }
        }

        $(#[target_feature(enable = $feature)])?
        unsafe fn ip_many(
            q: *const f32,
            base: *const f32,
            stride: usize,
            dim: usize,
            ids: *const u32,
            count: usize,
            out: *mut f32,
        ) {
            // SAFETY: as for `l2sq_many`.
            unsafe { $crate::arch::generic::gather(|a, b, n| ip(a, b, n), q, base, stride, dim, ids, count, out) }
        }

        /// This instruction set's f32 kernels. Only reachable through `crate::select`,
        /// which checks the CPU first.
        pub(crate) static KERNELS: $crate::Kernels<f32> = $crate::Kernels {
            isa: $isa,
            l2sq: $l2sq,
            dot: $dot,
            ip,
            l2sq_many,
            ip_many,
            _element: core::marker::PhantomData,
        };
    };
}
pub(crate) use table;
