/*
 * fuzz_json.c — libFuzzer harnesses over the JSON readers (issue 14), one
 * binary each, chosen at build time (make fuzz builds all four):
 *   FUZZ_config     config_parse: a config.json in memory (then its counts)
 *   FUZZ_tokenizer  dc_tokenizer_load of a tokenizer.json (then an encode and
 *                   decode round trip of a fixed text)
 *   FUZZ_index      st_open_dir over a model.safetensors.index.json beside a
 *                   small valid shard
 *   FUZZ_jsonl      data_jsonl_each: prepare's JSONL reader
 * Run with -timeout (make fuzz: FUZZ_TIMEOUT seconds per input), so an input
 * that is slow, not only one that crashes, is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/file.h"
#include "deepc.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "train/data.h"

#if defined(FUZZ_config)
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dc_config c;
    dc_err err;
    if (config_parse((const char *)data, size, "fuzz/config.json", &c, &err) == DC_OK) {
        dc_counts k;
        dc_config_counts(&c, &k);
    }
    return 0;
}

#elif defined(FUZZ_jsonl)
static int count(void *ctx, const char *text, size_t len) {
    *(size_t *)ctx += len + (text[0] != 0);
    return 0;
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t total = 0;
    dc_err err;
    data_jsonl_each((const char *)data, size, "text", "fuzz.jsonl", count, &total, &err);
    return 0;
}

#elif defined(FUZZ_tokenizer) || defined(FUZZ_index)
/* a private directory for the files the readers open */
static char g_dir[128];
static int setup(void) {
    if (g_dir[0]) return 0;
    snprintf(g_dir, sizeof g_dir, "/tmp/deepc-fuzz-%d", (int)getpid());
    if (mkdir(g_dir, 0700) != 0) return -1;
#if defined(FUZZ_index)
    char p[256];
    snprintf(p, sizeof p, "%s/model-00001-of-00001.safetensors", g_dir);
    st_entry e = {"w", ST_F32, 1, {2}};
    st_writer w;
    float v[2] = {1, 2};
    dc_err err;
    if (st_write_begin(&w, p, &e, 1, &err) || st_write_data(&w, v, 8, &err) || st_write_end(&w, &err)) return -1;
#endif
    return 0;
}

static int put(const char *name, const uint8_t *data, size_t size, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(data, 1, size, f);
    return fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[256];
    dc_err err;
    if (setup()) return 0;
#if defined(FUZZ_tokenizer)
    if (put("tokenizer.json", data, size, path, sizeof path)) return 0;
    dc_tokenizer *t = NULL;
    if (dc_tokenizer_load(path, &t, &err) == DC_OK) {
        static const char TEXT[] = "Hello, world! 你好 <think> 12345\n\tdef f(x): return x**2";
        int *ids = NULL;
        size_t n = 0, len = 0;
        char *back = NULL;
        if (dc_tokenizer_encode(t, TEXT, sizeof TEXT - 1, DC_TOK_SPECIAL, &ids, &n, &err) == DC_OK)
            dc_tokenizer_decode(t, ids, n, 0, &back, &len, &err);
        free(ids);
        free(back);
        dc_tokenizer_free(t);
    }
#else
    if (put("model.safetensors.index.json", data, size, path, sizeof path)) return 0;
    st_set s;
    if (st_open_dir(&s, g_dir, &err) == DC_OK) st_close(&s);
#endif
    return 0;
}
#else
#error "define one of FUZZ_config, FUZZ_tokenizer, FUZZ_index, FUZZ_jsonl"
#endif
