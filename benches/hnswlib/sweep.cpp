// hnswlib 0.8.0 from C++, on the same files, parameters and threads as `hnswx bench`, writing
// the same JSON report as benches/hnswlib/run.py (read by `hnswx compare`). No Python: built by
// benches/hnswlib/sweep.sh into static binaries that can be carried to another machine.
//
//   hnswlib-sweep --base B.fvecs --query Q.fvecs --gt G.ivecs --metric l2|ip|cos --k 10 --m 16
//       --ef-construction 200 --ef 10,16,32 --threads N --json OUT.json [--name NAME] [--seed 100]
//   hnswlib-sweep --print-kernel      (how it was compiled; nothing else)
//
// Files: .fvecs, .bvecs (as float) and .ivecs (ground truth, first k ids per row used).
//
// What it does, as run.py does through hnswlib's Python module:
// - Index: HierarchicalNSW<float>(space, n, M, ef_construction, random_seed = --seed, 100 as in
//   run.py), L2Space for l2, InnerProductSpace for ip; cos normalises base and queries first
//   (hnswlib's own rule, x / (|x| + 1e-30)) and uses InnerProductSpace, as hnswlib's "cosine"
//   space does (run.py's module normalises inside add_items, so its build time includes that).
// - Build: the first point alone, then the rest from --threads std::threads pulling row numbers
//   from one atomic counter (hnswlib's ParallelFor), timed from the first point to the join.
// - Memory: VmRSS after the build minus VmRSS before the index was created, per vector (the
//   same method as every tool in compare.sh).
// - Warm-up: the first 1000 queries once, single-thread, at the first ef.
// - Per ef: single-thread QPS = queries / wall time of loops over all queries on one thread
//   (one loop, or as many whole loops as fit in --min-seconds, as `hnswx bench` does);
//   the latency percentiles come from the same loops (each searchKnn call timed with
//   steady_clock), as `hnswx bench` does; run.py needs a second loop of one-query Python calls
//   for them, so its percentiles include interpreter overhead and these do not. Batch QPS: the
//   queries shared out to --threads std::threads through one atomic counter (repeated the same
//   way). Recall@k from the first single-thread loop.
// - --index FILE: hnswlib's graph loaded from FILE when it exists (checked against --m,
//   --ef-construction, the base's size and dimension; build time reported as 0), else built and
//   saved there (through a temporary file and a rename), for repeated query runs on one graph.
// - distances_per_query: a separate untimed single-thread pass in which the index's distance
//   function pointer is swapped for a counting wrapper (every distance hnswlib computes,
//   upper layers included). hnswlib's own metric_distance_computations only counts upper-layer
//   neighbour lists in searchKnn, so it is not used.
#include "hnswlib/hnswlib.h"

#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef SWEEP_KERNEL
#define SWEEP_KERNEL "hnswlib 0.8.0 C++"
#endif
#ifndef SWEEP_BUILD
#define SWEEP_BUILD ""
#endif

using Clock = std::chrono::steady_clock;

[[noreturn]] static void die(const std::string &msg) {
    std::fprintf(stderr, "hnswlib-sweep: %s\n", msg.c_str());
    std::exit(1);
}

// What the binary was compiled for, and whether this CPU has it. Compiled for plain x86-64 so
// that it can say so on a CPU without the instructions the rest of the program uses.
__attribute__((target("arch=x86-64"), noinline)) static const char *missing_isa() {
    __builtin_cpu_init();
#if defined(__AVX512F__)
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return "AVX-512 (F/BW/DQ/VL; this binary is built for x86-64-v4)";
#endif
#if defined(__AVX2__)
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("bmi2"))
        return "AVX2/FMA/BMI2 (this binary is built for x86-64-v3)";
#endif
    return nullptr;
}

static std::string features() {
    std::string s = "hnswlib";
#if defined(USE_AVX512)
    s += " USE_AVX512";
#elif defined(USE_AVX)
    s += " USE_AVX";
#elif defined(USE_SSE)
    s += " USE_SSE";
#else
    s += " scalar";
#endif
    s += "; compiled for";
#ifdef __AVX512F__
    s += " avx512f";
#endif
#ifdef __AVX2__
    s += " avx2";
#endif
#ifdef __FMA__
    s += " fma";
#endif
#ifdef __AVX__
    s += " avx";
#endif
#ifdef __SSE4_2__
    s += " sse4.2";
#endif
    return s;
}

