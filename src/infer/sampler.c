/*
 * sampler.c — choosing the next token from logits (deepc.h, "Sampling").
 *
 * Order as llama.cpp's common sampler chain: penalties (repeat: divide a
 * positive logit by R, multiply a negative one; presence and frequency:
 * subtract p + f * count), temperature,
 * top-k, softmax, min-p, top-p, draw. Candidates far below the best logit
 * (more than 30 nats after temperature, weight < 1e-13 each) are dropped
 * before sorting: their total mass is below float precision of the sum for
 * any vocabulary up to ~1e6. All buffers are allocated in dc_sampler_new.
 *
 * Non-finite logits (a NaN weight, an overflow) have a defined outcome and
 * never reach the arithmetic: NaN ranks below every number, -inf included,
 * so it is chosen only when every logit is NaN (then token 0); +inf ranks
 * above every finite logit, and when some logits are +inf the draw is
 * uniform among them (exp(inf - inf) would be NaN); when every logit is
 * -inf or NaN the lowest id of the -inf ones is taken.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/rng.h"
#include "deepc.h"
#include "kernels/matmul.h"

struct dc_sampler {
    dc_sampler_params p;
    int V;
    rng r;
    int *idx;            /* (V) candidate ids */
    float *val;          /* (V) their logits, then probabilities */
    int *seen;           /* (V) penalty counts, all zero between calls */
};

void dc_sampler_defaults(dc_sampler_params *p) {
    *p = (dc_sampler_params){.temperature = 0.6f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                             .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
}

int dc_sampler_new(const dc_sampler_params *p, int vocab, dc_sampler **out, dc_err *err) {
    *out = NULL;
    if (vocab < 1) return err_set(err, DC_EARG, "sampler: vocabulary of %d", vocab);
    if (p->top_k < 0 || p->top_p <= 0 || p->top_p > 1 || p->min_p < 0 || p->min_p > 1 || p->repeat_penalty <= 0)
        return err_set(err, DC_EARG, "sampler: top-k %d, top-p %g, min-p %g, repeat penalty %g out of range",
                       p->top_k, p->top_p, p->min_p, p->repeat_penalty);
    dc_sampler *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, DC_ENOMEM, "sampler: out of memory");
    s->p = *p;
    s->V = vocab;
    rng_seed(&s->r, p->seed);
    s->idx = malloc(sizeof(int) * vocab);
    s->val = malloc(sizeof(float) * vocab);
    s->seen = calloc(vocab, sizeof *s->seen);
    if (!s->idx || !s->val || !s->seen) {
        dc_sampler_free(s);
        return err_set(err, DC_ENOMEM, "sampler: out of memory for %d candidates", vocab);
    }
    *out = s;
    return DC_OK;
}

void dc_sampler_free(dc_sampler *s) {
    if (!s) return;
    free(s->idx);
    free(s->val);
    free(s->seen);
    free(s);
}

static void penalties(dc_sampler *s, float *logits, const int *hist, int n) {
    int from = n - s->p.repeat_last_n < 0 ? 0 : n - s->p.repeat_last_n;
    for (int i = from; i < n; i++)
        if (hist[i] >= 0 && hist[i] < s->V) s->seen[hist[i]]++;
    for (int i = from; i < n; i++) {
        int id = hist[i];
        if (id < 0 || id >= s->V || !s->seen[id]) continue; /* done already */
        float l = logits[id];
        if (s->p.repeat_penalty != 1.0f) l = l > 0 ? l / s->p.repeat_penalty : l * s->p.repeat_penalty;
        logits[id] = l - (s->p.presence_penalty + s->p.frequency_penalty * (float)s->seen[id]);
        s->seen[id] = 0;
    }
}

/* sift-down in a min-heap of n candidates keyed on val */
static void heap_down(int *idx, float *val, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && val[l] < val[m]) m = l;
        if (l + 1 < n && val[l + 1] < val[m]) m = l + 1;
        if (m == i) return;
        float tv = val[i];
        int ti = idx[i];
        val[i] = val[m], idx[i] = idx[m], val[m] = tv, idx[m] = ti;
        i = m;
    }
}

/* sort candidates by logit, descending; ties by id ascending (deterministic) */
static _Thread_local const float *sort_val;
static int by_val(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = sort_val[i], y = sort_val[j];
    return x > y ? -1 : x < y ? 1 : (i > j) - (i < j);
}

