"""hnswx.BFIndex (hnswlib's brute-force index) and hnswx.BruteForce (the engine's)."""
import numpy as np
import pytest

import hnswx
from conftest import data, exact


def bf(space, n=200, dim=8, max_elements=None):
    x = data(n, dim)
    index = hnswx.BFIndex(space, dim)
    index.init_index(max_elements or n)
    index.add_items(x)
    return index, x


def test_bfindex_is_exact(space):
    index, x = bf(space)
    q = data(15, 8, seed=3)
    labels, dists = index.knn_query(q, k=7)
    want_l, want_d = exact(x, np.arange(200), q, 7, space)
    np.testing.assert_array_equal(labels, want_l)
    np.testing.assert_allclose(dists, want_d, rtol=1e-4, atol=1e-4)
    many = index.knn_query(q, k=7, num_threads=2)
    np.testing.assert_array_equal(many[0], labels)
    assert repr(index) == f"<hnswx.BFIndex(space='{space}', dim=8)>"
    assert (index.space, index.dim, index.get_max_elements(), index.get_current_count()) == (space, 8, 200, 200)


def test_bfindex_delete_overwrite_capacity_filter():
    index, x = bf("l2", max_elements=201)
    index.delete_vector(5)
    index.delete_vector(5)  # unknown: nothing happens, as in hnswlib
    assert index.get_current_count() == 199
    labels, _ = index.knn_query(x[5], k=3)
    assert 5 not in labels
    index.add_items(x[5] + 100, ids=[3])  # overwrite
    labels, _ = index.knn_query(x[5] + 100, k=1)
    assert labels[0, 0] == 3 and index.get_current_count() == 199
    index.add_items(x[5], ids=[5])
    with pytest.raises(hnswx.CapacityError):
        index.add_items(x[:2], ids=[1000, 1001])
    labels, _ = index.knn_query(x[:4], k=4, filter=lambda label: label % 2 == 0)
    assert (labels % 2 == 0).all()
    with pytest.raises(RuntimeError, match="contiguous"):
        index.knn_query(x[0], k=202)
    with pytest.raises(hnswx.InvalidParameterError):
        index.knn_query(x[0], k=0)
    with pytest.raises(hnswx.NonFiniteError):
        index.add_items(np.full(8, np.nan))
    with pytest.raises(hnswx.DimensionError):
        index.add_items(np.zeros(7))
    assert index.get_current_count() == 200


def test_bfindex_files(space, tmp_path):
    index, x = bf(space, max_elements=300)
    index.delete_vector(0)
    path = str(tmp_path / "bf.bin")
    index.save_index(path)
    back = hnswx.BFIndex(space, 8)
    back.load_index(path)
    assert back.get_max_elements() == 300 and back.get_current_count() == 199
    q = data(5, 8, seed=1)
    np.testing.assert_array_equal(back.knn_query(q, k=4)[0], index.knn_query(q, k=4)[0])
    with pytest.raises(hnswx.FileError):
        hnswx.BFIndex(space, 9).load_index(path)
    (tmp_path / "short.bin").write_bytes(b"\0" * 10)
    with pytest.raises(hnswx.FileError):
        hnswx.BFIndex(space, 8).load_index(str(tmp_path / "short.bin"))
    with pytest.raises(hnswx.NotInitializedError):
        hnswx.BFIndex(space, 8).knn_query(q)


def test_bruteforce(space):
    x = data(100, 8)
    exact_index = hnswx.BruteForce(space, 8)
    exact_index.add_items(x)
    assert len(exact_index) == 100 and exact_index.dim == 8 and exact_index.space == space
    q = data(5, 8, seed=2)
    labels, dists = exact_index.search(q, k=5)
    want_l, want_d = exact(x, np.arange(100), q, 5, space)
    np.testing.assert_array_equal(labels, want_l)
    np.testing.assert_allclose(dists, want_d, rtol=1e-4, atol=1e-4)
    with pytest.raises(hnswx.DuplicateLabelError):
        exact_index.add_items(x[0], ids=[3])
    exact_index.add_items(x[:2])  # labels continue: 100, 101
    labels, dists = exact_index.search(q[:1], k=105)
    assert (labels[0, 102:] == 2**64 - 1).all() and np.isinf(dists[0, 102:]).all()
    with pytest.raises(hnswx.InvalidParameterError):
        exact_index.search(q, k=0)
