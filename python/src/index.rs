//! `hnswx.Index`: hnswlib's `Index` on the hnswx engine.
//!
//! The engine index sits in an `RwLock<Option<Inner>>`: `None` until `init_index` or
//! `load_index`; every call takes the read side (the engine's calls take `&self`, so adds
//! and searches run together), and the few that need `&mut` (`resize_index`, growing for an
//! update, `load_index`) the write side. Locks are only ever taken with the GIL released,
//! so a thread waiting for one never blocks a thread that needs the GIL.
//!
//! hnswlib's semantics kept here, over the engine's:
//! - Adding a label the index holds replaces its vector (the engine's `update`); adding a
//!   deleted label brings it back with the new vector (unless `allow_replace_deleted`, where
//!   hnswlib refuses it).
//! - `element_count` counts live and deleted elements; `max_elements` bounds it.
//! - `replace_deleted=True` puts new labels in the places of deleted ones (here: the deleted
//!   elements are consolidated away, all of them, and the new vectors reuse their slots).

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use hnswx::{Index, Metric, Neighbour, Params, Verify};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use rayon::prelude::*;

use crate::convert::{self, matrix, Arrays};
use crate::errors::{fail, new_err, Fail, Kind};
use crate::pool::{hardware_threads, threads_for, Pools};

/// hnswlib's spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Squared Euclidean distance.
    L2,
    /// `1 - a·b`.
    Ip,
    /// `1 - a·b` on normalised vectors.
    Cosine,
}

impl Space {
    /// From hnswlib's names.
    pub fn parse(py: Python<'_>, s: &str) -> PyResult<Space> {
        match s {
            "l2" => Ok(Space::L2),
            "ip" => Ok(Space::Ip),
            "cosine" => Ok(Space::Cosine),
            _ => Err(new_err(
                py,
                Kind::InvalidParameter,
                format!("Space name must be one of l2, ip, or cosine (got {s:?})."),
            )),
        }
    }

    /// hnswlib's name.
    pub fn name(self) -> &'static str {
        match self {
            Space::L2 => "l2",
            Space::Ip => "ip",
            Space::Cosine => "cosine",
        }
    }

    /// The engine's metric.
    pub fn metric(self) -> Metric {
        match self {
            Space::L2 => Metric::L2,
            Space::Ip => Metric::InnerProduct,
            Space::Cosine => Metric::Cosine,
        }
    }

    /// The space of an engine metric.
    pub fn of(metric: Metric) -> Space {
        match metric {
            Metric::InnerProduct => Space::Ip,
            Metric::Cosine => Space::Cosine,
            _ => Space::L2,
        }
    }
}

/// An initialised index and hnswlib's bookkeeping around it.
struct Inner {
    index: Index,
    /// hnswlib's `max_elements`: live + deleted elements may not exceed it.
    max_elements: AtomicUsize,
    /// hnswlib's `cur_l`: the first label `add_items` gives when called without ids.
    next_label: AtomicU64,
    allow_replace_deleted: bool,
}

impl Inner {
    fn new(index: Index, max_elements: usize, allow_replace_deleted: bool) -> Inner {
        let count = index.len() + index.removed_labels().len();
        Inner {
            index,
            max_elements: AtomicUsize::new(max_elements),
            next_label: AtomicU64::new(count as u64),
            allow_replace_deleted,
        }
    }

    /// hnswlib's `cur_element_count`: live and deleted elements.
    fn element_count(&self) -> usize {
        self.index.len() + self.index.removed_labels().len()
    }
}

/// An HNSW index with hnswlib's Python API (`hnswx.Index(space, dim)`), on the hnswx engine.
///
/// Use it as hnswlib's: `init_index`, `add_items`, `knn_query`, `save_index`/`load_index`
/// (hnswlib's file format; `load_index` also reads hnswx files), `mark_deleted`, ... . Beyond
/// hnswlib: `save`/`hnswx.load`/`hnswx.open_mmap` (hnswx's checked format), `remove`,
/// `restore`, `update`, `consolidate`, `search` (ef per call, padded results), `len()` and
/// `in`.
#[pyclass(module = "hnswx", name = "Index", frozen)]
pub struct PyIndex {
    space: Space,
    dim: usize,
    state: RwLock<Option<Inner>>,
    ef: AtomicUsize,
    num_threads: AtomicI64,
    pools: Pools,
}

fn not_initialized<T>() -> Result<T, Fail> {
    fail(
        Kind::NotInitialized,
        "Index is not initialized: call init_index() or load_index() first",
    )
}

/// A unique temporary path (the engine writes its files through a temporary of its own).
fn temp_path(what: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("hnswx-{what}-{}-{n}-{nanos}", std::process::id()))
}

/// Removes a temporary file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn io_fail(path: &Path, e: std::io::Error) -> Fail {
    Fail::Msg(Kind::File, format!("{}: {e}", path.display()))
}

/// What [`search_rows`] does when a row has fewer than `k` results.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Short {
    /// Raise hnswlib's error.
    Raise,
    /// Pad with label `2**64 - 1` and distance `inf`.
    Pad,
}

/// A Python filter callable, called with the GIL taken back for each label. The first
/// exception it raises is kept (and raised after the search); it rejects every label from
/// then on.
struct PyFilter<'a> {
    f: &'a Py<PyAny>,
    error: Mutex<Option<PyErr>>,
}

