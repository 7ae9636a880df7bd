"""Shared fixtures for the hnswx Python tests."""
import numpy as np
import pytest

import hnswx

SPACES = ["l2", "ip", "cosine"]


def data(n, dim, seed=0):
    """n float32 vectors in a few clusters (so that graphs have structure)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, dim)).astype(np.float32) * 3
    x = centres[rng.integers(0, 8, n)] + rng.standard_normal((n, dim)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def build(space="l2", n=500, dim=8, seed=0, max_elements=None, **kw):
    """An hnswx.Index of n vectors labelled 0..n-1, and its data."""
    x = data(n, dim, seed)
    index = hnswx.Index(space, dim)
    index.init_index(max_elements or n, M=kw.pop("M", 16), ef_construction=kw.pop("ef_construction", 100), **kw)
    index.add_items(x)
    return index, x


def exact(x, labels, q, k, space):
    """Exact k nearest (labels, distances) by numpy, in hnswlib's distances."""
    if space == "l2":
        d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    else:
        if space == "cosine":
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        d = 1.0 - q @ x.T
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.asarray(labels)[order], np.take_along_axis(d, order, 1)


@pytest.fixture(params=SPACES)
def space(request):
    return request.param
