/*
 * test_gguf.c — src/io/gguf.c: a synthetic file with every value type reads
 * back exactly; the llama.cpp vocab files parse; every truncation, corrupt
 * count and random byte flip gives an error (or a file whose every value
 * lies inside the buffer), never a crash or a huge allocation.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/rng.h"
#include "harness.h"
#include "io/gguf.h"

// ---------------------------------------------------------------- a writer for test files
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *x, size_t k) {
    if (b->n + k > b->cap) {
        b->cap = (b->n + k) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, x, k);
    b->n += k;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_key(buf *b, const char *k, uint32_t type) {
    put_str(b, k);
    put_u32(b, type);
}

/* synth: one key of every scalar type, a string, arrays of i32, f64, str
 * (one empty string), and an empty array; n_tensors 0. */
static buf synth(void) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, 18);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    uint32_t u32 = 4000000000u; int32_t i32 = -2000000000; float f32 = 1.5f; uint8_t bl = 1;
    uint64_t u64 = 1ull << 62; int64_t i64 = -(1ll << 62); double f64 = -2.25;
    put_key(&b, "t.u8", GGUF_U8), put(&b, &u8, 1);
    put_key(&b, "t.i8", GGUF_I8), put(&b, &i8, 1);
    put_key(&b, "t.u16", GGUF_U16), put(&b, &u16, 2);
    put_key(&b, "t.i16", GGUF_I16), put(&b, &i16, 2);
    put_key(&b, "t.u32", GGUF_U32), put(&b, &u32, 4);
    put_key(&b, "t.i32", GGUF_I32), put(&b, &i32, 4);
    put_key(&b, "t.f32", GGUF_F32), put(&b, &f32, 4);
    put_key(&b, "t.bool", GGUF_BOOL), put(&b, &bl, 1);
    put_key(&b, "t.u64", GGUF_U64), put(&b, &u64, 8);
    put_key(&b, "t.i64", GGUF_I64), put(&b, &i64, 8);
    put_key(&b, "t.f64", GGUF_F64), put(&b, &f64, 8);
    put_key(&b, "t.str", GGUF_STR), put_str(&b, "héllo");
    put_key(&b, "t.ai32", GGUF_ARR), put_u32(&b, GGUF_I32), put_u64(&b, 3);
    for (int32_t v = -1; v <= 1; v++) put(&b, &v, 4);
    put_key(&b, "t.af64", GGUF_ARR), put_u32(&b, GGUF_F64), put_u64(&b, 2);
    double d0 = 0.5, d1 = 1e300;
    put(&b, &d0, 8), put(&b, &d1, 8);
    put_key(&b, "t.astr", GGUF_ARR), put_u32(&b, GGUF_STR), put_u64(&b, 3);
    put_str(&b, "a"), put_str(&b, ""), put_str(&b, "ccc");
    put_key(&b, "t.aempty", GGUF_ARR), put_u32(&b, GGUF_U8), put_u64(&b, 0);
    put_key(&b, "general.alignment", GGUF_U32), put_u32(&b, 64);
    put_key(&b, "", GGUF_U8), put(&b, &u8, 1); /* an empty key is legal */
    return b;
}

