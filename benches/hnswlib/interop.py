#!/usr/bin/env python3
"""Opt-in check of hnswlib interop against the real hnswlib (PyPI), both directions.

    bash benches/hnswlib/interop.sh            # sets up the venv and the hnswx binary

1. hnswlib builds an index on a data set and saves it; `hnswx import-hnswlib` converts it;
   `hnswx query` and hnswlib's knn_query answer the same queries at the same ef: the share
   of identical result lists and the overlap of the neighbour sets are printed.
2. `hnswx build` builds one; `hnswx export-hnswlib` writes hnswlib's format; hnswlib's
   load_index reads it and answers; compared with `hnswx query` the same way.
Exit status 1 if an overlap falls below 0.99.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import hnswlib

HNSWX, BASE, QUERY, SPACE = sys.argv[1:5]
METRIC = {"l2": "l2", "ip": "ip", "cosine": "cos"}[SPACE]
K, EF = 10, 64


def fvecs(p):
    a = np.fromfile(p, dtype=np.int32)
    return a.reshape(-1, a[0] + 1)[:, 1:].copy().view(np.float32)


def hnswx_query(index, extra=()):
    out = subprocess.run([HNSWX, "query", index, "--query", QUERY, "--k", str(K), "--ef", str(EF), *extra],
                         check=True, capture_output=True, text=True).stdout
    return [[int(p.split(":")[0]) for p in line.split()] for line in out.splitlines()]


def compare(name, a, b):
    same = sum(1 for x, y in zip(a, b) if list(x) == list(y)) / len(a)
    overlap = sum(len(set(x) & set(y)) for x, y in zip(a, b)) / (len(a) * K)
    print(f"{name}: identical lists {same:.3f}, neighbour overlap {overlap:.4f}")
    return overlap


base, queries = fvecs(BASE), fvecs(QUERY)
tmp = tempfile.mkdtemp()
worst = 1.0

# 1. hnswlib -> hnswx
p = hnswlib.Index(space=SPACE, dim=base.shape[1])
p.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
p.add_items(base, np.arange(len(base)), num_threads=2)
p.save_index(f"{tmp}/h.bin")
p.set_ef(EF)
theirs, _ = p.knn_query(queries, k=K, num_threads=1)
subprocess.run([HNSWX, "import-hnswlib", f"{tmp}/h.bin", "--metric", METRIC, "--out", f"{tmp}/h.hnswx"], check=True)
worst = min(worst, compare("hnswlib-built, searched by hnswx vs hnswlib", hnswx_query(f"{tmp}/h.hnswx"), theirs))

# 2. hnswx -> hnswlib
subprocess.run([HNSWX, "build", "--base", BASE, "--metric", METRIC, "--out", f"{tmp}/x.hnswx"], check=True)
subprocess.run([HNSWX, "export-hnswlib", f"{tmp}/x.hnswx", "--out", f"{tmp}/x.bin"], check=True)
q = hnswlib.Index(space=SPACE, dim=base.shape[1])
q.load_index(f"{tmp}/x.bin")
q.set_ef(EF)
theirs, _ = q.knn_query(queries, k=K, num_threads=1)
worst = min(worst, compare("hnswx-built, searched by hnswlib vs hnswx", theirs, hnswx_query(f"{tmp}/x.hnswx")))
sys.exit(0 if worst >= 0.99 else 1)