struct Table {
    size_t n = 0, dim = 0;
    std::vector<float> f;    // .fvecs / .bvecs rows
    std::vector<int32_t> i;  // .ivecs rows
    const float *row(size_t r) const { return f.data() + r * dim; }
};

static Table read_vecs(const std::string &path) {
    std::string ext = path.substr(path.rfind('.') + 1);
    for (auto &c : ext) c = (char)std::tolower((unsigned char)c);
    int width = ext == "bvecs" ? 1 : 4;
    if (ext != "fvecs" && ext != "bvecs" && ext != "ivecs") die(path + ": unknown format (fvecs, bvecs, ivecs)");
    std::ifstream in(path, std::ios::binary);
    if (!in) die(path + ": " + std::strerror(errno));
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (raw.size() < 4) die(path + ": too short for a texmex file");
    int32_t d;
    std::memcpy(&d, raw.data(), 4);
    size_t row = 4 + (size_t)d * width;
    if (d <= 0 || raw.size() % row) die(path + ": not a whole number of " + std::to_string(d) + "-dimensional rows: truncated?");
    Table t;
    t.dim = (size_t)d;
    t.n = raw.size() / row;
    if (ext == "ivecs") t.i.resize(t.n * t.dim); else t.f.resize(t.n * t.dim);
    for (size_t r = 0; r < t.n; r++) {
        const char *p = raw.data() + r * row;
        int32_t dr;
        std::memcpy(&dr, p, 4);
        if (dr != d) die(path + ": ragged file");
        p += 4;
        if (ext == "ivecs") std::memcpy(&t.i[r * t.dim], p, t.dim * 4);
        else if (ext == "fvecs") std::memcpy(&t.f[r * t.dim], p, t.dim * 4);
        else for (size_t c = 0; c < t.dim; c++) t.f[r * t.dim + c] = (unsigned char)p[c];
    }
    return t;
}

// hnswlib's normalize_vector (python_bindings/bindings.cpp).
static void normalise(Table &t) {
    for (size_t r = 0; r < t.n; r++) {
        float *x = t.f.data() + r * t.dim, norm = 0.0f;
        for (size_t c = 0; c < t.dim; c++) norm += x[c] * x[c];
        norm = 1.0f / (sqrtf(norm) + 1e-30f);
        for (size_t c = 0; c < t.dim; c++) x[c] *= norm;
    }
}

static long long proc_status(const char *key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    size_t len = std::strlen(key);
    while (std::getline(f, line))
        if (line.compare(0, len, key) == 0 && line.size() > len && line[len] == ':')
            return std::atoll(line.c_str() + len + 1) * 1024;
    return -1;
}

static std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.compare(0, 10, "model name") == 0) {
            auto at = line.find(':');
            if (at == std::string::npos) break;
            auto s = line.substr(at + 1);
            s.erase(0, s.find_first_not_of(" \t"));
            return s;
        }
    struct utsname u;
    return uname(&u) == 0 ? u.machine : "unknown";
}

// Same formatting rules as Python's json: finite numbers, null otherwise.
static std::string num(double x) {
    if (!std::isfinite(x)) return "null";
    char b[40];
    for (int digits = 15; digits <= 17; digits++) {  // the shortest text that reads back as x
        std::snprintf(b, sizeof b, "%.*g", digits, x);
        if (std::strtod(b, nullptr) == x) break;
    }
    return b;
}

static std::string str(const std::string &s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += (char)c; }
        else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
        else o += (char)c;
    }
    return o + "\"";
}

// The counting wrapper for distances_per_query (one thread at a time uses it).
static hnswlib::DISTFUNC<float> real_dist;
static unsigned long long dist_count;
static float counted_dist(const void *a, const void *b, const void *param) {
    dist_count++;
    return real_dist(a, b, param);
}

struct Run {
    size_t ef;
    double recall, qps_single, qps_batch, p50, p95, p99, p999, dpq;
};