static void test_synthetic_roundtrip(void) {
    buf b = synth();
    gguf g;
    dc_err e = {0};
    int rc = gguf_open_mem(&g, b.p, b.n, "synth", &e);
    CHECK(rc == DC_OK, "open: %s", e.msg);
    if (rc) return;
    CHECK(g.version == 3 && g.n_kv == 18 && g.n_tensors == 0 && g.alignment == 64, "header %u %llu %u", g.version,
          (unsigned long long)g.n_kv, g.alignment);
    CHECK(g.tensor_info_off == b.n, "tensor infos at %llu, file %zu", (unsigned long long)g.tensor_info_off, b.n);
    struct { const char *k; int64_t v; } ints[] = {
        {"t.u8", 200}, {"t.i8", -100}, {"t.u16", 60000}, {"t.i16", -30000}, {"t.u32", 4000000000ll},
        {"t.i32", -2000000000}, {"t.bool", 1}, {"t.u64", 1ll << 62}, {"t.i64", -(1ll << 62)}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        int64_t v = 0;
        CHECK(gguf_get_int(&g, ints[i].k, &v, &e) == DC_OK && v == ints[i].v, "%s = %lld", ints[i].k, (long long)v);
    }
    CHECK(gguf_kv_float(gguf_find(&g, "t.f32"), 0) == 1.5, "f32");
    CHECK(gguf_kv_float(gguf_find(&g, "t.f64"), 0) == -2.25, "f64");
    gguf_str s;
    CHECK(gguf_get_str(&g, "t.str", &s, &e) == DC_OK && s.n == 6 && memcmp(s.s, "héllo", 6) == 0, "str");
    const gguf_kv *a;
    CHECK(gguf_get_arr(&g, "t.ai32", GGUF_I32, &a, &e) == DC_OK && a->n == 3 && gguf_kv_int(a, 0) == -1 &&
              gguf_kv_int(a, 2) == 1, "i32 array");
    CHECK(gguf_get_arr(&g, "t.af64", GGUF_F64, &a, &e) == DC_OK && gguf_kv_float(a, 1) == 1e300, "f64 array");
    CHECK(gguf_get_arr(&g, "t.astr", GGUF_STR, &a, &e) == DC_OK && a->n == 3, "str array");
    if (a && a->n == 3) {
        gguf_str s0 = gguf_kv_str(a, 0), s1 = gguf_kv_str(a, 1), s2 = gguf_kv_str(a, 2);
        CHECK(s0.n == 1 && s0.s[0] == 'a' && s1.n == 0 && s2.n == 3 && memcmp(s2.s, "ccc", 3) == 0, "str elements");
    }
    CHECK(gguf_get_arr(&g, "t.aempty", -1, &a, &e) == DC_OK && a->n == 0, "empty array");
    CHECK(gguf_find(&g, "") != NULL, "empty key");
    /* wrong types are errors with the key named */
    CHECK(gguf_get_int(&g, "t.str", &(int64_t){0}, &e) == DC_EFORMAT && strstr(e.msg, "t.str"), "int of a str: %s", e.msg);
    CHECK(gguf_get_str(&g, "t.u8", &s, &e) == DC_EFORMAT, "str of a u8");
    CHECK(gguf_get_arr(&g, "t.ai32", GGUF_STR, &a, &e) == DC_EFORMAT, "arr of wrong type");
    CHECK(gguf_get_int(&g, "nope", &(int64_t){0}, &e) == DC_ENOTFOUND, "missing key");
    gguf_close(&g);
    gguf_close(&g); /* twice is safe */
    free(b.p);
}

/* every prefix of the synthetic file is an error, never a crash */
static void test_truncated_prefixes(void) {
    buf b = synth();
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: a read past it would be caught by ASan/valgrind */
        memcpy(copy, b.p, n);
        gguf g;
        dc_err e = {0};
        int rc = gguf_open_mem(&g, copy, n, "prefix", &e);
        if (rc != DC_EFORMAT) bad++;
        if (!rc) gguf_close(&g);
        free(copy);
    }
    CHECK(bad == 0, "%d of %zu prefixes did not fail with DC_EFORMAT", bad, b.n);
    free(b.p);
}

/* patch: overwrite 8 bytes at off of a fresh synthetic file, expect DC_EFORMAT */
static void expect_bad(size_t off, uint64_t v, int width, const char *what) {
    buf b = synth();
    memcpy(b.p + off, &v, (size_t)width);
    gguf g;
    dc_err e = {0};
    int rc = gguf_open_mem(&g, b.p, b.n, "patched", &e);
    CHECK(rc == DC_EFORMAT, "%s: rc %d (%s)", what, rc, e.msg);
    if (!rc) gguf_close(&g);
    free(b.p);
}

static size_t find_key(const buf *b, const char *k) {
    size_t n = strlen(k);
    for (size_t i = 0; i + n <= b->n; i++)
        if (memcmp(b->p + i, k, n) == 0) return i + n; /* just past the key: the type */
    return 0;
}

