/* optim.c — see optim.h. */
#include "train/optim.h"
#include <math.h>
#include <omp.h>
#include <string.h>
#include "kernels/dtype.h"
#include "kernels/vexp.h"

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
    for (size_t c = c0; c < c1; c++) { /* eight lanes from the chunk's start: the same bits on any rank count */
        size_t a = c * CH > lo ? c * CH : lo, b = (c + 1) * CH < hi ? (c + 1) * CH : hi;
        part[c] = vsumsq_d(g + (a - lo), b - a);
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

size_t adam_mom_bytes(size_t n, int bf16) { return n * (bf16 ? sizeof(uint16_t) : sizeof(float)); }

adam_mom adam_mom_at(adam_mom s, size_t i) {
    size_t b = adam_mom_bytes(i, s.bf16);
    return (adam_mom){(char *)s.m + b, (char *)s.v + b, s.bf16};
}

static void mom_get(const void *src, int bf16, size_t i, size_t n, float *dst) {
    if (!dst) return;
    if (!bf16) {
        memcpy(dst, (const float *)src + i, n * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)src + i;
    for (size_t j = 0; j < n; j++) dst[j] = bf16_to_f32(h[j]);
}

static void mom_put(void *dst, int bf16, size_t i, size_t n, const float *src) {
    if (!src) return;
    if (!bf16) {
        memcpy((float *)dst + i, src, n * sizeof(float));
        return;
    }
    uint16_t *h = (uint16_t *)dst + i;
    for (size_t j = 0; j < n; j++) h[j] = f32_to_bf16(src[j]);
}

void adam_mom_get(const adam_mom *s, size_t i, size_t n, float *m, float *v) {
    mom_get(s->m, s->bf16, i, n, m), mom_get(s->v, s->bf16, i, n, v);
}

void adam_mom_put(adam_mom *s, size_t i, size_t n, const float *m, const float *v) {
    mom_put(s->m, s->bf16, i, n, m), mom_put(s->v, s->bf16, i, n, v);
}

/* one tensor's elements: p = p decay - step_size m / (sqrt(v) / bc2s + eps),
 * the moments read and written in their storage type */
typedef struct adam_k {
    float b1, b2, eps, scale, decay, step_size, bc2s;
} adam_k;

/* adam_run: elements [0, ne) with the constants as values: read through k
 * inside the loop, every store to p, m or v (float, like k's fields) might
 * change them, and the loop did not vectorise (issue 15); nor would it while
 * sqrtf may set errno (a branch to libm per element): the Makefile builds
 * this file with -fno-math-errno (v >= 0 here, so that changes nothing
 * else). The same operations: the same bits. */
static void adam_run(adam_k k, float *pp, const float *gg, float *mm, float *vv, size_t ne) {
    const float c1 = 1 - k.b1, c2 = 1 - k.b2;
#pragma omp simd
    for (size_t j = 0; j < ne; j++) {
        float gj = gg[j] * k.scale, mj = k.b1 * mm[j] + c1 * gj, vj = k.b2 * vv[j] + c2 * gj * gj;
        mm[j] = mj, vv[j] = vj;
        pp[j] = pp[j] * k.decay - k.step_size * mj / (sqrtf(vj) / k.bc2s + k.eps);
    }
}

/* a chunk of one tensor's elements in its moments' storage type */
static void adam_chunk(const adam_k *k, adam_mom mv, float *pp, const float *gg, size_t mo, size_t ne) {
    adam_mom at = adam_mom_at(mv, mo);
    if (!mv.bf16) {
        adam_run(*k, pp, gg, at.m, at.v, ne);
        return;
    }
    uint16_t *mm = at.m, *vv = at.v;
    for (size_t j = 0; j < ne; j++) {
        float gj = gg[j] * k->scale;
        mm[j] = f32_to_bf16(k->b1 * bf16_to_f32(mm[j]) + (1 - k->b1) * gj);
        vv[j] = f32_to_bf16(k->b2 * bf16_to_f32(vv[j]) + (1 - k->b2) * gj * gj);
        const float m = bf16_to_f32(mm[j]), v = bf16_to_f32(vv[j]); /* the update uses the stored values */
        pp[j] = pp[j] * k->decay - k->step_size * m / (sqrtf(v) / k->bc2s + k->eps);
    }
}

/* every tensor's elements in [lo, hi) in ONE parallel region, chunks of
 * ADAM_CH dealt round-robin over the threads (issue 15: a region per tensor
 * was ~200 a step, each waking the other threads); elementwise, so the same
 * bits on any thread count */
#define ADAM_CH 16384
void adamw_update_range(const wt_entry *tab, int ntab, const float *arena, float *p, const float *g, adam_mom mv,
                        size_t lo, size_t hi, const train_opts *o, int64_t step, float lr, float scale) {
    const int64_t st = step + 1;
    const double bc1 = 1 - pow(o->beta1, (double)st), bc2 = 1 - pow(o->beta2, (double)st);
    const adam_k k0 = {o->beta1, o->beta2, o->eps, scale, 1, (float)(lr / bc1), (float)sqrt(bc2)};
#pragma omp parallel if (hi - lo > 65536)
    {
        const size_t me = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        size_t c = 0;
        adam_k k = k0;
        for (int i = 0; i < ntab; i++) {
            const wt_entry *e = &tab[i];
            if (e->alias || e->kind == WT_BIAS) continue;
            size_t off = (size_t)(*e->dst - arena), end = off + wt_numel(e);
            size_t a = off > lo ? off : lo, b = end < hi ? end : hi;
            k.decay = e->kind == WT_NORM ? 1.0f : 1.0f - lr * o->wd;
            for (size_t j = a; j < b; j += ADAM_CH, c++)
                if (c % nth == me) adam_chunk(&k, mv, p + j, g + (j - lo), j - lo, b - j < ADAM_CH ? b - j : ADAM_CH);
        }
    }
}

void adamw_update(const wt_entry *tab, int ntab, float *arena, size_t n, adam_mom mv, const train_opts *o,
                  int64_t step, float lr, float scale) {
    adamw_update_range(tab, ntab, arena, arena, arena + n, mv, 0, n, o, step, lr, scale);
}

void router_bias_update(float *bias, const int *load, int E, float gamma) {
    double mean = 0;
    for (int e = 0; e < E; e++) mean += load[e];
    mean /= E;
    for (int e = 0; e < E; e++) bias[e] += gamma * (float)((mean > load[e]) - (mean < load[e]));
}
