//! Python input to checked Rust slices, and results back to numpy arrays.
//!
//! Vectors: any array-like numpy accepts whose dtype is boolean, integer or floating point,
//! 1-D (one vector) or 2-D (one per row), in any memory order: converted to C-contiguous
//! float32 as hnswlib does (a float32 C-contiguous array is used in place). Labels: integers
//! (or integral floats) ≥ 0, one per row.

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{new_err, Kind};

/// A borrowed row-major float32 matrix.
pub struct Rows<'py> {
    arr: PyReadonlyArrayDyn<'py, f32>,
    /// Number of vectors.
    pub rows: usize,
    /// Components per vector.
    pub cols: usize,
}

impl Rows<'_> {
    /// The components, row after row.
    pub fn data(&self) -> PyResult<&[f32]> {
        self.arr
            .as_slice()
            .map_err(|e| new_err(self.arr.py(), Kind::InvalidInput, e.to_string()))
    }
}

fn numeric_kind(py: Python<'_>, a: &Bound<'_, PyAny>, what: &str, kinds: &str) -> PyResult<String> {
    let dtype = a.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if kind.len() != 1 || !kinds.contains(kind.as_str()) {
        return Err(new_err(
            py,
            Kind::InvalidInput,
            format!(
                "{what} must be numeric (bool, int or float), got dtype {}",
                dtype.str()?
            ),
        ));
    }
    Ok(kind)
}

/// `obj` as float32 rows; `what` names it in messages ("data", "queries").
pub fn rows<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Rows<'py>> {
    let py = obj.py();
    let arr: Bound<'py, PyArrayDyn<f32>> = match obj.cast::<PyArrayDyn<f32>>() {
        Ok(a) if a.is_c_contiguous() => a.clone(),
        _ => {
            let np = py.import("numpy")?;
            let a = np.call_method1("asarray", (obj,))?;
            numeric_kind(py, &a, what, "biuf")?;
            let kw = PyDict::new(py);
            kw.set_item("dtype", np.getattr("float32")?)?;
            np.call_method("ascontiguousarray", (a,), Some(&kw))?
                .cast_into::<PyArrayDyn<f32>>()?
        }
    };
    let shape = arr.shape().to_vec();
    let (rows, cols) = match shape[..] {
        [n] => (1, n),
        [r, c] => (r, c),
        _ => {
            return Err(new_err(
                py,
                Kind::Dimension,
                format!(
                    "Input vector data wrong shape. Number of dimensions {}. Data must be a 1D or 2D array.",
                    shape.len()
                ),
            ))
        }
    };
    let arr = arr
        .try_readonly()
        .map_err(|e| new_err(py, Kind::InvalidInput, format!("{what}: {e}")))?;
    Ok(Rows { arr, rows, cols })
}

/// Checks that `rows` has the index's dimension.
pub fn check_dim(py: Python<'_>, rows: &Rows<'_>, dim: usize) -> PyResult<()> {
    if rows.cols != dim {
        return Err(new_err(
            py,
            Kind::Dimension,
            format!(
                "Wrong dimensionality of the vectors: the index holds {dim}-dimensional vectors, got {}",
                rows.cols
            ),
        ));
    }
    Ok(())
}

/// The labels of `rows` rows: `ids` (a scalar for one row, else one per row) or, without
/// them, `next, next + 1, ...` (hnswlib's sequential labels).
pub fn labels(py: Python<'_>, ids: Option<&Bound<'_, PyAny>>, rows: usize, next: u64) -> PyResult<Vec<u64>> {
    let Some(ids) = ids.filter(|i| !i.is_none()) else {
        return Ok((0..rows as u64).map(|i| next.wrapping_add(i)).collect());
    };
    to_u64(py, ids, |ndim, size| {
        if (ndim == 1 && size == rows) || (ndim == 0 && rows == 1) {
            Ok(())
        } else {
            Err(format!(
                "The input label shape {ndim} does not match the input data vector shape {rows}: give one label per vector"
            ))
        }
    })
}

/// A 1-D list of labels (`get_items`); `None` is the empty list.
pub fn label_list(py: Python<'_>, ids: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u64>> {
    let Some(ids) = ids.filter(|i| !i.is_none()) else {
        return Ok(Vec::new());
    };
    to_u64(py, ids, |ndim, _| match ndim {
        1 => Ok(()),
        0 => Err("get_items accepts a list of indices and returns a list of vectors".into()),
        _ => Err(format!("ids must be a 1-D list of labels, got {ndim} dimensions")),
    })
}

/// `ids` as non-negative integer labels, after `shape_ok(ndim, size)`.
fn to_u64(
    py: Python<'_>,
    ids: &Bound<'_, PyAny>,
    shape_ok: impl FnOnce(usize, usize) -> Result<(), String>,
) -> PyResult<Vec<u64>> {
    let np = py.import("numpy")?;
    let a = np.call_method1("asarray", (ids,))?;
    let kind = numeric_kind(py, &a, "ids", "iuf")?;
    let ndim: usize = a.getattr("ndim")?.extract()?;
    let size: usize = a.getattr("size")?.extract()?;
    shape_ok(ndim, size).map_err(|m| new_err(py, Kind::InvalidInput, m))?;
    if size > 0 && kind != "u" {
        let negative: bool = a.call_method0("min")?.lt(0)?;
        if negative {
            return Err(new_err(py, Kind::InvalidInput, "labels must be non-negative integers"));
        }
        if kind == "f" {
            let integral: bool = np
                .call_method1("array_equal", (&a, np.call_method1("floor", (&a,))?))?
                .extract()?;
            if !integral || a.call_method0("max")?.ge(u64::MAX as f64)? {
                return Err(new_err(py, Kind::InvalidInput, "labels must be integers"));
            }
        }
    }
    let kw = PyDict::new(py);
    kw.set_item("dtype", np.getattr("uint64")?)?;
    let u = np
        .call_method("ascontiguousarray", (a,), Some(&kw))?
        .cast_into::<PyArrayDyn<u64>>()?;
    let ro = u.readonly();
    let v = ro
        .as_slice()
        .map_err(|e| new_err(py, Kind::InvalidInput, e.to_string()))?
        .to_vec();
    Ok(v)
}

/// `(labels, distances)` as search calls return them.
pub type Arrays<'py> = (Bound<'py, numpy::PyArray2<u64>>, Bound<'py, numpy::PyArray2<f32>>);

/// A `(rows, cols)` numpy array holding `v`.
pub fn matrix<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, numpy::PyArray2<T>>> {
    PyArray1::from_vec(py, v).reshape([rows, cols])
}
