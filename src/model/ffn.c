/*
 * ffn.c — the SwiGLU feed-forward of dense layers and of every expert:
 * out = down( silu(gate(x)) * up(x) ), silu(a) = a / (1 + e^-a).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "model/model.h"
#include "model/train_layers.h"
#include "kernels/rvec.h"

/* ffn_fused: the three products in ONE parallel region (issue 15: decode ran
 * a region per product, ~170 a token, 12% of its time in barriers), when
 * matmul would take the matvec kernels for all three: x is quantised once
 * for gate and up, each thread applies SwiGLU to the rows of h it computed,
 * and after a barrier h is quantised (tokens shared out) and, after another,
 * multiplied by down. The same kernels on the same rows: the bits of the
 * three matmul calls. 0 when it does not apply (the caller runs those).
 * fused_prep: the activations into a[0..2] on the calling thread (its
 * workspace); fused_run: the phases on thread t->i of t->n (a decode step's
 * one region runs them too: ffn_one_team). */
static int fused_prep(mv_act *a, const mat *gate, const mat *up, const mat *down, int T) {
    if (!matmul_is_mv(gate, T) || !matmul_is_mv(up, T) || !matmul_is_mv(down, T)) return 0;
    return mv_act_init(&a[0], 0, gate, T) && mv_act_init(&a[1], 0, up, T) && mv_act_init(&a[2], 1, down, T) &&
           a[0].q == a[1].q;
}

static void fused_run(const team *t, mv_act *a, float *h1, float *h3, const mat *gate, const mat *up,
                      const mat *down, int T, const float *xn, float *out) {
    const int i = t->i, n = t->n, I = gate->rows;
    mv_act_fill(&a[0], xn, T, i, n);
    team_sync(t);
    matmul_mv_share(h1, xn, &a[0], gate, T, i, n);
    matmul_mv_share(h3, xn, &a[0], up, T, i, n);
    int r0 = (int)((int64_t)I * i / n), r1 = (int)((int64_t)I * (i + 1) / n); /* the rows this thread made */
    for (int k = 0; k < T; k++)
        for (int r = r0; r < r1; r++) {
            size_t j = (size_t)k * I + r;
            float v = h1[j];
            h1[j] = v / (1.0f + expf(-v)) * h3[j];
        }
    team_sync(t);
    mv_act_fill(&a[2], h1, T, i, n);
    team_sync(t);
    matmul_mv_share(out, h1, &a[2], down, T, i, n);
}

static int ffn_fused(float *h1, float *h3, const mat *gate, const mat *up, const mat *down, int T, const float *xn,
                     float *out) {
    mv_act a[3];
    if (!fused_prep(a, gate, up, down, T)) return 0;
    int nthr = (size_t)gate->rows * gate->cols * T < 32768 ? 1 : omp_get_max_threads();
    team_bar bar;
    team_bar_init(&bar);
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    {
        team t = team_of(&bar);
        fused_run(&t, a, h1, h3, gate, up, down, T, xn, out);
    }
    return 1;
}

int ffn_one_fits(const mat *gate, const mat *up) { return wtype_get(gate->type)->act == wtype_get(up->type)->act; }

int ffn_one_team(const team *t, one_share *sh, scratch *s, const mat *gate, const mat *up, const mat *down,
                 const float *xn, float *out) {
    if (t->i == 0) sh->ok = fused_prep(sh->a, gate, up, down, 1);
    team_sync(t);
    if (!sh->ok) return 0;
    fused_run(t, sh->a, s->h1, s->h3, gate, up, down, 1, xn, out);
    return 1;
}

void ffn_forward_h(float *h1, float *h3, const mat *gate, const mat *up, const mat *down, int T, const float *xn,
                   float *out) {
    if (ffn_fused(h1, h3, gate, up, down, T, xn, out)) return;
    int Iw = gate->rows;
    matmul(h1, xn, gate, T); /* (T, I) */
    matmul(h3, xn, up, T);   /* (T, I) */
    size_t n = (size_t)T * Iw;
    for (size_t i = 0; i < n; i++) {
        float a = h1[i];
        h1[i] = a / (1.0f + expf(-a)) * h3[i];
    }
    matmul(out, h1, down, T); /* (T, C) */
}

void ffn_forward(scratch *s, const mat *gate, const mat *up, const mat *down, int T, const float *xn, float *out) {
    ffn_forward_h(s->h1, s->h3, gate, up, down, T, xn, out);
}

