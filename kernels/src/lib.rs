//! SIMD distance kernels for [hnswx](https://docs.rs/hnswx), chosen once at run time.
//!
//! Every kernel exists per instruction set ([`Isa`]): AVX-512F, AVX2+FMA, NEON, a portable
//! [`wide`] version (whatever SIMD the compile-time target has) and a plain scalar loop. The
//! algorithms are written once ([`arch::generic`](crate)) over a small vector trait and
//! instantiated per register width inside `#[target_feature]` functions, so a plain
//! `cargo build` for any target contains them all and the fast ones light up where the CPU
//! has them.
//!
//! [`auto`] detects the best instruction set once, caches the choice and returns a
//! `&'static` table of function pointers; callers keep the table (or a [`MetricKernel`] taken
//! from it) and call through it with no per-call feature check.
//!
//! ```
//! use hnswx_kernels::{auto, Metric};
//!
//! let k = auto();
//! let a = [1.0f32, 2.0, 3.0];
//! let b = [1.0f32, 0.0, 3.5];
//! assert_eq!(k.l2sq(&a, &b), 4.25);
//! assert_eq!(k.dot(&a, &b), 11.5);
//! // Distances follow "smaller is closer": inner product becomes 1 − a·b.
//! assert_eq!(k.distance(Metric::InnerProduct, &a, &b), 1.0 - 11.5);
//! println!("kernels in use: {}", k.isa());
//! ```
//!
//! Benchmarks and tests can force one instruction set, through the API or the environment
//! variable `HNSWX_KERNEL=scalar|portable|avx2|avx512|neon` ([`from_env`]); asking for one the
//! CPU lacks is an [`Error::Unsupported`], never an illegal instruction.
//!
//! ## Quantised rows: `f16` and SQ8 codes
//! The same instruction sets have kernels for rows stored as half-precision floats
//! ([`f16`](struct@f16), re-exported from the `half` crate) and as 8-bit scalar-quantised codes (`u8`).
//! The query is always `f32`. Each element type has its own table, [`Kernels<f16>`] and
//! [`Kernels<u8>`], chosen once by [`auto_for`] / [`select_for`] / [`from_env_for`] exactly as
//! the `f32` table is by [`auto`] / [`select`] / [`from_env`]:
//!
//! - `Kernels<f16>` has the float API of `Kernels<f32>` with `f16` rows:
//!   [`l2sq`](Kernels::l2sq)`(&[f32], &[f16])` (L2², "`l2sq_f32_f16`"),
//!   [`dot`](Kernels::dot) ("`dot_f32_f16`"), [`distance`](Kernels::distance) and
//!   [`metric`](Kernels::metric) for the one-to-many form.
//! - `Kernels<u8>` has [`dot_f32_u8`](Kernels::dot_f32_u8)`(w, c) = Σ wᵢ·cᵢ` and its
//!   one-to-many form [`dot_f32_u8_many`](Kernels::dot_f32_u8_many). With codes
//!   `xᵢ ≈ oᵢ + sᵢ·cᵢ` (per-dimension offset and scale), both metrics reduce to it plus
//!   constants: `q·x ≈ Σ qᵢoᵢ + dot_f32_u8(q∘s, c)` and
//!   `|q − x|² ≈ Σ aᵢ² − 2·dot_f32_u8(a∘s, c) + Σ sᵢ²cᵢ²` with `a = q − o` (the last sum is a
//!   per-row constant the index stores). The fast path does the same in integers:
//!   [`prepare_sq8`](Kernels::prepare_sq8) rounds a query's weights to `i16` once, then
//!   [`dot_i16_u8`](Kernels::dot_i16_u8) / [`dot_i16_u8_many`](Kernels::dot_i16_u8_many)
//!   score rows exactly, and a row's distance is `bias + scale·dot + row constant`.
//!   [`with_int_kernel`](Kernels::with_int_kernel) runs a caller's loop inside the table's
//!   instruction set with the integer kernel as a type ([`IntKernel`]), so that it inlines
//!   there (the index's SQ8 walk does this).
//!
//! ```
//! use hnswx_kernels::{auto_for, f16, Metric};
//!
//! let half = auto_for::<f16>();
//! let q = [1.0f32, 2.0, 3.0];
//! let x = [f16::from_f32(1.0), f16::from_f32(0.0), f16::from_f32(3.5)];
//! assert_eq!(half.l2sq(&q, &x), 4.25);
//! assert_eq!(half.distance(Metric::InnerProduct, &q, &x), 1.0 - 11.5);
//!
//! let sq8 = auto_for::<u8>();
//! assert_eq!(sq8.dot_f32_u8(&[0.5, -1.0, 2.0], &[2, 3, 255]), 1.0 - 3.0 + 510.0);
//! ```
//!
//! No kernel reads past the end of its slices (tails are masked or copied), so rows need no
//! padding; a padded stride is fine too.
//!
//! ## Numerics
//! Sums are accumulated in `f32` in several independent partial sums, so results differ from
//! a sequential sum by rounding only: at most about `(n + 4)·2⁻²⁴·Σ|termᵢ|` (the tests check
//! exactly this bound against an `f64` reference, [`reference`](mod@reference)). A NaN in either input gives
//! a NaN distance. `f16` and `u8` row elements convert to `f32` exactly, so the same bound
//! holds for them.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod arch;
pub mod reference;

use std::fmt;
use std::str::FromStr;

pub use half::f16;

/// The name of the environment variable read by [`from_env`] and [`Choice::from_env`].
pub const ENV_VAR: &str = "HNSWX_KERNEL";

/// An instruction set that has its own kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain scalar loops, one element at a time: the baseline.
    Scalar,
    /// `wide::f32x8`: the SIMD the compile-time target has (SSE2 on default x86_64 builds).
    Portable,
    /// x86_64 AVX2 with FMA (256-bit).
    Avx2,
    /// x86_64 AVX-512F (512-bit).
    Avx512,
    /// aarch64 Advanced SIMD (128-bit).
    Neon,
}

