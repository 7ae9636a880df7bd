#!/usr/bin/env python3
"""hnswlib's filtered search on the same files, filter and ef as `examples/filters.rs`.

Usage: python3 filters.py BASE.fvecs QUERY.fvecs EF [l2|ip]
Prints the same table rows (selectivity, path, recall@10, µs/query) for hnswlib 0.8.0's
`knn_query(..., filter=f)`, one query per call (hnswlib runs a filter on one thread), with
M 16, ef_construction 200. A label passes when hash(label) % 1000 < 1000 × selectivity, the
same hash as the Rust example. Recall is against the exact filtered neighbours. The filter
is a Python callable, as hnswlib's Python users write it; its per-call cost is part of what
they pay.
"""
import sys
import time

import hnswlib
import numpy as np


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32).copy()


def main():
    base, queries = read_fvecs(sys.argv[1]), read_fvecs(sys.argv[2])[:200]
    ef = int(sys.argv[3])
    space = sys.argv[4] if len(sys.argv) > 4 else "l2"
    n, dim = base.shape
    index = hnswlib.Index(space=space, dim=dim)
    index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
    index.add_items(base, np.arange(n), num_threads=2)
    index.set_ef(ef)
    labels = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashed = ((labels * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) % np.uint64(1000)
    for per_mille in [500, 100, 50, 20, 10, 1]:
        mask = hashed < per_mille
        ids = np.nonzero(mask)[0]
        sub = base[ids]
        if space == "ip":
            d = -(queries @ sub.T)
        else:
            d = (queries**2).sum(1)[:, None] - 2 * queries @ sub.T + (sub**2).sum(1)[None, :]
        truth = ids[np.argsort(d, axis=1)[:, :10]]
        allowed = set(ids.tolist())
        keep = lambda label: label in allowed
        hits, total, start = 0, 0, time.perf_counter()
        found = []
        for q in queries:
            got, _ = index.knn_query(q, k=10, num_threads=1, filter=keep)
            found.append(got[0])
        us = (time.perf_counter() - start) * 1e6 / len(queries)
        for f, t in zip(found, truth):
            hits += len(set(f.tolist()) & set(t.tolist()))
            total += len(t)
        print(f"| {per_mille / 10:.1f}% | hnswlib 0.8.0 (Python filter) | {hits / total:.4f} | {us:.1f} |", flush=True)


if __name__ == "__main__":
    main()
