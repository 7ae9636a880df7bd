//! Search: greedy descent through the upper layers, then a bounded best-first search on
//! layer 0. The same layer search serves inserts (with `ef_construction`) and queries.
//!
//! One query's path: [`Index::search`] → [`Index::search_into`] (checks, scratch) →
//! `descend` (greedy, `ef = 1`) → `search_layer` → `walk` → `score_nav` → the one-to-many
//! kernel (`MetricKernel::distances_unchecked` over the slab rows of a node's unvisited
//! neighbours, or `Codes::score` over their codes), then, after a walk on codes, `rerank`
//! on the exact rows. On SQ8 codes `search_layer` hands the walk to the codes' kernel table
//! (`Kernels::with_int_kernel`), which runs `walk` compiled for its instruction set with the
//! integer kernel inlined (`Inline` → `Codes::score_sq8_with` → `IntKernel::dot_many_then`).

use rayon::prelude::*;
use std::cmp::Reverse;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::graph::{count, link};
use crate::index::{unpack_entry, Index, Neighbour, NO_ENTRY};

/// The label [`Index::search_batch_into`] writes where a query found fewer than `k`
/// results (`u64::MAX`, also `UINT64_MAX` in the C ABI).
pub const NO_LABEL: u64 = u64::MAX;
use crate::graph::scratch::{Scored, Scratch, ScratchGuard};
use crate::store::codes::Codes;
use hnswx_kernels::{IntKernel, IntKernelUser, Prefetch};

impl Index {
    /// The `k` nearest neighbours of `query` found with a candidate list of `ef` (raised to
    /// `k` if smaller), closest first. An empty index gives an empty result. `k` and `ef`
    /// larger than the index are clamped to its size, so any value is safe to pass.
    ///
    /// Errors: [`Error::ZeroK`], [`Error::Dimension`], [`Error::NonFinite`],
    /// [`Error::NormTooLarge`] (L2, inner product), [`Error::ZeroVector`] (cosine).
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbour>> {
        let mut out = Vec::with_capacity(k.min(self.len()));
        self.search_into(query, k, ef, &mut out)?;
        Ok(out)
    }

    /// [`search`](Self::search) into `out` (cleared first). Reusing `out` makes a search
    /// allocate nothing once the index's scratch pool is warm.
    ///
    /// ```
    /// use hnswx::{Index, Metric, Params};
    /// let index = Index::new(Params::new(1, Metric::L2), 10).unwrap();
    /// index.add_batch(&[0, 1, 2], &[0.0, 1.0, 2.0]).unwrap();
    /// let mut out = Vec::with_capacity(2);
    /// for q in [0.1f32, 1.9] {
    ///     index.search_into(&[q], 2, 8, &mut out).unwrap();
    ///     assert_eq!(out.len(), 2);
    /// }
    /// assert_eq!(out[0].label, 2);
    /// ```
    pub fn search_into(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<Neighbour>) -> Result<()> {
        self.search_counted(query, k, ef, out).map(|_| ())
    }

    /// [`search_into`](Self::search_into) that also returns how many distances it computed
    /// (for benchmarks).
    pub fn search_counted(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<Neighbour>) -> Result<u64> {
        self.search_counted_with(query, k, ef, default_rerank(k), out)
    }

    /// [`search`](Self::search) with an explicit rerank count: on an index that walks codes
    /// ([`Quantization::Sq8`](crate::Quantization::Sq8) once trained, or
    /// [`Quantization::F16`](crate::Quantization::F16)), the best `rerank` candidates
    /// of the walk (at least `k`, at most `ef`) are re-scored with the exact `f32` rows and
    /// the best `k` of those returned, with exact distances. [`search`](Self::search) reranks
    /// [`default_rerank`]`(k)` = `max(2k, 16)` (measured: on minilm-100k and sift5k, recall@10
    /// at every ef from 16 to 128 was the same as reranking all `ef`; `k` alone lost up to
    /// 0.007). Filtered searches rerank every result. Without codes `rerank` is ignored.
    pub fn search_with(&self, query: &[f32], k: usize, ef: usize, rerank: usize) -> Result<Vec<Neighbour>> {
        let mut out = Vec::with_capacity(k.min(self.len()));
        self.search_counted_with(query, k, ef, rerank, &mut out)?;
        Ok(out)
    }