impl Isa {
    /// Every instruction set, slowest first.
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The name used by `HNSWX_KERNEL` and in reports: `scalar`, `portable`, `avx2`,
    /// `avx512`, `neon`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// `Ok(())` when this machine can run the instruction set's kernels, else why not.
    ///
    /// ```
    /// use hnswx_kernels::Isa;
    /// assert!(Isa::Scalar.availability().is_ok());
    /// assert!(Isa::Portable.availability().is_ok());
    /// ```
    pub fn availability(self) -> Result<(), &'static str> {
        match self {
            Isa::Scalar | Isa::Portable => Ok(()),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                if !is_x86_feature_detected!("avx2") {
                    Err("this CPU lacks AVX2")
                } else if !is_x86_feature_detected!("fma") {
                    Err("this CPU lacks FMA")
                } else {
                    Ok(())
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                if is_x86_feature_detected!("avx512f") {
                    Ok(())
                } else {
                    Err("this CPU (or its operating system) lacks AVX-512F")
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => Err("only built for x86_64 targets"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                if std::arch::is_aarch64_feature_detected!("neon") {
                    Ok(())
                } else {
                    Err("this CPU lacks NEON")
                }
            }
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Neon => Err("only built for aarch64 targets"),
        }
    }

    /// Whether this machine can run the instruction set's kernels.
    pub fn is_available(self) -> bool {
        self.availability().is_ok()
    }

    /// `Ok(())` when this machine can run the instruction set's kernels for rows of `E`, else
    /// why not: [`availability`](Self::availability) plus what the element needs beyond it
    /// (`f16` on [`Isa::Avx2`] needs F16C as well).
    ///
    /// ```
    /// use hnswx_kernels::{f16, Isa};
    /// assert!(Isa::Portable.availability_for::<f16>().is_ok());
    /// assert!(Isa::Scalar.availability_for::<u8>().is_ok());
    /// ```
    pub fn availability_for<E: Element>(self) -> Result<(), &'static str> {
        self.availability()?;
        E::requires(self)
    }

    /// The fastest instruction set this machine can run for rows of `E` (detected on every
    /// call; [`auto_for`] caches it).
    pub fn detect_for<E: Element>() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon]
            .into_iter()
            .find(|isa| isa.availability_for::<E>().is_ok())
            .unwrap_or(Isa::Portable)
    }

    /// The fastest instruction set this machine can run (detected on every call; [`auto`]
    /// caches it).
    pub fn detect() -> Isa {
        Isa::detect_for::<f32>()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownKernel(s.to_string()))
    }
}

/// A distance metric. Every metric is a distance: smaller is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance `Σ (aᵢ − bᵢ)²`.
    L2,
    /// Inner product as a distance: `1 − a·b`.
    InnerProduct,
    /// Cosine distance `1 − a·b / (|a||b|)`, computed as [`Metric::InnerProduct`] on vectors
    /// that were normalised beforehand (the index does this on insert and for queries).
    Cosine,
}

/// Which kernels to use: the best this CPU has, or one instruction set by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The fastest instruction set available ([`Isa::detect`]).
    Auto,
    /// Exactly this instruction set, or an error if the CPU lacks it.
    Force(Isa),
}

impl Choice {
    /// Parses `auto` (or an empty string) or an [`Isa`] name, ignoring case and surrounding
    /// blanks.
    ///
    /// ```
    /// use hnswx_kernels::{Choice, Isa};
    /// assert_eq!(Choice::parse("AVX2").unwrap(), Choice::Force(Isa::Avx2));
    /// assert_eq!(Choice::parse("auto").unwrap(), Choice::Auto);
    /// assert!(Choice::parse("sse9").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Choice, Error> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("auto") {
            Ok(Choice::Auto)
        } else {
            t.parse().map(Choice::Force)
        }
    }

    /// Reads [`ENV_VAR`] (`HNSWX_KERNEL`): unset means [`Choice::Auto`].
    pub fn from_env() -> Result<Choice, Error> {
        match std::env::var_os(ENV_VAR) {
            None => Ok(Choice::Auto),
            Some(v) => match v.to_str() {
                Some(s) => Choice::parse(s),
                None => Err(Error::UnknownKernel(v.to_string_lossy().into_owned())),
            },
        }
    }
}

/// Why kernels could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A kernel name that is none of `auto`, `scalar`, `portable`, `avx2`, `avx512`, `neon`.
    #[error("unknown kernel {0:?}: expected auto, scalar, portable, avx2, avx512 or neon")]
    UnknownKernel(String),
    /// The instruction set exists but this machine cannot run it.
    #[error("kernel {isa} is not available: {reason}")]
    Unsupported {
        /// The instruction set asked for.
        isa: Isa,
        /// Why it cannot run here.
        reason: &'static str,
    },
    /// A [`Rows`] view whose shape does not fit its data.
    #[error("invalid rows: {0}")]
    Shape(&'static str),
}

/// Scores a query against one row of `E`s: `(query, row, n) -> distance` (or, for `u8`
/// codes, the dot product `Σ wᵢ·cᵢ`).
///
/// # Safety
/// Both pointers valid for `n` reads of element-aligned data that no other thread writes
/// during the call. Only obtainable from a [`Kernels`] table, whose instruction set the CPU
/// has.
pub type OneToOneFn<E = f32> = unsafe fn(*const f32, *const E, usize) -> f32;

/// Scores a query against several rows of a strided table of `E`s:
/// `(query, base, stride, dim, ids, count, out, prefetch)` writes
/// `out[j] = d(query, base[ids[j] * stride ..][..dim])` for `j < count` (`stride` in
/// elements), prefetching the rows a little ahead unless `prefetch` is [`Prefetch::Off`].
///
/// # Safety
/// `query` valid for `dim` reads, `ids` for `count` reads, `out` for `count` writes; for every
/// id, `base + id * stride` valid for `dim` reads; all element-aligned; nothing read is
/// written concurrently. Only obtainable from a [`Kernels`] table.
pub type OneToManyFn<E = f32> = unsafe fn(*const f32, *const E, usize, usize, *const u32, usize, *mut f32, Prefetch);

/// Scores `i16` weights against one row of `u8` codes: `(w, codes, n) -> Σ wᵢ·cᵢ`, exact
/// (integer arithmetic), as `f32`.
///
/// # Safety
/// Both pointers valid for `n` reads, not written concurrently; every `|wᵢ| ≤`
/// [`MAX_INT_WEIGHT`]. Only obtainable from a [`Kernels<u8>`] table.
pub type IntOneFn = unsafe fn(*const i16, *const u8, usize) -> f32;

