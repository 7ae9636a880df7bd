// hnswlib under the load of `hnswx serve-bench`: the same phases (frozen, then live with
// writers), the same reader/writer loops (closed-loop readers or open loop at a fixed rate,
// latency from the scheduled send time; open-loop writers), the same checks on every result
// and the same percentiles. Built by benches/hnswlib/serve.sh against hnswlib 0.8.0's headers.
//
//   serve BASE.fvecs QUERY.fvecs [key=value ...]
//   keys: readers=1 writers=1 read_rate=0 (0: back to back) write_rate=0 (0: 10% of frozen)
//         duration=10 initial=0.5 k=10 ef=64 m=16 efc=200 threads=2
#include "hnswlib/hnswlib.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

struct Table {
    size_t n = 0, dim = 0;
    std::vector<float> data;
    const float *row(size_t i) const { return data.data() + i * dim; }
};

static Table read_fvecs(const char *path) {
    FILE *f = std::fopen(path, "rb");
    if (!f) { std::perror(path); std::exit(1); }
    Table t;
    int32_t d;
    while (std::fread(&d, 4, 1, f) == 1) {
        if (t.dim == 0) t.dim = (size_t)d;
        if ((size_t)d != t.dim) { std::fprintf(stderr, "%s: ragged file\n", path); std::exit(1); }
        size_t at = t.data.size();
        t.data.resize(at + t.dim);
        if (std::fread(&t.data[at], 4, t.dim, f) != t.dim) { std::fprintf(stderr, "%s: truncated\n", path); std::exit(1); }
        t.n++;
    }
    std::fclose(f);
    return t;
}

static void wait_until(Clock::time_point t) {
    for (;;) {
        auto now = Clock::now();
        if (now >= t) return;
        auto left = t - now;
        if (left > std::chrono::microseconds(200))
            std::this_thread::sleep_for(left - std::chrono::microseconds(100));
    }
}

struct Summary {
    size_t count = 0;
    double per_second = 0, p50 = 0, p99 = 0, p999 = 0, max = 0, over_10ms = 0;
};

static Summary summarise(std::vector<uint64_t> &ns, double seconds) {
    Summary s;
    s.count = ns.size();
    s.per_second = ns.size() / seconds;
    if (ns.empty()) return s;
    std::sort(ns.begin(), ns.end());
    auto q = [&](double p) {
        size_t i = (size_t)std::ceil(p * ns.size());
        return ns[std::min(std::max<size_t>(i, 1), ns.size()) - 1] / 1e3;
    };
    s.p50 = q(0.5); s.p99 = q(0.99); s.p999 = q(0.999); s.max = ns.back() / 1e3;
    s.over_10ms = (double)(ns.end() - std::upper_bound(ns.begin(), ns.end(), 10000000ull));
    return s;
}

struct Phase {
    Summary reads, writes;
    uint64_t violations = 0;
};

