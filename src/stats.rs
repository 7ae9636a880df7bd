//! [`GraphStats`]: the shape of an index's graph and a check of its invariants.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use crate::graph::{count, link};
use crate::index::{unpack_entry, Index, NO_ENTRY};

/// What [`Index::graph_stats`] found. Taken while no insert runs, every `bad_*` count is 0
/// and `unreachable` is 0 in a healthy graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// Nodes in the graph.
    pub nodes: usize,
    /// `nodes_per_level[l]`: nodes whose top layer is `l`.
    pub nodes_per_level: Vec<usize>,
    /// `degree_histogram[l][d]`: nodes with `d` links on layer `l`.
    pub degree_histogram: Vec<Vec<usize>>,
    /// Links in total, over all layers.
    pub links: usize,
    /// Entry point `(node, level)`, if any.
    pub entry: Option<(u32, usize)>,
    /// Rows holding more links than their layer allows.
    pub bad_degree: usize,
    /// Links from a node to itself.
    pub bad_self_links: usize,
    /// Links to an id that is not a node, or to a node that does not reach that layer.
    pub bad_ids: usize,
    /// Links repeated within one row.
    pub bad_duplicates: usize,
    /// Live layer-0 nodes that cannot be reached from the entry point by following links.
    pub unreachable: usize,
    /// Removed nodes still in the graph as waypoints (until [`Index::consolidate`]).
    pub removed: usize,
    /// Slots consolidated away, free for reuse (not counted in `nodes`).
    pub free: usize,
}

impl GraphStats {
    /// `true` if no invariant is broken and every node is reachable.
    pub fn is_healthy(&self) -> bool {
        self.bad_degree + self.bad_self_links + self.bad_ids + self.bad_duplicates + self.unreachable == 0
    }
}

impl Index {
    /// Walks the whole graph: counts per level, degree histograms, invariant violations, and
    /// layer-0 reachability from the entry point. O(links); meant for tests, tools and
    /// diagnostics, not hot paths.
    pub fn graph_stats(&self) -> GraphStats {
        let n = self.used().min(self.capacity());
        let g = &self.graph;
        let is_free: Vec<bool> = {
            let slots = self.lock_slots();
            let mut f = vec![false; n];
            for s in slots.outside() {
                if (s as usize) < n {
                    f[s as usize] = true;
                }
            }
            f
        };
        let free = is_free.iter().filter(|&&f| f).count();
        let mut st = GraphStats {
            nodes: n - free,
            free,
            removed: self.hidden.load(Ordering::SeqCst),
            ..Default::default()
        };
        let top = (0..n)
            .filter(|&i| !is_free[i])
            .map(|i| g.level(i as u32))
            .max()
            .unwrap_or(0);
        st.nodes_per_level = vec![0; top + 1];
        st.degree_histogram = (0..=top).map(|l| vec![0; g.max_links(l) + 2]).collect();
        let mut seen = Vec::new();
        for i in (0..n as u32).filter(|&i| !is_free[i as usize]) {
            let level = g.level(i);
            st.nodes_per_level[level] += 1;
            for layer in 0..=level {
                let row = g.row(i, layer);
                let raw = row[0].load(Ordering::Acquire) as usize;
                let hist = &mut st.degree_histogram[layer];
                let last = hist.len() - 1;
                hist[raw.min(last)] += 1;
                if raw > g.max_links(layer) {
                    st.bad_degree += 1;
                }
                seen.clear();
                for j in 0..count(row) {
                    let id = link(row, j);
                    st.links += 1;
                    if id == i {
                        st.bad_self_links += 1;
                    } else if id as usize >= n || is_free[id as usize] || g.level(id) < layer {
                        st.bad_ids += 1;
                    }
                    if seen.contains(&id) {
                        st.bad_duplicates += 1;
                    }
                    seen.push(id);
                }
            }
        }
        let entry = self.entry.load(Ordering::Acquire);
        st.entry = (entry != NO_ENTRY).then(|| unpack_entry(entry));
        // `reachable0` reads the entry point and `used` afresh (a concurrent add may have
        // raised it): count the nodes both walks know.
        let reached = self.reachable0();
        st.unreachable = (0..reached.len().min(n))
            .filter(|&i| !reached[i] && !is_free[i] && !g.is_removed(i as u32))
            .count();
        st
    }

    /// `reached[i]`: whether node `i` can be reached on layer 0 from the entry point.
    pub(crate) fn reachable0(&self) -> Vec<bool> {
        // The entry point first: it is published after its slot was counted in `used`, so
        // the `used` read after it covers it (read the other way round, a concurrent first
        // `add` could give an entry past it).
        let entry = self.entry.load(Ordering::Acquire);
        let n = self.used().min(self.capacity());
        self.reachable_from(entry, n)
    }

    /// `reached[i]` for nodes `0..n`: whether node `i` can be reached on layer 0 from
    /// `entry` (read by the caller, before `n`).
    pub(crate) fn reachable_from(&self, entry: u64, n: usize) -> Vec<bool> {
        let mut reached = vec![false; n];
        let start = unpack_entry(entry).0;
        if entry == NO_ENTRY || start as usize >= n {
            return reached;
        }
        let mut queue = VecDeque::from([start]);
        reached[start as usize] = true;
        while let Some(i) = queue.pop_front() {
            let row = self.graph.row(i, 0);
            for j in 0..count(row) {
                let id = link(row, j) as usize;
                if id < n && !reached[id] {
                    reached[id] = true;
                    queue.push_back(id as u32);
                }
            }
        }
        reached
    }
}
