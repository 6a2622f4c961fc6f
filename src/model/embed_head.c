/* embed_head.c — see embed_head.h. */
#include "model/embed_head.h"
#include <string.h>
#include "kernels/ggml_types.h"
#include "model/norm.h"

void embed_row_f32(float *dst, const void *table, int gtype, int r, int C) {
    size_t rb = gtype == GG_F32 ? sizeof(float) * C : gg_row_bytes(gtype, C);
    const char *row = (const char *)table + rb * (size_t)r;
    if (gtype == GG_F32) memcpy(dst, row, rb);
    else gg_dequantize(gtype, row, dst, C);
}

/* real_row: row r into x (C) of type real; GG_F32 here means a table of real
 * (the trainer's parameters, double in the gradient-check build) */
static void real_row(real *x, const void *table, int gtype, int r, int C) {
    if (gtype == GG_F32) {
        memcpy(x, (const real *)table + (size_t)r * C, sizeof(real) * C);
        return;
    }
    if (sizeof(real) == sizeof(float)) {
        embed_row_f32((float *)(void *)x, table, gtype, r, C);
        return;
    }
    float tmp[QK_K]; /* C is whole blocks, and QK_K a multiple of every block size */
    size_t rb = gg_row_bytes(gtype, C), cb = gg_row_bytes(gtype, QK_K);
    const char *row = (const char *)table + rb * (size_t)r;
    for (int k = 0; k < C; k += QK_K) {
        int m = C - k < QK_K ? C - k : QK_K;
        gg_dequantize(gtype, row + cb * (size_t)(k / QK_K), tmp, m);
        for (int j = 0; j < m; j++) x[k + j] = tmp[j];
    }
}

void embed_rows(real *x, const void *table, int gtype, const int *ids, int n, int C) {
    for (int i = 0; i < n; i++) real_row(x + (size_t)i * C, table, gtype, ids[i], C);
}

void mtp_input(real *x, real *cat, real *e_rstd, real *h_rstd, const real *e, const real *h, const real *enorm,
               const real *hnorm, const mat *eh_proj, int n, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)n * C > 65536)
    for (int i = 0; i < n; i++) {
        rmsnorm_row_fwd(cat + (size_t)i * 2 * C, e_rstd ? e_rstd + i : NULL, e + (size_t)i * C, enorm, C, eps);
        rmsnorm_row_fwd(cat + (size_t)i * 2 * C + C, h_rstd ? h_rstd + i : NULL, h + (size_t)i * C, hnorm, C, eps);
    }
    matmul(x, cat, eh_proj, n); /* (n, C) */
}

void head_logits(float *logits, const float *h, const mat *head, int n) { matmul(logits, h, head, n); }
