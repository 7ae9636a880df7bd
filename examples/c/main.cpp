// examples/c/main.cpp: the hnswx C ABI from C++ (the header is C with extern "C" guards).
// A RAII wrapper, a lambda as the filter (through the void* context), and the error paths.
// capi/tests/c.rs compiles and runs it with the system C++ compiler when there is one.
#include "hnswx.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Free {
    void operator()(hnswx_index *i) const { hnswx_free(i); }
};
using Handle = std::unique_ptr<hnswx_index, Free>;

void ok(int code, const char *what) {
    if (code != HNSWX_STATUS_OK)
        throw std::runtime_error(std::string(what) + ": " + hnswx_status_name(code) + ": " +
                                 hnswx_last_error_message());
}

bool call_filter(uint64_t label, void *ctx) {
    // The std::function must not throw (a C++ exception may not cross the search).
    return (*static_cast<std::function<bool(uint64_t)> *>(ctx))(label);
}

}  // namespace

int main() {
    const size_t dim = 16, n = 2000, k = 5;
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> data(n * dim);
    for (auto &x : data) x = u(gen);
    std::vector<uint64_t> labels(n);
    for (size_t i = 0; i < n; i++) labels[i] = i;
    try {
        hnswx_params p = hnswx_params_default(dim, HNSWX_METRIC_COSINE);
        hnswx_index *raw = nullptr;
        ok(hnswx_new(&p, n, &raw), "new");
        Handle index(raw);
        ok(hnswx_add_batch(index.get(), labels.data(), n, data.data(), data.size()), "add_batch");
        std::vector<uint64_t> out(k);
        std::vector<float> dist(k);
        size_t found = 0;
        ok(hnswx_search(index.get(), &data[7 * dim], dim, k, 32, out.data(), dist.data(), &found), "search");
        if (found != k || out[0] != 7) throw std::runtime_error("search did not find the query itself");
        std::function<bool(uint64_t)> multiple_of_3 = [](uint64_t l) { return l % 3 == 0; };
        ok(hnswx_search_filtered(index.get(), &data[0], dim, k, 32, call_filter, &multiple_of_3, out.data(),
                                 dist.data(), &found),
           "search_filtered");
        for (size_t i = 0; i < found; i++)
            if (out[i] % 3 != 0) throw std::runtime_error("filter ignored");
        std::vector<float> zero(dim, 0.0f);
        if (hnswx_add(index.get(), n + 1, zero.data(), dim) != HNSWX_STATUS_ZERO_VECTOR)
            throw std::runtime_error("a zero vector under cosine must be refused");
        if (hnswx_search(nullptr, zero.data(), dim, k, 32, out.data(), nullptr, &found) != HNSWX_STATUS_NULL_POINTER)
            throw std::runtime_error("NULL handle must be refused");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "failed: %s\n", e.what());
        return 1;
    }
    std::printf("C++: all checks passed\n");
    return 0;
}
