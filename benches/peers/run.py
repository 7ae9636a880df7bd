#!/usr/bin/env python3
"""FAISS and usearch on the same files, parameters and threads as `hnswx bench`, writing the
same JSON report as `benches/hnswlib/run.py` (read by `hnswx compare`).

Usage (normally through ../compare.sh):
    python3 run.py --lib faiss-flat|faiss-sq8|usearch-f32|usearch-i8 --base B --query Q --gt G \
        --metric l2|ip|cos --k 10 --m 16 --ef-construction 200 --ef 10,16,32 --threads N \
        --json OUT.json [--name NAME]

Libraries (tool name in the report):
- faiss-flat  (`faiss-hnsw-flat`): `faiss.IndexHNSWFlat(d, M, metric)`, f32 rows.
- faiss-sq8   (`faiss-hnsw-sq8`):  `faiss.IndexHNSWSQ(d, QT_8bit, M, metric)`: one byte per
  component, per-dimension min/max learned by `train(base)` on the whole base set before `add`
  (the train time is inside the build time). Distances are computed on the codes; there is no
  exact rerank, so results carry approximate distances.
- usearch-f32 (`usearch-f32`): `usearch.index.Index(ndim, metric, dtype='f32', connectivity=M,
  expansion_add=ef_construction)`.
- usearch-i8  (`usearch-i8`): the same with dtype='i8'. usearch's own f32 → i8 cast divides
  each vector by its norm before scaling by 127 (it assumes a cosine-like metric), which changes
  l2 and ip distances (on sift5k it caps recall@10 near 0.92). So for l2 and ip this script
  quantises itself, with one global scale for every component of every vector (base and
  queries): round(x * 127 / max|base component|) as int8, handed to usearch as i8 arrays (no
  cast), which keeps l2 and ip distances proportional up to rounding. For cos the normalised f32
  vectors are handed over and usearch's cast is exact in intent. No rerank either.

Metrics: l2 → FAISS METRIC_L2 / usearch 'l2sq'; ip → METRIC_INNER_PRODUCT / 'ip'; cos → the
vectors are normalised (base and queries) and searched with inner product (FAISS) or 'cos'
(usearch, which normalises itself; the normalised copy changes nothing there).

Fairness, as run.py does for hnswlib:
- Single-thread QPS: one batch search call over all queries per ef with one thread
  (`faiss.omp_set_num_threads(1)`; usearch `threads=1`), so the loop over queries runs in C++.
- Batch QPS: the same call with --threads threads.
- Latency percentiles: each query through its own search call, timed around the call (they
  include the Python call overhead of a few µs: compare QPS, not these).
- Build: `add` (and `train` for SQ8) with --threads threads, timed around the calls.
- Memory: resident memory (VmRSS) after the build minus before the index was created, per
  vector (the data is loaded, converted and normalised before the first reading, and a
  throwaway index of 200 vectors is built first so that the library's import, code pages and
  thread pool are not counted).
- Recall@k: result ids against the first k ground-truth ids.
- SIMD: FAISS ≥ 1.12 wheels carry every x86 level in one library and pick at run time; the
  environment variable FAISS_SIMD_LEVEL (NONE, AVX2, AVX512, AVX512_SPR) caps it, and older
  wheels (one module per level) read FAISS_OPT_LEVEL (AVX2, AVX512) in faiss/loader.py. The
  level in use is written to hardware.kernel. usearch dispatches at run time inside its own
  compiled module (NumKong/SimSIMD, statically linked) and has no switch to cap it from Python
  (`numkong.disable_capability` only affects the separate numkong module); the level it uses
  (`Index.hardware_acceleration`, e.g. haswell = AVX2, skylake/icelake/sapphire = AVX-512) is
  written to hardware.kernel.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

TOOLS = {
    "faiss-flat": "faiss-hnsw-flat",
    "faiss-sq8": "faiss-hnsw-sq8",
    "usearch-f32": "usearch-f32",
    "usearch-i8": "usearch-i8",
}


# The file readers and the machine probes are hnswlib/run.py's (it imports its module under
# test only in main(), so importing it here loads nothing else).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hnswlib"))
from run import cpu_model, load, rss  # noqa: E402


def normalized(x):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return np.ascontiguousarray(x / norms, dtype=np.float32)


class Faiss:
    """IndexHNSWFlat or IndexHNSWSQ (8-bit)."""

    def __init__(self, lib, dim, metric, m, ef_construction):
        import faiss

        self.faiss = faiss
        fm = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if lib == "faiss-flat":
            self.index = faiss.IndexHNSWFlat(dim, m, fm)
        else:
            self.index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, fm)
        self.index.hnsw.efConstruction = ef_construction
        self.train_seconds = 0.0

    def build(self, base, threads):
        self.faiss.omp_set_num_threads(threads)
        if not self.index.is_trained:
            t = time.perf_counter()
            self.index.train(base)
            self.train_seconds = time.perf_counter() - t
        self.index.add(base)

    def search(self, queries, k, ef, threads):
        self.faiss.omp_set_num_threads(threads)
        self.index.hnsw.efSearch = ef
        _, labels = self.index.search(queries, k)
        return labels

    def kernel(self):
        f = self.faiss
        try:
            level = f.SIMDConfig.get_level_name()
        except AttributeError:  # wheels before dynamic dispatch: one module per level
            level = "module " + ("/".join(sorted(f.loader.instruction_sets)) or "generic")
        return f"faiss {level}"

    def version(self):
        return f"faiss-cpu {self.faiss.__version__}"


class Usearch:
    def __init__(self, lib, dim, metric, m, ef_construction):
        import usearch
        from usearch.index import Index

        self.usearch = usearch
        self.index = Index(
            ndim=dim,
            metric={"l2": "l2sq", "ip": "ip", "cos": "cos"}[metric],
            dtype="f32" if lib == "usearch-f32" else "i8",
            connectivity=m,
            expansion_add=ef_construction,
        )
        self.train_seconds = 0.0

    def build(self, base, threads):
        self.index.add(np.arange(len(base), dtype=np.uint64), base, threads=threads)

    def search(self, queries, k, ef, threads):
        self.index.expansion_search = ef
        m = self.index.search(queries, k, threads=threads)
        keys = np.asarray(m.keys)
        return keys.reshape(1, -1) if keys.ndim == 1 else keys

    def kernel(self):
        return f"usearch {self.index.hardware_acceleration}"

    def version(self):
        return f"usearch {self.usearch.__version__}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, choices=sorted(TOOLS))
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
    ap.add_argument(
        "--min-seconds",
        type=float,
        default=0.0,
        help="repeat each ef's timed query loops until this many seconds have passed (0: one pass)",
    )
    a = ap.parse_args()

    base, queries = load(a.base), load(a.query)
    if base.shape[1] != queries.shape[1]:
        sys.exit(f"dimension mismatch: base {base.shape[1]}, queries {queries.shape[1]}")
    n, dim, k = base.shape[0], base.shape[1], a.k
    if not a.gt:
        sys.exit("run.py needs --gt (write one with `hnswx gt`)")
    gt = load(a.gt, ids=True)[:, :k]
    if len(gt) < len(queries):
        sys.exit(f"{a.gt}: {len(gt)} ground-truth rows for {len(queries)} queries")

    notes = []
    if a.metric == "cos":
        base, queries = normalized(base), normalized(queries)
        notes.append("cos: base and queries normalised before the build")
    if a.lib == "usearch-i8" and a.metric != "cos":
        scale = 127.0 / (float(np.abs(base).max()) or 1.0)
        base = np.clip(np.rint(base * scale), -127, 127).astype(np.int8)
        queries = np.clip(np.rint(queries * scale), -127, 127).astype(np.int8)
        notes.append(
            f"i8: quantised here as round(x * {scale:g}) (one global scale = 127 / largest "
            "|component| of the base) and handed over as int8; usearch's own f32 cast would "
            "normalise each vector, which changes l2/ip distances"
        )
    if a.lib == "faiss-sq8":
        notes.append("SQ8: ScalarQuantizer QT_8bit trained on the whole base set (train time inside build)")
    if a.lib in ("faiss-sq8", "usearch-i8"):
        notes.append("distances on 8-bit codes, no exact rerank")
    if base.dtype != np.int8:
        base = np.ascontiguousarray(base, dtype=np.float32)
        queries = np.ascontiguousarray(queries, dtype=np.float32)

    kind = Faiss if a.lib.startswith("faiss") else Usearch
    # Warm-up on 200 vectors before the memory reading: imports the library, pages in its code and
    # starts its thread pool, so that they are not counted as the index's memory.
    warm = kind(a.lib, dim, a.metric, a.m, a.ef_construction)
    warm.build(base[:200], a.threads)
    del warm
    before = rss()
    lib = kind(a.lib, dim, a.metric, a.m, a.ef_construction)
    t = time.perf_counter()
    lib.build(base, a.threads)
    seconds = time.perf_counter() - t
    after = rss()
    tool = TOOLS[a.lib]
    print(
        f"{tool} {n} × {dim} {a.metric}: built in {seconds:.2f} s on {a.threads} threads"
        + (f" (train {lib.train_seconds:.2f} s)" if lib.train_seconds else "")
        + f", {lib.kernel()}",
        flush=True,
    )

    efs = [int(x) for x in a.ef.split(",")]
    lib.search(queries[:1000], k, efs[0], 1)  # warm-up, as hnswx does
    runs = []
    for ef in efs:
        # Whole passes until --min-seconds (at least one), as hnswx bench does.
        t, passes = time.perf_counter(), 0
        while passes == 0 or time.perf_counter() - t < a.min_seconds:
            got = lib.search(queries, k, ef, 1)
            labels = got if passes == 0 else labels
            passes += 1
        qps_single = passes * len(queries) / (time.perf_counter() - t)
        t, passes = time.perf_counter(), 0
        while passes == 0 or time.perf_counter() - t < a.min_seconds:
            lib.search(queries, k, ef, a.threads)
            passes += 1
        qps_batch = passes * len(queries) / (time.perf_counter() - t)
        lat = []
        for i in range(len(queries)):
            q = queries[i : i + 1]
            t = time.perf_counter_ns()
            lib.search(q, k, ef, 1)
            lat.append((time.perf_counter_ns() - t) / 1000.0)
        lat = np.sort(np.array(lat))
        pct = lambda p: float(lat[min(len(lat), max(1, int(np.ceil(p * len(lat))))) - 1])
        labels = np.asarray(labels).astype(np.int64)
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
        "tool": tool,
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
            "bytes_per_vector": (after - before) / n if before and after else 0.0,
        },
        "hardware": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "threads_used": a.threads,
            "kernel": lib.kernel(),
            "compiler": f"{lib.version()}, numpy {np.__version__}, Python {platform.python_version()}",
            "os": f"{platform.system().lower()} {platform.machine()}",
        },
        "runs": runs,
        "notes": notes,
    }
    with open(a.json, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
