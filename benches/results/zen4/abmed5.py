import sys, statistics as st, collections, math
d=collections.defaultdict(dict); rec={}
for l in open(sys.argv[1]):
    if not l.startswith("AB "): continue
    _,s,t,r,ef,R,q=l.split(); d[(s,t,int(ef))][int(r)]=float(q); rec[(s,t,int(ef))]=float(R)
def at(s,t,target,fn):
    efs=sorted(e for (ss,tt,e) in d if ss==s and tt==t)
    pts=[(rec[(s,t,e)], fn(d[(s,t,e)])) for e in efs]
    for (r0,q0),(r1,q1) in zip(pts,pts[1:]):
        if r0<=target<=r1:
            f=(target-r0)/(r1-r0); return math.exp(math.log(q0)+f*(math.log(q1)-math.log(q0)))
tools=["f32-auto","f32-nolook","f32-avx2","sq8-auto","sq8-nolook","sq8-avx2","hl-v4","hl-v3","faiss-flat","faiss-sq8","usearch-f32","usearch-i8"]
rounds=sorted({r for v in d.values() for r in v})
for s in [x for x in ["sf","fm","mx","ml"] if any(k[0]==x for k in d)]:
    tl=[t for t in tools if any(ss==s and tt==t for (ss,tt,e) in d)]
    print(s, "QPS @0.95, median over rounds", rounds)
    m={t:at(s,t,0.95,lambda v: st.median(v.values())) for t in tl}
    fmt=lambda x: "n/a" if x is None else "%.0f" % x
    for t in tl: print("  %-10s %8s  per round: %s" % (t, fmt(m[t]), " ".join(fmt(at(s,t,0.95,lambda v: v[r])) for r in rounds)))
    def rr(a,b):
        xs=[at(s,a,0.95,lambda v: v[r])/at(s,b,0.95,lambda v: v[r]) for r in rounds]
        return "%.2f (rounds %s)" % (st.median(xs), " ".join("%.2f"%x for x in xs))
    have=lambda *ts: all(t in tl for t in ts)
    pairs=[("native: f32/hl-v4","f32-auto","hl-v4"),("        sq8/hl-v4","sq8-auto","hl-v4"),
           ("        f32/faiss-flat","f32-auto","faiss-flat"),("        sq8/faiss-sq8","sq8-auto","faiss-sq8"),
           ("        f32/usearch-f32","f32-auto","usearch-f32"),("        sq8/usearch-i8","sq8-auto","usearch-i8"),
           ("avx2:   f32/hl-v3","f32-avx2","hl-v3"),("        sq8/hl-v3","sq8-avx2","hl-v3"),
           ("look-ahead on/off: f32","f32-auto","f32-nolook"),("                   sq8","sq8-auto","sq8-nolook")]
    for label,a,b in pairs:
        if not have(a,b): continue
        if any(at(s,t,0.95,lambda v: v[r]) is None for t in (a,b) for r in rounds):
            print("  %s n/a (%s or %s does not reach 0.95 in every round)" % (label,a,b)); continue
        print("  %s %s" % (label, rr(a,b)))
    med=" ".join("%s/%s %.2f" % (a,b,m[a]/m[b]) for _,a,b in pairs if have(a,b) and m[a] and m[b])
    print("  ratio of medians:", med)
