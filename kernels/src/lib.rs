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
//! ## Numerics
//! Sums are accumulated in `f32` in several independent partial sums, so results differ from
//! a sequential sum by rounding only: at most about `(n + 4)·2⁻²⁴·Σ|termᵢ|` (the tests check
//! exactly this bound against an `f64` reference, [`reference`](mod@reference)). A NaN in either input gives
//! a NaN distance.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod arch;
pub mod reference;

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

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

    /// The fastest instruction set this machine can run (detected on every call; [`auto`]
    /// caches it).
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon]
            .into_iter()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Portable)
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

/// Scores a query against one row: `(query, row, n) -> distance`.
///
/// # Safety
/// Both pointers valid for `n` reads of `f32`-aligned data that no other thread writes during
/// the call. Only obtainable from a [`Kernels`] table, whose instruction set the CPU has.
pub type OneToOneFn = unsafe fn(*const f32, *const f32, usize) -> f32;

/// Scores a query against several rows of a strided table:
/// `(query, base, stride, dim, ids, count, out)` writes `out[j] = d(query, base[ids[j] * stride ..][..dim])`
/// for `j < count`, prefetching the rows a little ahead.
///
/// # Safety
/// `query` valid for `dim` reads, `ids` for `count` reads, `out` for `count` writes; for every
/// id, `base + id * stride` valid for `dim` reads; all `f32`/`u32`-aligned; nothing read is
/// written concurrently. Only obtainable from a [`Kernels`] table.
pub type OneToManyFn = unsafe fn(*const f32, *const f32, usize, usize, *const u32, usize, *mut f32);

mod sealed {
    use super::{arch, Isa, Kernels};

    /// Private to the crate: outside code can neither implement this trait nor call `table`,
    /// which hands out a table *without* checking the CPU (only [`crate::select`] and
    /// [`crate::auto`] call it, after the check).
    pub trait Sealed: Sized + Copy + Send + Sync + 'static {
        fn table(isa: Isa) -> &'static Kernels<Self>
        where
            Self: super::Element;
    }

    impl Sealed for f32 {
        fn table(isa: Isa) -> &'static Kernels<f32> {
            match isa {
                Isa::Scalar => &arch::scalar::KERNELS,
                Isa::Portable => &arch::portable::KERNELS,
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => &arch::x86_64::avx2::KERNELS,
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => &arch::x86_64::avx512::KERNELS,
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => &arch::aarch64::neon::KERNELS,
                // Callers check availability first, so an instruction set foreign to this
                // target never gets here; map it to the portable table to stay total.
                #[allow(unreachable_patterns)]
                _ => &arch::portable::KERNELS,
            }
        }
    }
}

/// An element type that stored rows can have, with its own kernel tables.
///
/// Only `f32` today. Half-precision and 8-bit quantised rows will be further implementors
/// with tables of their own: the detection ([`Isa`], [`Choice`]) and selection ([`select`])
/// stay as they are. Sealed: it cannot be implemented outside this crate, and outside code
/// cannot reach a table without the CPU check:
///
/// ```compile_fail
/// use hnswx_kernels::{Element, Isa};
/// let unchecked = <f32 as Element>::table(Isa::Avx512); // no such public method
/// ```
pub trait Element: sealed::Sealed {}

impl Element for f32 {}

/// The kernels of one instruction set for rows of element type `E`: a table of function
/// pointers. Obtain one from [`auto`], [`select`] or [`from_env`]; holding a
/// `&'static Kernels` means the CPU was checked.
pub struct Kernels<E: Element = f32> {
    pub(crate) isa: Isa,
    pub(crate) l2sq: OneToOneFn,
    pub(crate) dot: OneToOneFn,
    pub(crate) ip: OneToOneFn,
    pub(crate) l2sq_many: OneToManyFn,
    pub(crate) ip_many: OneToManyFn,
    pub(crate) _element: core::marker::PhantomData<E>,
}

impl<E: Element> fmt::Debug for Kernels<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels")
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

/// The best kernels for this CPU, detected on first use and cached.
pub fn auto() -> &'static Kernels<f32> {
    static BEST: OnceLock<Isa> = OnceLock::new();
    let isa = *BEST.get_or_init(Isa::detect);
    <f32 as sealed::Sealed>::table(isa)
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
    match choice {
        Choice::Auto => Ok(auto()),
        Choice::Force(isa) => {
            isa.availability()
                .map_err(|reason| Error::Unsupported { isa, reason })?;
            Ok(<f32 as sealed::Sealed>::table(isa))
        }
    }
}

/// The kernels named by `HNSWX_KERNEL` (unset: [`auto`]).
pub fn from_env() -> Result<&'static Kernels<f32>, Error> {
    select(Choice::from_env()?)
}

