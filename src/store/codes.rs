//! Quantised traversal: a second, smaller copy of every vector (8-bit codes or half-precision
//! floats) that the graph is walked on, while the exact `f32` rows in the slab re-score the
//! final candidates.
//!
//! SQ8: component `i` of a vector is stored as one byte `cᵢ`, with `xᵢ ≈ oᵢ + sᵢ·cᵢ`, the
//! offset `oᵢ` and scale `sᵢ` learned per dimension from the data (its minimum and range).
//! Values outside the trained range are clamped to it (they are then approximated by the
//! range's end; the exact rerank still sees the true vector). With `a = q − o`, every metric
//! is a dot product of the codes with a per-query weight vector plus constants:
//!
//! - L2: `|q − x̃|² = |a|² − 2·Σ aᵢsᵢcᵢ + Σ (sᵢcᵢ)²` — the last sum is stored per row;
//! - inner product and cosine (rows normalised): `1 − q·x̃ = (1 − q·o) − Σ qᵢsᵢcᵢ`.
//!
//! So a row is `dim` code bytes padded to a multiple of 16, and under L2 the row constants
//! (`f32`) sit in a dense array of their own after the rows (one 64-byte line holds 16 of
//! them): a 128-d row is then exactly two cache lines, 64-byte aligned, where a constant
//! inside the row made it three. Inner product and cosine need no constant. A query's
//! weights are rounded to `i16` once (`Kernels::prepare_sq8`, see `hnswx_kernels`), rows are
//! scored exactly in integers (`dot_i16_u8_many`), and a row's walk distance is `bias +
//! scale·dot + row constant`.
//!
//! F16: component `i` is stored as the half-precision float nearest to `xᵢ` (the `half`
//! crate's conversion, round to nearest even; magnitudes below f16's smallest subnormal,
//! about `6·10⁻⁸`, become zero), after clamping to f16's finite range `±65504` so that no
//! code is infinite. Nothing is learned from the data, so an F16 table walks codes from its
//! first vector. The query stays `f32` and a row is scored with the `f32 × f16` kernels of
//! the metric (`l2sq`, or `1 − dot` for inner product and cosine, whose slab rows are
//! normalised already). A row is `dim` halves padded to a multiple of 16 (32 bytes), so
//! every row starts 32-byte aligned in the 64-byte-aligned table.
//!
//! Codes are written like slab rows: once, by the thread that owns the slot, before the node
//! is published. An SQ8 quantiser is set once ([`Codes::install`]); until then the index
//! walks the `f32` rows, and no code is read.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use hnswx_kernels::{f16, IntKernel, Kernels, Metric, MetricKernel, Prefetch};

use crate::error::{Error, Result};

use crate::store::cells::FileMap;
use crate::store::slab::{Zeroed, SLAB_ALIGN};

/// How the graph is walked (set with [`Params::quantization`](crate::Params::quantization)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Quantization {
    /// The exact `f32` rows only.
    #[default]
    None,
    /// 8-bit scalar quantisation (one byte per component, per-dimension offset and scale):
    /// searches walk the codes and re-score the best candidates with the exact rows.
    Sq8,
    /// Half-precision copies of the rows (two bytes per component, nothing to train;
    /// components clamped to `±65504`): searches walk them and re-score the best candidates
    /// with the exact rows.
    F16,
}

impl Quantization {
    /// The name used in files and reports: `none`, `sq8` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Sq8 => "sq8",
            Quantization::F16 => "f16",
        }
    }

    /// The code in file headers (0 none, 1 SQ8, 2 F16).
    pub(crate) fn code(self) -> u32 {
        match self {
            Quantization::None => 0,
            Quantization::Sq8 => 1,
            Quantization::F16 => 2,
        }
    }

    /// The inverse of [`code`](Self::code).
    pub(crate) fn from_code(c: u32) -> Option<Quantization> {
        match c {
            0 => Some(Quantization::None),
            1 => Some(Quantization::Sq8),
            2 => Some(Quantization::F16),
            _ => None,
        }
    }
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" | "f32" => Ok(Quantization::None),
            "sq8" => Ok(Quantization::Sq8),
            "f16" => Ok(Quantization::F16),
            _ => Err(format!("unknown quantization {s:?} (none, sq8, f16)")),
        }
    }
}

/// Rows the quantiser is trained on at most (evenly strided over the data).
pub(crate) const TRAIN_SAMPLE: usize = 100_000;

/// An untrained index trains its quantiser from its vectors once it holds this many (an
/// `add_batch` that brings it there trains first, on the old and the new rows together).
pub const AUTO_TRAIN_ROWS: usize = 1024;

/// What a training attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trained {
    /// Installed a quantiser.
    Now,
    /// Another thread had trained it first.
    Already,
    /// The data's range is too wide (see [`Sq8::is_valid`]): no codes.
    Refused,
}

/// The SQ8 quantiser: per-dimension offset and scale.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sq8 {
    pub offset: Vec<f32>,
    pub scale: Vec<f32>,
}

/// Per-dimension minimum and maximum of the rows seen: what [`Sq8`] is trained from.
pub(crate) struct Ranges {
    lo: Vec<f32>,
    hi: Vec<f32>,
}

impl Ranges {
    pub fn new(dim: usize) -> Ranges {
        Ranges {
            lo: vec![f32::INFINITY; dim],
            hi: vec![f32::NEG_INFINITY; dim],
        }
    }

    /// Takes in the row `r` multiplied by `scale`.
    pub fn observe(&mut self, r: &[f32], scale: f32) {
        for ((l, h), &x) in self.lo.iter_mut().zip(self.hi.iter_mut()).zip(r) {
            let x = x * scale;
            *l = l.min(x);
            *h = h.max(x);
        }
    }
}

