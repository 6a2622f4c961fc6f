/* test_safetensors.c — the safetensors reader and writer (src/io/safetensors.c):
 * a round trip, sharded sets, and every kind of corrupt file giving its error. */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "io/safetensors.h"

static char path[512];

static const char *tmp(const char *name) {
    snprintf(path, sizeof path, "%s/%s", harness_tmpdir(), name);
    return path;
}

/* write a raw file: u64 header length, header text, then ndata bytes of 0x11 */
static void raw(const char *file, const char *header, size_t ndata) {
    FILE *f = fopen(file, "wb");
    uint64_t n = strlen(header);
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < ndata; i++) fputc(0x11, f);
    fclose(f);
}

/* expect st_open_file to fail with code and a message containing needle */
static void expect_fail(const char *file, int code, const char *needle) {
    st_set s = {0};
    dc_err err = {0};
    int rc = st_open_file(&s, file, &err);
    CHECK(rc == code, "%s: rc %d, want %d (%s)", file, rc, code, err.msg);
    CHECK(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needle);
    CHECK(strstr(err.msg, file) != NULL, "message \"%s\" does not name the file", err.msg);
    st_close(&s);
}

static void round_trip(void) {
    st_entry e[3] = {{"a.weight", ST_F32, 2, {3, 4}}, {"b", ST_BF16, 1, {5}}, {"c.f8", ST_F8_E4M3, 2, {2, 2}}};
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = i * 0.5f;
    uint16_t b[5] = {1, 2, 3, 4, 5};
    uint8_t c[4] = {9, 8, 7, 6};
    st_writer w;
    dc_err err = {0};
    const char *f = tmp("rt.safetensors");
    CHECK(st_write_begin(&w, f, e, 3, &err) == 0, "%s", err.msg);
    CHECK(st_write_data(&w, a, sizeof a, &err) == 0, "%s", err.msg);
    CHECK(st_write_data(&w, b, sizeof b, &err) == 0, "%s", err.msg);
    CHECK(st_write_data(&w, c, sizeof c, &err) == 0, "%s", err.msg);
    CHECK(st_write_end(&w, &err) == 0, "%s", err.msg);
    st_set s = {0};
    CHECK(st_open_file(&s, f, &err) == 0, "%s", err.msg);
    CHECK(s.n == 3, "3 tensors, got %d", s.n);
    const st_tensor *t = st_find(&s, "a.weight");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4, "a.weight header");
    CHECK(t && memcmp(t->data, a, sizeof a) == 0, "a.weight data");
    t = st_find(&s, "b");
    CHECK(t && t->dtype == ST_BF16 && memcmp(t->data, b, sizeof b) == 0, "b");
    t = st_find(&s, "c.f8");
    CHECK(t && t->dtype == ST_F8_E4M3 && memcmp(t->data, c, 4) == 0, "c.f8");
    CHECK(st_find(&s, "nope") == NULL, "absent name");
    /* the data start is 8-byte aligned */
    uint64_t hn;
    memcpy(&hn, s.files[0].data, 8);
    CHECK(hn % 8 == 0, "header length %llu is a multiple of 8", (unsigned long long)hn);
    st_close(&s);
    /* writing fewer bytes than declared fails and leaves no file */
    const char *g = tmp("short.safetensors");
    CHECK(st_write_begin(&w, g, e, 1, &err) == 0, "%s", err.msg);
    st_write_data(&w, a, 8, &err);
    CHECK(st_write_end(&w, &err) == DC_EARG, "short write must fail");
    FILE *fp = fopen(g, "rb");
    CHECK(fp == NULL, "no partial file left behind");
    if (fp) fclose(fp);
}

