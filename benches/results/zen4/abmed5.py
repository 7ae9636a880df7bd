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
tools=["f32-auto","f32-nolook","f32-avx2","sq8-auto","sq8-nolook","sq8-avx2","hl-v4","hl-v3","faiss-flat","faiss-sq8"]
rounds=sorted({r for v in d.values() for r in v})
for s in [x for x in ["sf","fm","mx","ml"] if any(k[0]==x for k in d)]:
    tl=[t for t in tools if any(ss==s and tt==t for (ss,tt,e) in d)]
    print(s, "QPS @0.95, median over rounds", rounds)
    m={t:at(s,t,0.95,lambda v: st.median(v.values())) for t in tl}
    for t in tl: print("  %-10s %8.0f  per round: %s" % (t, m[t], " ".join("%.0f"%at(s,t,0.95,lambda v: v[r]) for r in rounds)))
    def rr(a,b):
        xs=[at(s,a,0.95,lambda v: v[r])/at(s,b,0.95,lambda v: v[r]) for r in rounds]
        return "%.2f (rounds %s)" % (st.median(xs), " ".join("%.2f"%x for x in xs))
    print("  native: f32/hl-v4 %s" % rr("f32-auto","hl-v4"))
    print("          sq8/hl-v4 %s" % rr("sq8-auto","hl-v4"))
    print("          f32/faiss-flat %s" % rr("f32-auto","faiss-flat"))
    print("          sq8/faiss-sq8 %s" % rr("sq8-auto","faiss-sq8"))
    print("  avx2:   f32/hl-v3 %s" % rr("f32-avx2","hl-v3"))
    print("          sq8/hl-v3 %s" % rr("sq8-avx2","hl-v3"))
    if "f32-nolook" in tl:
        print("  look-ahead on/off: f32 %s" % rr("f32-auto","f32-nolook"))
        print("                     sq8 %s" % rr("sq8-auto","sq8-nolook"))
    print("  ratio of medians: f32/hl4 %.2f sq8/hl4 %.2f f32/hl3(avx2) %.2f sq8/hl3 %.2f f32/ff %.2f sq8/fs %.2f" % (m["f32-auto"]/m["hl-v4"], m["sq8-auto"]/m["hl-v4"], m["f32-avx2"]/m["hl-v3"], m["sq8-avx2"]/m["hl-v3"], m["f32-auto"]/m["faiss-flat"], m["sq8-auto"]/m["faiss-sq8"]))
