/* fp8_block.c — see fp8_block.h. */
#include "kernels/fp8_block.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/dtype.h"
#include "kernels/e4m3_simd.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* e4m3 to float32 by a table of the 256 codes (dtype.c's definition; the
 * prefill path widens whole matrices a chunk at a time through it) */
static float e4m3_tab[256];
static pthread_once_t e4m3_once = PTHREAD_ONCE_INIT;
static void e4m3_fill(void) {
    for (int c = 0; c < 256; c++) e4m3_tab[c] = fp8e4m3_to_f32((uint8_t)c);
}

void fp8_to_f32_row(const void *src, float *dst, int64_t n) {
    const block_fp8 *b = src;
    pthread_once(&e4m3_once, e4m3_fill);
    for (int64_t k = 0; k < n / QK_FP8; k++, dst += QK_FP8)
        for (int i = 0; i < QK_FP8; i++) dst[i] = b[k].d * e4m3_tab[b[k].qs[i]];
}

/* one block of up to 128 values with scale s (0: all codes 0) */
static void encode(const float *x, int n, float s, uint8_t *q) {
    if (!(s > 0)) memset(q, 0, (size_t)n);
    else e4m3_encode_n(q, x, n, s);
}

/* max |x| (NaNs left out, as fmaxf does) */
static float amax_of(const float *x, int n) {
    float a = 0;
    int i = 0;
#ifdef __AVX2__
    __m256 m = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) /* max_ps(v, m) gives m when v is NaN */
        m = _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(x + i)), m);
    float t[8];
    _mm256_storeu_ps(t, m);
    for (int k = 0; k < 8; k++) a = t[k] > a ? t[k] : a;
#endif
    for (; i < n; i++) a = fmaxf(a, fabsf(x[i]));
    return a;
}

void fp8_from_f32_row(const float *src, void *dst, int64_t n) {
    block_fp8 *b = dst;
    for (int64_t k = 0; k < n / QK_FP8; k++) {
        const float *x = src + k * QK_FP8;
        b[k].d = amax_of(x, QK_FP8) / FP8_MAX;
        encode(x, QK_FP8, b[k].d, b[k].qs);
    }
}

/* the amax/448 scales of the (bm, bn) blocks of block row g (rows g*bm ..) */
static void block_scales(const float *W, int rows, int cols, int bm, int bn, int g, float *sc) {
    const int nbc = (cols + bn - 1) / bn, r1 = (g + 1) * bm < rows ? (g + 1) * bm : rows;
    for (int j = 0; j < nbc; j++) sc[j] = 0;
    for (int r = g * bm; r < r1; r++)
        for (int j = 0; j < nbc; j++) {
            int n = (j + 1) * bn < cols ? bn : cols - j * bn;
            sc[j] = fmaxf(sc[j], amax_of(W + (size_t)r * cols + (size_t)j * bn, n));
        }
    for (int j = 0; j < nbc; j++) sc[j] /= FP8_MAX;
}

void fp8_quantize_mat(const float *W, int rows, int cols, block_fp8 *dst) {
    const int nbc = cols / QK_FP8, ng = (rows + QK_FP8 - 1) / QK_FP8;
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int g = 0; g < ng; g++) {
        float sc[256], *s = nbc <= 256 ? sc : malloc(sizeof(float) * (size_t)nbc);
        if (!s) { /* out of memory for a matrix over 32768 wide: scales row by row */
            for (int r = g * QK_FP8; r < rows && r < (g + 1) * QK_FP8; r++)
                fp8_from_f32_row(W + (size_t)r * cols, dst + (size_t)r * nbc, cols);
            continue;
        }
        block_scales(W, rows, cols, QK_FP8, QK_FP8, g, s);
        for (int r = g * QK_FP8; r < rows && r < (g + 1) * QK_FP8; r++)
            for (int j = 0; j < nbc; j++) {
                block_fp8 *b = dst + (size_t)r * nbc + j;
                b->d = s[j];
                encode(W + (size_t)r * cols + (size_t)j * QK_FP8, QK_FP8, s[j], b->qs);
            }
        if (s != sc) free(s);
    }
}

void fp8_quantize_official(const float *W, int rows, int cols, int bm, int bn, uint8_t *codes, float *scale_inv) {
    const int nbc = (cols + bn - 1) / bn, ng = (rows + bm - 1) / bm;
    for (int g = 0; g < ng; g++) {
        float *s = scale_inv + (size_t)g * nbc;
        block_scales(W, rows, cols, bm, bn, g, s);
        for (int r = g * bm; r < rows && r < (g + 1) * bm; r++)
            for (int j = 0; j < nbc; j++) {
                int n = (j + 1) * bn < cols ? bn : cols - j * bn;
                encode(W + (size_t)r * cols + (size_t)j * bn, n, s[j], codes + (size_t)r * cols + (size_t)j * bn);
            }
    }
}

void fp8_dequantize_official(const uint8_t *codes, const float *scale_inv, int rows, int cols, int bm, int bn,
                             float *W) {
    const int nbc = (cols + bn - 1) / bn;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            W[(size_t)r * cols + c] =
                fp8e4m3_to_f32(codes[(size_t)r * cols + c]) * scale_inv[(size_t)(r / bm) * nbc + c / bn];
}

int fp8_keeps(int cols, int bm, int bn) { return bn == QK_FP8 && bm >= 1 && cols > 0 && cols % QK_FP8 == 0; }

void fp8_from_official(const uint8_t *codes, const void *scale_inv, int sc_bf16, int rows, int cols, int bm,
                       block_fp8 *dst) {
    const int nbc = cols / QK_FP8;
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nbc; j++) {
            size_t si = (size_t)(r / bm) * nbc + j;
            block_fp8 *b = dst + (size_t)r * nbc + j;
            b->d = sc_bf16 ? bf16_to_f32(((const uint16_t *)scale_inv)[si]) : ((const float *)scale_inv)[si];
            memcpy(b->qs, codes + (size_t)r * cols + (size_t)j * QK_FP8, QK_FP8);
        }
}
