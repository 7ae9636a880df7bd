//! [`Index`]: the struct, its constructor and its public API. The algorithms live next door:
//! [`insert`](crate::graph::insert) and [`search`](crate::graph::search).

use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use crate::error::{Error, Result};
use crate::graph::scratch::{Scratch, ScratchGuard, ScratchPool};
use crate::graph::{Graph, MAX_LEVEL};
use crate::params::Params;
use crate::store::cells::Cells;
use crate::store::codes::{Codes, Quantization};
use crate::store::slab::{row_stride, Slab};
use hnswx_kernels::{Metric, MetricKernel};

/// Most nodes an index can hold: ids are 31-bit (the search pool keeps a flag in the top bit).
pub const MAX_CAPACITY: usize = (1 << 31) - 1;

/// `entry` when the index is empty.
pub(crate) const NO_ENTRY: u64 = u64::MAX;

/// Packs the entry point: level in the high half, node id in the low half.
#[inline(always)]
pub(crate) fn pack_entry(id: u32, level: usize) -> u64 {
    ((level as u64) << 32) | u64::from(id)
}

/// Unpacks [`pack_entry`].
#[inline(always)]
pub(crate) fn unpack_entry(e: u64) -> (u32, usize) {
    (e as u32, (e >> 32) as usize)
}

/// One search result: the caller's label and its distance to the query (smaller is closer;
/// squared Euclidean for L2, `1 − a·b` for inner product and cosine).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The label the vector was added with.
    pub label: u64,
    /// Distance to the query.
    pub distance: f32,
}

/// Label bookkeeping, changed under one mutex: which slot each live label owns, which
/// removed nodes wait for consolidation, which slots are free again, and whether a save or a
/// consolidation is waiting for running inserts to finish (no slot is handed out
/// meanwhile).
#[derive(Default)]
pub(crate) struct Slots {
    /// Live labels.
    pub by_label: HashMap<u64, u32>,
    /// Removed labels that `restore` can bring back (their node still exists).
    pub removed: HashMap<u64, u32>,
    /// Removed nodes (restorable or not) still in the graph, until consolidated.
    pub pending: HashSet<u32>,
    /// Slots consolidated away: reused by the next adds.
    pub free: Vec<u32>,
    /// Slots consolidated away whose grace period is still running (free soon).
    pub draining: Vec<u32>,
    /// Claims are paused (a save, a consolidation: see [`Index::quiesce`]).
    pub paused: bool,
    /// Claimers waiting for the pause to end. The next pause lets them through first, so
    /// saves in a loop cannot starve writers.
    pub waiting: usize,
}

/// What a slot holds, as saved in a file (format version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SlotKind {
    /// A live node.
    Live = 0,
    /// Removed, restorable: its label is in `Slots::removed`.
    Removed = 1,
    /// Removed and not restorable (replaced by an update or re-added under its label).
    Hidden = 2,
    /// Consolidated away: free for reuse.
    Free = 3,
}

/// Largest squared Euclidean norm a stored vector or query may have under L2 and inner
/// product: `f32::MAX / 8`, so that `|a − b|² ≤ 2|a|² + 2|b|²` and `|a·b| ≤ |a||b|` stay
/// finite in `f32` for any two accepted vectors, with room for rounding. (A norm of about
/// 6.5e18.)
pub(crate) const MAX_SQUARED_NORM: f64 = f32::MAX as f64 / 8.0;

thread_local! {
    /// Addresses of the indexes whose progress callbacks this thread is running, innermost
    /// last (callbacks of different indexes may nest). Calls that would wait for such a
    /// batch to finish are refused from inside it.
    static IN_PROGRESS_CALLBACK: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks the current thread as running `index`'s progress callback until dropped (also on
/// unwind).
pub(crate) struct CallbackScope;

impl CallbackScope {
    pub(crate) fn enter(index: &Index) -> CallbackScope {
        IN_PROGRESS_CALLBACK.with(|c| c.borrow_mut().push(index as *const Index as usize));
        CallbackScope
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        let _ = IN_PROGRESS_CALLBACK.try_with(|c| c.borrow_mut().pop());
    }
}

/// A quiesced index (see [`Index::quiesce`]): nodes `0..count` are all linked; no slot is
/// handed out until this drops or [`resume_claims`](Self::resume_claims) is called, and no
/// repair, consolidation or other quiesce runs until it drops.
pub(crate) struct Quiesced<'a> {
    index: &'a Index,
    /// Nodes in the snapshot.
    pub count: usize,
    /// Claims are still paused (cleared by [`resume_claims`](Self::resume_claims)).
    claims_paused: bool,
    _maintenance: MutexGuard<'a, ()>,
}

impl Quiesced<'_> {
    /// Lets `add`s claim slots again while this guard still holds repairs and consolidations
    /// (and other saves) back: for the part of a save that no longer reads the index (the
    /// fsync, the rename), so writers do not wait on the disk.
    pub(crate) fn resume_claims(&mut self) {
        if std::mem::replace(&mut self.claims_paused, false) {
            self.index.lock_slots().paused = false;
            self.index.resumed.notify_all();
        }
    }
}

impl Drop for Quiesced<'_> {
    fn drop(&mut self) {
        self.resume_claims();
    }
}