/// [`IntOneFn`] against several rows of a strided code table, as [`OneToManyFn`] is for
/// [`OneToOneFn`].
///
/// # Safety
/// As [`OneToManyFn`], with `i16` weights bounded as for [`IntOneFn`].
pub type IntManyFn = unsafe fn(*const i16, *const u8, usize, usize, *const u32, usize, *mut f32, Prefetch);

/// One instruction set's integer SQ8 one-to-many kernel as a type, handed to an
/// [`IntKernelUser`] by [`Kernels::with_int_kernel`]: code generic over it calls the kernel
/// directly, so the kernel is inlined into that code's loops, where the function pointers of
/// a table ([`Kernels::dot_i16_u8_many_unchecked`]) cost a call per batch of rows (with its
/// register spills). Same results as the table's, bit for bit.
pub trait IntKernel: Copy + sealed::IntSealed {
    /// `out[j] = finish(j, Σᵢ wᵢ·cᵢ)` over row `ids[j]` (`dim` codes at `base + ids[j] *
    /// stride`), the sums exactly as [`Kernels::dot_i16_u8_many_unchecked`] of the table it
    /// came from gives them. `finish` is called exactly once for each `j < ids.len()` (and
    /// with nothing else): as each sum is made (a row constant added, say) by every table's
    /// kernel type but the scalar one, for rows up to 2048 codes; in a second pass over
    /// `out` for longer rows, by the scalar table and by a table used as an `IntKernel`
    /// itself.
    ///
    /// # Safety
    /// As for [`Kernels::dot_i16_u8_many_unchecked`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn dot_many_then(
        self,
        w: *const i16,
        base: *const u8,
        stride: usize,
        dim: usize,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
        finish: impl Fn(usize, f32) -> f32,
    );

    /// `out[j] = Σᵢ wᵢ·cᵢ` over row `ids[j]`, as [`Kernels::dot_i16_u8_many_unchecked`] of
    /// the table it came from, bit for bit.
    ///
    /// # Safety
    /// As for [`Kernels::dot_i16_u8_many_unchecked`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn dot_many(
        self,
        w: *const i16,
        base: *const u8,
        stride: usize,
        dim: usize,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe { self.dot_many_then(w, base, stride, dim, ids, out, prefetch, |_, sum| sum) }
    }
}

/// A table is an [`IntKernel`] too: its function pointer, then `finish` in a second pass.
impl IntKernel for &Kernels<u8> {
    #[inline(always)]
    unsafe fn dot_many_then(
        self,
        w: *const i16,
        base: *const u8,
        stride: usize,
        dim: usize,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
        finish: impl Fn(usize, f32) -> f32,
    ) {
        // SAFETY: forwarded from the caller; the kernel wrote `out[j]` for every `j <
        // ids.len()`, which the caller made writable.
        unsafe {
            self.dot_i16_u8_many_unchecked(w, base, stride, dim, ids, out, prefetch);
            arch::generic::finish_in_place(out, ids.len(), finish);
        }
    }
}

/// Code generic over the integer SQ8 kernel, run by [`Kernels::with_int_kernel`].
pub trait IntKernelUser {
    /// What [`run`](Self::run) returns.
    type Output;
    /// Runs with the kernel `k`. This is called from a function compiled for the table's
    /// instruction set: mark it (and what it calls, down to the calls of `k`)
    /// `#[inline(always)]` so that it is compiled into that function and the kernel is
    /// inlined into its loops. Code that is not inlined still runs and gives the same results,
    /// only slower (the kernel's intrinsics are then called out of line).
    fn run<K: IntKernel>(self, k: K) -> Self::Output;
}

/// Whether a one-to-many kernel asks for the rows it is about to score ahead of time.
///
/// Rows drawn at random from a table larger than the caches arrive faster when asked for a
/// few rows early ([`Ahead`](Prefetch::Ahead), what the safe forms do). Rows that sit in the
/// caches gain nothing from it, and the prefetch instructions then cost time: on a Zen 4,
/// sift5k's SQ8 walk (0.66 MB of codes) ran 1.06x faster without them, where
/// fashion-mnist's (47 MB) ran 0.90x as fast. A caller that knows its table is small says
/// [`Off`](Prefetch::Off). The results are the same either way, bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// Fetch rows ahead of the one being scored.
    Ahead,
    /// Do not prefetch.
    Off,
}

pub use arch::generic::MAX_INT_WEIGHT;

/// The SQ8 query preparation of one metric (see [`Kernels::prepare_sq8`]): query, offsets,
/// scales, the weights written, and `(bias, scale)`. Unsafe only to call: it is compiled
/// for its table's instruction set. Only obtainable from a [`Kernels<u8>`] table.
pub type PrepareFn = unsafe fn(&[f32], &[f32], &[f32], &mut [i16]) -> Option<(f32, f32)>;

/// Asks the CPU to bring every cache line of the `bytes` bytes at `p` closer (into L2 on
/// x86_64, L1 on aarch64: the same prefetch the one-to-many kernels issue for rows; why L2 is
/// said at the kernels' prefetch), for callers that know what they will read next (the
/// index's walk prefetches link rows and the next node's rows with it). A hint only: safe for
/// any address, never faults, a no-op where the target has no prefetch instruction.
#[inline(always)]
pub fn prefetch(p: *const u8, bytes: usize) {
    arch::prefetch_bytes(p, bytes);
}

mod sealed {
    use super::{arch, f16, IntManyFn, IntOneFn, Isa, Kernels, OneToManyFn, OneToOneFn, PrepareFn};
    use std::sync::OnceLock;

