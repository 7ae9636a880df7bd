//! Quantised traversal: a second, smaller copy of every vector (8-bit codes) that the graph
//! is walked on, while the exact `f32` rows in the slab re-score the final candidates.
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
//! So a row is `dim` code bytes, padding to 4 bytes, then that row constant (`f32`, zero for
//! inner product), and a query is scored with one kernel, `dot_f32_u8` (see
//! `hnswx_kernels`), followed by one add per row.
//!
//! Codes are written like slab rows: once, by the thread that owns the slot, before the node
//! is published. The quantiser is set once ([`Codes::install`]); until then the index walks
//! the `f32` rows, and no code is read.

use std::ptr::NonNull;
use std::sync::OnceLock;

use hnswx_kernels::{Kernels, Metric, MAX_INT_WEIGHT};

use crate::error::{Error, Result};

use crate::slab::{Zeroed, SLAB_ALIGN};

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
}

impl Quantization {
    /// The name used in files and reports: `none` or `sq8`.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Sq8 => "sq8",
        }
    }

    /// The code in file headers (0 none, 1 SQ8).
    pub(crate) fn code(self) -> u32 {
        match self {
            Quantization::None => 0,
            Quantization::Sq8 => 1,
        }
    }

    /// The inverse of [`code`](Self::code).
    pub(crate) fn from_code(c: u32) -> Option<Quantization> {
        match c {
            0 => Some(Quantization::None),
            1 => Some(Quantization::Sq8),
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
            _ => Err(format!("unknown quantization {s:?} (none, sq8)")),
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
            if l.is_finite() && h.is_finite() && h > l {
                offset.push(l);
                // f64: `h − l` can overflow f32 for components near ±f32::MAX / 2.
                scale.push(((f64::from(h) - f64::from(l)) / 255.0) as f32);
            } else {
                offset.push(if l.is_finite() { l } else { 0.0 });
                scale.push(0.0);
            }
        }
        Sq8 { offset, scale }
    }

    /// Whether the parameters can code anything with every row constant and every
    /// reconstruction finite in `f32`: finite, scales non-negative, `Σ(255·sᵢ)²` and `Σoᵢ²`
    /// (the largest row constant and the offset's squared norm) at most `f32::MAX / 16`.
    pub fn is_valid(&self, dim: usize) -> bool {
        let bound = f64::from(f32::MAX) / 16.0;
        let span: f64 = self.scale.iter().map(|&s| (255.0 * f64::from(s)).powi(2)).sum();
        let off: f64 = self.offset.iter().map(|&o| f64::from(o).powi(2)).sum();
        self.offset.len() == dim
            && self.scale.len() == dim
            && self.offset.iter().all(|o| o.is_finite())
            && self.scale.iter().all(|s| s.is_finite() && *s >= 0.0)
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

/// The code rows of an index, and its quantiser once trained.
pub(crate) struct Codes {
    _owner: Zeroed,
    ptr: NonNull<u8>,
    dim: usize,
    /// Bytes per row: `dim` codes rounded up to 4, the row constant, rounded up to 16.
    stride: usize,
    capacity: usize,
    metric: Metric,
    kernels: &'static Kernels<u8>,
    sq8: OnceLock<Sq8>,
    /// Set when training found the data's range too wide for codes (see
    /// [`Sq8::is_valid`]): the index keeps walking the exact rows and does not try again.
    refused: std::sync::atomic::AtomicBool,
}

// SAFETY: a plain byte buffer (`Zeroed` only points at it) plus immutable parameters; rows are
// written once by the owner of a slot before it is published (release) and read only after
// (acquire), the same protocol as the slab's.
unsafe impl Send for Codes {}
// SAFETY: as above.
unsafe impl Sync for Codes {}

/// Byte offset of the row constant in a code row.
fn norm_offset(dim: usize) -> usize {
    dim.div_ceil(4) * 4
}

impl Codes {
    /// Scores with `kernels` from now on (see [`Index::set_kernel`](crate::Index::set_kernel)).
    pub fn set_kernels(&mut self, kernels: &'static Kernels<u8>) {
        self.kernels = kernels;
    }

    /// Room for `capacity` code rows of `dim` components, nothing trained; `None` if the
    /// size overflows or the allocation fails.
    pub fn new(dim: usize, metric: Metric, capacity: usize, kernels: &'static Kernels<u8>) -> Option<Codes> {
        let stride = (norm_offset(dim) + 4).div_ceil(16) * 16;
        let bytes = stride.checked_mul(capacity.max(1))?;
        if bytes > isize::MAX as usize - SLAB_ALIGN {
            return None;
        }
        let owner = Zeroed::new(bytes)?;
        let ptr = owner.ptr();
        Some(Codes {
            _owner: owner,
            ptr,
            dim,
            stride,
            capacity,
            metric,
            kernels,
            sq8: OnceLock::new(),
            refused: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The trained quantiser, if any (acquire: its codes are visible once this is `Some`).
    #[inline(always)]
    pub fn trained(&self) -> Option<&Sq8> {
        self.sq8.get()
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.stride * self.capacity.max(1)
    }

    /// Whether training was refused (data too wide for codes).
    pub fn refused(&self) -> bool {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.stride
    }

    #[inline(always)]
    fn row_ptr(&self, i: u32) -> *mut u8 {
        debug_assert!((i as usize) < self.capacity);
        self.ptr.as_ptr().wrapping_add(i as usize * self.stride)
    }

    /// Codes `v` into row `i` with the trained quantiser `q`.
    ///
    /// # Safety
    /// As [`Slab::write`](crate::slab::Slab::write): `i < capacity`, and the caller owns slot
    /// `i` exclusively (nobody reads row `i` until it is published after this call, or until
    /// the quantiser is installed, for rows written before).
    pub unsafe fn write(&self, q: &Sq8, i: u32, v: &[f32]) {
        assert!((i as usize) < self.capacity && v.len() == self.dim);
        // SAFETY: row `i` lies in the allocation (asserted) and nobody else touches it (caller).
        let row = unsafe { std::slice::from_raw_parts_mut(self.row_ptr(i), self.stride) };
        let norm = q.encode(v, &mut row[..self.dim]);
        let norm = if self.metric == Metric::L2 { norm } else { 0.0 };
        let at = norm_offset(self.dim);
        row[at..at + 4].copy_from_slice(&norm.to_ne_bytes());
    }

    /// Installs the quantiser after coding rows `0..rows` of `slab` with it (the caller
    /// makes sure no slot among them is being written, and that later rows are coded by
    /// their writers: see `Index::train_locked`). `false` if one was installed already.
    ///
    /// # Safety
    /// No row `0..rows` is written concurrently, and no code is read before this returns
    /// (codes are only read once [`trained`](Self::trained) is `Some`).
    pub unsafe fn install(&self, q: Sq8, slab: &crate::slab::Slab, rows: usize) -> bool {
        if self.sq8.get().is_some() {
            return false;
        }
        debug_assert!(q.is_valid(self.dim));
        for i in 0..rows.min(self.capacity) as u32 {
            // SAFETY: rows below `rows` are written and not being written (caller); no one
            // reads codes until the quantiser is set below.
            unsafe { self.write(&q, i, slab.row(i)) };
        }
        self.sq8.set(q).is_ok()
    }

    /// A copy with room for `capacity` rows (the first `min(capacity, self.capacity)` rows
    /// copied, the quantiser kept).
    pub fn resized(&self, capacity: usize) -> Option<Codes> {
        let out = Codes::new(self.dim, self.metric, capacity, self.kernels)?;
        let bytes = self.stride * self.capacity.min(capacity);
        // SAFETY: both buffers hold at least `bytes` bytes and do not overlap; resizing needs
        // `&mut Index`, so no row is being written.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.ptr.as_ptr(), bytes) };
        if let Some(q) = self.sq8.get() {
            let _ = out.sq8.set(q.clone());
        }
        Some(out)
    }

    /// Prepares the query `q` (`dim` floats) for [`score`](Self::score): its weights,
    /// rounded to `i16` into `wi` (`|wiᵢ| ≤ MAX_INT_WEIGHT`, weight ≈ `scale·wiᵢ`); returns
    /// `(bias, scale)`, `bias` being the constant added to every score. Computed in `f64`;
    /// `None` when the result would not be usable in `f32` (a bias past `f32`'s range, or a
    /// scale that is not a normal float: data of extreme magnitude): the caller then walks
    /// the exact rows.
    pub fn prepare(&self, sq8: &Sq8, q: &[f32], wi: &mut [i16]) -> Option<(f32, f32)> {
        let l2 = self.metric == Metric::L2;
        let weight = |i: usize| -> f64 {
            let (x, o, s) = (f64::from(q[i]), f64::from(sq8.offset[i]), f64::from(sq8.scale[i]));
            if l2 {
                -2.0 * (x - o) * s
            } else {
                -x * s
            }
        };
        let dim = self.dim;
        let mut top = 0.0f64;
        let mut sum = 0.0f64;
        for (i, (&x, &o)) in q.iter().zip(&sq8.offset).enumerate().take(dim) {
            top = top.max(weight(i).abs());
            let (x, o) = (f64::from(x), f64::from(o));
            sum += if l2 { (x - o) * (x - o) } else { x * o };
        }
        let bias = if l2 { sum } else { 1.0 - sum };
        let max = f64::from(MAX_INT_WEIGHT);
        let scale = top / max;
        let usable = bias.is_finite()
            && (bias as f32).is_finite()
            && (top == 0.0 || (scale as f32).is_normal() && (scale as f32).is_finite());
        if !usable {
            return None;
        }
        let inv = if top > 0.0 { max / top } else { 0.0 };
        for (i, o) in wi.iter_mut().enumerate().take(dim) {
            *o = (weight(i) * inv).round().clamp(-max, max) as i16;
        }
        Some((bias as f32, scale as f32))
    }

    /// `out[j]` = the approximate distance from the prepared query (integer weights `wi` and
    /// `scale`, `bias`: see [`prepare`](Self::prepare)) to node `ids[j]`, for every `j`,
    /// scored with the exact `i16 × u8` kernel.
    ///
    /// # Safety
    /// The quantiser is trained; `wi` holds `dim` weights from `prepare`; every id is below
    /// the capacity and its row was published before the caller learned the id; `out` holds
    /// `ids.len()` floats.
    #[inline(always)]
    pub unsafe fn score(&self, wi: *const i16, scale: f32, bias: f32, ids: &[u32], out: *mut f32) {
        debug_assert!(self.sq8.get().is_some());
        debug_assert!(ids.iter().all(|&id| (id as usize) < self.capacity));
        let at = norm_offset(self.dim);
        // SAFETY: forwarded from the caller: rows in bounds and published, `wi` (bounded by
        // `prepare`) and `out` sized.
        unsafe {
            self.kernels
                .dot_i16_u8_many_unchecked(wi, self.ptr.as_ptr(), self.stride, self.dim, ids, out);
            for (j, &id) in ids.iter().enumerate() {
                let norm = self.row_ptr(id).add(at).cast::<f32>().read();
                let o = out.add(j);
                *o = bias + scale * *o + norm;
            }
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

    /// Whether searches walk codes now (a trained quantiser).
    pub fn is_trained(&self) -> bool {
        self.codes.as_ref().is_some_and(|c| c.trained().is_some())
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
            .is_some_and(|c| c.trained().is_none() && !c.refused() && self.len() + rows >= AUTO_TRAIN_ROWS)
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
        if codes.trained().is_some() {
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
            codes.refused.store(true, std::sync::atomic::Ordering::Relaxed);
            return Some(Trained::Refused);
        }
        // SAFETY: as above, rows below `count` are written and not being written; no code is
        // read before `install` sets the quantiser.
        unsafe { codes.install(sq8, &self.slab, q.count) };
        Some(Trained::Now)
    }

    /// This index (just loaded, not shared yet) with its codes computed from `sq8`.
    pub(crate) fn with_codes(self, sq8: Option<Sq8>) -> crate::Index {
        if let (Some(codes), Some(q)) = (&self.codes, sq8) {
            // SAFETY: the index is not shared yet: no row is written or read concurrently;
            // rows below `used` are the loaded vectors.
            unsafe { codes.install(q, &self.slab, self.used()) };
        }
        self
    }

    /// Codes slot `slot`'s freshly written row, if the index has a trained quantiser.
    ///
    /// # Safety
    /// As [`Slab::write`](crate::slab::Slab::write): the caller owns the slot (its row was
    /// just written and is not published yet).
    #[inline]
    pub(crate) unsafe fn write_code(&self, slot: u32) {
        if let Some(codes) = &self.codes {
            if let Some(q) = codes.trained() {
                // SAFETY: the caller owns the slot; its slab row is written.
                unsafe { codes.write(q, slot, self.slab.row(slot)) };
            }
        }
    }
}
