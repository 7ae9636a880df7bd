//! The exception classes of `hnswx` and the conversion of engine errors into them.
//!
//! Every class derives from `HnswxError`, itself a `RuntimeError`: hnswlib raises
//! `RuntimeError` for everything, so `except RuntimeError` keeps working. Bad input also
//! derives from `ValueError`, an unknown label also from `KeyError`. The classes are made at
//! import time with `type(name, bases, dict)`, since some have two bases.

use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// Which exception class to raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `HnswxError(RuntimeError)`: the base of all.
    Base,
    /// `InvalidInputError(HnswxError, ValueError)`: bad vectors, shapes, labels or parameters.
    InvalidInput,
    /// `DimensionError(InvalidInputError)`.
    Dimension,
    /// `NonFiniteError(InvalidInputError)`.
    NonFinite,
    /// `ZeroVectorError(InvalidInputError)`.
    ZeroVector,
    /// `NormTooLargeError(InvalidInputError)`.
    NormTooLarge,
    /// `InvalidParameterError(InvalidInputError)`.
    InvalidParameter,
    /// `DuplicateLabelError(InvalidInputError)`.
    DuplicateLabel,
    /// `UnknownLabelError(HnswxError, KeyError)`.
    UnknownLabel,
    /// `CapacityError(HnswxError)`: the index is full.
    Capacity,
    /// `FileError(HnswxError)`: a file could not be read or written, or is damaged.
    File,
    /// `NotInitializedError(HnswxError)`: `init_index` or `load_index` was not called.
    NotInitialized,
}

/// One exception class: its kind, name, parent kind, extra builtin base, docstring.
type Class = (Kind, &'static str, Option<Kind>, Option<&'static str>, &'static str);

/// Every class, parents first.
const CLASSES: [Class; 12] = [
    (
        Kind::Base,
        "HnswxError",
        None,
        Some("RuntimeError"),
        "Base of every hnswx error (a RuntimeError, as hnswlib raises).",
    ),
    (
        Kind::InvalidInput,
        "InvalidInputError",
        Some(Kind::Base),
        Some("ValueError"),
        "Bad input: shape, dtype, values, labels or parameters. The index is unchanged.",
    ),
    (
        Kind::Dimension,
        "DimensionError",
        Some(Kind::InvalidInput),
        None,
        "Vectors whose length is not the index's dimension.",
    ),
    (
        Kind::NonFinite,
        "NonFiniteError",
        Some(Kind::InvalidInput),
        None,
        "A NaN or infinite component.",
    ),
    (
        Kind::ZeroVector,
        "ZeroVectorError",
        Some(Kind::InvalidInput),
        None,
        "A zero vector under the cosine space, which cannot be normalised.",
    ),
    (
        Kind::NormTooLarge,
        "NormTooLargeError",
        Some(Kind::InvalidInput),
        None,
        "A vector so large that distances could overflow float32.",
    ),
    (
        Kind::InvalidParameter,
        "InvalidParameterError",
        Some(Kind::InvalidInput),
        None,
        "A parameter out of range (k = 0, M, ef_construction, space, ...).",
    ),
    (
        Kind::DuplicateLabel,
        "DuplicateLabelError",
        Some(Kind::InvalidInput),
        None,
        "A label given twice where labels must be new (BruteForce.add_items).",
    ),
    (
        Kind::UnknownLabel,
        "UnknownLabelError",
        Some(Kind::Base),
        Some("KeyError"),
        "A label the index does not hold (or holds as deleted).",
    ),
    (
        Kind::Capacity,
        "CapacityError",
        Some(Kind::Base),
        None,
        "The index is full: resize_index() makes room.",
    ),
    (
        Kind::File,
        "FileError",
        Some(Kind::Base),
        None,
        "An index file could not be read or written, or is damaged.",
    ),
    (
        Kind::NotInitialized,
        "NotInitializedError",
        Some(Kind::Base),
        None,
        "The index has no data structure yet: call init_index() or load_index().",
    ),
];

static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    TYPES.get_or_try_init(py, || {
        let builtins = py.import("builtins")?;
        let type_ = builtins.getattr("type")?;
        let mut made: Vec<Py<PyType>> = Vec::new();
        for (kind, name, parent, builtin, doc) in CLASSES {
            debug_assert_eq!(made.len(), kind as usize);
            let mut bases = Vec::new();
            if let Some(p) = parent {
                bases.push(made[p as usize].bind(py).clone().into_any());
            }
            if let Some(b) = builtin {
                bases.push(builtins.getattr(b)?);
            }
            let dict = PyDict::new(py);
            dict.set_item("__module__", "hnswx")?;
            dict.set_item("__doc__", doc)?;
            // KeyError's str() quotes its message; show it as written.
            dict.set_item("__str__", builtins.getattr("BaseException")?.getattr("__str__")?)?;
            let ty = type_.call1((name, PyTuple::new(py, bases)?, dict))?;
            made.push(ty.cast_into::<PyType>()?.unbind());
        }
        Ok(made)
    })
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for ((_, name, ..), ty) in CLASSES.iter().zip(types(py)?) {
        m.add(*name, ty.bind(py))?;
    }
    Ok(())
}