    /// [`search_with`](Self::search_with) into `out` (cleared first), returning how many
    /// distances it computed (codes and exact rows together).
    pub fn search_counted_with(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        rerank: usize,
        out: &mut Vec<Neighbour>,
    ) -> Result<u64> {
        out.clear();
        self.search_emit(query, k, ef, rerank, &mut |n| out.push(n))
    }

    /// The body of every unfiltered search: hands the (at most `k`) results to `emit`,
    /// closest first (after a walk on codes, the best `rerank` re-scored exactly); returns
    /// the distances computed.
    #[inline]
    fn search_emit(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        rerank: usize,
        emit: &mut impl FnMut(Neighbour),
    ) -> Result<u64> {
        let (mut s, start) = self.begin(query, k)?;
        let Some((ep, _)) = start else {
            return Ok(s.distances);
        };
        let q = s.query.as_ptr();
        let ef = self.clamp_ef(k, ef);
        // Read `removals` before `hidden`: `remove` raises them in the other order, so a
        // search that sees no hidden node and no new removal at the end returned none.
        let removals = self.removals.load(Ordering::SeqCst);
        let rerank = rerank.max(k);
        let hidden = self.hidden.load(Ordering::SeqCst);
        if hidden <= ef / 8 {
            // No removed node, or a few (up to `ef / 8`, say one being updated): the sorted
            // pool, `hidden` entries larger. It can hold every removed node and still `ef`
            // live ones, so its bound is never tighter than the two-heap path's (the `ef`-th
            // live candidate) and recall is no lower, while it costs less than the heaps
            // until `hidden` nears a quarter of `ef` (`examples/hidden.rs`, ef = 64: one
            // removed node made the two-heap path 1.22× slower per query on sift5k; the
            // larger pool cost 0.99-1.04× with one, 1.07-1.15× with 8, 1.15-1.20× with 16).
            // More removed nodes: the two heaps, on which they do not count towards `ef`.
            self.search_layer(&mut s, q, ep, ef + hidden, 0, u32::MAX);
            // Removed nodes in the graph, or a removal since the start: check each result
            // (else, at no cost, none).
            let recheck = hidden > 0 || self.removals.load(Ordering::SeqCst) != removals;
            let sc = &mut *s;
            let hits = sc.pool.iter().filter(|&(_, id)| !recheck || !self.graph.is_removed(id));
            if sc.nav_on {
                // Walked on codes: the best `rerank` re-scored exactly.
                sc.cands.clear();
                sc.cands.extend(hits.take(rerank));
                self.rerank(sc, q);
                sc.cands
                    .iter()
                    .take(k)
                    .for_each(|&(distance, id)| emit(self.neighbour(id, distance)));
            } else {
                hits.take(k)
                    .for_each(|(distance, id)| emit(self.neighbour(id, distance)));
            }
        } else {
            // Many removed nodes in the graph: they guide the search but do not count
            // towards `ef` (the filtered path, filtering nothing else).
            self.search_layer_filtered(&mut s, q, ep, ef, &|_| true);
            self.emit_filtered(&mut s, q, k, rerank, &|_| true, emit);
        }
        Ok(s.distances)
    }

    /// The `k` best of a filtered search's results whose label `keep` accepts, to `emit`,
    /// closest first, leaving out nodes removed while it ran; after a walk on codes, the
    /// best `rerank` live results are re-scored exactly first.
    pub(crate) fn emit_filtered(
        &self,
        s: &mut Scratch,
        q: *const f32,
        k: usize,
        rerank: usize,
        keep: &dyn Fn(u64) -> bool,
        emit: &mut impl FnMut(Neighbour),
    ) {
        let mut hits = std::mem::take(&mut s.results).into_sorted_vec();
        let live = hits.iter().filter(|h| !self.graph.is_removed(h.1));
        if s.nav_on {
            s.cands.clear();
            s.cands.extend(live.take(rerank.max(k)).map(|&Scored(d, id)| (d, id)));
            self.rerank(s, q);
            s.cands
                .iter()
                .map(|&(d, id)| self.neighbour(id, d))
                .filter(|n| keep(n.label))
                .take(k)
                .for_each(emit);
        } else {
            live.map(|&Scored(d, id)| self.neighbour(id, d))
                .filter(|n| keep(n.label))
                .take(k)
                .for_each(emit);
        }
        hits.clear();
        s.results = std::collections::BinaryHeap::from(hits);
    }