impl PyFilter<'_> {
    fn accepts(&self, label: u64) -> bool {
        if self.error.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return false;
        }
        Python::attach(|py| match self.f.bind(py).call1((label,)).and_then(|r| r.is_truthy()) {
            Ok(b) => b,
            Err(e) => {
                self.error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                false
            }
        })
    }
}

/// A zeroed buffer of `n`, or Python's `MemoryError` (never an abort).
pub(crate) fn buffer<T: Clone>(n: usize, fill: T) -> Result<Vec<T>, Fail> {
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        return fail(Kind::Base, format!("cannot allocate results for {n} neighbours"));
    }
    v.resize(n, fill);
    Ok(v)
}

/// Searches every row of `data` (`dim` columns) for `k` neighbours at `ef`, on `threads`
/// threads, through `filter` if given. Returns row-major labels and distances.
#[allow(clippy::too_many_arguments)]
fn search_rows(
    index: &Index,
    data: &[f32],
    dim: usize,
    k: usize,
    ef: usize,
    threads: usize,
    pools: &Pools,
    filter: Option<&Py<PyAny>>,
    short: Short,
) -> Result<(Vec<u64>, Vec<f32>), Fail> {
    if k == 0 {
        return fail(Kind::InvalidParameter, "k must be at least 1");
    }
    let rows = data.len() / dim;
    if short == Short::Raise && rows > 0 && k > index.len() {
        return fail(
            Kind::Base,
            format!(
                "Cannot return the results in a contiguous 2D array. Probably ef or M is too small \
                 (k = {k}, the index holds {} vectors)",
                index.len()
            ),
        );
    }
    let n = rows
        .checked_mul(k)
        .ok_or(Fail::Msg(Kind::Base, "too many results".into()))?;
    let mut labels = buffer(n, u64::MAX)?;
    let mut dists = buffer(n, f32::INFINITY)?;
    let filter = filter.map(|f| PyFilter {
        f,
        error: Mutex::new(None),
    });
    let one = |q: &[f32], out: &mut Vec<Neighbour>, l: &mut [u64], d: &mut [f32]| -> Result<(), Fail> {
        match &filter {
            Some(f) => *out = index.search_filtered(q, k, ef, |label| f.accepts(label))?,
            None => index.search_into(q, k, ef, out)?,
        }
        if out.len() < k && short == Short::Raise {
            return fail(
                Kind::Base,
                "Cannot return the results in a contiguous 2D array. Probably ef or M is too small",
            );
        }
        for (i, h) in out.iter().enumerate() {
            l[i] = h.label;
            d[i] = h.distance;
        }
        Ok(())
    };
    let result = if threads <= 1 || rows <= 1 {
        let mut out = Vec::with_capacity(k.min(index.len()));
        data.chunks_exact(dim)
            .zip(labels.chunks_exact_mut(k).zip(dists.chunks_exact_mut(k)))
            .try_for_each(|(q, (l, d))| one(q, &mut out, l, d))
    } else {
        let pool = pools.get(threads)?;
        pool.install(|| {
            data.par_chunks_exact(dim)
                .zip(labels.par_chunks_exact_mut(k).zip(dists.par_chunks_exact_mut(k)))
                .try_for_each_init(Vec::new, |out, (q, (l, d))| one(q, out, l, d))
        })
    };
    if let Some(e) = filter.and_then(|f| f.error.into_inner().unwrap_or_else(|e| e.into_inner())) {
        return Err(Fail::Py(e));
    }
    result.map(|()| (labels, dists))
}

/// What `add_items` does, worked out before anything changes.
struct Plan {
    /// Rows of new labels (in order), or `None` when every row is new.
    add_rows: Option<Vec<usize>>,
    /// Rows whose label the index holds, or that come again later in the batch: updates,
    /// in row order. `true`: the label is deleted and comes back (restore first).
    updates: Vec<(usize, bool)>,
    consolidate_first: bool,
}

impl Inner {
    fn plan(&self, labels: &[u64], replace_deleted: bool) -> Result<Plan, Fail> {
        if replace_deleted && !self.allow_replace_deleted {
            return fail(Kind::Base, "Replacement of deleted elements is disabled in constructor");
        }
        let removed: HashSet<u64> = self.index.removed_labels().into_iter().collect();
        let mut seen = HashSet::with_capacity(labels.len());
        let mut add_rows = Vec::with_capacity(labels.len());
        let mut updates = Vec::new();
        for (row, &l) in labels.iter().enumerate() {
            if !seen.insert(l) || self.index.contains(l) {
                updates.push((row, false));
            } else if removed.contains(&l) {
                // As hnswlib: with replacement enabled, a deleted label comes back only
                // through `replace_deleted=True`.
                if self.allow_replace_deleted && !replace_deleted {
                    return fail(
                        Kind::Base,
                        format!(
                            "Can't use addPoint to update deleted elements if replacement of deleted elements is enabled (label {l})."
                        ),
                    );
                }
                updates.push((row, true));
            } else {
                add_rows.push(row);
            }
        }
        let vacant = if replace_deleted { removed.len() } else { 0 };
        let count = self.index.len() + removed.len();
        let grows = add_rows.len().saturating_sub(vacant);
        let max = self.max_elements.load(Ordering::Acquire);
        if count + grows > max {
            return fail(
                Kind::Capacity,
                format!(
                    "The number of elements exceeds the specified limit ({count} elements, {} new, max_elements {max}): call resize_index()",
                    add_rows.len()
                ),
            );
        }
        Ok(Plan {
            consolidate_first: replace_deleted && !removed.is_empty() && !add_rows.is_empty(),
            add_rows: (add_rows.len() != labels.len()).then_some(add_rows),
            updates,
        })
    }
}

