#!/usr/bin/env bash
# Builds the C++ hnswlib driver (benches/hnswlib/sweep.cpp) against hnswlib 0.8.0's headers
# into two static binaries that run on any x86-64 Linux without Python or a compiler:
#
#   target/hnswlib-sweep-v4   -O3 -march=x86-64-v4: AVX-512 (hnswlib's USE_AVX512 path)
#   target/hnswlib-sweep-v3   -O3 -march=x86-64-v3: AVX2 + FMA only (hnswlib's USE_AVX path)
#
#   bash benches/hnswlib/sweep.sh            # then: HNSWLIB_BIN=target/hnswlib-sweep-v4 bash benches/compare.sh ...
#
# The v3 object file is checked with objdump: no %zmm register anywhere in the driver or in
# hnswlib's code (all of it is in that object: hnswlib is header-only). The static C library
# linked in carries its own AVX-512 variants of memcpy/strlen and the like, which glibc picks
# at run time only on CPUs that have AVX-512; they are listed, not counted as a failure.
# Links with -static; where that fails (no static libc), with -static-libstdc++ -static-libgcc
# and says so (the binary then needs the target's glibc to be as new as this one's).
# Each binary refuses to run on a CPU without its instruction set; `--print-kernel` says how
# it was compiled. Needs the network once, to fetch hnswlib's source release (headers.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/hnswlib/headers.sh
cxx=${CXX:-c++}
mkdir -p target
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf '#include <thread>\nint main() { std::thread t([] {}); t.join(); }\n' >"$tmp/t.cpp"
if "$cxx" -std=c++17 -pthread -static "$tmp/t.cpp" -o "$tmp/t" 2>"$tmp/err" && "$tmp/t"; then
  link=(-static)
else
  echo "warning: -static does not link here ($(head -1 "$tmp/err")); falling back to -static-libstdc++ -static-libgcc" >&2
  link=(-static-libstdc++ -static-libgcc)
fi

for level in v4 v3; do
  bin=target/hnswlib-sweep-$level
  flags="-O3 -march=x86-64-$level"
  "$cxx" -std=c++17 -pthread $flags -I "$hnswlib_src" \
    -DSWEEP_KERNEL="\"hnswlib 0.8.0 C++ $flags\"" -DSWEEP_BUILD="\"linked ${link[*]}\"" \
    -c benches/hnswlib/sweep.cpp -o "$tmp/sweep-$level.o"
  zmm=$(objdump -d --no-show-raw-insn "$tmp/sweep-$level.o" | grep -c '%zmm' || true)
  if [ "$level" = v3 ] && [ "$zmm" != 0 ]; then
    echo "$bin: $zmm instructions on %zmm registers in the driver/hnswlib code: not AVX2 only" >&2
    exit 1
  fi
  if [ "$level" = v4 ] && [ "$zmm" = 0 ]; then
    echo "$bin: no %zmm instruction in the driver/hnswlib code: hnswlib's AVX-512 path is missing" >&2
    exit 1
  fi
  "$cxx" -pthread "${link[@]}" "$tmp/sweep-$level.o" -o "$bin"
  echo "$bin: $($bin --print-kernel | paste -sd ';'); $zmm %zmm instructions in its own code"
done
# Where the linked v3 binary has %zmm at all: which functions (expected: glibc's run-time
# dispatched AVX-512/EVEX string and memory routines only).
objdump -d --no-show-raw-insn target/hnswlib-sweep-v3 | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $2 }
  /%zmm/ { n[fn]++ }
  END { for (f in n) print "  " f, n[f] }' | sort >"$tmp/zmm"
if [ -s "$tmp/zmm" ]; then
  echo "target/hnswlib-sweep-v3: %zmm only in these linked library functions (run-time dispatched):"
  cat "$tmp/zmm"
  if grep -v -i -E 'avx512|evex|_skx|x86_64_v4' "$tmp/zmm" >&2; then
    echo "target/hnswlib-sweep-v3: the functions above use %zmm and are not glibc's AVX-512 variants" >&2
    exit 1
  fi
fi