impl Sq8 {
    /// Offsets and scales covering every component seen: minimum and `range / 255`. A
    /// constant dimension gets scale 0 (coded exactly by its offset).
    pub fn train(ranges: &Ranges) -> Sq8 {
        let (lo, hi) = (&ranges.lo, &ranges.hi);
        let dim = lo.len();
        let mut offset = Vec::with_capacity(dim);
        let mut scale = Vec::with_capacity(dim);
        for (&l, &h) in lo.iter().zip(hi) {
            // f64: `h − l` can overflow f32 for components near ±f32::MAX / 2.
            let s = ((f64::from(h) - f64::from(l)) / 255.0) as f32;
            // A subnormal scale (a range below about 3·10⁻³⁶) counts as constant: codes are
            // then the same on a CPU that flushes subnormals to zero, so a stored code row
            // always equals its vector coded again (see `Codes::first_mismatch`).
            if l.is_finite() && h.is_finite() && h > l && s.is_normal() {
                offset.push(l);
                scale.push(s);
            } else {
                offset.push(if l.is_finite() { l } else { 0.0 });
                scale.push(0.0);
            }
        }
        Sq8 { offset, scale }
    }

    /// Whether the parameters can code anything with every row constant and every
    /// reconstruction finite in `f32`: finite, scales zero or normal (positive, not
    /// subnormal), `Σ(255·sᵢ)²` and `Σoᵢ²` (the largest row constant and the offset's squared
    /// norm) at most `f32::MAX / 16`.
    pub fn is_valid(&self, dim: usize) -> bool {
        let bound = f64::from(f32::MAX) / 16.0;
        let span: f64 = self.scale.iter().map(|&s| (255.0 * f64::from(s)).powi(2)).sum();
        let off: f64 = self.offset.iter().map(|&o| f64::from(o).powi(2)).sum();
        self.offset.len() == dim
            && self.scale.len() == dim
            && self.offset.iter().all(|o| o.is_finite())
            && self.scale.iter().all(|&s| s == 0.0 || (s.is_normal() && s > 0.0))
            && span <= bound
            && off <= bound
    }

    /// Codes `v` into `out` (`dim` bytes, clamped to the trained range); returns the row
    /// constant `Σ (sᵢcᵢ)²` (what L2 needs).
    fn encode(&self, v: &[f32], out: &mut [u8]) -> f32 {
        let mut norm = 0.0f64;
        for (((c, &x), &o), &s) in out.iter_mut().zip(v).zip(&self.offset).zip(&self.scale) {
            let q = if s > 0.0 {
                ((x - o) / s).round().clamp(0.0, 255.0)
            } else {
                0.0
            };
            *c = q as u8;
            let back = f64::from(s) * f64::from(*c);
            norm += back * back;
        }
        norm as f32
    }
}

/// The largest finite `f16` (`65504`): F16 codes clamp every component to `±F16_MAX`.
pub(crate) const F16_MAX: f32 = 65504.0;

/// Half-precision components of a row are a multiple of this (16 × 2 bytes = 32 bytes), so
/// that rows start 32-byte aligned.
const F16_ROW_ALIGN: usize = 16;

/// Writes `v` as half-precision floats into `out` (same length), each component clamped to
/// `±F16_MAX` first (so that no code is infinite), converted in chunks with the `half`
/// crate's slice conversion (F16C where the CPU has it).
pub(crate) fn encode_f16(v: &[f32], out: &mut [f16]) {
    debug_assert_eq!(v.len(), out.len());
    let mut buf = [0.0f32; 64];
    for (o, x) in out.chunks_mut(64).zip(v.chunks(64)) {
        let b = &mut buf[..x.len()];
        for (b, &x) in b.iter_mut().zip(x) {
            *b = x.clamp(-F16_MAX, F16_MAX);
        }
        o.convert_from_f32_slice(b);
    }
}

/// What the code rows hold, with what scores them.
enum Table {
    /// SQ8 codes: the quantiser once trained, or a refusal.
    Sq8 {
        kernels: &'static Kernels<u8>,
        sq8: OnceLock<Sq8>,
        /// Set when training found the data's range too wide for codes (see
        /// [`Sq8::is_valid`]): the index keeps walking the exact rows and does not try again.
        refused: AtomicBool,
    },
    /// Half-precision rows, scored by the metric's `f32 × f16` kernel.
    F16 { kernel: MetricKernel<f16> },
}

impl Table {
    /// The same kind of table, nothing trained, a refusal kept (the index does not try to
    /// train again after a resize).
    fn fresh(&self) -> Table {
        match self {
            Table::Sq8 { kernels, refused, .. } => Table::Sq8 {
                kernels,
                sq8: OnceLock::new(),
                refused: AtomicBool::new(refused.load(Ordering::Relaxed)),
            },
            Table::F16 { kernel } => Table::F16 { kernel: *kernel },
        }
    }
}

