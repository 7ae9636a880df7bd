"""hnswx.Index: hnswlib 0.8.0's Python API and semantics, on the hnswx engine."""
import os
import pickle

import numpy as np
import pytest

import hnswx
from conftest import build, data, exact


# ---- construction and attributes ----


def test_construction_and_attributes_before_init():
    index = hnswx.Index("l2", 4)
    assert (index.space, index.dim) == ("l2", 4)
    assert repr(index) == "<hnswx.Index(space='l2', dim=4)>"
    assert (index.M, index.ef_construction, index.max_elements, index.element_count) == (0, 0, 0, 0)
    assert index.ef == 10
    assert index.num_threads == os.cpu_count()
    assert len(index) == 0
    with pytest.raises(hnswx.NotInitializedError):
        index.knn_query(np.zeros(4, np.float32))
    with pytest.raises(RuntimeError):
        index.add_items(np.zeros(4, np.float32))
    with pytest.raises(RuntimeError):
        index.get_current_count()


@pytest.mark.parametrize("space,dim", [("euclid", 4), ("l2", 0), ("l2", -3)])
def test_bad_construction(space, dim):
    with pytest.raises(hnswx.InvalidParameterError) as e:
        hnswx.Index(space, dim)
    assert isinstance(e.value, ValueError) and isinstance(e.value, RuntimeError)


def test_init_index_parameters(space):
    index = hnswx.Index(space, 3)
    index.init_index(max_elements=50, M=8, ef_construction=40, random_seed=7)
    assert (index.M, index.ef_construction, index.max_elements, index.element_count) == (8, 40, 50, 0)
    assert index.get_max_elements() == 50 and index.get_current_count() == 0
    with pytest.raises(RuntimeError, match="already initiated"):
        index.init_index(10)
    with pytest.raises(hnswx.InvalidParameterError):
        hnswx.Index(space, 3).init_index(10, M=1)


def test_ef_and_threads_settings():
    index, x = build()
    index.set_ef(77)
    assert index.ef == 77
    index.ef = 33
    assert index.ef == 33
    index.set_num_threads(3)
    assert index.num_threads == 3
    index.num_threads = 1
    assert index.num_threads == 1
    labels, _ = index.knn_query(x[:5], k=3)
    assert labels.shape == (5, 3)


# ---- add_items and knn_query ----


def test_knn_query_shapes_types_and_exactness(space):
    index, x = build(space, n=400)
    index.set_ef(400)  # ef ≥ n: an exhaustive search
    q = data(20, 8, seed=9)
    labels, dists = index.knn_query(q, k=10)
    assert labels.shape == dists.shape == (20, 10)
    assert labels.dtype == np.uint64 and dists.dtype == np.float32
    want_l, want_d = exact(x, np.arange(400), q, 10, space)
    assert (labels == want_l).mean() > 0.99
    np.testing.assert_allclose(dists, want_d, rtol=1e-4, atol=1e-4)
    # One vector, 1-D.
    l1, d1 = index.knn_query(q[0], k=3)
    assert l1.shape == (1, 3)
    np.testing.assert_array_equal(l1[0], labels[0, :3])


def test_sequential_ids_continue_across_calls():
    index = hnswx.Index("l2", 2)
    index.init_index(10)
    index.add_items(np.array([[0, 0], [1, 1]], np.float32))
    index.add_items(np.array([[2, 2]], np.float32))
    assert sorted(index.get_ids_list()) == [0, 1, 2]
    # hnswlib's counter also moves past given ids' rows.
    index.add_items(np.array([[3, 3]], np.float32), ids=[7])
    index.add_items(np.array([[4, 4]], np.float32))
    assert sorted(index.get_ids_list()) == [0, 1, 2, 4, 7]


@pytest.mark.parametrize(
    "ids",
    [
        [5, 6, 7],
        np.array([5, 6, 7], np.int32),
        np.array([5, 6, 7], np.uint64),
        (5, 6, 7),
        np.array([5.0, 6.0, 7.0]),
    ],
)
def test_ids_forms(ids):
    index = hnswx.Index("l2", 2)
    index.init_index(10)
    index.add_items(np.eye(3, 2, dtype=np.float32), ids)
    assert sorted(index.get_ids_list()) == [5, 6, 7]


