//! Exact search: `BFIndex` (hnswlib's, with its file format) and `BruteForce` (the engine's
//! `hnswx::BruteForce`).
//!
//! `BFIndex` keeps its rows here (hnswlib's brute-force index overwrites and deletes in
//! place, which the engine's append-only `BruteForce` does not do) and scores them with the
//! engine's distance kernels; its vectors are checked by the engine's rules.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock};

use hnswx::kernels::MetricKernel;
use hnswx::{Index, Params};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::convert::{self, matrix, Arrays};
use crate::errors::{fail, new_err, Fail, Kind};
use crate::index::Space;
use crate::pool::{hardware_threads, threads_for, Pools};

/// A distance and a row, ordered by distance then row.
#[derive(PartialEq)]
struct Hit(f32, usize);

impl Eq for Hit {}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The rows of a `BFIndex`.
struct Bf {
    max_elements: usize,
    /// Row-major, normalised under cosine.
    data: Vec<f32>,
    labels: Vec<u64>,
    row_of: HashMap<u64, usize>,
    next_label: u64,
}

/// hnswlib's brute-force index: `BFIndex(space, dim)`, `init_index(max_elements)`,
/// `add_items`, `delete_vector`, `knn_query`, `save_index`, `load_index` (hnswlib's file
/// format). Exact results.
#[pyclass(module = "hnswx", name = "BFIndex", frozen)]
pub struct PyBfIndex {
    space: Space,
    dim: usize,
    /// An empty engine index: it checks vectors by the engine's rules.
    checker: Index,
    kernel: MetricKernel,
    state: RwLock<Option<Bf>>,
    num_threads: AtomicI64,
    pools: Pools,
}

fn not_initialized<T>() -> Result<T, Fail> {
    fail(
        Kind::NotInitialized,
        "BFIndex is not initialized: call init_index() or load_index() first",
    )
}

/// Scales `v` to unit length (the engine has checked that it can be).
fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    let s = (1.0 / norm) as f32;
    v.iter_mut().for_each(|x| *x *= s);
}

impl PyBfIndex {
    fn bf<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&Bf) -> Result<T, Fail> + Send) -> PyResult<T> {
        py.detach(|| match self.state.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(bf) => f(bf),
            None => not_initialized(),
        })
        .map_err(PyErr::from)
    }

    fn bf_mut<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Bf) -> Result<T, Fail> + Send) -> PyResult<T> {
        py.detach(
            || match self.state.write().unwrap_or_else(|e| e.into_inner()).as_mut() {
                Some(bf) => f(bf),
                None => not_initialized(),
            },
        )
        .map_err(PyErr::from)
    }
}

#[pymethods]
impl PyBfIndex {
    /// `BFIndex(space, dim)`: space `'l2'`, `'ip'` or `'cosine'`.
    #[new]
    fn new(py: Python<'_>, space: &str, dim: i64) -> PyResult<PyBfIndex> {
        let space = Space::parse(py, space)?;
        if dim <= 0 || dim > 1 << 24 {
            return Err(new_err(
                py,
                Kind::InvalidParameter,
                format!("dim must be in 1..=16777216, got {dim}"),
            ));
        }
        let dim = dim as usize;
        let checker = Index::new(Params::new(dim, space.metric()), 0).map_err(Fail::from)?;
        Ok(PyBfIndex {
            space,
            dim,
            kernel: checker.kernel(),
            checker,
            state: RwLock::new(None),
            num_threads: AtomicI64::new(hardware_threads() as i64),
            pools: Pools::default(),
        })
    }

    /// Room for `max_elements` vectors (at most `hnswx.MAX_CAPACITY`-like 2**31 - 1, as
    /// the graph index).
    fn init_index(&self, py: Python<'_>, max_elements: usize) -> PyResult<()> {
        check_max_elements(max_elements, self.dim)?;
        py.detach(|| {
            let mut s = self.state.write().unwrap_or_else(|e| e.into_inner());
            if s.is_some() {
                return fail(Kind::Base, "The index is already initiated.");
            }
            *s = Some(Bf {
                max_elements,
                data: Vec::new(),
                labels: Vec::new(),
                row_of: HashMap::new(),
                next_label: 0,
            });
            Ok(())
        })
        .map_err(PyErr::from)
    }

