#!/usr/bin/env bash
# Opt-in interop check with the real hnswlib: bash benches/hnswlib/interop.sh [BASE QUERY SPACE]
# (default: ../shared/data/sift5k, space l2). Needs PyPI access the first time.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/hnswlib-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q hnswlib==0.8.0 numpy
fi
cargo build --release -q -p hnswx-cli
d=../shared/data/sift5k
"$venv/bin/python" benches/hnswlib/interop.py target/release/hnswx "${1:-$d/sift5k_base.fvecs}" \
  "${2:-$d/sift5k_query.fvecs}" "${3:-l2}"
