/* pretrain.c — see pretrain.h. */
#include "train/pretrain.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"

int pretrain_open(pretrain *p, const char *dir, int B, int T, uint64_t seed, dc_err *err) {
    memset(p, 0, sizeof *p);
    p->sample_len = 48;
    int rc = data_load(&p->tr, dir, "train", err);
    if (rc) return rc;
    rc = data_load(&p->val, dir, "val", err);
    p->have_val = rc == DC_OK && p->val.n > (size_t)T + 1;
    if (rc && rc != DC_ENOTFOUND) goto fail; /* a corrupt validation split is an error, a missing one is not */
    if (!rc && !p->have_val) fprintf(stderr, "the val split is shorter than one window: no validation\n");
    rc = DC_OK;
    snprintf(p->tokenizer, sizeof p->tokenizer, "%s/tokenizer.json", dir);
    if (!file_exists(p->tokenizer)) p->tokenizer[0] = 0;
    else if ((rc = dc_tokenizer_load(p->tokenizer, &p->tk, err))) goto fail;
    if (p->tr.n < (size_t)T + 2) {
        rc = err_set(err, DC_EARG, "%s: %zu training tokens, fewer than one window of %d", dir, p->tr.n, T + 1);
        goto fail;
    }
    p->tok = malloc(sizeof(int) * (size_t)B * (T + 1));
    if (!p->tok) {
        rc = err_set(err, DC_ENOMEM, "out of memory");
        goto fail;
    }
    p->dl = (data_loader){&p->tr, B, T, {{0}}};
    rng_seed(&p->dl.r, seed * 0x9e3779b97f4a7c15ull + 17);
    return DC_OK;
fail:
    pretrain_close(p);
    return rc;
}

void pretrain_close(pretrain *p) {
    if (!p) return;
    data_free(&p->tr);
    data_free(&p->val);
    dc_tokenizer_free(p->tk);
    free(p->tok);
    memset(p, 0, sizeof *p);
}

static int step(void *ctx, trainer *t, int64_t *tokens, dc_err *err) {
    pretrain *p = ctx;
    *tokens = (int64_t)t->Bcap * t->Tcap * (t->o.accum > 0 ? t->o.accum : 1);
    return trainer_step(t, data_next, &p->dl) ? err_set(err, DC_EARG, "train: a batch does not fit the model") : DC_OK;
}

/* the mean loss of 4 batches of evenly spaced validation windows */
static int eval(void *ctx, trainer *t, sbuf *json, sbuf *line, dc_err *err) {
    pretrain *p = ctx;
    const int batches = 4, B = t->Bcap, T = t->Tcap;
    double sum = 0;
    int64_t count = (int64_t)batches * B;
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < B; i++) data_window(&p->val, T, (int64_t)b * B + i, count, p->tok + (size_t)i * (T + 1));
        tbatch tb = {B, T, p->tok, NULL, NULL};
        int rc = trainer_forward(t, &tb, 0, err);
        if (rc) return rc;
        sum += t->loss;
    }
    sbuf_num(json, "val_loss", sum / batches);
    sbuf_add(line, " val %.4f", sum / batches);
    return DC_OK;
}

static int save(void *ctx, cJSON *state) {
    pretrain *p = ctx;
    cJSON *r = cJSON_AddArrayToObject(state, "data_rng");
    for (int i = 0; r && i < 4; i++) {
        char h[32];
        snprintf(h, sizeof h, "%016" PRIx64, p->dl.r.s[i]);
        cJSON_AddItemToArray(r, cJSON_CreateString(h));
    }
    return r ? 0 : -1;
}

static int load(void *ctx, const cJSON *state, const char *path, dc_err *err) {
    pretrain *p = ctx;
    const cJSON *r = cJSON_GetObjectItem(state, "data_rng");
    int bad = !cJSON_IsArray(r) || cJSON_GetArraySize(r) != 4;
    uint64_t any = 0;
    for (int i = 0; i < 4 && !bad; i++) {
        const cJSON *h = cJSON_GetArrayItem(r, i);
        char *end;
        bad = !cJSON_IsString(h) || strlen(h->valuestring) != 16;
        if (!bad) p->dl.r.s[i] = strtoull(h->valuestring, &end, 16), bad = *end != 0, any |= p->dl.r.s[i];
    }
    if (bad || !any) return err_set(err, DC_EFORMAT, "%s: data_rng must be four 16-digit hex words, not all zero", path);
    return DC_OK;
}

static void sample(void *ctx, trainer *t) {
    pretrain *p = ctx;
    const data_split *d = p->have_val ? &p->val : &p->tr;
    int prompt[8], out[512], np = d->n > 8 ? 8 : (int)d->n, len = p->sample_len > 512 ? 512 : p->sample_len;
    if (np < 1) return;
    for (int i = 0; i < np; i++) prompt[i] = (int)d->ids[i];
    dc_err err = {0};
    if (trainer_sample(t, prompt, np, len, out, &err)) {
        fprintf(stderr, "sample: %s\n", err.msg);
        return;
    }
    char *a = NULL, *b = NULL;
    size_t na, nb;
    if (p->tk && !dc_tokenizer_decode(p->tk, prompt, np, 0, &a, &na, &err) &&
        !dc_tokenizer_decode(p->tk, out, len, 0, &b, &nb, &err))
        fprintf(stderr, "\n--- sample (greedy) ---\n\033[2m%s\033[0m%s\n-----------------------\n", a, b);
    free(a), free(b);
}

void pretrain_hooks(pretrain *p, run_hooks *h) {
    *h = (run_hooks){.ctx = p, .step = step, .eval = p->have_val ? eval : NULL, .save = save, .load = load,
                     .sample = sample};
}
