//! Filtered search that keeps its recall: [`Index::search_filtered`] with a predicate, and
//! [`Index::search_in`] with a prebuilt [`LabelSet`].
//!
//! A graph search restricted to a small accepted set walks through many rejected nodes
//! before it holds `ef` accepted ones: about `ef / p` nodes for a pass rate `p`, each
//! scoring up to `Mmax0` neighbours. An exact scan of the accepted nodes costs a filter test
//! per node and a distance per accepted one, and is exact. The search picks the cheaper by a
//! cost model, in units of one distance computation:
//! `walk ≈ ½·ef·Mmax0 / p` against `scan ≈ n·(SCAN_TEST_COST + p)`, with
//! [`SCAN_TEST_COST`] measured (`examples/filters.rs`: on a 50,000 × 128 set the crossover
//! fell between 5% and 10% selectivity, where the model puts it at 6%).
//! - with a predicate, the pass rate is estimated from [`SAMPLE`] slots drawn at random;
//! - with a [`LabelSet`], it is known.
//!
//! Removed nodes are excluded by the same mechanism (they never pass).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::graph::scratch::{Scored, Scratch};
use crate::index::{Index, Neighbour};

/// Cost of testing one node in an exact scan (state load, filter call), relative to one
/// distance computation: 3.2 ns against 35 ns at dimension 128 on an AMD EPYC (Zen 3,
/// AVX2), rounded up.
pub const SCAN_TEST_COST: f64 = 0.1;

/// Slots drawn to estimate a predicate's pass rate.
pub const SAMPLE: usize = 256;

/// A set of labels known ahead of the searches that use it (a tenant's documents, an
/// in-stock list, …), built once by [`Index::label_set`]: a bit per node, so a search tests
/// membership without calling back, and knows the set's size.
///
/// A set describes the index as it was when built: labels added later are not in it, and
/// a label removed since is not returned (results are checked against the labels too, so a
/// slot reused by a consolidation never leaks in).
#[derive(Debug, Clone)]
pub struct LabelSet {
    bits: Vec<u64>,
    labels: HashSet<u64>,
    /// Nodes in the set when it was built.
    nodes: usize,
}

impl LabelSet {
    /// Labels in the set that were in the index when it was built.
    pub fn len(&self) -> usize {
        self.nodes
    }

    /// `true` if no label of the set was in the index.
    pub fn is_empty(&self) -> bool {
        self.nodes == 0
    }

    #[inline(always)]
    fn has_slot(&self, id: u32) -> bool {
        self.bits.get(id as usize / 64).is_some_and(|w| w >> (id % 64) & 1 != 0)
    }
}

impl Index {
    /// A [`LabelSet`] of the given labels (labels the index does not hold are left out).
    pub fn label_set(&self, labels: impl IntoIterator<Item = u64>) -> LabelSet {
        let labels: HashSet<u64> = labels.into_iter().collect();
        let mut bits = vec![0u64; self.capacity().div_ceil(64)];
        let mut nodes = 0;
        let slots = self.lock_slots();
        for l in &labels {
            if let Some(&slot) = slots.by_label.get(l) {
                bits[slot as usize / 64] |= 1 << (slot % 64);
                nodes += 1;
            }
        }
        LabelSet { bits, labels, nodes }
    }

