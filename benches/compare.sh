#!/usr/bin/env bash
# hnswx and hnswlib side by side on one data set, in one run, on this machine.
#
#   bash benches/compare.sh NAME BASE QUERY GT METRIC [THREADS]
#   bash benches/compare.sh all          # every set in ../shared/data plus a generated one
#
# Writes benches/results/<NAME>-{hnswx,hnswlib}.json, <NAME>.svg (recall vs single-thread
# QPS) and prints the table at recall 0.90/0.95/0.99 (hnswx compare). Same M = 16,
# ef_construction = 200, ef sweep and thread count for both; nothing is tuned per data set.
# hnswlib is installed from PyPI into target/hnswlib-venv the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benches/results
mkdir -p "$out" target
venv=target/hnswlib-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q hnswlib==0.8.0 numpy
fi
cargo build --release -q -p hnswx-cli
hnswx=target/release/hnswx
EF=10,16,24,32,48,64,96,128,192,256,384,512

one() {
  local name=$1 base=$2 query=$3 gt=$4 metric=$5 threads=${6:-$(nproc)}
  echo "== $name ($metric, $threads threads)"
  "$hnswx" bench --name "$name" --base "$base" --query "$query" --gt "$gt" --metric "$metric" \
    --k 10 --m 16 --ef-construction 200 --ef "$EF" --threads "$threads" --json "$out/$name-hnswx.json"
  "$venv/bin/python" benches/hnswlib/run.py --name "$name" --base "$base" --query "$query" --gt "$gt" \
    --metric "$metric" --k 10 --m 16 --ef-construction 200 --ef "$EF" --threads "$threads" \
    --json "$out/$name-hnswlib.json"
  "$hnswx" compare "$out/$name-hnswx.json" "$out/$name-hnswlib.json" -o "$out/$name.svg"
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
  "$hnswx" compare "$out"/*-hnswx.json "$out"/*-hnswlib.json -o "$out/all.svg"
else
  [ $# -ge 5 ] || { sed -n 2,10p "$0"; exit 2; }
  one "$@"
fi