/// An HNSW index over `f32` vectors, safe to insert into and search from many threads at
/// once.
///
/// ```
/// use hnswx::{Index, Metric, Params};
///
/// let index = Index::new(Params::new(2, Metric::L2), 100).unwrap();
/// index.add(10, &[0.0, 0.0]).unwrap();
/// index.add(11, &[1.0, 0.0]).unwrap();
/// index.add(12, &[5.0, 5.0]).unwrap();
/// let hits = index.search(&[0.9, 0.1], 2, 16).unwrap();
/// assert_eq!(hits[0].label, 11);
/// assert_eq!(hits[1].label, 10);
/// ```
pub struct Index {
    pub(crate) params: Params,
    pub(crate) kernel: MetricKernel,
    pub(crate) slab: Slab,
    /// The codes the graph is walked on (`Quantization::Sq8` or `F16`), else `None`.
    pub(crate) codes: Option<Codes>,
    pub(crate) graph: Graph,
    /// Label of each slot, written before the slot is published.
    pub(crate) labels: Cells<AtomicU64>,
    /// Slots handed out (nodes added or being added, removed, or free again): the high-water
    /// mark of slot ids.
    pub(crate) used: AtomicUsize,
    /// Live vectors (what `len` says).
    pub(crate) live: AtomicUsize,
    /// Removed nodes still in the graph (not consolidated yet): while non-zero, searches
    /// use the path that skips them.
    pub(crate) hidden: AtomicUsize,
    /// Removals so far: a search that sees it change re-checks its results.
    pub(crate) removals: AtomicU64,
    /// The entry point ([`pack_entry`]) or [`NO_ENTRY`].
    pub(crate) entry: AtomicU64,
    /// Held by an insert whose node tops the graph, until it has become the entry point.
    pub(crate) top: Mutex<()>,
    /// Built on first use for a mapped index (opening stays O(1) in the labels).
    slots: OnceLock<Mutex<Slots>>,
    /// Signalled when a save stops pausing slot claims.
    resumed: Condvar,
    /// Held by `save`, `export_hnswlib` and `repair_connectivity`: they exclude each other.
    pub(crate) maintenance: Mutex<()>,
    /// Nodes added since the last connectivity repair.
    pub(crate) unrepaired: AtomicUsize,
    /// Continues the level stream when the capacity grows.
    level_rng: Mutex<Xoshiro256PlusPlus>,
    /// Levels drawn from the stream so far (the capacity, unless the index was loaded).
    levels_drawn: usize,
    pub(crate) scratch: ScratchPool,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("params", &self.params)
            .field("kernel", &self.kernel.isa())
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// Draws `n` levels `⌊−ln(U)·mL⌋`, `U` uniform in (0, 1], clamped to [`MAX_LEVEL`].
pub(crate) fn draw_levels(rng: &mut Xoshiro256PlusPlus, ml: f64, n: usize, out: &mut Vec<u8>) {
    out.extend((0..n).map(|_| {
        let u = ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        ((-u.ln() * ml).floor() as usize).min(MAX_LEVEL) as u8
    }));
}

impl Slots {
    /// Slots outside the graph: free, or to be freed when a grace period ends.
    pub(crate) fn outside(&self) -> impl Iterator<Item = u32> + '_ {
        self.free.iter().chain(&self.draining).copied()
    }

    /// What each of the slots `0..labels.len()` holds, for a file. Caller: claims paused.
    pub(crate) fn kinds(&self, graph: &Graph, labels: &[AtomicU64]) -> Vec<SlotKind> {
        let free: HashSet<u32> = self.outside().collect();
        (0..labels.len() as u32)
            .map(|slot| {
                let label = labels[slot as usize].load(Ordering::Relaxed);
                if !graph.is_removed(slot) {
                    SlotKind::Live
                } else if free.contains(&slot) {
                    SlotKind::Free
                } else if self.removed.get(&label) == Some(&slot) {
                    SlotKind::Removed
                } else {
                    // Pending, or an update's new node not shown yet.
                    SlotKind::Hidden
                }
            })
            .collect()
    }
}

/// `Error::OutOfMemory` for a slab of `capacity` rows of `dim` components.
pub(crate) fn slab_oom(dim: usize, capacity: usize) -> Error {
    Error::OutOfMemory {
        what: "vector slab",
        bytes: row_stride(dim).saturating_mul(capacity).saturating_mul(4),
    }
}

/// The code table an index with `params` needs for `capacity` slots (`None` without
/// quantisation), or `Error::OutOfMemory`.
pub(crate) fn new_codes(params: &Params, capacity: usize) -> Result<Option<Codes>> {
    match params.quantization {
        Quantization::None => Ok(None),
        Quantization::Sq8 => {
            let kernels = hnswx_kernels::select_for::<u8>(params.kernel)?;
            Codes::new_sq8(params.dim, params.metric, capacity, kernels)
                .map(Some)
                .ok_or(Error::OutOfMemory {
                    what: "code table",
                    bytes: params.dim.saturating_add(20).saturating_mul(capacity),
                })
        }
        Quantization::F16 => {
            let kernels = hnswx_kernels::select_for::<hnswx_kernels::f16>(params.kernel)?;
            Codes::new_f16(params.dim, params.metric, capacity, kernels)
                .map(Some)
                .ok_or(Error::OutOfMemory {
                    what: "code table",
                    bytes: params.dim.saturating_add(16).saturating_mul(2).saturating_mul(capacity),
                })
        }
    }
}

/// `n` zeroed labels, or `Error::OutOfMemory`.
pub(crate) fn zeroed_labels(n: usize) -> Result<Cells<AtomicU64>> {
    // SAFETY: zero bytes are a valid AtomicU64.
    unsafe { Cells::zeroed(n) }.ok_or(Error::OutOfMemory {
        what: "labels",
        bytes: n.saturating_mul(8),
    })
}

/// `n` levels drawn from `rng`, appended to `out`, or `Error::OutOfMemory`.
fn try_draw_levels(rng: &mut Xoshiro256PlusPlus, ml: f64, n: usize, out: &mut Vec<u8>) -> Result<()> {
    out.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        what: "levels",
        bytes: n,
    })?;
    draw_levels(rng, ml, n, out);
    Ok(())
}

