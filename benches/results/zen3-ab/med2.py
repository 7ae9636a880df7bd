import sys, statistics, collections
d=collections.defaultdict(lambda: collections.defaultdict(list)); rec={}
for line in open(sys.argv[1]):
    p=line.split()
    if len(p)<2: continue
    for kv in p[1:]:
        ef,q,r=kv.split(':'); d[p[0]][int(ef)].append(float(q)); rec[(p[0],int(ef))]=float(r)
tools=list(d); efs=sorted(d[tools[0]])
med={t:{ef:statistics.median(d[t][ef]) for ef in efs} for t in tools}
print(f"{sys.argv[1]}: {len(d[tools[0]][efs[0]])} rounds, medians (recall)")
for ef in efs:
    print(f"  ef {ef:>4}: "+"  ".join(f"{t} {med[t][ef]:>7.0f} ({rec[(t,ef)]:.4f})" for t in tools))
def at(t,target):
    pts=sorted((rec[(t,ef)],med[t][ef]) for ef in efs)
    for (r0,q0),(r1,q1) in zip(pts,pts[1:]):
        if r0<=target<=r1:
            if r1==r0: return q0
            import math
            w=(target-r0)/(r1-r0); return math.exp(math.log(q0)*(1-w)+math.log(q1)*w)
    return None
for target in [0.90,0.95,0.99]:
    v={t:at(t,target) for t in tools}
    if all(v.values()):
        print(f"  @{target}: "+"  ".join(f"{t} {v[t]:.0f}" for t in tools)+f"   f32/hnswlib {v['f32']/v['hnswlib']:.2f}  sq8/hnswlib {v['sq8']/v['hnswlib']:.2f}")