    /// The function pointers of a float element's table (`f32`, `f16`).
    #[derive(Clone, Copy)]
    pub struct FloatFns<E: 'static> {
        pub l2sq: OneToOneFn<E>,
        pub dot: OneToOneFn<E>,
        pub ip: OneToOneFn<E>,
        pub l2sq_many: OneToManyFn<E>,
        pub ip_many: OneToManyFn<E>,
    }

    /// The function pointers of the SQ8 table (`u8` codes).
    #[derive(Clone, Copy)]
    pub struct CodeFns {
        pub dot: OneToOneFn<u8>,
        pub dot_many: OneToManyFn<u8>,
        pub idot: IntOneFn,
        pub idot_many: IntManyFn,
        pub prepare_l2: PrepareFn,
        pub prepare_ip: PrepareFn,
    }

    /// Seals [`crate::IntKernel`]: its implementations are this crate's (the tables'
    /// kernel types and `&Kernels<u8>`), so callers may rely on what its docs promise.
    pub trait IntSealed {}
    impl IntSealed for &super::Kernels<u8> {}

    /// Private to the crate: outside code can neither implement this trait nor call `table`,
    /// which hands out a table *without* checking the CPU (only [`crate::select_for`] and
    /// [`crate::auto_for`] call it, after the check).
    pub trait Sealed: Sized + Copy + Send + Sync + 'static {
        /// The table's function pointers.
        type Fns: Send + Sync + 'static;
        /// The table of `isa`, unchecked.
        fn table(isa: Isa) -> &'static Kernels<Self>
        where
            Self: super::Element;
        /// What this element needs of the CPU beyond [`Isa::availability`].
        fn requires(isa: Isa) -> Result<(), &'static str>;
        /// Where [`crate::auto_for`] caches its choice for this element.
        fn best() -> &'static OnceLock<Isa>;
    }

    /// Elements with float tables.
    pub trait Float: Sealed<Fns = FloatFns<Self>> {}
    impl Float for f32 {}
    impl Float for f16 {}

    /// `table` for every element: the module path of its tables inside each instruction
    /// set's module.
    macro_rules! tables {
        ($isa:expr, $module:ident) => {
            match $isa {
                Isa::Scalar => &arch::scalar::$module::KERNELS,
                Isa::Portable => &arch::portable::$module::KERNELS,
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => &arch::x86_64::avx2::$module::KERNELS,
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => &arch::x86_64::avx512::$module::KERNELS,
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => &arch::aarch64::neon::$module::KERNELS,
                // Callers check availability first, so an instruction set foreign to this
                // target never gets here; map it to the portable table to stay total.
                #[allow(unreachable_patterns)]
                _ => &arch::portable::$module::KERNELS,
            }
        };
    }

    impl Sealed for f32 {
        type Fns = FloatFns<f32>;
        fn table(isa: Isa) -> &'static Kernels<f32> {
            tables!(isa, f32_rows)
        }
        fn requires(_: Isa) -> Result<(), &'static str> {
            Ok(())
        }
        fn best() -> &'static OnceLock<Isa> {
            static BEST: OnceLock<Isa> = OnceLock::new();
            &BEST
        }
    }

    impl Sealed for f16 {
        type Fns = FloatFns<f16>;
        fn table(isa: Isa) -> &'static Kernels<f16> {
            tables!(isa, f16_rows)
        }
        fn requires(isa: Isa) -> Result<(), &'static str> {
            match isa {
                // AVX-512F has its own conversion (`vcvtph2ps zmm`); AVX2 needs F16C's.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 if !is_x86_feature_detected!("f16c") => Err("this CPU lacks F16C"),
                _ => Ok(()),
            }
        }
        fn best() -> &'static OnceLock<Isa> {
            static BEST: OnceLock<Isa> = OnceLock::new();
            &BEST
        }
    }

    impl Sealed for u8 {
        type Fns = CodeFns;
        fn table(isa: Isa) -> &'static Kernels<u8> {
            match isa {
                #[cfg(target_arch = "x86_64")]
                // Callers checked availability (AVX-512F); the fallback keeps this total.
                Isa::Avx512 => crate::avx512_u8_variants()
                    .first()
                    .map_or(&arch::x86_64::avx512::u8_codes::KERNELS, |v| v.1),
                _ => tables!(isa, u8_codes),
            }
        }
        fn requires(isa: Isa) -> Result<(), &'static str> {
            match isa {
                // Without AVX-512BW the integer kernel of the AVX-512 table is the 256-bit
                // AVX2 one.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 if !is_x86_feature_detected!("avx512bw") && !is_x86_feature_detected!("avx2") => {
                    Err("this CPU lacks both AVX-512BW and AVX2")
                }
                _ => Ok(()),
            }
        }
        fn best() -> &'static OnceLock<Isa> {
            static BEST: OnceLock<Isa> = OnceLock::new();
            &BEST
        }
    }
}

/// The SQ8 (`u8`) tables of the AVX-512 instruction set this CPU can run, best first, each
/// with the name of its integer kernel: `"vnni"` (AVX512_VNNI `vpdpwssd`), `"bw"` (AVX-512BW
/// `vpmaddwd` on 512-bit registers), `"avx2"` (AVX-512F without BW: the 256-bit AVX2
/// accumulator). [`select_for::<u8>`](select_for) with [`Isa::Avx512`] gives the first; the
/// others are for tests and comparisons. Empty without AVX-512F.
#[cfg(target_arch = "x86_64")]
pub fn avx512_u8_variants() -> &'static [(&'static str, &'static Kernels<u8>)] {
    use arch::x86_64::avx512;
    static VARIANTS: std::sync::OnceLock<Vec<(&'static str, &'static Kernels<u8>)>> = std::sync::OnceLock::new();
    VARIANTS.get_or_init(|| {
        let mut v = Vec::new();
        if is_x86_feature_detected!("avx512f") {
            let bw = is_x86_feature_detected!("avx512bw");
            if bw && is_x86_feature_detected!("avx512vnni") {
                v.push(("vnni", &avx512::u8_codes_vnni::KERNELS));
            }
            if bw {
                v.push(("bw", &avx512::u8_codes_bw::KERNELS));
            }
            if is_x86_feature_detected!("avx2") {
                v.push(("avx2", &avx512::u8_codes::KERNELS));
            }
        }
        v
    })
}

/// An element type that stored rows can have, with its own kernel tables: `f32`, [`f16`](struct@f16)
/// (half precision) and `u8` (SQ8 codes).
///
/// The detection ([`Isa`], [`Choice`]) and selection ([`select_for`]) are shared; each element
/// caches its own [`auto_for`] choice, since an element may need more of the CPU than the
/// instruction set alone ([`Isa::availability_for`]). Sealed: it cannot be implemented outside
/// this crate, and outside code cannot reach a table without the CPU check:
///
/// ```compile_fail
/// use hnswx_kernels::{Element, Isa};
/// let unchecked = <f32 as Element>::table(Isa::Avx512); // no such public method
/// ```
pub trait Element: sealed::Sealed {}

