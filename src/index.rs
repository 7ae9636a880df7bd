//! [`Index`]: the struct, its constructor and its public API. The algorithms live next door:
//! [`insert`](crate::insert) and [`search`](crate::search).

use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::graph::{Graph, MAX_LEVEL};
use crate::params::Params;
use crate::scratch::{Scratch, ScratchGuard, ScratchPool};
use crate::slab::Slab;
use crate::storage::Cells;
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

/// Label bookkeeping, changed under one mutex: which slot each label owns.
struct Slots {
    by_label: HashMap<u64, u32>,
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
    pub(crate) graph: Graph,
    /// Label of each slot, written before the slot is published.
    pub(crate) labels: Cells<AtomicU64>,
    /// Slots handed out (nodes added or being added).
    pub(crate) len: AtomicUsize,
    /// The entry point ([`pack_entry`]) or [`NO_ENTRY`].
    pub(crate) entry: AtomicU64,
    /// Held by an insert whose node tops the graph, until it has become the entry point.
    pub(crate) top: Mutex<()>,
    /// Built on first use for a mapped index (opening stays O(1) in the labels).
    slots: OnceLock<Mutex<Slots>>,
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

fn too_large(capacity: usize) -> Error {
    Error::InvalidParameter {
        name: "capacity",
        reason: format!("{capacity} vectors do not fit in memory"),
    }
}

impl Index {
    /// An empty index with room for `capacity` vectors (see [`reserve`](Self::reserve) to
    /// grow it). Memory for the whole capacity is allocated here.
    pub fn new(params: Params, capacity: usize) -> Result<Index> {
        params.validate()?;
        if capacity > MAX_CAPACITY {
            return Err(Error::InvalidParameter {
                name: "capacity",
                reason: format!("{capacity} is more than {MAX_CAPACITY}"),
            });
        }
        let kernel = hnswx_kernels::select(params.kernel)?.metric(params.metric);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);
        let mut levels = Vec::with_capacity(capacity);
        draw_levels(&mut rng, params.level_multiplier(), capacity, &mut levels);
        let slab = Slab::new(params.dim, capacity).ok_or_else(|| too_large(capacity))?;
        let graph = Graph::new(params.m, &levels).ok_or_else(|| too_large(capacity))?;
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        Ok(Index {
            kernel,
            slab,
            graph,
            labels: Cells::heap((0..capacity).map(|_| AtomicU64::new(0)).collect()),
            len: AtomicUsize::new(0),
            entry: AtomicU64::new(NO_ENTRY),
            top: Mutex::new(()),
            slots: OnceLock::from(Mutex::new(Slots {
                by_label: HashMap::with_capacity(capacity),
            })),
            level_rng: Mutex::new(rng),
            levels_drawn: capacity,
            scratch: ScratchPool::new(2 * threads + 2),
            params,
        })
    }

