/*
 * test_sampler.c — src/infer/sampler.c on logits that are not plain numbers
 * (issue 14, defect 1): a NaN anywhere once read idx[-1]; every draw must
 * now be a token with a defined rule (NaN never chosen unless all are NaN,
 * +inf tokens share the mass, -inf never drawn while a finite logit exists).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deepc.h"
#include "harness.h"

enum { V = 300 };

/* draw n tokens from a fresh copy of base each time; counts[id]++ */
static int draw(const dc_sampler_params *p, const float *base, int n, int *counts) {
    dc_sampler *s = NULL;
    dc_err e;
    if (dc_sampler_new(p, V, &s, &e)) return -1;
    float l[V];
    int bad = 0;
    for (int k = 0; k < n; k++) {
        memcpy(l, base, sizeof l);
        int id = dc_sample(s, l, NULL, 0);
        if (id < 0 || id >= V) bad++;
        else counts[id]++;
    }
    dc_sampler_free(s);
    return bad;
}

static void params(dc_sampler_params *p, float temp, int top_k, float top_p, float min_p) {
    dc_sampler_defaults(p);
    p->temperature = temp, p->top_k = top_k, p->top_p = top_p, p->min_p = min_p, p->seed = 7;
}

/* settings that walk every branch: greedy, full softmax, top-k heap, min-p, top-p */
static const float SET[][4] = {{0, 0, 1, 0}, {1, 0, 1, 0}, {0.6f, 40, 0.95f, 0.05f}, {1.5f, 5, 0.5f, 0}, {1, 1, 1, 0}};
enum { NSET = sizeof SET / sizeof *SET };

static void nan_never_chosen(void) {
    float l[V];
    for (int i = 0; i < V; i++) l[i] = sinf(i * 0.37f) * 3;
    l[0] = NAN, l[17] = NAN, l[V - 1] = NAN; /* NaN first: the old max scan stuck on it */
    for (int k = 0; k < NSET; k++) {
        dc_sampler_params p;
        params(&p, SET[k][0], (int)SET[k][1], SET[k][2], SET[k][3]);
        int c[V] = {0};
        int bad = draw(&p, l, 200, c);
        CHECK(bad == 0, "setting %d: %d draws outside the vocabulary", k, bad);
        CHECK(c[0] + c[17] + c[V - 1] == 0, "setting %d: a NaN logit was drawn (%d, %d, %d)", k, c[0], c[17], c[V - 1]);
    }
    /* greedy skips the NaN and finds the real maximum */
    dc_sampler_params p;
    params(&p, 0, 0, 1, 0);
    l[123] = 50;
    int c[V] = {0};
    draw(&p, l, 1, c);
    CHECK(c[123] == 1, "greedy with NaN logits did not pick the maximum");
}

static void all_nan_and_all_neg_inf(void) {
    float l[V];
    for (int k = 0; k < NSET; k++) {
        dc_sampler_params p;
        params(&p, SET[k][0], (int)SET[k][1], SET[k][2], SET[k][3]);
        for (int i = 0; i < V; i++) l[i] = NAN;
        int c[V] = {0};
        CHECK(draw(&p, l, 20, c) == 0 && c[0] == 20, "setting %d: all NaN must give token 0 (got %d of 20)", k, c[0]);
        for (int i = 0; i < V; i++) l[i] = i < 9 ? NAN : -INFINITY;
        memset(c, 0, sizeof c);
        CHECK(draw(&p, l, 20, c) == 0 && c[9] == 20, "setting %d: NaN and -inf must give the first -inf (9), got %d of 20",
              k, c[9]);
    }
}

static void pos_inf_shares_mass(void) {
    float l[V];
    for (int i = 0; i < V; i++) l[i] = (float)(i % 7);
    l[40] = INFINITY, l[200] = INFINITY, l[3] = NAN, l[5] = -INFINITY;
    for (int k = 0; k < NSET; k++) {
        dc_sampler_params p;
        params(&p, SET[k][0], (int)SET[k][1], SET[k][2], SET[k][3]);
        int c[V] = {0};
        CHECK(draw(&p, l, 400, c) == 0, "setting %d: draws outside the vocabulary", k);
        CHECK(c[40] + c[200] == 400, "setting %d: only the +inf tokens may be drawn (%d of 400)", k, c[40] + c[200]);
        if (SET[k][0] > 0 && SET[k][2] >= 0.95f && SET[k][1] != 1) /* sampled over both: each about half */
            CHECK(c[40] > 120 && c[200] > 120, "setting %d: +inf tokens drawn %d and %d times of 400", k, c[40], c[200]);
        if (SET[k][0] <= 0) CHECK(c[40] == 400, "greedy: the lowest +inf id (40) expected");
    }
    /* a finite logit that overflows under a small temperature behaves as +inf */
    for (int i = 0; i < V; i++) l[i] = i == 77 ? 3e38f : 1.0f;
    dc_sampler_params p;
    params(&p, 0.01f, 0, 1, 0);
    int c[V] = {0};
    CHECK(draw(&p, l, 10, c) == 0 && c[77] == 10, "overflowing logit: token 77 expected, got it %d of 10", c[77]);
}

/* the plain case still follows the softmax: two tokens 1 nat apart */
static void finite_frequencies(void) {
    float l[V];
    for (int i = 0; i < V; i++) l[i] = -100;
    l[10] = 1, l[20] = 0;
    dc_sampler_params p;
    params(&p, 1, 0, 1, 0);
    int c[V] = {0};
    draw(&p, l, 4000, c);
    double r = (double)c[10] / (c[10] + c[20]), want = exp(1) / (exp(1) + 1);
    CHECK(fabs(r - want) < 0.03, "token 10 drawn %.3f of the time, softmax says %.3f", r, want);
}