/// What keeps a code table's rows alive.
enum Owner {
    /// Our own zeroed allocation (huge pages when large: see [`Zeroed`]).
    Pages(#[allow(dead_code)] Zeroed),
    /// The codes section of a mapped index file (a private, copy-on-write mapping, as the
    /// slab's: rows written later by `add` go to private pages, never to the file).
    Map(#[allow(dead_code)] FileMap),
}

/// How a row is coded.
#[derive(Clone, Copy)]
enum Coder<'a> {
    /// With this SQ8 quantiser.
    Sq8(&'a Sq8),
    /// As half-precision floats.
    F16,
}

/// The code rows of an index (SQ8 codes or F16 rows), and its SQ8 quantiser once trained.
pub(crate) struct Codes {
    _owner: Owner,
    ptr: NonNull<u8>,
    dim: usize,
    /// Bytes per row. SQ8: `dim` codes rounded up to 16. F16: `dim` halves rounded up to 16
    /// (32 bytes).
    stride: usize,
    /// The SQ8 L2 row constants, `capacity` floats after the rows (from the first 64-byte
    /// boundary after them, in the same buffer); `None` for F16 and for SQ8 under inner
    /// product and cosine (their constant is 0).
    consts: Option<NonNull<f32>>,
    capacity: usize,
    metric: Metric,
    table: Table,
}

// SAFETY: a plain byte buffer (our `Zeroed` pages, or a private file mapping kept alive by
// its `FileMap`; `ptr` and `consts` only point into it) plus immutable parameters; rows are written once
// by the owner of a slot before it is published (release) and read only after (acquire), the
// same protocol as the slab's.
unsafe impl Send for Codes {}
// SAFETY: as above.
unsafe impl Sync for Codes {}

/// Where the row constants of a table of `rows` rows of `stride` bytes start: the first
/// 64-byte boundary after the rows (`None` on overflow).
fn consts_at(stride: usize, rows: usize) -> Option<usize> {
    stride.checked_mul(rows)?.checked_next_multiple_of(SLAB_ALIGN)
}

/// Code rows of at least this many bytes get their row constants prefetched before the
/// kernel scores them. Long rows evict the constants from L1/L2 and take long enough to
/// score to hide the fetch; on short rows the constants stay cached and the extra
/// instructions per row cost more than they save. Measured on Zen 3 with paired rounds:
/// fashion-mnist (784-byte rows) 1.038× with the prefetch (faster in 14 of 15), the 128-d
/// mixture (128-byte rows) 0.936× (6 of 15).
const PREFETCH_CONSTS_FROM: usize = 256;

/// Whether a table of `kind` under `metric` keeps row constants: SQ8 under L2 only.
fn has_consts(kind: Quantization, metric: Metric) -> bool {
    kind == Quantization::Sq8 && metric == Metric::L2
}

impl Codes {
    /// The instruction set the walk's kernels use.
    pub fn isa(&self) -> hnswx_kernels::Isa {
        match &self.table {
            Table::Sq8 { kernels, .. } => kernels.isa(),
            Table::F16 { kernel } => kernel.isa(),
        }
    }

    /// Scores with the kernels of `choice` from now on (see
    /// [`Index::set_kernel`](crate::Index::set_kernel)); nothing changes on error.
    pub fn set_kernels(&mut self, choice: hnswx_kernels::Choice) -> std::result::Result<(), hnswx_kernels::Error> {
        match &mut self.table {
            Table::Sq8 { kernels, .. } => *kernels = hnswx_kernels::select_for::<u8>(choice)?,
            Table::F16 { kernel } => *kernel = hnswx_kernels::select_for::<f16>(choice)?.metric(self.metric),
        }
        Ok(())
    }

    /// Room for `capacity` SQ8 code rows of `dim` components, nothing trained; `None` if
    /// the size overflows or the allocation fails.
    pub fn new_sq8(dim: usize, metric: Metric, capacity: usize, kernels: &'static Kernels<u8>) -> Option<Codes> {
        let table = Table::Sq8 {
            kernels,
            sq8: OnceLock::new(),
            refused: AtomicBool::new(false),
        };
        Codes::with_table(dim, metric, capacity, table)
    }

    /// Room for `capacity` F16 rows of `dim` components (walked from the first row); `None`
    /// if the size overflows or the allocation fails.
    pub fn new_f16(dim: usize, metric: Metric, capacity: usize, kernels: &'static Kernels<f16>) -> Option<Codes> {
        let table = Table::F16 {
            kernel: kernels.metric(metric),
        };
        Codes::with_table(dim, metric, capacity, table)
    }

    /// The kind of table.
    fn kind(table: &Table) -> Quantization {
        match table {
            Table::Sq8 { .. } => Quantization::Sq8,
            Table::F16 { .. } => Quantization::F16,
        }
    }

    /// The row constants of a table laid out for `rows` rows from `ptr` (see
    /// [`section_len`](Self::section_len)), if it keeps them.
    fn consts_ptr(&self, ptr: NonNull<u8>, rows: usize) -> Option<NonNull<f32>> {
        if !has_consts(Codes::kind(&self.table), self.metric) {
            return None;
        }
        let at = consts_at(self.stride, rows).expect("checked when the buffer was sized");
        // SAFETY: the buffer from `ptr` holds `section_len(rows)` bytes, which is `at` plus
        // the constants (callers size it so), so `ptr + at` is in it (or one past the end
        // when `rows` is 0) and not null; 64-byte aligned, as `ptr` is.
        Some(unsafe { ptr.add(at) }.cast::<f32>())
    }

    fn with_table(dim: usize, metric: Metric, capacity: usize, table: Table) -> Option<Codes> {
        let kind = Codes::kind(&table);
        let stride = Codes::row_bytes_of(kind, dim).expect("a table has codes");
        let bytes = Codes::section_len(kind, metric, dim, capacity.max(1))?;
        if bytes > isize::MAX as usize - SLAB_ALIGN {
            return None;
        }
        let owner = Zeroed::new(bytes)?;
        let ptr = owner.ptr();
        debug_assert!((ptr.as_ptr() as usize).is_multiple_of(SLAB_ALIGN));
        let mut codes = Codes {
            _owner: Owner::Pages(owner),
            ptr,
            dim,
            stride,
            consts: None,
            capacity,
            metric,
            table,
        };
        codes.consts = codes.consts_ptr(ptr, capacity.max(1));
        Some(codes)
    }

    /// The trained SQ8 quantiser, if any (acquire: its codes are visible once this is
    /// `Some`). Always `None` for F16, which has no parameters.
    #[inline(always)]
    pub fn sq8(&self) -> Option<&Sq8> {
        match &self.table {
            Table::Sq8 { sq8, .. } => sq8.get(),
            Table::F16 { .. } => None,
        }
    }

    /// Whether searches walk the codes: always for F16, once trained for SQ8.
    #[inline]
    pub fn walks(&self) -> bool {
        match &self.table {
            Table::Sq8 { sq8, .. } => sq8.get().is_some(),
            Table::F16 { .. } => true,
        }
    }

    /// Whether the rows are F16 (else SQ8 codes).
    pub fn is_f16(&self) -> bool {
        matches!(self.table, Table::F16 { .. })
    }

    /// Whether the codes still wait for a quantiser (SQ8, untrained, not refused).
    pub fn untrained(&self) -> bool {
        match &self.table {
            Table::Sq8 { sq8, refused, .. } => sq8.get().is_none() && !refused.load(Ordering::Relaxed),
            Table::F16 { .. } => false,
        }
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes_for(self.capacity)
    }

    /// Heap bytes a table like this one holds with room for `capacity` rows (saturating).
    pub fn bytes_for(&self, capacity: usize) -> usize {
        Codes::section_len(Codes::kind(&self.table), self.metric, self.dim, capacity.max(1)).unwrap_or(usize::MAX)
    }

    /// Whether training found the data too wide for SQ8 codes.
    fn is_refused(&self) -> bool {
        matches!(&self.table, Table::Sq8 { refused, .. } if refused.load(Ordering::Relaxed))
    }

    /// Records that training found the data too wide for SQ8 codes.
    fn refuse(&self) {
        if let Table::Sq8 { refused, .. } = &self.table {
            refused.store(true, Ordering::Relaxed);
        }
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Start of row 0 (row `i` is [`stride`](Self::stride) bytes per row further on).
    #[inline(always)]
    pub fn base(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    #[inline(always)]
    fn row_ptr(&self, i: u32) -> *mut u8 {
        debug_assert!((i as usize) < self.capacity);
        self.ptr.as_ptr().wrapping_add(i as usize * self.stride)
    }

    /// Codes `v` into row `i`: with the trained SQ8 quantiser (nothing if untrained), or as
    /// half-precision floats.
    ///
    /// # Safety
    /// As [`Slab::write`](crate::store::slab::Slab::write): `i < capacity`, and the caller owns slot
    /// `i` exclusively (nobody reads row `i` until it is published after this call, or until
    /// the quantiser is installed, for rows written before).
    #[inline]
    pub unsafe fn write(&self, i: u32, v: &[f32]) {
        let coder = match &self.table {
            Table::Sq8 { sq8, .. } => match sq8.get() {
                Some(q) => Coder::Sq8(q),
                None => return,
            },
            Table::F16 { .. } => Coder::F16,
        };
        // SAFETY: forwarded from the caller.
        unsafe { self.write_with(coder, i, v) }
    }

    /// Codes `v` into row `i` with `coder`.
    ///
    /// # Safety
    /// As [`write`](Self::write).
    unsafe fn write_with(&self, coder: Coder<'_>, i: u32, v: &[f32]) {
        assert!((i as usize) < self.capacity && v.len() == self.dim);
        debug_assert!((self.row_ptr(i) as usize).is_multiple_of(16));
        // SAFETY: row `i` lies in the table (asserted) and nobody else touches it (caller).
        let row = unsafe { std::slice::from_raw_parts_mut(self.row_ptr(i), self.stride) };
        let constant = self.encode(coder, v, row);
        if let Some(consts) = self.consts {
            // SAFETY: `capacity` constants follow the rows (`with_table`, `into_mapped`),
            // `i < capacity`, and slot `i`'s constant is the caller's as its row is.
            unsafe { consts.add(i as usize).write(constant) };
        }
    }

    /// Codes `v` into `row` (`stride` bytes, 2-byte aligned) and returns its row constant
    /// (SQ8 under L2; 0 otherwise); padding bytes are left as they are. Deterministic, so a
    /// row coded again on any machine gives the same bytes and constant
    /// ([`first_mismatch`](Self::first_mismatch) relies on it): SQ8 in scalar arithmetic
    /// with scales zero or normal (a process that flushes subnormals to zero could differ
    /// only on subnormal components whose dimension's range is itself near the smallest
    /// normal float), F16 with the `half` crate's conversion, round to nearest even whether
    /// it runs on F16C, NEON or in software.
    fn encode(&self, coder: Coder<'_>, v: &[f32], row: &mut [u8]) -> f32 {
        match coder {
            Coder::Sq8(q) => {
                let norm = q.encode(v, &mut row[..self.dim]);
                if self.metric == Metric::L2 {
                    norm
                } else {
                    0.0
                }
            }
            Coder::F16 => {
                let halves: &mut [u16] = bytemuck::cast_slice_mut(row);
                encode_f16(v, &mut halves.reinterpret_cast_mut()[..self.dim]);
                0.0
            }
        }
    }

    /// Installs the SQ8 quantiser after coding rows `0..rows` of `slab` with it (the caller
    /// makes sure no slot among them is being written, and that later rows are coded by
    /// their writers: see `Index::train_locked`). `false` if one was installed already, or
    /// the table is not SQ8.
    ///
    /// # Safety
    /// No row `0..rows` is written concurrently, and no code is read before this returns
    /// (codes are only read once [`sq8`](Self::sq8) is `Some`).
    pub unsafe fn install(&self, q: Sq8, slab: &crate::store::slab::Slab, rows: usize) -> bool {
        let Table::Sq8 { sq8, .. } = &self.table else {
            debug_assert!(false, "install on an F16 table");
            return false;
        };
        if sq8.get().is_some() {
            return false;
        }
        debug_assert!(q.is_valid(self.dim));
        for i in 0..rows.min(self.capacity) as u32 {
            // SAFETY: rows below `rows` are written and not being written (caller); no one
            // reads codes until the quantiser is set below.
            unsafe { self.write_with(Coder::Sq8(&q), i, slab.row(i)) };
        }
        sq8.set(q).is_ok()
    }

    /// Codes rows `0..rows` of `slab` with what this table has (F16, or a trained SQ8
    /// quantiser; nothing for untrained SQ8).
    ///
    /// # Safety
    /// The table is not shared yet (a new table, or a loaded index's): no row is read or
    /// written concurrently; rows `0..rows` of `slab` are written.
    pub unsafe fn fill(&self, slab: &crate::store::slab::Slab, rows: usize) {
        if !self.walks() {
            return;
        }
        for i in 0..rows.min(self.capacity) as u32 {
            // SAFETY: forwarded from the caller.
            unsafe { self.write(i, slab.row(i)) };
        }
    }

    /// Codes rows `0..rows` of `slab` (a fresh table of the same kind as `from`) as `from`
    /// does: with a copy of its SQ8 quantiser if trained, or as F16.
    ///
    /// # Safety
    /// As [`fill`](Self::fill).
    pub unsafe fn fill_like(&self, from: &Codes, slab: &crate::store::slab::Slab, rows: usize) {
        if from.is_refused() {
            self.refuse();
        }
        match from.sq8() {
            // SAFETY: forwarded from the caller (nobody reads this table yet).
            Some(q) => unsafe {
                self.install(q.clone(), slab, rows);
            },
            // SAFETY: forwarded from the caller.
            None => unsafe { self.fill(slab, rows) },
        }
    }

    /// A copy with room for `capacity` rows (the first `min(capacity, self.capacity)` rows
    /// copied, the quantiser kept).
    pub fn resized(&self, capacity: usize) -> Option<Codes> {
        let out = Codes::with_table(self.dim, self.metric, capacity, self.table.fresh())?;
        let rows = self.capacity.min(capacity);
        // SAFETY: both buffers hold at least `rows` rows and, when kept, `rows` constants,
        // and do not overlap; resizing needs `&mut Index`, so no row is being written.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.ptr.as_ptr(), self.stride * rows);
            if let (Some(from), Some(to)) = (self.consts, out.consts) {
                std::ptr::copy_nonoverlapping(from.as_ptr(), to.as_ptr(), rows);
            }
        }
        if let (Some(q), Table::Sq8 { sq8, .. }) = (self.sq8(), &out.table) {
            let _ = sq8.set(q.clone());
        }
        Some(out)
    }

    /// Whether a save stores the rows: the walk reads them (F16, or SQ8 with `sq8` trained,
    /// as the caller read it once for the whole save).
    pub fn stored(&self, sq8: Option<&Sq8>) -> bool {
        self.is_f16() || sq8.is_some()
    }

    /// Bytes per row of a table of `kind` for `dim` components (`None` for
    /// `Quantization::None`): what a file's codes section must use.
    pub fn row_bytes_of(kind: Quantization, dim: usize) -> Option<usize> {
        match kind {
            Quantization::None => None,
            Quantization::Sq8 => Some(dim.div_ceil(16) * 16),
            Quantization::F16 => Some(dim.div_ceil(F16_ROW_ALIGN) * F16_ROW_ALIGN * 2),
        }
    }

    /// Bytes of a file's codes section for `rows` rows of a table of `kind` under
    /// `metric` (`None` for `Quantization::None` or on overflow): the rows (`rows ×
    /// row_bytes_of`), then for SQ8 under L2 zeros to the next 64-byte boundary and the
    /// `rows` row constants (`f32`, native byte order as the file's). A table holds its
    /// capacity laid out the same way.
    pub fn section_len(kind: Quantization, metric: Metric, dim: usize, rows: usize) -> Option<usize> {
        let stride = Codes::row_bytes_of(kind, dim)?;
        match has_consts(kind, metric) {
            true => consts_at(stride, rows)?.checked_add(rows.checked_mul(4)?),
            false => stride.checked_mul(rows),
        }
    }

    /// The bytes of a codes section for `rows` rows between the rows and the row
    /// constants (zeros; empty when the table keeps no constants). `None` where
    /// [`section_len`](Self::section_len) is.
    pub fn section_gap(kind: Quantization, metric: Metric, dim: usize, rows: usize) -> Option<std::ops::Range<usize>> {
        let stride = Codes::row_bytes_of(kind, dim)?;
        match has_consts(kind, metric) {
            true => Some(stride.checked_mul(rows)?..consts_at(stride, rows)?),
            false => Some(0..0),
        }
    }

    /// The codes section of rows `0..rows` (see [`section_len`](Self::section_len)), for a
    /// save: the rows, the zeros after them, the row constants (the last two empty when
    /// the table keeps no constants).
    ///
    /// # Safety
    /// No row below `rows` is written while the slices live (a save pauses inserts).
    pub unsafe fn section(&self, rows: usize) -> [&[u8]; 3] {
        assert!(rows <= self.capacity);
        const ZEROS: [u8; SLAB_ALIGN] = [0; SLAB_ALIGN];
        // SAFETY: the table holds `capacity` rows of `stride` initialised bytes (zeroed,
        // then written) and, when kept, `capacity` constants; rows and constants below
        // `rows` are not written meanwhile (caller).
        unsafe {
            let codes = std::slice::from_raw_parts(self.ptr.as_ptr(), rows * self.stride);
            match self.consts {
                Some(c) => {
                    let pad = consts_at(self.stride, rows).expect("in the buffer") - codes.len();
                    let consts = std::slice::from_raw_parts(c.as_ptr().cast::<u8>(), rows * 4);
                    [codes, &ZEROS[..pad], consts]
                }
                None => [codes, &[], &[]],
            }
        }
    }

    /// The whole buffer as bytes to fill with a file's codes section for `rows` rows (a
    /// loader): the table must have been made for exactly `rows` rows. Any bytes are valid
    /// codes and constants: a wrong one gives a wrong walk distance, never undefined
    /// behaviour.
    pub fn section_mut(&mut self, rows: usize) -> &mut [u8] {
        assert!(rows == self.capacity && matches!(self._owner, Owner::Pages(_)));
        let len = Codes::section_len(Codes::kind(&self.table), self.metric, self.dim, rows).expect("sized");
        // SAFETY: `&mut self`: nobody else reads or writes the table; our own allocation
        // (asserted, not a mapped file's), laid out for `capacity.max(1)` rows: for
        // `rows == capacity` (asserted) at least 1 that is `section_len(rows)` bytes with
        // the constants where the file has them, for `rows == 0` more than the 0 asked.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), len) }
    }

    /// This (new) table with its rows (and constants) replaced by the codes section of
    /// `rows` rows at byte `offset` of `map` (a mapped file's), or `None` if it does not
    /// fit in the map or does not start 64-byte aligned.
    pub fn into_mapped(self, map: &FileMap, offset: usize, rows: usize) -> Option<Codes> {
        let len = Codes::section_len(Codes::kind(&self.table), self.metric, self.dim, rows)?;
        let ptr = map.at(offset, len, SLAB_ALIGN)?;
        let consts = self.consts_ptr(ptr, rows);
        Some(Codes {
            _owner: Owner::Map(map.clone()),
            ptr,
            consts,
            capacity: rows,
            ..self
        })
    }

    /// Whether the rows are a mapped file's.
    #[cfg(test)]
    pub fn is_mapped(&self) -> bool {
        matches!(self._owner, Owner::Map(_))
    }

    /// Installs the SQ8 quantiser `q` over rows that hold its codes already (read from a
    /// file), coding nothing. `false` if one was installed already or the table is F16.
    pub fn adopt(&self, q: Sq8) -> bool {
        match &self.table {
            Table::Sq8 { sq8, .. } => sq8.set(q).is_ok(),
            Table::F16 { .. } => false,
        }
    }

    /// The first row below `rows` whose bytes differ from `slab`'s row coded again (with
    /// the installed quantiser, or as F16), if any: a loader's check that a file's codes
    /// belong to its vectors. `None` too when the table does not walk.
    ///
    /// # Safety
    /// Rows `0..rows` of `slab` and of this table are written and not being written.
    pub unsafe fn first_mismatch(&self, slab: &crate::store::slab::Slab, rows: usize) -> Option<u32> {
        let coder = match &self.table {
            Table::Sq8 { sq8, .. } => Coder::Sq8(sq8.get()?),
            Table::F16 { .. } => Coder::F16,
        };
        // u64 words: the row buffer is aligned as the F16 coder needs.
        let mut buf = vec![0u64; self.stride.div_ceil(8)];
        // SAFETY: no row below `rows` is written meanwhile (caller).
        let [stored, _, consts] = unsafe { self.section(rows.min(self.capacity)) };
        (0..rows.min(self.capacity)).find_map(|i| {
            buf.fill(0);
            let row = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut buf)[..self.stride];
            // SAFETY: row `i < rows` of the slab is written and not being written (caller).
            let constant = self.encode(coder, unsafe { crate::store::slab::Slab::row(slab, i as u32) }, row);
            let constant_differs = self.consts.is_some() && consts[4 * i..][..4] != constant.to_ne_bytes();
            (*row != stored[i * self.stride..][..self.stride] || constant_differs).then_some(i as u32)
        })
    }

    /// Prepares the query `q` (`dim` floats) for [`score`](Self::score), or `None` when the
    /// walk cannot use the codes (SQ8 untrained, or a query of extreme magnitude: the caller
    /// then walks the exact rows). F16 needs nothing (the kernel takes the `f32` query):
    /// `Some((0, 0))`. SQ8: the weights rounded to `i16` into `wi` (`|wiᵢ| ≤
    /// MAX_INT_WEIGHT`, weight ≈ `scale·wiᵢ`) and `(bias, scale)`, `bias` being the constant
    /// added to every score, from the kernels' [`Kernels::prepare_sq8`] (SIMD in `f64`);
    /// `None` there for a bias past `f32`'s range or a scale that is not a normal float
    /// (data of extreme magnitude).
    #[inline]
    pub fn prepare(&self, q: &[f32], wi: &mut [i16]) -> Option<(f32, f32)> {
        match &self.table {
            Table::Sq8 { sq8, kernels, .. } => {
                let (sq8, dim) = (sq8.get()?, self.dim);
                let (offsets, scales) = (&sq8.offset[..dim], &sq8.scale[..dim]);
                kernels.prepare_sq8(self.metric == Metric::L2, &q[..dim], offsets, scales, &mut wi[..dim])
            }
            Table::F16 { .. } => Some((0.0, 0.0)),
        }
    }

    /// `out[j]` = the walk's distance from the prepared query to node `ids[j]`, for every
    /// `j`. F16: the metric's `f32 × f16` kernel on the query at `q`. SQ8: from the integer
    /// weights `wi`, `scale` and `bias` (see [`prepare`](Self::prepare)), scored with the
    /// exact `i16 × u8` kernel. One branch per call, not per row. `prefetch`: whether the
    /// kernel asks for the rows ahead (and, for long SQ8 rows, their constants).
    ///
    /// # Safety
    /// [`prepare`](Self::prepare) returned `Some` for this query (SQ8: trained, `wi` holds
    /// `dim` weights from it); `q` is valid for `dim` reads; every id is below the capacity
    /// and its row was published before the caller learned the id; `out` holds `ids.len()`
    /// floats.
    // The prepared query in its parts (as `Scratch` keeps them), the ids and the output.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub unsafe fn score(
        &self,
        q: *const f32,
        wi: *const i16,
        scale: f32,
        bias: f32,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
    ) {
        debug_assert!(self.walks());
        debug_assert!(ids.iter().all(|&id| (id as usize) < self.capacity));
        match &self.table {
            Table::Sq8 { kernels, .. } => {
                // SAFETY: forwarded from the caller: rows in bounds and published (their
                // constants written before them, by the same writer), `wi` (bounded by
                // `prepare`) and `out` sized.
                unsafe { self.score_sq8_with(*kernels, wi, scale, bias, ids, out, prefetch) }
            }
            Table::F16 { kernel } => {
                // SAFETY: forwarded from the caller: `q` holds `dim` floats, each id's row
                // (`dim` halves at `id * stride / 2` halves from the 64-byte-aligned base) is
                // in bounds and published, `out` is sized.
                unsafe {
                    kernel.distances_unchecked(
                        q,
                        self.ptr.as_ptr().cast::<f16>(),
                        self.stride / 2,
                        self.dim,
                        ids,
                        out,
                        prefetch,
                    )
                }
            }
        }
    }

    /// [`score`](Self::score) on SQ8 codes with the integer kernel `k`: the codes' table
    /// itself (what `score` passes), or its kernel as a type (from
    /// [`sq8_kernels`](Self::sq8_kernels)`.with_int_kernel`), which a walk generic over it
    /// has inlined, each row's constant then added as its sum is made. Every `k` of the table
    /// gives the same sums, and the constant goes in by the same expression, so the results
    /// are the same bit for bit.
    ///
    /// # Safety
    /// As for [`score`](Self::score), on SQ8 codes; `k` is this codes' table or came from it.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub unsafe fn score_sq8_with<K: IntKernel>(
        &self,
        k: K,
        wi: *const i16,
        scale: f32,
        bias: f32,
        ids: &[u32],
        out: *mut f32,
        prefetch: Prefetch,
    ) {
        debug_assert!(self.walks() && matches!(self.table, Table::Sq8 { .. }));
        debug_assert!(ids.iter().all(|&id| (id as usize) < self.capacity));
        let (base, stride, dim) = (self.ptr.as_ptr().cast_const(), self.stride, self.dim);
        // SAFETY: forwarded from the caller, as in `score`: rows (and their constants) in
        // bounds and published, `wi` bounded, `out` sized. `IntKernel` (sealed) calls
        // `finish` only with `j < ids.len()`.
        unsafe {
            self.prefetch_consts(ids, prefetch);
            match self.consts {
                Some(consts) => k.dot_many_then(wi, base, stride, dim, ids, out, prefetch, |j, dot| {
                    bias + scale * dot + consts.add(*ids.get_unchecked(j) as usize).read()
                }),
                None => k.dot_many_then(wi, base, stride, dim, ids, out, prefetch, |_, dot| bias + scale * dot),
            }
        }
    }

