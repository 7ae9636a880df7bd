#!/bin/bash
# b7f1ee3 on the Xeon: the look-ahead threshold read from its cache (expect 75 MiB: off for
# the mixture) against HNSWX_LOOK_AHEAD_FROM=0 (always on), alternating, pinned.
X=$PWD/.dev2/hnswx; D=/tmp/d; mkdir -p $D
grep -H . /sys/devices/system/cpu/cpu0/cache/index*/{level,size} | tr '\n' ' '; echo
$X gen --n 100000 --queries 1000 --dim 128 --clusters 100 --spread 2.0 --seed 7 --out-base $D/b.fvecs --out-query $D/q.fvecs | tail -1
$X gt --base $D/b.fvecs --query $D/q.fvecs --k 100 --out $D/g.ivecs | tail -1
for k in f32 sq8; do q=none; [ $k = sq8 ] && q=sq8; $X build --base $D/b.fvecs --threads 16 --quantization $q --out $D/$k.hnswx > /dev/null; done
for r in 1 2 3 4; do for k in f32 sq8; do for v in auto la0; do
  e=; [ $v = la0 ] && e=0
  HNSWX_LOOK_AHEAD_FROM=$e taskset -c 5 $X bench --index $D/$k.hnswx --query $D/q.fvecs --gt $D/g.ivecs --ef 24,32,48 --threads 1 --min-seconds 0.2 --no-verify 2>&1 | awk -v t=$k-$v -v r=$r '/^ +[0-9]+ +[01]\.[0-9]+ /{print "AB mx", t, r, $1, $2, $3}'
done; done; done
