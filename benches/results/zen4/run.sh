#!/bin/bash
# Alternating rounds on the 2-core Zen 4 VM (AMD EPYC family 25 model 17, AVX-512 with VNNI;
# 2026-11-27, tenth session). data.sh first. Graphs built once with 2 threads (timed): hnswx
# f32/SQ8, hnswlib 0.8.0 C++ (-march=x86-64-v4), FAISS flat/SQ8 (PyPI faiss-cpu in /tmp/z4/venv).
# Then R rounds, each tool pinned to core 1 in turn: hnswx f32/SQ8 native (auto: AVX-512) and
# --kernel avx2, hnswlib v4 and v3 (AVX2 only) on one graph, FAISS flat/SQ8 (its own dispatch).
# Output: AB set tool round ef recall qps lines in $OUT (default /tmp/z4/ab.txt).
# TOOLS="..." picks the tools of a round (default the eight above; uf/ui are usearch f32/i8,
# uab.py, after a USEARCH=1 build).
set -u
# MINSEC: seconds each tool spends at each ef (default 0.2; the twelfth session used 0.5).
MINSEC=${MINSEC:-0.2}
cd /work/main
B=target; X=$B/release/hnswx; D=/tmp/z4/data; I=/tmp/z4/idx; P=/tmp/z4/venv/bin/python
F=benches/results/zen4/fab.py; U=benches/results/zen4/uab.py; OUT=${OUT:-/tmp/z4/ab.txt}; mkdir -p $I
met() { [ $1 = ml ] && echo ip || echo l2; }
if [ -z "${NOBUILD:-}" ]; then
for s in ${SETS:-sf fm mx ml}; do
  base=$D/${s}_base.fvecs m=$(met $s)
  /usr/bin/time -f "BUILD $s hnswx-f32 %e s" $X build --base $base --metric $m --threads 2 --out $I/$s-f32.hnswx >/dev/null
  /usr/bin/time -f "BUILD $s hnswx-sq8 %e s" $X build --base $base --metric $m --threads 2 --quantization sq8 --out $I/$s-sq8.hnswx >/dev/null
  /usr/bin/time -f "BUILD $s hnswlib %e s" $B/hnswlib-sweep-v4 --base $base --query $D/${s}_query.fvecs --gt $D/${s}_gt.ivecs --metric $m --ef 32 --threads 2 --json /tmp/z4/hl.json --index $I/$s.hl >/dev/null
  HNSWX_METRIC=$m $P $F build flat $base $I/$s-ff.faiss 2
  HNSWX_METRIC=$m $P $F build sq8 $base $I/$s-fs.faiss 2
done 2>&1 | tee -a /tmp/z4/build.txt
fi
# USEARCH=1: build the usearch graphs (f32, i8; uab.py) too, for the tools uf/ui below
# (eleventh session; the earlier rounds ran without them).
if [ -n "${USEARCH:-}" ]; then
for s in ${SETS:-sf fm mx ml}; do
  for k in f32 i8; do HNSWX_METRIC=$(met $s) $P $U build $k $D/${s}_base.fvecs $I/$s-u$k.usearch 2; done
done 2>&1 | tee -a /tmp/z4/build.txt
fi
ab() { # set efs round
  local s=$1 efs=$2 r=$3 q=$D/$1_query.fvecs gt=$D/$1_gt.ivecs base=$D/$1_base.fvecs m=$(met $1)
  for t in ${TOOLS:-f32-auto f32-avx2 sq8-auto sq8-avx2 hl-v4 hl-v3 ff fs}; do
    case $t in
      f32-auto) c=($X bench --index $I/$s-f32.hnswx);;
      f32-avx2) c=($X bench --index $I/$s-f32.hnswx --kernel avx2);;
      sq8-auto) c=($X bench --index $I/$s-sq8.hnswx);;
      sq8-avx2) c=($X bench --index $I/$s-sq8.hnswx --kernel avx2);;
      hl-v4) c=($B/hnswlib-sweep-v4 --base $base --metric $m --json /tmp/z4/hl.json --index $I/$s.hl);;
      hl-v3) c=($B/hnswlib-sweep-v3 --base $base --metric $m --json /tmp/z4/hl.json --index $I/$s.hl);;
    esac
    if [ $t = uf ] || [ $t = ui ]; then
      k=f32; [ $t = ui ] && k=i8
      HNSWX_METRIC=$m taskset -c 1 $P $U search $k $s $r $q $gt $I/$s-u$k.usearch $efs $MINSEC $base
      continue
    fi
    if [ $t = ff ] || [ $t = fs ]; then
      k=flat; [ $t = fs ] && k=sq8
      taskset -c 1 $P $F search $k $s $r $q $gt $I/$s-$t.faiss $efs $MINSEC
      continue
    fi
    taskset -c 1 "${c[@]}" --query $q --gt $gt --metric $m --ef $efs --threads 1 --min-seconds $MINSEC $([ ${t:0:2} = hl ] || echo --no-verify) 2>&1 \
      | awk -v s=$s -v t=$t -v r=$r '/^ +[0-9]+ +[01]\.[0-9]+ /{print "AB", s, t, r, $1, $2, $3} /kernel:/{k=$0} /rror|unknown option|anic|lacks/{print "ERR", s, t, $0} END{if (r==1) print "KERNEL", s, t, k}'
  done
}
for r in $(seq ${R:-5}); do
  echo "round $r $(date +%T)" >&2
  for s in ${SETS:-sf fm mx ml}; do
    case $s in sf) e=16,24,32,48,64;; fm) e=10,16,24,32,48,64;; mx) e=16,24,32,48,96;; ml) e=24,32,48,64,96,128;; esac
    ab $s $e $r
  done
done >> $OUT
