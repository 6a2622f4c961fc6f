/*
 * ffn.c — the SwiGLU feed-forward of dense layers and of every expert:
 * out = down( silu(gate(x)) * up(x) ), silu(a) = a / (1 + e^-a).
 */
#include <math.h>
#include "model/model.h"
#include "model/train_layers.h"

void ffn_forward(scratch *s, const mat *gate, const mat *up, const mat *down, int T, const float *xn, float *out) {
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

void swiglu_train_fwd(real *y, const ffn_act *s, const ffn_w *p, const real *x, int N, int C, int Iw) {
    linear_fwd(s->h1, x, p->gate, N, C, Iw);
    linear_fwd(s->h3, x, p->up, N, C, Iw);
    size_t n = (size_t)N * Iw;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        real a = s->h1[i];
        s->a[i] = a / (1 + rexp(-a)) * s->h3[i];
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
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        real h = s->h1[i], sg = 1 / (1 + rexp(-h));
        dh3[i] = da[i] * h * sg;
        dh1[i] = da[i] * s->h3[i] * sg * (1 + h * (1 - sg));
    }
    /* h1 = x @ gate^T, h3 = x @ up^T */
    linear_bwd(dx, g->gate, dh1, x, p->gate, N, C, Iw);
    linear_bwd(dx, g->up, dh3, x, p->up, N, C, Iw);
}
