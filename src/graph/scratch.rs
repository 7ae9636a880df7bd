//! Per-search working memory: the visited set, the candidate pool and the small buffers a
//! search or an insert needs. Scratches are pooled by the index, so a query in steady state
//! allocates nothing.

use aligned_vec::{AVec, ConstAlign};
use crossbeam_queue::ArrayQueue;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{fence, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use crate::store::slab::SLAB_ALIGN;
use hnswx_kernels::Prefetch;

/// Visited marks: `marks[i] == epoch` means node `i` was seen by the current search. Starting
/// a search bumps the epoch instead of clearing the array; only when the 16-bit epoch wraps
/// (every 65 535 searches) is the array zeroed.
pub struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn new(n: usize) -> Self {
        Visited {
            marks: vec![0; n],
            epoch: 0,
        }
    }

    /// Starts a new search over `n` nodes: forgets every mark (growing the array if needed).
    #[inline]
    pub fn start(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Whether node `i` is marked (an `i` past the array counts as marked, as `insert`
    /// never lets it through).
    #[inline(always)]
    pub fn seen(&self, i: u32) -> bool {
        self.marks.get(i as usize).is_none_or(|&m| m == self.epoch)
    }

    /// Marks node `i`; `true` if it was not marked yet. An `i` past the array (as long as
    /// the index's capacity) is never a node: `false`, so it is never scored.
    #[inline(always)]
    pub fn insert(&mut self, i: u32) -> bool {
        match self.marks.get_mut(i as usize) {
            Some(m) => {
                let fresh = *m != self.epoch;
                *m = self.epoch;
                fresh
            }
            None => false,
        }
    }
}

const EXPANDED: u32 = 1 << 31;

/// Entries one insert moves with a fixed-size copy when the entries behind the new one are
/// at most this many (always for `ef ≤ 33`); up to twice as many move in a copy twice as
/// long, more with a `memmove`.
const SHIFT_BLOCK: usize = 32;

/// Spare entries past the bound in each of the pool's arrays: a copy of `N` entries from
/// `pos ≤ cap - 1` writes up to index `pos + N`, so the longest (`2 · SHIFT_BLOCK`) needs
/// `cap + 2 · SHIFT_BLOCK` entries.
const POOL_PAD: usize = 2 * SHIFT_BLOCK;

/// The best `ef` candidates found so far, sorted by distance, each flagged once expanded.
///
/// This is the bounded best-first search of the HNSW paper with its two heaps merged into one
/// sorted array (the "candidate pool" of NSG and glass): a candidate that would not enter the
/// best `ef` is never stored, and `cursor` walks to the closest entry not yet expanded.
/// Distances and ids are two arrays, each at least `POOL_PAD` entries longer than the bound,
/// so that an insert's position is a count over the distances (no branch per entry) and the
/// entries behind it move with one fixed-size copy (for `ef ≤ 33` always the same one, so no
/// branch depends on where the entry lands).
pub struct Pool {
    dists: Vec<f32>,
    /// Node ids, the top bit set once expanded.
    ids: Vec<u32>,
    len: usize,
    cap: usize,
    cursor: usize,
}

impl Pool {
    fn new() -> Self {
        Pool {
            dists: Vec::new(),
            ids: Vec::new(),
            len: 0,
            cap: 0,
            cursor: 0,
        }
    }

    /// Empties the pool and bounds it to `cap` entries.
    #[inline]
    pub fn reset(&mut self, cap: usize) {
        debug_assert!(cap >= 1);
        let room = cap + POOL_PAD;
        if self.dists.len() < room {
            // Exactly: `Scratch::trim` frees arrays whose capacity passes the largest
            // pool a scratch is made for.
            self.dists.reserve_exact(room - self.dists.len());
            self.ids.reserve_exact(room - self.ids.len());
            self.dists.resize(room, 0.0);
            self.ids.resize(room, 0);
        }
        self.len = 0;
        self.cap = cap;
        self.cursor = 0;
    }

    /// Entries the arrays hold room for (what `Scratch::trim` checks).
    fn room(&self) -> usize {
        self.dists.capacity().max(self.ids.capacity())
    }

    /// Distance of the worst entry when the pool is full, else +∞: anything not below it
    /// cannot enter.
    #[inline(always)]
    pub fn bound(&self) -> f32 {
        if self.len == self.cap {
            self.dists[self.len - 1]
        } else {
            f32::INFINITY
        }
    }

    /// Offers node `id` at `dist`; `true` if it entered the pool.
    ///
    /// A NaN never enters a full pool. The walks offer only distances below
    /// [`bound`](Self::bound) (never a NaN) and, unchecked, the entry point's, into an empty
    /// pool; a NaN entry point stays first and the walk goes on from it, as before.
    // The negated comparisons are meant: `!(dist < last)` is true for a NaN on either side
    // (a NaN is never closer), and `!(d > dist)` counts a stored NaN as not farther.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    #[inline(always)]
    pub fn insert(&mut self, id: u32, dist: f32) -> bool {
        debug_assert!(id & EXPANDED == 0);
        let full = self.len == self.cap;
        // A NaN distance compares as not closer, so it never displaces an entry.
        if full && !(dist < self.dists[self.len - 1]) {
            return false;
        }
        debug_assert!(!dist.is_nan() || self.len == 0, "a NaN entering a pool in use");
        // The new entry goes behind every entry not farther than it (equal distances keep
        // arrival order): a count, which compiles to compares and adds without a branch per
        // entry. A full pool's last entry is farther (checked above) and not counted, so
        // `pos < cap` whatever the contents.
        let pos = self.dists[..self.len]
            .iter()
            .fold(0u32, |n, &d| n + u32::from(!(d > dist))) as usize;
        // Entries `pos..end` move one slot right (a full pool's last one falls off).
        let end = self.len - usize::from(full);
        debug_assert!(pos <= end && end < self.cap);
        if end - pos <= SHIFT_BLOCK {
            // A fixed-size copy: the same instructions wherever the entry lands (the arrays
            // hold at least `POOL_PAD` spare entries past `cap`, so it stays inside).
            shift_block::<_, SHIFT_BLOCK>(&mut self.dists, pos);
            shift_block::<_, SHIFT_BLOCK>(&mut self.ids, pos);
        } else {
            self.shift_long(pos, end);
        }
        self.dists[pos] = dist;
        self.ids[pos] = id;
        self.len = end + 1;
        self.cursor = self.cursor.min(pos);
        true
    }

    /// The move of [`insert`](Self::insert) for more than `SHIFT_BLOCK` entries (pools
    /// larger than 33), out of line so that the common case stays short.
    #[inline(never)]
    fn shift_long(&mut self, pos: usize, end: usize) {
        if end - pos <= 2 * SHIFT_BLOCK {
            shift_block::<_, { 2 * SHIFT_BLOCK }>(&mut self.dists, pos);
            shift_block::<_, { 2 * SHIFT_BLOCK }>(&mut self.ids, pos);
        } else {
            self.dists.copy_within(pos..end, pos + 1);
            self.ids.copy_within(pos..end, pos + 1);
        }
    }

    /// The closest entry not expanded yet, now flagged as expanded.
    #[inline]
    pub fn pop(&mut self) -> Option<u32> {
        while self.cursor < self.len && self.ids[self.cursor] & EXPANDED != 0 {
            self.cursor += 1;
        }
        if self.cursor == self.len {
            return None;
        }
        let e = &mut self.ids[self.cursor];
        let id = *e;
        *e |= EXPANDED;
        self.cursor += 1;
        Some(id)
    }

    /// The id the next [`pop`](Self::pop) would return, if any, without taking it.
    #[inline(always)]
    pub fn peek_next(&self) -> Option<u32> {
        self.ids[self.cursor.min(self.len)..self.len]
            .iter()
            .find(|&&id| id & EXPANDED == 0)
            .copied()
    }

    /// Entries, closest first, as `(distance, id)`.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (f32, u32)> + '_ {
        self.dists[..self.len]
            .iter()
            .zip(&self.ids[..self.len])
            .map(|(&d, &id)| (d, id & !EXPANDED))
    }
}

/// Moves `v[pos..pos + N]` one slot right, as one fixed-size copy (loaded whole, then
/// stored).
#[inline(always)]
fn shift_block<T: Copy, const N: usize>(v: &mut [T], pos: usize) {
    let block: [T; N] = v[pos..pos + N].try_into().expect("N entries");
    v[pos + 1..pos + 1 + N].copy_from_slice(&block);
}

/// A `(distance, id)` pair ordered by distance (total order, so a NaN cannot break a heap),
/// then by id.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored(pub f32, pub u32);

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Entries a pooled scratch's lists may keep between searches: a query with a huge `ef`
/// gets the memory it needs, but the pool does not hold on to it.
const KEEP_ENTRIES: usize = 1 << 14;

/// Everything one search or one insert writes besides the index.
pub struct Scratch {
    pub visited: Visited,
    pub pool: Pool,
    /// Ids of a neighbour list about to be scored, and their distances.
    pub ids: Vec<u32>,
    pub dists: Vec<f32>,
    /// The query, normalised for cosine and zero-padded to the slab's stride, on a cache
    /// line.
    pub query: AVec<f32, ConstAlign<SLAB_ALIGN>>,
    /// The query prepared for walking codes (`Codes::prepare`): its weights rounded to
    /// `i16` for the integer kernel and their scale (weight ≈ `nav_scale · nav_int`), the
    /// constant added to every score, and whether the walk uses them (else the `f32` rows).
    pub nav_int: AVec<i16, ConstAlign<SLAB_ALIGN>>,
    pub nav_scale: f32,
    pub nav_bias: f32,
    pub nav_on: bool,
    /// Whether the walk's kernels prefetch the rows they score (set with `nav_on`, from
    /// the size of the walked rows: see `look_ahead::row_prefetch`).
    pub walk_prefetch: Prefetch,
    /// Candidate and selection lists of the neighbour heuristic.
    pub cands: Vec<(f32, u32)>,
    pub kept: Vec<(f32, u32)>,
    pub shrink: Vec<(f32, u32)>,
    /// Heaps of the filtered search: candidates (closest on top) and results (farthest on
    /// top).
    pub frontier: BinaryHeap<std::cmp::Reverse<Scored>>,
    pub results: BinaryHeap<Scored>,
    /// Distance computations since the counter was last reset.
    pub distances: u64,
    /// The reader epoch this scratch's user entered with while on loan (0 when idle): what
    /// [`ScratchPool::wait_for_readers`] waits on.
    active: Arc<AtomicU64>,
}

impl Scratch {
    /// Frees lists that grew past [`KEEP_ENTRIES`].
    fn trim(&mut self) {
        fn trim_vec<T>(v: &mut Vec<T>) {
            if v.capacity() > KEEP_ENTRIES {
                *v = Vec::new();
            }
        }
        if self.pool.room() > KEEP_ENTRIES + POOL_PAD {
            self.pool = Pool::new();
        }
        trim_vec(&mut self.cands);
        trim_vec(&mut self.kept);
        trim_vec(&mut self.shrink);
        if self.frontier.capacity() > KEEP_ENTRIES {
            self.frontier = BinaryHeap::new();
        }
        if self.results.capacity() > KEEP_ENTRIES {
            self.results = BinaryHeap::new();
        }
    }

    /// Scratch for an index of `capacity` nodes, rows of `stride` floats and up to `m0`
    /// links per row, with a candidate pool ready for `ef` entries (so searches with an
    /// `ef` up to that never grow it).
    pub fn new(capacity: usize, stride: usize, m0: usize, ef: usize) -> Self {
        let mut query = AVec::with_capacity(SLAB_ALIGN, stride);
        query.resize(stride, 0.0);
        let mut nav_int = AVec::with_capacity(SLAB_ALIGN, stride);
        nav_int.resize(stride, 0);
        Scratch {
            visited: Visited::new(capacity),
            pool: {
                let mut p = Pool::new();
                p.reset(ef.clamp(1, KEEP_ENTRIES));
                p
            },
            ids: Vec::with_capacity(m0 + 1),
            dists: vec![0.0; m0 + 1],
            query,
            nav_int,
            nav_scale: 0.0,
            nav_bias: 0.0,
            nav_on: false,
            walk_prefetch: Prefetch::Ahead,
            cands: Vec::new(),
            kept: Vec::new(),
            shrink: Vec::with_capacity(m0 + 1),
            frontier: BinaryHeap::new(),
            results: BinaryHeap::new(),
            distances: 0,
            active: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Idle scratches: a lock-free queue for the first `slots`, then a locked overflow list
/// for the rest. Taking one when both are empty makes a new one; returning one never drops
/// it. So the pool holds as many scratches as there were searches and inserts in flight at
/// the busiest moment, and from then on no search allocates, however many threads share
/// the index (a 64-thread service gets 64 scratches, not an allocation per query).
///
/// The pool is also the index's register of readers: every search and insert holds a
/// scratch while it reads the graph, and a scratch on loan carries the epoch its user
/// entered with. [`wait_for_readers`](Self::wait_for_readers) waits until every user that
/// entered before the call has left — the grace period after which a slot that no link
/// reaches any more may be written again.
pub struct ScratchPool {
    idle: ArrayQueue<Scratch>,
    overflow: Mutex<Vec<Scratch>>,
    /// The `active` cell of every scratch made (cells of dropped scratches stay at 0 until
    /// pruned).
    readers: Mutex<Vec<Arc<AtomicU64>>>,
    epoch: AtomicU64,
    /// Most scratches the overflow list keeps (a memory bound: each holds a visited array
    /// as long as the index's capacity).
    overflow_limit: std::sync::atomic::AtomicUsize,
}

thread_local! {
    /// Pools of which the current thread holds a scratch (by address).
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl ScratchPool {
    pub fn new(slots: usize) -> Self {
        // Settle the prefetch thresholds now (they may read sysfs once per process), so that
        // no search or insert does.
        crate::graph::look_ahead::look_ahead();
        crate::graph::look_ahead::row_prefetch();
        ScratchPool {
            idle: ArrayQueue::new(slots.max(1)),
            overflow: Mutex::new(Vec::new()),
            readers: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(1),
            overflow_limit: std::sync::atomic::AtomicUsize::new(usize::MAX),
        }
    }

    /// An idle scratch, or a new one made by `make`; its user counts as a reader until the
    /// guard drops.
    #[inline]
    pub fn take(&self, make: impl FnOnce() -> Scratch) -> ScratchGuard<'_> {
        let s = self
            .idle
            .pop()
            .or_else(|| self.lock_overflow().pop())
            .unwrap_or_else(|| {
                let s = make();
                lock(&self.readers).push(Arc::clone(&s.active));
                s
            });
        self.refresh(&s);
        HELD.with(|h| h.borrow_mut().push(self as *const ScratchPool as usize));
        ScratchGuard {
            pool: self,
            scratch: Some(s),
        }
    }

    /// (Re-)enters the reader register with `s`: publishes the current epoch, then a full
    /// fence, so that either `wait_for_readers` sees this reader, or this reader sees every
    /// link change made before that call (store-fence / fence-load; both fences SeqCst).
    /// Call it only where the user holds no node id from earlier reads.
    #[inline]
    pub fn refresh(&self, s: &Scratch) {
        s.active
            .store(self.epoch.load(AtomicOrdering::Relaxed), AtomicOrdering::Relaxed);
        fence(AtomicOrdering::SeqCst);
    }

    /// `true` if the current thread holds a scratch of this pool (a grace period started
    /// here would wait for itself).
    pub fn held_by_this_thread(&self) -> bool {
        let me = self as *const ScratchPool as usize;
        HELD.with(|h| h.borrow().contains(&me))
    }

    /// Sets how many scratches the overflow list keeps (past the lock-free slots); more are
    /// dropped when returned.
    pub fn set_overflow_limit(&self, limit: usize) {
        self.overflow_limit.store(limit, AtomicOrdering::Relaxed);
    }

    fn lock_overflow(&self) -> std::sync::MutexGuard<'_, Vec<Scratch>> {
        lock(&self.overflow)
    }

    /// Waits until every scratch taken before this call has been returned (or taken again
    /// after it). The caller must not hold a scratch of this pool itself.
    pub fn wait_for_readers(&self) {
        fence(AtomicOrdering::SeqCst);
        let epoch = self.epoch.fetch_add(1, AtomicOrdering::Relaxed) + 1;
        // Spin on a copy of the list: making a scratch needs the lock, and a reader we wait
        // for may need a new scratch before it can finish.
        let readers: Vec<Arc<AtomicU64>> = lock(&self.readers).clone();
        for r in readers.iter() {
            let backoff = crossbeam_utils::Backoff::new();
            loop {
                // Acquire: the reader's reads happen before whatever the caller writes next.
                let e = r.load(AtomicOrdering::Acquire);
                if e == 0 || e >= epoch {
                    break;
                }
                if backoff.is_completed() {
                    std::thread::yield_now();
                } else {
                    backoff.snooze();
                }
            }
        }
        drop(readers);
        lock(&self.readers).retain(|r| Arc::strong_count(r) > 1);
    }

    /// Drops every idle scratch (after the index grew, say).
    pub fn clear(&self) {
        while self.idle.pop().is_some() {}
        self.lock_overflow().clear();
    }
}

/// Locks `m`, ignoring poison: the pool's lists are consistent whatever panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scratch on loan from a [`ScratchPool`]; it goes back when dropped.
pub struct ScratchGuard<'a> {
    pool: &'a ScratchPool,
    scratch: Option<Scratch>,
}

impl Deref for ScratchGuard<'_> {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        self.scratch.as_ref().expect("scratch present until drop")
    }
}