/// The capacity `reserve(additional)` grows to from `old` with `len` nodes held: at least
/// `len + additional`, else 1.5 × `old`, never past [`MAX_CAPACITY`]; `None` if `old`
/// suffices.
pub(crate) fn grown_capacity(len: usize, additional: usize, old: usize) -> Result<Option<usize>> {
    let want = len
        .checked_add(additional)
        .filter(|&c| c <= MAX_CAPACITY)
        .ok_or_else(|| Error::InvalidParameter {
            name: "capacity",
            reason: format!("more than {MAX_CAPACITY}"),
        })?;
    if want <= old {
        return Ok(None);
    }
    Ok(Some(want.max(old.saturating_add(old / 2)).min(MAX_CAPACITY)))
}

impl Index {
    /// An empty index with room for `capacity` vectors (see [`reserve`](Self::reserve) to
    /// grow it). Memory for the whole capacity is reserved here (zeroed pages, which the
    /// operating system provides as they are first written); [`Error::OutOfMemory`] if it
    /// cannot be.
    pub fn new(params: Params, capacity: usize) -> Result<Index> {
        params.validate()?;
        if capacity > MAX_CAPACITY {
            return Err(Error::InvalidParameter {
                name: "capacity",
                reason: format!("{capacity} is more than {MAX_CAPACITY}"),
            });
        }
        let kernel = hnswx_kernels::select(params.kernel)?.metric(params.metric);
        // The largest table first, so an impossible capacity fails before any other work.
        let slab = Slab::new(params.dim, capacity).ok_or_else(|| slab_oom(params.dim, capacity))?;
        let codes = new_codes(&params, capacity)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);
        let mut levels = Vec::new();
        try_draw_levels(&mut rng, params.level_multiplier(), capacity, &mut levels)?;
        let graph = Graph::new(params.m, &levels)?;
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        Ok(Index {
            kernel,
            slab,
            codes,
            graph,
            labels: zeroed_labels(capacity)?,
            used: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            hidden: AtomicUsize::new(0),
            removals: AtomicU64::new(0),
            entry: AtomicU64::new(NO_ENTRY),
            top: Mutex::new(()),
            // The label map grows with the labels: no table for the whole capacity up front.
            slots: OnceLock::from(Mutex::new(Slots::default())),
            resumed: Condvar::new(),
            maintenance: Mutex::new(()),
            unrepaired: AtomicUsize::new(0),
            level_rng: Mutex::new(rng),
            levels_drawn: capacity,
            scratch: ScratchPool::new(2 * threads + 2),
            params,
        }
        .with_scratch_limit())
    }

    /// Bounds the scratches the pool keeps beyond its lock-free slots so that their visited
    /// arrays (2 bytes per slot each) hold at most as much memory as the vectors, or 64 MiB.
    fn with_scratch_limit(self) -> Index {
        self.set_scratch_limit();
        self
    }

    /// [`with_scratch_limit`](Self::with_scratch_limit) for the current capacity (after it
    /// changed).
    pub(crate) fn set_scratch_limit(&self) {
        let budget = self.slab.bytes().max(64 << 20);
        let per_scratch = 2 * self.capacity() + 4 * self.slab.stride() + 4096;
        self.scratch.set_overflow_limit((budget / per_scratch).max(64));
    }

    /// An index from loaded, already checked parts (capacity = `labels.len()`). `kinds`:
    /// what each slot holds (format version 2; `None` = every slot live). `by_label`: the
    /// live labels' map if the caller built it, else it is built here when some slot is not
    /// live, or on first use. `codes`: a code table of `labels.len()` rows the caller made
    /// (a loader with stored codes; see `Index::with_codes`), else a new one if `params`
    /// ask for codes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        params: Params,
        slab: Slab,
        codes: Option<Codes>,
        graph: Graph,
        labels: Cells<AtomicU64>,
        kinds: Option<&[SlotKind]>,
        by_label: Option<HashMap<u64, u32>>,
        entry: u64,
        rng: Xoshiro256PlusPlus,
        levels_drawn: usize,
    ) -> std::result::Result<Index, Error> {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let kernel = hnswx_kernels::auto().metric(params.metric);
        let used = labels.len();
        let codes = match codes {
            Some(c) => Some(c),
            None => new_codes(&params, used)?,
        };
        let kinds = kinds.filter(|k| k.iter().any(|&k| k != SlotKind::Live));
        let (mut live, mut hidden) = (used, 0);
        let slots = match (kinds, by_label) {
            (None, None) => OnceLock::new(),
            (None, Some(by_label)) => OnceLock::from(Mutex::new(Slots {
                by_label,
                ..Slots::default()
            })),
            (Some(kinds), _) => {
                let mut slots = Slots::default();
                for (i, &kind) in kinds.iter().enumerate() {
                    let (slot, label) = (i as u32, labels[i].load(Ordering::Relaxed));
                    if kind != SlotKind::Live {
                        graph.mark_loaded_removed(slot);
                        live -= 1;
                    }
                    match kind {
                        SlotKind::Live => {
                            slots.by_label.insert(label, slot);
                        }
                        SlotKind::Removed => {
                            slots.removed.insert(label, slot);
                            slots.pending.insert(slot);
                        }
                        SlotKind::Hidden => {
                            slots.pending.insert(slot);
                        }
                        SlotKind::Free => slots.free.push(slot),
                    }
                }
                hidden = slots.pending.len();
                OnceLock::from(Mutex::new(slots))
            }
        };
        Ok(Index {
            kernel,
            slab,
            codes,
            graph,
            used: AtomicUsize::new(used),
            live: AtomicUsize::new(live),
            hidden: AtomicUsize::new(hidden),
            removals: AtomicU64::new(0),
            labels,
            entry: AtomicU64::new(entry),
            top: Mutex::new(()),
            slots,
            resumed: Condvar::new(),
            maintenance: Mutex::new(()),
            unrepaired: AtomicUsize::new(0),
            level_rng: Mutex::new(rng),
            levels_drawn,
            scratch: ScratchPool::new(2 * threads + 2),
            params,
        }
        .with_scratch_limit())
    }

    /// Levels drawn from the seed's stream so far.
    pub(crate) fn levels_drawn(&self) -> usize {
        self.levels_drawn
    }

    /// Waits until every node added so far is linked and returns a guard under which no slot
    /// is handed out and no repair runs: what `save` and `export_hnswlib` write from.
    /// Searches go on meanwhile; `add`s wait for the guard to drop (or to resume claims).
    /// `None` when called from inside this index's own `add_batch` progress callback, whose
    /// batch cannot finish until the callback returns.
    pub(crate) fn quiesce(&self) -> Option<Quiesced<'_>> {
        if self.inside_own_callback() {
            return None;
        }
        let maintenance = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        let count = {
            let mut slots = self.lock_slots();
            // Claimers held back by the previous pause go first (each claims under the lock
            // it wakes with, then counts itself out); without this a thread saving in a loop
            // re-paused before they woke and starved them (seen with 16 cores). Bounded, so
            // a stream of new claimers cannot starve the save either.
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
            while slots.waiting > 0 {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                slots = self
                    .resumed
                    .wait_timeout(slots, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            slots.paused = true;
            self.used.load(Ordering::Acquire)
        };
        // Built now, so that a panic below still un-pauses the claims.
        let q = Quiesced {
            index: self,
            count,
            claims_paused: true,
            _maintenance: maintenance,
        };
        // Every slot claimed before the pause is linked first: a node nobody has started is
        // linked right here (its batch may sit in a rayon queue behind workers that are
        // blocked waiting for this very pause); one being linked elsewhere is waited for.
        // The slots lock is not held meanwhile, so progress callbacks can still read.
        let mut helper = None;
        for i in 0..count as u32 {
            if self.graph.is_linked(i) {
                continue;
            }
            if self.graph.try_start(i) {
                let s = helper.get_or_insert_with(|| self.take_scratch());
                self.link_started(i, s);
                continue;
            }
            let backoff = crossbeam_utils::Backoff::new();
            let mut nap = std::time::Duration::from_micros(20);
            while !self.graph.is_linked(i) {
                if backoff.is_completed() {
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(std::time::Duration::from_millis(2));
                } else {
                    backoff.snooze();
                }
            }
        }
        Some(q)
    }

    /// `true` while this thread runs this index's `add_batch` progress callback.
    pub(crate) fn inside_own_callback(&self) -> bool {
        let me = self as *const Index as usize;
        IN_PROGRESS_CALLBACK.with(|c| c.borrow().contains(&me))
    }

    /// Makes room for `additional` more vectors than the index holds now. Needs `&mut self`:
    /// every table is reallocated and copied. On error (too large, or out of memory) the
    /// index is unchanged.
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        let old = self.capacity();
        let occupied = self.used() - self.lock_slots().free.len();
        let Some(cap) = grown_capacity(occupied, additional, old)? else {
            return Ok(());
        };
        let slab = self.slab.resized(cap).ok_or_else(|| slab_oom(self.dim(), cap))?;
        let codes = match &self.codes {
            Some(c) => Some(c.resized(cap).ok_or(Error::OutOfMemory {
                what: "code table",
                bytes: c.bytes_for(cap),
            })?),
            None => None,
        };
        let mut levels = Vec::new();
        levels.try_reserve_exact(cap).map_err(|_| Error::OutOfMemory {
            what: "levels",
            bytes: cap,
        })?;
        levels.extend((0..old).map(|i| self.graph.level(i as u32) as u8));
        // Draw from a copy of the stream: it only moves on once nothing can fail any more.
        let mut rng = self.level_rng.get_mut().unwrap_or_else(|e| e.into_inner()).clone();
        draw_levels(&mut rng, self.params.level_multiplier(), cap - old, &mut levels);
        let graph = self.graph.resized(&levels)?;
        let labels = zeroed_labels(cap)?;
        for (dst, src) in labels.iter().zip(self.labels.iter()) {
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        *self.level_rng.get_mut().unwrap_or_else(|e| e.into_inner()) = rng;
        self.levels_drawn += cap - old;
        self.slab = slab;
        self.codes = codes;
        self.graph = graph;
        self.labels = labels;
        self.scratch.clear();
        self.set_scratch_limit();
        Ok(())
    }

    /// The construction parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Components per vector.
    pub fn dim(&self) -> usize {
        self.params.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.params.metric
    }

    /// The distance kernels in use.
    pub fn kernel(&self) -> MetricKernel {
        self.kernel
    }

    /// The instruction set of the kernels that walk the codes (`None` without quantisation);
    /// [`kernel`](Self::kernel) gives the exact rows' (the rerank's).
    pub fn codes_isa(&self) -> Option<crate::Isa> {
        self.codes.as_ref().map(|c| c.isa())
    }

    /// Switches the distance kernels (those of the codes too) to `choice`: a loaded or mapped
    /// index starts on [`Choice::Auto`](crate::Choice::Auto); this lets a benchmark compare
    /// instruction sets on one saved graph. Results can differ in the last bits between
    /// instruction sets, never more.
    ///
    /// Errors: [`Error::Kernel`] when this CPU cannot run `choice` (nothing is changed).
    pub fn set_kernel(&mut self, choice: crate::Choice) -> Result<()> {
        let kernel = hnswx_kernels::select(choice)?.metric(self.params.metric);
        if let Some(c) = &mut self.codes {
            c.set_kernels(choice)?;
        }
        self.kernel = kernel;
        self.params.kernel = choice;
        Ok(())
    }

    /// Live vectors: added (including any still being linked by a concurrent `add`) and
    /// not removed.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// `true` if the index holds no live vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots handed out so far (live, removed and free ones): node ids are below this.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Vectors the index has room for.
    pub fn capacity(&self) -> usize {
        self.graph.capacity()
    }

    /// `true` if `label` was added.
    pub fn contains(&self, label: u64) -> bool {
        self.lock_slots().by_label.contains_key(&label)
    }

    /// The live labels (added and not removed), in no particular order. O(len); for
    /// bindings and tools that list an index (hnswlib's `get_ids_list`).
    ///
    /// ```
    /// use hnswx::{Index, Metric, Params};
    /// let index = Index::new(Params::new(1, Metric::L2), 10).unwrap();
    /// index.add_batch(&[3, 1, 2], &[0.0, 1.0, 2.0]).unwrap();
    /// index.remove(2).unwrap();
    /// let mut labels = index.labels();
    /// labels.sort();
    /// assert_eq!(labels, [1, 3]);
    /// assert_eq!(index.removed_labels(), [2]);
    /// ```
    pub fn labels(&self) -> Vec<u64> {
        self.lock_slots().by_label.keys().copied().collect()
    }

    /// The removed labels that [`restore`](Self::restore) can still bring back (removed, not
    /// yet consolidated away, not re-added or updated since), in no particular order.
    pub fn removed_labels(&self) -> Vec<u64> {
        self.lock_slots().removed.keys().copied().collect()
    }

    /// Checks row-major `vectors` as [`add_batch`](Self::add_batch) does before adding
    /// anything (a whole number of `dim`-long rows, finite components, and the metric's
    /// norm rule), without adding them. A caller that adds a large batch in pieces checks it
    /// whole first, so that a bad row in a later piece cannot leave the earlier pieces in.
    ///
    /// Errors: [`Error::Dimension`], [`Error::NonFinite`], [`Error::NormTooLarge`] (L2,
    /// inner product), [`Error::ZeroVector`] (cosine).
    pub fn check_vectors(&self, vectors: &[f32]) -> Result<()> {
        let dim = self.dim();
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::Dimension {
                expected: dim,
                got: vectors.len() % dim,
            });
        }
        self.row_scales(vectors).map(|_| ())
    }

    /// The stored vector of `label` (normalised, under the cosine metric).
    pub fn get(&self, label: u64) -> Result<Vec<f32>> {
        let slots = self.lock_slots();
        let &slot = slots.by_label.get(&label).ok_or(Error::UnknownLabel(label))?;
        // SAFETY: a label is in the map only after its row was written (both under this
        // lock, which we hold), and rows are never written again.
        Ok(unsafe { self.slab.row(slot) }.to_vec())
    }

    /// The labels linked from `label` on `layer`, in stored order (empty above the node's
    /// level). For diagnostics and tests: it locks the label map.
    pub fn neighbours(&self, label: u64, layer: usize) -> Result<Vec<u64>> {
        let slot = *self
            .lock_slots()
            .by_label
            .get(&label)
            .ok_or(Error::UnknownLabel(label))?;
        if layer > self.graph.level(slot) {
            return Ok(Vec::new());
        }
        let row = self.graph.row(slot, layer);
        Ok((0..crate::graph::count(row))
            .map(|j| self.labels[crate::graph::link(row, j) as usize].load(Ordering::Relaxed))
            .collect())
    }

    /// The top layer of `label`'s node.
    pub fn level(&self, label: u64) -> Result<usize> {
        let slot = *self
            .lock_slots()
            .by_label
            .get(&label)
            .ok_or(Error::UnknownLabel(label))?;
        Ok(self.graph.level(slot))
    }

    /// Bytes of memory the index holds: vector slab, graph, labels and label map (estimated
    /// at its allocated size), for the full capacity.
    pub fn memory_bytes(&self) -> usize {
        let map = self.lock_slots().by_label.capacity() * (8 + 4 + 1);
        let codes = self.codes.as_ref().map_or(0, |c| c.bytes());
        self.slab.bytes() + codes + self.graph.bytes() + self.labels.len() * 8 + map
    }

    /// Adds `vector` under `label`. Safe to call from many threads at once, and while other
    /// threads search.
    ///
    /// Errors (the index is unchanged): [`Error::Dimension`], [`Error::NonFinite`],
    /// [`Error::NormTooLarge`] (L2, inner product), [`Error::ZeroVector`] (cosine),
    /// [`Error::DuplicateLabel`] (labels are never overwritten), [`Error::CapacityExhausted`],
    /// [`Error::InsideProgressCallback`].
    pub fn add(&self, label: u64, vector: &[f32]) -> Result<()> {
        self.refuse_inside_callback()?;
        let mut s = self.take_scratch();
        self.load_query(&mut s, vector)?;
        let slot = {
            let mut slots = self.lock_slots_for_claim();
            slots.by_label.try_reserve(1).map_err(|_| Error::OutOfMemory {
                what: "label map",
                bytes: slots.by_label.capacity().saturating_mul(2 * 13),
            })?;
            if slots.by_label.contains_key(&label) {
                return Err(Error::DuplicateLabel(label));
            }
            let slot = self.claim_slots(&mut slots, 1)?[0];
            // SAFETY: `slot` was just claimed: no other thread knows it (a reused slot is
            // unreachable and no reader that saw it is left), so nobody reads or writes its
            // row until it is published by `insert_node`.
            unsafe {
                self.slab.write(slot, &s.query[..self.dim()]);
                self.write_code(slot);
            }
            self.labels[slot as usize].store(label, Ordering::Relaxed);
            self.bind_label(&mut slots, label, slot);
            slot
        };
        self.insert_node(slot, &mut s);
        drop(s);
        self.unrepaired.fetch_add(1, Ordering::Relaxed);
        self.auto_train(&[], &[]);
        Ok(())
    }

    /// Adds many vectors (`vectors` is row-major, `labels.len()` rows of `dim`), linking them
    /// in parallel on the current rayon pool (wrap the call in `ThreadPool::install` to choose
    /// the threads). Every row is checked first: on error nothing is added.
    ///
    /// When the graph has grown by an eighth since the last repair (always, for a batch that
    /// large), it ends with [`repair_connectivity`](Self::repair_connectivity), so a stream
    /// of small batches costs no more than one big one.
    ///
    /// ```
    /// use hnswx::{Index, Metric, Params};
    /// let index = Index::new(Params::new(2, Metric::L2), 10).unwrap();
    /// index.add_batch(&[1, 2, 3], &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]).unwrap();
    /// assert_eq!(index.len(), 3);
    /// ```
    pub fn add_batch(&self, labels: &[u64], vectors: &[f32]) -> Result<()> {
        self.add_batch_with_progress(labels, vectors, |_| {})
    }

    /// [`add_batch`](Self::add_batch) that reports progress: `progress(done)` is called from
    /// the inserting threads every 1,024 linked vectors and once at the end.
    ///
    /// The callback may search this index and read it (`len`, `contains`, `get`, …) and may
    /// do anything to other indexes. It may not add to or save this index, whose batch
    /// cannot finish until the callback returns: `add`/`add_batch` return
    /// [`Error::InsideProgressCallback`], `save`/`export_hnswlib` return
    /// [`FileError::InsideProgressCallback`](crate::FileError::InsideProgressCallback).
    ///
    /// If the callback (or anything else in the batch) panics, the panic reaches the caller
    /// only after every vector of the batch has been linked: the batch is then complete,
    /// searchable and saveable, as if it had succeeded.
    pub fn add_batch_with_progress(
        &self,
        labels: &[u64],
        vectors: &[f32],
        progress: impl Fn(usize) + Sync,
    ) -> Result<()> {
        self.refuse_inside_callback()?;
        let dim = self.dim();
        if vectors.len() != labels.len() * dim {
            return Err(Error::Dimension {
                expected: dim,
                got: vectors.len() / labels.len().max(1),
            });
        }
        let rows = || vectors.chunks_exact(dim);
        let scale = self.row_scales(vectors)?;
        // An untrained quantiser that this batch brings to enough rows trains first (on the
        // batch too), so the batch is linked walking codes — once the batch is known to be
        // accepted (the checks run again when the slots are claimed).
        if self.needs_training(labels.len()) {
            self.check_claimable(&self.lock_slots_for_claim(), labels)?;
            self.auto_train(vectors, &scale);
        }
        let claimed = {
            let mut slots = self.lock_slots_for_claim();
            self.check_claimable(&slots, labels)?;
            slots
                .by_label
                .try_reserve(labels.len())
                .map_err(|_| Error::OutOfMemory {
                    what: "label map",
                    bytes: labels.len().saturating_mul(2 * 13),
                })?;
            let claimed = self.claim_slots(&mut slots, labels.len())?;
            let mut row = vec![0.0f32; dim];
            for (i, ((v, &label), &slot)) in rows().zip(labels).zip(&claimed).enumerate() {
                let v = match scale.get(i) {
                    Some(&s) => {
                        row.iter_mut().zip(v).for_each(|(o, &x)| *o = x * s);
                        &row[..]
                    }
                    None => v,
                };
                // SAFETY: the claimed slots are unknown to other threads until `insert_node`
                // publishes them (a reused one is unreachable, and no reader that saw it is
                // left).
                unsafe {
                    self.slab.write(slot, v);
                    self.write_code(slot);
                }
                self.labels[slot as usize].store(label, Ordering::Relaxed);
                self.bind_label(&mut slots, label, slot);
            }
            claimed
        };
        let done = AtomicUsize::new(0);
        let tick = || {
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(1024) || d == labels.len() {
                let _scope = CallbackScope::enter(self);
                progress(d);
            }
        };
        let linked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if rayon::current_num_threads() == 1 {
                let mut s = self.take_scratch();
                claimed.iter().for_each(|&slot| {
                    self.insert_node(slot, &mut s);
                    tick();
                });
            } else {
                claimed.par_iter().for_each_init(
                    || self.take_scratch(),
                    |s, &slot| {
                        self.insert_node(slot, s);
                        tick();
                    },
                );
            }
        }));
        if let Err(panic) = linked {
            // Rayon has joined every worker: no node of the batch is being inserted now.
            // Link the ones the panic left out (their labels are already in the map), so
            // that they can be found and `save` never waits for them.
            let rest: Vec<u32> = claimed
                .iter()
                .copied()
                .filter(|&slot| !self.graph.is_linked(slot))
                .collect();
            let relinked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rest.par_iter()
                    .for_each_init(|| self.take_scratch(), |s, &slot| self.insert_node(slot, s));
            }));
            if relinked.is_err() {
                // Inserting itself panics (a bug): mark what is left finished so that saves
                // never wait for it; those nodes stay unreachable until a repair.
                rest.iter().for_each(|&slot| {
                    if self.graph.try_start(slot) {
                        self.graph.set_linked(slot);
                    }
                });
            }
            self.after_batch(labels.len());
            std::panic::resume_unwind(panic);
        }
        self.after_batch(labels.len());
        Ok(())
    }

    /// Counts `n` new nodes and repairs connectivity once the graph has grown by an eighth
    /// since the last repair.
    fn after_batch(&self, n: usize) {
        let pending = self.unrepaired.fetch_add(n, Ordering::Relaxed) + n;
        if pending.saturating_mul(8) >= self.used() {
            self.repair_connectivity();
        }
    }

    /// `Err` unless a batch of `labels` can be claimed now (caller holds the slots lock):
    /// room for every row, and no label already live or repeated in the batch.
    fn check_claimable(&self, slots: &Slots, labels: &[u64]) -> Result<()> {
        if self.capacity() - self.used.load(Ordering::Relaxed) + slots.free.len() < labels.len() {
            return Err(Error::CapacityExhausted {
                capacity: self.capacity(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        seen.try_reserve(labels.len()).map_err(|_| Error::OutOfMemory {
            what: "label check",
            bytes: labels.len().saturating_mul(2 * 13),
        })?;
        match labels
            .iter()
            .find(|&&l| slots.by_label.contains_key(&l) || !seen.insert(l))
        {
            Some(&dup) => Err(Error::DuplicateLabel(dup)),
            None => Ok(()),
        }
    }

    /// Checks whole rows of `vectors` as every add does (finite components, the metric's norm
    /// rule) and returns, under cosine, each row's inverse norm (else nothing: rows are
    /// stored as given).
    pub(crate) fn row_scales(&self, vectors: &[f32]) -> Result<Vec<f32>> {
        match self.metric() {
            Metric::Cosine => {
                check_finite(vectors)?;
                vectors.chunks_exact(self.dim()).map(inverse_norm).collect()
            }
            _ => check_rows(vectors, self.dim()).map(|()| Vec::new()),
        }
    }

    /// `Err(InsideProgressCallback)` on a thread running this index's progress callback.
    pub(crate) fn refuse_inside_callback(&self) -> Result<()> {
        if self.inside_own_callback() {
            return Err(Error::InsideProgressCallback);
        }
        Ok(())
    }

    /// Claims `n` slots (caller holds the slots lock, claims not paused): freed slots
    /// first, readied for a new node, then fresh ones. All or nothing.
    pub(crate) fn claim_slots(&self, slots: &mut Slots, n: usize) -> Result<Vec<u32>> {
        let used = self.used.load(Ordering::Relaxed);
        let fresh = n.saturating_sub(slots.free.len());
        if fresh > self.capacity() - used {
            return Err(Error::CapacityExhausted {
                capacity: self.capacity(),
            });
        }
        let mut out = Vec::new();
        out.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
            what: "slot list",
            bytes: 4 * n,
        })?;
        let reused = n - fresh;
        for slot in slots.free.drain(slots.free.len() - reused..) {
            self.graph.reset_slot(slot);
            out.push(slot);
        }
        out.extend(used as u32..(used + fresh) as u32);
        self.used.store(used + fresh, Ordering::Release);
        Ok(out)
    }

    /// Records `label` as live in `slot` (caller holds the slots lock). A removed node under
    /// the same label can no longer be restored.
    pub(crate) fn bind_label(&self, slots: &mut Slots, label: u64, slot: u32) {
        slots.removed.remove(&label);
        slots.by_label.insert(label, slot);
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    /// The slots lock, for reading the label map.
    pub(crate) fn lock_slots(&self) -> MutexGuard<'_, Slots> {
        // The map is only changed by code that cannot panic midway; a poisoned lock still
        // guards consistent data.
        let slots = self.slots.get_or_init(|| {
            // A mapped index's labels, checked for duplicates only under Verify::All: a
            // repeated label maps to its last slot.
            let n = self.used();
            let by_label = self.labels[..n]
                .iter()
                .enumerate()
                .map(|(i, l)| (l.load(Ordering::Relaxed), i as u32))
                .collect();
            Mutex::new(Slots {
                by_label,
                ..Slots::default()
            })
        });
        slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slots lock, for claiming slots: waits while a save has paused claims.
    pub(crate) fn lock_slots_for_claim(&self) -> MutexGuard<'_, Slots> {
        let mut slots = self.lock_slots();
        if slots.paused {
            slots.waiting += 1;
            while slots.paused {
                slots = self.resumed.wait(slots).unwrap_or_else(|e| e.into_inner());
            }
            slots.waiting -= 1;
            if slots.waiting == 0 {
                // A pause may be waiting for the last of us (see `quiesce`).
                self.resumed.notify_all();
            }
        }
        slots
    }

    /// A scratch from the pool, sized for this index.
    #[inline]
    pub(crate) fn take_scratch(&self) -> ScratchGuard<'_> {
        self.scratch.take(|| {
            let ef = self.params.ef_construction.max(self.params.m);
            Scratch::new(self.capacity(), self.slab.stride(), self.graph.m0(), ef)
        })
    }

    /// Checks `v` and copies it into `s.query` (normalised for cosine; the padding stays
    /// zero).
    pub(crate) fn load_query(&self, s: &mut Scratch, v: &[f32]) -> Result<()> {
        let dim = self.dim();
        if v.len() != dim {
            return Err(Error::Dimension {
                expected: dim,
                got: v.len(),
            });
        }
        let scale = match self.metric() {
            Metric::Cosine => {
                check_finite(v)?;
                inverse_norm(v)?
            }
            _ => {
                check_vector(v)?;
                1.0
            }
        };
        let q = &mut s.query[..dim];
        q.copy_from_slice(v);
        if scale != 1.0 {
            q.iter_mut().for_each(|x| *x *= scale);
        }
        Ok(())
    }
}

