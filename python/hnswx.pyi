"""Type stubs for hnswx: HNSW approximate nearest-neighbour search on the hnswx engine (Rust).

A drop-in for hnswlib 0.8.0's Python module (``import hnswx as hnswlib``), plus hnswx's own
calls and typed exceptions. Vectors may be any array-like of a numeric dtype (converted to
float32), 1-D for one vector or 2-D for one per row, in any memory order.
"""

import os
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Vectors = npt.ArrayLike
_Ids = Union[int, Sequence[int], npt.NDArray[np.integer[Any]], None]
_Filter = Optional[Callable[[int], bool]]
_Space = Literal["l2", "ip", "cosine"]
_Result = Tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]

class HnswxError(RuntimeError):
    """Base of every hnswx error (a RuntimeError, as hnswlib raises)."""

class InvalidInputError(HnswxError, ValueError):
    """Bad input: shape, dtype, values, labels or parameters. The index is unchanged."""

class DimensionError(InvalidInputError):
    """Vectors whose length is not the index's dimension, or arrays of the wrong rank."""

class NonFiniteError(InvalidInputError):
    """A NaN or infinite component."""

class ZeroVectorError(InvalidInputError):
    """A zero vector under the cosine space, which cannot be normalised."""

class NormTooLargeError(InvalidInputError):
    """A vector so large that distances could overflow float32 (norm above ~6.5e18)."""

class InvalidParameterError(InvalidInputError):
    """A parameter out of range (k = 0, M, ef_construction, space, dim)."""

class DuplicateLabelError(InvalidInputError):
    """A label given twice where labels must be new (BruteForce.add_items)."""

class UnknownLabelError(HnswxError, KeyError):
    """A label the index does not hold (or holds as deleted): hnswlib's "Label not found"."""

class CapacityError(HnswxError):
    """The index is full: resize_index() makes room."""

class FileError(HnswxError):
    """An index file could not be read or written, or is damaged."""

class NotInitializedError(HnswxError):
    """init_index() or load_index() was not called yet."""

