/* optim.c — see optim.h. */
#include "train/optim.h"
#include <math.h>
#include <string.h>
#include "kernels/dtype.h"

void train_opts_default(train_opts *o) {
    *o = (train_opts){.B = 8, .T = 256, .accum = 1, .lr = 3e-3f, .min_lr = 3e-4f, .warmup = 20, .steps = 200,
                      .sched = SCHED_COSINE, .wsd_decay = 0.2f, .wd = 0.1f, .clip = 1.0f, .beta1 = 0.9f,
                      .beta2 = 0.95f, .eps = 1e-8f, .mtp_lambda = 0.3f, .aux_alpha = 1e-4f, .bias_gamma = 1e-2f};
}

float sched_lr(const train_opts *o, int64_t s) {
    if (s < o->warmup) return o->lr * (float)(s + 1) / (float)o->warmup;
    if (o->sched == SCHED_CONST || o->steps <= o->warmup) return o->lr;
    double p = (double)(s - o->warmup) / (double)(o->steps - o->warmup);
    if (p > 1) p = 1;
    if (o->sched == SCHED_COSINE) return (float)(o->min_lr + 0.5 * (o->lr - o->min_lr) * (1 + cos(M_PI * p)));
    /* WSD: stable at the peak, then linear decay over the last wsd_decay of the steps */
    double start = 1.0 - o->wsd_decay;
    if (p <= start) return o->lr;
    return (float)(o->lr + (o->min_lr - o->lr) * (p - start) / o->wsd_decay);
}

size_t grad_chunk(size_t n) {
    size_t CH = n / 4096 + 1; /* at most ~4096 chunks: part[] stays small on the stack */
    return CH < (1 << 16) ? (size_t)1 << 16 : CH;
}

void grad_sumsq_parts(const float *g, size_t lo, size_t hi, size_t CH, double *part) {
    size_t c0 = lo / CH, c1 = (hi + CH - 1) / CH;
#pragma omp parallel for schedule(static)
    for (size_t c = c0; c < c1; c++) {
        double s = 0;
        for (size_t i = c * CH; i < hi && i < (c + 1) * CH; i++) s += (double)g[i - lo] * g[i - lo];
        part[c] = s;
    }
}

double grad_sumsq(const float *g, size_t n) {
    size_t CH = grad_chunk(n), nc = (n + CH - 1) / CH;
    double part[nc ? nc : 1];
    grad_sumsq_parts(g, 0, n, CH, part);
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    return s;
}

/* adamw_run: elements [0, ne) of one tensor's slice (bf16_moments off). The
 * options arrive as values: read through `o` inside the loop, every store to
 * p, m or v (float, like o's fields) might change them, and the loop did not
 * vectorise (issue 15); nor would it while sqrtf may set errno (a branch to
 * libm per element): the Makefile builds this file with -fno-math-errno (v >=
 * 0 here, so that changes nothing else). The same operations: the same bits
 * as before. */
static void adamw_run(float *pp, float *mm, float *vv, const float *gg, size_t ne, float b1, float b2, float eps,
                      float decay, float step_size, float bc2s, float scale) {
    const float c1 = 1 - b1, c2 = 1 - b2;
#pragma omp simd
    for (size_t j = 0; j < ne; j++) {
        float gj = gg[j] * scale, mj = b1 * mm[j] + c1 * gj, vj = b2 * vv[j] + c2 * gj * gj;
        mm[j] = mj, vv[j] = vj;
        pp[j] = pp[j] * decay - step_size * mj / (sqrtf(vj) / bc2s + eps);
    }
}

/* adamw_span: one tensor's slice, in chunks over the threads */
static void adamw_span(float *pp, float *mm, float *vv, const float *gg, size_t ne, const train_opts *o, float decay,
                       float step_size, float bc2s, float scale) {
    if (o->bf16_moments) {
#pragma omp parallel for schedule(static) if (ne > 65536)
        for (size_t j = 0; j < ne; j++) {
            float gj = gg[j] * scale;
            mm[j] = bf16_to_f32(f32_to_bf16(o->beta1 * mm[j] + (1 - o->beta1) * gj));
            vv[j] = bf16_to_f32(f32_to_bf16(o->beta2 * vv[j] + (1 - o->beta2) * gj * gj));
            pp[j] = pp[j] * decay - step_size * mm[j] / (sqrtf(vv[j]) / bc2s + o->eps);
        }
        return;
    }
    const size_t CH = 16384, nc = (ne + CH - 1) / CH;
#pragma omp parallel for schedule(static) if (ne > 65536)
    for (size_t c = 0; c < nc; c++) {
        size_t j = c * CH, n = ne - j < CH ? ne - j : CH;
        adamw_run(pp + j, mm + j, vv + j, gg + j, n, o->beta1, o->beta2, o->eps, decay, step_size, bc2s, scale);
    }
}

void adamw_update_range(const wt_entry *tab, int ntab, const float *arena, float *p, const float *g, float *m,
                        float *v, size_t lo, size_t hi, const train_opts *o, int64_t step, float lr, float scale) {
    const int64_t st = step + 1;
    const double bc1 = 1 - pow(o->beta1, (double)st), bc2 = 1 - pow(o->beta2, (double)st);
    const float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
    for (int i = 0; i < ntab; i++) {
        const wt_entry *e = &tab[i];
        if (e->alias || e->kind == WT_BIAS) continue;
        size_t off = (size_t)(*e->dst - arena), end = off + wt_numel(e);
        size_t a = off > lo ? off : lo, b = end < hi ? end : hi;
        if (a >= b) continue;
        float decay = e->kind == WT_NORM ? 1.0f : 1.0f - lr * o->wd;
        adamw_span(p + a, m + (a - lo), v + (a - lo), g + (a - lo), b - a, o, decay, step_size, bc2s, scale);
    }
}

void adamw_update(const wt_entry *tab, int ntab, float *arena, size_t n, const train_opts *o, int64_t step,
                  float lr, float scale) {
    adamw_update_range(tab, ntab, arena, arena, arena + n, arena + 2 * n, arena + 3 * n, 0, n, o, step, lr, scale);
}

void router_bias_update(float *bias, const int *load, int E, float gamma) {
    double mean = 0;
    for (int e = 0; e < E; e++) mean += load[e];
    mean /= E;
    for (int e = 0; e < E; e++) bias[e] += gamma * (float)((mean > load[e]) - (mean < load[e]));
}