int main(int argc, char **argv) {
    std::map<std::string, std::string> opt = {{"--metric", "l2"}, {"--k", "10"}, {"--m", "16"},
                                              {"--ef-construction", "200"},
                                              {"--ef", "10,16,24,32,48,64,96,128,192,256,384,512"},
                                              {"--threads", std::to_string(std::max(1u, std::thread::hardware_concurrency()))},
                                              {"--seed", "100"}, {"--base", ""}, {"--query", ""},
                                              {"--gt", ""}, {"--json", ""}, {"--name", ""},
                                              {"--index", ""}, {"--min-seconds", "0"}};
    for (int a = 1; a < argc; a++) {
        std::string key = argv[a], value;
        if (key == "--print-kernel") {
            std::printf("%s\n%s\n%s\n", SWEEP_KERNEL, features().c_str(), SWEEP_BUILD);
            return 0;
        }
        if (key == "-h" || key == "--help") {
            std::printf("usage: %s --base B --query Q --gt G --metric l2|ip|cos --k 10 --m 16 --ef-construction 200 "
                        "--ef 10,16,32 --threads N --json OUT.json [--name NAME] [--seed 100] [--index FILE] [--min-seconds S] | --print-kernel\n"
                        "--min-seconds S: repeat each ef's query loops until S seconds have passed (default 0: one pass)\n"
                        "--index FILE: load hnswlib's index from FILE if it exists (no build: the report's build time is 0),\n"
                        "else build and save it there; for repeated query runs on one graph\n", argv[0]);
            return 0;
        }
        auto eq = key.find('=');
        if (eq != std::string::npos) { value = key.substr(eq + 1); key = key.substr(0, eq); }
        else if (a + 1 < argc) value = argv[++a];
        else die("missing value for " + key);
        if (!opt.count(key)) die("unknown option " + key);
        opt[key] = value;
    }
    if (const char *m = missing_isa()) die(std::string("this CPU lacks ") + m);
    for (const char *req : {"--base", "--query", "--json"})
        if (opt[req].empty()) die(std::string(req) + " is required");
    if (opt["--gt"].empty()) die("needs --gt (write one with `hnswx gt`)");
    const std::string metric = opt["--metric"];
    if (metric != "l2" && metric != "ip" && metric != "cos") die("--metric: l2, ip or cos");
    const size_t k = std::stoul(opt["--k"]), m = std::stoul(opt["--m"]), efc = std::stoul(opt["--ef-construction"]);
    const size_t threads = std::max<size_t>(1, std::stoul(opt["--threads"]));
    const size_t seed = std::stoul(opt["--seed"]);
    const double min_seconds = std::stod(opt["--min-seconds"]);
    if (!std::isfinite(min_seconds) || min_seconds < 0) die("--min-seconds: a finite number of seconds, 0 or more");
    std::vector<size_t> efs;
    for (size_t at = 0; at <= opt["--ef"].size();) {
        size_t comma = opt["--ef"].find(',', at);
        if (comma == std::string::npos) comma = opt["--ef"].size();
        efs.push_back(std::stoul(opt["--ef"].substr(at, comma - at)));
        at = comma + 1;
    }

    Table base = read_vecs(opt["--base"]), queries = read_vecs(opt["--query"]), gt = read_vecs(opt["--gt"]);
    if (base.f.empty() || queries.f.empty()) die("--base and --query must be .fvecs or .bvecs");
    if (gt.i.empty()) die("--gt must be .ivecs");
    if (base.dim != queries.dim)
        die("dimension mismatch: base " + std::to_string(base.dim) + ", queries " + std::to_string(queries.dim));
    if (gt.n < queries.n) die(opt["--gt"] + ": " + std::to_string(gt.n) + " ground-truth rows for " + std::to_string(queries.n) + " queries");
    if (gt.dim < k) die(opt["--gt"] + ": " + std::to_string(gt.dim) + " ids per row, k = " + std::to_string(k));
    const size_t n = base.n, dim = base.dim, nq = queries.n;
    if (metric == "cos") { normalise(base); normalise(queries); }

    long long before = proc_status("VmRSS");
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    if (metric == "l2") space.reset(new hnswlib::L2Space(dim));
    else space.reset(new hnswlib::InnerProductSpace(dim));
    const std::string saved = opt["--index"];
    const bool load = !saved.empty() && std::ifstream(saved).good();
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> owned(
        load ? new hnswlib::HierarchicalNSW<float>(space.get(), saved, false, n)
             : new hnswlib::HierarchicalNSW<float>(space.get(), n, m, efc, seed));
    hnswlib::HierarchicalNSW<float> &index = *owned;
    auto t0 = Clock::now();
    if (!load) {
        index.addPoint(base.row(0), 0);
        std::atomic<size_t> next{1};
        std::vector<std::thread> ts;
        for (size_t t = 0; t < threads; t++)
            ts.emplace_back([&] {
                for (size_t i; (i = next++) < n;) index.addPoint(base.row(i), i);
            });
        for (auto &t : ts) t.join();
    }
    const double build_seconds = load ? 0.0 : std::chrono::duration<double>(Clock::now() - t0).count();
    if (load && (index.M_ != m || index.ef_construction_ != efc || index.cur_element_count != n ||
                 index.data_size_ != dim * sizeof(float)))
        die(saved + ": saved with other parameters or data (M, ef_construction, count or dimension differ)");
    if (!load && !saved.empty()) {
        index.saveIndex(saved + ".tmp");
        if (std::rename((saved + ".tmp").c_str(), saved.c_str()) != 0) die("cannot rename " + saved + ".tmp");
    }
    if (load) std::printf("hnswlib index loaded from %s (not built: build time reported as 0)\n", saved.c_str());
    long long after = proc_status("VmRSS");
    // Which kernels hnswlib's space picked at run time (it checks the CPU when it is created).
    std::string picked = features();
#if defined(USE_AVX512)
    picked += AVX512Capable() ? "; run time: AVX-512 kernels" : "; run time: AVX kernels (no AVX-512 here)";
#elif defined(USE_AVX)
    picked += AVXCapable() ? "; run time: AVX kernels" : "; run time: SSE kernels";
#endif
    std::printf("hnswlib (C++) %zu × %zu %s: built in %.2f s on %zu threads\n", n, dim, metric.c_str(), build_seconds, threads);
    std::fflush(stdout);

    std::vector<size_t> labels(nq * k), scratch(nq * k);
    auto search = [&](size_t q, size_t *out) {
        auto res = index.searchKnn(queries.row(q), k);
        size_t got = res.size();
        for (size_t j = got; j < k; j++) out[j] = (size_t)-1;
        while (!res.empty()) { out[--got] = res.top().second; res.pop(); }
    };

    index.setEf(efs[0]);
    for (size_t q = 0; q < std::min<size_t>(1000, nq); q++) search(q, scratch.data() + q * k);  // warm-up, as hnswx does

    std::vector<Run> runs;
    std::vector<double> lat;
    std::printf("%5s %9s %11s %11s %8s %8s %8s %9s %10s\n", "ef", "recall", "QPS 1 thr", ("QPS " + std::to_string(threads) + " thr").c_str(),
                "p50 µs", "p95 µs", "p99 µs", "p99.9 µs", "dist/query");
    for (size_t ef : efs) {
        index.setEf(ef);
        // Whole passes until --min-seconds (at least one), as hnswx bench does; recall from
        // the first pass, latency percentiles over all of them.
        lat.clear();
        size_t passes = 0;
        auto t = Clock::now();
        auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
        while (passes == 0 || since(t) < min_seconds) {
            size_t *out = passes == 0 ? labels.data() : scratch.data();
            for (size_t q = 0; q < nq; q++) {
                auto s = Clock::now();
                search(q, out + q * k);
                lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
            }
            passes++;
        }
        double qps_single = nq * passes / since(t);

        size_t batches = 0;
        t = Clock::now();
        while (batches == 0 || since(t) < min_seconds) {
            std::atomic<size_t> next{0};
            std::vector<std::thread> ts;
            for (size_t w = 0; w < threads; w++)
                ts.emplace_back([&] {
                    for (size_t q; (q = next++) < nq;) search(q, scratch.data() + q * k);
                });
            for (auto &th : ts) th.join();
            batches++;
        }
        double qps_batch = nq * batches / since(t);

        real_dist = index.fstdistfunc_;
        index.fstdistfunc_ = counted_dist;
        dist_count = 0;
        for (size_t q = 0; q < nq; q++) search(q, scratch.data() + q * k);
        index.fstdistfunc_ = real_dist;
        double dpq = (double)dist_count / nq;

        std::sort(lat.begin(), lat.end());
        auto pct = [&](double p) {
            size_t i = (size_t)std::ceil(p * lat.size());
            return lat[std::min(lat.size(), std::max<size_t>(1, i)) - 1];
        };
        size_t hits = 0;
        for (size_t q = 0; q < nq; q++) {
            const int32_t *want = gt.i.data() + q * gt.dim;
            for (size_t j = 0; j < k; j++)
                hits += std::find(want, want + k, (int32_t)labels[q * k + j]) != want + k && labels[q * k + j] != (size_t)-1;
        }
        Run r{ef, (double)hits / (nq * k), qps_single, qps_batch, pct(0.5), pct(0.95), pct(0.99), pct(0.999), dpq};
        runs.push_back(r);
        std::printf("%5zu %9.4f %11.0f %11.0f %8.1f %8.1f %8.1f %9.1f %10.0f\n", ef, r.recall, r.qps_single,
                    r.qps_batch, r.p50, r.p95, r.p99, r.p999, r.dpq);
        std::fflush(stdout);
    }

    std::string name = opt["--name"];
    if (name.empty()) {
        name = opt["--base"].substr(opt["--base"].rfind('/') + 1);
        name = name.substr(0, name.rfind('.'));
        if (name.size() > 5 && name.compare(name.size() - 5, 5, "_base") == 0) name.resize(name.size() - 5);
    }
    struct utsname u;
    std::string os = uname(&u) == 0 ? std::string(u.sysname) + " " + u.machine : "unknown";
    for (auto &c : os) c = (char)std::tolower((unsigned char)c);
    double bpv = before > 0 && after > 0 ? (double)(after - before) / n : 0.0;
    long long peak = proc_status("VmHWM");

    std::string j = "{\n";
    j += "  \"tool\": \"hnswlib\",\n";
    j += "  \"dataset\": " + str(name) + ",\n";
    j += "  \"n\": " + std::to_string(n) + ",\n";
    j += "  \"dim\": " + std::to_string(dim) + ",\n";
    j += "  \"metric\": " + str(metric) + ",\n";
    j += "  \"k\": " + std::to_string(k) + ",\n";
    j += "  \"queries\": " + std::to_string(nq) + ",\n";
    j += "  \"params\": {\"m\": " + std::to_string(m) + ", \"ef_construction\": " + std::to_string(efc) + "},\n";
    j += "  \"build\": {\n    \"seconds\": " + num(build_seconds) + ",\n    \"threads\": " + std::to_string(threads) +
         ",\n    \"bytes_per_vector\": " + num(bpv) + (peak > 0 ? ",\n    \"peak_rss_bytes\": " + std::to_string(peak) : "") +
         "\n  },\n";
    j += "  \"hardware\": {\n    \"cpu\": " + str(cpu_model()) + ",\n    \"cores\": " +
         std::to_string(std::thread::hardware_concurrency()) + ",\n    \"threads_used\": " + std::to_string(threads) +
         ",\n    \"kernel\": " + str(SWEEP_KERNEL) + ",\n    \"target_features\": " + str(picked) +
         ",\n    \"compiler\": " + str(std::string("hnswlib 0.8.0 headers, g++ ") + __VERSION__ +
                                      (std::strlen(SWEEP_BUILD) ? std::string(", ") + SWEEP_BUILD : std::string())) +
         ",\n    \"os\": " + str(os) + "\n  },\n";
    j += "  \"runs\": [";
    for (size_t i = 0; i < runs.size(); i++) {
        const Run &r = runs[i];
        j += std::string(i ? "," : "") + "\n    {\"ef\": " + std::to_string(r.ef) + ", \"recall\": " + num(r.recall) +
             ", \"qps_single\": " + num(r.qps_single) + ", \"qps_batch\": " + num(r.qps_batch) + ", \"p50_us\": " + num(r.p50) +
             ", \"p95_us\": " + num(r.p95) + ", \"p99_us\": " + num(r.p99) + ", \"p999_us\": " + num(r.p999) +
             ", \"distances_per_query\": " + num(r.dpq) + "}";
    }
    j += "\n  ],\n";
    std::vector<std::string> notes = {
        "C++ driver benches/hnswlib/sweep.cpp (no Python): single-thread QPS and latency percentiles from the same loops "
        "of searchKnn calls on one thread; batch QPS from --threads std::threads",
        "bytes_per_vector: VmRSS after the build minus VmRSS before the index was created, per vector",
        "distances_per_query: every distance call, counted in a separate untimed pass",
    };
    if (metric == "cos") notes.push_back("cos: base and queries normalised before the build (hnswlib's rule), inner product");
    if (load) notes.push_back("graph loaded with --index " + saved + ": not built in this run, build seconds reported as 0");
    j += "  \"notes\": [";
    for (size_t i = 0; i < notes.size(); i++) j += std::string(i ? ", " : "") + str(notes[i]);
    j += "]\n}\n";
    FILE *f = std::fopen(opt["--json"].c_str(), "w");
    if (!f || std::fwrite(j.data(), 1, j.size(), f) != j.size() || std::fclose(f) != 0)
        die(opt["--json"] + ": " + std::strerror(errno));
    return 0;
}