    /// For long SQ8 rows walked with the prefetch, asks for the listed rows' constants
    /// before the rows are scored, so that they arrive while the kernel runs (see
    /// `PREFETCH_CONSTS_FROM`).
    #[inline(always)]
    fn prefetch_consts(&self, ids: &[u32], prefetch: Prefetch) {
        if let (Some(consts), Prefetch::Ahead, true) = (self.consts, prefetch, self.stride >= PREFETCH_CONSTS_FROM) {
            for &id in ids {
                hnswx_kernels::prefetch(consts.as_ptr().wrapping_add(id as usize).cast(), 4);
            }
        }
    }

    /// The SQ8 kernel table, when these are SQ8 codes that the walk reads (trained).
    #[inline]
    pub fn sq8_kernels(&self) -> Option<&'static Kernels<u8>> {
        match &self.table {
            Table::Sq8 { kernels, .. } if self.walks() => Some(*kernels),
            _ => None,
        }
    }
}

impl crate::Index {
    /// Trains the SQ8 quantiser of an index built with
    /// [`Quantization::Sq8`](Quantization::Sq8) on `sample` (row-major, `dim` columns; for
    /// cosine, rows are normalised as added vectors are), codes every vector already in the
    /// index, and switches searches to walking the codes. Train on data that covers the range
    /// of what will be added: later components outside it are clamped in the codes.
    ///
    /// An index built with [`Quantization::F16`](Quantization::F16) has nothing to learn (it
    /// walks codes from its first vector): the sample is checked as for SQ8 and the call
    /// returns `Ok(())`, changing nothing, so code written for either kind can call it.
    ///
    /// Without a call, the index trains itself (see
    /// [`Params::quantization`](crate::Params::quantization)). Safe beside searches and
    /// inserts (inserts wait while existing rows are coded, as during a save).
    ///
    /// Errors: [`Error::InvalidParameter`] if the index has no codes, is trained already, or
    /// the sample's range is too wide for codes whose distances stay finite in `f32` (the
    /// index then keeps walking the exact rows); [`Error::Dimension`] for an empty sample or
    /// a length that is not a multiple of `dim`; [`Error::NonFinite`],
    /// [`Error::NormTooLarge`] (L2, inner product), [`Error::ZeroVector`] (cosine) for a bad
    /// row; [`Error::InsideProgressCallback`].
    pub fn train(&self, sample: &[f32]) -> Result<()> {
        let dim = self.dim();
        if self.codes.is_none() {
            return Err(Error::InvalidParameter {
                name: "train",
                reason: "the index has no codes (built with Quantization::None)".into(),
            });
        }
        if sample.is_empty() || !sample.len().is_multiple_of(dim) {
            return Err(Error::Dimension {
                expected: dim,
                got: sample.len() % dim,
            });
        }
        let scale = self.row_scales(sample)?;
        if self.codes.as_ref().is_some_and(|c| c.is_f16()) {
            // F16: nothing to train.
            return Ok(());
        }
        self.refuse_inside_callback()?;
        match self.train_with(sample, &scale, false) {
            Some(Trained::Now) => Ok(()),
            Some(Trained::Refused) => Err(Error::InvalidParameter {
                name: "train",
                reason: "the sample's range is too wide for 8-bit codes with finite distances".into(),
            }),
            _ => Err(Error::InvalidParameter {
                name: "train",
                reason: "the quantiser is trained already".into(),
            }),
        }
    }