def test_scalar_id_for_one_vector_and_large_labels():
    index = hnswx.Index("l2", 2)
    index.init_index(10)
    index.add_items(np.array([1, 2], np.float32), 2**63 + 5)
    index.add_items(np.array([[3, 4]], np.float32), np.uint64(2**64 - 2))
    labels, _ = index.knn_query(np.array([1, 2]), k=2)
    assert labels[0].tolist() == [2**63 + 5, 2**64 - 2]


@pytest.mark.parametrize(
    "ids,error",
    [
        ([1, 2], "does not match"),
        ([[1, 2, 3]], "does not match"),
        ([-1, 2, 3], "non-negative"),
        ([1.5, 2, 3], "integers"),
        (["a", "b", "c"], "numeric"),
    ],
)
def test_bad_ids_change_nothing(ids, error):
    index, x = build(n=50)
    with pytest.raises(hnswx.InvalidInputError, match=error) as e:
        index.add_items(data(3, 8, seed=1), ids)
    assert isinstance(e.value, ValueError) and isinstance(e.value, RuntimeError)
    assert index.element_count == 50


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_])
def test_any_numeric_dtype_is_converted(dtype):
    raw = (data(60, 8) * 4).astype(dtype)
    a = hnswx.Index("l2", 8)
    a.init_index(60, random_seed=1)
    a.add_items(raw, num_threads=1)
    b = hnswx.Index("l2", 8)
    b.init_index(60, random_seed=1)
    b.add_items(raw.astype(np.float32), num_threads=1)
    q = raw[:5]
    np.testing.assert_array_equal(a.knn_query(q, k=3)[0], b.knn_query(q.astype(np.float32), k=3)[0])
    np.testing.assert_array_equal(a.get_items([0, 1]), b.get_items([0, 1]))


def test_fortran_order_non_contiguous_and_lists_are_accepted():
    x = data(100, 8)
    a = hnswx.Index("l2", 8)
    a.init_index(100, random_seed=3)
    a.add_items(np.asfortranarray(x), num_threads=1)
    b = hnswx.Index("l2", 8)
    b.init_index(100, random_seed=3)
    wide = np.zeros((100, 16), np.float32)
    wide[:, ::2] = x
    b.add_items(wide[:, ::2], num_threads=1)  # strided view
    c = hnswx.Index("l2", 8)
    c.init_index(100, random_seed=3)
    c.add_items(x.tolist(), num_threads=1)
    q = x[::7]
    want = a.knn_query(q, k=5)
    for other in (b, c):
        got = other.knn_query(q.tolist(), k=5)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(a.knn_query(np.asfortranarray(q), k=5)[0], want[0])


