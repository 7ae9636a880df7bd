//! [`BruteForce`]: exact search by scanning every vector. The ground truth of the tests and
//! benchmarks, and a sound choice for sets of a few thousand vectors.

use aligned_vec::{AVec, ConstAlign};
use rayon::prelude::*;
use std::collections::{BinaryHeap, HashSet};

use crate::error::{Error, Result};
use crate::graph::scratch::Scored;
use crate::index::{check_finite, check_rows, check_vector, inverse_norm, Neighbour};
use crate::store::slab::{row_stride, SLAB_ALIGN};
use hnswx_kernels::{Metric, MetricKernel};

/// An exact index with the same calls as [`Index`](crate::Index), minus `ef`. Adding takes
/// `&mut self`; searching is `&self` and parallel in [`search_batch`](Self::search_batch).
///
/// ```
/// use hnswx::{BruteForce, Metric};
/// let mut exact = BruteForce::new(2, Metric::L2).unwrap();
/// exact.add_batch(&[7, 8], &[0.0, 0.0, 3.0, 4.0]).unwrap();
/// let hits = exact.search(&[3.0, 3.0], 1).unwrap();
/// assert_eq!((hits[0].label, hits[0].distance), (8, 1.0));
/// ```
pub struct BruteForce {
    dim: usize,
    stride: usize,
    kernel: MetricKernel,
    rows: AVec<f32, ConstAlign<SLAB_ALIGN>>,
    labels: Vec<u64>,
    known: HashSet<u64>,
}

impl BruteForce {
    /// An empty exact index for `dim`-dimensional vectors.
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 {
            return Err(Error::InvalidParameter {
                name: "dim",
                reason: "must be at least 1".into(),
            });
        }
        Ok(BruteForce {
            dim,
            stride: row_stride(dim),
            kernel: hnswx_kernels::auto().metric(metric),
            rows: AVec::new(SLAB_ALIGN),
            labels: Vec::new(),
            known: HashSet::new(),
        })
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` if empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Components per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.kernel.metric_kind()
    }

    /// Adds one vector; same checks as [`Index::add`](crate::Index::add).
    pub fn add(&mut self, label: u64, vector: &[f32]) -> Result<()> {
        self.add_batch(&[label], vector)
    }

    /// Adds `labels.len()` row-major vectors; on error nothing is added.
    pub fn add_batch(&mut self, labels: &[u64], vectors: &[f32]) -> Result<()> {
        let dim = self.dim;
        if vectors.len() != labels.len() * dim {
            return Err(Error::Dimension {
                expected: dim,
                got: vectors.len() / labels.len().max(1),
            });
        }
        let cosine = self.metric() == Metric::Cosine;
        let scales: Vec<f32> = if cosine {
            check_finite(vectors)?;
            vectors.chunks_exact(dim).map(inverse_norm).collect::<Result<_>>()?
        } else {
            check_rows(vectors, dim)?;
            vec![1.0; labels.len()]
        };
        let mut seen = HashSet::with_capacity(labels.len());
        if let Some(&dup) = labels.iter().find(|&&l| self.known.contains(&l) || !seen.insert(l)) {
            return Err(Error::DuplicateLabel(dup));
        }
        self.rows.reserve(labels.len() * self.stride);
        for (v, s) in vectors.chunks_exact(dim).zip(scales) {
            self.rows.extend_from_slice(v);
            for i in self.rows.len() - dim..self.rows.len() {
                self.rows[i] *= s;
            }
            self.rows.resize(self.rows.len() + self.stride - dim, 0.0);
        }
        self.labels.extend_from_slice(labels);
        self.known.extend(labels);
        Ok(())
    }

    /// The exact `k` nearest neighbours of `query`, closest first (ties by insertion order).
    /// A `k` larger than the index is clamped to its size.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbour>> {
        if k == 0 {
            return Err(Error::ZeroK);
        }
        if query.len() != self.dim {
            return Err(Error::Dimension {
                expected: self.dim,
                got: query.len(),
            });
        }
        let mut q = query.to_vec();
        if self.metric() == Metric::Cosine {
            check_finite(query)?;
            let s = inverse_norm(query)?;
            q.iter_mut().for_each(|x| *x *= s);
        } else {
            check_vector(query)?;
        }
        let k = k.min(self.len());
        let mut top = BinaryHeap::with_capacity(k + 1);
        for (i, row) in self.rows.chunks_exact(self.stride).enumerate() {
            let d = self.kernel.distance(&q, &row[..self.dim]);
            if top.len() < k {
                top.push(Scored(d, i as u32));
            } else if top.peek().is_some_and(|w: &Scored| Scored(d, i as u32) < *w) {
                top.pop();
                top.push(Scored(d, i as u32));
            }
        }
        Ok(top
            .into_sorted_vec()
            .into_iter()
            .map(|Scored(distance, i)| Neighbour {
                label: self.labels[i as usize],
                distance,
            })
            .collect())
    }

    /// [`search`](Self::search) for every row of `queries`, in parallel.
    pub fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Neighbour>>> {
        if !queries.len().is_multiple_of(self.dim) {
            return Err(Error::Dimension {
                expected: self.dim,
                got: queries.len() % self.dim,
            });
        }
        queries.par_chunks_exact(self.dim).map(|q| self.search(q, k)).collect()
    }
}