impl DerefMut for ScratchGuard<'_> {
    fn deref_mut(&mut self) -> &mut Scratch {
        self.scratch.as_mut().expect("scratch present until drop")
    }
}

impl Drop for ScratchGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut s) = self.scratch.take() {
            // Leave: the reads of this loan are done (release, paired with the acquire in
            // `wait_for_readers`).
            s.active.store(0, AtomicOrdering::Release);
            let me = self.pool as *const ScratchPool as usize;
            let _ = HELD.try_with(|h| {
                let mut h = h.borrow_mut();
                if let Some(i) = h.iter().rposition(|&p| p == me) {
                    h.swap_remove(i);
                }
            });
            s.trim();
            if let Err(s) = self.pool.idle.push(s) {
                let mut overflow = self.pool.lock_overflow();
                if overflow.len() < self.pool.overflow_limit.load(AtomicOrdering::Relaxed) {
                    overflow.push(s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_keeps_the_best_sorted_and_expands_in_order() {
        let mut p = Pool::new();
        p.reset(3);
        for (id, d) in [(1, 5.0), (2, 1.0), (3, 3.0), (4, 4.0), (5, 0.5), (6, 9.0)] {
            p.insert(id, d);
        }
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![(0.5, 5), (1.0, 2), (3.0, 3)]);
        assert_eq!(p.pop(), Some(5));
        assert_eq!(p.pop(), Some(2));
        // A closer entry than the cursor moves the cursor back.
        assert!(p.insert(7, 0.1));
        assert_eq!(p.pop(), Some(7));
        assert_eq!(p.pop(), None);
        assert_eq!(p.iter().map(|e| e.1).collect::<Vec<_>>(), vec![7, 5, 2]);
        assert!(!p.insert(8, 2.0));
    }

    /// The model pool's insert: a sorted list `(distance, id, expanded)`, stable among equal
    /// distances, cut to `cap`; `true` if the entry went in.
    fn model_insert(model: &mut Vec<(f32, u32, bool)>, cap: usize, id: u32, dist: f32) -> bool {
        let enters = model.len() < cap || dist < model[cap - 1].0;
        if enters {
            let at = model.iter().position(|e| e.0 > dist).unwrap_or(model.len());
            model.insert(at, (dist, id, false));
            model.truncate(cap);
        }
        enters
    }

    /// The pool against a plain model (a sorted list, stable among equal distances, cut to
    /// the bound; pop takes the first unexpanded entry) over random inserts and pops: every
    /// bound from 1 to 70, distances drawn from a few values (ties) or many. And a NaN
    /// never enters a full pool.
    #[test]
    fn pool_matches_a_sorted_list_model() {
        use rand_xoshiro::rand_core::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0x9001);
        let mut p = Pool::new();
        for cap in 1..=70usize {
            for distinct in [3u32, 1000] {
                p.reset(cap);
                let mut model: Vec<(f32, u32, bool)> = Vec::new();
                for step in 0..600u32 {
                    // The walk's look-ahead relies on peek_next naming what pop returns next.
                    assert_eq!(
                        p.peek_next(),
                        model.iter().find(|e| !e.2).map(|e| e.1),
                        "cap {cap} step {step}: peek"
                    );
                    if rng.next_u32() % 5 == 0 {
                        let want = model.iter_mut().find(|e| !e.2).map(|e| {
                            e.2 = true;
                            e.1
                        });
                        assert_eq!(p.pop(), want, "cap {cap} step {step}: pop");
                    } else {
                        let dist = (rng.next_u32() % distinct) as f32;
                        let enters = model_insert(&mut model, cap, step, dist);
                        assert_eq!(p.insert(step, dist), enters, "cap {cap} step {step}: insert {dist}");
                    }
                    let got: Vec<(f32, u32)> = p.iter().collect();
                    let want: Vec<(f32, u32)> = model.iter().map(|e| (e.0, e.1)).collect();
                    assert_eq!(got, want, "cap {cap} step {step}: contents");
                }
                let before: Vec<(f32, u32)> = p.iter().collect();
                assert_eq!(before.len(), cap, "cap {cap}: the pool should be full by now");
                assert!(!p.insert(u32::MAX >> 1, f32::NAN));
                assert_eq!(
                    p.iter().collect::<Vec<_>>(),
                    before,
                    "cap {cap}: a NaN changed the pool"
                );
            }
        }
    }

    /// Moves of every length (the 32- and 64-entry copies and the `memmove`), bounds
    /// shrinking and growing between uses, and infinite distances, against the same model.
    #[test]
    fn pool_shifts_of_every_length_match_the_model() {
        let mut p = Pool::new();
        for cap in [33usize, 34, 65, 66, 200, 5, 1, 130] {
            p.reset(cap);
            let mut model: Vec<(f32, u32, bool)> = Vec::new();
            let mut offer = |p: &mut Pool, id: u32, dist: f32| {
                let enters = model_insert(&mut model, cap, id, dist);
                assert_eq!(p.insert(id, dist), enters, "cap {cap}: insert {id} at {dist}");
                let want: Vec<(f32, u32)> = model.iter().map(|e| (e.0, e.1)).collect();
                assert_eq!(p.iter().collect::<Vec<_>>(), want, "cap {cap} after {id}");
            };
            // Each one closer than all before it: it lands first, every entry moves.
            for i in 0..cap as u32 {
                offer(&mut p, i, (cap as u32 - i) as f32);
            }
            offer(&mut p, 1000, -1.0);
            offer(&mut p, 1001, f32::NEG_INFINITY);
            offer(&mut p, 1002, f32::NEG_INFINITY);
            offer(&mut p, 1003, f32::INFINITY);
            offer(&mut p, 1004, 0.5);
            assert_eq!(p.pop(), Some(1001), "cap {cap}");
        }
    }

    #[test]
    fn visited_seen_agrees_with_insert() {
        let mut v = Visited::new(4);
        for _ in 0..3 {
            v.start(6);
            assert!((0..6).all(|i| !v.seen(i)));
            assert!(v.seen(6) && v.seen(u32::MAX), "past the array counts as seen");
            assert!(v.insert(2));
            assert!(v.seen(2) && !v.seen(3));
            assert!(!v.insert(2));
        }
    }

    #[test]
    fn a_huge_query_leaves_no_huge_buffer_in_the_pool() {
        let pool = ScratchPool::new(2);
        {
            let mut guard = pool.take(|| Scratch::new(10, 16, 4, 10));
            let s: &mut Scratch = &mut guard;
            s.pool.reset(1 << 20);
            s.cands.reserve(1 << 20);
            s.results.reserve(1 << 20);
        }
        let guard = pool.take(|| panic!("the scratch did not go back to the pool"));
        let s: &Scratch = &guard;
        assert!(s.pool.room() <= KEEP_ENTRIES + POOL_PAD);
        drop(guard);
        // A scratch made for the largest pool kept keeps it.
        let pool = ScratchPool::new(1);
        {
            let mut guard = pool.take(|| Scratch::new(10, 16, 4, KEEP_ENTRIES));
            let s: &mut Scratch = &mut guard;
            s.pool.reset(KEEP_ENTRIES);
        }
        let guard = pool.take(|| panic!("the scratch did not go back to the pool"));
        let s: &Scratch = &guard;
        assert_eq!(
            s.pool.room(),
            KEEP_ENTRIES + POOL_PAD,
            "the largest kept pool was freed"
        );
        assert!(s.cands.capacity() <= KEEP_ENTRIES);
        assert!(s.results.capacity() <= KEEP_ENTRIES);
    }

    #[test]
    fn visited_ignores_ids_past_the_capacity() {
        let mut v = Visited::new(4);
        v.start(4);
        assert!(!v.insert(4));
        assert!(!v.insert(u32::MAX));
        assert!(v.insert(3));
    }

    #[test]
    fn visited_wraps_without_forgetting_to_clear() {
        let mut v = Visited::new(4);
        for _ in 0..70_000 {
            v.start(4);
            assert!(v.insert(2));
            assert!(!v.insert(2));
            assert!(v.insert(3));
        }
    }
}
