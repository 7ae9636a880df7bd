# uab.py build KIND BASE IDX THREADS | search KIND SET ROUND QUERY GT IDX EFS MINSEC
# usearch 2.26.6 (PyPI), as benches/peers/run.py builds it: KIND f32 or i8, connectivity 16,
# expansion_add 200; i8 quantised here with one global scale (round(x * 127 / max |base|), the
# same for the queries: usearch's own cast would normalise each vector). HNSWX_METRIC=ip in the
# environment: inner product ('ip') instead of 'l2sq'. No rerank. The index is saved by
# `build` and restored by `search`, so the rounds reuse one graph, as for the other tools.
import os, sys, time, numpy as np
from usearch.index import Index
metric = "ip" if os.environ.get("HNSWX_METRIC") == "ip" else "l2sq"
def vecs(p, dt):
    a = np.fromfile(p, dtype=np.int32); d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].view(dt).copy()
def prepared(x, base, kind):
    if kind == "f32":
        return np.ascontiguousarray(x, dtype=np.float32)
    scale = 127.0 / (float(np.abs(base).max()) or 1.0)
    return np.clip(np.rint(x * scale), -127, 127).astype(np.int8)
mode, kind = sys.argv[1], sys.argv[2]
if mode == "build":
    basef, idxf, th = sys.argv[3], sys.argv[4], int(sys.argv[5])
    b = vecs(basef, np.float32)
    ix = Index(ndim=b.shape[1], metric=metric, dtype=kind, connectivity=16, expansion_add=200)
    x = prepared(b, b, kind); t = time.perf_counter()
    ix.add(np.arange(len(x), dtype=np.uint64), x, threads=th)
    print(f"usearch-{kind} build {time.perf_counter() - t:.2f} s ({th} threads)", flush=True)
    ix.save(idxf)
else:
    st, r, query, gt, idxf, efs, minsec = sys.argv[3:10]
    basef = sys.argv[10]
    q = vecs(query, np.float32); g = vecs(gt, np.int32)[:, :10]; minsec = float(minsec)
    q = prepared(q, vecs(basef, np.float32), kind)
    ix = Index.restore(idxf)
    if r == "1":
        print("KERNEL", st, "usearch-" + kind, ix.hardware_acceleration, flush=True)
    ix.search(q[:200], 10, threads=1)
    for ef in [int(x) for x in efs.split(",")]:
        ix.expansion_search = ef
        n, t = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - t < minsec:
            m = ix.search(q, 10, threads=1); n += 1
            if n == 1:
                I = np.asarray(m.keys)
                rec = np.mean([len(set(I[i]) & set(g[i])) / 10 for i in range(len(q))])
        dt = time.perf_counter() - t
        print(f"AB {st} usearch-{kind} {r} {ef} {rec:.4f} {n * len(q) / dt:.0f}", flush=True)