/// A `PyErr` of class `kind` with `msg`.
pub fn new_err(py: Python<'_>, kind: Kind, msg: impl Into<String>) -> PyErr {
    match types(py) {
        Ok(t) => PyErr::from_type(t[kind as usize].bind(py).clone(), msg.into()),
        Err(e) => e,
    }
}

/// A failure computed without the GIL, turned into a Python exception once it is held.
#[derive(Debug)]
pub enum Fail {
    /// An engine error.
    Engine(hnswx::Error),
    /// A file error.
    File(hnswx::FileError),
    /// Our own message, with its class.
    Msg(Kind, String),
    /// A Python exception (from a filter callback or a signal handler).
    Py(PyErr),
}

impl From<hnswx::Error> for Fail {
    fn from(e: hnswx::Error) -> Self {
        Fail::Engine(e)
    }
}

impl From<hnswx::FileError> for Fail {
    fn from(e: hnswx::FileError) -> Self {
        Fail::File(e)
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

/// `Err(Fail::Msg(kind, msg))`.
pub fn fail<T>(kind: Kind, msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Msg(kind, msg.into()))
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> PyErr {
        Python::attach(|py| match f {
            Fail::Py(e) => e,
            Fail::Msg(kind, msg) => new_err(py, kind, msg),
            Fail::File(e) => new_err(py, Kind::File, e.to_string()),
            Fail::Engine(e) => engine_err(py, e),
        })
    }
}

/// The exception for an engine error, with the engine's message (prefixed with hnswlib's
/// where hnswlib users grep for it).
pub fn engine_err(py: Python<'_>, e: hnswx::Error) -> PyErr {
    use hnswx::Error as E;
    let msg = e.to_string();
    match e {
        E::Dimension { .. } => new_err(
            py,
            Kind::Dimension,
            format!("Wrong dimensionality of the vectors: {msg}"),
        ),
        E::NonFinite { .. } => new_err(py, Kind::NonFinite, msg),
        E::ZeroVector { .. } => new_err(py, Kind::ZeroVector, msg),
        E::NormTooLarge { .. } => new_err(py, Kind::NormTooLarge, msg),
        E::ZeroK | E::InvalidParameter { .. } => new_err(py, Kind::InvalidParameter, msg),
        E::DuplicateLabel(_) => new_err(py, Kind::DuplicateLabel, msg),
        E::UnknownLabel(_) => new_err(py, Kind::UnknownLabel, format!("Label not found: {msg}")),
        E::CapacityExhausted { .. } => new_err(
            py,
            Kind::Capacity,
            format!("The number of elements exceeds the specified limit: {msg}"),
        ),
        E::OutOfMemory { .. } => PyMemoryError::new_err(msg),
        _ => new_err(py, Kind::Base, msg),
    }
}
