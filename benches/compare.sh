#!/usr/bin/env bash
# hnswx beside hnswlib, FAISS and usearch on one data set, in one run, on this machine.
#
#   bash benches/compare.sh [--avx2] NAME BASE QUERY GT METRIC [THREADS]
#   bash benches/compare.sh [--avx2] all   # every set in ../shared/data plus a generated one
#
# Tools, each writing benches/results/<NAME>-<tool>.json (the same report schema):
#   hnswx (exact f32), hnswx-sq8 (--quantization sq8: 8-bit codes, exact rerank),
#   hnswlib 0.8.0 (benches/hnswlib/run.py), and through benches/peers/run.py:
#   faiss-hnsw-flat (IndexHNSWFlat), faiss-hnsw-sq8 (IndexHNSWSQ, QT_8bit, trained on the base),
#   usearch-f32 and usearch-i8.
# Then <NAME>.svg (recall vs single-thread QPS) and the table at recall 0.90/0.95/0.99
# (hnswx compare). Same M = 16, ef_construction = 200, ef sweep and build/batch thread count for
# every tool, single-thread queries; nothing is tuned per data set.
#
# --avx2 (or AVX2_ONLY=1): everything on AVX2 only, so an AVX-512 machine can report the AVX2
# picture too; results go to benches/results/avx2/. hnswx runs with --kernel avx2; hnswlib is
# compiled from its source release without AVX-512 into its own venv (target/hnswlib-avx2-venv);
# FAISS is capped with FAISS_SIMD_LEVEL=AVX2 (FAISS_OPT_LEVEL=AVX2 for older per-level wheels).
# usearch has no switch to cap its SIMD level from Python (its NumKong/SimSIMD kernels are
# linked into its own module and dispatched at run time): on an AVX-512 machine its runs stay
# AVX-512 and the report's hardware.kernel says so (e.g. "usearch skylake"); the script warns.
#
# Environment: EF=10,32,128 overrides the ef sweep; PEERS="faiss-flat usearch-f32" picks the
# FAISS/usearch runs (default: all four; PEERS= runs none); OUT=dir writes the reports there
# instead of benches/results (a smoke test need not overwrite the committed ones). The Python
# packages are installed from PyPI into target/hnswlib-venv (target/hnswlib-avx2-venv with
# --avx2) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
avx2=${AVX2_ONLY:-0}
if [ "${1:-}" = --avx2 ]; then
  avx2=1
  shift
