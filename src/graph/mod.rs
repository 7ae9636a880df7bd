//! The graph: fixed-degree neighbour tables, one per layer kind, and a spinlock per node.
//!
//! - **Layer 0**: one row per node, `1 + Mmax0` u32 — the link count, then up to `Mmax0 = 2M`
//!   neighbour ids. Rows sit back to back, so node `i`'s links start at `i · (1 + Mmax0)`.
//! - **Upper layers**: a compact table of rows of `1 + M` u32. Node `i` with level `L ≥ 1`
//!   owns rows `offsets[i] .. offsets[i] + L` (layer `l` is row `offsets[i] + l − 1`); nodes
//!   of level 0 own none. Levels are drawn for every slot when the capacity is set, so the
//!   table is sized once and never moves while the index is shared.
//!
//! Every cell is an `AtomicU32`: rows are rewritten under the node's spinlock while searches
//! read them without locks. The protocol (publication, the spinlock) is in [`row`], small
//! enough to be model-checked with loom.
//!
//! The algorithms on the tables are methods of [`Index`](crate::Index), one file each:
//! [`search`] (greedy descent, then the bounded best-first search of layer 0; one query's
//! path to the kernel), [`insert`] (level choice, neighbour selection, linking, and the
//! connectivity repair), with [`scratch`] the per-search memory both use.

pub(crate) mod insert;
pub(crate) mod look_ahead;
mod row;
pub(crate) mod scratch;
pub(crate) mod search;

/// The atomics and the spin-wait `row` is written against: std's here; the loom model test
/// (`tests/loom.rs`) compiles the same `row.rs` against loom's.
mod atomics {
    pub use crossbeam_utils::Backoff;
    pub use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
}

pub use row::{count, link, push_link, set_links, LockGuard, Row};
use row::{LINKED, REMOVED, STARTED};

use crate::error::Error;
use crate::store::cells::Cells;
use atomics::{AtomicU32, AtomicU8, Ordering};

/// Row locks found held by another thread when taken, process-wide (see
/// [`row_lock_waits`]).
static ROW_LOCK_WAITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times, in this process, a thread taking a node's row lock found it held by
/// another and had to spin (all indexes together). Only writers take row locks (`add`,
/// `add_batch`, `update`, `consolidate`, repairs); searches read rows without any lock, so
/// this never counts a reader. A diagnostic for benchmarks: sample it before and after.
pub fn row_lock_waits() -> u64 {
    ROW_LOCK_WAITS.load(Ordering::Relaxed)
}

/// Highest level a node can be drawn at (levels are clamped here; at `M = 2` reaching it
/// takes billions of nodes).
pub const MAX_LEVEL: usize = 31;

/// Neighbour tables of all layers plus per-node locks.
pub struct Graph {
    m: usize,
    m0: usize,
    level0: Cells<AtomicU32>,
    upper: Cells<AtomicU32>,
    /// `offsets[i]`: first upper row of node `i`; `offsets[i + 1] - offsets[i]` is its level.
    offsets: Cells<u32>,
    /// Per node: bit 0 is its spinlock, bit 1 says its insert has finished linking it.
    state: Cells<AtomicU8>,
}

/// `n` zeroed atomics, or [`Error::OutOfMemory`] naming `what`.
fn zeroed<T>(n: usize, what: &'static str) -> Result<Cells<T>, Error> {
    let oom = || Error::OutOfMemory {
        what,
        bytes: n.saturating_mul(std::mem::size_of::<T>()),
    };
    // SAFETY: only instantiated with AtomicU32 and AtomicU8, for which zero bytes are valid.
    unsafe { Cells::zeroed(n) }.ok_or_else(oom)
}