/// Rows added between two checks for Ctrl-C (per thread).
const CHUNK_PER_THREAD: usize = 2048;

fn check_signals() -> Result<(), Fail> {
    Python::attach(|py| py.check_signals()).map_err(Fail::Py)
}

thread_local! {
    /// Index states this thread holds a read guard of (by address, once per guard): a
    /// filter or signal handler running Python code from inside a call is such a thread.
    static READING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A read guard that this thread's [`write`] can see (so that a callback changing the index
/// it was called from gets an error instead of waiting for itself forever).
struct ReadGuard<'a> {
    guard: RwLockReadGuard<'a, Option<Inner>>,
    at: usize,
}

impl std::ops::Deref for ReadGuard<'_> {
    type Target = Option<Inner>;
    fn deref(&self) -> &Option<Inner> {
        &self.guard
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let _ = READING.try_with(|r| {
            let mut r = r.borrow_mut();
            if let Some(i) = r.iter().rposition(|&a| a == self.at) {
                r.swap_remove(i);
            }
        });
    }
}

/// Shared access. Recursive: a filter may read the index it runs in even while another
/// thread waits to write it.
fn read(lock: &RwLock<Option<Inner>>) -> ReadGuard<'_> {
    let at = lock as *const _ as usize;
    let guard = lock.read_recursive();
    READING.with(|r| r.borrow_mut().push(at));
    ReadGuard { guard, at }
}

/// Exclusive access, or an error on a thread that holds a read guard of the same index
/// (a filter or signal handler changing the index that called it).
fn write(lock: &RwLock<Option<Inner>>) -> Result<RwLockWriteGuard<'_, Option<Inner>>, Fail> {
    let at = lock as *const _ as usize;
    if READING.with(|r| r.borrow().contains(&at)) {
        return fail(
            Kind::Base,
            "cannot change an index from inside its own filter or callback (it is in use by the call that runs it)",
        );
    }
    Ok(lock.write())
}

impl PyIndex {
    fn with_space(space: Space, dim: usize, inner: Option<Inner>) -> PyIndex {
        PyIndex {
            space,
            dim,
            state: RwLock::new(inner),
            ef: AtomicUsize::new(10),
            num_threads: AtomicI64::new(hardware_threads() as i64),
            pools: Pools::default(),
        }
    }