@pytest.mark.parametrize(
    "bad,error",
    [
        (np.zeros((3, 7), np.float32), hnswx.DimensionError),
        (np.zeros((2, 3, 8), np.float32), hnswx.DimensionError),
        (np.zeros((), np.float32), hnswx.DimensionError),
        (np.array([["a"] * 8]), hnswx.InvalidInputError),
        (np.array([[1 + 2j] * 8]), hnswx.InvalidInputError),
        (np.full((2, 8), np.nan, np.float32), hnswx.NonFiniteError),
        (np.array([[np.inf] + [0] * 7]), hnswx.NonFiniteError),
        (np.array([[1e39] * 8]), hnswx.NonFiniteError),  # float64 beyond float32: inf
        (np.full((1, 8), 3e18, np.float32), hnswx.NormTooLargeError),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_bad_vectors_raise_and_change_nothing(bad, error):
    index, x = build(n=60)
    before = index.knn_query(x[:3], k=5)
    with pytest.raises(error) as e:
        index.add_items(bad)
    assert isinstance(e.value, (ValueError, RuntimeError))
    assert index.element_count == 60
    if error is not hnswx.NormTooLargeError:
        with pytest.raises(error):
            index.knn_query(bad)
    after = index.knn_query(x[:3], k=5)
    np.testing.assert_array_equal(before[0], after[0])


def test_bad_row_in_a_late_chunk_adds_nothing():
    index = hnswx.Index("l2", 4)
    index.init_index(20_000)
    x = data(20_000, 4)
    x[-1, 2] = np.nan
    with pytest.raises(hnswx.NonFiniteError):
        index.add_items(x, num_threads=1)
    assert index.element_count == 0


def test_cosine_zero_vector_is_refused():
    index = hnswx.Index("cosine", 3)
    index.init_index(5)
    with pytest.raises(hnswx.ZeroVectorError):
        index.add_items(np.zeros((1, 3)))
    index.add_items(np.ones((1, 3)))
    with pytest.raises(hnswx.ZeroVectorError):
        index.knn_query(np.zeros(3))


def test_k_zero_and_too_large_k():
    index, x = build(n=20)
    with pytest.raises(hnswx.InvalidParameterError):
        index.knn_query(x[0], k=0)
    with pytest.raises(RuntimeError, match="Cannot return the results in a contiguous 2D array"):
        index.knn_query(x[0], k=21)
    labels, _ = index.knn_query(x[0], k=20)
    assert sorted(labels[0].tolist()) == list(range(20))
    empty_l, empty_d = index.knn_query(np.zeros((0, 8), np.float32), k=3)
    assert empty_l.shape == empty_d.shape == (0, 3)


def test_empty_index_query_raises_like_hnswlib():
    index = hnswx.Index("l2", 2)
    index.init_index(5)
    with pytest.raises(RuntimeError, match="contiguous"):
        index.knn_query(np.zeros(2), k=1)


def test_adding_an_existing_label_replaces_its_vector(space):
    index, x = build(space, n=100, max_elements=200)
    new = data(1, 8, seed=5)[0]
    index.add_items(new, ids=[42])
    assert index.element_count == 100
    got = index.get_items([42])[0]
    want = new / np.linalg.norm(new) if space == "cosine" else new
    np.testing.assert_allclose(got, want, rtol=1e-6)
    labels, _ = index.knn_query(new, k=1)
    assert labels[0, 0] == 42
    # The same label twice in one call: the last row wins.
    index.add_items(np.stack([x[0], x[1]]), ids=[500, 500])
    assert index.element_count == 101
    np.testing.assert_allclose(index.get_items([500])[0], index.get_items([1])[0], rtol=1e-6)


def test_updates_on_a_full_index_keep_working():
    index, x = build(n=50)
    for round in range(5):
        index.add_items(x[::-1] + round, ids=np.arange(50))
    assert index.element_count == 50 and index.get_current_count() == 50
    np.testing.assert_allclose(index.get_items([0])[0], x[49] + 4)
    with pytest.raises(hnswx.CapacityError):
        index.add_items(x[0], ids=[50])


# ---- capacity, resize ----


def test_capacity_and_resize():
    index, x = build(n=30, max_elements=40)
    with pytest.raises(hnswx.CapacityError, match="exceeds the specified limit") as e:
        index.add_items(data(11, 8, seed=2), ids=np.arange(100, 111))
    assert isinstance(e.value, RuntimeError)
    assert index.element_count == 30
    index.add_items(data(10, 8, seed=2), ids=np.arange(100, 110))
    with pytest.raises(RuntimeError, match="Cannot resize"):
        index.resize_index(39)
    index.resize_index(100)
    assert index.get_max_elements() == 100 == index.max_elements
    index.add_items(data(60, 8, seed=3), ids=np.arange(200, 260))
    assert index.element_count == 100
    index.set_ef(100)
    labels, _ = index.knn_query(data(60, 8, seed=3)[:5], k=1)
    assert labels[:, 0].tolist() == list(range(200, 205))


# ---- deletion ----


def test_mark_and_unmark_deleted(space):
    index, x = build(space, n=200)
    index.set_ef(200)
    index.mark_deleted(7)
    labels, _ = index.knn_query(x[7], k=5)
    assert 7 not in labels
    assert index.element_count == 200 and len(index) == 199
    assert 7 in index.get_ids_list() and 7 not in index
    with pytest.raises(RuntimeError, match="already deleted"):
        index.mark_deleted(7)
    with pytest.raises(RuntimeError, match="Label not found"):
        index.mark_deleted(12345)
    with pytest.raises(RuntimeError, match="Label not found"):
        index.get_items([7])
    with pytest.raises(RuntimeError, match="not deleted"):
        index.unmark_deleted(8)
    with pytest.raises(hnswx.UnknownLabelError) as e:
        index.unmark_deleted(999)
    assert isinstance(e.value, KeyError) and "Label not found" in str(e.value)
    index.unmark_deleted(7)
    labels, _ = index.knn_query(x[7], k=200)
    assert 7 in labels and len(index) == 200


def test_re_adding_a_deleted_label_brings_it_back():
    index, x = build(n=50)
    index.mark_deleted(3)
    index.add_items(x[10] + 0.5, ids=[3])
    assert 3 in index and index.element_count == 50
    np.testing.assert_allclose(index.get_items([3])[0], x[10] + 0.5)


def test_replace_deleted():
    x = data(60, 8)
    index = hnswx.Index("l2", 8)
    index.init_index(50, allow_replace_deleted=True)
    index.add_items(x[:50])
    for label in range(10):
        index.mark_deleted(label)
    with pytest.raises(hnswx.CapacityError):
        index.add_items(x[50:], ids=np.arange(50, 60))
    # A deleted label added with replace_deleted=True comes back with its new vector
    # (hnswlib 0.8.0 accepts this call too).
    index.add_items(x[0] + 1, ids=[0], replace_deleted=True)
    assert 0 in index
    np.testing.assert_array_equal(index.get_items([0])[0], x[0] + 1)
    index.add_items(x[50:59], ids=np.arange(50, 59), replace_deleted=True)
    assert index.element_count == 50 and len(index) == 50
    assert sorted(index.get_ids_list()) == [0] + list(range(10, 59))
    labels, _ = index.knn_query(x[55], k=1)
    assert labels[0, 0] == 55
    plain = hnswx.Index("l2", 8)
    plain.init_index(5)
    plain.add_items(x[:1])
    with pytest.raises(RuntimeError, match="disabled in constructor"):
        plain.add_items(x[1:2], replace_deleted=True)


# ---- get_items, get_ids_list ----


def test_get_items():
    index, x = build(n=20)
    got = index.get_items([3, 1])
    assert got.dtype == np.float32 and got.shape == (2, 8)
    np.testing.assert_array_equal(got, x[[3, 1]])
    as_list = index.get_items(np.array([3, 1]), return_type="list")
    assert isinstance(as_list, list) and np.allclose(as_list, x[[3, 1]])
    assert index.get_items([]).shape == (0, 8)
    assert index.get_items().shape == (0, 8)
    with pytest.raises(ValueError, match="return_type"):
        index.get_items([1], return_type="tuple")
    with pytest.raises(ValueError, match="list of indices"):
        index.get_items(3)
    with pytest.raises(RuntimeError, match="Label not found"):
        index.get_items([1, 99])
    assert sorted(index.get_ids_list()) == list(range(20))


# ---- filters ----


def test_filter(space):
    index, x = build(space, n=300)
    index.set_ef(300)
    q = data(10, 8, seed=4)
    labels, dists = index.knn_query(q, k=5, filter=lambda label: label % 3 == 0)
    assert (labels % 3 == 0).all()
    keep = np.arange(0, 300, 3)
    want_l, want_d = exact(x[keep], keep, q, 5, space)
    assert (labels == want_l).mean() > 0.95
    for threads in (1, 2):
        l2, _ = index.knn_query(q, k=5, num_threads=threads, filter=lambda label: label % 3 == 0)
        assert (l2 % 3 == 0).all()
    with pytest.raises(RuntimeError, match="contiguous"):
        index.knn_query(q[0], k=5, filter=lambda label: label < 2)


def test_filter_exceptions_propagate():
    index, x = build(n=100)

    def bad(label):
        raise ZeroDivisionError("from the filter")

    with pytest.raises(ZeroDivisionError, match="from the filter"):
        index.knn_query(x[:20], k=3, filter=bad, num_threads=2)
    with pytest.raises(hnswx.InvalidInputError, match="callable"):
        index.knn_query(x[0], k=3, filter=[1, 2, 3])
    assert index.knn_query(x[0], k=3)[0].shape == (1, 3)


# ---- hnswx's own calls ----


def test_search_pads_and_takes_ef():
    index, x = build(n=30)
    labels, dists = index.search(x[:2], k=40, ef=64)
    assert labels.shape == (2, 40)
    assert (labels[:, 30:] == 2**64 - 1).all() and np.isinf(dists[:, 30:]).all()
    assert sorted(labels[0, :30].tolist()) == list(range(30))
    labels, _ = index.search(x[:2], k=3, filter=lambda label: label == 5)
    assert labels[:, 0].tolist() == [5, 5] and (labels[:, 1:] == 2**64 - 1).all()


def test_remove_restore_update_consolidate():
    index, x = build(n=100)
    index.remove(5)
    assert 5 not in index
    with pytest.raises(hnswx.UnknownLabelError):
        index.remove(5)
    index.restore(5)
    assert 5 in index
    index.update(5, x[6] + 0.01)
    np.testing.assert_allclose(index.get_items([5])[0], x[6] + 0.01)
    with pytest.raises(hnswx.UnknownLabelError):
        index.update(1000, x[0])
    with pytest.raises(hnswx.DimensionError):
        index.update(5, x[0][:3])
    index.remove(1)
    index.remove(2)
    assert index.consolidate() >= 2
    with pytest.raises(hnswx.UnknownLabelError):
        index.restore(1)
    assert len(index) == 98


# ---- threads ----


def test_single_thread_builds_are_reproducible():
    x = data(2000, 8)
    out = []
    for _ in range(2):
        index = hnswx.Index("l2", 8)
        index.init_index(2000, random_seed=5)
        index.add_items(x, num_threads=1)
        out.append(index.knn_query(x[:50], k=10, num_threads=1))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_threads_agree():
    index, x = build(n=2000)
    index.set_ef(64)
    q = data(200, 8, seed=1)
    one = index.knn_query(q, k=10, num_threads=1)
    many = index.knn_query(q, k=10, num_threads=4)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])


