# fab.py build KIND BASE IDX THREADS | search KIND SET ROUND QUERY GT IDX EFS MINSEC
# KIND: flat (IndexHNSWFlat) or sq8 (IndexHNSWSQ QT_8bit, trained on the base); M 16, efC 200.
# HNSWX_METRIC=ip in the environment: inner product (METRIC_INNER_PRODUCT) instead of L2.
import os, sys, time, numpy as np, faiss
metric = faiss.METRIC_INNER_PRODUCT if os.environ.get("HNSWX_METRIC") == "ip" else faiss.METRIC_L2
def vecs(p, dt):
    a = np.fromfile(p, dtype=np.int32); d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].view(dt).copy()
mode, kind = sys.argv[1], sys.argv[2]
if mode == "build":
    base, idxf, th = sys.argv[3], sys.argv[4], int(sys.argv[5])
    b = vecs(base, np.float32); faiss.omp_set_num_threads(th); t = time.perf_counter()
    if kind == "flat":
        ix = faiss.IndexHNSWFlat(b.shape[1], 16, metric)
    else:
        ix = faiss.IndexHNSWSQ(b.shape[1], faiss.ScalarQuantizer.QT_8bit, 16, metric); ix.train(b)
    ix.hnsw.efConstruction = 200; ix.add(b)
    print(f"faiss-{kind} build {time.perf_counter() - t:.2f} s ({th} threads)", flush=True)
    faiss.write_index(ix, idxf)
else:
    st, r, query, gt, idxf, efs, minsec = sys.argv[3:10]
    q = vecs(query, np.float32); g = vecs(gt, np.int32)[:, :10]; minsec = float(minsec)
    faiss.omp_set_num_threads(1); ix = faiss.read_index(idxf)
    if r == "1":
        try: print("KERNEL", st, "faiss-" + kind, faiss.get_compile_options(), flush=True)
        except Exception as e: print("KERNEL", st, "faiss-" + kind, e)
    ix.search(q[:200], 10)
    for ef in [int(x) for x in efs.split(",")]:
        ix.hnsw.efSearch = ef
        n, t = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - t < minsec:
            D, I = ix.search(q, 10); n += 1
            if n == 1: rec = np.mean([len(set(I[i]) & set(g[i])) / 10 for i in range(len(q))])
        dt = time.perf_counter() - t
        print(f"AB {st} faiss-{kind}{sys.argv[10] if len(sys.argv) > 10 else ''} {r} {ef} {rec:.4f} {n * len(q) / dt:.0f}", flush=True)
