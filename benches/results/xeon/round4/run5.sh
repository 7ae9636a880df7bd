#!/bin/bash
# Device run 5 (2026-11-26, ninth session): fd676f1 on the AVX-512 / 16-core machine.
# 1 tests (release, stripped) while the data are made; 2 graphs built with 16 threads (timed):
# hnswx f32/SQ8, hnswlib, FAISS flat/SQ8 on sift5k (3,000 generated queries), fashion-mnist-784
# (2,000 of its queries) and the generated mixture-100k; 3 alternating rounds pinned to one core:
# hnswx f32/SQ8 auto and --kernel avx2, hnswx without the look-ahead (fm, mx), hnswlib C++ v4/v3,
# FAISS flat/SQ8 (native).
set -u
R=/tmp/res5; mkdir -p $R /tmp/idx
exec > >(tee -a $OUT/log5.txt) 2>&1
B=$PWD/.dev/bin; X=$B/hnswx; D=/tmp/data; mkdir -p $D
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
left() { echo $(( ${BUDGET:-470} - ($(date +%s) - t0) )); }
el start; lscpu > $OUT/lscpu.txt; grep -E "Model name|^CPU\(s\)|Thread|Socket|L3|L2|MHz" $OUT/lscpu.txt
echo "flags: $(grep -m1 -o -w 'avx512[a-z_0-9]*\|avx_vnni\|amx[a-z_0-9]*\|avx2\|fma\|f16c' /proc/cpuinfo | sort -u | tr '\n' ' ')"
cat /sys/kernel/mm/transparent_hugepage/enabled; uptime; free -g | head -2
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
python3 -c 'import faiss, numpy; print("faiss", faiss.__version__, "numpy", numpy.__version__)'

el tests-in-background
mkdir -p /tmp/t && tar xJf .dev/tests.txz -C /tmp/t
( for t in /tmp/t/tests/*; do
    s=$(date +%s); o=$(timeout 120 $t 2>&1); rc=$?
    echo "== $(basename $t) rc=$rc $(( $(date +%s) - s )) s: $(echo "$o" | grep -E '^test result' | tr '\n' ' ')"
    echo "$o" | grep -E "FAILED|panicked|failed" | head -5
    echo "$o" | grep -i -E -m3 "kernel|vnni|avx512" | head -3
  done > $R/tests.txt 2>&1 ) &
TP=$!

el data
S=.dev/data/sift5k
python3 - <<'P'
import lzma, numpy as np
def w(p, a):
    n, d = a.shape; o = np.empty((n, d + 1), np.float32); o[:, 1:] = a; o[:, :1] = np.array([d], np.int32).view(np.float32); o.tofile(p)
w("/tmp/data/fm_base.fvecs", np.frombuffer(lzma.open(".dev/fm/base.u8.xz").read(), np.uint8).reshape(-1, 784).astype(np.float32))
w("/tmp/data/fm_query.fvecs", np.fromfile(".dev/fm/q2k.u8", np.uint8).reshape(-1, 784).astype(np.float32))
print("fashion written")
P
$X gen --n 100000 --queries 1000 --dim 128 --clusters 100 --spread 2.0 --seed 7 \
  --out-base $D/mx_base.fvecs --out-query $D/mx_query.fvecs | tail -1
$X gt --base $D/mx_base.fvecs --query $D/mx_query.fvecs --k 100 --out $D/mx_gt.ivecs | tail -1
cp $S/sift5k_base.fvecs $D/sf_base.fvecs; cp $S/sq_query.fvecs $D/sf_query.fvecs; cp $S/sq_gt.ivecs $D/sf_gt.ivecs
cp .dev/fm/gt2k.ivecs $D/fm_gt.ivecs
el wait-tests; wait $TP; cat $R/tests.txt

el builds
for s in sf fm mx; do
  base=$D/${s}_base.fvecs
  /usr/bin/time -f "$s hnswx f32 build %e s" $X build --base $base --threads 16 --out /tmp/idx/$s-f32.hnswx >/dev/null
  /usr/bin/time -f "$s hnswx sq8 build %e s" $X build --base $base --threads 16 --quantization sq8 --out /tmp/idx/$s-sq8.hnswx >/dev/null
  $B/hnswlib-sweep-v4 --base $base --query $D/${s}_query.fvecs --gt $D/${s}_gt.ivecs --metric l2 --ef 32 --threads 16 --json /tmp/hl.json --index /tmp/idx/$s.hl | grep -i -E "build" | head -2
  python3 .dev/fab.py build flat $base /tmp/idx/$s-ff.faiss 16
  python3 .dev/fab.py build sq8 $base /tmp/idx/$s-fs.faiss 16
done
ls -la /tmp/idx

ab() { # set efs round
  local s=$1 efs=$2 r=$3 q=$D/$1_query.fvecs gt=$D/$1_gt.ivecs base=$D/$1_base.fvecs
  for t in f32-auto f32-nolook f32-avx2 sq8-auto sq8-nolook sq8-avx2 hl-v4 hl-v3 ff fs; do
    [ $s = sf ] && [ ${t#*-} = nolook ] && continue
    case $t in
      f32-auto) c=($X bench --index /tmp/idx/$s-f32.hnswx);;
      f32-nolook) c=($B/hnswx-nolook bench --index /tmp/idx/$s-f32.hnswx);;
      f32-avx2) c=($X bench --index /tmp/idx/$s-f32.hnswx --kernel avx2);;
      sq8-auto) c=($X bench --index /tmp/idx/$s-sq8.hnswx);;
      sq8-nolook) c=($B/hnswx-nolook bench --index /tmp/idx/$s-sq8.hnswx);;
      sq8-avx2) c=($X bench --index /tmp/idx/$s-sq8.hnswx --kernel avx2);;
      hl-v4) c=($B/hnswlib-sweep-v4 --base $base --metric l2 --json /tmp/hl.json --index /tmp/idx/$s.hl);;
      hl-v3) c=($B/hnswlib-sweep-v3 --base $base --metric l2 --json /tmp/hl.json --index /tmp/idx/$s.hl);;
    esac
    if [ $t = ff ] || [ $t = fs ]; then
      k=flat; [ $t = fs ] && k=sq8
      taskset -c ${CORE:-5} python3 .dev/fab.py search $k $s $r $q $gt /tmp/idx/$s-$t.faiss $efs 0.2
      continue
    fi
    taskset -c ${CORE:-5} "${c[@]}" --query $q --gt $gt --ef $efs --threads 1 --min-seconds 0.2 $([ ${t:0:2} = hl ] || echo --no-verify) 2>&1 \
      | awk -v s=$s -v t=$t -v r=$r '/^ +[0-9]+ +[01]\.[0-9]+ /{print "AB", s, t, r, $1, $2, $3} /kernel:/{k=$0} /rror|unknown option|anic|lacks/{print "ERR", s, t, $0} END{if (r==1) print "KERNEL", s, t, k}'
  done
}
for r in 1 2 3 4; do
  [ $r -gt 2 ] && [ $(left) -lt 110 ] && break
  el "round $r (left $(left) s)"
  ab sf 16,24,32,48,64 $r
  ab fm 10,16,24,32,48,64 $r
  ab mx 16,24,32,48,96 $r
done
el done