/// `Err(NormTooLarge)` if `|v|²` exceeds [`MAX_SQUARED_NORM`] (distances to `v` could
/// overflow `f32`).
pub(crate) fn check_norm(v: &[f32]) -> Result<()> {
    let sq: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if sq <= MAX_SQUARED_NORM {
        Ok(())
    } else {
        Err(Error::NormTooLarge {
            norm: sq.sqrt(),
            max: MAX_SQUARED_NORM.sqrt(),
        })
    }
}

/// The checks of a vector under L2 and inner product: finite components ([`check_finite`])
/// and a norm within [`MAX_SQUARED_NORM`] ([`check_norm`]), with their errors; the quick
/// [`clearly_within_limits`] first, so the exact checks run only near the limit or on bad
/// input.
pub(crate) fn check_vector(v: &[f32]) -> Result<()> {
    if clearly_within_limits(v) {
        return Ok(());
    }
    check_finite(v)?;
    check_norm(v)
}

/// [`check_vector`] for each `dim`-long row of `vectors`, with the errors of the exact checks
/// over the whole batch: the first non-finite component anywhere first, then the first row
/// past the norm.
pub(crate) fn check_rows(vectors: &[f32], dim: usize) -> Result<()> {
    let mut rows = vectors.chunks_exact(dim);
    if rows.clone().all(clearly_within_limits) {
        return Ok(());
    }
    check_finite(vectors)?;
    rows.try_for_each(check_norm)
}

