/* matvec_ref.c — the plain C oracles of matvec.h: one row, one token, double sums. */
#include "kernels/dtype.h"
#include <stdlib.h>
#include "kernels/fp8_block.h"
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/repack.h"

void mv_f32_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const float *W = Wv;
    const float *x = xv;
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < T; t++) {
            const float *w = W + (size_t)r * cols, *xt = x + (size_t)t * cols;
            double s = 0;
            for (int i = 0; i < cols; i++) s += (double)w[i] * xt[i];
            out[(size_t)t * ldo + r] = (float)s;
        }
}

void mv_bf16_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const uint16_t *W = Wv;
    const float *x = xv;
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < T; t++) {
            const uint16_t *w = W + (size_t)r * cols;
            const float *xt = x + (size_t)t * cols;
            double s = 0;
            for (int i = 0; i < cols; i++) s += (double)bf16_to_f32(w[i]) * xt[i];
            out[(size_t)t * ldo + r] = (float)s;
        }
}

void mv_f16_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const uint16_t *W = Wv;
    const float *x = xv;
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < T; t++) {
            const uint16_t *w = W + (size_t)r * cols;
            const float *xt = x + (size_t)t * cols;
            double s = 0;
            for (int i = 0; i < cols; i++) s += (double)f16_to_f32(w[i]) * xt[i];
            out[(size_t)t * ldo + r] = (float)s;
        }
}

/* FP8 blocks: sum_i d_b * e4m3(q_i) * x_i in double, the codes decoded by
 * dtype.c's definition */
void mv_fp8_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_fp8 *W = Wv;
    const float *x = xv;
    const int nb = cols / QK_FP8;
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < T; t++) {
            const block_fp8 *w = W + (size_t)r * nb;
            const float *xt = x + (size_t)t * cols;
            double s = 0;
            for (int b = 0; b < nb; b++)
                for (int i = 0; i < QK_FP8; i++)
                    s += (double)w[b].d * fp8e4m3_to_f32(w[b].qs[i]) * xt[b * QK_FP8 + i];
            out[(size_t)t * ldo + r] = (float)s;
        }
}

/* Q8_0 x Q8_0: sum over blocks of d_w * d_x * (integer dot of the block) */
void mv_q8_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q8_0 *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK8_0;
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < T; t++) {
            const block_q8_0 *w = W + (size_t)r * nb;
            const int8_t *xq = x->qs + (size_t)t * cols;
            const float *xd = x->d + (size_t)t * nb;
            double s = 0;
            for (int b = 0; b < nb; b++) {
                int isum = 0;
                for (int i = 0; i < QK8_0; i++) isum += w[b].qs[i] * xq[b * QK8_0 + i];
                s += (double)f16_to_f32(w[b].d) * xd[b] * isum;
            }
            out[(size_t)t * ldo + r] = (float)s;
        }
}

/* the ggml block types: dequantise the row (ggml_types.c), then
 * sum_b d_x[b] * sum_i w[b*32+i] * xq[b*32+i] in double */
static void mv_gg_ref(int type, float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x,
                      int T) {
    const int nb = cols / QK8_0;
    const size_t rb = gg_row_bytes(type, cols);
    float *w = malloc(sizeof(float) * (size_t)cols);
    if (!w) return; /* the oracle of tests only; a test sees the unwritten out */
    for (int r = r0; r < r1; r++) {
        gg_dequantize(type, (const char *)W + (size_t)r * rb, w, cols);
        for (int t = 0; t < T; t++) {
            const int8_t *xq = x->qs + (size_t)t * cols;
            const float *xd = x->d + (size_t)t * nb;
            double s = 0;
            for (int b = 0; b < nb; b++) {
                double sb = 0;
                for (int i = 0; i < QK8_0; i++) sb += (double)w[b * QK8_0 + i] * xq[b * QK8_0 + i];
                s += sb * xd[b];
            }
            out[(size_t)t * ldo + r] = (float)s;
        }
    }
    free(w);
}

void mv_q4_0_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const void *W = Wv;
    const q8_act *x = xv;
    mv_gg_ref(GG_Q4_0, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q4_k_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const void *W = Wv;
    const q8_act *x = xv;
    mv_gg_ref(GG_Q4_K, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q6_k_ref(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const void *W = Wv;
    const q8_act *x = xv;
    mv_gg_ref(GG_Q6_K, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q5_0_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_Q5_0, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q4_1_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_Q4_1, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q5_1_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_Q5_1, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q3_k_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_Q3_K, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q2_k_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_Q2_K, out, ldo, W, cols, r0, r1, x, T);
}
void mv_iq4_nl_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_IQ4_NL, out, ldo, W, cols, r0, r1, x, T);
}
void mv_iq4_xs_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_IQ4_XS, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q5_k_ref(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_gg_ref(GG_Q5_K, out, ldo, W, cols, r0, r1, x, T);
}

/* the interleaved layouts (repack.h): each row taken back out as a plain
 * row (ROW: q4_0x8_row ...), then the plain type's oracle; the matrix has
 * ldo rows (matvec.h) */
#define X8_REF(name, GG, PLAIN, QK, ROW)                                                         \
    void name(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) { \
        PLAIN *row = malloc(sizeof(PLAIN) * (size_t)(cols / QK ? cols / QK : 1));                \
        if (!row) return; /* the oracle of tests only */                                       \
        for (int r = r0; r < r1; r++) {                                                          \
            ROW(W, (int)ldo, r, cols, row);                                                      \
            mv_gg_ref(GG, out + r, ldo, row, cols, 0, 1, x, T);                                  \
        }                                                                                        \
        free(row);                                                                               \
    }
X8_REF(mv_q4_0x8_ref, GG_Q4_0, block_q4_0, QK4_0, q4_0x8_row)
X8_REF(mv_q4_kx8_ref, GG_Q4_K, block_q4_K, QK_K, q4_kx8_row)
X8_REF(mv_q6_kx8_ref, GG_Q6_K, block_q6_K, QK_K, q6_kx8_row)
X8_REF(mv_q5_kx8_ref, GG_Q5_K, block_q5_K, QK_K, q5_kx8_row)
X8_REF(mv_q5_0x8_ref, GG_Q5_0, block_q5_0, QK5_0, q5_0x8_row)
X8_REF(mv_q4_1x8_ref, GG_Q4_1, block_q4_1, QK4_1, q4_1x8_row)
X8_REF(mv_q5_1x8_ref, GG_Q5_1, block_q5_1, QK5_1, q5_1x8_row)
X8_REF(mv_q3_kx8_ref, GG_Q3_K, block_q3_K, QK_K, q3_kx8_row)
X8_REF(mv_q2_kx8_ref, GG_Q2_K, block_q2_K, QK_K, q2_kx8_row)
X8_REF(mv_iq4_nlx8_ref, GG_IQ4_NL, block_iq4_nl, QK4_NL, iq4_nlx8_row)
X8_REF(mv_iq4_xsx8_ref, GG_IQ4_XS, block_iq4_xs, QK_K, iq4_xsx8_row)