static void test_corrupt_counts(void) {
    expect_bad(0, 0x47475546, 4, "bad magic"); /* "FUGG" */
    expect_bad(4, 1, 4, "version 1");
    expect_bad(4, 0x03000000, 4, "big-endian version");
    expect_bad(8, 1ull << 60, 8, "n_tensors 2^60");
    expect_bad(16, 1ull << 60, 8, "n_kv 2^60");
    expect_bad(16, 19, 8, "one key/value too many");
    buf b = synth();
    size_t ty = find_key(&b, "t.ai32"), st = find_key(&b, "t.astr"), sv = find_key(&b, "t.str");
    size_t al = find_key(&b, "general.alignment"), u8 = find_key(&b, "t.u8"), bo = find_key(&b, "t.bool");
    free(b.p);
    expect_bad(ty + 4 + 4, 1ull << 62, 8, "i32 array count 2^62");
    expect_bad(ty + 4 + 4, UINT64_MAX, 8, "i32 array count 2^64-1");
    expect_bad(st + 4 + 4, 1ull << 61, 8, "string array count 2^61");
    expect_bad(st + 4 + 4 + 8, UINT64_MAX, 8, "string element length 2^64-1");
    expect_bad(sv + 4, 1ull << 63, 8, "string length 2^63");
    expect_bad(ty + 4, GGUF_ARR, 4, "nested array");
    expect_bad(ty + 4, 99, 4, "unknown element type");
    expect_bad(u8, 13, 4, "unknown value type");
    expect_bad(bo + 4, 2, 1, "bool 2");
    expect_bad(al + 4, 48, 4, "alignment 48");
    expect_bad(al + 4, 0, 4, "alignment 0");
    /* a duplicate key: rename t.i8 to t.u8 */
    b = synth();
    size_t k = find_key(&b, "t.i8");
    memcpy(b.p + k - 4, "t.u8", 4);
    gguf g;
    dc_err e = {0};
    CHECK(gguf_open_mem(&g, b.p, b.n, "dup", &e) == DC_EFORMAT && strstr(e.msg, "duplicate"), "duplicate key: %s", e.msg);
    free(b.p);
}

/* check_inside: every key and value of an opened file lies inside it */
static int check_inside(const gguf *g) {
    const uint8_t *lo = g->data, *hi = g->data + g->size;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if ((const uint8_t *)kv->key.s < lo || (const uint8_t *)kv->key.s + kv->key.n > hi) return 0;
        if (kv->type == GGUF_STR || (kv->type == GGUF_ARR && kv->arr_type == GGUF_STR)) {
            for (uint64_t j = 0; j < kv->n; j++) {
                gguf_str s = gguf_kv_str(kv, j);
                if (s.n && ((const uint8_t *)s.s < lo || (const uint8_t *)s.s + s.n > hi)) return 0;
            }
        } else if (kv->type == GGUF_ARR) {
            if (kv->data + kv->n * (uint64_t)gguf_type_size(kv->arr_type) > hi) return 0;
        } else if (kv->data + gguf_type_size(kv->type) > hi) {
            return 0;
        }
    }
    return 1;
}

static void test_random_flips(void) {
    buf b = synth();
    rng r;
    rng_seed(&r, 7);
    int ok = 0, outside = 0;
    uint8_t *copy = malloc(b.n);
    for (int it = 0; it < 20000; it++) {
        memcpy(copy, b.p, b.n);
        int flips = 1 + (int)(rng_u64(&r) % 4);
        for (int f = 0; f < flips; f++) copy[rng_u64(&r) % b.n] ^= (uint8_t)(1u << (rng_u64(&r) % 8));
        gguf g;
        dc_err e = {0};
        if (gguf_open_mem(&g, copy, b.n, "flipped", &e) == DC_OK) {
            ok++;
            outside += !check_inside(&g);
            gguf_close(&g);
        }
    }
    CHECK(outside == 0, "%d opened files point outside their buffer", outside);
    printf("    20000 corrupted files: %d still parse (flips in values), all within bounds\n", ok);
    free(copy);
    free(b.p);
}

static void test_vocab_files(void) {
    const char *dd = harness_data_dir();
    if (!dd) {
        printf("    SKIP: no shared data directory\n");
        return;
    }
    static const struct { const char *name; uint64_t ntok, nmerge; const char *pre; } F[] = {
        {"deepseek-llm", 102400, 99757, "deepseek-llm"},
        {"deepseek-coder", 32256, 31757, "deepseek-coder"},
        {"gpt-2", 50257, 50000, "gpt-2"},
    };
    for (size_t i = 0; i < sizeof F / sizeof *F; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizer/llama.cpp-vocab/ggml-vocab-%s.gguf", dd, F[i].name);
        gguf g;
        dc_err e = {0};
        int rc = gguf_open(&g, path, &e);
        CHECK(rc == DC_OK, "%s", e.msg);
        if (rc) continue;
        const gguf_kv *tok = NULL, *mer = NULL, *ty = NULL;
        gguf_str pre = {0}, model = {0};
        CHECK(g.version == 3 && g.n_tensors == 0, "%s: v%u, %llu tensors", F[i].name, g.version,
              (unsigned long long)g.n_tensors);
        CHECK(gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_STR, &tok, &e) == DC_OK && tok->n == F[i].ntok,
              "%s tokens", F[i].name);
        CHECK(gguf_get_arr(&g, "tokenizer.ggml.merges", GGUF_STR, &mer, &e) == DC_OK && mer->n == F[i].nmerge,
              "%s merges", F[i].name);
        CHECK(gguf_get_arr(&g, "tokenizer.ggml.token_type", GGUF_I32, &ty, &e) == DC_OK && ty->n == F[i].ntok,
              "%s token types", F[i].name);
        CHECK(gguf_get_str(&g, "tokenizer.ggml.pre", &pre, &e) == DC_OK && pre.n == strlen(F[i].pre) &&
                  memcmp(pre.s, F[i].pre, pre.n) == 0, "%s pre", F[i].name);
        CHECK(gguf_get_str(&g, "tokenizer.ggml.model", &model, &e) == DC_OK && model.n == 4, "%s model", F[i].name);
        CHECK(check_inside(&g), "%s: values outside the file", F[i].name);
        if (tok && tok->n > 300) {
            gguf_str t0 = gguf_kv_str(tok, 0);
            CHECK(t0.n > 0, "%s: first token empty", F[i].name);
        }
        gguf_close(&g);
    }
}