    /// Whether searches walk codes now: a trained SQ8 quantiser, or F16 (always).
    pub fn is_trained(&self) -> bool {
        self.codes.as_ref().is_some_and(|c| c.walks())
    }

    /// Trains the quantiser automatically if the index has untrained codes and will hold at
    /// least [`AUTO_TRAIN_ROWS`] vectors with `extra` rows (scaled by `scale`) added: from
    /// the vectors in it and those rows.
    pub(crate) fn auto_train(&self, extra: &[f32], scale: &[f32]) {
        if self.needs_training(extra.len() / self.dim()) {
            self.train_with(extra, scale, true);
        }
    }

    /// Whether adding `rows` rows would make the index train its quantiser.
    pub(crate) fn needs_training(&self, rows: usize) -> bool {
        self.codes
            .as_ref()
            .is_some_and(|c| c.untrained() && self.len() + rows >= AUTO_TRAIN_ROWS)
    }

    /// Trains from the rows in the index (when `with_index`) and `extra` (row `i` scaled by
    /// `scale[i]`, or 1), evenly sampled to at most [`TRAIN_SAMPLE`] rows, codes every row
    /// and installs the quantiser. `None` from inside a progress callback.
    fn train_with(&self, extra: &[f32], scale: &[f32], with_index: bool) -> Option<Trained> {
        let codes = self.codes.as_ref()?;
        // No slot is handed out meanwhile and every one handed out is linked (its row
        // written): the rows below `count` can be read and coded, and every later row is
        // coded by its writer, who will find the quantiser installed.
        let q = self.quiesce()?;
        if codes.walks() {
            return Some(Trained::Already);
        }
        let dim = self.dim();
        let own = if with_index { q.count } else { 0 };
        let total = own + extra.len() / dim;
        let step = total.div_ceil(TRAIN_SAMPLE).max(1);
        let mut ranges = Ranges::new(dim);
        for i in (0..total).step_by(step) {
            if i < own {
                // SAFETY: slot `i < count` was claimed before the pause and is linked, so its
                // row is written, and it cannot be rewritten while claims are paused.
                ranges.observe(unsafe { self.slab.row(i as u32) }, 1.0);
            } else {
                let r = i - own;
                ranges.observe(&extra[r * dim..][..dim], scale.get(r).copied().unwrap_or(1.0));
            }
        }
        let sq8 = Sq8::train(&ranges);
        if !sq8.is_valid(dim) {
            codes.refuse();
            return Some(Trained::Refused);
        }
        // SAFETY: as above, rows below `count` are written and not being written; no code is
        // read before `install` sets the quantiser.
        unsafe { codes.install(sq8, &self.slab, q.count) };
        Some(Trained::Now)
    }