    /// [`search`](Self::search) returning only labels that `filter` accepts.
    ///
    /// The pass rate is estimated first (the filter is called on [`SAMPLE`] slots). Where
    /// the cost model (see the module docs) prefers the graph, the search walks it through
    /// rejected nodes and stops once it holds `ef` accepted ones and no candidate is closer
    /// than the worst of them (hnswlib's rule); else it scans every node with the filter and
    /// scores the accepted ones exactly (the filter is then called once per node).
    ///
    /// ```
    /// use hnswx::{Index, Metric, Params};
    /// let index = Index::new(Params::new(1, Metric::L2), 10).unwrap();
    /// index.add_batch(&[0, 1, 2, 3], &[0.0, 1.0, 2.0, 3.0]).unwrap();
    /// let odd = index.search_filtered(&[0.0], 2, 8, |label| label % 2 == 1).unwrap();
    /// assert_eq!(odd.iter().map(|n| n.label).collect::<Vec<_>>(), [1, 3]);
    /// ```
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(u64) -> bool,
    ) -> Result<Vec<Neighbour>> {
        let mut out = Vec::new();
        self.search_filtered_into(query, k, ef, filter, &mut out)?;
        Ok(out)
    }

    /// [`search_filtered`](Self::search_filtered) into `out` (cleared first). Reusing `out`
    /// (with room for `k`) makes a filtered search allocate nothing once the scratch pool is
    /// warm and its lists have grown to what the largest search needed.
    ///
    /// ```
    /// use hnswx::{Index, Metric, Params};
    /// let index = Index::new(Params::new(1, Metric::L2), 10).unwrap();
    /// index.add_batch(&[0, 1, 2, 3], &[0.0, 1.0, 2.0, 3.0]).unwrap();
    /// let mut out = Vec::with_capacity(2);
    /// index.search_filtered_into(&[0.0], 2, 8, |label| label % 2 == 1, &mut out).unwrap();
    /// assert_eq!(out.iter().map(|n| n.label).collect::<Vec<_>>(), [1, 3]);
    /// ```
    pub fn search_filtered_into(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(u64) -> bool,
        out: &mut Vec<Neighbour>,
    ) -> Result<()> {
        let accept = self.by_label(&filter);
        let scan = || self.pass_rate(&accept).is_some_and(|p| self.prefer_scan(p, ef.max(k)));
        self.filtered(query, k, ef, &accept, &scan, &|_| true, out)
    }

    /// [`search_filtered`](Self::search_filtered) always walking the graph (for benchmarks
    /// and comparisons).
    pub fn search_filtered_graph(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: impl Fn(u64) -> bool,
    ) -> Result<Vec<Neighbour>> {
        let mut out = Vec::new();
        self.filtered(query, k, ef, &self.by_label(&filter), &|| false, &|_| true, &mut out)?;
        Ok(out)
    }

    /// [`search_filtered`](Self::search_filtered) always scanning exactly (for benchmarks
    /// and ground truth).
    pub fn search_filtered_scan(
        &self,
        query: &[f32],
        k: usize,
        filter: impl Fn(u64) -> bool,
    ) -> Result<Vec<Neighbour>> {
        let mut out = Vec::new();
        self.filtered(query, k, k, &self.by_label(&filter), &|| true, &|_| true, &mut out)?;
        Ok(out)
    }

    /// [`search`](Self::search) returning only labels of `set`: an exact scan of the set's
    /// nodes when the cost model (see the module docs) prefers it, else a graph search that
    /// tests each node's bit.
    pub fn search_in(&self, query: &[f32], k: usize, ef: usize, set: &LabelSet) -> Result<Vec<Neighbour>> {
        let mut out = Vec::new();
        self.search_in_into(query, k, ef, set, &mut out)?;
        Ok(out)
    }

    /// [`search_in`](Self::search_in) into `out` (cleared first); allocates nothing once
    /// warm, as [`search_filtered_into`](Self::search_filtered_into).
    pub fn search_in_into(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        set: &LabelSet,
        out: &mut Vec<Neighbour>,
    ) -> Result<()> {
        let p = set.nodes as f64 / self.len().max(1) as f64;
        let scan = || self.prefer_scan(p, ef.max(k));
        let keep = |label: u64| set.labels.contains(&label);
        self.filtered(query, k, ef, &|id| set.has_slot(id), &scan, &keep, out)
    }

    /// A label filter as a node predicate.
    fn by_label<'a>(&'a self, filter: &'a impl Fn(u64) -> bool) -> impl Fn(u32) -> bool + 'a {
        move |id| filter(self.labels[id as usize].load(Ordering::Relaxed))
    }

    /// `true` if an exact scan is expected to cost less than a graph walk at pass rate `p`.
    fn prefer_scan(&self, p: f64, ef: usize) -> bool {
        let n = self.len().max(1) as f64;
        let walk = 0.5 * ef as f64 * self.graph.m0() as f64 / p.max(1e-12);
        n * (SCAN_TEST_COST + p) < walk
    }

    /// Estimated share of live nodes that `accept` passes, from [`SAMPLE`] slots drawn at
    /// random (a fixed sequence: evenly spaced ids can alias with filters built on label
    /// arithmetic); `None` when no live node was drawn.
    fn pass_rate(&self, accept: &dyn Fn(u32) -> bool) -> Option<f64> {
        let used = self.used() as u64;
        if used == 0 {
            return None;
        }
        let (mut seen, mut passed) = (0usize, 0usize);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..SAMPLE.min(used as usize * 2) {
            // splitmix64
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let id = ((z ^ (z >> 31)) % used) as u32;
            if self.graph.is_live_linked(id) {
                seen += 1;
                passed += usize::from(accept(id));
            }
        }
        (seen > 0).then(|| passed as f64 / seen as f64)
    }

    /// The shared body: a graph search or an exact scan (if `scan()` says so, asked once the
    /// scratch is held, so that sampling runs as a registered reader) over the nodes
    /// `accept` passes; results whose label `keep` refuses are dropped. The results go to
    /// `out` (cleared first).
    // The arguments are the search's inputs; bundling them would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        scan: &dyn Fn() -> bool,
        keep: &dyn Fn(u64) -> bool,
        out: &mut Vec<Neighbour>,
    ) -> Result<()> {
        out.clear();
        let (mut s, start) = self.begin(query, k)?;
        let Some((ep, _)) = start else {
            return Ok(());
        };
        let q = s.query.as_ptr();
        if scan() {
            self.scan(&mut s, q, k, accept);
            // The scan scored the exact rows: nothing to re-score.
            s.nav_on = false;
        } else {
            self.search_layer_filtered(&mut s, q, ep, self.clamp_ef(k, ef), accept);
        }
        // Every result is re-scored after a walk on codes (the label filter comes after).
        self.emit_filtered(&mut s, q, k, usize::MAX, keep, &mut |n| out.push(n));
        Ok(())
    }

    /// Exact search over every live, linked node that `accept` passes: the best `k` are
    /// left in `s.results`.
    fn scan(&self, s: &mut Scratch, q: *const f32, k: usize, accept: &dyn Fn(u32) -> bool) {
        s.results.clear();
        s.ids.clear();
        let chunk = s.dists.len();
        let flush = |s: &mut Scratch| {
            self.score(s, q);
            for (&id, &d) in s.ids.iter().zip(&s.dists) {
                if s.results.len() < k {
                    s.results.push(Scored(d, id));
                } else if s.results.peek().is_some_and(|w| Scored(d, id) < *w) {
                    s.results.pop();
                    s.results.push(Scored(d, id));
                }
            }
            s.ids.clear();
        };
        for id in 0..self.used() as u32 {
            // Linked (its row published: an acquire load of its state) and not removed, in
            // one load: a slot being reused is neither.
            if self.graph.is_live_linked(id) && accept(id) {
                s.ids.push(id);
                if s.ids.len() == chunk {
                    flush(s);
                }
            }
        }
        if !s.ids.is_empty() {
            flush(s);
        }
    }
}
