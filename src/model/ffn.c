/*
 * ffn.c — the SwiGLU feed-forward of dense layers and of every expert:
 * out = down( silu(gate(x)) * up(x) ), silu(a) = a / (1 + e^-a).
 */
#include <math.h>
#include "model/model.h"

void ffn_forward(scratch *s, const mat *gate, const mat *up, const mat *down, int T, const float *xn, float *out) {
    int I = gate->rows;
    matmul(s->h1, xn, gate, T); /* (T, I) */
    matmul(s->h3, xn, up, T);   /* (T, I) */
    size_t n = (size_t)T * I;
    for (size_t i = 0; i < n; i++) {
        float a = s->h1[i];
        s->h1[i] = a / (1.0f + expf(-a)) * s->h3[i];
    }
    matmul(out, s->h1, down, T); /* (T, C) */
}
