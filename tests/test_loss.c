/*
 * test_loss.c — the post-training losses (src/train/loss.c) through the
 * whole model against the PyTorch reference (tests/ref/gen_post_cases.py
 * writes build/ref_post/): GRPO's clipped objective with both clip sides
 * active, the k3 KL at beta 0.04 and without, token-level and per-sequence
 * means, padding and prompt positions masked; SFT's masked CE; distillation
 * to a teacher's top-k. The objective, every position's log-probability and
 * every parameter's gradient within 1e-5.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "grad_ref.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "train/trainer.h"

#define DIR DC_BUILD "/ref_post"

static float *floats(const cJSON *j, const char *k, int n) {
    const cJSON *a = cJSON_GetObjectItem(j, k);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return NULL;
    float *v = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) v[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    return v;
}

static double num(const cJSON *j, const char *k) { return cJSON_GetObjectItem(j, k)->valuedouble; }

static void run_case(const char *name) {
    char dir[300], p[400];
    snprintf(dir, sizeof dir, DIR "/%s", name);
    snprintf(p, sizeof p, "%s/post.json", dir);
    cJSON *j = NULL;
    dc_err err = {0};
    CHECK(json_read_file(p, &j, &err) == 0, "%s", err.msg);
    if (!j) return;
    const char *kind = cJSON_GetObjectItem(j, "kind")->valuestring;
    int B = (int)num(j, "B"), T = (int)num(j, "T"), N = B * T;
    dc_config cfg;
    CHECK(dc_config_load(dir, &cfg, &err) == 0, "%s", err.msg);
    train_opts o;
    train_opts_default(&o);
    o.B = B, o.T = T, o.mtp_lambda = 0, o.aux_alpha = 0, o.bias_gamma = 0;
    trainer t;
    CHECK(trainer_init(&t, &cfg, &o, dir, 1, &err) == 0, "%s", err.msg);
    char *tb;
    size_t n;
    snprintf(p, sizeof p, "%s/tokens.bin", dir);
    CHECK(file_read_all(p, &tb, &n, NULL) == 0 && n == sizeof(int) * B * (T + 1), "tokens.bin");
    float *w = floats(j, "w", N), *ref_lp = floats(j, "logp", N), logp[N], ent[N], kl[N];
    unsigned char clipped[N];
    loss_spec ls = {.kind = LOSS_CE, .logp = logp, .entropy = ent};
    float *adv = NULL, *old = NULL, *rlp = NULL, *kdl = NULL;
    int *kdi = NULL;
    if (!strcmp(kind, "grpo")) {
        adv = floats(j, "adv", N), old = floats(j, "old_lp", N), rlp = floats(j, "ref_lp", N);
        ls = (loss_spec){.kind = LOSS_GRPO, .adv = adv, .old_lp = old, .ref_lp = rlp, .eps_low = (float)num(j, "eps_low"),
                         .eps_high = (float)num(j, "eps_high"), .beta = (float)num(j, "beta"), .logp = logp,
                         .entropy = ent, .kl = kl, .clipped = clipped};
    } else if (!strcmp(kind, "kd")) {
        int k = (int)num(j, "kd_k");
        kdl = floats(j, "kd_logits", N * k);
        kdi = malloc(sizeof(int) * N * k);
        for (int i = 0; i < N * k; i++) kdi[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "kd_ids"), i)->valueint;
        ls = (loss_spec){.kind = LOSS_KD, .kd_k = k, .kd_ids = kdi, .kd_logits = kdl, .kd_temp = (float)num(j, "kd_temp"),
                         .kd_alpha = (float)num(j, "kd_alpha"), .logp = logp};
    }
    trainer_zero_grad(&t);
    tbatch b = {B, T, (const int *)tb, w, &ls};
    CHECK(trainer_forward(&t, &b, 1, &err) == 0, "%s", err.msg);
    double wsum = 0;
    for (int i = 0; i < N; i++) wsum += w[i];
    double obj = t.loss * wsum, dobj = fabs(obj - num(j, "loss")), dlp = 0;
    for (int i = 0; i < N; i++)
        if (w[i] != 0) dlp = fmax(dlp, fabs(logp[i] - ref_lp[i]));
    int lo = 0, hi = 0;
    if (adv)
        for (int i = 0; i < N; i++)
            if (w[i] != 0 && clipped[i]) lo += adv[i] < 0, hi += adv[i] > 0;
    /* every gradient tensor (the MTP module, which the objective does not
     * reach, has zero gradients on both sides) */
    snprintf(p, sizeof p, "%s/grads.safetensors", dir);
    const char *wn;
    int compared;
    double worst = grad_ref_worst(&t, p, 1e-2, &wn, &compared);
    printf("    %-10s objective %+.6f (|diff| %.1e)  log p |diff| %.1e  %d gradients, worst %.1e (%s)", name, obj, dobj,
           dlp, compared, worst, wn);
    if (adv) printf("  clipped %d low / %d high", lo, hi);
    printf("\n");
    CHECK(dobj <= 1e-5, "%s: objective %.8f vs %.8f", name, obj, num(j, "loss"));
    CHECK(dlp <= 1e-5, "%s: log-probabilities differ by %g", name, dlp);
    CHECK(worst <= 1e-5, "%s: gradient of %s differs by %g of its scale", name, wn, worst);
    if (adv)
        CHECK(lo == (int)num(j, "clipped_low") && hi == (int)num(j, "clipped_high") && lo > 0 && hi > 0,
              "%s: clipped %d/%d, reference %d/%d", name, lo, hi, (int)num(j, "clipped_low"), (int)num(j, "clipped_high"));
    free(w), free(ref_lp), free(adv), free(old), free(rlp), free(kdl), free(kdi), free(tb);
    trainer_free(&t);
    cJSON_Delete(j);
}

static void reference_post_training(void) {
    char *txt;
    size_t n;
    CHECK(file_read_all(DIR "/cases.txt", &txt, &n, NULL) == 0, DIR "/cases.txt missing");
    if (!txt) return;
    int cases = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n"))
        if (*line) run_case(line), cases++;
    CHECK(cases >= 5, "%d cases", cases);
    free(txt);
}

int main(void) {
    RUN(reference_post_training);
    return harness_done();
}