impl Kernels<f32> {
    /// The instruction set these kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Squared Euclidean distance.
    ///
    /// # Panics
    /// If `a` and `b` differ in length.
    #[inline]
    pub fn l2sq(&self, a: &[f32], b: &[f32]) -> f32 {
        same_len(a, b);
        // SAFETY: both slices hold `a.len()` floats; the table's CPU check was done.
        unsafe { (self.l2sq)(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// Dot product `Σ aᵢ·bᵢ` (a similarity, not a distance).
    ///
    /// # Panics
    /// If `a` and `b` differ in length.
    #[inline]
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        same_len(a, b);
        // SAFETY: as in `l2sq`.
        unsafe { (self.dot)(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// The distance under `metric` (for [`Metric::Cosine`], of vectors already normalised).
    ///
    /// # Panics
    /// If `a` and `b` differ in length.
    #[inline]
    pub fn distance(&self, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
        self.metric(metric).distance(a, b)
    }

    /// The pair of kernels for one metric, to keep on a hot path.
    pub fn metric(&self, metric: Metric) -> MetricKernel {
        let (one, many) = match metric {
            Metric::L2 => (self.l2sq, self.l2sq_many),
            Metric::InnerProduct | Metric::Cosine => (self.ip, self.ip_many),
        };
        MetricKernel {
            isa: self.isa,
            metric,
            one,
            many,
        }
    }
}

#[inline]
#[track_caller]
fn same_len(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "hnswx-kernels: vectors of different lengths");
}

/// The one-to-one and one-to-many kernels of one metric and instruction set. `Copy`, two
/// function pointers and two tags: an index keeps one and calls through it.
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
pub struct MetricKernel {
    isa: Isa,
    metric: Metric,
    one: OneToOneFn,
    many: OneToManyFn,
}

impl MetricKernel {
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
    pub fn distance(&self, a: &[f32], b: &[f32]) -> f32 {
        same_len(a, b);
        // SAFETY: both slices hold `a.len()` floats; the table's CPU check was done.
        unsafe { (self.one)(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// Distance between `n` floats at `a` and `n` floats at `b`, without checks.
    ///
    /// # Safety
    /// Both pointers valid for `n` reads of `f32` (element-aligned), not written concurrently.
    #[inline(always)]
    pub unsafe fn distance_unchecked(&self, a: *const f32, b: *const f32, n: usize) -> f32 {
        debug_assert!(a.is_aligned() && b.is_aligned());
        // SAFETY: forwarded from the caller.
        unsafe { (self.one)(a, b, n) }
    }

    /// `out[j] = distance(query, rows[ids[j]])` for every `j`, prefetching rows ahead.
    ///
    /// # Panics
    /// If `query.len() != rows.dim()`, `out.len() != ids.len()`, or an id is not a row.
    pub fn distances(&self, query: &[f32], rows: Rows<'_>, ids: &[u32], out: &mut [f32]) {
        assert_eq!(
            query.len(),
            rows.dim,
            "hnswx-kernels: query length differs from the rows' dimension"
        );
        assert_eq!(out.len(), ids.len(), "hnswx-kernels: `out` and `ids` differ in length");
        let n = rows.len();
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= n) {
            panic!("hnswx-kernels: row id {bad} out of range (rows: {n})");
        }
        // SAFETY: every id names a row inside `rows.data` (checked above), each row holds
        // `dim` floats at `id * stride`, and `out` holds `ids.len()` floats.
        unsafe {
            self.distances_unchecked(
                query.as_ptr(),
                rows.data.as_ptr(),
                rows.stride,
                rows.dim,
                ids,
                out.as_mut_ptr(),
            )
        }
    }

    /// [`distances`](Self::distances) without checks, on a raw row table.
    ///
    /// # Safety
    /// `query` valid for `dim` reads; `out` for `ids.len()` writes; for each id,
    /// `base + id * stride` valid for `dim` reads; nothing read is written concurrently.
    #[inline(always)]
    pub unsafe fn distances_unchecked(
        &self,
        query: *const f32,
        base: *const f32,
        stride: usize,
        dim: usize,
        ids: &[u32],
        out: *mut f32,
    ) {
        debug_assert!(stride >= dim);
        // SAFETY: forwarded from the caller.
        unsafe { (self.many)(query, base, stride, dim, ids.as_ptr(), ids.len(), out) }
    }
}

/// A read-only view of equally long rows stored `stride` floats apart (the index pads rows to
/// a multiple of 16 floats; `stride == dim` for a packed table).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    data: &'a [f32],
    dim: usize,
    stride: usize,
}

impl<'a> Rows<'a> {
    /// Views `data` as rows of `dim` floats, `stride ≥ dim` apart. The last row may omit its
    /// padding.
    pub fn new(data: &'a [f32], dim: usize, stride: usize) -> Result<Self, Error> {
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

    /// Floats per row (without padding).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Floats from one row's start to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Row `i`, if there is one.
    pub fn row(&self, i: usize) -> Option<&'a [f32]> {
        let start = i.checked_mul(self.stride)?;
        self.data.get(start..start.checked_add(self.dim)?)
    }
}
