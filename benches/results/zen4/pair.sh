#!/bin/bash
# usage: pair.sh rounds idx query gt metric ef binA binB -> per-round B/A QPS ratio (order alternates), median
rounds=$1 idx=$2 q=$3 gt=$4 metric=$5 ef=$6 A=$7 B=$8
run() { taskset -c 1 $1 bench --index $idx --query $q --gt $gt --metric $metric --ef $ef --threads 1 --no-verify --min-seconds 0.25 2>&1 | grep -E "^ +[0-9]+ +[01]\." | awk '{print $3}'; }
for r in $(seq $rounds); do
  if [ $((r % 2)) -eq 1 ]; then a=$(run $A); b=$(run $B); else b=$(run $B); a=$(run $A); fi
  echo "$a $b"
done | python3 -c '
import sys, statistics as st
rs=[]; A=[]; B=[]
for l in sys.stdin:
    a,b=map(float,l.split()); A.append(a); B.append(b); rs.append(b/a)
rs.sort()
print("A median %.0f  B median %.0f  B/A per-round median %.3f  (quartiles %.3f..%.3f, n=%d, B faster in %d)" % (st.median(A), st.median(B), st.median(rs), rs[len(rs)//4], rs[3*len(rs)//4], len(rs), sum(r>1 for r in rs)))
'