impl Graph {
    /// Tables for nodes with the given levels (one entry per slot of the capacity), or an
    /// error if the upper table would need more than `u32::MAX` rows or memory runs out.
    pub fn new(m: usize, levels: &[u8]) -> Result<Graph, Error> {
        let m0 = 2 * m;
        let too_many = |what| Error::OutOfMemory {
            what,
            bytes: usize::MAX,
        };
        let mut offsets = Vec::new();
        offsets
            .try_reserve_exact(levels.len() + 1)
            .map_err(|_| Error::OutOfMemory {
                what: "level offsets",
                bytes: 4 * (levels.len() + 1),
            })?;
        let mut rows: u64 = 0;
        offsets.push(0u32);
        for &l in levels {
            rows += u64::from(l);
            offsets.push(u32::try_from(rows).map_err(|_| too_many("upper-layer links"))?);
        }
        let n0 = levels
            .len()
            .checked_mul(1 + m0)
            .ok_or_else(|| too_many("layer-0 links"))?;
        let n1 = (rows as usize)
            .checked_mul(1 + m)
            .ok_or_else(|| too_many("upper-layer links"))?;
        let level0 = zeroed(n0, "layer-0 links")?;
        let upper = zeroed(n1, "upper-layer links")?;
        let state = zeroed(levels.len(), "node locks")?;
        Ok(Graph {
            m,
            m0,
            level0,
            upper,
            offsets: Cells::heap(offsets.into()),
            state,
        })
    }

