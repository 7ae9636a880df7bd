//! Insert: the HNSW paper's algorithm with the neighbour-selection heuristic, made safe for
//! many threads by one spinlock per node (held one at a time, so inserts cannot deadlock).
//!
//! A node is linked top-down. On each of its layers: search with `ef_construction`, pick up
//! to `M` diverse neighbours with [`Index::select`], write its own row, then add it to each
//! neighbour's row — shrinking that row with the same heuristic when it is full.

use std::sync::atomic::Ordering;

use crate::graph::scratch::Scratch;
use crate::graph::{count, link, push_link, set_links, Row};
use crate::index::{pack_entry, unpack_entry, Index, NO_ENTRY};

impl Index {
    /// Links the node in `slot`, whose vector and label are already stored — unless another
    /// thread (a save helping along, see `quiesce`) has started linking it already.
    pub(crate) fn insert_node(&self, slot: u32, s: &mut Scratch) {
        if self.graph.try_start(slot) {
            self.link_started(slot, s);
        }
    }

    /// Links the node in `slot`, whose linking the caller has started (`Graph::try_start`).
    pub(crate) fn link_started(&self, slot: u32, s: &mut Scratch) {
        // A new insert reads the graph afresh: re-enter the reader register at the current
        // epoch, so a long batch does not hold back a consolidation's grace period.
        self.scratch.refresh(s);
        // Marks the node linked when this returns — or unwinds, so that a panic here (a bug)
        // can never leave `save` waiting for the node forever.
        struct Done<'a>(&'a crate::graph::Graph, u32);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set_linked(self.1);
            }
        }
        let _done = Done(&self.graph, slot);
        let level = self.graph.level(slot);
        let q = self.slab.row_ptr(slot);
        let mut entry = self.entry.load(Ordering::Acquire);
        // A node that tops the graph holds `top` until it is the entry point, so two such
        // nodes never race to replace each other.
        let mut top_guard = None;
        if entry == NO_ENTRY || level > unpack_entry(entry).1 {
            let guard = self.top.lock().unwrap_or_else(|e| e.into_inner());
            entry = self.entry.load(Ordering::Acquire);
            if entry == NO_ENTRY {
                self.entry.store(pack_entry(slot, level), Ordering::Release);
                return;
            }
            if level > unpack_entry(entry).1 {
                top_guard = Some(guard);
            }
        }
        let top = unpack_entry(entry).1;
        self.prepare_nav(s, q);
        let (mut ep, _) = self.descend(s, q, entry, level.min(top), slot);
        let ef = self.construction_ef();
        // Neighbours are chosen top-down, but links are written bottom-up: layer 0 first,
        // so that a search can only reach the node through an upper layer once its layer-0
        // row is written (else a descent landing on it would find no layer-0 links and
        // return a single result).
        let mut upper: Vec<Vec<(f32, u32)>> = Vec::new();
        for layer in (0..=level.min(top)).rev() {
            self.search_layer(s, q, ep, ef, layer, slot);
            s.cands.clear();
            s.cands.extend(s.pool.iter());
            if s.nav_on {
                // Walked on codes: the heuristic gets exact distances.
                self.rerank(s, q);
            }
            ep = s.cands[0].1;
            self.select(&s.cands, self.params.m, &mut s.kept);
            if layer > 0 {
                upper.push(s.kept.clone());
            }
        }
        self.connect(s, slot, 0);
        for (layer, kept) in (1..).zip(upper.into_iter().rev()) {
            s.kept = kept;
            self.connect(s, slot, layer);
        }
        if top_guard.is_some() {
            self.entry.store(pack_entry(slot, level), Ordering::Release);
        }
    }

    /// Makes every node reachable on layer 0 from the entry point again; returns how many
    /// nodes it relinked. [`add_batch`](Index::add_batch) calls it once the graph has grown
    /// by an eighth since the last repair; after single [`add`](Index::add)s or small
    /// batches, call it yourself when you want the guarantee now (it walks the whole graph:
    /// O(links)). Runs beside searches and inserts, one repair at a time, never during a
    /// save; called from inside this index's own progress callback it does nothing and
    /// returns 0 (a save may be waiting for that batch).
    ///
    /// Why it is needed: when a full neighbour row is shrunk by the heuristic, the link it
    /// drops may have been the only way into some node. A few nodes per thousand end up so
    /// (hnswlib and usearch graphs have them too). Each is linked in from the closest
    /// reachable node that has room.
    pub fn repair_connectivity(&self) -> usize {
        if self.inside_own_callback() {
            return 0;
        }
        let _maintenance = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        self.repair_locked()
    }

    /// [`repair_connectivity`](Self::repair_connectivity) for a caller that holds the
    /// maintenance lock.
    pub(crate) fn repair_locked(&self) -> usize {
        self.unrepaired.store(0, Ordering::Relaxed);
        let mut relinked = 0;
        let mut guard = self.take_scratch();
        let s = &mut *guard;
        // A relink never cuts another node off unless a full row had to be overwritten, so
        // one round nearly always suffices; the bound only guards against pathological data.
        for _ in 0..8 {
            // One entry point for the walk and the relinks (a node that tops the graph may
            // become the entry meanwhile: it is then neither walked from nor relinked).
            let entry = self.entry.load(Ordering::Acquire);
            if entry == crate::index::NO_ENTRY {
                break;
            }
            let start = crate::index::unpack_entry(entry).0;
            // Nodes still being inserted are not lost, only unfinished (their rows may not
            // be written yet), and removed nodes are meant to become unreachable: only
            // nodes finished before the walk count.
            let n = self.used().min(self.capacity());
            let finished: Vec<bool> = (0..n as u32)
                .map(|i| self.graph.is_linked(i) && !self.graph.is_removed(i))
                .collect();
            let reached = self.reachable_from(entry, n);
            let lost: Vec<u32> = (0..n as u32)
                .filter(|&i| finished[i as usize] && !reached[i as usize] && i != start)
                .collect();
            if lost.is_empty() {
                break;
            }
            for &u in &lost {
                let q = self.slab.row_ptr(u);
                self.prepare_nav(s, q);
                let (ep, _) = self.descend(s, q, entry, 0, u);
                self.search_layer(s, q, ep, self.construction_ef(), 0, u);
                s.cands.clear();
                s.cands.extend(s.pool.iter());
                let linked = s.cands.iter().any(|&(_, c)| {
                    let _lock = self.graph.lock(c);
                    let row = self.graph.row(c, 0);
                    (0..count(row)).any(|j| link(row, j) == u) || push_link(row, u)
                });
                if !linked {
                    // Every candidate row was full: the nearest gives up its farthest link,
                    // chosen under its lock (the row may have changed since).
                    let c = s.cands[0].1;
                    let _lock = self.graph.lock(c);
                    let row = self.graph.row(c, 0);
                    let n = count(row);
                    if !(0..n).any(|j| link(row, j) == u) && !push_link(row, u) {
                        s.ids.clear();
                        s.ids.extend((0..n).map(|j| link(row, j)));
                        self.score(s, self.slab.row_ptr(c));
                        let far = (0..n).max_by(|&a, &b| s.dists[a].total_cmp(&s.dists[b])).unwrap_or(0);
                        row[1 + far].store(u, Ordering::Release);
                    }
                }
                relinked += 1;
            }
        }
        relinked
    }

    /// The candidate list of an insert: `ef_construction`, at least `M`, at most the nodes
    /// there are (a larger pool could never fill).
    pub(crate) fn construction_ef(&self) -> usize {
        self.params.ef_construction.max(self.params.m).min(self.len().max(1))
    }

    /// The diversity heuristic: walks `cands` (closest first) and keeps a candidate only if
    /// it is closer to the base node than to every candidate kept before it, until `max` are
    /// kept. Fewer than `max` candidates are all kept.
    pub(crate) fn select(&self, cands: &[(f32, u32)], max: usize, kept: &mut Vec<(f32, u32)>) {
        kept.clear();
        if cands.len() < max {
            kept.extend_from_slice(cands);
            return;
        }
        for &(d, c) in cands {
            if kept.len() == max {
                break;
            }
            let qc = self.slab.row_ptr(c);
            if kept.iter().all(|&(_, r)| self.distance_to(qc, r) >= d) {
                kept.push((d, c));
            }
        }
    }

    /// Writes `s.kept` as node `slot`'s links on `layer`, then links each of them back.
    fn connect(&self, s: &mut Scratch, slot: u32, layer: usize) {
        let max = self.graph.max_links(layer);
        debug_assert!(s
            .kept
            .iter()
            .all(|&(_, id)| id != slot && self.graph.level(id) >= layer));
        {
            let _lock = self.graph.lock(slot);
            let row = self.graph.row(slot, layer);
            if count(row) == 0 {
                set_links(row, s.kept.iter().map(|&(_, id)| id));
            } else {
                // Another insert reached this node from a layer above and linked to it on
                // this layer already: keep those links in the running.
                let existing = count(row);
                s.ids.clear();
                s.ids.extend(
                    (0..existing)
                        .map(|j| link(row, j))
                        .filter(|id| s.kept.iter().all(|k| k.1 != *id)),
                );
                s.shrink.clear();
                s.shrink.extend_from_slice(&s.kept);
                self.reselect(s, slot, max, row);
            }
        }
        for i in 0..s.kept.len() {
            let (d, n) = s.kept[i];
            let _lock = self.graph.lock(n);
            let row = self.graph.row(n, layer);
            let len = count(row);
            if (0..len).any(|j| link(row, j) == slot) || push_link(row, slot) {
                continue;
            }
            // `n` is full: re-select its links among the old ones and `slot`.
            s.ids.clear();
            s.ids.extend((0..len).map(|j| link(row, j)));
            s.shrink.clear();
            s.shrink.push((d, slot));
            self.reselect(s, n, max, row);
        }
    }

    /// Rewrites `row`, node `base`'s (its lock held), with the heuristic's choice of at most
    /// `max` links among the ids in `s.ids` (scored here against `base`) and the pairs
    /// already scored in `s.shrink`.
    fn reselect(&self, s: &mut Scratch, base: u32, max: usize, row: &Row) {
        self.score(s, self.slab.row_ptr(base));
        s.shrink.extend(s.dists.iter().copied().zip(s.ids.iter().copied()));
        s.shrink.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.select(&s.shrink, max, &mut s.cands);
        set_links(row, s.cands.iter().map(|&(_, id)| id));
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{count, link, set_links};
    use crate::index::unpack_entry;
    use crate::{Index, Metric, Params};
    use std::sync::atomic::Ordering;

    fn row0(index: &Index, i: u32) -> Vec<u32> {
        let row = index.graph.row(i, 0);
        (0..count(row)).map(|j| link(row, j)).collect()
    }

    /// Node 5 loses every in-link while every row near it is full: the repair must give it
    /// a link from its nearest node by replacing that node's farthest link (node 9, stored
    /// second), not whichever link happens to be stored last.
    #[test]
    fn repair_replaces_the_farthest_link_of_a_full_row() {
        let xs = [0.0f32, 1.0, 2.0, 3.0, 4.0, 4.8, 6.0, 7.0, 8.0, 9.0];
        let index = (0..)
            .map(|seed| {
                let index = Index::new(Params::new(1, Metric::L2).m(2).ef_construction(2).seed(seed), 10).unwrap();
                for (i, &x) in xs.iter().enumerate() {
                    index.add(i as u64, &[x]).unwrap();
                }
                index
            })
            .find(|index| unpack_entry(index.entry.load(Ordering::Acquire)).0 != 5)
            .unwrap();
        let rows: [[u32; 4]; 10] = [
            [1, 2, 3, 4],
            [0, 2, 3, 4],
            [1, 3, 0, 4],
            [2, 4, 1, 0],
            [3, 9, 6, 2],
            [4, 6, 3, 7],
            [7, 8, 4, 0],
            [6, 8, 9, 4],
            [7, 9, 6, 4],
            [8, 7, 6, 4],
        ];
        for (i, r) in rows.iter().enumerate() {
            let _lock = index.graph.lock(i as u32);
            set_links(index.graph.row(i as u32, 0), r.iter().copied());
        }
        assert_eq!(index.graph_stats().unreachable, 1);
        assert_eq!(index.repair_connectivity(), 1);
        assert_eq!(row0(&index, 4), [3, 5, 6, 2]);
        assert!(index.graph_stats().is_healthy());
    }
}