    /// Runs `f` on the initialised index with the GIL released.
    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&Inner) -> Result<T, Fail> + Send) -> PyResult<T> {
        py.detach(|| match read(&self.state).as_ref() {
            Some(inner) => f(inner),
            None => not_initialized(),
        })
        .map_err(PyErr::from)
    }

    /// Runs `f` on the initialised index, exclusively, with the GIL released.
    fn with_mut<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Inner) -> Result<T, Fail> + Send) -> PyResult<T> {
        py.detach(|| match write(&self.state)?.as_mut() {
            Some(inner) => f(inner),
            None => not_initialized(),
        })
        .map_err(PyErr::from)
    }

    /// Without blocking: a value of the initialised index, or `default`.
    fn peek<T: Send>(&self, py: Python<'_>, default: T, f: impl FnOnce(&Inner) -> T + Send) -> T {
        py.detach(|| read(&self.state).as_ref().map_or(default, f))
    }

    fn threads(&self, requested: i64, rows: usize) -> usize {
        threads_for(requested, self.num_threads.load(Ordering::Relaxed), rows)
    }

    /// Adds rows as `add_items` does (see the module docs), in chunks, checking for Ctrl-C
    /// between them.
    fn add(&self, data: &[f32], labels: Option<Vec<u64>>, threads: i64, replace_deleted: bool) -> Result<(), Fail> {
        let dim = self.dim;
        let rows = data.len() / dim;
        let plan_and_labels = {
            let guard = read(&self.state);
            let Some(inner) = guard.as_ref() else {
                return not_initialized();
            };
            inner.index.check_vectors(data)?;
            let labels = labels.unwrap_or_else(|| {
                let next = inner.next_label.load(Ordering::Acquire);
                (0..rows as u64).map(|i| next.wrapping_add(i)).collect()
            });
            let plan = inner.plan(&labels, replace_deleted)?;
            if plan.consolidate_first {
                inner.index.consolidate();
            }
            (plan, labels)
        };
        let (plan, labels) = plan_and_labels;
        // The new rows, gathered when some rows are updates.
        let gathered: Option<(Vec<u64>, Vec<f32>)> = plan.add_rows.as_ref().map(|r| {
            let l = r.iter().map(|&i| labels[i]).collect();
            let d = r.iter().flat_map(|&i| &data[i * dim..(i + 1) * dim]).copied().collect();
            (l, d)
        });
        let (add_labels, add_data) = match &gathered {
            Some((l, d)) => (&l[..], &d[..]),
            None => (&labels[..], data),
        };
        let threads = self.threads(threads, rows);
        let pool = self.pools.get(threads)?;
        let chunk = CHUNK_PER_THREAD * threads;
        let steps = add_labels.len().div_ceil(chunk) + plan.updates.len();
        let mut done = 0;
        let result = self.run_steps(
            &pool, add_labels, add_data, chunk, &plan, &labels, data, steps, &mut done,
        );
        // Sequential labels move on past this call's rows once any of them went in (also
        // when Ctrl-C or an error stopped it midway, as hnswlib's counter does), so a later
        // call without ids never overwrites them.
        if result.is_ok() || done > 0 {
            if let Some(inner) = read(&self.state).as_ref() {
                inner.next_label.fetch_add(rows as u64, Ordering::AcqRel);
            }
        }
        result
    }

    /// The steps of [`add`](Self::add) from `done` on, growing or consolidating when the
    /// index is full.
    #[allow(clippy::too_many_arguments)]
    fn run_steps(
        &self,
        pool: &rayon::ThreadPool,
        add_labels: &[u64],
        add_data: &[f32],
        chunk: usize,
        plan: &Plan,
        labels: &[u64],
        data: &[f32],
        steps: usize,
        done: &mut usize,
    ) -> Result<(), Fail> {
        let mut room_tries = 0;
        while *done < steps {
            let result = {
                let guard = read(&self.state);
                let Some(inner) = guard.as_ref() else {
                    return not_initialized();
                };
                self.add_steps(inner, pool, add_labels, add_data, chunk, plan, labels, data, done)
            };
            match result {
                Err(Fail::Engine(hnswx::Error::CapacityExhausted { .. })) if room_tries < 3 => {
                    room_tries += 1;
                    let mut guard = write(&self.state)?;
                    let Some(inner) = guard.as_mut() else {
                        return not_initialized();
                    };
                    // Old nodes of updated vectors hold slots: free them if that loses
                    // nothing (no deleted label to bring back), else grow.
                    if room_tries == 1 && inner.index.removed_labels().is_empty() {
                        inner.index.consolidate();
                    } else {
                        let need = (add_labels.len() + plan.updates.len()).max(inner.index.capacity() / 8);
                        inner.index.reserve(need)?;
                    }
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Runs the steps of an add from `done` on: chunks of new rows, then updates.
    #[allow(clippy::too_many_arguments)]
    fn add_steps(
        &self,
        inner: &Inner,
        pool: &rayon::ThreadPool,
        add_labels: &[u64],
        add_data: &[f32],
        chunk: usize,
        plan: &Plan,
        labels: &[u64],
        data: &[f32],
        done: &mut usize,
    ) -> Result<(), Fail> {
        let dim = self.dim;
        let chunks = add_labels.len().div_ceil(chunk);
        while *done < chunks {
            let from = *done * chunk;
            let to = (from + chunk).min(add_labels.len());
            pool.install(|| {
                inner
                    .index
                    .add_batch(&add_labels[from..to], &add_data[from * dim..to * dim])
            })?;
            *done += 1;
            check_signals()?;
        }
        while *done < chunks + plan.updates.len() {
            let (row, restore) = plan.updates[*done - chunks];
            let v = &data[row * dim..(row + 1) * dim];
            if restore {
                inner.index.restore(labels[row])?;
            }
            inner.index.update(labels[row], v)?;
            *done += 1;
            if (*done - chunks).is_multiple_of(1024) {
                check_signals()?;
            }
        }
        Ok(())
    }

    /// hnswlib's file of this index at `path` (see `save_index`), its header's
    /// `max_elements` set to the index's (hnswlib reads it back as the capacity).
    fn export(&self, py: Python<'_>, path: &Path, in_place: bool) -> PyResult<()> {
        self.export_elements(py, path, in_place)?;
        let max = self.with(py, |inner| Ok(inner.max_elements.load(Ordering::Acquire) as u64))?;
        set_hnswlib_max_elements(path, max).map_err(|e| io_fail(path, e).into())
    }

    /// [`export`](Self::export) without the `max_elements` patch. `in_place`: may compact the
    /// index itself when that changes nothing a caller can see (else a copy is compacted).
    fn export_elements(&self, py: Python<'_>, path: &Path, in_place: bool) -> PyResult<()> {
        // Nodes that hnswlib could not tell apart from live ones (old nodes of updated
        // labels, consolidated slots keep their labels) are compacted away first.
        let clean = self.with(py, |inner| {
            let stats = inner.index.graph_stats();
            let removed = inner.index.removed_labels().len();
            if stats.free == 0 && stats.removed == removed {
                inner.index.export_hnswlib(path)?;
                Ok(None)
            } else {
                Ok(Some(removed == 0))
            }
        })?;
        match clean {
            None => Ok(()),
            // Nothing deleted to keep: compacting changes nothing a caller can see (but its
            // capacity: not for `index_file_size`, a query).
            Some(true) if in_place => self.with_mut(py, |inner| {
                inner.index.compact()?;
                Ok(inner.index.export_hnswlib(path)?)
            }),
            // Deleted labels to keep (as hnswlib's deleted elements): compact a copy.
            Some(_) => self.with(py, |inner| {
                let tmp = TempFile(temp_path("export"));
                inner.index.save(&tmp.0)?;
                let mut copy = Index::load(&tmp.0)?;
                drop(tmp);
                let removed = copy.removed_labels();
                for &l in &removed {
                    copy.restore(l)?;
                }
                copy.compact()?;
                for &l in &removed {
                    copy.remove(l)?;
                }
                Ok(copy.export_hnswlib(path)?)
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn query<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        k: usize,
        ef: usize,
        num_threads: i64,
        filter: Option<Bound<'py, PyAny>>,
        short: Short,
    ) -> PyResult<Arrays<'py>> {
        let rows = convert::rows(data, "data")?;
        convert::check_dim(py, &rows, self.dim)?;
        let filter = match filter.filter(|f| !f.is_none()) {
            Some(f) if !f.is_callable() => {
                return Err(new_err(
                    py,
                    Kind::InvalidInput,
                    "filter must be a callable taking a label",
                ))
            }
            f => f.map(Bound::unbind),
        };
        let slice = rows.data()?;
        let threads = self.threads(num_threads, rows.rows);
        let dim = self.dim;
        let (l, d) = self.with(py, |inner| {
            search_rows(
                &inner.index,
                slice,
                dim,
                k,
                ef,
                threads,
                &self.pools,
                filter.as_ref(),
                short,
            )
        })?;
        Ok((matrix(py, l, rows.rows, k)?, matrix(py, d, rows.rows, k)?))
    }

    fn from_engine(index: Index) -> PyIndex {
        let space = Space::of(index.metric());
        let dim = index.dim();
        let cap = index.capacity();
        PyIndex::with_space(space, dim, Some(Inner::new(index, cap, false)))
    }
}

#[pymethods]
impl PyIndex {
    /// `Index(space, dim)`: space `'l2'`, `'ip'` or `'cosine'`; call `init_index` or
    /// `load_index` next.
    #[new]
    #[pyo3(signature = (space, dim))]
    fn new(py: Python<'_>, space: &str, dim: i64) -> PyResult<PyIndex> {
        let space = Space::parse(py, space)?;
        if dim <= 0 || dim > 1 << 24 {
            return Err(new_err(
                py,
                Kind::InvalidParameter,
                format!("dim must be in 1..=16777216, got {dim}"),
            ));
        }
        Ok(PyIndex::with_space(space, dim as usize, None))
    }

    /// Creates the index structure for up to `max_elements` vectors. Beyond hnswlib:
    /// `quantization="sq8"` walks 8-bit codes, `"f16"` half-precision copies of the rows,
    /// and both re-score the best candidates exactly (results keep exact distances; see the
    /// Rust `Params::quantization`); `"none"` (the default) walks the float rows. Files written by `save` keep it; hnswlib's format
    /// (`save_index`) does not.
    #[pyo3(signature = (max_elements, M = 16, ef_construction = 200, random_seed = 100, allow_replace_deleted = false, quantization = "none"))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn init_index(
        &self,
        py: Python<'_>,
        max_elements: usize,
        M: usize,
        ef_construction: usize,
        random_seed: u64,
        allow_replace_deleted: bool,
        quantization: &str,
    ) -> PyResult<()> {
        let quantization: hnswx::Quantization = quantization
            .parse()
            .map_err(|e: String| Fail::Msg(Kind::InvalidParameter, e))
            .map_err(PyErr::from)?;
        let params = Params::new(self.dim, self.space.metric())
            .m(M)
            .ef_construction(ef_construction)
            .seed(random_seed)
            .quantization(quantization);
        py.detach(|| {
            let mut guard = write(&self.state)?;
            if guard.is_some() {
                return fail(Kind::Base, "The index is already initiated.");
            }
            let index = Index::new(params, max_elements)?;
            *guard = Some(Inner::new(index, max_elements, allow_replace_deleted));
            Ok(())
        })
        .map_err(PyErr::from)
    }

    /// Adds vectors (`data`: 1-D for one, 2-D for one per row; any numeric dtype) under
    /// `ids` (default: sequential). A label already in the index gets the new vector.
    /// `replace_deleted=True` reuses the places of deleted elements (needs
    /// `allow_replace_deleted` at init). The whole input is checked first: on error nothing
    /// is added. Ctrl-C stops a long call between chunks, keeping the rows added so far.
    #[pyo3(signature = (data, ids = None, num_threads = -1, replace_deleted = false))]
    fn add_items(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
        num_threads: i64,
        replace_deleted: bool,
    ) -> PyResult<()> {
        let rows = convert::rows(data, "data")?;
        convert::check_dim(py, &rows, self.dim)?;
        let labels = match ids.filter(|i| !i.is_none()) {
            Some(_) => Some(convert::labels(py, ids, rows.rows, 0)?),
            None => None,
        };
        let slice = rows.data()?;
        if rows.rows == 0 {
            return Ok(());
        }
        py.detach(|| self.add(slice, labels, num_threads, replace_deleted))
            .map_err(PyErr::from)
    }

    /// The `k` nearest neighbours of each row of `data`, closest first: `(labels, distances)`,
    /// uint64 and float32 arrays of shape `(rows, k)`. Searches with the index's `ef` (raised
    /// to `k`). `filter(label) -> bool` keeps only the labels it accepts. Raises
    /// `RuntimeError` (an `HnswxError`) when fewer than `k` are found, as hnswlib does.
    #[pyo3(signature = (data, k = 1, num_threads = -1, filter = None))]
    fn knn_query<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        k: usize,
        num_threads: i64,
        filter: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Arrays<'py>> {
        let ef = self.ef.load(Ordering::Relaxed);
        self.query(py, data, k, ef, num_threads, filter, Short::Raise)
    }

    /// hnswx's search: like `knn_query` with `ef` per call (default: the index's), and rows
    /// with fewer than `k` results padded with label `2**64 - 1` and distance `inf` instead
    /// of an error.
    #[pyo3(signature = (queries, k = 10, ef = None, filter = None, num_threads = -1))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        ef: Option<usize>,
        filter: Option<Bound<'py, PyAny>>,
        num_threads: i64,
    ) -> PyResult<Arrays<'py>> {
        let ef = ef.unwrap_or_else(|| self.ef.load(Ordering::Relaxed));
        self.query(py, queries, k, ef, num_threads, filter, Short::Pad)
    }

    /// Sets the size of the candidate list of searches (default 10; raised to `k`).
    fn set_ef(&self, ef: usize) {
        self.ef.store(ef, Ordering::Relaxed);
    }

    /// The size of the candidate list of searches.
    #[getter]
    fn get_ef(&self) -> usize {
        self.ef.load(Ordering::Relaxed)
    }

    #[setter(ef)]
    fn set_ef_attr(&self, ef: usize) {
        self.ef.store(ef, Ordering::Relaxed);
    }

    /// Default threads of `add_items` and `knn_query` (`num_threads=-1`).
    fn set_num_threads(&self, num_threads: i64) {
        self.num_threads.store(num_threads, Ordering::Relaxed);
    }

    /// Default threads of `add_items` and `knn_query`.
    #[getter]
    fn get_num_threads(&self) -> i64 {
        self.num_threads.load(Ordering::Relaxed)
    }

    #[setter(num_threads)]
    fn set_num_threads_attr(&self, num_threads: i64) {
        self.num_threads.store(num_threads, Ordering::Relaxed);
    }

    /// Saves the index in hnswlib's format (readable by `hnswlib.Index.load_index`).
    fn save_index(&self, py: Python<'_>, path_to_index: PathBuf) -> PyResult<()> {
        self.export(py, &path_to_index, true)
    }

    /// Loads an index file written by hnswlib's `save_index` (of this index's space) or by
    /// hnswx (`save`, `save_index`), replacing this index's contents. `max_elements` below
    /// the file's element count means the file's own limit. `ef` is reset to 10.
    #[pyo3(signature = (path_to_index, max_elements = 0, allow_replace_deleted = false))]
    fn load_index(
        &self,
        py: Python<'_>,
        path_to_index: PathBuf,
        max_elements: usize,
        allow_replace_deleted: bool,
    ) -> PyResult<()> {
        let (space, dim) = (self.space, self.dim);
        let inner = py.detach(|| -> Result<Inner, Fail> {
            let path = &path_to_index;
            let mut head = [0u8; 16];
            let mut file = std::fs::File::open(path).map_err(|e| io_fail(path, e))?;
            let got = std::io::Read::read(&mut file, &mut head).map_err(|e| io_fail(path, e))?;
            drop(file);
            let (mut index, file_max) = if got >= 8 && head[..8] == hnswx::MAGIC {
                let index = Index::load(path)?;
                if index.metric() != space.metric() {
                    return fail(
                        Kind::File,
                        format!(
                            "{} holds a {} index, this Index is {}",
                            path.display(),
                            Space::of(index.metric()).name(),
                            space.name()
                        ),
                    );
                }
                let cap = index.capacity();
                (index, cap)
            } else {
                let index = Index::import_hnswlib(path, space.metric())?;
                let file_max = if got >= 16 {
                    u64::from_le_bytes(head[8..16].try_into().unwrap_or_default()) as usize
                } else {
                    0
                };
                (index, file_max)
            };
            if index.dim() != dim {
                return fail(
                    Kind::Dimension,
                    format!(
                        "{} holds {}-dimensional vectors, this Index is {dim}-dimensional",
                        path.display(),
                        index.dim()
                    ),
                );
            }
            let count = index.len() + index.removed_labels().len();
            let max = if max_elements < count {
                file_max.max(count)
            } else {
                max_elements
            };
            if index.capacity() < max {
                let live = index.len();
                index.reserve(max - live)?;
            }
            Ok(Inner::new(index, max, allow_replace_deleted))
        })?;
        py.detach(|| -> Result<(), Fail> {
            *write(&self.state)? = Some(inner);
            Ok(())
        })?;
        self.ef.store(10, Ordering::Relaxed);
        Ok(())
    }

    /// Marks `label` deleted: no search returns it; `unmark_deleted` brings it back.
    fn mark_deleted(&self, py: Python<'_>, label: u64) -> PyResult<()> {
        self.with(py, |inner| match inner.index.remove(label) {
            Err(hnswx::Error::UnknownLabel(_)) if inner.index.removed_labels().contains(&label) => fail(
                Kind::Base,
                format!("The requested to delete element is already deleted (label {label})"),
            ),
            r => Ok(r?),
        })
    }

    /// Brings back a label marked deleted.
    fn unmark_deleted(&self, py: Python<'_>, label: u64) -> PyResult<()> {
        self.with(py, |inner| {
            if inner.index.contains(label) {
                return fail(
                    Kind::Base,
                    format!("The requested to undelete element is not deleted (label {label})"),
                );
            }
            Ok(inner.index.restore(label)?)
        })
    }

    /// Changes `max_elements` (not below the current element count).
    fn resize_index(&self, py: Python<'_>, new_size: usize) -> PyResult<()> {
        self.with_mut(py, |inner| {
            let count = inner.element_count();
            if new_size < count {
                return fail(
                    Kind::Base,
                    format!(
                        "Cannot resize, max element is less than the current number of elements ({new_size} < {count})"
                    ),
                );
            }
            if inner.index.capacity() < new_size {
                let live = inner.index.len();
                inner.index.reserve(new_size - live)?;
            }
            inner.max_elements.store(new_size, Ordering::Release);
            Ok(())
        })
    }

    /// The stored vectors of `ids` (normalised under cosine): a float32 array of shape
    /// `(len(ids), dim)`, or a list of lists with `return_type='list'`.
    #[pyo3(signature = (ids = None, return_type = "numpy"))]
    fn get_items<'py>(
        &self,
        py: Python<'py>,
        ids: Option<&Bound<'py, PyAny>>,
        return_type: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        if return_type != "numpy" && return_type != "list" {
            return Err(new_err(
                py,
                Kind::InvalidInput,
                "return_type should be \"numpy\" or \"list\"",
            ));
        }
        let labels = convert::label_list(py, ids)?;
        let dim = self.dim;
        let data = self.with(py, |inner| {
            let mut out = Vec::with_capacity(labels.len() * dim);
            for &l in &labels {
                out.extend(inner.index.get(l)?);
            }
            Ok(out)
        })?;
        if return_type == "list" {
            let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
            return Ok(PyList::new(py, rows)?.into_any());
        }
        Ok(matrix(py, data, labels.len(), dim)?.into_any())
    }

    /// Every label of the index, deleted ones included (as hnswlib lists them).
    fn get_ids_list(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        self.with(py, |inner| {
            let mut ids = inner.index.labels();
            ids.extend(inner.index.removed_labels());
            // A stable order (the label map's is not).
            ids.sort_unstable();
            Ok(ids)
        })
    }

    /// `max_elements`.
    fn get_max_elements(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |inner| Ok(inner.max_elements.load(Ordering::Acquire)))
    }

    /// Elements held, deleted ones included (hnswlib's `cur_element_count`).
    fn get_current_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |inner| Ok(inner.element_count()))
    }

    /// Bytes of the file `save_index` would write now.
    fn index_file_size(&self, py: Python<'_>) -> PyResult<u64> {
        let tmp = TempFile(temp_path("size"));
        self.export(py, &tmp.0, false)?;
        std::fs::metadata(&tmp.0)
            .map(|m| m.len())
            .map_err(|e| io_fail(&tmp.0, e).into())
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

    /// `M` (0 before `init_index`).
    #[getter(M)]
    fn m(&self, py: Python<'_>) -> usize {
        self.peek(py, 0, |i| i.index.params().max_links())
    }

    /// `ef_construction` (0 before `init_index`).
    #[getter]
    fn ef_construction(&self, py: Python<'_>) -> usize {
        self.peek(py, 0, |i| i.index.params().ef_construction_value())
    }

    /// `max_elements` (0 before `init_index`).
    #[getter(max_elements)]
    fn max_elements_attr(&self, py: Python<'_>) -> usize {
        self.peek(py, 0, |i| i.max_elements.load(Ordering::Acquire))
    }

    /// Elements held, deleted ones included (0 before `init_index`).
    #[getter]
    fn element_count(&self, py: Python<'_>) -> usize {
        self.peek(py, 0, |i| i.element_count())
    }

    fn __repr__(&self) -> String {
        format!("<hnswx.Index(space='{}', dim={})>", self.space.name(), self.dim)
    }

    /// Live vectors (deleted ones not counted).
    fn __len__(&self, py: Python<'_>) -> usize {
        self.peek(py, 0, |i| i.index.len())
    }

    fn __contains__(&self, py: Python<'_>, label: u64) -> bool {
        self.peek(py, false, |i| i.index.contains(label))
    }

    /// Pickling: the parameters, `ef`, `num_threads` and the index in hnswx's format.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyDict>,))> {
        let py = slf.py();
        let this = slf.get();
        let state = PyDict::new(py);
        state.set_item("version", 1)?;
        state.set_item("space", this.space.name())?;
        state.set_item("dim", this.dim)?;
        state.set_item("ef", this.ef.load(Ordering::Relaxed))?;
        state.set_item("num_threads", this.num_threads.load(Ordering::Relaxed))?;
        type Saved = Option<(Vec<u8>, usize, bool, u64)>;
        let saved = py.detach(|| -> Result<Saved, Fail> {
            let guard = read(&this.state);
            let Some(inner) = guard.as_ref() else {
                return Ok(None);
            };
            let tmp = TempFile(temp_path("pickle"));
            inner.index.save(&tmp.0)?;
            let bytes = std::fs::read(&tmp.0).map_err(|e| io_fail(&tmp.0, e))?;
            Ok(Some((
                bytes,
                inner.max_elements.load(Ordering::Acquire),
                inner.allow_replace_deleted,
                inner.next_label.load(Ordering::Acquire),
            )))
        })?;
        if let Some((bytes, max, allow, next)) = saved {
            state.set_item("index", PyBytes::new(py, &bytes))?;
            state.set_item("max_elements", max)?;
            state.set_item("allow_replace_deleted", allow)?;
            state.set_item("next_label", next)?;
        }
        let restore = py.import("hnswx")?.getattr("_restore_pickled")?;
        Ok((restore, (state,)))
    }

    // ---- hnswx's own calls ----

    /// Saves the index in hnswx's checked format (`hnswx.load`, `hnswx.open_mmap`,
    /// `load_index` read it).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.with(py, |inner| Ok(inner.index.save(&path)?))
    }

    /// Removes `label` (hnswx's name for `mark_deleted`).
    fn remove(&self, py: Python<'_>, label: u64) -> PyResult<()> {
        self.with(py, |inner| Ok(inner.index.remove(label)?))
    }

    /// Brings back a removed `label` (hnswx's name for `unmark_deleted`; a live label is
    /// left as it is).
    fn restore(&self, py: Python<'_>, label: u64) -> PyResult<()> {
        self.with(py, |inner| Ok(inner.index.restore(label)?))
    }

    /// Replaces the vector of a live `label`.
    fn update(&self, py: Python<'_>, label: u64, vector: &Bound<'_, PyAny>) -> PyResult<()> {
        let rows = convert::rows(vector, "vector")?;
        convert::check_dim(py, &rows, self.dim)?;
        if rows.rows != 1 {
            return Err(new_err(py, Kind::InvalidInput, "update takes one vector"));
        }
        let v = rows.data()?;
        py.detach(|| -> Result<(), Fail> {
            let mut tries = 0;
            loop {
                let r = match read(&self.state).as_ref() {
                    Some(inner) => inner.index.update(label, v),
                    None => return not_initialized(),
                };
                match r {
                    Err(hnswx::Error::CapacityExhausted { .. }) if tries < 2 => {
                        tries += 1;
                        if let Some(inner) = write(&self.state)?.as_mut() {
                            if tries == 1 && inner.index.removed_labels().is_empty() {
                                inner.index.consolidate();
                            } else {
                                let grow = (inner.index.capacity() / 8).max(1);
                                inner.index.reserve(grow)?;
                            }
                        }
                    }
                    other => return Ok(other?),
                }
            }
        })
        .map_err(PyErr::from)
    }

    /// Rewires the graph around removed elements and frees their slots for reuse; returns
    /// how many it freed. Removed labels can no longer be restored afterwards.
    fn consolidate(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |inner| Ok(inner.index.consolidate()))
    }
}