impl Element for f32 {}
impl Element for f16 {}
impl Element for u8 {}

/// The float elements, `f32` and [`f16`](struct@f16): their tables score L2², dot product, inner product
/// and cosine ([`Kernels::l2sq`], [`Kernels::metric`], …). Sealed like [`Element`].
pub trait FloatElement: Element + sealed::Float {}

impl FloatElement for f32 {}
impl FloatElement for f16 {}

/// The kernels of one instruction set for rows of element type `E`: a table of function
/// pointers. Obtain one from [`auto`], [`select`] or [`from_env`] (`f32`), or from
/// [`auto_for`], [`select_for`] or [`from_env_for`] (any [`Element`]); holding a
/// `&'static Kernels` means the CPU was checked.
pub struct Kernels<E: Element = f32> {
    pub(crate) isa: Isa,
    pub(crate) fns: E::Fns,
}

impl<E: Element> fmt::Debug for Kernels<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels")
            .field("element", &std::any::type_name::<E>())
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

impl<E: Element> Kernels<E> {
    /// The instruction set these kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }
}

/// The best kernels for rows of `E` on this CPU, detected on first use and cached.
///
/// ```
/// use hnswx_kernels::{auto_for, f16, Isa};
/// assert_eq!(auto_for::<f16>().isa(), Isa::detect_for::<f16>());
/// ```
pub fn auto_for<E: Element>() -> &'static Kernels<E> {
    let isa = *E::best().get_or_init(Isa::detect_for::<E>);
    E::table(isa)
}

/// The kernels for rows of `E` for `choice`, or why this machine cannot run them.
///
/// ```
/// use hnswx_kernels::{select_for, Choice, Isa};
/// let scalar = select_for::<u8>(Choice::Force(Isa::Scalar)).unwrap();
/// assert_eq!(scalar.dot_f32_u8(&[1.5, 2.0], &[2, 1]), 5.0);
/// ```
pub fn select_for<E: Element>(choice: Choice) -> Result<&'static Kernels<E>, Error> {
    match choice {
        Choice::Auto => Ok(auto_for::<E>()),
        Choice::Force(isa) => {
            isa.availability_for::<E>()
                .map_err(|reason| Error::Unsupported { isa, reason })?;
            Ok(E::table(isa))
        }
    }
}

/// The kernels for rows of `E` named by `HNSWX_KERNEL` (unset: [`auto_for`]).
pub fn from_env_for<E: Element>() -> Result<&'static Kernels<E>, Error> {
    select_for::<E>(Choice::from_env()?)
}

/// The best kernels for this CPU, detected on first use and cached.
pub fn auto() -> &'static Kernels<f32> {
    auto_for::<f32>()
}

/// The kernels for `choice`, or why this machine cannot run them.
///
/// ```
/// use hnswx_kernels::{select, Choice, Isa};
/// let scalar = select(Choice::Force(Isa::Scalar)).unwrap();
/// assert_eq!(scalar.isa(), Isa::Scalar);
/// #[cfg(target_arch = "x86_64")]
/// assert!(select(Choice::Force(Isa::Neon)).is_err());
/// ```
pub fn select(choice: Choice) -> Result<&'static Kernels<f32>, Error> {
    select_for::<f32>(choice)
}

/// The kernels named by `HNSWX_KERNEL` (unset: [`auto`]).
pub fn from_env() -> Result<&'static Kernels<f32>, Error> {
    select(Choice::from_env()?)
}

