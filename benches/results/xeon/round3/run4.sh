#!/bin/bash
# Device run 4 (2026-11-26): tests of aabbd49 on AVX-512 / 16 cores; an
# alternating A/B of hnswx f32 and SQ8 (auto = AVX-512/VNNI, and --kernel avx2) against
# hnswlib's C++ driver (-march=x86-64-v4 and -v3) on saved graphs, 3 rounds, pinned; then the
# every-peer one-run compare, native and (time allowing) AVX2-only.
set -u
R=/tmp/res4; mkdir -p $R
exec > >(tee -a $OUT/log4.txt) 2>&1
trap 'cd /tmp && tar czf $OUT/run4.tgz res4 2>/dev/null' EXIT
B=$PWD/.dev/bin; S=.dev/data/sift5k; G=target/data/mixture-100k; X=$B/hnswx
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
left() { echo $(( ${BUDGET:-520} - ($(date +%s) - t0) )); }
el start; lscpu > $R/lscpu.txt; grep -E "Model name|^CPU\(s\)|Thread|Socket|L3|L2" $R/lscpu.txt
echo "flags: $(grep -m1 -o -w 'avx512[a-z_0-9]*\|avx_vnni\|amx[a-z_0-9]*\|avx2\|fma\|f16c' /proc/cpuinfo | sort -u | tr '\n' ' ')"
cat /sys/kernel/mm/transparent_hugepage/enabled; uptime
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
python3 -c 'import faiss, usearch, numpy; print("faiss", faiss.__version__, "usearch", usearch.__version__, "numpy", numpy.__version__)'

el tests
[ -n "${QUICK:-}" ] || for t in .dev/tests/*; do
  echo "== $t"; timeout 60 $t --nocapture 2>&1 | grep -E "test result|FAIL|failed|hnswx-kernels .*tests" | head -8
done

el data-and-graphs
mkdir -p $G /tmp/idx
[ -n "${QUICK:-}" ] || $X gen --n 100000 --queries 1000 --dim 128 --clusters 100 --spread 2.0 --seed 7 \
  --out-base $G/mixture-100k_base.fvecs --out-query $G/mixture-100k_query.fvecs | tail -1
[ -n "${QUICK:-}" ] || $X gt --base $G/mixture-100k_base.fvecs --query $G/mixture-100k_query.fvecs --k 100 --out $G/mixture-100k_gt.ivecs | tail -1
for set in sf $([ -n "${QUICK:-}" ] || echo mx); do
  if [ $set = sf ]; then base=$S/sift5k_base.fvecs q=$S/sq_query.fvecs gt=$S/sq_gt.ivecs; else base=$G/mixture-100k_base.fvecs q=$G/mixture-100k_query.fvecs gt=$G/mixture-100k_gt.ivecs; fi
  /usr/bin/time -f "$set hnswx f32 build %e s" $X build --base $base --threads 16 --out /tmp/idx/$set-f32.hnswx >/dev/null
  /usr/bin/time -f "$set hnswx sq8 build %e s" $X build --base $base --threads 16 --quantization sq8 --out /tmp/idx/$set-sq8.hnswx >/dev/null
  $B/hnswlib-sweep-v4 --base $base --query $q --gt $gt --metric l2 --ef 32 --threads 16 --json /tmp/hl.json --index /tmp/idx/$set.hl | grep -i -E "build|wall" | head -2
done

el ab
ab() { # set efs base q gt
  local set=$1 efs=$2 base=$3 q=$4 gt=$5
  for r in 1 2 3; do
    for t in f32-auto f32-avx2 sq8-auto sq8-avx2 hl-v4 hl-v3; do
      case $t in
        f32-auto) c=($X bench --index /tmp/idx/$set-f32.hnswx);;
        f32-avx2) c=($X bench --index /tmp/idx/$set-f32.hnswx --kernel avx2);;
        sq8-auto) c=($X bench --index /tmp/idx/$set-sq8.hnswx);;
        sq8-avx2) c=($X bench --index /tmp/idx/$set-sq8.hnswx --kernel avx2);;
        hl-v4) c=($B/hnswlib-sweep-v4 --base $base --metric l2 --json /tmp/hl.json --index /tmp/idx/$set.hl);;
        hl-v3) c=($B/hnswlib-sweep-v3 --base $base --metric l2 --json /tmp/hl.json --index /tmp/idx/$set.hl);;
      esac
      taskset -c ${CORE:-5} "${c[@]}" --query $q --gt $gt --ef $efs --threads 1 --min-seconds 0.3 $([ ${t:0:2} = hl ] || echo --no-verify) 2>&1 \
        | awk -v s=$set -v t=$t -v r=$r '/^ +[0-9]+ +[01]\.[0-9]+ /{print "AB", s, t, r, $1, $2, $3} /kernel:/{k=$0} /rror|unknown option|anic|lacks/{print "ERR", s, t, $0} END{if (r==1) print "KERNEL", s, t, k}'
    done
  done
}
[ -n "${QUICK:-}" ] && { ab sf 16,32 $S/sift5k_base.fvecs $S/sq_query.fvecs $S/sq_gt.ivecs; exit 0; }
ab sf 16,24,32,48,64 $S/sift5k_base.fvecs $S/sq_query.fvecs $S/sq_gt.ivecs
el ab-mixture
ab mx 16,24,32,48,96 $G/mixture-100k_base.fvecs $G/mixture-100k_query.fvecs $G/mixture-100k_gt.ivecs

el compare-native "(left $(left) s)"
[ $(left) -gt 90 ] && SETS="sift5k mixture-100k" DATA=.dev/data EF=10,16,24,32,48,64,96,128,192,256 HNSWX_BIN=$X \
  HNSWLIB_BIN=$B/hnswlib-sweep-v4 PYTHON=python3 OUT=$R/native timeout $(( $(left) > 230 ? 200 : $(left) - 30 )) \
  bash benches/compare.sh all 2>&1 | grep -E "^\| |^==|rror"
el compare-avx2 "(left $(left) s)"
if [ $(left) -gt 100 ]; then
  AVX2_ONLY=1 SETS="sift5k mixture-100k" DATA=.dev/data EF=10,16,24,32,48,64,96,128,192,256 HNSWX_BIN=$X \
    HNSWLIB_BIN=$B/hnswlib-sweep-v3 PYTHON=python3 OUT=$R timeout $(( $(left) - 15 )) bash benches/compare.sh all 2>&1 | grep -E "^\| |^==|rror"
fi
el done