def test_python_threads_share_an_index_and_the_gil_is_released():
    import threading
    import time

    index = hnswx.Index("l2", 16)
    index.init_index(40_000)
    x = data(40_000, 16)
    ticks = []
    done = threading.Event()

    def add():
        index.add_items(x[:20_000], num_threads=2)
        done.set()

    t = threading.Thread(target=add)
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())  # runs only while add_items has let go of the GIL
        time.sleep(0.001)
    t.join()
    assert len(ticks) > 5
    errors = []

    def work(i):
        try:
            if i % 2:
                index.add_items(x[20_000 + i * 1000 : 21_000 + i * 1000], ids=np.arange(20_000 + i * 1000, 21_000 + i * 1000))
            else:
                for _ in range(20):
                    index.knn_query(x[:50], k=5)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert index.element_count == 24_000


def test_ctrl_c_stops_add_items_and_leaves_the_index_usable():
    import signal
    import threading

    index = hnswx.Index("l2", 32)
    n = 150_000
    index.init_index(n)
    x = data(n, 32)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            index.add_items(x, num_threads=2)
    finally:
        timer.cancel()
    added = index.element_count
    assert 0 < added < n
    labels, _ = index.knn_query(x[:5], k=1)
    assert labels[:, 0].tolist() == [0, 1, 2, 3, 4]
    index.add_items(x[added : added + 1000], ids=np.arange(added, added + 1000))
    assert index.element_count == added + 1000
    # Sequential labels moved past the interrupted call's rows: no overwrite.
    count = index.element_count
    index.add_items(np.ones((2, 32), np.float32))
    assert index.element_count == count + 2
    assert index.get_items([0])[0].tolist() == x[0].tolist()