/* a real vocab file cut at many places: always DC_EFORMAT */
static void test_vocab_truncated(void) {
    const char *dd = harness_data_dir();
    if (!dd) {
        printf("    SKIP: no shared data directory\n");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/llama.cpp-vocab/ggml-vocab-deepseek-coder.gguf", dd);
    gguf full;
    dc_err e = {0};
    if (gguf_open(&full, path, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    rng r;
    rng_seed(&r, 3);
    int bad = 0;
    for (int it = 0; it < 200; it++) {
        size_t n = it < 100 ? (size_t)it * 7 : (size_t)(rng_u64(&r) % full.size);
        gguf g;
        int rc = gguf_open_mem(&g, full.data, n, "cut", &e);
        bad += rc != DC_EFORMAT;
        if (!rc) gguf_close(&g);
    }
    CHECK(bad == 0, "%d truncations did not fail", bad);
    gguf_close(&full);
    CHECK(gguf_open(&full, "/nonexistent/x.gguf", &e) == DC_EIO, "missing file: %s", e.msg);
}

/* issue 14, defect 5: many keys cost linear time, not quadratic (80k keys
 * in a 6 MB file took minutes: every key was compared with every earlier
 * one); a duplicate among them is still found, wherever it is */
static buf many_keys(int n, int dup_at) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, (uint64_t)n);
    char k[64];
    for (int i = 0; i < n; i++) {
        /* equal lengths and a shared prefix: the old scan compared bytes, not just lengths */
        snprintf(k, sizeof k, "general.key.%08d", i == dup_at ? 7 : i);
        put_key(&b, k, GGUF_U8);
        uint8_t v = (uint8_t)i;
        put(&b, &v, 1);
    }
    return b;
}

static void test_many_keys(void) {
    const int N = 200000; /* ~7 MB; quadratic was 2e10 key comparisons */
    buf b = many_keys(N, -1);
    gguf g;
    dc_err err = {0};
    double t0 = harness_now();
    alarm(60); /* the quadratic scan would run for minutes: end the binary (a failure) instead */
    int rc = gguf_open_mem(&g, b.p, b.n, "keys.gguf", &err);
    alarm(0);
    double dt = harness_now() - t0;
    printf("    %d keys (%.1f MB) opened in %.3f s\n", N, b.n / 1e6, dt);
    CHECK(rc == 0, "%s", err.msg);
    /* 60x the time this takes here under ASan; the quadratic scan took minutes */
    CHECK(dt < 3.0, "%d keys took %.2f s to open", N, dt);
    char k[64];
    for (int i = 0; !rc && i < N; i += 9973) {
        snprintf(k, sizeof k, "general.key.%08d", i);
        const gguf_kv *kv = gguf_find(&g, k);
        CHECK(kv && gguf_kv_int(kv, 0) == (uint8_t)i, "key %s", k);
    }
    CHECK(!rc && gguf_find(&g, "general.key.x") == NULL, "an absent key");
    if (!rc) gguf_close(&g);
    free(b.p);
    b = many_keys(N, N - 1); /* the last key repeats key 7 */
    rc = gguf_open_mem(&g, b.p, b.n, "dup.gguf", &err);
    CHECK(rc == DC_EFORMAT && strstr(err.msg, "duplicate key general.key.00000007"), "rc %d %s", rc, err.msg);
    free(b.p);
}

int main(void) {
    RUN(test_many_keys);
    RUN(test_synthetic_roundtrip);
    RUN(test_truncated_prefixes);
    RUN(test_corrupt_counts);
    RUN(test_random_flips);
    RUN(test_vocab_files);
    RUN(test_vocab_truncated);
    return harness_done();
}