    /// Re-scores the candidates in `s.cands` exactly (against the `f32` rows) and sorts
    /// them, closest first.
    pub(crate) fn rerank(&self, s: &mut Scratch, q: *const f32) {
        s.ids.clear();
        s.ids.extend(s.cands.iter().map(|&(_, id)| id));
        if s.dists.len() < s.ids.len() {
            s.dists.resize(s.ids.len(), 0.0);
        }
        self.score(s, q);
        for (c, &d) in s.cands.iter_mut().zip(&s.dists) {
            c.0 = d;
        }
        s.cands.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }

    /// [`search`](Self::search) for every row of `queries` (row-major, `dim` columns), in
    /// parallel on the current rayon pool. Any invalid query fails the whole batch.
    pub fn search_batch(&self, queries: &[f32], k: usize, ef: usize) -> Result<Vec<Vec<Neighbour>>> {
        let dim = self.dim();
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::Dimension {
                expected: dim,
                got: queries.len() % dim,
            });
        }
        queries.par_chunks_exact(dim).map(|q| self.search(q, k, ef)).collect()
    }

    /// [`search_batch`](Self::search_batch) into caller-owned flat arrays, allocating
    /// nothing per query: for `n = queries.len() / dim` queries, query `i`'s results go to
    /// `labels[i*k .. (i+1)*k]` and `distances[i*k ..]` (if given), closest first, and their
    /// number to `counts[i]`; the entries past it are [`NO_LABEL`] and `f32::INFINITY`.
    /// Runs in parallel on the current rayon pool.
    ///
    /// Errors: [`Error::Dimension`] (`queries` not a whole number of rows),
    /// [`Error::OutputLength`] (`labels` or `distances` not `n*k` long, `counts` not `n`),
    /// and those of [`search`](Self::search). A failed query fails the batch; the arrays may
    /// then hold the results of some queries.
    ///
    /// ```
    /// use hnswx::{Index, Metric, Params, NO_LABEL};
    /// let index = Index::new(Params::new(1, Metric::L2), 10).unwrap();
    /// index.add_batch(&[0, 1, 2], &[0.0, 1.0, 2.0]).unwrap();
    /// let (mut labels, mut distances, mut counts) = ([0u64; 8], [0f32; 8], [0usize; 2]);
    /// index
    ///     .search_batch_into(&[0.1, 1.9], 4, 16, &mut labels, Some(&mut distances), &mut counts)
    ///     .unwrap();
    /// assert_eq!(counts, [3, 3]); // 3 vectors for k = 4
    /// assert_eq!(labels, [0, 1, 2, NO_LABEL, 2, 1, 0, NO_LABEL]);
    /// assert_eq!(distances[3], f32::INFINITY);
    /// ```
    pub fn search_batch_into(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        labels: &mut [u64],
        distances: Option<&mut [f32]>,
        counts: &mut [usize],
    ) -> Result<()> {
        let dim = self.dim();
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::Dimension {
                expected: dim,
                got: queries.len() % dim,
            });
        }
        let n = queries.len() / dim;
        if n == 0 {
            return Ok(());
        }
        if k == 0 {
            return Err(Error::ZeroK);
        }
        let total = n.saturating_mul(k);
        let check = |what, expected, got| {
            if expected == got {
                Ok(())
            } else {
                Err(Error::OutputLength { what, expected, got })
            }
        };
        check("labels", total, labels.len())?;
        check("counts", n, counts.len())?;
        if let Some(d) = &distances {
            check("distances", total, d.len())?;
        }
        let one = |q: &[f32], l: &mut [u64], mut d: Option<&mut [f32]>, c: &mut usize| -> Result<()> {
            let mut found = 0;
            self.search_emit(q, k, ef, default_rerank(k), &mut |h| {
                l[found] = h.label;
                if let Some(d) = d.as_deref_mut() {
                    d[found] = h.distance;
                }
                found += 1;
            })?;
            l[found..].fill(NO_LABEL);
            if let Some(d) = d {
                d[found..].fill(f32::INFINITY);
            }
            *c = found;
            Ok(())
        };
        let rows = queries
            .par_chunks_exact(dim)
            .zip(labels.par_chunks_mut(k))
            .zip(counts.par_iter_mut());
        match distances {
            Some(d) => rows
                .zip(d.par_chunks_mut(k))
                .try_for_each(|(((q, l), c), d)| one(q, l, Some(d), c)),
            None => rows.try_for_each(|((q, l), c)| one(q, l, None, c)),
        }
    }

    /// The common start of a search: checks `k` and the query, loads the query into a
    /// scratch (distance counter reset) and descends the upper layers. Returns the scratch and
    /// the layer-0 starting node with its distance, or `None` for an empty index.
    pub(crate) fn begin(&self, query: &[f32], k: usize) -> Result<(ScratchGuard<'_>, Option<(u32, f32)>)> {
        if k == 0 {
            return Err(Error::ZeroK);
        }
        let mut s = self.take_scratch();
        self.load_query(&mut s, query)?;
        s.distances = 0;
        let entry = self.entry.load(Ordering::Acquire);
        if entry == NO_ENTRY {
            return Ok((s, None));
        }
        let q = s.query.as_ptr();
        self.prepare_nav(&mut s, q);
        let start = self.descend(&mut s, q, entry, 0, u32::MAX);
        Ok((s, Some(start)))
    }

    /// `ef` raised to `k` and lowered to the number of nodes (at least 1): a pool larger
    /// than the index could never fill, and a huge one would only exhaust memory.
    #[inline]
    pub(crate) fn clamp_ef(&self, k: usize, ef: usize) -> usize {
        ef.max(k).min(self.len().max(1))
    }

    #[inline]
    pub(crate) fn neighbour(&self, id: u32, distance: f32) -> Neighbour {
        Neighbour {
            label: self.labels[id as usize].load(Ordering::Relaxed),
            distance,
        }
    }

    /// Distance from the query at `q` (a row of the slab's stride, zero-padded) to node `id`.
    #[inline(always)]
    pub(crate) fn distance_to(&self, q: *const f32, id: u32) -> f32 {
        assert!((id as usize) < self.capacity());
        // SAFETY: `q` points at `stride` floats (a scratch query, zero-padded to the stride, or
        // a slab row); `id` is in bounds (asserted), so its row's `stride` floats lie inside
        // the slab (the last row's too: the slab holds `capacity × stride` floats), and it
        // was published before the caller learned it, so its row is written and stays
        // unchanged.
        unsafe {
            self.kernel
                .distance_unchecked(q, self.slab.row_ptr(id), self.slab.stride())
        }
    }

    /// The rows the walk scores (as [`score_nav`](Self::score_nav) picks them, once
    /// [`prepare_nav`](Self::prepare_nav) has run): start of row 0 and bytes per row.
    #[inline]
    fn walked_rows(&self, s: &Scratch) -> (*const u8, usize) {
        match &self.codes {
            Some(codes) if s.nav_on => (codes.base(), codes.stride()),
            _ => (self.slab.base().cast::<u8>(), 4 * self.slab.stride()),
        }
    }

    /// Sets up the walk for the query at `q` (`stride` floats: a scratch query or a slab row):
    /// on the codes if the index walks them (F16, or trained SQ8), else on the `f32` rows. Every walk
    /// (`descend`, `search_layer`, `search_layer_filtered`) with a new query starts here.
    #[inline]
    pub(crate) fn prepare_nav(&self, s: &mut Scratch, q: *const f32) {
        s.nav_on = false;
        if let Some(codes) = &self.codes {
            // SAFETY: `q` points at a row of `stride ≥ dim` floats that nobody
            // writes meanwhile (the caller's scratch query, or a published slab row);
            // `s.nav_int` is a different buffer.
            let qs = unsafe { std::slice::from_raw_parts(q, self.dim()) };
            // F16 always walks its codes; SQ8 once trained, and for a query whose weights
            // fit `f32` (else, extreme magnitudes, the walk uses the exact rows).
            if let Some((bias, scale)) = codes.prepare(qs, &mut s.nav_int) {
                (s.nav_bias, s.nav_scale) = (bias, scale);
                s.nav_on = true;
            }
        }
        // The kernels prefetch the walked rows unless they fit the level-2 cache (see
        // `look_ahead::row_prefetch`).
        let walked = self.used().saturating_mul(self.walked_rows(s).1);
        s.walk_prefetch = if walked >= crate::graph::look_ahead::row_prefetch().bytes {
            Prefetch::Ahead
        } else {
            Prefetch::Off
        };
    }

    /// The walk's scores of the nodes in `s.ids` into `s.dists`: from the codes when
    /// [`prepare_nav`](Self::prepare_nav) chose them, else exact.
    #[inline(always)]
    pub(crate) fn score_nav(&self, s: &mut Scratch, q: *const f32) {
        match &self.codes {
            Some(codes) if s.nav_on => {
                debug_assert!(s.dists.len() >= s.ids.len());
                s.distances += s.ids.len() as u64;
                // SAFETY: `nav_on` was set by `prepare_nav` when `Codes::prepare` accepted
                // this query (`s.nav_int` then holds `dim` bounded weights for SQ8); `q` is
                // the padded query it was prepared from; ids come from link rows or passed
                // `Visited::insert` (below the capacity) and their nodes were published
                // before the ids were read (their codes written before); `s.dists` is
                // long enough (asserted).
                unsafe {
                    codes.score(
                        q,
                        s.nav_int.as_ptr(),
                        s.nav_scale,
                        s.nav_bias,
                        &s.ids,
                        s.dists.as_mut_ptr(),
                        s.walk_prefetch,
                    )
                }
            }
            _ => self.score_rows(s, q, s.walk_prefetch),
        }
    }

    /// The walk's distance from the query at `q` to node `id` (see
    /// [`score_nav`](Self::score_nav)).
    #[inline]
    pub(crate) fn nav_distance(&self, s: &mut Scratch, q: *const f32, id: u32) -> f32 {
        match &self.codes {
            Some(codes) if s.nav_on => {
                assert!((id as usize) < self.capacity());
                s.distances += 1;
                let mut d = 0.0f32;
                // SAFETY: as in `score_nav`, for one id (bounds asserted). No prefetch: the
                // one row is read at once, so asking for it (or its constant) first gains
                // nothing.
                unsafe {
                    codes.score(
                        q,
                        s.nav_int.as_ptr(),
                        s.nav_scale,
                        s.nav_bias,
                        &[id],
                        &mut d,
                        Prefetch::Off,
                    )
                };
                d
            }
            _ => {
                s.distances += 1;
                self.distance_to(q, id)
            }
        }
    }

    /// Scores the nodes in `s.ids` against `q` into `s.dists` (the rows prefetched ahead).
    #[inline(always)]
    pub(crate) fn score(&self, s: &mut Scratch, q: *const f32) {
        self.score_rows(s, q, Prefetch::Ahead)
    }

    /// [`score`](Self::score), prefetching the rows or not.
    #[inline(always)]
    pub(crate) fn score_rows(&self, s: &mut Scratch, q: *const f32, prefetch: Prefetch) {
        let n = s.ids.len();
        debug_assert!(s.dists.len() >= n);
        debug_assert!(s.ids.iter().all(|&id| (id as usize) < self.capacity()));
        s.distances += n as u64;
        // SAFETY: `q` is a row of `stride` floats (zero padding, if any, past `dim`), and so
        // is every slab row, the last one included (the slab holds `capacity × stride`
        // floats): the kernel reads `stride` floats from each; every id in `s.ids` passed the
        // bounds check of `Visited::insert` (whose array is as long as the capacity) or comes
        // from a link row (ids there are always slots below `len`); those rows were
        // published before the ids were read; `s.dists` holds at least `n` floats (sized
        // for the longest row).
        unsafe {
            self.kernel.distances_unchecked(
                q,
                self.slab.base(),
                self.slab.stride(),
                self.slab.stride(),
                &s.ids,
                s.dists.as_mut_ptr(),
                prefetch,
            )
        }
    }

    /// Greedy descent (`ef = 1`) from the entry point down to layer `stop + 1`: returns the
    /// node at which to start searching layer `stop`, and its distance. `exclude` (the node
    /// being inserted or relinked, else `u32::MAX`) is never stepped on, so it cannot become
    /// its own neighbour even when a concurrent insert has already linked to it.
    pub(crate) fn descend(&self, s: &mut Scratch, q: *const f32, entry: u64, stop: usize, exclude: u32) -> (u32, f32) {
        let (mut cur, top) = unpack_entry(entry);
        let mut best = self.nav_distance(s, q, cur);
        let capacity = self.capacity() as u32;
        for layer in (stop + 1..=top).rev() {
            loop {
                let row = self.graph.row(cur, layer);
                s.ids.clear();
                // Ids are checked against the capacity (at most M per row, so it is cheap):
                // the kernel reads rows unchecked, and layer 0's ids pass the same check in
                // `Visited::insert`.
                s.ids
                    .extend((0..count(row)).map(|j| link(row, j)).filter(|&id| id < capacity));
                self.score_nav(s, q);
                let before = cur;
                for (&id, &d) in s.ids.iter().zip(&s.dists) {
                    if d < best && id != exclude {
                        best = d;
                        cur = id;
                    }
                }
                if cur == before {
                    break;
                }
            }
        }
        (cur, best)
    }

    /// Best-first search of `layer` from `ep` with a pool of `ef`; the result is left in
    /// `s.pool`, closest first (walk scores: see [`score_nav`](Self::score_nav)). `exclude`
    /// (a node being inserted, or `u32::MAX`) is never visited.
    ///
    /// A walk on SQ8 codes runs inside the codes' kernel table
    /// ([`Kernels::with_int_kernel`](hnswx_kernels::Kernels::with_int_kernel)): compiled for
    /// its instruction set with the integer kernel inlined, instead of calling it through a
    /// function pointer once per expansion, and adds each row's constant as its sum is
    /// made. Same results, bit for bit. Measured on a Zen 4 (paired rounds against the
    /// tables' walk, `benches/results/zen4/prefetch-ab.txt`): sift5k 1.025× with the AVX2
    /// kernels and 1.028× with VNNI, fashion-mnist 1.033×, minilm 1.021×, the mixture 1.010×.
    pub(crate) fn search_layer(&self, s: &mut Scratch, q: *const f32, ep: u32, ef: usize, layer: usize, exclude: u32) {
        let sq8 = match &self.codes {
            Some(codes) if s.nav_on => codes.sq8_kernels().map(|kernels| (codes, kernels)),
            _ => None,
        };
        match sq8 {
            Some((codes, kernels)) => kernels.with_int_kernel(Walk {
                index: self,
                codes,
                s,
                q,
                ep,
                ef,
                layer,
                exclude,
            }),
            _ => self.walk(s, q, ep, ef, layer, exclude, Tables),
        }
    }

    /// The body of [`search_layer`](Self::search_layer), scoring with `scorer`.
    // The layer search's arguments and the scorer.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn walk<S: Scorer>(
        &self,
        s: &mut Scratch,
        q: *const f32,
        ep: u32,
        ef: usize,
        layer: usize,
        exclude: u32,
        scorer: S,
    ) {
        let d = self.nav_distance(s, q, ep);
        s.visited.start(self.capacity());
        s.pool.reset(ef);
        if exclude != u32::MAX {
            s.visited.insert(exclude);
        }
        debug_assert_ne!(ep, exclude);
        s.visited.insert(ep);
        s.pool.insert(ep, d);
        let rows = self.walked_rows(s);
        let look_ahead = self.used().saturating_mul(rows.1) >= crate::graph::look_ahead::threshold();
        while let Some(cur) = s.pool.pop() {
            if let Some(next) = s.pool.peek_next() {
                // Every line of the link row (1 + 2M words cover three lines at M 16).
                let row = self.graph.row(next, layer);
                hnswx_kernels::prefetch(row.as_ptr().cast(), std::mem::size_of_val(row));
            }
            self.unvisited_neighbours(s, cur, layer);
            if s.ids.is_empty() {
                continue;
            }
            scorer.score(self, s, q);
            let bound = s.pool.bound();
            for (&id, &dist) in s.ids.iter().zip(&s.dists) {
                if dist < bound {
                    s.pool.insert(id, dist);
                }
            }
            if let (true, Some(next)) = (look_ahead, s.pool.peek_next()) {
                self.prefetch_unvisited(s, next, layer, rows);
            }
        }
    }

    /// Asks for the rows the walk will score when it expands `next` (its neighbours on
    /// `layer` not visited yet), whole slots: issued as soon as `next` is known, they are in
    /// flight while the loop turns, where the kernel's own prefetch starts only with the
    /// scoring. `rows` = (start of row 0, bytes per row). Nothing is marked: the expansion
    /// itself collects the same ids. Until the tenth session it asked for the first 128
    /// bytes of a code row and 256 of a vector row; with the prefetch into L2, whole rows
    /// walked 1.05× (fashion-mnist f32) to 1.25× (mixture f32) faster on a Zen 4, and 1.2×
    /// on minilm's vectors and codes (`benches/results/zen4/prefetch-ab.txt`). On 1536-d
    /// rows too: asking for at most 4 KiB of each cost 0.99×, at most 1 KiB 0.92×.
    #[inline(always)]
    fn prefetch_unvisited(&self, s: &Scratch, next: u32, layer: usize, rows: (*const u8, usize)) {
        let (base, stride) = rows;
        let row = self.graph.row(next, layer);
        for id in (0..count(row)).map(|j| link(row, j)).filter(|&id| !s.visited.seen(id)) {
            // A hint: a prefetch never faults (ids are slots below the capacity anyway).
            hnswx_kernels::prefetch(base.wrapping_add(id as usize * stride), stride);
        }
    }

    /// Puts `cur`'s neighbours on `layer` that this search has not visited yet into `s.ids`,
    /// marking them visited.
    #[inline(always)]
    fn unvisited_neighbours(&self, s: &mut Scratch, cur: u32, layer: usize) {
        let row = self.graph.row(cur, layer);
        let n = count(row);
        // Without a branch on "visited": every link is written at the cursor, which moves
        // on only past unvisited ones (a branch on that data-dependent bit mispredicts).
        // The slots are written in place, not zeroed first (a memset per expanded node).
        s.ids.clear();
        s.ids.reserve(n);
        let spare = &mut s.ids.spare_capacity_mut()[..n];
        let mut kept = 0;
        for j in 0..n {
            let id = link(row, j);
            spare[kept].write(id);
            kept += usize::from(s.visited.insert(id));
        }
        debug_assert!(kept <= n);
        // SAFETY: `kept ≤ n` and each of the first `kept` spare slots was written above
        // (slot `i` is written at the step that moves the cursor past it), within the
        // capacity reserved for `n`.
        unsafe { s.ids.set_len(kept) };
    }

    /// The filtered layer-0 search (two heaps, as in hnswlib): every node may become a
    /// candidate, only live nodes that `accept` (given a node id) become results.
    pub(crate) fn search_layer_filtered(
        &self,
        s: &mut Scratch,
        q: *const f32,
        ep: u32,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) {
        let d = self.nav_distance(s, q, ep);
        s.visited.start(self.capacity());
        s.frontier.clear();
        s.results.clear();
        let accepted = |id: u32| !self.graph.is_removed(id) && accept(id);
        s.visited.insert(ep);
        s.frontier.push(Reverse(Scored(d, ep)));
        if accepted(ep) {
            s.results.push(Scored(d, ep));
        }
        while let Some(Reverse(Scored(dc, cur))) = s.frontier.pop() {
            let worst = |s: &Scratch| {
                if s.results.len() < ef {
                    f32::INFINITY
                } else {
                    s.results.peek().map_or(f32::INFINITY, |r| r.0)
                }
            };
            if dc > worst(s) {
                break;
            }
            self.unvisited_neighbours(s, cur, 0);
            self.score_nav(s, q);
            for j in 0..s.ids.len() {
                let (id, dist) = (s.ids[j], s.dists[j]);
                if dist < worst(s) {
                    s.frontier.push(Reverse(Scored(dist, id)));
                    if accepted(id) {
                        s.results.push(Scored(dist, id));
                        if s.results.len() > ef {
                            s.results.pop();
                        }
                    }
                }
            }
        }
    }
}