# ---- files ----


def test_save_index_load_index_round_trip(space, tmp_path):
    index, x = build(space, n=300)
    index.mark_deleted(3)
    index.set_ef(50)
    path = str(tmp_path / "index.bin")
    index.save_index(path)
    assert os.path.getsize(path) == index.index_file_size()
    back = hnswx.Index(space, 8)
    back.load_index(path)
    assert back.ef == 10  # hnswlib resets ef on load
    back.set_ef(50)
    assert back.element_count == 300 and back.max_elements == 300
    assert 3 not in back and 3 in back.get_ids_list()
    q = data(20, 8, seed=6)
    np.testing.assert_array_equal(back.knn_query(q, k=5)[0], index.knn_query(q, k=5)[0])
    back.unmark_deleted(3)
    assert 3 in back
    bigger = hnswx.Index(space, 8)
    bigger.load_index(path, max_elements=500)
    assert bigger.max_elements == 500
    bigger.add_items(data(200, 8, seed=8), ids=np.arange(1000, 1200))
    smaller = hnswx.Index(space, 8)
    smaller.load_index(path, max_elements=10)  # below the count: the file's own limit
    assert smaller.max_elements == 300


def test_save_index_after_updates_writes_one_element_per_label(tmp_path):
    index, x = build(n=100)
    index.add_items(x[:10] + 1, ids=np.arange(10))  # updates: old nodes hidden in the engine
    index.mark_deleted(50)
    path = str(tmp_path / "updated.bin")
    index.save_index(path)
    back = hnswx.Index("l2", 8)
    back.load_index(path)
    assert back.element_count == 100
    assert sorted(back.get_ids_list()) == list(range(100))
    assert 50 not in back
    np.testing.assert_allclose(back.get_items([0])[0], x[0] + 1)
    # The in-memory index is unchanged.
    index.unmark_deleted(50)
    assert 50 in index