/// Loads an index saved with `Index.save` (hnswx's format), checking every checksum and
/// invariant. `ef` is 10; `max_elements` is the file's capacity.
#[pyfunction]
pub fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyIndex> {
    let index = py.detach(|| Index::load(&path).map_err(Fail::from))?;
    Ok(PyIndex::from_engine(index))
}

/// Maps an index saved with `Index.save` and searches it in place (nothing is read until a
/// search touches it). The file must not be modified or truncated while the index lives
/// (replacing it by rename is fine). Adding fills only the file's free slots; `resize_index`
/// copies it into memory.
#[pyfunction]
pub fn open_mmap(py: Python<'_>, path: PathBuf) -> PyResult<PyIndex> {
    let index = py.detach(|| {
        // SAFETY: the contract is passed on to the caller, as documented above and in the
        // stubs: the file must not change while it is mapped.
        unsafe { Index::open_mmap(&path, Verify::Structure) }.map_err(Fail::from)
    })?;
    Ok(PyIndex::from_engine(index))
}

/// Rebuilds a pickled `Index` (the target of `Index.__reduce__`).
#[pyfunction]
#[pyo3(name = "_restore_pickled")]
pub fn restore_pickled(py: Python<'_>, state: &Bound<'_, PyDict>) -> PyResult<PyIndex> {
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        state
            .get_item(k)?
            .ok_or_else(|| new_err(py, Kind::InvalidInput, format!("pickled Index lacks {k:?}")))
    };
    let space = Space::parse(py, &get("space")?.extract::<String>()?)?;
    let dim: usize = get("dim")?.extract()?;
    let inner = match state.get_item("index")? {
        None => None,
        Some(bytes) => {
            let bytes = bytes.cast_into::<PyBytes>()?;
            let raw = bytes.as_bytes();
            let index = py.detach(|| Index::read_from(&mut &raw[..], raw.len() as u64).map_err(Fail::from))?;
            let mut inner = Inner::new(
                index,
                get("max_elements")?.extract()?,
                get("allow_replace_deleted")?.extract()?,
            );
            inner.next_label = AtomicU64::new(get("next_label")?.extract()?);
            Some(inner)
        }
    };
    let index = PyIndex::with_space(space, dim, inner);
    index.ef.store(get("ef")?.extract()?, Ordering::Relaxed);
    index
        .num_threads
        .store(get("num_threads")?.extract()?, Ordering::Relaxed);
    Ok(index)
}

/// Writes `max` into the `max_elements` field (bytes 8..16) of the hnswlib file at `path`,
/// if it is larger than the element count there (bytes 16..24).
fn set_hnswlib_max_elements(path: &Path, max: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut head = [0u8; 24];
    f.read_exact(&mut head)?;
    let count = u64::from_le_bytes(head[16..24].try_into().expect("8 bytes"));
    if max > count {
        f.seek(SeekFrom::Start(8))?;
        f.write_all(&max.to_le_bytes())?;
        f.sync_all()?;
    }
    Ok(())
}
