/*
 * test_train.c — the whole model's training step against the PyTorch
 * reference (tests/ref/gen_train_cases.py writes build/ref_train/): the losses,
 * every parameter's gradient, five AdamW steps' losses and the selection
 * biases after the aux-loss-free updates (the llm.c contract: the reference
 * dumps a state, C replays it and compares).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "grad_ref.h"
#include "harness.h"
#include "io/safetensors.h"
#include "train/trainer.h"

#define DIR DC_BUILD "/ref_train"

static const int *g_tok;
static int g_n;
static void next_fixed(void *ctx, int *tokens) {
    (void)ctx;
    memcpy(tokens, g_tok, sizeof(int) * g_n);
}

static double num(const cJSON *o, const char *k) { return cJSON_GetObjectItem(o, k)->valuedouble; }

static void run_case(const char *name) {
    char dir[512], p[700], *txt;
    size_t n;
    snprintf(dir, sizeof dir, DIR "/%s", name);
    snprintf(p, sizeof p, "%s/train.json", dir);
    if (file_read_all(p, &txt, &n, NULL)) {
        CHECK(0, "%s missing", p);
        return;
    }
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    dc_config cfg;
    dc_err err = {0};
    CHECK(dc_config_load(dir, &cfg, &err) == 0, "%s", err.msg);
    train_opts o;
    train_opts_default(&o);
    o.B = (int)num(j, "B"), o.T = (int)num(j, "T"), o.accum = 1;
    o.lr = (float)num(j, "lr"), o.warmup = 0, o.sched = SCHED_CONST, o.wd = (float)num(j, "wd");
    o.clip = (float)num(j, "clip"), o.mtp_lambda = (float)num(j, "lambda"), o.aux_alpha = (float)num(j, "alpha");
    o.bias_gamma = (float)num(j, "gamma"), o.eps = (float)num(j, "eps");
    o.beta1 = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "betas"), 0)->valuedouble;
    o.beta2 = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(j, "betas"), 1)->valuedouble;
    snprintf(p, sizeof p, "%s/tokens.bin", dir);
    char *tokbuf;
    CHECK(file_read_all(p, &tokbuf, &n, NULL) == 0, "tokens.bin");
    g_tok = (const int *)tokbuf, g_n = (int)(n / 4);
    CHECK(g_n == o.B * (o.T + 1), "tokens: %d, want %d", g_n, o.B * (o.T + 1));
    trainer t;
    CHECK(trainer_init(&t, &cfg, &o, dir, 1, &err) == 0, "%s: %s", name, err.msg);
    if (err.code) goto out;
    CHECK(trainer_step(&t, next_fixed, NULL) == 0, "step");
    double total = t.loss + o.mtp_lambda * t.mtp_loss + t.aux_loss;
    double dl = fabs(t.loss - num(j, "loss")), dm = fabs(t.mtp_loss - num(j, "mtp_loss"));
    double da = fabs(t.aux_loss - num(j, "aux_loss")), dt = fabs(total - num(j, "total_loss"));
    double dn = fabs(t.grad_norm - num(j, "grad_norm")) / num(j, "grad_norm");
    printf("    %-10s loss %.6f (|diff| %.1e)  mtp %.1e  aux %.1e  total %.1e  grad norm rel %.1e\n", name, t.loss, dl,
           dm, da, dt, dn);
    CHECK(dl < 1e-5 && dm < 1e-5 && da < 1e-6 && dt < 1e-5, "%s: losses differ", name);
    CHECK(dn < 1e-4, "%s: grad norm %g vs %g", name, t.grad_norm, num(j, "grad_norm"));
    /* every gradient tensor */
    snprintf(p, sizeof p, "%s/grads.safetensors", dir);
    const char *worst_name;
    int compared;
    double worst = grad_ref_worst(&t, p, 1e-3, &worst_name, &compared);
    printf("    %-10s %d gradient tensors, worst max|diff|/max|ref| %.1e (%s)\n", name, compared, worst, worst_name);
    CHECK(worst < 1e-3, "%s: gradient of %s differs by %g", name, worst_name, worst);
    /* the following AdamW steps on the same batch */
    const cJSON *losses = cJSON_GetObjectItem(j, "losses");
    int steps = cJSON_GetArraySize(losses);
    double wl = dt;
    for (int s = 1; s < steps; s++) {
        trainer_step(&t, next_fixed, NULL);
        double tot = t.loss + o.mtp_lambda * t.mtp_loss + t.aux_loss;
        double d = fabs(tot - cJSON_GetArrayItem(losses, s)->valuedouble);
        wl = fmax(wl, d);
    }
    printf("    %-10s %d AdamW steps: last loss %.6f, worst |diff| %.1e\n", name, steps, t.loss + o.mtp_lambda * t.mtp_loss + t.aux_loss, wl);
    CHECK(wl < 1e-4, "%s: step losses differ by %g", name, wl);
    /* selection biases after the bias updates */
    const cJSON *bj = cJSON_GetObjectItem(j, "biases_after"), *it;
    cJSON_ArrayForEach(it, bj) {
        int l = -1;
        sscanf(it->string, "model.layers.%d.", &l);
        CHECK(l >= 0 && l < t.L + t.D && t.P.layers[l].router_bias, "%s: bias of %s", name, it->string);
        if (l < 0 || l >= t.L + t.D || !t.P.layers[l].router_bias) continue;
        double md = 0;
        for (int e = 0; e < cJSON_GetArraySize(it); e++)
            md = fmax(md, fabs(t.P.layers[l].router_bias[e] - cJSON_GetArrayItem(it, e)->valuedouble));
        CHECK(md < 1e-6, "%s: %s differs by %g", name, it->string, md);
    }
out:
    trainer_free(&t);
    free(tokbuf);
    cJSON_Delete(j);
}

static void reference_training(void) {
    char *txt;
    size_t n;
    CHECK(file_read_all(DIR "/cases.txt", &txt, &n, NULL) == 0, DIR "/cases.txt missing");
    if (!txt) return;
    int cases = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n"))
        if (*line) run_case(line), cases++;
    CHECK(cases >= 3, "%d cases", cases);
    free(txt);
}

int main(void) {
    RUN(reference_training);
    return harness_done();
}