/* the penalties change exactly the logits of the tokens in the window, by the
 * rule (repeat: /R or *R; presence and frequency: - p - f * count), compared
 * with the same arithmetic written out here; nothing else moves, and the
 * counts start from zero at every call */
static void penalties(void) {
    float base[V], l[V], want[V];
    for (int i = 0; i < V; i++) base[i] = sinf(i * 0.91f) * 4;
    base[3] = 2.5f, base[9] = -1.5f;
    const int hist[] = {250, 3, 9, 3, 3, 200, 9}; /* the window (last 6) drops the first 250 */
    const int nh = 7;
    dc_sampler_params p;
    params(&p, 0, 0, 1, 0);
    p.repeat_last_n = 6, p.repeat_penalty = 1.25f, p.presence_penalty = 0.5f, p.frequency_penalty = 0.75f;
    dc_sampler *s = NULL;
    dc_err e;
    CHECK(dc_sampler_new(&p, V, &s, &e) == DC_OK, "sampler");
    for (int round = 0; round < 2 && s; round++) {
        memcpy(l, base, sizeof l);
        memcpy(want, base, sizeof want);
        want[3] = 2.5f / 1.25f - (0.5f + 0.75f * 3);
        want[9] = -1.5f * 1.25f - (0.5f + 0.75f * 2);
        want[200] = (base[200] > 0 ? base[200] / 1.25f : base[200] * 1.25f) - (0.5f + 0.75f);
        int tok = dc_sample(s, l, hist, nh);
        int bad = 0, worst = -1;
        for (int i = 0; i < V; i++)
            if (fabsf(l[i] - want[i]) > 1e-6f) bad++, worst = i;
        CHECK(bad == 0, "round %d: %d logits differ from the rule (e.g. id %d: %g, want %g)", round, bad, worst,
              worst >= 0 ? l[worst] : 0, worst >= 0 ? want[worst] : 0);
        int best = 0;
        for (int i = 1; i < V; i++)
            if (want[i] > want[best]) best = i;
        CHECK(tok == best, "round %d: greedy took %d, the penalised argmax is %d", round, tok, best);
    }
    dc_sampler_free(s);
    /* a frequency penalty moves greedy off a repeated token, a presence penalty of the same size once */
    float two[V];
    for (int i = 0; i < V; i++) two[i] = -10;
    two[5] = 3.0f, two[6] = 2.0f;
    const int rep[] = {5, 5, 5};
    int ids[2];
    for (int k = 0; k < 2; k++) {
        params(&p, 0, 0, 1, 0);
        if (k == 0) p.presence_penalty = 0.9f;
        else p.frequency_penalty = 0.9f;
        s = NULL;
        CHECK(dc_sampler_new(&p, V, &s, &e) == DC_OK, "sampler");
        memcpy(l, two, sizeof l);
        ids[k] = s ? dc_sample(s, l, rep, 3) : -1;
        dc_sampler_free(s);
    }
    CHECK(ids[0] == 5 && ids[1] == 6, "presence 0.9 keeps 5 (3 - 0.9 > 2), frequency 0.9 x 3 moves to 6: %d %d", ids[0],
          ids[1]);
}

/* top-k over logits with many ties and -inf / NaN among them (the heap's
 * blocks of 16 passed over by one compare, sampler.c): every draw is among
 * the k largest (NaN never), every token strictly above the k-th largest
 * value is drawn, and greedy is the first index of the largest */
static void topk_candidates(void) {
    rng r;
    rng_seed(&r, 11);
    int bad = 0, missed = 0;
    for (int round = 0; round < 20; round++) {
        float l[V];
        for (int i = 0; i < V; i++) {
            const int u = (int)(rng_u64(&r) % 40);
            l[i] = u == 0 ? NAN : u == 1 ? -INFINITY : (float)(u % 12) * 0.25f;
        }
        const int k = 1 + round % 9;
        float sorted[V];
        int n = 0;
        for (int i = 0; i < V; i++)
            if (!isnan(l[i])) sorted[n++] = l[i];
        for (int i = 1; i < n; i++) /* descending insertion sort */
            for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
                float t = sorted[j];
                sorted[j] = sorted[j - 1], sorted[j - 1] = t;
            }
        const float kth = sorted[k - 1];
        dc_sampler_params p;
        params(&p, 1, k, 1, 0);
        int c[V] = {0};
        bad += draw(&p, l, 600, c);
        for (int i = 0; i < V; i++) {
            if (c[i] && (isnan(l[i]) || l[i] < kth)) bad++;
            if (l[i] > kth && !c[i]) missed++;
        }
        params(&p, 0, k, 1, 0);
        int g[V] = {0}, first = -1;
        draw(&p, l, 1, g);
        for (int i = 0; i < V && first < 0; i++)
            if (l[i] == sorted[0]) first = i;
        bad += !g[first];
    }
    CHECK(bad == 0, "%d draws outside the top-k (or greedy not the first largest)", bad);
    CHECK(missed == 0, "%d tokens above the k-th largest logit never drawn in 600", missed);
}

int main(void) {
    RUN(penalties);
    RUN(nan_never_chosen);
    RUN(all_nan_and_all_neg_inf);
    RUN(pos_inf_shares_mass);
    RUN(finite_frequencies);
    RUN(topk_candidates);
    return harness_done();
}