/// How [`Index::search_layer`]'s walk scores the neighbours it collected in `s.ids` (into
/// `s.dists`).
trait Scorer: Copy {
    fn score(self, index: &Index, s: &mut Scratch, q: *const f32);
}

/// Through the kernel tables ([`Index::score_nav`]).
#[derive(Clone, Copy)]
struct Tables;

impl Scorer for Tables {
    #[inline(always)]
    fn score(self, index: &Index, s: &mut Scratch, q: *const f32) {
        index.score_nav(s, q)
    }
}

/// On SQ8 codes, with the integer kernel `K` of their table called directly.
#[derive(Clone, Copy)]
struct Inline<'a, K> {
    kernel: K,
    codes: &'a Codes,
}

impl<K: IntKernel> Scorer for Inline<'_, K> {
    #[inline(always)]
    fn score(self, _: &Index, s: &mut Scratch, _: *const f32) {
        debug_assert!(s.nav_on && s.dists.len() >= s.ids.len());
        s.distances += s.ids.len() as u64;
        // SAFETY: as in `Index::score_nav`, whose SQ8 branch this is: `nav_on` (checked by
        // `search_layer` before choosing this scorer) means `Codes::prepare` accepted this
        // query for these trained codes, so `s.nav_int` holds `dim` bounded weights; ids
        // come from link rows or passed `Visited::insert` (below the capacity) and their
        // nodes were published before the ids were read; `s.dists` is long enough; the
        // kernel came from these codes' table.
        unsafe {
            self.codes.score_sq8_with(
                self.kernel,
                s.nav_int.as_ptr(),
                s.nav_scale,
                s.nav_bias,
                &s.ids,
                s.dists.as_mut_ptr(),
                s.walk_prefetch,
            )
        }
    }
}

