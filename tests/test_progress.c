/*
 * test_progress.c — the library's progress reports (dc_set_progress): every
 * long operation (init, load of a checkpoint and of a GGUF, convert to GGUF
 * (streamed: one write stage) and back) starts at 0, never goes back, ends
 * exactly once at its total, and the total is what was done (tensors of the
 * model, bytes written).
 */
#include <stdlib.h>
#include <string.h>
#include "deepc.h"
#include "harness.h"
#include "io/gguf.h"
#include "model/weights.h"

typedef struct rec {
    char stage[16];
    long long first, last, total;
    int calls, ends, backwards;
} rec;

typedef struct log_ {
    rec r[8];
    int n;
} log_;

static void cb(void *ctx, const char *stage, long long done, long long total) {
    log_ *l = ctx;
    rec *r = l->n ? &l->r[l->n - 1] : NULL;
    if (!r || strcmp(r->stage, stage) || done == 0) {
        if (l->n == 8) return;
        r = &l->r[l->n++];
        memset(r, 0, sizeof *r);
        snprintf(r->stage, sizeof r->stage, "%s", stage);
        r->first = done;
    } else if (done < r->last) r->backwards++;
    r->last = done, r->total = total, r->calls++;
    r->ends += done == total;
}

static int one(const log_ *l, const char *stage, long long total) {
    int ok = l->n == 1 && !strcmp(l->r[0].stage, stage) && l->r[0].first == 0 && l->r[0].last == l->r[0].total &&
             l->r[0].ends == 1 && !l->r[0].backwards && (total < 0 || l->r[0].total == total);
    if (!ok)
        for (int i = 0; i < l->n; i++)
            printf("    %s: first %lld last %lld total %lld calls %d ends %d back %d\n", l->r[i].stage, l->r[i].first,
                   l->r[i].last, l->r[i].total, l->r[i].calls, l->r[i].ends, l->r[i].backwards);
    return ok;
}

static void reports(void) {
    const char *d = harness_tmpdir();
    char m[512], g[512], h[512];
    snprintf(m, sizeof m, "%s/m", d), snprintf(g, sizeof g, "%s/m.gguf", d), snprintf(h, sizeof h, "%s/back", d);
    dc_config c;
    dc_err err;
    CHECK(dc_config_preset("tiny", &c, &err) == DC_OK, "preset");
    log_ l = {0};
    dc_set_progress(cb, &l);
    CHECK(weights_write_random(&c, m, 1, "f32", (size_t)1 << 40, &err) == DC_OK, "init: %s", err.msg);
    size_t bytes = 0;
    FILE *f = NULL;
    char st[600];
    snprintf(st, sizeof st, "%s/model.safetensors", m);
    if ((f = fopen(st, "rb"))) fseek(f, 0, SEEK_END), bytes = (size_t)ftell(f), fclose(f);
    CHECK(one(&l, "init", -1) && l.r[0].total > 0 && (size_t)l.r[0].total <= bytes && (size_t)l.r[0].total > bytes * 9 / 10,
          "init reports the bytes of its tensors (%lld of a %zu-byte file)", l.r[0].total, bytes);

    memset(&l, 0, sizeof l);
    dc_model *mod = NULL;
    CHECK(dc_model_load(m, &mod, &err) == DC_OK, "load: %s", err.msg);
    model_w w;
    wt_entry *e = NULL;
    int n = 0;
    CHECK(weights_table(&c, &w, &e, &n, &err) == DC_OK, "table");
    free(e);
    weights_free(&w);
    CHECK(one(&l, "load", n), "load reports each of the %d tensors once", n);
    dc_model_free(mod);

    memset(&l, 0, sizeof l);
    dc_convert_opts o = {.type = "q8_0"};
    CHECK(dc_convert_to_gguf(m, g, &o, &err) == DC_OK, "convert: %s", err.msg);
    /* convert streams a tensor at a time (no whole-model load first): one
     * write stage counting the tensors it writes */
    gguf gf;
    long long nt = -1;
    if (gguf_open(&gf, g, &err) == DC_OK) nt = (long long)gf.n_tensors, gguf_close(&gf);
    CHECK(one(&l, "write", nt) && nt > 0, "convert: one write to its end over the file's %lld tensors (%d stages)", nt,
          l.n);

    memset(&l, 0, sizeof l);
    CHECK(dc_model_load(g, &mod, &err) == DC_OK, "load gguf: %s", err.msg);
    CHECK(one(&l, "load", -1), "GGUF load");
    dc_model_free(mod);

    memset(&l, 0, sizeof l);
    CHECK(dc_convert_to_hf(g, h, 0, &err) == DC_OK, "to hf: %s", err.msg);
    CHECK(l.n == 2 && !strcmp(l.r[1].stage, "write") && l.r[1].last == l.r[1].total && l.r[1].ends == 1,
          "to hf: a load, then a write (%d stages)", l.n);

    /* a failing load ends no report at its total */
    memset(&l, 0, sizeof l);
    harness_sh("head -c 5000 %s > %s/cut.gguf", g, d);
    snprintf(st, sizeof st, "%s/cut.gguf", d);
    CHECK(dc_model_load(st, &mod, &err) != DC_OK, "truncated GGUF refused");
    CHECK(l.n == 0 || l.r[0].ends == 0, "a failed load does not report completion");
    dc_set_progress(NULL, NULL);
}

int main(void) {
    RUN(reports);
    return harness_done();
}