/// `true` if every component of `v` is finite and `|v|²` is at most half of
/// [`MAX_SQUARED_NORM`], found by one quick sum of squares in `f32` lanes (which the
/// compiler vectorises): the common case of [`check_finite`] and [`check_norm`] together,
/// without their per-component branch and their chain of `f64` additions (on 784-d queries
/// the two were 12 instructions per component). `false` decides nothing: the caller runs the
/// exact checks, for the verdict and the error's details.
#[inline]
pub(crate) fn clearly_within_limits(v: &[f32]) -> bool {
    const L: usize = 16;
    let (chunks, rest) = v.as_chunks::<L>();
    let mut lanes = [0.0f32; L];
    for c in chunks {
        for j in 0..L {
            lanes[j] += c[j] * c[j];
        }
    }
    let sum = lanes.iter().sum::<f32>() + rest.iter().map(|x| x * x).sum::<f32>();
    // A NaN or infinite component makes the sum NaN or infinite (squares are not negative:
    // no infinities cancel), as does a square or partial sum past `f32::MAX`. Rounded in
    // `f32`, a sum of n non-negative terms is at least (1 − γ) times the exact one, γ =
    // (n+1)·2⁻²⁴ / (1 − (n+1)·2⁻²⁴) ≤ 1/3 for n < 2²²: so a computed sum below half the limit
    // means an exact one below three quarters of it (squares too small for `f32` add less
    // than 2⁻¹²⁶ each, nothing at this scale).
    v.len() < 1 << 22 && sum.is_finite() && f64::from(sum) <= MAX_SQUARED_NORM / 2.0
}