int main(int argc, char **argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: serve BASE.fvecs QUERY.fvecs [key=value ...]\n"); return 2; }
    std::map<std::string, double> opt = {{"readers", 1}, {"writers", 1}, {"read_rate", 0}, {"write_rate", 0},
                                         {"duration", 10}, {"initial", 0.5}, {"k", 10}, {"ef", 64},
                                         {"m", 16}, {"efc", 200}, {"threads", 2}};
    for (int i = 3; i < argc; i++) {
        const char *eq = std::strchr(argv[i], '=');
        std::string key = eq ? std::string(argv[i], (size_t)(eq - argv[i])) : std::string();
        if (!eq || !opt.count(key)) { std::fprintf(stderr, "bad option %s\n", argv[i]); return 2; }
        opt[key] = std::atof(eq + 1);
    }
    Table base = read_fvecs(argv[1]), queries = read_fvecs(argv[2]);
    const size_t k = (size_t)opt["k"], readers = (size_t)opt["readers"], writers = (size_t)opt["writers"];
    const double duration = opt["duration"];
    const size_t initial = std::max<size_t>(1, (size_t)std::llround(base.n * opt["initial"]));
    const size_t fresh = base.n - initial;

    hnswlib::L2Space space(base.dim);
    // Room for every row: the live phase adds at most the rest of the base.
    auto index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, base.n, (size_t)opt["m"], (size_t)opt["efc"], 100);
    index->setEf((size_t)opt["ef"]);
    auto t0 = Clock::now();
    {
        std::atomic<size_t> next{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < (int)opt["threads"]; t++)
            ts.emplace_back([&] {
                for (size_t i; (i = next++) < initial;) index->addPoint(base.row(i), i);
            });
        for (auto &t : ts) t.join();
    }
    std::fprintf(stderr, "hnswlib: built %zu x %zu in %.2f s\n", initial, base.dim,
                 std::chrono::duration<double>(Clock::now() - t0).count());

    std::vector<std::atomic<bool>> added(base.n);
    for (size_t i = 0; i < base.n; i++) added[i] = i < initial;
    std::atomic<size_t> len{initial}, next_write{0};

    auto run = [&](size_t nwriters, double read_rate, double write_rate) {
        Phase ph;
        std::atomic<uint64_t> violations{0};
        auto start = Clock::now() + std::chrono::milliseconds(20);
        auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
        std::vector<std::vector<uint64_t>> rl(readers), wl(nwriters);
        std::vector<std::thread> ts;
        for (size_t id = 0; id < readers; id++)
            ts.emplace_back([&, id] {
                auto interval = read_rate > 0 ? std::chrono::duration<double>(readers / read_rate) : std::chrono::duration<double>(0);
                auto sched = start;
                for (size_t i = 0;; i++) {
                    auto now = Clock::now();
                    if (now >= end) break;
                    auto t = now;
                    if (read_rate > 0) {
                        if (sched >= end) break;
                        wait_until(sched);
                        t = sched;
                        sched += std::chrono::duration_cast<Clock::duration>(interval);
                    }
                    size_t before = len.load();
                    auto res = index->searchKnn(queries.row((id * 7919 + i) % queries.n), k);
                    auto done = Clock::now();
                    rl[id].push_back((uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(done - t).count());
                    size_t after = len.load(), count = res.size();
                    bool bad = count < std::min(k, before) || count > std::min(k, after);
                    std::vector<size_t> labels;
                    while (!res.empty()) { labels.push_back(res.top().second); res.pop(); }
                    for (size_t a = 0; a < labels.size(); a++) {
                        bad |= labels[a] >= base.n || !added[labels[a]].load();
                        for (size_t b = 0; b < a; b++) bad |= labels[a] == labels[b];
                    }
                    violations += bad;
                }
            });
        for (size_t w = 0; w < nwriters; w++)
            ts.emplace_back([&, w] {
                auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(nwriters / write_rate));
                for (auto sched = start; sched < end; sched += interval) {
                    wait_until(sched);
                    size_t seq = next_write++;
                    if (seq >= fresh) break;
                    size_t label = initial + seq;
                    added[label] = true;
                    index->addPoint(base.row(label), label);
                    len++;
                    wl[w].push_back((uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sched).count());
                }
            });
        for (auto &t : ts) t.join();
        std::vector<uint64_t> r, w;
        for (auto &v : rl) r.insert(r.end(), v.begin(), v.end());
        for (auto &v : wl) w.insert(w.end(), v.begin(), v.end());
        ph.reads = summarise(r, duration);
        ph.writes = summarise(w, duration);
        ph.violations = violations;
        return ph;
    };
    Phase frozen = run(0, opt["read_rate"], 1);
    double write_rate = opt["write_rate"] > 0 ? opt["write_rate"] : std::max(1.0, 0.1 * frozen.reads.per_second);
    Phase live = run(writers, opt["read_rate"], write_rate);

    std::printf("hnswlib 0.8.0: %zu x %zu, k = %zu, ef = %.0f, %zu reader(s) %s, %zu writer(s) at %.0f vectors/s, %.0f s per phase\n\n",
                base.n, base.dim, k, opt["ef"], readers,
                opt["read_rate"] > 0 ? ("open loop at " + std::to_string((int)opt["read_rate"]) + " queries/s").c_str() : "back to back",
                writers, write_rate, duration);
    std::printf("| phase | reads/s | read p50 µs | p99 | p99.9 | max | reads > 10 ms | writes/s | write p50 µs | p99 | p99.9 | max | violations |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (auto [name, p] : {std::make_pair("frozen", &frozen), std::make_pair("live", &live)})
        std::printf("| %s | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %llu |\n", name,
                    p->reads.per_second, p->reads.p50, p->reads.p99, p->reads.p999, p->reads.max, p->reads.over_10ms,
                    p->writes.per_second, p->writes.p50, p->writes.p99, p->writes.p999, p->writes.max,
                    (unsigned long long)p->violations);
    std::printf("\nlive ÷ frozen reads: p99 %.2f×, p99.9 %.2f×; longest read %.1f ms\n", live.reads.p99 / frozen.reads.p99,
                live.reads.p999 / frozen.reads.p999, std::max(frozen.reads.max, live.reads.max) / 1e3);
    if ((size_t)next_write.load() >= fresh) std::printf("note: the writers ran out of base rows before the live phase ended\n");
    return 0;
}