/// A layer search on SQ8 codes, run by their table's
/// [`with_int_kernel`](hnswx_kernels::Kernels::with_int_kernel).
struct Walk<'a> {
    index: &'a Index,
    codes: &'a Codes,
    s: &'a mut Scratch,
    q: *const f32,
    ep: u32,
    ef: usize,
    layer: usize,
    exclude: u32,
}

impl IntKernelUser for Walk<'_> {
    type Output = ();

    #[inline(always)]
    fn run<K: IntKernel>(self, kernel: K) {
        let Walk {
            index,
            codes,
            s,
            q,
            ep,
            ef,
            layer,
            exclude,
        } = self;
        index.walk(s, q, ep, ef, layer, exclude, Inline { kernel, codes });
    }
}

/// The rerank count of [`Index::search`] on an index that walks codes: `max(2k, 16)`
/// (capped at `ef` when used).
pub fn default_rerank(k: usize) -> usize {
    k.saturating_mul(2).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metric, Params, Quantization};
    use rand_xoshiro::rand_core::{Rng, SeedableRng};

    /// The SQ8 walk run inside the codes' kernel table (integer kernel inlined, row
    /// constants added as each sum is made) leaves the same pool, bit for bit, and counts the
    /// same distances as the walk through the tables: each metric (L2 has row constants,
    /// inner product and cosine none), dimensions with and without a tail of the kernel's
    /// step, pools below and above the fixed-size move.
    #[test]
    fn the_inlined_sq8_walk_matches_the_table_walk() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0x51a8);
        // L2 at 300-d: rows long enough for the constants' prefetch.
        for (metric, dim) in [
            (Metric::L2, 24),
            (Metric::L2, 100),
            (Metric::L2, 300),
            (Metric::InnerProduct, 37),
            (Metric::Cosine, 64),
        ] {
            let n = 700;
            let mut value = || (rng.next_u32() % 2001) as f32 / 1000.0 - 1.0;
            let data: Vec<f32> = (0..n * dim).map(|_| value()).collect();
            let queries: Vec<f32> = (0..12 * dim).map(|_| value()).collect();
            let index = Index::new(Params::new(dim, metric).quantization(Quantization::Sq8), n).unwrap();
            index.train(&data).unwrap();
            let labels: Vec<u64> = (0..n as u64).collect();
            index.add_batch(&labels, &data).unwrap();
            let codes = index.codes.as_ref().unwrap();
            let kernels = codes.sq8_kernels().expect("trained SQ8 codes");
            for query in queries.chunks(dim) {
                let (mut s, start) = index.begin(query, 10).unwrap();
                let (ep, _) = start.unwrap();
                assert!(s.nav_on, "{metric:?} {dim}: the walk should read the codes");
                let q = s.query.as_ptr();
                // With and without the kernels' prefetch (this small index walks without).
                for (ef, prefetch) in [10, 32, 33, 90]
                    .into_iter()
                    .flat_map(|ef| [(ef, Prefetch::Off), (ef, Prefetch::Ahead)])
                {
                    s.walk_prefetch = prefetch;
                    s.distances = 0;
                    index.walk(&mut s, q, ep, ef, 0, u32::MAX, Tables);
                    let want: Vec<(u32, u32)> = s.pool.iter().map(|(d, id)| (d.to_bits(), id)).collect();
                    let counted = s.distances;
                    s.distances = 0;
                    kernels.with_int_kernel(Walk {
                        index: &index,
                        codes,
                        s: &mut s,
                        q,
                        ep,
                        ef,
                        layer: 0,
                        exclude: u32::MAX,
                    });
                    let got: Vec<(u32, u32)> = s.pool.iter().map(|(d, id)| (d.to_bits(), id)).collect();
                    assert_eq!(got, want, "{metric:?} dim {dim} ef {ef} {prefetch:?}");
                    assert_eq!(s.distances, counted, "{metric:?} dim {dim} ef {ef}: distances");
                    assert_eq!(got.len(), ef.min(n), "{metric:?} dim {dim} ef {ef}: pool not full");
                }
            }
        }
    }
}