static void corrupt_files(void) {
    const char *f;
    f = tmp("tiny.safetensors");
    FILE *fp = fopen(f, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    expect_fail(f, DC_EFORMAT, "truncated");

    f = tmp("hlen.safetensors");
    fp = fopen(f, "wb");
    uint64_t big = 1ull << 40;
    fwrite(&big, 8, 1, fp);
    fwrite("{}", 1, 2, fp);
    fclose(fp);
    expect_fail(f, DC_EFORMAT, "header length");

    raw(f = tmp("json.safetensors"), "{\"a\": {\"dtype\": ", 0);
    expect_fail(f, DC_EFORMAT, "JSON");

    raw(f = tmp("dtype.safetensors"), "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    expect_fail(f, DC_EFORMAT, "dtype");

    raw(f = tmp("size.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24);
    expect_fail(f, DC_EFORMAT, "tensor w");

    raw(f = tmp("trunc.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 20);
    expect_fail(f, DC_EFORMAT, "truncated");

    raw(f = tmp("neg.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8);
    expect_fail(f, DC_EFORMAT, "shape");

    raw(f = tmp("order.safetensors"), "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 8);
    expect_fail(f, DC_EFORMAT, "data_offsets");

    raw(f = tmp("overlap.safetensors"),
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12);
    expect_fail(f, DC_EFORMAT, "overlap");

    raw(f = tmp("dup.safetensors"),
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        8);
    expect_fail(f, DC_EFORMAT, "twice");

    raw(f = tmp("huge.safetensors"),
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8);
    expect_fail(f, DC_EFORMAT, "shape");

    f = tmp("missing.safetensors");
    st_set s = {0};
    dc_err err = {0};
    CHECK(st_open_file(&s, f, &err) == DC_EIO, "missing file: %s", err.msg);
    st_close(&s);
}

static void sharded(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sharded", harness_tmpdir());
    harness_sh("mkdir -p %s", dir);
    char f1[600], f2[600], idx[600];
    snprintf(f1, sizeof f1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(f2, sizeof f2, "%s/model-00002-of-00002.safetensors", dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    raw(f1, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    raw(f2, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    FILE *fp = fopen(idx, "w");
    fprintf(fp, "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                "\"b\":\"model-00002-of-00002.safetensors\"}}");
    fclose(fp);
    st_set s;
    dc_err err = {0};
    CHECK(st_open_dir(&s, dir, &err) == 0, "%s", err.msg);
    CHECK(s.nfiles == 2 && s.n == 2 && st_find(&s, "a") && st_find(&s, "b"), "both shards read");
    st_close(&s);
    /* the index names a tensor that its shard lacks */
    fp = fopen(idx, "w");
    fprintf(fp, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"zz\":\"model-00002-of-00002.safetensors\"}}");
    fclose(fp);
    CHECK(st_open_dir(&s, dir, &err) == DC_ENOTFOUND && strstr(err.msg, "zz"), "missing tensor: %s", err.msg);
    st_close(&s);
    /* the index names a shard that does not exist */
    fp = fopen(idx, "w");
    fprintf(fp, "{\"weight_map\":{\"a\":\"model-00009-of-00009.safetensors\"}}");
    fclose(fp);
    CHECK(st_open_dir(&s, dir, &err) == DC_EIO && strstr(err.msg, "00009"), "missing shard: %s", err.msg);
    st_close(&s);
    /* a corrupt index */
    fp = fopen(idx, "w");
    fprintf(fp, "{\"weight_map\": [1, 2]}");
    fclose(fp);
    CHECK(st_open_dir(&s, dir, &err) == DC_EFORMAT && strstr(err.msg, "weight_map"), "bad index: %s", err.msg);
    st_close(&s);
    /* a path outside the directory is refused */
    fp = fopen(idx, "w");
    fprintf(fp, "{\"weight_map\":{\"a\":\"../x.safetensors\"}}");
    fclose(fp);
    CHECK(st_open_dir(&s, dir, &err) == DC_EFORMAT && strstr(err.msg, "entry a is not"), "path escape: %s", err.msg);
    st_close(&s);
    /* no checkpoint at all */
    CHECK(st_open_dir(&s, harness_tmpdir(), &err) == DC_ENOTFOUND, "empty dir: %s", err.msg);
    st_close(&s);
}

int main(void) {
    RUN(round_trip);
    RUN(corrupt_files);
    RUN(sharded);
    return harness_done();
}
