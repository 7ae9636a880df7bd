//! A living index: [`Index::remove`], [`Index::restore`], [`Index::update`],
//! [`Index::consolidate`] and [`Index::compact`].
//!
//! - **Removing** sets a node's removed bit: from then on no search returns it, but it stays
//!   in the graph as a waypoint, so recall does not drop while it waits for consolidation.
//!   While removed nodes are in the graph (`hidden > 0`), searches take the two-heap path on
//!   which they do not count towards `ef`.
//! - **Updating** inserts the new vector as a new node (hidden while it is linked), then, in
//!   one step under the slots lock, hides the old node and shows the new one. A search sees
//!   the old vector or the new one, never a mix; for the instant between the two bit flips
//!   it may see neither, never both.
//! - **Consolidating** pauses new inserts (searches go on), rewires every node that links to
//!   a removed node — re-selecting, with the insert heuristic, among its live links and the
//!   removed node's links — moves the entry point off removed nodes, waits until every
//!   search that might still hold a removed node has finished (the scratch pool's reader
//!   epochs), and only then hands the slots out again. So a reused slot's row is never
//!   written while anything can read it.
//! - **Compacting** (`&mut self`) consolidates, then renumbers the live nodes densely and
//!   shrinks every table to them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::graph::scratch::Scratch;
use crate::graph::{count, link, set_links, Graph};
use crate::index::{pack_entry, slab_oom, unpack_entry, zeroed_labels, CallbackScope, Index, NO_ENTRY};
use crate::store::slab::Slab;

impl Index {
    /// Removes `label`: from the moment this returns no search returns it (searches already
    /// running included). Its node stays in the graph as a waypoint until
    /// [`consolidate`](Self::consolidate), and [`restore`](Self::restore) can bring it back
    /// until then. Safe beside concurrent adds and searches.
    ///
    /// Errors: [`Error::UnknownLabel`] (not in the index, or already removed),
    /// [`Error::InsideProgressCallback`].
    pub fn remove(&self, label: u64) -> Result<()> {
        self.refuse_inside_callback()?;
        let mut slots = self.lock_slots_for_claim();
        let slot = slots.by_label.remove(&label).ok_or(Error::UnknownLabel(label))?;
        // In this order: a search that sees the new `removals` also sees `hidden` and the
        // removed bit (all SeqCst).
        self.hidden.fetch_add(1, Ordering::SeqCst);
        self.graph.set_removed(slot, true);
        self.removals.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_sub(1, Ordering::AcqRel);
        slots.removed.insert(label, slot);
        slots.pending.insert(slot);
        Ok(())
    }

