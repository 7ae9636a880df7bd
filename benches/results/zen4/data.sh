#!/bin/bash
# Data for the Zen 4 alternating rounds (2026-11-27, tenth session) in /tmp/z4/data:
#   sf: sift5k's base, 3,000 generated queries (mean of two random base vectors + Gaussian noise,
#       sigma 8, numpy seed 11), exact top-100 by `hnswx gt`
#   fm: fashion-mnist-784 (../shared/tools/get-fashion-mnist.sh), its first 2,000 queries, the
#       shared ground truth's first 2,000 rows
#   mx: the generated mixture-100k (as benches/compare.sh makes it)
#   ml: minilm-100k from ../shared/data (inner product)
set -euo pipefail
cd /work/main
X=target/release/hnswx; S=../shared/data; D=/tmp/z4/data; P=/tmp/z4/venv/bin/python
mkdir -p $D target/data/fashion-mnist-784
$P - <<'PY'
import numpy as np
def rd(p, dt):
    a = np.fromfile(p, dtype=np.int32); d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].view(dt).copy()
def w(p, a):
    n, d = a.shape; o = np.empty((n, d + 1), np.float32); o[:, 1:] = a
    o[:, :1] = np.array([d], np.int32).view(np.float32); o.tofile(p)
b = rd("../shared/data/sift5k/sift5k_base.fvecs", np.float32)
r = np.random.default_rng(11); i = r.integers(0, len(b), (3000, 2))
w("/tmp/z4/data/sf_query.fvecs", ((b[i[:, 0]] + b[i[:, 1]]) / 2 + r.normal(0, 8, (3000, b.shape[1]))).astype(np.float32))
PY
cp $S/sift5k/sift5k_base.fvecs $D/sf_base.fvecs
$X gt --base $D/sf_base.fvecs --query $D/sf_query.fvecs --k 100 --out $D/sf_gt.ivecs | tail -1
bash ../shared/tools/get-fashion-mnist.sh target/data/fashion-mnist-784 | tail -1
cp target/data/fashion-mnist-784/fashion-mnist-784_base.fvecs $D/fm_base.fvecs
$P - <<'PY'
import numpy as np
q = np.fromfile("target/data/fashion-mnist-784/fashion-mnist-784_query.fvecs", np.int32).reshape(-1, 785)
q[:2000].tofile("/tmp/z4/data/fm_query.fvecs")
g = np.fromfile("../shared/data/fashion-mnist-784/fashion-mnist-784_groundtruth.ivecs", np.int32)
g = g.reshape(-1, g[0] + 1); g[:2000].tofile("/tmp/z4/data/fm_gt.ivecs")
PY
$X gen --n 100000 --queries 1000 --dim 128 --clusters 100 --spread 2.0 --seed 7 \
  --out-base $D/mx_base.fvecs --out-query $D/mx_query.fvecs | tail -1
$X gt --base $D/mx_base.fvecs --query $D/mx_query.fvecs --k 100 --out $D/mx_gt.ivecs | tail -1
ln -sf /work/shared/data/minilm-100k/minilm-100k_base.fvecs $D/ml_base.fvecs
ln -sf /work/shared/data/minilm-100k/minilm-100k_query.fvecs $D/ml_query.fvecs
ln -sf /work/shared/data/minilm-100k/minilm-100k_groundtruth.ivecs $D/ml_gt.ivecs
ls -la $D
