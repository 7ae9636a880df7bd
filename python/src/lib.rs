//! `hnswx` for Python: hnswlib 0.8.0's Python API (`Index`, `BFIndex`) on the hnswx engine,
//! plus hnswx's own calls (`save`/`load`/`open_mmap`, `remove`/`update`, `search`,
//! `BruteForce`) and typed exceptions.
//!
//! Layers: this crate only converts between Python and the engine and calls `hnswx`'s public
//! API. `convert` turns Python input into checked slices, `errors` turns engine errors into
//! Python exceptions, `index` is `hnswx.Index`, `brute` is `BFIndex` and `BruteForce`.

use pyo3::prelude::*;

mod brute;
mod convert;
mod errors;
mod index;
mod pool;

/// Bytes of walked rows from which a search prefetches its next expansion's rows ahead, on
/// this machine (`hnswx::look_ahead_threshold`: a quarter of the last level cache, at least
/// 8 MiB, or `HNSWX_LOOK_AHEAD_FROM`), for benchmark reports.
#[pyfunction]
fn look_ahead_threshold() -> usize {
    ::hnswx::look_ahead_threshold()
}

/// Bytes of walked rows from which the kernels prefetch the rows they score, on this
/// machine (`hnswx::row_prefetch_setting`: the level-2 cache size, 0 where unknown, or
/// `HNSWX_ROW_PREFETCH_FROM`), for benchmark reports.
#[pyfunction]
fn row_prefetch_threshold() -> usize {
    ::hnswx::row_prefetch_setting().bytes
}

/// The Python module `hnswx`.
#[pymodule]
fn hnswx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<index::PyIndex>()?;
    m.add_class::<brute::PyBfIndex>()?;
    m.add_class::<brute::PyBruteForce>()?;
    m.add_function(wrap_pyfunction!(index::load, m)?)?;
    m.add_function(wrap_pyfunction!(index::open_mmap, m)?)?;
    m.add_function(wrap_pyfunction!(index::restore_pickled, m)?)?;
    m.add_function(wrap_pyfunction!(look_ahead_threshold, m)?)?;
    m.add_function(wrap_pyfunction!(row_prefetch_threshold, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "__doc__",
        "HNSW approximate nearest-neighbour search on the hnswx engine (Rust).\n\n\
         A drop-in for hnswlib 0.8.0's Python module (`import hnswx as hnswlib`): Index and \
         BFIndex with hnswlib's methods and semantics, plus hnswx's own calls (save/load/\
         open_mmap in hnswx's checked format, remove/update, search, BruteForce) and typed \
         exceptions (all subclasses of HnswxError, itself a RuntimeError).",
    )?;
    Ok(())
}
