/*
 * examples/c/main.c: the hnswx C ABI from C. Builds an index of 3,000 generated vectors,
 * searches it (plain, filtered with a callback, batched into flat arrays with UINT64_MAX /
 * INFINITY past the results found), saves, loads and maps it back,
 * checks the answers against brute force, and walks the error paths (NULL handle, k = 0,
 * wrong dimension, NaN, a file that is not an index). Exits 0 when every check passes.
 *
 *   cargo build -p hnswx-c --release
 *   cc -std=c11 -Wall -Wextra -I capi/include examples/c/main.c target/release/libhnswx_c.a \
 *      -lpthread -ldl -lm -o /tmp/hnswx-c && /tmp/hnswx-c /tmp
 *
 * capi/tests/c.rs compiles and runs it in CI.
 */
#include "hnswx.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DIM 24
#define N 3000
#define K 10

static int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s: %s)\n",    \
                    __FILE__, __LINE__, #cond,                                   \
                    hnswx_status_name(hnswx_last_error_code()),                  \
                    hnswx_last_error_message());                                 \
            failures++;                                                          \
        }                                                                        \
    } while (0)

/* A small deterministic generator (xorshift64*), uniform in [-1, 1). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float next_float(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t x = rng_state * 2685821657736338717ull;
    return (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float l2(const float *a, const float *b) {
    float s = 0;
    for (int i = 0; i < DIM; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* Passes labels 0, 1, 2 only; on its first call searches the same index (re-entrant). */
struct few_ctx {
    hnswx_index *index;
    int nested_ok;
};
static bool few_filter(uint64_t label, void *ctx) {
    struct few_ctx *c = ctx;
    if (c->nested_ok == 0) {
        float z[DIM] = {0};
        uint64_t l[2];
        size_t f = 0;
        c->nested_ok = hnswx_search(c->index, z, DIM, 2, 16, l, NULL, &f) == 0 && f == 2 ? 1 : -1;
    }
    return label < 3;
}