/// `Err(NonFinite)` at the first NaN or infinity.
pub(crate) fn check_finite(v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(position) => Err(Error::NonFinite {
            position,
            value: v[position],
        }),
    }
}

/// `1 / |v|` for the cosine metric, or `ZeroVector` when `v` cannot be normalised.
pub(crate) fn inverse_norm(v: &[f32]) -> Result<f32> {
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    let inv = (1.0 / norm) as f32;
    if norm > 0.0 && inv.is_finite() && inv > 0.0 {
        Ok(inv)
    } else {
        Err(Error::ZeroVector { norm })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick check never accepts what the exact checks refuse, and accepts ordinary
    /// vectors of every length.
    #[test]
    fn the_quick_check_accepts_only_what_the_exact_checks_accept() {
        use rand_xoshiro::rand_core::{Rng, SeedableRng};
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(77);
        let limit = MAX_SQUARED_NORM.sqrt();
        for n in 1..=200usize {
            let plain: Vec<f32> = (0..n).map(|_| (rng.next_u32() % 2001) as f32 / 1000.0 - 1.0).collect();
            assert!(clearly_within_limits(&plain), "dim {n}");
            // Scaled around the limit: 0.5, 0.7, 0.71 (just past half of it in |v|²), 0.99,
            // 1.0, 1.01 times the largest norm allowed, and a single huge component.
            let norm = plain.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
            if norm == 0.0 {
                continue;
            }
            for f in [0.5, 0.7, 0.71, 0.99, 1.0, 1.01, 3.0] {
                let v: Vec<f32> = plain
                    .iter()
                    .map(|&x| (f64::from(x) * f * limit / norm) as f32)
                    .collect();
                let exact = check_finite(&v).is_ok() && check_norm(&v).is_ok();
                if clearly_within_limits(&v) {
                    assert!(exact, "dim {n} factor {f}: quick yes, exact no");
                }
                if f <= 0.7 {
                    assert!(clearly_within_limits(&v) && exact, "dim {n} factor {f}");
                }
                if f >= 1.01 {
                    assert!(!exact && !clearly_within_limits(&v), "dim {n} factor {f}");
                }
            }
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, 1e30] {
                let mut v = plain.clone();
                v[n / 2] = bad;
                assert!(!clearly_within_limits(&v), "dim {n} with {bad}");
            }
        }
    }

    #[test]
    fn growth_never_passes_the_maximum_capacity() {
        // 1.5 × old would pass MAX_CAPACITY: clamped (ids ≥ 2^31 would collide with the
        // search pool's flag bit).
        let old = MAX_CAPACITY / 4 * 3;
        assert_eq!(grown_capacity(old, 1, old).unwrap(), Some(MAX_CAPACITY));
        assert_eq!(grown_capacity(10, 5, 100).unwrap(), None);
        assert_eq!(grown_capacity(100, 1, 100).unwrap(), Some(150));
        assert_eq!(grown_capacity(100, 500, 100).unwrap(), Some(600));
        assert!(grown_capacity(MAX_CAPACITY, 1, MAX_CAPACITY).is_err());
        assert!(grown_capacity(usize::MAX, 1, 0).is_err());
    }
}