impl<E: FloatElement> Kernels<E> {
    /// Squared Euclidean distance between an `f32` query and a row of `E`s (for `f16` rows:
    /// `l2sq_f32_f16`).
    ///
    /// # Panics
    /// If `a` and `b` differ in length.
    #[inline]
    pub fn l2sq(&self, a: &[f32], b: &[E]) -> f32 {
        same_len(a.len(), b.len());
        // SAFETY: both slices hold `a.len()` elements; the table's CPU check was done.
        unsafe { (self.fns.l2sq)(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// Dot product `Σ aᵢ·bᵢ` (a similarity, not a distance; for `f16` rows: `dot_f32_f16`).
    ///
    /// # Panics
    /// If `a` and `b` differ in length.
    #[inline]
    pub fn dot(&self, a: &[f32], b: &[E]) -> f32 {
        same_len(a.len(), b.len());
        // SAFETY: as in `l2sq`.
        unsafe { (self.fns.dot)(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// The distance under `metric` (for [`Metric::Cosine`], of vectors already normalised).
    ///
    /// # Panics
    /// If `a` and `b` differ in length.
    #[inline]
    pub fn distance(&self, metric: Metric, a: &[f32], b: &[E]) -> f32 {
        self.metric(metric).distance(a, b)
    }

    /// The pair of kernels for one metric, to keep on a hot path.
    pub fn metric(&self, metric: Metric) -> MetricKernel<E> {
        let f = &self.fns;
        let (one, many) = match metric {
            Metric::L2 => (f.l2sq, f.l2sq_many),
            Metric::InnerProduct | Metric::Cosine => (f.ip, f.ip_many),
        };
        MetricKernel {
            isa: self.isa,
            metric,
            one,
            many,
        }
    }
}

impl Kernels<u8> {
    /// `Σ wᵢ·cᵢ` over `f32` weights and SQ8 codes: the one kernel both metrics of an SQ8
    /// index reduce to (see the [crate docs](crate#quantised-rows-f16-and-sq8-codes)).
    ///
    /// # Panics
    /// If `w` and `c` differ in length.
    #[inline]
    pub fn dot_f32_u8(&self, w: &[f32], c: &[u8]) -> f32 {
        same_len(w.len(), c.len());
        // SAFETY: both slices hold `w.len()` elements; the table's CPU check was done.
        unsafe { (self.fns.dot)(w.as_ptr(), c.as_ptr(), w.len()) }
    }

    /// [`dot_f32_u8`](Self::dot_f32_u8) of `n` weights at `w` and `n` codes at `c`, without
    /// checks.
    ///
    /// # Safety
    /// `w` valid for `n` reads of `f32` (aligned), `c` for `n` bytes, not written
    /// concurrently.
    #[inline(always)]
    pub unsafe fn dot_f32_u8_unchecked(&self, w: *const f32, c: *const u8, n: usize) -> f32 {
        debug_assert!(w.is_aligned());
        // SAFETY: forwarded from the caller.
        unsafe { (self.fns.dot)(w, c, n) }
    }

    /// `out[j] = dot_f32_u8(w, codes[ids[j]])` for every `j`, prefetching rows ahead.
    ///
    /// ```
    /// use hnswx_kernels::{auto_for, Rows};
    /// // Two code rows of dimension 3, stored 4 bytes apart.
    /// let codes = [1u8, 2, 3, 0, /**/ 10, 20, 30, 0];
    /// let rows = Rows::new(&codes[..], 3, 4).unwrap();
    /// let mut out = [0.0f32; 3];
    /// auto_for::<u8>().dot_f32_u8_many(&[1.0, 1.0, 0.5], rows, &[1, 0, 1], &mut out);
    /// assert_eq!(out, [45.0, 4.5, 45.0]);
    /// ```
    ///
    /// # Panics
    /// If `w.len() != rows.dim()`, `out.len() != ids.len()`, or an id is not a row.
    pub fn dot_f32_u8_many(&self, w: &[f32], rows: Rows<'_, u8>, ids: &[u32], out: &mut [f32]) {
        self.dot_f32_u8_many_with(w, rows, ids, out, Prefetch::Ahead)
    }

    /// [`dot_f32_u8_many`](Self::dot_f32_u8_many), prefetching the rows ahead or not (same
    /// results).
    ///
    /// # Panics
    /// As for [`dot_f32_u8_many`](Self::dot_f32_u8_many).
    pub fn dot_f32_u8_many_with(
        &self,
        w: &[f32],
        rows: Rows<'_, u8>,
        ids: &[u32],
        out: &mut [f32],
        prefetch: Prefetch,
    ) {
        check_many(w.len(), &rows, ids, out.len());
        // SAFETY: every id names a row inside `rows.data` (checked above), each row holds
        // `dim` codes at `id * stride`, and `out` holds `ids.len()` floats.
        unsafe {
            self.dot_f32_u8_many_unchecked(
                w.as_ptr(),
                rows.data.as_ptr(),
                rows.stride,
                rows.dim,
                ids,
                out.as_mut_ptr(),
                prefetch,
            )
        }
    }

    /// [`dot_f32_u8_many_with`](Self::dot_f32_u8_many_with) without checks, on a raw code
    /// table whose rows start `stride` bytes apart.
    ///
    /// # Safety
    /// `w` valid for `dim` reads; `out` for `ids.len()` writes; for each id,
    /// `base + id * stride` valid for `dim` reads; nothing read is written concurrently.
    // The raw one-to-many ABI and the table.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub unsafe fn dot_f32_u8_many_unchecked(
        &self,
        w: *const f32,
        base: *const u8,
        stride: usize,
        dim: usize,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
    ) {
        debug_assert!(stride >= dim);
        // SAFETY: forwarded from the caller.
        unsafe { (self.fns.dot_many)(w, base, stride, dim, ids.as_ptr(), ids.len(), out, prefetch) }
    }
}

impl Kernels<u8> {
    /// `Σ wᵢ·cᵢ` over `i16` weights and SQ8 codes, computed exactly in integers and rounded
    /// once to `f32`: the fast form of [`dot_f32_u8`](Self::dot_f32_u8) for weights quantised
    /// to `i16` (`vpmaddwd` on AVX2, `smlal` on NEON: twice the elements per instruction).
    ///
    /// ```
    /// use hnswx_kernels::auto_for;
    /// assert_eq!(auto_for::<u8>().dot_i16_u8(&[-3, 1000, 7], &[2, 3, 255]), 4779.0);
    /// ```
    ///
    /// # Panics
    /// If `w` and `c` differ in length, or a weight is outside `±`[`MAX_INT_WEIGHT`].
    pub fn dot_i16_u8(&self, w: &[i16], c: &[u8]) -> f32 {
        same_len(w.len(), c.len());
        check_int_weights(w);
        // SAFETY: both slices hold `w.len()` elements, weights bounded (checked); the
        // table's CPU check was done.
        unsafe { (self.fns.idot)(w.as_ptr(), c.as_ptr(), w.len()) }
    }

    /// `out[j] = dot_i16_u8(w, codes[ids[j]])` for every `j`, prefetching rows ahead.
    ///
    /// # Panics
    /// If `w.len() != rows.dim()`, `out.len() != ids.len()`, an id is not a row, or a weight
    /// is outside `±`[`MAX_INT_WEIGHT`].
    pub fn dot_i16_u8_many(&self, w: &[i16], rows: Rows<'_, u8>, ids: &[u32], out: &mut [f32]) {
        self.dot_i16_u8_many_with(w, rows, ids, out, Prefetch::Ahead)
    }

    /// [`dot_i16_u8_many`](Self::dot_i16_u8_many), prefetching the rows ahead or not (same
    /// results).
    ///
    /// # Panics
    /// As for [`dot_i16_u8_many`](Self::dot_i16_u8_many).
    pub fn dot_i16_u8_many_with(
        &self,
        w: &[i16],
        rows: Rows<'_, u8>,
        ids: &[u32],
        out: &mut [f32],
        prefetch: Prefetch,
    ) {
        check_many(w.len(), &rows, ids, out.len());
        check_int_weights(w);
        // SAFETY: ids name rows inside `rows.data` (checked), `out` holds `ids.len()`
        // floats, weights bounded (checked).
        unsafe {
            self.dot_i16_u8_many_unchecked(
                w.as_ptr(),
                rows.data.as_ptr(),
                rows.stride,
                rows.dim,
                ids,
                out.as_mut_ptr(),
                prefetch,
            )
        }
    }

    /// [`dot_i16_u8_many_with`](Self::dot_i16_u8_many_with) without checks, on a raw code
    /// table whose rows start `stride` bytes apart.
    ///
    /// # Safety
    /// `w` valid for `dim` reads with every `|wᵢ| ≤` [`MAX_INT_WEIGHT`]; `out` for
    /// `ids.len()` writes; for each id, `base + id * stride` valid for `dim` reads; nothing
    /// read is written concurrently.
    // The raw one-to-many ABI and the table.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub unsafe fn dot_i16_u8_many_unchecked(
        &self,
        w: *const i16,
        base: *const u8,
        stride: usize,
        dim: usize,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
    ) {
        debug_assert!(stride >= dim);
        // SAFETY: forwarded from the caller.
        unsafe { (self.fns.idot_many)(w, base, stride, dim, ids.as_ptr(), ids.len(), out, prefetch) }
    }

    /// Runs `user` with this table's integer one-to-many kernel as a type ([`IntKernel`]),
    /// inside a function compiled for the table's instruction set, so that a loop in `user`
    /// can have the kernel inlined (see [`IntKernelUser`]).
    ///
    /// ```
    /// use hnswx_kernels::{auto_for, IntKernel, IntKernelUser, Prefetch};
    ///
    /// struct Score<'a> { w: &'a [i16], codes: &'a [u8], ids: &'a [u32], out: &'a mut [f32] }
    /// impl IntKernelUser for Score<'_> {
    ///     type Output = ();
    ///     #[inline(always)]
    ///     fn run<K: IntKernel>(self, k: K) {
    ///         let dim = self.w.len();
    ///         assert!(self.ids.iter().all(|&id| (id as usize + 1) * dim <= self.codes.len()));
    ///         assert!(self.out.len() >= self.ids.len());
    ///         // SAFETY: every listed row lies inside `codes` and `out` is long enough
    ///         // (asserted); the weights are tiny.
    ///         unsafe {
    ///             k.dot_many(self.w.as_ptr(), self.codes.as_ptr(), dim, dim, self.ids,
    ///                        self.out.as_mut_ptr(), Prefetch::Off)
    ///         }
    ///     }
    /// }
    /// let mut out = [0.0f32; 2];
    /// let codes = [1u8, 2, 3, 4];
    /// auto_for::<u8>().with_int_kernel(Score { w: &[1, -1], codes: &codes, ids: &[1, 0], out: &mut out });
    /// assert_eq!(out, [-1.0, -1.0]);
    /// ```
    pub fn with_int_kernel<U: IntKernelUser>(&self, user: U) -> U::Output {
        // The module that made this table, found by the table's address (so no tag can name
        // the wrong module). Each `run_int` needs its module's instruction set, which the
        // CPU has: a table is handed out only after that check (`select_for`, `auto_for`,
        // `avx512_u8_variants`).
        macro_rules! by_address {
            ($($(#[$cfg:meta])? $module:path),* $(,)?) => {
                $(
                    $(#[$cfg])?
                    {
                        use $module as m;
                        if std::ptr::eq(self, &m::KERNELS) {
                            // SAFETY: this table is `m::KERNELS`, handed out only on a CPU
                            // with `m`'s instruction set (see above).
                            return unsafe { m::run_int(user) };
                        }
                    }
                )*
            };
        }
        by_address!(
            arch::scalar::u8_codes,
            arch::portable::u8_codes,
            #[cfg(target_arch = "x86_64")]
            arch::x86_64::avx2::u8_codes,
            #[cfg(target_arch = "x86_64")]
            arch::x86_64::avx512::u8_codes_vnni,
            #[cfg(target_arch = "x86_64")]
            arch::x86_64::avx512::u8_codes_bw,
            #[cfg(target_arch = "x86_64")]
            arch::x86_64::avx512::u8_codes,
            #[cfg(target_arch = "aarch64")]
            arch::aarch64::neon::u8_codes,
        );
        // Every table is one of the above; were one added without its line, its own
        // function pointers would still serve (same results, a call per batch).
        user.run(self)
    }

    /// Prepares query `q` for the integer SQ8 kernel against codes `c` that stand for
    /// `xᵢ = offsetsᵢ + scalesᵢ·cᵢ`: writes `wi` (each `|wiᵢ| ≤` [`MAX_INT_WEIGHT`]) and
    /// returns `(bias, scale)` such that, up to the weights' rounding,
    /// `bias + scale·Σ wiᵢ·cᵢ + Σ (scalesᵢ·cᵢ)²` is `‖q − x‖²` (`l2`; the last sum is a
    /// per-row constant the caller keeps) or `bias + scale·Σ wiᵢ·cᵢ` is `1 − q·x` (inner
    /// product, `l2 = false`). The weights are `−2(qᵢ − offsetsᵢ)·scalesᵢ` (L2) or
    /// `−qᵢ·scalesᵢ`, scaled so the largest is `MAX_INT_WEIGHT` and rounded to the nearest
    /// integer (halves away from zero, by adding ±0.5 and truncating); `scale` undoes the
    /// scaling, `bias` is `Σ (qᵢ − offsetsᵢ)²` (L2) or `1 − Σ qᵢ·offsetsᵢ`. Computed in
    /// `f64`, in the same order by every table (so every table gives the same bits).
    ///
    /// `None` when the result would not be usable in `f32`: a non-finite input, a bias past
    /// `f32`'s range, or a scale that is not a normal float (data of extreme magnitude).
    ///
    /// ```
    /// use hnswx_kernels::auto_for;
    /// let mut wi = [0i16; 2];
    /// let (bias, scale) = auto_for::<u8>()
    ///     .prepare_sq8(true, &[1.0, 3.0], &[0.0, 0.0], &[1.0, 0.5], &mut wi)
    ///     .unwrap();
    /// // Weights −2·1·1 = −2 and −2·3·0.5 = −3, scaled so that −3 becomes −MAX_INT_WEIGHT.
    /// let max = hnswx_kernels::MAX_INT_WEIGHT;
    /// assert_eq!(wi, [-1365, -max]); // −2·2047/3 = −1364.7, rounded
    /// assert_eq!(bias, 10.0); // 1² + 3²
    /// assert_eq!(scale, (3.0 / f64::from(max)) as f32);
    /// ```
    ///
    /// # Panics
    /// If the four slices differ in length.
    pub fn prepare_sq8(
        &self,
        l2: bool,
        q: &[f32],
        offsets: &[f32],
        scales: &[f32],
        wi: &mut [i16],
    ) -> Option<(f32, f32)> {
        same_len(q.len(), offsets.len());
        same_len(q.len(), scales.len());
        same_len(q.len(), wi.len());
        let f = if l2 { self.fns.prepare_l2 } else { self.fns.prepare_ip };
        // SAFETY: the table's CPU check was done; the function takes any slices (it checks
        // their lengths and the inputs' finiteness itself).
        unsafe { f(q, offsets, scales, wi) }
    }
}

#[track_caller]
fn check_int_weights(w: &[i16]) {
    assert!(
        w.iter().all(|x| x.unsigned_abs() <= MAX_INT_WEIGHT as u16),
        "hnswx-kernels: an i16 weight is outside ±{MAX_INT_WEIGHT}"
    );
}

#[inline]
#[track_caller]
fn same_len(a: usize, b: usize) {
    assert_eq!(a, b, "hnswx-kernels: vectors of different lengths");
}

/// The checks of a safe one-to-many call.
#[track_caller]
fn check_many<E>(query_len: usize, rows: &Rows<'_, E>, ids: &[u32], out_len: usize) {
    assert_eq!(
        query_len, rows.dim,
        "hnswx-kernels: query length differs from the rows' dimension"
    );
    assert_eq!(out_len, ids.len(), "hnswx-kernels: `out` and `ids` differ in length");
    let n = rows.len();
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= n) {
        panic!("hnswx-kernels: row id {bad} out of range (rows: {n})");
    }
}

/// The one-to-one and one-to-many kernels of one metric and instruction set, for rows of `E`
/// (`f32` or [`f16`](struct@f16)). `Copy`, two function pointers and two tags: an index keeps one and
/// calls through it.
///
/// ```
/// use hnswx_kernels::{auto, Metric, Rows};
///
/// let l2 = auto().metric(Metric::L2);
/// // Three rows of dimension 2, stored with a stride of 4 floats.
/// let table = [0.0, 0.0, 9.0, 9.0, /**/ 3.0, 4.0, 9.0, 9.0, /**/ 1.0, 1.0, 9.0, 9.0];
/// let rows = Rows::new(&table, 2, 4).unwrap();
/// let mut out = [0.0f32; 2];
/// l2.distances(&[0.0, 0.0], rows, &[1, 2], &mut out);
/// assert_eq!(out, [25.0, 2.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MetricKernel<E: Element = f32> {
    isa: Isa,
    metric: Metric,
    one: OneToOneFn<E>,
    many: OneToManyFn<E>,
}

impl<E: Element> MetricKernel<E> {
    /// The instruction set.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The metric.
    pub fn metric_kind(&self) -> Metric {
        self.metric
    }

    /// Distance between `a` and `b`.
    ///
    /// # Panics
    /// If `a` and `b` differ in length.
    #[inline]
    pub fn distance(&self, a: &[f32], b: &[E]) -> f32 {
        same_len(a.len(), b.len());
        // SAFETY: both slices hold `a.len()` elements; the table's CPU check was done.
        unsafe { (self.one)(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// Distance between `n` floats at `a` and `n` elements at `b`, without checks.
    ///
    /// # Safety
    /// Both pointers valid for `n` reads (element-aligned), not written concurrently.
    #[inline(always)]
    pub unsafe fn distance_unchecked(&self, a: *const f32, b: *const E, n: usize) -> f32 {
        debug_assert!(a.is_aligned() && b.is_aligned());
        // SAFETY: forwarded from the caller.
        unsafe { (self.one)(a, b, n) }
    }

    /// `out[j] = distance(query, rows[ids[j]])` for every `j`, prefetching rows ahead.
    ///
    /// # Panics
    /// If `query.len() != rows.dim()`, `out.len() != ids.len()`, or an id is not a row.
    pub fn distances(&self, query: &[f32], rows: Rows<'_, E>, ids: &[u32], out: &mut [f32]) {
        self.distances_with(query, rows, ids, out, Prefetch::Ahead)
    }

    /// [`distances`](Self::distances), prefetching the rows ahead or not (same results).
    ///
    /// # Panics
    /// As for [`distances`](Self::distances).
    pub fn distances_with(&self, query: &[f32], rows: Rows<'_, E>, ids: &[u32], out: &mut [f32], prefetch: Prefetch) {
        check_many(query.len(), &rows, ids, out.len());
        // SAFETY: every id names a row inside `rows.data` (checked above), each row holds
        // `dim` elements at `id * stride`, and `out` holds `ids.len()` floats.
        unsafe {
            self.distances_unchecked(
                query.as_ptr(),
                rows.data.as_ptr(),
                rows.stride,
                rows.dim,
                ids,
                out.as_mut_ptr(),
                prefetch,
            )
        }
    }

    /// [`distances_with`](Self::distances_with) without checks, on a raw row table.
    ///
    /// # Safety
    /// `query` valid for `dim` reads; `out` for `ids.len()` writes; for each id,
    /// `base + id * stride` (in elements) valid for `dim` reads; nothing read is written
    /// concurrently.
    // The raw one-to-many ABI and the table.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub unsafe fn distances_unchecked(
        &self,
        query: *const f32,
        base: *const E,
        stride: usize,
        dim: usize,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
    ) {
        debug_assert!(stride >= dim);
        // SAFETY: forwarded from the caller.
        unsafe { (self.many)(query, base, stride, dim, ids.as_ptr(), ids.len(), out, prefetch) }
    }
}

/// A read-only view of equally long rows of `E`s (`f32`, [`f16`](struct@f16) or `u8` codes) stored
/// `stride` elements apart (the index rounds `f32` rows up to a multiple of 8 floats;
/// `stride == dim` for a packed table).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a, E = f32> {
    data: &'a [E],
    dim: usize,
    stride: usize,
}

impl<'a, E> Rows<'a, E> {
    /// Views `data` as rows of `dim` elements, `stride ≥ dim` apart. The last row may omit
    /// its padding.
    pub fn new(data: &'a [E], dim: usize, stride: usize) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::Shape("dimension 0"));
        }
        if stride < dim {
            return Err(Error::Shape("stride smaller than the dimension"));
        }
        if !data.is_empty() && !data.len().is_multiple_of(stride) && data.len() % stride != dim {
            return Err(Error::Shape("data length is not a whole number of rows"));
        }
        Ok(Rows { data, dim, stride })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len().div_ceil(self.stride)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Elements per row (without padding).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Elements from one row's start to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Row `i`, if there is one.
    pub fn row(&self, i: usize) -> Option<&'a [E]> {
        let start = i.checked_mul(self.stride)?;
        self.data.get(start..start.checked_add(self.dim)?)
    }
}