class Index:
    """An HNSW index with hnswlib's API.

    Semantics follow hnswlib 0.8.0: adding a label the index holds replaces its vector;
    ``element_count`` counts deleted elements too; ``knn_query`` raises RuntimeError when it
    finds fewer than ``k``. Differences: NaN/inf, zero vectors under cosine and ``k = 0``
    raise (hnswlib accepts them); ``replace_deleted=True`` frees every deleted element at
    once (those not reused can no longer be unmarked).
    """

    def __init__(self, space: _Space, dim: int) -> None: ...
    def init_index(
        self,
        max_elements: int,
        M: int = 16,
        ef_construction: int = 200,
        random_seed: int = 100,
        allow_replace_deleted: bool = False,
        quantization: Literal["none", "sq8", "f16"] = "none",
    ) -> None:
        """Creates the index structure for up to ``max_elements`` vectors; ``quantization="sq8"``
        walks 8-bit codes, ``"f16"`` half-precision copies of the rows, and both re-score the
        best candidates exactly."""
    def add_items(
        self,
        data: _Vectors,
        ids: _Ids = None,
        num_threads: int = -1,
        replace_deleted: bool = False,
    ) -> None:
        """Adds vectors under ``ids`` (default: sequential). Checked whole first; the GIL is
        released; Ctrl-C stops a long call between chunks, keeping what was added."""
    def knn_query(
        self,
        data: _Vectors,
        k: int = 1,
        num_threads: int = -1,
        filter: _Filter = None,
    ) -> _Result:
        """``(labels, distances)`` of shape ``(rows, k)``, closest first."""
    def set_ef(self, ef: int) -> None:
        """The candidate list size of searches (default 10; raised to k)."""
    ef: int
    num_threads: int
    def set_num_threads(self, num_threads: int) -> None: ...
    def save_index(self, path_to_index: _Path) -> None:
        """Saves in hnswlib's format (hnswlib.Index.load_index reads it)."""
    def load_index(
        self,
        path_to_index: _Path,
        max_elements: int = 0,
        allow_replace_deleted: bool = False,
    ) -> None:
        """Loads an hnswlib file or an hnswx file (from ``save``); resets ``ef`` to 10."""
    def mark_deleted(self, label: int) -> None: ...
    def unmark_deleted(self, label: int) -> None: ...
    def resize_index(self, new_size: int) -> None: ...
    @overload
    def get_items(self, ids: _Ids = None, return_type: Literal["numpy"] = "numpy") -> npt.NDArray[np.float32]: ...
    @overload
    def get_items(self, ids: _Ids, return_type: Literal["list"]) -> List[List[float]]: ...
    def get_ids_list(self) -> List[int]:
        """Every label, deleted ones included."""
    def get_max_elements(self) -> int: ...
    def get_current_count(self) -> int:
        """Elements held, deleted ones included."""
    def index_file_size(self) -> int:
        """Bytes of the file save_index would write now."""
    @property
    def space(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def M(self) -> int: ...
    @property
    def ef_construction(self) -> int: ...
    @property
    def max_elements(self) -> int: ...
    @property
    def element_count(self) -> int: ...
    def __len__(self) -> int:
        """Live vectors (deleted ones not counted)."""
    def __contains__(self, label: int) -> bool: ...
    def __reduce__(self) -> Tuple[Callable[[Dict[str, Any]], "Index"], Tuple[Dict[str, Any]]]: ...
    # hnswx's own calls
    def save(self, path: _Path) -> None:
        """Saves in hnswx's checked format (hnswx.load, hnswx.open_mmap, load_index)."""
    def search(
        self,
        queries: _Vectors,
        k: int = 10,
        ef: Optional[int] = None,
        filter: _Filter = None,
        num_threads: int = -1,
    ) -> _Result:
        """Like knn_query with ``ef`` per call; short rows are padded with label 2**64 - 1
        and distance inf instead of raising."""
    def remove(self, label: int) -> None: ...
    def restore(self, label: int) -> None: ...
    def update(self, label: int, vector: _Vectors) -> None: ...
    def consolidate(self) -> int:
        """Frees the slots of removed elements for reuse; returns how many."""

class BFIndex:
    """hnswlib's exact (brute-force) index, with its file format."""

    def __init__(self, space: _Space, dim: int) -> None: ...
    def init_index(self, max_elements: int) -> None: ...
    def add_items(self, data: _Vectors, ids: _Ids = None) -> None: ...
    def delete_vector(self, label: int) -> None: ...
    def knn_query(self, data: _Vectors, k: int = 1, num_threads: int = -1, filter: _Filter = None) -> _Result: ...
    def save_index(self, path_to_index: _Path) -> None: ...
    def load_index(self, path_to_index: _Path, max_elements: int = 0) -> None: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    num_threads: int
    def get_max_elements(self) -> int: ...
    def get_current_count(self) -> int: ...
    @property
    def space(self) -> str: ...
    @property
    def dim(self) -> int: ...

class BruteForce:
    """hnswx's exact index: new labels only, results padded like Index.search."""

    def __init__(self, space: _Space, dim: int) -> None: ...
    def add_items(self, data: _Vectors, ids: _Ids = None) -> None: ...
    def search(self, queries: _Vectors, k: int = 10, num_threads: int = -1) -> _Result: ...
    def __len__(self) -> int: ...
    @property
    def space(self) -> str: ...
    @property
    def dim(self) -> int: ...

def load(path: _Path) -> Index:
    """Loads an index saved with Index.save, checking every checksum and invariant."""

def open_mmap(path: _Path) -> Index:
    """Maps an index saved with Index.save and searches it in place. The file must not be
    modified or truncated while the index lives (replacing it by rename is fine)."""

def _restore_pickled(state: Dict[str, Any]) -> Index: ...

def look_ahead_threshold() -> int:
    """Bytes of walked rows (codes, or vectors) from which a search prefetches the rows of its
    next expansion ahead, on this machine: a quarter of the last level cache, at least 8 MiB,
    or HNSWX_LOOK_AHEAD_FROM (read once per process). Benchmark reports record it."""

def row_prefetch_threshold() -> int:
    """Bytes of walked rows (codes, or vectors) from which the kernels prefetch the rows they
    score, on this machine: the level-2 cache size (0, so always, where it is unknown), or
    HNSWX_ROW_PREFETCH_FROM (read once per process). Benchmark reports record it."""
