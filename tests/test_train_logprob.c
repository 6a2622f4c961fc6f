/*
 * test_train_logprob.c — the training forward's per-token log-probabilities
 * equal the inference forward's (dc_session_new / dc_forward) on the same
 * model and tokens, to 1e-5: GRPO's ratio pi / pi_old compares the two
 * (rollouts are sampled by the inference path, scored by the training one).
 * Rows of different lengths padded in one batch, a batch smaller than the
 * trainer's capacity, absorbed and naive attention, after a few updates too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "train/trainer.h"

#define NB 3
#define NT 12

/* the inference path's log p(ids[i+1] | ids[..i]) for i < n-1 */
static void infer_logp(dc_model *m, const int *ids, int n, int attn, double *out) {
    dc_session *s;
    dc_err err = {0};
    CHECK(dc_session_new_kv(m, n, attn, DC_KV_F32, &s, &err) == 0, "%s", err.msg); /* training keeps float32 */
    int V = dc_model_config(m)->vocab_size;
    float *lg = malloc(sizeof(float) * (size_t)n * V);
    CHECK(dc_forward(s, ids, n, lg, 0, &err) == 0, "%s", err.msg);
    for (int i = 0; i + 1 < n; i++) {
        const float *z = lg + (size_t)i * V;
        double mx = z[0], sum = 0;
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
        out[i] = z[ids[i + 1]] - mx - log(sum);
    }
    free(lg);
    dc_session_free(s);
}

/* compare: rows of tok (rows, TT+1) with lengths len against the inference path */
static double compare(trainer *t, const int *tok, const int *len, int rows, int TT) {
    float w[NB * NT], logp[NB * NT];
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < TT; i++) w[r * TT + i] = i + 1 < len[r] ? 1.0f : 0.0f;
    loss_spec ls = {.kind = LOSS_CE, .logp = logp};
    tbatch b = {rows, TT, tok, w, &ls};
    dc_err err = {0};
    CHECK(trainer_forward(t, &b, 0, &err) == 0, "%s", err.msg);
    dc_model *m;
    CHECK(trainer_model(t, &m, &err) == 0, "%s", err.msg);
    double worst = 0;
    for (int attn = 0; attn < 2; attn++)
        for (int r = 0; r < rows; r++) {
            double ref[NT + 1];
            infer_logp(m, tok + r * (TT + 1), len[r], attn, ref);
            for (int i = 0; i + 1 < len[r]; i++) worst = fmax(worst, fabs(ref[i] - logp[r * TT + i]));
        }
    trainer_model_free(m);
    return worst;
}

static const int *g_tok;
static void next_fixed(void *ctx, int *tokens) {
    (void)ctx;
    memcpy(tokens, g_tok, sizeof(int) * NB * (NT + 1));
}

static void logprobs_match(void) {
    dc_config c;
    dc_err err = {0};
    CHECK(dc_config_preset("tiny", &c, &err) == 0, "%s", err.msg);
    train_opts o;
    train_opts_default(&o);
    o.B = NB, o.T = NT, o.warmup = 0, o.lr = 1e-2f;
    trainer t;
    CHECK(trainer_init(&t, &c, &o, NULL, 7, &err) == 0, "%s", err.msg);
    rng r;
    rng_seed(&r, 11);
    int tok[NB * (NT + 1)], len[NB] = {NT + 1, 9, 5};
    for (int i = 0; i < NB * (NT + 1); i++) tok[i] = 2 + (int)(rng_u64(&r) % (c.vocab_size - 2));
    for (int row = 0; row < NB; row++)
        for (int i = len[row]; i <= NT; i++) tok[row * (NT + 1) + i] = 1; /* padding */
    double d0 = compare(&t, tok, len, NB, NT);
    printf("    random init: max |logp train - logp infer| %.2e\n", d0);
    CHECK(d0 <= 1e-5, "log-probabilities differ by %g", d0);
    /* a batch smaller than the capacity: rows 1, 2 in 2 x 8 */
    int small[2 * 9], slen[2] = {9, 5};
    for (int row = 0; row < 2; row++) memcpy(small + row * 9, tok + (row + 1) * (NT + 1), sizeof(int) * 9);
    double d1 = compare(&t, small, slen, 2, 8);
    printf("    2 x 8 batch in a 3 x 12 trainer: %.2e\n", d1);
    CHECK(d1 <= 1e-5, "log-probabilities differ by %g", d1);
    /* after updates (routing biases and weights moved) */
    g_tok = tok;
    for (int s = 0; s < 3; s++) trainer_step(&t, next_fixed, NULL);
    double d2 = compare(&t, tok, len, NB, NT);
    printf("    after 3 steps: %.2e\n", d2);
    CHECK(d2 <= 1e-5, "log-probabilities differ by %g after training", d2);
    /* out-of-range batches are refused */
    tbatch big = {NB + 1, NT, tok, NULL, NULL};
    CHECK(trainer_forward(&t, &big, 0, &err) == DC_EARG && strstr(err.msg, "exceeds"), "too many rows: %s", err.msg);
    tok[5] = c.vocab_size;
    tbatch bad = {NB, NT, tok, NULL, NULL};
    CHECK(trainer_forward(&t, &bad, 0, &err) == DC_EARG && strstr(err.msg, "outside the vocabulary"), "bad id: %s",
          err.msg);
    trainer_free(&t);
}

int main(void) {
    RUN(logprobs_match);
    return harness_done();
}