    /// Adds vectors under `ids` (default: sequential); a label already held gets the new
    /// vector. Checked whole first: on error nothing is added.
    #[pyo3(signature = (data, ids = None))]
    fn add_items(&self, py: Python<'_>, data: &Bound<'_, PyAny>, ids: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let rows = convert::rows(data, "data")?;
        convert::check_dim(py, &rows, self.dim)?;
        let given = match ids.filter(|i| !i.is_none()) {
            Some(_) => Some(convert::labels(py, ids, rows.rows, 0)?),
            None => None,
        };
        let slice = rows.data()?;
        let (dim, cosine) = (self.dim, self.space == Space::Cosine);
        self.checker.check_vectors(slice).map_err(Fail::from)?;
        self.bf_mut(py, |bf| {
            let labels =
                given.unwrap_or_else(|| (0..rows.rows as u64).map(|i| bf.next_label.wrapping_add(i)).collect());
            let mut fresh: Vec<u64> = labels.iter().copied().filter(|l| !bf.row_of.contains_key(l)).collect();
            fresh.sort_unstable();
            fresh.dedup();
            if bf.labels.len() + fresh.len() > bf.max_elements {
                return fail(
                    Kind::Capacity,
                    format!(
                        "The number of elements exceeds the specified limit ({} elements, {} new, max_elements {})",
                        bf.labels.len(),
                        fresh.len(),
                        bf.max_elements
                    ),
                );
            }
            if bf.data.try_reserve(fresh.len() * dim).is_err() {
                return fail(Kind::Base, "out of memory");
            }
            for (v, &l) in slice.chunks_exact(dim).zip(&labels) {
                let row = match bf.row_of.get(&l) {
                    Some(&r) => r,
                    None => {
                        bf.labels.push(l);
                        bf.data.resize(bf.labels.len() * dim, 0.0);
                        bf.row_of.insert(l, bf.labels.len() - 1);
                        bf.labels.len() - 1
                    }
                };
                let dst = &mut bf.data[row * dim..(row + 1) * dim];
                dst.copy_from_slice(v);
                if cosine {
                    normalise(dst);
                }
            }
            bf.next_label = bf.next_label.wrapping_add(rows.rows as u64);
            Ok(())
        })
    }

    /// Deletes `label` (nothing happens if it is not held, as in hnswlib).
    fn delete_vector(&self, py: Python<'_>, label: u64) -> PyResult<()> {
        let dim = self.dim;
        self.bf_mut(py, |bf| {
            if let Some(row) = bf.row_of.remove(&label) {
                let last = bf.labels.len() - 1;
                if row != last {
                    bf.data.copy_within(last * dim..(last + 1) * dim, row * dim);
                    bf.labels[row] = bf.labels[last];
                    bf.row_of.insert(bf.labels[row], row);
                }
                bf.labels.pop();
                bf.data.truncate(last * dim);
            }
            Ok(())
        })
    }

