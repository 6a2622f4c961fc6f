/* quant.c — see quant.h. */
#include "kernels/quant.h"
#include <math.h>
#include "kernels/dtype.h"

/* one block: scale and values as llama.cpp's reference quantize_row_q8_0 */
static float q8_block(int8_t *q, const float *x) {
    float amax = 0;
    for (int i = 0; i < QK8_0; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    /* roundf (half away from zero), written so the loop vectorises */
    for (int i = 0; i < QK8_0; i++) {
        float v = x[i] * id;
        q[i] = (int8_t)(int)(v + (v >= 0 ? 0.5f : -0.5f));
    }
    return d;
}

void q8_quantize_row(block_q8_0 *dst, const float *src, int n) {
    for (int b = 0; b < n / QK8_0; b++) dst[b].d = f32_to_f16(q8_block(dst[b].qs, src + (size_t)b * QK8_0));
}

void q8_dequantize_row(float *dst, const block_q8_0 *src, int n) {
    for (int b = 0; b < n / QK8_0; b++) {
        float d = f16_to_f32(src[b].d);
        float *o = dst + (size_t)b * QK8_0;
        const int8_t *q = src[b].qs;
#pragma omp simd
        for (int i = 0; i < QK8_0; i++) o[i] = d * q[i];
    }
}

void bf16_from_f32_row(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

void bf16_to_f32_row(float *dst, const uint16_t *src, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The arrays follow one another, each start moved on by SKEW bytes more: a
 * kernel reads qs and xp8 / c16 of the same token and block together, at
 * the same offset in their arrays, and with T a power of two the arrays'
 * sizes are too, so unskewed starts share cache sets (q6_k's matmul at
 * T = 256 / 512 ran 25% slower than at T = 252 / 260). */
#define SKEW 320

size_t q8_act_bytes(int T, int cols) {
    size_t n = (size_t)T * cols;
    return up64(n) + up64(n / QK8_0 * 4) * 2 + up64(n / 4 * 4) * 2 + up64(n) + up64(n / 16 * 4) + 6 * SKEW;
}

void q8_act_point(q8_act *a, void *buf, int T, int cols) {
    size_t n = (size_t)T * cols;
    char *p = buf;
    a->T = T;
    a->cols = cols;
    a->qs = (int8_t *)p;
    a->d = (float *)(p += up64(n) + SKEW);
    a->d4 = (float *)(p += up64(n / QK8_0 * 4) + SKEW);
    a->c4 = (int32_t *)(p += up64(n / 4 * 4) + SKEW);
    a->xp8 = (int16_t *)(p += up64(n / 4 * 4) + SKEW);
    a->c16 = (int32_t *)(p += up64(n) + SKEW);
    a->ds = (float *)(p + up64(n / 16 * 4) + SKEW);
}

void q8_act_fill(q8_act *a, const float *x, int t0, int t1) {
    const size_t nb = (size_t)a->cols / QK8_0;
    for (size_t b = (size_t)t0 * nb; b < (size_t)t1 * nb; b++) {
        const int8_t *q = a->qs + b * QK8_0;
        float d = a->d[b] = q8_block(a->qs + b * QK8_0, x + b * QK8_0);
        int16_t pair[QK8_0 / 2];
        int32_t g4[QK8_0 / 4];
        /* plain loops over fixed sizes, so they vectorise */
        for (int i = 0; i < QK8_0 / 2; i++) pair[i] = (int16_t)(q[2 * i] + q[2 * i + 1]);
        for (int g = 0; g < QK8_0 / 4; g++) g4[g] = pair[2 * g] + pair[2 * g + 1];
        int sum = 0;
        for (int g = 0; g < QK8_0 / 4; g++) sum += g4[g];
        for (int i = 0; i < QK8_0 / 2; i++) a->xp8[b * (QK8_0 / 2) + i] = (int16_t)(8 * pair[i]);
        for (int h = 0; h < 2; h++) { /* |sum| <= 8 * 127: 32 times it fits int16 */
            int ev = 0, od = 0;
            for (int k = 0; k < 4; k++) ev += pair[8 * h + 2 * k], od += pair[8 * h + 2 * k + 1];
            a->c16[b * 2 + h] = (int32_t)((uint32_t)(uint16_t)(32 * ev) | (uint32_t)(uint16_t)(32 * od) << 16);
        }
        for (int g = 0; g < QK8_0 / 4; g++) {
            a->d4[b * 8 + g] = d;
            a->c4[b * 8 + g] = -128 * g4[g];
        }
        a->ds[b] = d * (float)sum;
    }
}

void q8_act_quantize(q8_act *a, void *buf, const float *x, int T, int cols) {
    q8_act_point(a, buf, T, cols);
    q8_act_fill(a, x, 0, T);
}

q8_act q8_act_view(const q8_act *a, int t0, int n) {
    size_t c = (size_t)a->cols, t = (size_t)t0;
    return (q8_act){n,
                    a->cols,
                    a->qs + t * c,
                    a->d + t * (c / QK8_0),
                    a->d4 + t * (c / 4),
                    a->c4 + t * (c / 4),
                    a->xp8 + t * (c / 2),
                    a->c16 + t * (c / 16),
                    a->ds + t * (c / QK8_0)};
}
