/*
 * fuzz_readers.c — libFuzzer harness over the GGUF reader (header,
 * metadata, tensor infos, the deepseek2 config mapping) and the safetensors
 * reader. Built and run by `make fuzz` (clang -fsanitize=fuzzer,address).
 * The first input byte picks the reader, the rest is the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/gguf_model.h"

static void fuzz_gguf(const uint8_t *p, size_t n) {
    gguf g;
    dc_err err;
    if (gguf_open_mem(&g, p, n, "fuzz", &err)) return;
    for (uint64_t i = 0; i < g.n_kv; i++) {
        const gguf_kv *kv = &g.kv[i];
        for (uint64_t j = 0; j < (kv->n < 64 ? kv->n : 64); j++) {
            if (kv->type == GGUF_STR || (kv->type == GGUF_ARR && kv->arr_type == GGUF_STR)) {
                gguf_str s = gguf_kv_str(kv, j);
                volatile char c = s.n ? s.s[s.n - 1] : 0;
                (void)c;
            } else if (kv->type != GGUF_ARR || kv->arr_type != GGUF_ARR) {
                (void)gguf_kv_float(kv, j);
            }
        }
    }
    if (!gguf_read_tensors(&g, &err)) {
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const gguf_tensor *t = &g.tensors[i];
            volatile uint8_t c = t->nbytes ? t->data[t->nbytes - 1] : 0;
            (void)c;
        }
        dc_config cfg;
        (void)gguf_config(&g, &cfg, &err);
    }
    gguf_close(&g);
}

static void fuzz_safetensors(const uint8_t *p, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/deepc-fuzz-%d.safetensors", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(p, 1, n, f);
    fclose(f);
    st_set s;
    memset(&s, 0, sizeof s);
    dc_err err;
    if (!st_open_file(&s, path, &err))
        for (int i = 0; i < s.n; i++) {
            volatile uint8_t c = s.tensors[i].nbytes ? s.tensors[i].data[s.tensors[i].nbytes - 1] : 0;
            (void)c;
        }
    st_close(&s);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) fuzz_safetensors(data + 1, size - 1);
    else fuzz_gguf(data + 1, size - 1);
    return 0;
}