    /// The same graph with room for more nodes (`levels` covers every slot, old and new; the
    /// old slots' levels must be unchanged).
    pub fn resized(&self, levels: &[u8]) -> Result<Graph, Error> {
        debug_assert!(levels.len() >= self.capacity());
        debug_assert!((0..self.capacity()).all(|i| self.level(i as u32) == levels[i] as usize));
        let g = Graph::new(self.m, levels)?;
        for (dst, src) in g.level0.iter().zip(self.level0.iter()) {
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        for (dst, src) in g.upper.iter().zip(self.upper.iter()) {
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        for (dst, src) in g.state.iter().zip(self.state.iter()) {
            dst.store(
                src.load(Ordering::Relaxed) & (LINKED | REMOVED | STARTED),
                Ordering::Relaxed,
            );
        }
        Ok(g)
    }

    /// A graph from saved tables (on the heap or mapped), every node marked linked. Checks
    /// every invariant the search relies on (levels, link counts, ids in range and of the
    /// right level, no self-links) and says which one fails.
    pub fn from_parts(
        m: usize,
        level0: Cells<AtomicU32>,
        upper: Cells<AtomicU32>,
        offsets: Cells<u32>,
    ) -> Result<Graph, String> {
        let (m0, n) = (2 * m, offsets.len().saturating_sub(1));
        if offsets.first() != Some(&0) || level0.len() != n * (1 + m0) {
            return Err("tables of the wrong size".into());
        }
        for (i, w) in offsets.windows(2).enumerate() {
            if w[1] < w[0] || (w[1] - w[0]) as usize > MAX_LEVEL {
                return Err(format!("node {i} has an invalid level"));
            }
        }
        if offsets[n] as usize * (1 + m) != upper.len() {
            return Err("the upper-layer table does not match the levels".into());
        }
        let level = |i: usize| (offsets[i + 1] - offsets[i]) as usize;
        let check_row = |row: &[AtomicU32], node: usize, layer: usize, max: usize| -> Result<(), String> {
            let c = row[0].load(Ordering::Relaxed) as usize;
            if c > max {
                return Err(format!("node {node} has {c} links on layer {layer} (at most {max})"));
            }
            for cell in &row[1..=c] {
                let id = cell.load(Ordering::Relaxed) as usize;
                if id >= n || id == node || (layer > 0 && level(id) < layer) {
                    return Err(format!("node {node} links to {id} on layer {layer}"));
                }
            }
            Ok(())
        };
        for (i, row) in level0.chunks_exact(1 + m0).enumerate() {
            check_row(row, i, 0, m0)?;
        }
        for (i, w) in offsets.windows(2).enumerate() {
            for (layer, r) in (1..).zip(w[0] as usize..w[1] as usize) {
                check_row(&upper[r * (1 + m)..][..1 + m], i, layer, m)?;
            }
        }
        Ok(Graph {
            m,
            m0,
            level0,
            upper,
            offsets,
            state: Cells::heap((0..n).map(|_| AtomicU8::new(LINKED | STARTED)).collect()),
        })
    }

    /// Layer-0 cells of nodes `0..n`, in file order.
    pub fn level0_cells(&self, n: usize) -> impl Iterator<Item = &AtomicU32> {
        self.level0[..n * (1 + self.m0)].iter()
    }

    /// Upper-layer cells of nodes `0..n`, in file order.
    pub fn upper_cells(&self, n: usize) -> impl Iterator<Item = &AtomicU32> {
        self.upper[..self.offsets[n] as usize * (1 + self.m)].iter()
    }

    /// `offsets[0..=n]`.
    pub fn offsets(&self, n: usize) -> &[u32] {
        &self.offsets[..=n]
    }

    /// Upper-layer rows owned by nodes `0..n`.
    pub fn upper_rows(&self, n: usize) -> usize {
        self.offsets[n] as usize
    }

    /// Slots (nodes the tables have room for).
    pub fn capacity(&self) -> usize {
        self.state.len()
    }

    /// `Mmax0`, the most links on layer 0.
    pub fn m0(&self) -> usize {
        self.m0
    }

    /// Most links a node holds on `layer`.
    #[inline(always)]
    pub fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// The level of node `i` (its highest layer).
    #[inline(always)]
    pub fn level(&self, i: u32) -> usize {
        let i = i as usize;
        (self.offsets[i + 1] - self.offsets[i]) as usize
    }

    /// Node `i`'s row on `layer` (`layer ≤ level(i)`).
    #[inline(always)]
    pub fn row(&self, i: u32, layer: usize) -> &Row {
        if layer == 0 {
            let w = 1 + self.m0;
            &self.level0[i as usize * w..][..w]
        } else {
            debug_assert!(layer <= self.level(i));
            let w = 1 + self.m;
            let r = self.offsets[i as usize] as usize + layer - 1;
            &self.upper[r * w..][..w]
        }
    }

    /// Takes node `i`'s spinlock; it is released when the guard drops.
    #[inline]
    pub fn lock(&self, i: u32) -> LockGuard<'_> {
        let state = &self.state[i as usize];
        // Found held: counted (an extra load of the line the lock is about to take anyway).
        if state.load(Ordering::Relaxed) & row::LOCKED != 0 {
            ROW_LOCK_WAITS.fetch_add(1, Ordering::Relaxed);
        }
        row::lock(state)
    }

    /// Records that node `i` is fully linked (its insert returned).
    pub fn set_linked(&self, i: u32) {
        row::set_linked(&self.state[i as usize]);
    }

    /// Claims the linking of node `i`: `true` for exactly one caller.
    pub fn try_start(&self, i: u32) -> bool {
        row::try_start(&self.state[i as usize])
    }

    /// `true` once node `i`'s insert has finished linking it.
    pub fn is_linked(&self, i: u32) -> bool {
        row::is_linked(&self.state[i as usize])
    }

    /// Marks node `i` removed (`true`) or live again (`false`).
    pub fn set_removed(&self, i: u32, removed: bool) {
        let st = &self.state[i as usize];
        if removed {
            st.fetch_or(REMOVED, Ordering::SeqCst);
        } else {
            st.fetch_and(!REMOVED, Ordering::SeqCst);
        }
    }

    /// `true` if node `i` is linked and not removed, read in one acquire load (its vector and
    /// rows are then visible to the caller).
    #[inline(always)]
    pub fn is_live_linked(&self, i: u32) -> bool {
        self.state[i as usize].load(Ordering::Acquire) & (LINKED | REMOVED) == LINKED
    }

    /// `true` if node `i` is marked removed.
    #[inline(always)]
    pub fn is_removed(&self, i: u32) -> bool {
        self.state[i as usize].load(Ordering::SeqCst) & REMOVED != 0
    }

    /// Readies a freed slot for a new node: not linked, not removed, no links on any layer.
    /// The caller owns the slot (claimed under the slots lock, unreachable since it was
    /// consolidated away, and every search that could have seen it has finished).
    pub fn reset_slot(&self, i: u32) {
        for layer in 0..=self.level(i) {
            let _lock = self.lock(i);
            set_links(self.row(i, layer), std::iter::empty());
        }
        self.state[i as usize].fetch_and(!(LINKED | REMOVED | STARTED), Ordering::SeqCst);
    }

    /// Marks node `i` as loaded removed (from a file), without any other thread around.
    pub fn mark_loaded_removed(&self, i: u32) {
        self.state[i as usize].fetch_or(REMOVED, Ordering::Relaxed);
    }

    /// Heap bytes held by the tables and locks.
    pub fn bytes(&self) -> usize {
        4 * (self.level0.len() + self.upper.len() + self.offsets.len()) + self.state.len()
    }
}
