//! Data for tests, examples and benchmarks: texmex `.fvecs`/`.ivecs` files, a clustered
//! synthetic generator, and recall.
//!
//! ```
//! use hnswx::data::{gaussian_mixture, Table};
//! let t: Table<f32> = gaussian_mixture(1000, 8, 10, 1.0, 7);
//! assert_eq!((t.len(), t.dim()), (1000, 8));
//! ```

use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};

/// Why a data file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The contents do not follow the format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset where it was found.
        reason: String,
    },
}

/// A row-major table of `len × dim` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Table<T> {
    dim: usize,
    data: Vec<T>,
}

impl<T> Table<T> {
    /// A table from row-major `data`; `None` if `dim` is 0 or does not divide its length.
    pub fn new(dim: usize, data: Vec<T>) -> Option<Self> {
        (dim > 0 && data.len().is_multiple_of(dim)).then_some(Table { dim, data })
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// `true` if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.dim..][..self.dim]
    }

    /// Every row in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, T> {
        self.data.chunks_exact(self.dim)
    }

    /// The values, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The first `n` rows (all if fewer) and the rest: a base set and its held-out queries.
    pub fn split_at(mut self, n: usize) -> (Self, Self) {
        let (dim, rest) = (self.dim, self.data.split_off(n.min(self.len()) * self.dim));
        (self, Table { dim, data: rest })
    }

    /// The first `n` rows (all if fewer).
    pub fn truncated(mut self, n: usize) -> Self {
        self.data.truncate(n.min(self.len()) * self.dim);
        self
    }
}

/// Reads a texmex `.fvecs` file: per row a little-endian `i32` dimension, then that many
/// `f32`. Every row must have the same dimension.
pub fn read_fvecs(path: impl AsRef<Path>) -> Result<Table<f32>, DataError> {
    read_vecs(path.as_ref(), f32::from_le_bytes)
}

/// Reads a texmex `.bvecs` file (per row an `i32` dimension, then that many bytes), as `f32`.
pub fn read_bvecs(path: impl AsRef<Path>) -> Result<Table<f32>, DataError> {
    read_vecs_sized(path.as_ref(), 1, |b| f32::from(b[0]))
}

/// Reads a texmex `.ivecs` file (as `.fvecs`, with `i32` values, read as `u32` ids).
pub fn read_ivecs(path: impl AsRef<Path>) -> Result<Table<u32>, DataError> {
    read_vecs(path.as_ref(), u32::from_le_bytes)
}

/// Writes a texmex `.ivecs` file.
pub fn write_ivecs(path: impl AsRef<Path>, table: &Table<u32>) -> Result<(), DataError> {
    write_vecs(path.as_ref(), table, u32::to_le_bytes)
}

/// Writes a texmex `.fvecs` file.
pub fn write_fvecs(path: impl AsRef<Path>, table: &Table<f32>) -> Result<(), DataError> {
    write_vecs(path.as_ref(), table, f32::to_le_bytes)
}

fn write_vecs<T: Copy>(path: &Path, table: &Table<T>, encode: fn(T) -> [u8; 4]) -> Result<(), DataError> {
    let mut bytes = Vec::with_capacity(table.len() * (table.dim() + 1) * 4);
    for row in table.rows() {
        bytes.extend_from_slice(&(table.dim() as u32).to_le_bytes());
        row.iter().for_each(|&v| bytes.extend_from_slice(&encode(v)));
    }
    std::fs::write(path, bytes).map_err(|source| DataError::Io {
        path: path.into(),
        source,
    })
}

fn read_vecs<T>(path: &Path, parse: fn([u8; 4]) -> T) -> Result<Table<T>, DataError> {
    read_vecs_sized(path, 4, |b| parse(b.try_into().expect("4 bytes")))
}

/// Reads a texmex file whose values are `width` bytes each, decoded by `parse`.
fn read_vecs_sized<T>(path: &Path, width: usize, parse: impl Fn(&[u8]) -> T) -> Result<Table<T>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.into(),
        source,
    })?;
    let bad = |reason: String| DataError::Format {
        path: path.into(),
        reason,
    };
    let header = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes: too short for a texmex file", bytes.len())));
    }
    let dim = header(0);
    if dim <= 0 || dim > (1 << 24) {
        return Err(bad(format!(
            "dimension {dim} at offset 0 (expected 1..=2^24): not a texmex file?"
        )));
    }
    let dim = dim as usize;
    let row_bytes = 4 + width * dim;
    if !bytes.len().is_multiple_of(row_bytes) {
        return Err(bad(format!(
            "{} bytes is not a whole number of {dim}-dimensional rows ({row_bytes} bytes each): truncated?",
            bytes.len()
        )));
    }
    let rows = bytes.len() / row_bytes;
    let mut data = Vec::with_capacity(rows * dim);
    for r in 0..rows {
        let at = r * row_bytes;
        let d = header(at);
        if d as usize != dim {
            return Err(bad(format!(
                "row {r} (offset {at}) has dimension {d}, the first row {dim}"
            )));
        }
        data.extend(bytes[at + 4..at + row_bytes].chunks_exact(width).map(&parse));
    }
    Ok(Table { dim, data })
}

/// `n` points in `dim` dimensions from a mixture of `clusters` Gaussians: centres uniform in
/// [−1, 1]^dim, each point a centre plus N(0, `spread`² / dim) noise per component. Clustered
/// like real embeddings, and harder for a graph than uniform noise. Deterministic in `seed`.
pub fn gaussian_mixture(n: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Table<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut uniform = move || (rng.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
    let centres: Vec<f32> = (0..clusters.max(1) * dim).map(|_| 2.0 * uniform() - 1.0).collect();
    let sigma = spread / (dim as f32).sqrt();
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = (uniform() * clusters.max(1) as f32) as usize % clusters.max(1);
        for j in 0..dim {
            // Box–Muller: one normal draw from two uniforms.
            let (u1, u2) = (uniform().max(f32::MIN_POSITIVE), uniform());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            data.push(centres[c * dim + j] + sigma * z);
        }
    }
    Table { dim, data }
}

/// The labels of the exact `k` nearest rows of `base` (labelled `0..n`) for every query,
/// nearest first, by [`BruteForce`](crate::BruteForce) on the current rayon pool: ground
/// truth for recall.
pub fn exact_knn(
    base: &Table<f32>,
    queries: &Table<f32>,
    metric: crate::Metric,
    k: usize,
) -> crate::Result<Vec<Vec<u64>>> {
    let mut exact = crate::BruteForce::new(base.dim(), metric)?;
    exact.add_batch(&(0..base.len() as u64).collect::<Vec<_>>(), base.as_slice())?;
    let hits = exact.search_batch(queries.as_slice(), k)?;
    Ok(hits
        .into_iter()
        .map(|h| h.into_iter().map(|n| n.label).collect())
        .collect())
}

/// Recall@k: the fraction of the true `k` nearest (`truth[q][..k]`) that `found[q]` holds,
/// over all queries.
pub fn recall<A: PartialEq + Copy, B: Copy + Into<A>>(found: &[Vec<A>], truth: &[Vec<B>], k: usize) -> f64 {
    let mut hit = 0usize;
    for (f, t) in found.iter().zip(truth) {
        let t = &t[..k.min(t.len())];
        hit += f.iter().take(k).filter(|x| t.iter().any(|&y| y.into() == **x)).count();
    }
    hit as f64 / (found.len() * k).max(1) as f64
}