    /// This index (just loaded or mapped, not shared yet) with its codes ready: computed
    /// from the vectors (with `sq8` for SQ8, or as F16) unless `stored`, where the table
    /// holds the file's codes already and `sq8` is adopted as it is; then with `check`, every
    /// row must equal its vector coded again, else `Err` names the first that does not.
    pub(crate) fn with_codes(self, sq8: Option<Sq8>, stored: bool, check: bool) -> std::result::Result<Self, u32> {
        let Some(codes) = &self.codes else {
            return Ok(self);
        };
        let rows = self.used();
        if stored {
            if let Some(q) = sq8 {
                codes.adopt(q);
            }
            if check {
                // SAFETY: the index is not shared yet: no row is written concurrently; rows
                // below `used` hold the file's vectors and codes.
                if let Some(i) = unsafe { codes.first_mismatch(&self.slab, rows) } {
                    return Err(i);
                }
            }
            return Ok(self);
        }
        // SAFETY: the index is not shared yet: no row is written or read concurrently; rows
        // below `used` are the loaded vectors.
        unsafe {
            match sq8 {
                Some(q) => {
                    codes.install(q, &self.slab, rows);
                }
                None => codes.fill(&self.slab, rows),
            }
        }
        Ok(self)
    }

    /// Codes slot `slot`'s freshly written row, if the index walks codes (F16, or a trained
    /// SQ8 quantiser).
    ///
    /// # Safety
    /// As [`Slab::write`](crate::store::slab::Slab::write): the caller owns the slot (its row was
    /// just written and is not published yet).
    #[inline]
    pub(crate) unsafe fn write_code(&self, slot: u32) {
        if let Some(codes) = &self.codes {
            // SAFETY: the caller owns the slot; its slab row is written.
            unsafe { codes.write(slot, self.slab.row(slot)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Index, Params};

    #[test]
    fn a_refused_quantiser_stays_refused_through_resize() {
        let kernels = hnswx_kernels::auto_for::<u8>();
        let codes = Codes::new_sq8(4, Metric::L2, 8, kernels).unwrap();
        assert!(codes.untrained() && !codes.is_refused());
        codes.refuse();
        assert!(!codes.untrained());
        let grown = codes.resized(16).unwrap();
        assert!(grown.is_refused() && !grown.untrained());
        let slab = crate::store::slab::Slab::new(4, 16).unwrap();
        let refilled = Codes::new_sq8(4, Metric::L2, 16, kernels).unwrap();
        // SAFETY: nobody reads `refilled` yet; `slab` holds 16 (zero) rows.
        unsafe { refilled.fill_like(&codes, &slab, 0) };
        assert!(refilled.is_refused() && !refilled.untrained());
    }

    #[test]
    fn f16_codes_clamp_to_the_finite_range_and_flush_tiny_values() {
        let v = [
            1e6f32,
            -1e6,
            70000.0,
            65519.0,
            -65504.0,
            1e-9,
            -1e-9,
            1e-5,
            0.1,
            f32::MAX,
        ];
        let mut out = [f16::ZERO; 10];
        encode_f16(&v, &mut out);
        let back: Vec<f32> = out.iter().map(|h| h.to_f32()).collect();
        assert!(back.iter().all(|x| x.is_finite()), "{back:?}");
        assert_eq!(&back[..5], &[F16_MAX, -F16_MAX, F16_MAX, F16_MAX, -F16_MAX]);
        assert_eq!(back[5], 0.0);
        assert_eq!(back[6], 0.0);
        assert_eq!(out[7], f16::from_f32(1e-5));
        assert_eq!(out[8], f16::from_f32(0.1));
        assert_eq!(back[9], F16_MAX);
        // Longer than one conversion chunk, odd length.
        let long: Vec<f32> = (0..201).map(|i| i as f32 * 0.37 - 30.0).collect();
        let mut out = vec![f16::ZERO; 201];
        encode_f16(&long, &mut out);
        assert!(out.iter().zip(&long).all(|(h, &x)| *h == f16::from_f32(x)));
    }

    /// The walk of an F16 index scores the half-precision copies (not the exact rows):
    /// checked on a row whose components `f16` rounds visibly.
    #[test]
    fn f16_walk_scores_the_half_rows() {
        let dim = 5;
        let x = [0.1f32, 0.7001, -0.3337, 1.2345, 0.0123];
        let q = [0.2f32, -0.5, 0.9, 0.3, -1.1];
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            for quant in [Quantization::F16, Quantization::None] {
                let index = Index::new(Params::new(dim, metric).quantization(quant), 4).unwrap();
                index.add(0, &x).unwrap();
                let mut s = index.take_scratch();
                index.load_query(&mut s, &q).unwrap();
                let qp = s.query.as_ptr();
                index.prepare_nav(&mut s, qp);
                assert_eq!(s.nav_on, quant == Quantization::F16);
                let walk = f64::from(index.nav_distance(&mut s, qp, 0));
                // SAFETY: row 0 is written and published (the add returned).
                let row = unsafe { index.slab.row(0) };
                let qv = &s.query[..dim];
                let dist = |r: &[f64]| -> f64 {
                    let qv = qv.iter().map(|&a| f64::from(a));
                    match metric {
                        Metric::L2 => qv.zip(r).map(|(a, b)| (a - b) * (a - b)).sum(),
                        _ => 1.0 - qv.zip(r).map(|(a, b)| a * b).sum::<f64>(),
                    }
                };
                let exact = dist(&row.iter().map(|&a| f64::from(a)).collect::<Vec<_>>());
                let half = dist(
                    &row.iter()
                        .map(|&a| f64::from(f16::from_f32(a).to_f32()))
                        .collect::<Vec<_>>(),
                );
                assert!(
                    (exact - half).abs() > 1e-5,
                    "{metric:?}: the test needs visible rounding"
                );
                let want = if quant == Quantization::F16 { half } else { exact };
                assert!(
                    (walk - want).abs() < 1e-6,
                    "{metric:?} {quant:?}: walk {walk}, want {want}"
                );
            }
        }
    }
}