/* argmax with NaN below everything (the lowest id on ties); 0 when all are
 * NaN: argmax_f32's rule (the first index of the largest, NaNs never
 * winning) from the first number on (argmax_f32 answers 0 when v[0] is a NaN) */
static int argmax_nan_low(const float *x, int V) {
    int j = 0;
    while (j < V && isnan(x[j])) j++;
    return j == V ? 0 : j + argmax_f32(x + j, V - j);
}

/* candidates after top-k and the far-below cut: ids in s->idx, sorted;
 * returns the count, at least 1 (mx, the largest logit, is finite here).
 * The heap's operations are those of one logit at a time in id order
 * (its ties kept as they came); a block of 16 logits none of which passes
 * the cut and beats the heap's least (nothing to do for any of them) is
 * passed over in one vector compare: with the default top-k 40, 128,896
 * logits took ~0.6 ms in the one-at-a-time loop (its bounds re-read from
 * memory every logit), ~15x a greedy argmax. */
static int candidates(dc_sampler *s, const float *logits, float mx) {
    int n = 0;
    const int k = s->p.top_k > 0 && s->p.top_k < s->V ? s->p.top_k : 0, V = s->V;
    const float lo = mx - 30.0f;
    int *idx = s->idx;
    float *val = s->val, least = -INFINITY; /* the heap's least once full (k) */
    for (int i = 0; i < V;) {
        if (k && n == k && i + 16 <= V) {
            int any = 0;
            for (int j = 0; j < 16; j++) any |= (logits[i + j] >= lo) & (logits[i + j] > least);
            if (!any) {
                i += 16;
                continue;
            }
        }
        const int e = k && n == k && i + 16 <= V ? i + 16 : i + 1;
        for (; i < e; i++) {
            if (!(logits[i] >= lo)) continue;
            if (!k || n < k) {
                idx[n] = i, val[n] = logits[i], n++;
                if (k && n == k) {
                    for (int j = k / 2 - 1; j >= 0; j--) heap_down(idx, val, k, j);
                    least = val[0];
                }
            } else if (logits[i] > least) {
                idx[0] = i, val[0] = logits[i];
                heap_down(idx, val, k, 0);
                least = val[0];
            }
        }
    }
    sort_val = logits;
    qsort(idx, n, sizeof(int), by_val);
    return n;
}

int dc_sample(dc_sampler *s, float *logits, const int *hist, int n_hist) {
    if ((s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0 || s->p.frequency_penalty != 0) && hist)
        penalties(s, logits, hist, n_hist);
    if (s->p.temperature <= 0) return argmax_nan_low(logits, s->V);
    float it = 1.0f / s->p.temperature;
    for (int i = 0; i < s->V; i++) logits[i] *= it;
    int b = argmax_nan_low(logits, s->V);
    float mx = logits[b];
    if (isnan(mx) || mx == -INFINITY) return b; /* nothing to draw from: the defined choice above */
    if (mx == INFINITY) { /* the +inf tokens share the mass equally */
        for (int i = 0; i < s->V; i++) logits[i] = logits[i] == INFINITY ? 0.0f : -INFINITY;
        mx = 0;
    }
    int n = candidates(s, logits, mx);
    /* softmax over the sorted candidates: val[i] is the weight of idx[i] */
    for (int i = 0; i < n; i++) s->val[i] = expf(logits[s->idx[i]] - logits[s->idx[0]]);
    int keep = n;
    if (s->p.min_p > 0)
        for (keep = 1; keep < n && s->val[keep] >= s->p.min_p * s->val[0]; keep++) {}
    if (s->p.top_p < 1) {
        double kept = 0, cum = 0;
        for (int i = 0; i < keep; i++) kept += s->val[i];
        double lim = s->p.top_p * kept;
        int i = 0;
        while (i < keep && (cum += s->val[i]) < lim) i++;
        keep = i + 1 < keep ? i + 1 : keep;
    }
    double tot = 0;
    for (int i = 0; i < keep; i++) tot += s->val[i];
    double u = rng_uniform(&s->r) * tot;
    for (int i = 0; i < keep; i++)
        if ((u -= s->val[i]) < 0) return s->idx[i];
    return s->idx[keep - 1];
}
