/*
 * fuzz_session.c — libFuzzer harness over session files (issue 14): the
 * bytes given to dc_session_load of a tiny model (the one fuzz/seeds.sh
 * writes to work/m beside the binary's corpus, run from build/fuzz), then,
 * when the file is accepted, one more token through the loaded cache, so a
 * cache that loads but holds what the forward pass cannot take is a finding
 * too. Its seed is a real session saved by `deepc chat`'s /save.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "deepc.h"

static dc_model *g_model;
static dc_session *g_sess;
static float *g_logits;
static char g_path[128];

static int setup(void) {
    if (g_sess) return 0;
    dc_err err;
    if (dc_model_load("work/m", &g_model, &err) || dc_session_new(g_model, 256, 0, &g_sess, &err)) {
        fprintf(stderr, "fuzz_session: %s (run fuzz/seeds.sh first; run from build/fuzz)\n", err.msg);
        exit(1);
    }
    g_logits = malloc(sizeof(float) * (size_t)dc_model_config(g_model)->vocab_size);
    snprintf(g_path, sizeof g_path, "/tmp/deepc-fuzz-session-%d.bin", (int)getpid());
    return g_logits ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (setup()) return 0;
    FILE *f = fopen(g_path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    if (fclose(f)) return 0;
    int *ids = NULL, n = 0, tok = 0;
    dc_err err;
    if (dc_session_load(g_sess, g_path, &ids, &n, &err) == DC_OK) {
        if (n > 0) tok = ids[n - 1];
        if (dc_session_pos(g_sess) < 256) dc_forward(g_sess, &tok, 1, g_logits, 1, &err);
        free(ids);
    }
    dc_session_reset(g_sess);
    return 0;
}