    /// The exact `k` nearest neighbours of each row: `(labels, distances)` of shape
    /// `(rows, k)`. Raises when fewer than `k` vectors (pass the filter).
    #[pyo3(signature = (data, k = 1, num_threads = -1, filter = None))]
    fn knn_query<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        k: usize,
        num_threads: i64,
        filter: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Arrays<'py>> {
        let rows = convert::rows(data, "data")?;
        convert::check_dim(py, &rows, self.dim)?;
        if k == 0 {
            return Err(new_err(py, Kind::InvalidParameter, "k must be at least 1"));
        }
        let filter = filter.filter(|f| !f.is_none()).map(Bound::unbind);
        let slice = rows.data()?;
        self.checker.check_vectors(slice).map_err(Fail::from)?;
        let threads = threads_for(num_threads, self.num_threads.load(Ordering::Relaxed), rows.rows);
        let (dim, cosine, kernel) = (self.dim, self.space == Space::Cosine, self.kernel);
        let (l, d) = self.bf(py, |bf| {
            let error: Mutex<Option<PyErr>> = Mutex::new(None);
            let accept = |label: u64| -> bool {
                let Some(f) = &filter else { return true };
                if error.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                    return false;
                }
                Python::attach(|py| match f.bind(py).call1((label,)).and_then(|r| r.is_truthy()) {
                    Ok(b) => b,
                    Err(e) => {
                        error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                        false
                    }
                })
            };
            let one = |q: &[f32], l: &mut [u64], d: &mut [f32]| -> Result<(), Fail> {
                let mut q = q.to_vec();
                if cosine {
                    normalise(&mut q);
                }
                let mut top = BinaryHeap::with_capacity(k + 1);
                for (row, v) in bf.data.chunks_exact(dim).enumerate() {
                    let hit = Hit(kernel.distance(&q, v), row);
                    if top.len() == k && top.peek().is_some_and(|w| hit >= *w) {
                        continue;
                    }
                    if !accept(bf.labels[row]) {
                        continue;
                    }
                    top.push(hit);
                    if top.len() > k {
                        top.pop();
                    }
                }
                if top.len() < k {
                    return fail(
                        Kind::Base,
                        "Cannot return the results in a contiguous 2D array. Probably ef or M is too small",
                    );
                }
                for (i, Hit(dist, row)) in top.into_sorted_vec().into_iter().enumerate() {
                    l[i] = bf.labels[row];
                    d[i] = dist;
                }
                Ok(())
            };
            if k > bf.labels.len() && rows.rows > 0 {
                return fail(
                    Kind::Base,
                    "Cannot return the results in a contiguous 2D array. Probably ef or M is too small",
                );
            }
            let mut l = vec![0u64; rows.rows * k];
            let mut d = vec![0f32; rows.rows * k];
            let r = if threads <= 1 {
                slice
                    .chunks_exact(dim)
                    .zip(l.chunks_exact_mut(k).zip(d.chunks_exact_mut(k)))
                    .try_for_each(|(q, (l, d))| one(q, l, d))
            } else {
                self.pools.get(threads)?.install(|| {
                    slice
                        .par_chunks_exact(dim)
                        .zip(l.par_chunks_exact_mut(k).zip(d.par_chunks_exact_mut(k)))
                        .try_for_each(|(q, (l, d))| one(q, l, d))
                })
            };
            if let Some(e) = error.into_inner().unwrap_or_else(|e| e.into_inner()) {
                return Err(Fail::Py(e));
            }
            r.map(|()| (l, d))
        })?;
        Ok((matrix(py, l, rows.rows, k)?, matrix(py, d, rows.rows, k)?))
    }

    /// Saves in hnswlib's brute-force format.
    fn save_index(&self, py: Python<'_>, path_to_index: PathBuf) -> PyResult<()> {
        let dim = self.dim;
        self.bf(py, |bf| {
            let io = |e: std::io::Error| Fail::Msg(Kind::File, format!("{}: {e}", path_to_index.display()));
            let per = dim * 4 + 8;
            let file = std::fs::File::create(&path_to_index).map_err(io)?;
            let mut w = std::io::BufWriter::new(file);
            for v in [bf.max_elements, per, bf.labels.len()] {
                w.write_all(&(v as u64).to_le_bytes()).map_err(io)?;
            }
            for (v, l) in bf.data.chunks_exact(dim).zip(&bf.labels) {
                for x in v {
                    w.write_all(&x.to_le_bytes()).map_err(io)?;
                }
                w.write_all(&l.to_le_bytes()).map_err(io)?;
            }
            let rest = bf
                .max_elements
                .saturating_sub(bf.labels.len())
                .checked_mul(per)
                .ok_or(Fail::Msg(Kind::Base, "max_elements too large to save".into()))?;
            let zeros = vec![0u8; per.max(1) * 64];
            let mut left = rest;
            while left > 0 {
                let n = left.min(zeros.len());
                w.write_all(&zeros[..n]).map_err(io)?;
                left -= n;
            }
            w.flush().map_err(io)?;
            Ok(())
        })
    }

    /// Loads a file written by hnswlib's (or this) `BFIndex.save_index`, replacing the
    /// contents. `max_elements` above the file's raises the limit.
    #[pyo3(signature = (path_to_index, max_elements = 0))]
    fn load_index(&self, py: Python<'_>, path_to_index: PathBuf, max_elements: usize) -> PyResult<()> {
        let (dim, cosine) = (self.dim, self.space == Space::Cosine);
        let bf = py.detach(|| -> Result<Bf, Fail> {
            let path = &path_to_index;
            let bytes = std::fs::read(path).map_err(|e| Fail::Msg(Kind::File, format!("{}: {e}", path.display())))?;
            let bad = |why: String| Fail::Msg(Kind::File, format!("{}: {why}", path.display()));
            if bytes.len() < 24 {
                return Err(bad("shorter than a BFIndex header".into()));
            }
            let word = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap_or_default());
            let (max, per, count) = (word(0), word(1), word(2));
            if per != (dim * 4 + 8) as u64 {
                return Err(bad(format!(
                    "elements of {per} bytes: not a {dim}-dimensional BFIndex file"
                )));
            }
            let body = bytes.len() as u64 - 24;
            if count > max || max.checked_mul(per).is_none_or(|b| b != body) {
                return Err(bad(format!(
                    "{count} of {max} elements of {per} bytes need {} bytes after the header, found {body}",
                    max.saturating_mul(per)
                )));
            }
            check_max_elements((max as usize).max(max_elements), dim)?;
            let (count, per) = (count as usize, per as usize);
            let mut bf = Bf {
                max_elements: (max as usize).max(max_elements),
                data: Vec::with_capacity(count * dim),
                labels: Vec::with_capacity(count),
                row_of: HashMap::with_capacity(count),
                next_label: count as u64,
            };
            for (row, e) in bytes[24..24 + count * per].chunks_exact(per).enumerate() {
                let at = bf.data.len();
                bf.data.extend(
                    e[..dim * 4]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default())),
                );
                if let Err(e) = self.checker.check_vectors(&bf.data[at..]) {
                    return Err(bad(format!("element {row}: {e}")));
                }
                if cosine {
                    normalise(&mut bf.data[at..]);
                }
                let label = u64::from_le_bytes(e[dim * 4..].try_into().unwrap_or_default());
                if bf.row_of.insert(label, row).is_some() {
                    return Err(bad(format!("label {label} appears twice")));
                }
                bf.labels.push(label);
            }
            Ok(bf)
        })?;
        py.detach(|| *self.state.write().unwrap_or_else(|e| e.into_inner()) = Some(bf));
        Ok(())
    }

    /// Default threads of `knn_query`.
    fn set_num_threads(&self, num_threads: i64) {
        self.num_threads.store(num_threads, Ordering::Relaxed);
    }

    /// Default threads of `knn_query`.
    #[getter]
    fn get_num_threads(&self) -> i64 {
        self.num_threads.load(Ordering::Relaxed)
    }

    #[setter(num_threads)]
    fn set_num_threads_attr(&self, n: i64) {
        self.num_threads.store(n, Ordering::Relaxed);
    }

    /// `max_elements`.
    fn get_max_elements(&self, py: Python<'_>) -> PyResult<usize> {
        self.bf(py, |bf| Ok(bf.max_elements))
    }

    /// Vectors held.
    fn get_current_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.bf(py, |bf| Ok(bf.labels.len()))
    }

    /// `'l2'`, `'ip'` or `'cosine'`.
    #[getter]
    fn space(&self) -> &'static str {
        self.space.name()
    }

    /// Components per vector.
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }

    fn __repr__(&self) -> String {
        format!("<hnswx.BFIndex(space='{}', dim={})>", self.space.name(), self.dim)
    }
}