fi
if [ "${1:-}" != all ] && [ $# -lt 5 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d'
  exit 2
fi
out=${OUT:-benches/results}
venv=target/hnswlib-venv
kernel=auto
peer_pkgs="faiss-cpu==1.15.1 usearch==2.26.6 numpy"
if [ "$avx2" = 1 ]; then
  out=$out/avx2
  venv=target/hnswlib-avx2-venv
  kernel=avx2
  export FAISS_SIMD_LEVEL=AVX2 FAISS_OPT_LEVEL=AVX2
fi
mkdir -p "$out" target
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import hnswlib' 2>/dev/null; then
  if [ "$avx2" = 1 ]; then
    # hnswlib's setup.py adds -march=native unless HNSWLIB_NO_NATIVE is set; give it the native
    # flags ourselves with AVX-512 taken away (its headers then define USE_AVX, not USE_AVX512).
    # --no-binary/--no-cache-dir: never reuse a wheel built with -march=native.
    HNSWLIB_NO_NATIVE=1 CFLAGS="-march=native -mno-avx512f" CXXFLAGS="-march=native -mno-avx512f" \
      "$venv/bin/pip" install -q --no-cache-dir --no-binary hnswlib hnswlib==0.8.0
    so=$("$venv/bin/python" -c 'import hnswlib; print(hnswlib.__file__)')
    if command -v objdump >/dev/null && objdump -d "$so" | grep -q '%zmm'; then
      echo "$so uses AVX-512 registers: not an AVX2-only build" >&2
      exit 1
    fi
  else
    "$venv/bin/pip" install -q hnswlib==0.8.0
  fi
fi
if ! "$venv/bin/python" -c 'import faiss, usearch, numpy' 2>/dev/null; then
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q $peer_pkgs
fi
cargo build --release -q -p hnswx-cli
hnswx=${CARGO_TARGET_DIR:-target}/release/hnswx
EF=${EF:-10,16,24,32,48,64,96,128,192,256,384,512}
PEERS=${PEERS-faiss-flat faiss-sq8 usearch-f32 usearch-i8}
files=()

one() {
  local name=$1 base=$2 query=$3 gt=$4 metric=$5 threads=${6:-$(nproc)}
  local common=(--name "$name" --base "$base" --query "$query" --gt "$gt" --metric "$metric"
    --k 10 --m 16 --ef-construction 200 --ef "$EF" --threads "$threads")
  local reports=()
  echo "== $name ($metric, $threads threads, kernel $kernel)"
  "$hnswx" bench "${common[@]}" --kernel "$kernel" --json "$out/$name-hnswx.json"
  reports+=("$out/$name-hnswx.json")
  "$hnswx" bench "${common[@]}" --kernel "$kernel" --quantization sq8 --json "$out/$name-hnswx-sq8.json"
  reports+=("$out/$name-hnswx-sq8.json")
  "$venv/bin/python" benches/hnswlib/run.py "${common[@]}" --json "$out/$name-hnswlib.json"
  reports+=("$out/$name-hnswlib.json")
  if [ "$avx2" = 1 ]; then
    # run.py labels its build "-march=native"; say how this one was built.
    "$venv/bin/python" - "$out/$name-hnswlib.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["hardware"]["kernel"] = "hnswlib -march=native -mno-avx512f (AVX2 only)"
json.dump(r, open(sys.argv[1], "w"), indent=2)
PY
  fi
  local lib tool
  for lib in $PEERS; do
    case $lib in
      faiss-flat) tool=faiss-hnsw-flat ;;
      faiss-sq8) tool=faiss-hnsw-sq8 ;;
      usearch-f32 | usearch-i8) tool=$lib ;;
      *) echo "PEERS: unknown $lib (faiss-flat faiss-sq8 usearch-f32 usearch-i8)" >&2; exit 2 ;;
    esac
    "$venv/bin/python" benches/peers/run.py --lib "$lib" "${common[@]}" --json "$out/$name-$tool.json"
    reports+=("$out/$name-$tool.json")
    if [ "$avx2" = 1 ]; then
      "$venv/bin/python" - "$out/$name-$tool.json" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))["hardware"]["kernel"]
if k.split()[-1].lower() not in ("avx2", "haswell", "serial", "none"):
    print(f"warning: {sys.argv[1]}: ran with {k}, not AVX2 only", file=sys.stderr)
PY
    fi
  done
  "$hnswx" compare "${reports[@]}" -o "$out/$name.svg"
  files+=("${reports[@]}")
}

if [ "${1:-}" = all ]; then
  d=../shared/data
  one sift5k $d/sift5k/sift5k_base.fvecs $d/sift5k/sift5k_query.fvecs $d/sift5k/sift5k_groundtruth.ivecs l2
  one minilm-100k $d/minilm-100k/minilm-100k_base.fvecs $d/minilm-100k/minilm-100k_query.fvecs \
    $d/minilm-100k/minilm-100k_groundtruth.ivecs ip
  fm=target/data/fashion-mnist-784
  if [ ! -f $fm/fashion-mnist-784_base.fvecs ]; then
    mkdir -p $fm
    bash ../shared/tools/get-fashion-mnist.sh $fm
  fi
  one fashion-mnist-784 $fm/fashion-mnist-784_base.fvecs $fm/fashion-mnist-784_query.fvecs \
    $d/fashion-mnist-784/fashion-mnist-784_groundtruth.ivecs l2
  g=target/data/mixture-100k
  if [ ! -f $g/mixture-100k_gt.ivecs ]; then
    mkdir -p $g
    "$hnswx" gen --n 100000 --queries 1000 --dim 128 --clusters 100 --spread 2.0 --seed 7 \
      --out-base $g/mixture-100k_base.fvecs --out-query $g/mixture-100k_query.fvecs
    "$hnswx" gt --base $g/mixture-100k_base.fvecs --query $g/mixture-100k_query.fvecs --k 100 \
      --out $g/mixture-100k_gt.ivecs
  fi
  one mixture-100k $g/mixture-100k_base.fvecs $g/mixture-100k_query.fvecs $g/mixture-100k_gt.ivecs l2
  "$hnswx" compare "${files[@]}" -o "$out/all.svg"
else
  one "$@"
fi
