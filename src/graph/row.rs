//! The row protocol: how a neighbour row is published and rewritten while searches read it
//! without locks, and the per-node spinlock that serialises its writers. Written against
//! `super::atomics`, so that `tests/loom.rs` can compile this very file against loom's
//! atomics and check it under every interleaving.
//!
//! - A row is `[count, id_1, …, id_max]`. Writers hold the node's lock and store the ids,
//!   then the count, all with `Release`; readers load with `Acquire` and clamp the count to
//!   the row's room.
//! - Why every id is stored with `Release`, not only the count: rows are rewritten in place,
//!   so a reader can load an id that a writer stored after the count that reader saw. The
//!   reader then computes a distance to that id's vector, which must be visible to it: the
//!   vector was written before its id was first published (and the writer learned the id
//!   through an `Acquire` chain), so the release store of the id is what carries that
//!   visibility to the reader's acquire load. With relaxed id stores the loom model reports a
//!   data race on the vector.
//! - The lock is bit 0 of a node's state byte (test, then test-and-set); bit 1 says the
//!   node's insert has finished.

use super::atomics::{AtomicU32, AtomicU8, Backoff, Ordering};

/// Lock bit of a node's state byte.
pub const LOCKED: u8 = 1;
/// "Insert finished" bit of a node's state byte.
pub const LINKED: u8 = 2;
/// "Insert started" bit of a node's state byte: whoever sets it (see [`try_start`]) links
/// the node. Lets a save link a claimed node that nobody has started yet, rather than wait
/// for a thread that may be blocked.
pub const STARTED: u8 = 8;
/// "Removed" bit of a node's state byte: the node is never returned by a search (it may
/// still be a waypoint until it is consolidated away).
pub const REMOVED: u8 = 4;

/// One neighbour list: `row[0]` is the count, `row[1..]` the slots.
pub type Row = [AtomicU32];

/// Takes the spinlock in `state`; it is released when the guard drops.
#[inline]
pub fn lock(state: &AtomicU8) -> LockGuard<'_> {
    let backoff = Backoff::new();
    // Test, then test-and-set: waiters spin on a plain load, which keeps the cache line
    // shared, and only try the read-modify-write once the lock looks free.
    while state.load(Ordering::Relaxed) & LOCKED != 0 || state.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
        backoff.snooze();
    }
    LockGuard { flag: state }
}

/// Marks the node of `state` fully linked.
#[inline]
pub fn set_linked(state: &AtomicU8) {
    state.fetch_or(LINKED, Ordering::Release);
}

/// Claims the right to link the node of `state`: `true` for exactly one caller.
#[inline]
pub fn try_start(state: &AtomicU8) -> bool {
    state.fetch_or(STARTED, Ordering::AcqRel) & STARTED == 0
}

/// `true` once [`set_linked`] was called on `state`.
#[inline]
pub fn is_linked(state: &AtomicU8) -> bool {
    state.load(Ordering::Acquire) & LINKED != 0
}

/// Holds a node's spinlock.
pub struct LockGuard<'a> {
    flag: &'a AtomicU8,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.flag.fetch_and(!LOCKED, Ordering::Release);
    }
}

/// Number of links in `row` (clamped to the row's room, so a racing reader never indexes
/// past it).
#[inline(always)]
pub fn count(row: &Row) -> usize {
    (row[0].load(Ordering::Acquire) as usize).min(row.len() - 1)
}

/// Link `j` of `row`.
#[inline(always)]
pub fn link(row: &Row, j: usize) -> u32 {
    row[1 + j].load(Ordering::Acquire)
}

/// Replaces the links of `row` by `ids`. Call with the node's lock held.
#[inline]
pub fn set_links(row: &Row, ids: impl ExactSizeIterator<Item = u32>) {
    let n = ids.len();
    debug_assert!(n < row.len());
    for (slot, id) in row[1..].iter().zip(ids) {
        slot.store(id, Ordering::Release);
    }
    row[0].store(n as u32, Ordering::Release);
}

/// Appends `id` to `row` if there is room; `false` if it is full. Call with the lock held.
#[inline]
pub fn push_link(row: &Row, id: u32) -> bool {
    let n = count(row);
    if n + 1 >= row.len() {
        return false;
    }
    row[1 + n].store(id, Ordering::Release);
    row[0].store(n as u32 + 1, Ordering::Release);
    true
}
