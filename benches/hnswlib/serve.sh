#!/usr/bin/env bash
# Opt-in (not CI): hnswlib 0.8.0 under the load of `hnswx serve-bench`, then hnswx itself with
# the same arguments, one after the other on the same machine.
#
#   bash benches/hnswlib/serve.sh BASE.fvecs QUERY.fvecs [READ_RATE WRITE_RATE DURATION]
#
# READ_RATE 0 = readers back to back; WRITE_RATE 0 = 10% of the frozen read rate. Downloads
# hnswlib's source release from PyPI once (pip download, no install) into target/, and
# compiles benches/hnswlib/serve.cpp against its headers with -O3 -march=native.
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${1:?usage: serve.sh BASE.fvecs QUERY.fvecs [READ_RATE WRITE_RATE DURATION]}
query=${2:?usage: serve.sh BASE.fvecs QUERY.fvecs [READ_RATE WRITE_RATE DURATION]}
read_rate=${3:-0}
write_rate=${4:-0}
duration=${5:-10}
. benches/hnswlib/headers.sh
c++ -O3 -march=native -std=c++17 -pthread -I "$hnswlib_src" benches/hnswlib/serve.cpp -o target/hnswlib-serve
cargo build --release -q -p hnswx-cli
rate_args=()
[ "$read_rate" != 0 ] && rate_args+=(--read-rate "$read_rate")
[ "$write_rate" != 0 ] && rate_args+=(--write-rate "$write_rate")
echo "== hnswlib"
target/hnswlib-serve "$base" "$query" read_rate="$read_rate" write_rate="$write_rate" duration="$duration"
echo
echo "== hnswx"
target/release/hnswx serve-bench --base "$base" --query "$query" --duration "$duration" "${rate_args[@]}" | sed '/^per second/,$d'
