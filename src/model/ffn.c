/*
 * ffn.c — the SwiGLU feed-forward of dense layers and of every expert:
 * out = down( silu(gate(x)) * up(x) ), silu(a) = a / (1 + e^-a).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include "model/model.h"
#include "model/train_layers.h"
#include "kernels/rvec.h"

/* ffn_fused: the three products in ONE parallel region (issue 15: decode ran
 * a region per product, ~170 a token, 12% of its time in barriers), when
 * matmul would take the matvec kernels for all three: x is quantised once
 * for gate and up, each thread applies SwiGLU to the rows of h it computed,
 * and after a barrier h is quantised (tokens shared out) and, after another,
 * multiplied by down. The same kernels on the same rows: the bits of the
 * three matmul calls. 0 when it does not apply (the caller runs those). */
static int ffn_fused(scratch *s, const mat *gate, const mat *up, const mat *down, int T, const float *xn, float *out) {
    if (!matmul_is_mv(gate, T) || !matmul_is_mv(up, T) || !matmul_is_mv(down, T)) return 0;
    mv_act ax, au, ah;
    if (!mv_act_init(&ax, 0, gate, T) || !mv_act_init(&au, 0, up, T) || !mv_act_init(&ah, 1, down, T) || ax.q != au.q)
        return 0;
    const int I = gate->rows;
    int nthr = (size_t)I * gate->cols * T < 32768 ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    {
        int i = omp_get_thread_num(), n = omp_get_num_threads();
        mv_act_fill(&ax, xn, T, i, n);
#pragma omp barrier
        matmul_mv_share(s->h1, xn, &ax, gate, T, i, n);
        matmul_mv_share(s->h3, xn, &ax, up, T, i, n);
        int r0 = (int)((int64_t)I * i / n), r1 = (int)((int64_t)I * (i + 1) / n); /* the rows this thread made */
        for (int t = 0; t < T; t++)
            for (int r = r0; r < r1; r++) {
                size_t k = (size_t)t * I + r;
                float a = s->h1[k];
                s->h1[k] = a / (1.0f + expf(-a)) * s->h3[k];
            }
#pragma omp barrier
        mv_act_fill(&ah, s->h1, T, i, n);
#pragma omp barrier
        matmul_mv_share(out, s->h1, &ah, down, T, i, n);
    }
    return 1;
}

void ffn_forward(scratch *s, const mat *gate, const mat *up, const mat *down, int T, const float *xn, float *out) {
    if (ffn_fused(s, gate, up, down, T, xn, out)) return;
    int Iw = gate->rows;
    matmul(s->h1, xn, gate, T); /* (T, I) */
    matmul(s->h3, xn, up, T);   /* (T, I) */
    size_t n = (size_t)T * Iw;
    for (size_t i = 0; i < n; i++) {
        float a = s->h1[i];
        s->h1[i] = a / (1.0f + expf(-a)) * s->h3[i];
    }
    matmul(out, s->h1, down, T); /* (T, C) */
}

/* ---------------------------------------------------------------- training */

enum { SW_BLOCK = 4096 }; /* elements per task of the elementwise passes (a multiple of 8) */

void swiglu_train_fwd(real *y, const ffn_act *s, const ffn_w *p, const real *x, int N, int C, int Iw) {
    linear_fwd(s->h1, x, p->gate, N, C, Iw);
    linear_fwd(s->h3, x, p->up, N, C, Iw);
    size_t n = (size_t)N * Iw, nb = (n + SW_BLOCK - 1) / SW_BLOCK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < nb; b++) {
        size_t o = b * SW_BLOCK, m = n - o < SW_BLOCK ? n - o : SW_BLOCK;
        rv_swiglu(s->a + o, s->h1 + o, s->h3 + o, m);
    }
    linear_fwd(y, s->a, p->down, N, Iw, C);
}

void swiglu_bwd(real *dx, const ffn_w *g, const real *dy, const real *x, const ffn_act *s, const ffn_w *p, int N,
                int C, int Iw, real *scratch) {
    size_t n = (size_t)N * Iw;
    real *da = scratch, *dh1 = scratch + n, *dh3 = scratch + 2 * n;
    /* y = a @ down^T */
    for (size_t i = 0; i < n; i++) da[i] = 0;
    linear_bwd(da, g->down, dy, s->a, p->down, N, Iw, C);
    /* a = silu(h1) * h3; silu'(h) = sig(h) * (1 + h * (1 - sig(h))) */
    size_t nb = (n + SW_BLOCK - 1) / SW_BLOCK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < nb; b++) {
        size_t o = b * SW_BLOCK, m = n - o < SW_BLOCK ? n - o : SW_BLOCK;
        rv_swiglu_bwd(dh1 + o, dh3 + o, da + o, s->h1 + o, s->h3 + o, m);
    }
    /* h1 = x @ gate^T, h3 = x @ up^T */
    linear_bwd(dx, g->gate, dh1, x, p->gate, N, C, Iw);
    linear_bwd(dx, g->up, dh3, x, p->up, N, C, Iw);
}