    /// Brings back a removed `label` whose node was not consolidated away yet (hnswlib's
    /// `unmark_deleted`). A live label is left as it is.
    ///
    /// Errors: [`Error::UnknownLabel`] (never added, consolidated away, or re-added or
    /// updated since), [`Error::InsideProgressCallback`].
    pub fn restore(&self, label: u64) -> Result<()> {
        self.refuse_inside_callback()?;
        let mut slots = self.lock_slots_for_claim();
        if slots.by_label.contains_key(&label) {
            return Ok(());
        }
        let slot = slots.removed.remove(&label).ok_or(Error::UnknownLabel(label))?;
        slots.pending.remove(&slot);
        self.graph.set_removed(slot, false);
        self.hidden.fetch_sub(1, Ordering::SeqCst);
        slots.by_label.insert(label, slot);
        self.live.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Replaces the vector of `label`. The new vector is linked as a new node (which may
    /// reuse a freed slot) while searches still see the old one; then the old node is
    /// removed (a waypoint until consolidated) and the new one shown. Concurrent searches
    /// see the old vector or the new one, never a torn row.
    ///
    /// The new node needs a slot: a freed one (see [`consolidate`](Self::consolidate)) or
    /// room below the capacity; a full index says [`Error::CapacityExhausted`] and is left
    /// unchanged (hnswlib rewrites the vector in place instead, which concurrent searches
    /// could read torn).
    ///
    /// Errors: those of [`add`](Self::add) for the vector, and [`Error::UnknownLabel`].
    pub fn update(&self, label: u64, vector: &[f32]) -> Result<()> {
        self.refuse_inside_callback()?;
        let mut s = self.take_scratch();
        self.load_query(&mut s, vector)?;
        let slot = {
            let mut slots = self.lock_slots_for_claim();
            if !slots.by_label.contains_key(&label) {
                return Err(Error::UnknownLabel(label));
            }
            let slot = self.claim_slots(&mut slots, 1)?[0];
            // SAFETY: `slot` was just claimed: no other thread reads or writes its row until
            // `insert_node` publishes it (a reused slot is unreachable, and no reader that
            // saw it is left).
            unsafe {
                self.slab.write(slot, &s.query[..self.dim()]);
                self.write_code(slot);
            }
            self.labels[slot as usize].store(label, Ordering::Relaxed);
            // Hidden while it is linked: no search returns it yet. Counted as a removal, so
            // a search that started before (on the path that does not check removed bits)
            // re-checks its results.
            self.hidden.fetch_add(1, Ordering::SeqCst);
            self.graph.set_removed(slot, true);
            self.removals.fetch_add(1, Ordering::SeqCst);
            slot
        };
        self.insert_node(slot, &mut s);
        self.unrepaired.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.lock_slots_for_claim();
        match slots.by_label.get(&label).copied() {
            Some(old) => {
                // Hide the old node first, then show the new one: never both at once.
                self.graph.set_removed(old, true);
                self.removals.fetch_add(1, Ordering::SeqCst);
                slots.pending.insert(old);
                self.graph.set_removed(slot, false);
                slots.by_label.insert(label, slot);
            }
            // Removed while we linked: the new node stays removed with it (not restorable:
            // `restore` brings back the old node).
            None => {
                slots.pending.insert(slot);
            }
        }
        Ok(())
    }

    /// Rewires the graph around every removed node and frees their slots for reuse; returns
    /// how many slots it freed. See [`consolidate_with_progress`](Self::consolidate_with_progress).
    pub fn consolidate(&self) -> usize {
        self.consolidate_with_progress(|_, _| {})
    }

    /// [`consolidate`](Self::consolidate), calling `progress(done, total)` as it scans the
    /// nodes (every 4,096 and at the end).
    ///
    /// Every node that links to a removed node gets its links re-selected, with the insert
    /// heuristic, among its live links and the removed node's links; the entry point moves
    /// to a live node; once no running search can still hold a removed node, the slots are
    /// freed: the next adds reuse them. Searches go on meanwhile; `add`, `update`, `remove`
    /// and `restore` wait until it is done. Removed labels can no longer be restored
    /// afterwards. Called from inside this index's progress callbacks, it does nothing and
    /// returns 0. The callback may search the index, not change it.
    pub fn consolidate_with_progress(&self, progress: impl Fn(usize, usize) + Sync) -> usize {
        // From inside a search or batch of this index (a filter or progress callback), the
        // grace period below would wait for the caller itself.
        if self.inside_own_callback() || self.scratch.held_by_this_thread() {
            return 0;
        }
        let Some(quiet) = self.quiesce() else {
            return 0;
        };
        let n = quiet.count;
        let (gone, free) = {
            let mut slots = self.lock_slots();
            let gone: Vec<u32> = slots.pending.drain().collect();
            // Every restorable node is pending, so gone now.
            slots.removed.clear();
            slots.draining.extend_from_slice(&gone);
            (gone, slots.outside().collect::<Vec<u32>>())
        };
        if gone.is_empty() {
            return 0;
        }
        let mut skip = vec![0u8; n];
        free.iter().for_each(|&f| skip[f as usize] = FREE);
        gone.iter().for_each(|&g| skip[g as usize] = GONE);
        // On threads of our own, not rayon's: rayon workers may be blocked on the pause this
        // call holds. Every core: adds, updates and removals wait until this returns, and
        // leaving a core to searches was measured (serve-bench, 2 shared cores) to lengthen
        // that wait 1.5-2× (50,000 × 128 with 600 removed: 2-5 s instead of 1.2-3.4 s) with
        // no clear gain for the readers' tail on that machine (README, tail latency).
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(n.div_ceil(1024).max(1));
        let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let rewired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        let mut guard = self.take_scratch();
                        loop {
                            let start = next.fetch_add(256, Ordering::Relaxed);
                            if start >= n {
                                break;
                            }
                            let end = (start + 256).min(n);
                            for v in start as u32..end as u32 {
                                if skip[v as usize] == 0 {
                                    for layer in 0..=self.graph.level(v) {
                                        self.rewire(&mut guard, v, layer, &skip);
                                    }
                                }
                            }
                            let before = done.fetch_add(end - start, Ordering::Relaxed);
                            if (before + end - start) / 4096 != before / 4096 || before + end - start == n {
                                let _scope = CallbackScope::enter(self);
                                progress(before + end - start, n);
                            }
                        }
                    });
                }
            });
        }));
        if let Err(panic) = rewired {
            // A panicking progress callback (or a bug): the removed nodes stay pending (not
            // restorable any more), still counted as hidden; the next consolidation takes
            // them. Links already rewired around them are fine as they are.
            let mut slots = self.lock_slots();
            slots.draining.retain(|s| skip.get(*s as usize) != Some(&GONE));
            slots.pending.extend(gone.iter().copied());
            drop(slots);
            drop(quiet);
            std::panic::resume_unwind(panic);
        }
        self.move_entry_off(&skip);
        self.repair_locked();
        // No link leads to a removed node any more and the entry point is live: inserts may
        // resume (nothing they find can lead them there), and saves may run (they write the
        // draining slots as free).
        drop(quiet);
        // The grace period: every search or insert that started before the rewiring (and so
        // might still hold a removed node) has finished.
        self.scratch.wait_for_readers();
        {
            let mut slots = self.lock_slots();
            slots.draining.retain(|s| skip.get(*s as usize) != Some(&GONE));
            slots.free.extend_from_slice(&gone);
        }
        self.hidden.fetch_sub(gone.len(), Ordering::SeqCst);
        gone.len()
    }

    /// Re-selects node `v`'s links on `layer` if any of them is in `skip` (caller: claims
    /// paused, inserts finished).
    fn rewire(&self, s: &mut Scratch, v: u32, layer: usize, skip: &[u8]) {
        let row = self.graph.row(v, layer);
        let links = count(row);
        let live = (0..links).filter(|&j| skip[link(row, j) as usize] == 0).count();
        if live == links {
            return;
        }
        let q = self.slab.row_ptr(v);
        // A node that lost more than half its links also gets the candidates of a fresh
        // search on this layer (as an insert would), not only its neighbours' neighbours.
        let mut found = std::mem::take(&mut s.shrink);
        found.clear();
        if 2 * live < self.graph.max_links(layer) {
            let entry = self.entry.load(Ordering::Acquire);
            let top = unpack_entry(entry).1;
            if entry != NO_ENTRY && unpack_entry(entry).0 != v && top >= layer {
                self.prepare_nav(s, q);
                let (ep, _) = self.descend(s, q, entry, layer, v);
                if ep != v {
                    self.search_layer(s, q, ep, self.construction_ef(), layer, v);
                    found.extend(s.pool.iter().filter(|&(_, id)| skip[id as usize] == 0 && id != v));
                }
            }
        }
        // Only this thread writes `v`'s rows while inserts are paused; the lock keeps
        // searches' readers consistent with the protocol all the same.
        let _lock = self.graph.lock(v);
        s.ids.clear();
        s.ids.extend(found.iter().map(|&(_, id)| id));
        for j in 0..links {
            let u = link(row, j);
            if skip[u as usize] == 0 {
                s.ids.push(u);
            } else if skip[u as usize] == GONE {
                // A removed node's row is no longer written: read it without its lock.
                let r = self.graph.row(u, layer);
                s.ids.extend(
                    (0..count(r))
                        .map(|i| link(r, i))
                        .filter(|&w| w != v && skip[w as usize] == 0),
                );
            }
        }
        s.ids.sort_unstable();
        s.ids.dedup();
        s.shrink = found;
        s.cands.clear();
        s.cands.extend(s.ids.iter().map(|&id| (self.distance_to(q, id), id)));
        s.distances += s.ids.len() as u64;
        s.cands.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut kept = std::mem::take(&mut s.kept);
        let max = self.graph.max_links(layer);
        self.select(&s.cands, max, &mut kept);
        // Then fill the row with the closest candidates the heuristic passed over (the HNSW
        // paper's "keep pruned connections"): a rewired node has lost in-links it will not
        // get back from later inserts the way a fresh node does, and without this recall
        // decays over repeated churn (measured: examples/churn.rs, 10 rounds of 10%).
        for &c in &s.cands {
            if kept.len() >= max {
                break;
            }
            if !kept.iter().any(|k| k.1 == c.1) {
                kept.push(c);
            }
        }
        set_links(row, kept.iter().map(|&(_, id)| id));
        s.kept = kept;
    }

    /// If the entry point is about to be freed, makes the live node of the highest level
    /// the entry point (or none, if no node is left).
    fn move_entry_off(&self, skip: &[u8]) {
        let _top = self.top.lock().unwrap_or_else(|e| e.into_inner());
        let entry = self.entry.load(Ordering::Acquire);
        if entry == NO_ENTRY || skip[unpack_entry(entry).0 as usize] == 0 {
            return;
        }
        let best = (0..skip.len() as u32)
            .filter(|&i| skip[i as usize] == 0)
            .max_by_key(|&i| (self.graph.level(i), !self.graph.is_removed(i), std::cmp::Reverse(i)));
        let next = best.map_or(NO_ENTRY, |i| pack_entry(i, self.graph.level(i)));
        self.entry.store(next, Ordering::Release);
    }

    /// Consolidates, then renumbers the live nodes `0..len` and shrinks every table to them
    /// (capacity = `len`; [`reserve`](Self::reserve) grows it again). Labels, links and
    /// search results are unchanged; node ids (internal) change.
    pub fn compact(&mut self) -> Result<()> {
        self.consolidate();
        let keep = self.occupied();
        self.renumber(keep, Vec::new())
    }

    /// Consolidates, then renumbers the nodes in breadth-first order of layer 0 from the
    /// entry point, so that nodes a search visits together sit together in memory (vector
    /// rows, codes and link rows alike): fewer cache lines and TLB entries per query. The
    /// capacity is kept (free slots move to the end). Labels, links and search results are
    /// unchanged; node ids (internal) change. Call it after a large build; it copies every
    /// table once (`&mut self`).
    pub fn optimize(&mut self) -> Result<()> {
        self.consolidate();
        let keep = self.occupied();
        let used = self.used();
        let entry = self.entry.load(Ordering::Acquire);
        let mut is_kept = vec![false; used];
        keep.iter().for_each(|&i| is_kept[i as usize] = true);
        let mut order = Vec::with_capacity(keep.len());
        let mut seen = vec![false; used];
        if entry != NO_ENTRY {
            let start = unpack_entry(entry).0;
            seen[start as usize] = true;
            order.push(start);
            let mut head = 0;
            while head < order.len() {
                let row = self.graph.row(order[head], 0);
                head += 1;
                for j in 0..count(row) {
                    let id = link(row, j) as usize;
                    if id < used && is_kept[id] && !seen[id] {
                        seen[id] = true;
                        order.push(id as u32);
                    }
                }
            }
        }
        // Nodes no walk reaches (a few per thousand before a repair) keep their relative
        // order at the end.
        order.extend(keep.iter().filter(|&&i| !seen[i as usize]));
        debug_assert_eq!(order.len(), keep.len());
        // Slots not holding a node keep their drawn levels, after the nodes.
        let extra: Vec<u8> = (0..self.capacity() as u32)
            .filter(|&i| (i as usize) >= used || !is_kept[i as usize])
            .map(|i| self.graph.level(i) as u8)
            .collect();
        self.renumber(order, extra)
    }

    /// Slots holding a node (live or removed, not free), in id order.
    fn occupied(&self) -> Vec<u32> {
        let used = self.used();
        let free = self.lock_slots().free.clone();
        let mut is_free = vec![false; used];
        free.iter().for_each(|&f| is_free[f as usize] = true);
        (0..used as u32).filter(|&i| !is_free[i as usize]).collect()
    }

    /// Rebuilds every table with node `keep[j]` in slot `j`, then `extra.len()` empty slots
    /// of those levels (capacity `keep.len() + extra.len()`). Caller: `&mut self`, just
    /// consolidated, `keep` = every occupied slot once.
    fn renumber(&mut self, keep: Vec<u32>, extra: Vec<u8>) -> Result<()> {
        let used = self.used();
        let mut new_id = vec![u32::MAX; used];
        for (new, &old) in keep.iter().enumerate() {
            new_id[old as usize] = new as u32;
        }
        let mut levels: Vec<u8> = keep.iter().map(|&i| self.graph.level(i) as u8).collect();
        levels.extend_from_slice(&extra);
        let cap = levels.len();
        // Same stride as now (a loaded file's may differ from a new index's).
        let slab = Slab::with_stride(self.dim(), self.slab.stride(), cap).ok_or_else(|| slab_oom(self.dim(), cap))?;
        let graph = Graph::new(self.params.m, &levels)?;
        let labels = zeroed_labels(cap)?;
        let mut slab = slab;
        let stride = self.slab.stride();
        let rows = slab.as_mut_slice(keep.len());
        for (new, &old) in keep.iter().enumerate() {
            // SAFETY: `&mut self`: no other thread reads or writes; `old` is a used slot,
            // written when it was added.
            let src = unsafe { std::slice::from_raw_parts(self.slab.row_ptr(old), stride) };
            rows[new * stride..][..stride].copy_from_slice(src);
            labels[new].store(self.labels[old as usize].load(Ordering::Relaxed), Ordering::Relaxed);
            for layer in 0..=self.graph.level(old) {
                let r = self.graph.row(old, layer);
                let ids = (0..count(r))
                    .map(|j| new_id[link(r, j) as usize])
                    .filter(|&id| id != u32::MAX);
                let ids: Vec<u32> = ids.collect();
                set_links(graph.row(new as u32, layer), ids.into_iter());
            }
            graph.set_linked(new as u32);
            if self.graph.is_removed(old) {
                graph.mark_loaded_removed(new as u32);
            }
        }
        let entry = self.entry.load(Ordering::Acquire);
        let entry = if entry == NO_ENTRY || keep.is_empty() {
            NO_ENTRY
        } else {
            let (id, level) = unpack_entry(entry);
            pack_entry(new_id[id as usize], level)
        };
        // Everything that can fail (allocations) happens before the slot maps change.
        let codes = match &self.codes {
            Some(old) => {
                let codes = crate::index::new_codes(&self.params, cap)?.expect("params have codes");
                // SAFETY: a new table nobody else can see yet; rows `0..keep.len()` of the
                // new slab are written (above).
                unsafe { codes.fill_like(old, &slab, keep.len()) };
                Some(codes)
            }
            None => None,
        };
        let remap =
            |m: &HashMap<u64, u32>| -> HashMap<u64, u32> { m.iter().map(|(&l, &s)| (l, new_id[s as usize])).collect() };
        {
            let slots = &mut *self.lock_slots();
            slots.free.clear();
            slots.by_label = remap(&slots.by_label);
            slots.removed = remap(&slots.removed);
            slots.pending = slots.pending.iter().map(|&s| new_id[s as usize]).collect();
        }
        self.slab = slab;
        self.codes = codes;
        self.graph = graph;
        self.labels = labels;
        *self.used.get_mut() = keep.len();
        *self.entry.get_mut() = entry;
        self.scratch.clear();
        self.set_scratch_limit();
        Ok(())
    }
}

/// `skip` marks of [`Index::consolidate`]: a removed node being consolidated away, and a
/// slot that was free already.
const GONE: u8 = 1;
const FREE: u8 = 2;