/* ---------------------------------------------------------------- training
 *
 * gate and up read the same x: where up follows gate in memory, [gate; up]
 * is one (2 Iw, C) matrix and each of the three products of the pair is one
 * GEMM (issue 15: x packed once, not twice; dx summed over K = 2 Iw in one
 * pass). The trainer's arena lays them out so (trainer_point: consecutive
 * table entries, 16-float aligned, so whenever Iw C is a multiple of 16). The
 * activations keep h = [gate(x) | up(x)] per row either way; elsewhere (and
 * under FP8 when Iw is not whole 128-blocks, whose scales must stay per
 * matrix) the pair runs as two products copied through a (N, Iw) buffer. */

/* gu_joint: whether [gate; up] (and their gradients, g may be NULL) are one matrix */
static int gu_joint(const lin_ctx *lc, const ffn_w *p, const ffn_w *g, int C, int Iw) {
    size_t n = (size_t)Iw * C;
    if (p->up != p->gate + n || (g && g->up != g->gate + n)) return 0;
    return lin_prec(lc) != PREC_FP8 || Iw % 128 == 0;
}

/* half_copy: between a (N, Iw) and half `side` (0 left, 1 right) of h's (N, 2 Iw) rows */
static void half_copy(real *h, real *a, int N, int Iw, int side, int to_h) {
#pragma omp parallel for schedule(static) if ((size_t)N * Iw > 65536)
    for (int t = 0; t < N; t++) {
        real *hr = h + (size_t)t * 2 * Iw + (size_t)side * Iw, *ar = a + (size_t)t * Iw;
        memcpy(to_h ? hr : ar, to_h ? ar : hr, sizeof(real) * Iw);
    }
}

void swiglu_train_fwd(lin_ctx *lc, real *y, const ffn_act *s, const ffn_w *p, const real *x, int N, int C, int Iw) {
    if (gu_joint(lc, p, NULL, C, Iw)) {
        linear_fwd(lc, s->h, x, p->gate, N, C, 2 * Iw); /* (N, 2 Iw) = x @ [gate; up]^T */
    } else {
        linear_fwd(lc, s->a, x, p->gate, N, C, Iw);
        half_copy(s->h, s->a, N, Iw, 0, 1);
        linear_fwd(lc, s->a, x, p->up, N, C, Iw);
        half_copy(s->h, s->a, N, Iw, 1, 1);
    }
#pragma omp parallel for schedule(static) if ((size_t)N * Iw > 65536)
    for (int t = 0; t < N; t++) {
        const real *h = s->h + (size_t)t * 2 * Iw;
        rv_swiglu(s->a + (size_t)t * Iw, h, h + Iw, Iw);
    }
    linear_fwd(lc, y, s->a, p->down, N, Iw, C);
}

void swiglu_bwd(lin_ctx *lc, real *dx, const ffn_w *g, const real *dy, const real *x, const ffn_act *s, const ffn_w *p,
                int N, int C, int Iw, real *scratch) {
    size_t n = (size_t)N * Iw;
    real *da = scratch, *dh = scratch + n; /* (N, Iw), (N, 2 Iw) = [dh1 | dh3] */
    /* y = a @ down^T */
    rv_zero(da, n);
    linear_bwd(lc, da, g->down, dy, s->a, p->down, N, Iw, C);
    /* a = silu(h1) * h3; silu'(h) = sig(h) * (1 + h * (1 - sig(h))) */
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int t = 0; t < N; t++) {
        const real *h = s->h + (size_t)t * 2 * Iw;
        real *d = dh + (size_t)t * 2 * Iw;
        rv_swiglu_bwd(d, d + Iw, da + (size_t)t * Iw, h, h + Iw, Iw);
    }
    /* [h1 | h3] = x @ [gate; up]^T */
    if (gu_joint(lc, p, g, C, Iw)) {
        linear_bwd(lc, dx, g->gate, dh, x, p->gate, N, C, 2 * Iw);
        return;
    }
    half_copy(dh, da, N, Iw, 0, 0); /* da is free now */
    linear_bwd(lc, dx, g->gate, da, x, p->gate, N, C, Iw);
    half_copy(dh, da, N, Iw, 1, 0);
    linear_bwd(lc, dx, g->up, da, x, p->up, N, C, Iw);
}
