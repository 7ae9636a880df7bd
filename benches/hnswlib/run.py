#!/usr/bin/env python3
"""hnswlib, or hnswx's Python module, on the same files, parameters and threads as
`hnswx bench`, writing the same JSON.

Usage (normally through ../compare.sh):
    python3 run.py --base B --query Q [--gt G] --metric l2|ip|cos --k 10 --m 16 \
        --ef-construction 200 --ef 10,16,32 --threads N --json OUT.json [--name NAME] \
        [--module hnswlib|hnswx]

--module hnswx runs the very same Python loop on `import hnswx as hnswlib` (the bindings in
python/, installed with `pip install ./python`): one script, one JSON schema, so the two
reports compare Python-level cost for Python-level cost. Its "tool" field is "hnswx-python".

Fairness:
- Single-thread QPS: one `knn_query(all queries, k, num_threads=1)` call per ef, so the loop
  over queries runs inside hnswlib's C++ code and the interpreter costs one call per sweep
  point, not one per query. QPS = queries / wall time of that call.
- Batch QPS: the same call with num_threads = --threads.
- Latency percentiles: each query through its own `knn_query` call, timed around the call;
  these include the Python call overhead (a few µs), so they overstate hnswlib's latency for
  fast queries. hnswx's QPS and latency are not mixed up with them: compare QPS.
- Build: `add_items(base, ids, num_threads=--threads)`, timed around the call, after
  `init_index(max_elements=n, M, ef_construction, random_seed=100)`.
- Memory: resident memory (VmRSS) after the build minus before `Index(...)`, per vector, as
  hnswx reports it.
- hnswlib installs from PyPI's source release and compiles with -march=native, so it uses the
  widest SIMD this CPU has (AVX-512 where present).
"""
import argparse
import json
import os
import platform
import sys
import time

import importlib

import numpy as np

hnswlib = None  # the module under test, imported in main() (--module)


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size < 4:
        sys.exit(f"{path}: too short for a texmex file")
    dim = int(raw[:4].view(np.int32)[0])
    width = 1 if dtype == np.uint8 else 4
    row = 4 + dim * width
    if dim <= 0 or raw.size % row:
        sys.exit(f"{path}: not a whole number of {dim}-dimensional rows: truncated?")
    rows = raw.reshape(-1, row)[:, 4:]
    return np.ascontiguousarray(rows).view(dtype).reshape(-1, dim)


def load(path, ids=False):
    ext = path.rsplit(".", 1)[-1].lower()
    if ext == "npy":
        a = np.load(path)
        return a.astype(np.int64 if ids else np.float32)
    if ext == "fvecs":
        return read_vecs(path, np.float32)
    if ext == "bvecs":
        return read_vecs(path, np.uint8).astype(np.float32)
    if ext == "ivecs":
        return read_vecs(path, np.int32)
    sys.exit(f"{path}: unknown format")


def rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--gt")
    ap.add_argument("--name")
    ap.add_argument("--metric", choices=["l2", "ip", "cos"], default="l2")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="10,16,24,32,48,64,96,128,192,256,384,512")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", required=True)
    ap.add_argument("--module", choices=["hnswlib", "hnswx"], default="hnswlib")
    ap.add_argument(
        "--min-seconds",
        type=float,
        default=0.0,
        help="repeat each ef's timed query loops until this many seconds have passed (0: one pass)",
    )
    a = ap.parse_args()
    global hnswlib
    hnswlib = importlib.import_module(a.module)

    base, queries = load(a.base), load(a.query)
    if base.shape[1] != queries.shape[1]:
        sys.exit(f"dimension mismatch: base {base.shape[1]}, queries {queries.shape[1]}")
    n, dim, k = base.shape[0], base.shape[1], a.k
    if a.gt:
        gt = load(a.gt, ids=True)[:, :k]
    else:
        sys.exit("run.py needs --gt (write one with `hnswx gt`)")
    space = {"l2": "l2", "ip": "ip", "cos": "cosine"}[a.metric]

    before = rss()
    index = hnswlib.Index(space=space, dim=dim)
    index.init_index(max_elements=n, M=a.m, ef_construction=a.ef_construction, random_seed=100)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=a.threads)
    seconds = time.perf_counter() - t
    after = rss()
    print(f"{a.module} {n} × {dim} {a.metric}: built in {seconds:.2f} s on {a.threads} threads", flush=True)

    runs = []
    index.set_num_threads(1)
    index.set_ef(int(a.ef.split(",")[0]))
    index.knn_query(queries[:1000], k=k, num_threads=1)  # warm-up, as hnswx does
    for ef in [int(x) for x in a.ef.split(",")]:
        index.set_ef(ef)
        # Whole passes until --min-seconds (at least one), as hnswx bench does.
        t, passes = time.perf_counter(), 0
        while passes == 0 or time.perf_counter() - t < a.min_seconds:
            got, _ = index.knn_query(queries, k=k, num_threads=1)
            labels = got if passes == 0 else labels
            passes += 1
        qps_single = passes * len(queries) / (time.perf_counter() - t)
        t, passes = time.perf_counter(), 0
        while passes == 0 or time.perf_counter() - t < a.min_seconds:
            index.knn_query(queries, k=k, num_threads=a.threads)
            passes += 1
        qps_batch = passes * len(queries) / (time.perf_counter() - t)
        lat = []
        for i in range(len(queries)):
            q = queries[i : i + 1]
            t = time.perf_counter_ns()
            index.knn_query(q, k=k, num_threads=1)
            lat.append((time.perf_counter_ns() - t) / 1000.0)
        lat = np.sort(np.array(lat))
        pct = lambda p: float(lat[min(len(lat), max(1, int(np.ceil(p * len(lat))))) - 1])
        hits = sum(len(set(labels[i].tolist()) & set(gt[i].tolist())) for i in range(len(queries)))
        run = {
            "ef": ef,
            "recall": hits / (len(queries) * k),
            "qps_single": qps_single,
            "qps_batch": qps_batch,
            "p50_us": pct(0.5),
            "p95_us": pct(0.95),
            "p99_us": pct(0.99),
            "p999_us": pct(0.999),
        }
        runs.append(run)
        print(f"{ef:>5} {run['recall']:>9.4f} {qps_single:>11.0f} {qps_batch:>11.0f}", flush=True)

    name = a.name or os.path.basename(a.base).rsplit(".", 1)[0].removesuffix("_base")
    report = {
        "tool": "hnswlib" if a.module == "hnswlib" else "hnswx-python",
        "dataset": name,
        "n": n,
        "dim": dim,
        "metric": a.metric,
        "k": k,
        "queries": len(queries),
        "params": {"m": a.m, "ef_construction": a.ef_construction},
        "build": {
            "seconds": seconds,
            "threads": a.threads,
            "bytes_per_vector": (after - before) / n if before and after else None,
        },
        "hardware": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "threads_used": a.threads,
            "kernel": "hnswlib -march=native" if a.module == "hnswlib" else "hnswx run-time dispatch",
            "compiler": f"{a.module} {getattr(hnswlib, '__version__', '0.8.0')}, Python {platform.python_version()}",
            "os": f"{platform.system().lower()} {platform.machine()}",
            # As `hnswx bench` records it (hnswlib has no look-ahead).
            "look_ahead_from": getattr(hnswlib, "look_ahead_threshold", lambda: None)(),
            "row_prefetch_from": getattr(hnswlib, "row_prefetch_threshold", lambda: None)(),
        },
        "runs": runs,
    }
    with open(a.json, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
