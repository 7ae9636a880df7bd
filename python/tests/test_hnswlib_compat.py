"""Side by side with the real hnswlib 0.8.0: the same files give the same answers.

Skipped where hnswlib is not installed (CI installs it)."""
import os

import numpy as np
import pytest

import hnswx
from conftest import data

hnswlib = pytest.importorskip("hnswlib")


def hnswlib_index(space, x, path, deleted=(), M=16, ef_construction=100):
    index = hnswlib.Index(space=space, dim=x.shape[1])
    index.init_index(max_elements=len(x) + 50, M=M, ef_construction=ef_construction, random_seed=100)
    index.add_items(x, np.arange(len(x)))
    for label in deleted:
        index.mark_deleted(label)
    index.save_index(path)
    return index


@pytest.mark.parametrize("ef", [10, 32, 100])
def test_same_file_same_answers(space, ef, tmp_path):
    x = data(3000, 16)
    q = data(200, 16, seed=7)
    path = str(tmp_path / "hnswlib.bin")
    theirs = hnswlib_index(space, x, path, deleted=range(0, 3000, 97))
    ours = hnswx.Index(space, 16)
    ours.load_index(path)
    assert ours.max_elements == theirs.max_elements == 3050
    assert ours.element_count == theirs.element_count == 3000
    assert sorted(ours.get_ids_list()) == sorted(theirs.get_ids_list())
    theirs.set_ef(ef)
    ours.set_ef(ef)
    want_l, want_d = theirs.knn_query(q, k=10)
    got_l, got_d = ours.knn_query(q, k=10)
    # Same graph, same entry point, same ef: the same search. Distances may differ in the
    # last bits (other SIMD summation orders), which can swap near-ties.
    assert (got_l == want_l).mean() > 0.995
    np.testing.assert_allclose(got_d, want_d, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.get_items([5, 6]), theirs.get_items([5, 6]), rtol=1e-6)


def test_filters_agree(tmp_path):
    x = data(2000, 16)
    q = data(50, 16, seed=8)
    path = str(tmp_path / "hnswlib.bin")
    theirs = hnswlib_index("l2", x, path)
    ours = hnswx.Index("l2", 16)
    ours.load_index(path)
    for index in (theirs, ours):
        index.set_ef(64)
    keep = lambda label: label % 4 == 1  # noqa: E731
    want = theirs.knn_query(q, k=5, filter=keep, num_threads=1)
    got = ours.knn_query(q, k=5, filter=keep, num_threads=1)
    assert (got[0] % 4 == 1).all()
    assert (got[0] == want[0]).mean() > 0.95


@pytest.mark.parametrize("deleted", [False, True])
def test_hnswlib_reads_our_files(space, deleted, tmp_path):
    x = data(1500, 16)
    q = data(100, 16, seed=9)
    ours = hnswx.Index(space, 16)
    ours.init_index(1600, M=12, ef_construction=80)
    ours.add_items(x)
    if deleted:
        for label in range(0, 1500, 50):
            ours.mark_deleted(label)
        ours.add_items(x[:20] * 1.5, ids=np.arange(100, 120))  # updates too
    path = str(tmp_path / "ours.bin")
    ours.save_index(path)
    assert os.path.getsize(path) == ours.index_file_size()
    theirs = hnswlib.Index(space=space, dim=16)
    theirs.load_index(path)
    assert theirs.element_count == ours.element_count
    assert theirs.max_elements >= 1500
    assert sorted(theirs.get_ids_list()) == sorted(ours.get_ids_list())
    # hnswlib counts the file's size its own way.
    assert theirs.index_file_size() == os.path.getsize(path)
    # After updates the file holds a compacted copy (one element per label), whose graph
    # was rewired: compare on the file itself.
    same = hnswx.Index(space, 16)
    same.load_index(path)
    if not deleted:
        np.testing.assert_array_equal(same.knn_query(q, k=10)[0], ours.knn_query(q, k=10)[0])
    for ef in (16, 64):
        theirs.set_ef(ef)
        same.set_ef(ef)
        want = theirs.knn_query(q, k=10)
        got = same.knn_query(q, k=10)
        assert (got[0] == want[0]).mean() > 0.995
        np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-5)
    if deleted:
        np.testing.assert_allclose(theirs.get_items([100]), ours.get_items([100]), rtol=1e-6)
        with pytest.raises(RuntimeError):
            theirs.get_items([50])


def test_bfindex_files_are_shared(space, tmp_path):
    x = data(300, 8)
    q = data(20, 8, seed=4)
    theirs = hnswlib.BFIndex(space=space, dim=8)
    theirs.init_index(max_elements=400)
    theirs.add_items(x, np.arange(300))
    path = str(tmp_path / "bf.bin")
    theirs.save_index(path)
    ours = hnswx.BFIndex(space, 8)
    ours.load_index(path)
    assert ours.get_max_elements() == 400 and ours.get_current_count() == 300
    got_l, got_d = ours.knn_query(q, k=5)
    # hnswlib's BFIndex does not normalise cosine queries (its distances are 1 - q·x̂);
    # the ranking is the same.
    want_l, want_d = theirs.knn_query(q, k=5)
    np.testing.assert_array_equal(got_l, want_l)
    if space != "cosine":
        np.testing.assert_allclose(got_d, want_d, rtol=1e-4, atol=1e-5)
    mine = str(tmp_path / "mine.bin")
    ours.save_index(mine)
    again = hnswlib.BFIndex(space=space, dim=8)
    again.load_index(mine)
    np.testing.assert_array_equal(again.knn_query(q, k=5)[0], want_l)


def test_errors_are_runtime_errors_as_in_hnswlib():
    x = data(20, 4)
    for module in (hnswlib, hnswx):
        index = module.Index("l2", 4)
        index.init_index(20)
        index.add_items(x)
        for call in (
            lambda: index.add_items(np.zeros((1, 5))),
            lambda: index.knn_query(x[0], k=21),
            lambda: index.mark_deleted(99),
            lambda: index.add_items(x[0], ids=[100]),
            lambda: index.resize_index(5),
        ):
            with pytest.raises(RuntimeError):
                call()
