import sys, statistics as st, collections, math
d=collections.defaultdict(list); rec={}
for l in open(sys.argv[1]):
    if not l.startswith("AB "): continue
    _,s,t,r,ef,R,q=l.split(); d[(s,t,int(ef))].append(float(q)); rec[(s,t,int(ef))]=float(R)
def at(s,t,target,fn):
    efs=sorted(e for (ss,tt,e) in d if ss==s and tt==t)
    pts=[(rec[(s,t,e)], fn(d[(s,t,e)])) for e in efs]
    for (r0,q0),(r1,q1) in zip(pts,pts[1:]):
        if r0<=target<=r1:
            f=(target-r0)/(r1-r0); return math.exp(math.log(q0)+f*(math.log(q1)-math.log(q0)))
for s in ["sf","mx"]:
    tools=["f32-auto","f32-avx2","sq8-auto","sq8-avx2","hl-v4","hl-v3"]
    print(s, "median over rounds, QPS @0.95:")
    m={t:at(s,t,0.95,st.median) for t in tools}
    for t in tools: print("  %-9s %8.0f" % (t, m[t]))
    print("  native f32/hl-v4 %.2f sq8/hl-v4 %.2f | avx2 f32/hl-v3 %.2f sq8/hl-v3 %.2f" % (m["f32-auto"]/m["hl-v4"], m["sq8-auto"]/m["hl-v4"], m["f32-avx2"]/m["hl-v3"], m["sq8-avx2"]/m["hl-v3"]))
    for r in range(3):
        m={t:at(s,t,0.95,lambda v: v[r]) for t in tools}
        print("  round %d: native %.2f ; %.2f | avx2 %.2f ; %.2f" % (r+1, m["f32-auto"]/m["hl-v4"], m["sq8-auto"]/m["hl-v4"], m["f32-avx2"]/m["hl-v3"], m["sq8-avx2"]/m["hl-v3"]))
    for t in tools:
        print("   ", t, " ".join("ef%d r%.4f %s" % (e, rec[(s,t,e)], "/".join("%.0f"%x for x in d[(s,t,e)])) for (ss,tt,e) in sorted(d) if ss==s and tt==t))
