#!/usr/bin/env bash
# ab2.sh NAME ROUNDS EFS HX_F32 HX_SQ8 HL_INDEX BASE QUERY GT METRIC -> /tmp/ab/NAME.txt (tool ef:qps:recall)
set -euo pipefail
name=$1 rounds=$2 efs=$3 hxf=$4 hxs=$5 hl=$6 base=$7 query=$8 gt=$9 metric=${10}
out=/tmp/ab/$name.txt; : > $out
hx=/work/main/target/release/hnswx
for r in $(seq $rounds); do
  for t in f32 sq8 hnswlib; do
    case $t in
      f32) cmd=($hx bench --index $hxf --no-verify --query $query --gt $gt --ef $efs --threads 1 --min-seconds 0.5);;
      sq8) cmd=($hx bench --index $hxs --no-verify --query $query --gt $gt --ef $efs --threads 1 --min-seconds 0.5);;
      hnswlib) cmd=(/work/main/target/hnswlib-sweep-v3 --base $base --query $query --gt $gt --metric $metric --ef $efs --threads 1 --json /tmp/ab/hl.json --index $hl --min-seconds 0.5);;
    esac
    echo -n "$t " >> $out
    taskset -c 1 "${cmd[@]}" 2>/dev/null | awk '/^ +[0-9]+ +0\./{printf "%s:%s:%s ", $1, $3, $2} END{print ""}' >> $out
  done
done