/* Exact nearest label to q among labels passing `mod` (0: all). */
static uint64_t exact_nearest(const float *base, const float *q, int even_only) {
    uint64_t best = UINT64_MAX;
    float best_d = INFINITY;
    for (uint64_t i = 0; i < N; i++) {
        if (even_only && (i % 2) != 0) continue;
        float d = l2(base + i * DIM, q);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    return best;
}

struct filter_ctx {
    size_t calls;
};

static bool even_filter(uint64_t label, void *ctx) {
    ((struct filter_ctx *)ctx)->calls++;
    return label % 2 == 0;
}

static float base[N * DIM];
static uint64_t labels[N];

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[4096], bad_path[4096];
    snprintf(path, sizeof path, "%s/hnswx-c-example.hnswx", dir);
    snprintf(bad_path, sizeof bad_path, "%s/hnswx-c-example.bad", dir);

    CHECK(hnswx_abi_version() == HNSWX_ABI_VERSION);
    printf("hnswx %s, ABI %u\n", hnswx_version(), hnswx_abi_version());

    for (size_t i = 0; i < N * DIM; i++) base[i] = next_float();
    for (uint64_t i = 0; i < N; i++) labels[i] = i;

    hnswx_params p = hnswx_params_default(DIM, HNSWX_METRIC_L2);
    p.m = 16;
    p.ef_construction = 100;
    p.seed = 7;
    hnswx_index *index = NULL;
    CHECK(hnswx_new(&p, N, &index) == HNSWX_STATUS_OK && index != NULL);
    if (!index) return 1;

    /* Half in one batch, the rest one by one. */
    CHECK(hnswx_add_batch(index, labels, N / 2, base, (size_t)(N / 2) * DIM) == HNSWX_STATUS_OK);
    for (uint64_t i = N / 2; i < N; i++)
        CHECK(hnswx_add(index, i, base + i * DIM, DIM) == HNSWX_STATUS_OK);
    CHECK(hnswx_len(index) == N);
    CHECK(hnswx_capacity(index) == N);

    /* Plain search: each of 50 stored vectors finds itself; recall@1 of new queries. */
    uint64_t out[K];
    float dist[K];
    size_t found = 0;
    int self_hits = 0, exact_hits = 0, filtered_hits = 0;
    float q[DIM];
    for (int t = 0; t < 50; t++) {
        CHECK(hnswx_search(index, base + (size_t)t * 37 * DIM, DIM, K, 64, out, dist, &found) == 0);
        CHECK(found == K);
        self_hits += out[0] == (uint64_t)t * 37;
        for (int i = 1; i < (int)found; i++) CHECK(dist[i - 1] <= dist[i]);
        for (int i = 0; i < (int)found; i++)
            for (int j = i + 1; j < (int)found; j++) CHECK(out[i] != out[j]);

        for (int i = 0; i < DIM; i++) q[i] = next_float();
        CHECK(hnswx_search(index, q, DIM, K, 64, out, NULL, &found) == 0);
        exact_hits += found > 0 && out[0] == exact_nearest(base, q, 0);

        /* Filtered: even labels only. */
        struct filter_ctx ctx = {0};
        CHECK(hnswx_search_filtered(index, q, DIM, K, 64, even_filter, &ctx, out, dist, &found) == 0);
        CHECK(found == K);
        CHECK(ctx.calls > 0);
        for (int i = 0; i < (int)found; i++) CHECK(out[i] % 2 == 0);
        filtered_hits += found > 0 && out[0] == exact_nearest(base, q, 1);
    }
    printf("self hits %d/50, recall@1 %d/50, filtered recall@1 %d/50\n", self_hits, exact_hits, filtered_hits);
    CHECK(self_hits == 50);
    CHECK(exact_hits >= 45);
    CHECK(filtered_hits >= 45);

    /* Batch search: 4 queries. */
    uint64_t bl[4 * K];
    float bd[4 * K];
    size_t bf[4];
    CHECK(hnswx_search_batch(index, base, 4 * DIM, K, 64, bl, bd, bf) == 0);
    for (int i = 0; i < 4; i++) {
        CHECK(bf[i] == K);
        CHECK(bl[i * K] == (uint64_t)i);
    }

    /* A filter few labels pass (fewer than K): the count says how many; a filter that
       searches the same index from inside the callback (re-entrant) works too. */
    {
        struct few_ctx fc = {index, 0};
        CHECK(hnswx_search_filtered(index, q, DIM, K, 64, few_filter, &fc, out, dist, &found) == 0);
        CHECK(found == 3);
        for (int i = 0; i < (int)found; i++) CHECK(out[i] < 3);
        CHECK(fc.nested_ok > 0);
    }

    /* Batch into flat arrays where k exceeds the index: counts, then sentinels. */
    {
        hnswx_index *tiny = NULL;
        hnswx_params tp = hnswx_params_default(DIM, HNSWX_METRIC_L2);
        CHECK(hnswx_new(&tp, 8, &tiny) == 0 && tiny != NULL);
        CHECK(hnswx_add_batch(tiny, labels, 3, base, 3 * DIM) == 0);
        uint64_t tl[2 * K];
        float td[2 * K];
        size_t tf[2] = {99, 99};
        CHECK(hnswx_search_batch(tiny, base, 2 * DIM, K, 16, tl, td, tf) == 0);
        for (int i = 0; i < 2; i++) {
            CHECK(tf[i] == 3);
            CHECK(tl[i * K] == (uint64_t)i);
            for (int j = 3; j < K; j++) CHECK(tl[i * K + j] == UINT64_MAX && isinf(td[i * K + j]));
        }
        /* Distances may be NULL; k = 0 is refused. */
        CHECK(hnswx_search_batch(tiny, base, 2 * DIM, K, 16, tl, NULL, tf) == 0 && tf[1] == 3);
        CHECK(hnswx_search_batch(tiny, base, 2 * DIM, 0, 16, tl, td, tf) == HNSWX_STATUS_ZERO_K);
        hnswx_free(tiny);
    }

    hnswx_stats st;
    CHECK(hnswx_get_stats(index, &st) == 0);
    CHECK(st.len == N && st.dim == DIM && st.invariant_violations == 0 && st.unreachable == 0);
    printf("stats: %zu vectors, %zu levels, %zu links, %zu bytes\n", st.len, st.levels, st.links, st.memory_bytes);

    /* Save, load, map: the same answers. */
    CHECK(hnswx_save(index, path) == 0);
    hnswx_index *loaded = NULL, *mapped = NULL;
    CHECK(hnswx_load(path, &loaded) == 0 && loaded != NULL);
    CHECK(hnswx_open_mmap(path, 1, &mapped) == 0 && mapped != NULL);
    if (loaded && mapped) {
        uint64_t a[K], b[K], c[K];
        size_t fa, fb, fc;
        CHECK(hnswx_search(index, q, DIM, K, 64, a, NULL, &fa) == 0);
        CHECK(hnswx_search(loaded, q, DIM, K, 64, b, NULL, &fb) == 0);
        CHECK(hnswx_search(mapped, q, DIM, K, 64, c, NULL, &fc) == 0);
        CHECK(fa == fb && fb == fc && memcmp(a, b, sizeof a) == 0 && memcmp(a, c, sizeof a) == 0);
        /* A mapped index is read-only: full, until reserve copies it into memory. */
        CHECK(hnswx_add(mapped, N, q, DIM) == HNSWX_STATUS_CAPACITY_EXHAUSTED);
        /* A loaded index is full (capacity = len): reserve, then add. */
        CHECK(hnswx_add(loaded, N, q, DIM) == HNSWX_STATUS_CAPACITY_EXHAUSTED);
        CHECK(hnswx_reserve(loaded, 10) == 0);
        CHECK(hnswx_add(loaded, N, q, DIM) == 0);
        CHECK(hnswx_len(loaded) == N + 1);
    }
    hnswx_free(loaded);
    hnswx_free(mapped);

    /* Error paths: status codes and messages, never a crash. */
    CHECK(hnswx_search(NULL, q, DIM, K, 64, out, dist, &found) == HNSWX_STATUS_NULL_POINTER);
    CHECK(strlen(hnswx_last_error_message()) > 0);
    CHECK(hnswx_search(index, q, DIM, 0, 64, out, dist, &found) == HNSWX_STATUS_ZERO_K);
    CHECK(hnswx_search(index, q, DIM - 1, K, 64, out, dist, &found) == HNSWX_STATUS_DIMENSION);
    CHECK(hnswx_add(index, N + 5, q, DIM + 1) == HNSWX_STATUS_DIMENSION);
    CHECK(hnswx_add_batch(index, labels, 2, base, DIM) == HNSWX_STATUS_DIMENSION);
    CHECK(hnswx_search_batch(index, base, DIM + 3, K, 64, bl, bd, bf) == HNSWX_STATUS_DIMENSION);
    q[3] = NAN;
    CHECK(hnswx_add(index, N + 5, q, DIM) == HNSWX_STATUS_NON_FINITE);
    CHECK(hnswx_last_error_code() == HNSWX_STATUS_NON_FINITE);
    CHECK(hnswx_search(index, q, DIM, K, 64, out, dist, &found) == HNSWX_STATUS_NON_FINITE);
    CHECK(hnswx_add(index, 0, base, DIM) == HNSWX_STATUS_DUPLICATE_LABEL);
    CHECK(hnswx_add(index, N + 5, base, DIM) == HNSWX_STATUS_CAPACITY_EXHAUSTED);
    CHECK(hnswx_search_filtered(index, base, DIM, K, 64, NULL, NULL, out, dist, &found) == HNSWX_STATUS_NULL_POINTER);
    hnswx_params bad = hnswx_params_default(DIM, 42);
    hnswx_index *none = (hnswx_index *)&bad; /* must be overwritten with NULL */
    CHECK(hnswx_new(&bad, 10, &none) == HNSWX_STATUS_INVALID_ARGUMENT && none == NULL);
    bad = hnswx_params_default(0, HNSWX_METRIC_L2);
    CHECK(hnswx_new(&bad, 10, &none) == HNSWX_STATUS_INVALID_PARAMETER);
    CHECK(hnswx_len(index) == N);

    FILE *f = fopen(bad_path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("this is not an index file, but it is long enough to have a header ............", f);
        fclose(f);
    }
    hnswx_index *bad_index = NULL;
    int code = hnswx_load(bad_path, &bad_index);
    CHECK(code == HNSWX_STATUS_BAD_MAGIC || code == HNSWX_STATUS_LENGTH);
    CHECK(bad_index == NULL);
    printf("bad file: %s: %s\n", hnswx_status_name(code), hnswx_last_error_message());
    CHECK(hnswx_open_mmap(bad_path, 0, &bad_index) != 0 && bad_index == NULL);
    CHECK(hnswx_load("/nonexistent/dir/x.hnswx", &bad_index) == HNSWX_STATUS_IO);
    CHECK(hnswx_load(NULL, &bad_index) == HNSWX_STATUS_NULL_POINTER);

    /* A living index: remove, restore, consolidate, update. */
    CHECK(hnswx_remove(index, 37) == HNSWX_STATUS_OK);
    CHECK(hnswx_remove(index, 37) == HNSWX_STATUS_UNKNOWN_LABEL);
    CHECK(hnswx_len(index) == N - 1);
    CHECK(hnswx_search(index, base + 37 * DIM, DIM, K, 64, out, NULL, &found) == 0 && found == K);
    for (int i = 0; i < (int)found; i++) CHECK(out[i] != 37);
    CHECK(hnswx_restore(index, 37) == HNSWX_STATUS_OK);
    CHECK(hnswx_search(index, base + 37 * DIM, DIM, K, 64, out, NULL, &found) == 0 && out[0] == 37);
    CHECK(hnswx_remove(index, 74) == HNSWX_STATUS_OK);
    size_t freed = 0;
    CHECK(hnswx_consolidate(index, &freed) == HNSWX_STATUS_OK && freed == 1);
    float moved[DIM];
    for (int i = 0; i < DIM; i++) moved[i] = 9.0f;
    CHECK(hnswx_update(index, 111, moved, DIM) == HNSWX_STATUS_OK);
    CHECK(hnswx_search(index, moved, DIM, 1, 16, out, NULL, &found) == 0 && found == 1 && out[0] == 111);
    CHECK(hnswx_update(index, 74, moved, DIM) == HNSWX_STATUS_UNKNOWN_LABEL);
    CHECK(hnswx_len(index) == N - 1);
    CHECK(hnswx_remove(NULL, 1) == HNSWX_STATUS_NULL_POINTER);

    hnswx_free(index);
    hnswx_free(NULL);
    remove(path);
    remove(bad_path);
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