/// hnswx's exact index (`hnswx::BruteForce`): labels must be new, results padded like
/// `Index.search`.
#[pyclass(module = "hnswx", name = "BruteForce", frozen)]
pub struct PyBruteForce {
    space: Space,
    inner: RwLock<hnswx::BruteForce>,
    pools: Pools,
}

#[pymethods]
impl PyBruteForce {
    /// `BruteForce(space, dim)`.
    #[new]
    fn new(py: Python<'_>, space: &str, dim: usize) -> PyResult<PyBruteForce> {
        let space = Space::parse(py, space)?;
        let inner = hnswx::BruteForce::new(dim, space.metric()).map_err(Fail::from)?;
        Ok(PyBruteForce {
            space,
            inner: RwLock::new(inner),
            pools: Pools::default(),
        })
    }

    /// Adds vectors under new labels `ids` (default: `len(self)`, `len(self) + 1`, ...);
    /// a label already held is a `DuplicateLabelError`. On error nothing is added.
    #[pyo3(signature = (data, ids = None))]
    fn add_items(&self, py: Python<'_>, data: &Bound<'_, PyAny>, ids: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let dim = self.dim(py);
        let rows = convert::rows(data, "data")?;
        convert::check_dim(py, &rows, dim)?;
        let next = self.__len__(py) as u64;
        let labels = convert::labels(py, ids, rows.rows, next)?;
        let slice = rows.data()?;
        py.detach(|| {
            self.inner
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .add_batch(&labels, slice)
                .map_err(Fail::from)
        })?;
        Ok(())
    }

