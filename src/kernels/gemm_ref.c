/* gemm_ref.c — gemm.h's packers and micro-kernel in plain C: the oracle of
 * gemm_avx2.c. The packers convert as the types' row functions do (exact
 * for f32, bf16, f16; fp8 is d * e4m3(q)); the micro-kernel forms each
 * out[i][j] by fmaf in ascending k from zero and adds c once at the end, as
 * the AVX2 kernel does lane by lane, so the two agree to the bit wherever
 * fmaf is a fused multiply-add. */
#include <math.h>
#include <string.h>
#include "kernels/dtype.h"
#include "kernels/fp8_block.h"
#include "kernels/gemm.h"

/* n values of a row from value k0 on, as float32 */
typedef void (*seg_fn)(float *dst, const void *row, int k0, int n);

static void seg_f32(float *d, const void *row, int k0, int n) { memcpy(d, (const float *)row + k0, sizeof(float) * n); }
static void seg_bf16(float *d, const void *row, int k0, int n) { bf16_to_f32_n(d, (const uint16_t *)row + k0, n); }
static void seg_f16(float *d, const void *row, int k0, int n) { f16_to_f32_n(d, (const uint16_t *)row + k0, n); }
static void seg_fp8(float *d, const void *row, int k0, int n) { fp8_to_f32_row((const block_fp8 *)row + k0 / QK_FP8, d, n); }

/* rows [r, r + nr) of (rows of rb bytes) W, columns [k0, k0 + kc), into dst[k * NR + j] */
static void pack_seg(float *dst, const void *W, size_t rb, int r, int nr, int k0, int kc, seg_fn seg) {
    float tmp[GEMM_KC];
    for (int j = 0; j < GEMM_NR; j++) {
        if (j < nr) seg(tmp, (const char *)W + (size_t)(r + j) * rb, k0, kc);
        for (int k = 0; k < kc; k++) dst[(size_t)k * GEMM_NR + j] = j < nr ? tmp[k] : 0.0f;
    }
}

void gemm_pack_f32_ref(float *dst, const void *W, int cols, int r, int nr, int k0, int kc) {
    pack_seg(dst, W, (size_t)cols * 4, r, nr, k0, kc, seg_f32);
}
void gemm_pack_bf16_ref(float *dst, const void *W, int cols, int r, int nr, int k0, int kc) {
    pack_seg(dst, W, (size_t)cols * 2, r, nr, k0, kc, seg_bf16);
}
void gemm_pack_f16_ref(float *dst, const void *W, int cols, int r, int nr, int k0, int kc) {
    pack_seg(dst, W, (size_t)cols * 2, r, nr, k0, kc, seg_f16);
}
void gemm_pack_fp8_ref(float *dst, const void *W, int cols, int r, int nr, int k0, int kc) {
    pack_seg(dst, W, (size_t)(cols / QK_FP8) * sizeof(block_fp8), r, nr, k0, kc, seg_fp8);
}

void gemm_kern_ref(int kc, int mt, const float *a, const float *b, float *c, size_t ldc, int acc) {
    float s[GEMM_MR][GEMM_NR] = {{0}};
    for (int k = 0; k < kc; k++, a += GEMM_MR, b += GEMM_NR)
        for (int i = 0; i < mt; i++)
            for (int j = 0; j < GEMM_NR; j++) s[i][j] = fmaf(a[i], b[j], s[i][j]);
    for (int i = 0; i < mt; i++)
        for (int j = 0; j < GEMM_NR; j++) c[(size_t)i * ldc + j] = acc ? c[(size_t)i * ldc + j] + s[i][j] : s[i][j];
}

void gemm_pack_a_ref(float *dst, const float *x, int cols, int n) {
    for (int k = 0; k < cols; k++, dst += GEMM_MR) {
        for (int i = 0; i < n; i++) dst[i] = x[(size_t)i * cols + k];
        for (int i = n; i < GEMM_MR; i++) dst[i] = 0;
    }
}