def test_hnswx_format(space, tmp_path):
    index, x = build(space, n=300)
    index.mark_deleted(4)
    path = str(tmp_path / "index.hnswx")
    index.save(path)
    q = data(10, 8, seed=2)
    want = index.knn_query(q, k=5)
    for other in (hnswx.load(path), hnswx.open_mmap(path)):
        assert (other.space, other.dim) == (space, 8)
        assert 4 not in other
        np.testing.assert_array_equal(other.knn_query(q, k=5)[0], want[0])
    via = hnswx.Index(space, 8)
    via.load_index(path)
    np.testing.assert_array_equal(via.knn_query(q, k=5)[0], want[0])
    via.unmark_deleted(4)
    mapped = hnswx.open_mmap(path)
    mapped.resize_index(400)
    mapped.add_items(data(50, 8, seed=3), ids=np.arange(1000, 1050))
    assert mapped.element_count == 350


def test_bad_files(tmp_path):
    index, x = build(n=50)
    with pytest.raises(hnswx.FileError):
        hnswx.Index("l2", 8).load_index(str(tmp_path / "missing.bin"))
    path = str(tmp_path / "index.hnswx")
    index.save(path)
    with pytest.raises(hnswx.FileError, match="l2"):
        hnswx.Index("ip", 8).load_index(path)
    with pytest.raises(hnswx.DimensionError):
        hnswx.Index("l2", 9).load_index(path)
    raw = bytearray(open(path, "rb").read())
    raw[400] ^= 0xFF
    bad = tmp_path / "bad.hnswx"
    bad.write_bytes(bytes(raw))
    with pytest.raises(hnswx.FileError):
        hnswx.load(str(bad))
    (tmp_path / "junk.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(hnswx.FileError) as e:
        hnswx.Index("l2", 8).load_index(str(tmp_path / "junk.bin"))
    assert isinstance(e.value, RuntimeError)


def test_pathlib_paths(tmp_path):
    index, _ = build(n=10)
    index.save_index(tmp_path / "a.bin")
    index.save(tmp_path / "a.hnswx")
    hnswx.Index("l2", 8).load_index(tmp_path / "a.bin")
    hnswx.load(tmp_path / "a.hnswx")


# ---- pickling ----


def test_pickle_round_trip(space):
    index, x = build(space, n=200, max_elements=250, allow_replace_deleted=True)
    index.set_ef(42)
    index.set_num_threads(3)
    index.mark_deleted(9)
    back = pickle.loads(pickle.dumps(index))
    assert (back.space, back.dim, back.ef, back.num_threads) == (space, 8, 42, 3)
    assert (back.M, back.ef_construction, back.max_elements, back.element_count) == (16, 100, 250, 200)
    assert 9 not in back and 9 in back.get_ids_list()
    q = data(10, 8, seed=1)
    np.testing.assert_array_equal(back.knn_query(q, k=5)[0], index.knn_query(q, k=5)[0])
    np.testing.assert_array_equal(back.knn_query(q, k=5)[1], index.knn_query(q, k=5)[1])
    back.add_items(x[0], replace_deleted=True)  # labels continue: 200
    assert 200 in back and back.element_count == 200
    empty = pickle.loads(pickle.dumps(hnswx.Index("ip", 5)))
    assert (empty.space, empty.dim, empty.max_elements) == ("ip", 5, 0)


# ---- the exception classes ----


def test_exception_hierarchy():
    assert issubclass(hnswx.HnswxError, RuntimeError)
    for cls in (
        hnswx.InvalidInputError,
        hnswx.DimensionError,
        hnswx.NonFiniteError,
        hnswx.ZeroVectorError,
        hnswx.NormTooLargeError,
        hnswx.InvalidParameterError,
        hnswx.DuplicateLabelError,
    ):
        assert issubclass(cls, hnswx.HnswxError) and issubclass(cls, ValueError), cls
    assert issubclass(hnswx.UnknownLabelError, KeyError)
    for cls in (hnswx.CapacityError, hnswx.FileError, hnswx.NotInitializedError):
        assert issubclass(cls, hnswx.HnswxError)
    assert hnswx.DimensionError.__module__ == "hnswx"


# ---- quantised traversal (beyond hnswlib) ----


@pytest.mark.parametrize("quantization", ["sq8", "f16"])
@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_quantization_keeps_exact_distances_and_recall(space, quantization, tmp_path):
    q = data(20, 16, seed=6)
    x = data(3000, 16, seed=5)
    # One build thread each: the graphs (and so the recalls compared) are deterministic.
    plain = hnswx.Index(space, 16)
    plain.init_index(3000, ef_construction=100)
    plain.add_items(x, num_threads=1)
    coded = hnswx.Index(space, 16)
    coded.init_index(3000, ef_construction=100, quantization=quantization)
    coded.add_items(x, num_threads=1)
    coded.set_ef(64)
    plain.set_ef(64)
    labels, dists = coded.knn_query(q, k=10)
    want, _ = plain.knn_query(q, k=10)
    all_labels, all_dists = exact(x, np.arange(3000), q, 3000, space)

    def recall(found):
        return sum(len(set(a) & set(b[:10])) for a, b in zip(found, all_labels)) / found.size

    assert recall(labels) >= recall(want) - 0.03, (recall(labels), recall(want))
    # Distances are exact (re-scored from the float rows).
    for row in range(len(q)):
        table = dict(zip(all_labels[row].tolist(), all_dists[row].tolist()))
        for lab, d in zip(labels[row].tolist(), dists[row].tolist()):
            assert abs(d - table[lab]) <= 1e-4 * max(1.0, abs(table[lab]))
    path = str(tmp_path / f"{quantization}.hnswx")
    coded.save(path)
    back = hnswx.load(path)
    back.set_ef(64)
    assert np.array_equal(back.knn_query(q, k=10)[0], labels)


def test_bad_quantization_name():
    index = hnswx.Index("l2", 4)
    with pytest.raises(ValueError):
        index.init_index(10, quantization="pq4")


# ---- review findings ----


def test_capacity_survives_save_index_and_load_index(tmp_path):
    index = hnswx.Index("l2", 8)
    index.init_index(300)
    index.add_items(data(200, 8))
    path = str(tmp_path / "cap.bin")
    index.save_index(path)
    back = hnswx.Index("l2", 8)
    back.load_index(path)
    assert back.max_elements == 300
    back.add_items(np.ones(8, np.float32), [999])
    assert back.element_count == 201


def test_replace_deleted_brings_a_deleted_label_back():
    index = hnswx.Index("l2", 4)
    index.init_index(50, allow_replace_deleted=True)
    index.add_items(data(50, 4))
    index.mark_deleted(3)
    with pytest.raises(RuntimeError):
        index.add_items(np.ones(4, np.float32), [3])
    index.add_items(np.ones(4, np.float32), [3], replace_deleted=True)
    assert index.get_items([3])[0].tolist() == [1.0] * 4
    labels, _ = index.knn_query(np.ones(4, np.float32), k=1)
    assert labels[0, 0] == 3


def test_ids_list_is_sorted():
    index, _ = build("l2", n=100)
    index.mark_deleted(50)
    assert index.get_ids_list() == list(range(100))


def test_index_file_size_does_not_change_the_index():
    index, x = build("l2", n=200, max_elements=400)
    index.add_items(x[:50] + 1, np.arange(50))  # updates: old nodes hidden
    before = index.max_elements
    size = index.index_file_size()
    assert size > 0 and index.max_elements == before
    index.add_items(data(150, 8, seed=3), np.arange(1000, 1150))
    assert index.element_count == 350


def test_huge_k_and_capacity_are_errors_not_crashes(tmp_path):
    b = hnswx.BruteForce("l2", 4)
    b.add_items(data(10, 4))
    for k in [2**40, 2**62, 2**63]:
        with pytest.raises((RuntimeError, ValueError, MemoryError, OverflowError)):
            b.search(data(4, 4), k=k)
    bf = hnswx.BFIndex("l2", 8)
    with pytest.raises(ValueError):
        bf.init_index(2**62)


def test_a_filter_that_changes_its_own_index_gets_an_error_not_a_hang():
    index, x = build("l2", n=100)

    def grow(label):
        index.resize_index(500)
        return True

    with pytest.raises(RuntimeError):
        index.knn_query(x[:1], k=1, filter=grow)
    assert index.max_elements == 100

    def read(label):
        return label in index and index.get_current_count() == 100

    labels, _ = index.knn_query(x[:1], k=1, filter=read)
    assert labels[0, 0] == 0


def _threshold_in_subprocess(var, function, value):
    """hnswx.<function>() in a fresh interpreter with `var` set to `value` (unset if None):
    the thresholds are read once per process."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != var}
    if value is not None:
        env[var] = value
    code = f"import hnswx; print(hnswx.{function}())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_look_ahead_threshold_follows_the_variable_or_the_cache():
    def threshold(value):
        return _threshold_in_subprocess("HNSWX_LOOK_AHEAD_FROM", "look_ahead_threshold", value)

    assert threshold("3M") == 3 << 20
    assert threshold("0") == 0
    # Unset, or not a size: a quarter of the last level cache, never under 8 MiB.
    assert threshold(None) >= 8 << 20
    assert threshold("lots") == threshold(None)
    assert isinstance(hnswx.look_ahead_threshold(), int)


def test_row_prefetch_threshold_follows_the_variable_or_the_cache():
    def threshold(value):
        return _threshold_in_subprocess("HNSWX_ROW_PREFETCH_FROM", "row_prefetch_threshold", value)

    assert threshold("3M") == 3 << 20
    assert threshold("0") == 0
    # Unset, or not a size: the level-2 cache size (0 where unknown).
    assert threshold("lots") == threshold(None)
    assert isinstance(hnswx.row_prefetch_threshold(), int)