    /// The exact `k` nearest neighbours of each row: `(labels, distances)` of shape
    /// `(rows, k)`, padded with label `2**64 - 1` and distance `inf` past the index's size.
    #[pyo3(signature = (queries, k = 10, num_threads = -1))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        num_threads: i64,
    ) -> PyResult<Arrays<'py>> {
        let dim = self.dim(py);
        let rows = convert::rows(queries, "queries")?;
        convert::check_dim(py, &rows, dim)?;
        if k == 0 {
            return Err(new_err(py, Kind::InvalidParameter, "k must be at least 1"));
        }
        let slice = rows.data()?;
        let threads = threads_for(num_threads, -1, rows.rows);
        let (l, d) = py.detach(|| -> Result<(Vec<u64>, Vec<f32>), Fail> {
            let bf = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let hits = self.pools.get(threads)?.install(|| bf.search_batch(slice, k))?;
            let n = rows
                .rows
                .checked_mul(k)
                .ok_or(Fail::Msg(Kind::Base, "too many results".into()))?;
            let mut l = crate::index::buffer(n, u64::MAX)?;
            let mut d = crate::index::buffer(n, f32::INFINITY)?;
            for (r, hits) in hits.iter().enumerate() {
                for (i, h) in hits.iter().enumerate() {
                    l[r * k + i] = h.label;
                    d[r * k + i] = h.distance;
                }
            }
            Ok((l, d))
        })?;
        Ok((matrix(py, l, rows.rows, k)?, matrix(py, d, rows.rows, k)?))
    }

    /// Vectors held.
    fn __len__(&self, py: Python<'_>) -> usize {
        py.detach(|| self.inner.read().unwrap_or_else(|e| e.into_inner()).len())
    }

    /// Components per vector.
    #[getter]
    fn dim(&self, py: Python<'_>) -> usize {
        py.detach(|| self.inner.read().unwrap_or_else(|e| e.into_inner()).dim())
    }

    /// `'l2'`, `'ip'` or `'cosine'`.
    #[getter]
    fn space(&self) -> &'static str {
        self.space.name()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<hnswx.BruteForce(space='{}', dim={})>",
            self.space.name(),
            self.dim(py)
        )
    }
}

/// `Err` unless `max_elements` fits the engine's capacity bound and its file (`dim` floats
/// and a label per element) fits in memory sizes.
fn check_max_elements(max_elements: usize, dim: usize) -> Result<(), Fail> {
    let per = dim.saturating_mul(4).saturating_add(8);
    if max_elements > hnswx::MAX_CAPACITY || max_elements.checked_mul(per).is_none_or(|b| b > isize::MAX as usize) {
        return fail(
            Kind::InvalidParameter,
            format!("max_elements {max_elements} is more than {}", hnswx::MAX_CAPACITY),
        );
    }
    Ok(())
}