    /// An index from loaded, already checked parts (capacity = `labels.len()`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        params: Params,
        slab: Slab,
        graph: Graph,
        labels: Cells<AtomicU64>,
        by_label: Option<HashMap<u64, u32>>,
        entry: u64,
        rng: Xoshiro256PlusPlus,
        levels_drawn: usize,
    ) -> Index {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let kernel = hnswx_kernels::auto().metric(params.metric);
        Index {
            kernel,
            slab,
            graph,
            len: AtomicUsize::new(labels.len()),
            labels,
            entry: AtomicU64::new(entry),
            top: Mutex::new(()),
            slots: by_label.map_or_else(OnceLock::new, |by_label| OnceLock::from(Mutex::new(Slots { by_label }))),
            level_rng: Mutex::new(rng),
            levels_drawn,
            scratch: ScratchPool::new(2 * threads + 2),
            params,
        }
    }

    /// Levels drawn from the seed's stream so far.
    pub(crate) fn levels_drawn(&self) -> usize {
        self.levels_drawn
    }

    /// Locks the label map for a save: no slot can be claimed until the guard drops.
    pub(crate) fn lock_slots_for_save(&self) -> impl Drop + '_ {
        self.lock_slots()
    }

    /// Makes room for `additional` more vectors than the index holds now. Needs `&mut self`:
    /// every table is reallocated and copied.
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        let want = self
            .len()
            .checked_add(additional)
            .filter(|&c| c <= MAX_CAPACITY)
            .ok_or_else(|| Error::InvalidParameter {
                name: "capacity",
                reason: format!("more than {MAX_CAPACITY}"),
            })?;
        let old = self.capacity();
        if want <= old {
            return Ok(());
        }
        let cap = want.max(old + old / 2);
        let mut levels: Vec<u8> = (0..old).map(|i| self.graph.level(i as u32) as u8).collect();
        let rng = self.level_rng.get_mut().unwrap_or_else(|e| e.into_inner());
        draw_levels(rng, self.params.level_multiplier(), cap - old, &mut levels);
        self.levels_drawn += cap - old;
        let slab = self.slab.resized(cap).ok_or_else(|| too_large(cap))?;
        let graph = self.graph.resized(&levels).ok_or_else(|| too_large(cap))?;
        let labels = Cells::heap(
            (0..cap)
                .map(|i| AtomicU64::new(self.labels.get(i).map_or(0, |l| l.load(Ordering::Relaxed))))
                .collect(),
        );
        self.slab = slab;
        self.graph = graph;
        self.labels = labels;
        self.scratch.clear();
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

    /// Vectors added (including any still being linked by a concurrent `add`).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// `true` if no vector was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vectors the index has room for.
    pub fn capacity(&self) -> usize {
        self.graph.capacity()
    }

    /// `true` if `label` was added.
    pub fn contains(&self, label: u64) -> bool {
        self.lock_slots().by_label.contains_key(&label)
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
        self.slab.bytes() + self.graph.bytes() + self.labels.len() * 8 + map
    }

    /// Adds `vector` under `label`. Safe to call from many threads at once, and while other
    /// threads search.
    ///
    /// Errors (the index is unchanged): [`Error::Dimension`], [`Error::NonFinite`],
    /// [`Error::ZeroVector`] (cosine), [`Error::DuplicateLabel`] (labels are never
    /// overwritten), [`Error::CapacityExhausted`].
    pub fn add(&self, label: u64, vector: &[f32]) -> Result<()> {
        let mut s = self.take_scratch();
        self.load_query(&mut s, vector)?;
        let slot = {
            let mut slots = self.lock_slots();
            let slot = self.claim_slot(&mut slots, label)?;
            // SAFETY: `slot` was just claimed: no other thread knows it, so nobody reads or
            // writes its row until it is published by `insert_node`.
            unsafe { self.slab.write(slot, &s.query[..self.dim()]) };
            self.labels[slot as usize].store(label, Ordering::Relaxed);
            slots.by_label.insert(label, slot);
            slot
        };
        self.insert_node(slot, &mut s);
        Ok(())
    }

    /// Adds many vectors (`vectors` is row-major, `labels.len()` rows of `dim`), linking them
    /// in parallel on the current rayon pool (wrap the call in `ThreadPool::install` to choose
    /// the threads). Every row is checked first: on error nothing is added.
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
    pub fn add_batch_with_progress(
        &self,
        labels: &[u64],
        vectors: &[f32],
        progress: impl Fn(usize) + Sync,
    ) -> Result<()> {
        let dim = self.dim();
        if vectors.len() != labels.len() * dim {
            return Err(Error::Dimension {
                expected: dim,
                got: vectors.len() / labels.len().max(1),
            });
        }
        let rows = || vectors.chunks_exact(dim);
        check_finite(vectors)?;
        let scale: Vec<f32> = match self.metric() {
            Metric::Cosine => rows().map(inverse_norm).collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        let first = {
            let mut slots = self.lock_slots();
            let first = self.len.load(Ordering::Relaxed);
            if first + labels.len() > self.capacity() {
                return Err(Error::CapacityExhausted {
                    capacity: self.capacity(),
                });
            }
            let mut seen = std::collections::HashSet::with_capacity(labels.len());
            if let Some(&dup) = labels
                .iter()
                .find(|&&l| slots.by_label.contains_key(&l) || !seen.insert(l))
            {
                return Err(Error::DuplicateLabel(dup));
            }
            let mut row = vec![0.0f32; dim];
            for (i, (v, &label)) in rows().zip(labels).enumerate() {
                let slot = (first + i) as u32;
                let v = match scale.get(i) {
                    Some(&s) => {
                        row.iter_mut().zip(v).for_each(|(o, &x)| *o = x * s);
                        &row[..]
                    }
                    None => v,
                };
                // SAFETY: slots `first..first + n` are claimed under this lock and unknown
                // to other threads until `insert_node` publishes them.
                unsafe { self.slab.write(slot, v) };
                self.labels[slot as usize].store(label, Ordering::Relaxed);
                slots.by_label.insert(label, slot);
            }
            self.len.store(first + labels.len(), Ordering::Release);
            first
        };
        let slots = first as u32..(first + labels.len()) as u32;
        let done = AtomicUsize::new(0);
        let tick = || {
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(1024) || d == labels.len() {
                progress(d);
            }
        };
        if rayon::current_num_threads() == 1 {
            let mut s = self.take_scratch();
            slots.for_each(|slot| {
                self.insert_node(slot, &mut s);
                tick();
            });
        } else {
            slots.into_par_iter().for_each_init(
                || self.take_scratch(),
                |s, slot| {
                    self.insert_node(slot, s);
                    tick();
                },
            );
        }
        self.repair_connectivity();
        Ok(())
    }

    /// Claims the next free slot for `label` (caller holds the slots lock).
    fn claim_slot(&self, slots: &mut Slots, label: u64) -> Result<u32> {
        if slots.by_label.contains_key(&label) {
            return Err(Error::DuplicateLabel(label));
        }
        let n = self.len.load(Ordering::Relaxed);
        if n >= self.capacity() {
            return Err(Error::CapacityExhausted {
                capacity: self.capacity(),
            });
        }
        self.len.store(n + 1, Ordering::Release);
        Ok(n as u32)
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The map is only changed by code that cannot panic midway; a poisoned lock still
        // guards consistent data.
        let slots = self.slots.get_or_init(|| {
            // A mapped index's labels, checked for duplicates only under Verify::All: a
            // repeated label maps to its last slot.
            let n = self.len();
            let by_label = self.labels[..n]
                .iter()
                .enumerate()
                .map(|(i, l)| (l.load(Ordering::Relaxed), i as u32))
                .collect();
            Mutex::new(Slots { by_label })
        });
        slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A scratch from the pool, sized for this index.
    #[inline]
    pub(crate) fn take_scratch(&self) -> ScratchGuard<'_> {
        self.scratch
            .take(|| Scratch::new(self.capacity(), self.slab.stride(), self.graph.m0()))
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
        check_finite(v)?;
        let q = &mut s.query[..dim];
        q.copy_from_slice(v);
        if self.metric() == Metric::Cosine {
            let scale = inverse_norm(v)?;
            q.iter_mut().for_each(|x| *x *= scale);
        }
        Ok(())
    }
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
