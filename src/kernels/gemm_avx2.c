/* gemm_avx2.c — gemm.h's packers and micro-kernel with AVX2, FMA and F16C
 * (an AVX-512 CPU runs these too: gemm.c).
 *
 * Packers: 8 rows x 8 columns at a time, each row's 8 values converted to
 * float32 in one vector (f16: vcvtph2ps; bf16: widen and shift by 16; fp8:
 * e4m3 -> half by shift and mask, vcvtph2ps, as matvec_avx2.c's e4m3x16),
 * then an 8x8 transpose into the k-major panel (fp8: then times the 8 rows'
 * block scales, one vector).
 * A panel with fewer than NR rows, and the last cols % 8 columns, go to the
 * plain C packers (the same values: the conversions are exact, and fp8's
 * (e4m3 / 256) * (256 d) is the product e4m3 * d rounded once; the NaN
 * codes S.1111.111, which no quantiser writes, read as +-480 d here, as in
 * matvec_avx2.c, and as NaN in the plain C packer).
 *
 * Micro-kernel: 6 tokens x 16 rows in 12 accumulators; per k two loads of
 * B, six broadcasts of A, twelve FMAs (Zen 3: two FMA pipes, so 6 cycles a
 * k step against 4 for the loads). The last 1-5 tokens of a block run an
 * instance with that many (4 cycles a k step, FMA latency, instead of 6).
 */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <stdint.h>
#include "kernels/fp8_block.h"
#include "kernels/gemm.h"
#include "kernels/simd_common.h"

enum { K_F32, K_BF16, K_F16 };

/* 8 values of row `row` (bytes in the type's layout) from column k, as float32 */
INL __m256 ld8(int K, const void *row, int k) {
    if (K == K_F32) return _mm256_loadu_ps((const float *)row + k);
    if (K == K_BF16) {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
}

/* 8 e4m3 codes as float32 / 256 (shifted into a half's bits: exact) */
INL __m256 e4m3x8(const uint8_t *q) {
    __m128i h = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)q));
    return _mm256_cvtph_ps(_mm_and_si128(_mm_slli_epi16(h, 7), _mm_set1_epi16((short)0xbfff)));
}

/* rows [r, r + NR), columns [k0, k0 + kc8) (kc8 % 8 == 0) of W, rows of rb
 * bytes; each 64 bytes of a row read, the same bytes of the row NR further
 * on are prefetched (the panel packed next, streaming from memory) */
INL void pack_vec(int K, float *dst, const void *W, size_t rb, int r, int k0, int kc8) {
    const int es = K == K_F32 ? 4 : 2, pf = 64 / es;
    for (int h = 0; h < GEMM_NR; h += 8) {
        const char *row[8];
        for (int j = 0; j < 8; j++) row[j] = (const char *)W + (size_t)(r + h + j) * rb;
        for (int k = 0; k < kc8; k += 8) {
            __m256 v[8];
            if (k % pf == 0)
                #pragma GCC unroll 8
                for (int j = 0; j < 8; j++) _mm_prefetch(row[j] + GEMM_NR * rb + (size_t)(k0 + k) * es, _MM_HINT_T0);
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) v[j] = ld8(K, row[j], k0 + k);
            tr8x8(v);
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) _mm256_store_ps(dst + (size_t)(k + j) * GEMM_NR + h, v[j]);
        }
    }
}

/* fp8: per block of 128 columns, codes / 256 transposed, then times the 8
 * rows' 256 * scale (one vector after the transpose); 132-byte blocks: the
 * next panel's prefetched at bytes 0, 64 (and the scale's line with them) */
static void pack_fp8_vec(float *dst, const block_fp8 *W, size_t nb, int r, int k0, int kc) {
    for (int h = 0; h < GEMM_NR; h += 8)
        for (int kb = 0; kb < kc; kb += QK_FP8) {
            const block_fp8 *blk[8];
            float d[8];
            for (int j = 0; j < 8; j++) blk[j] = W + (size_t)(r + h + j) * nb + (k0 + kb) / QK_FP8, d[j] = blk[j]->d * 256.0f;
            const __m256 dv = _mm256_loadu_ps(d);
            for (int k = 0; k < QK_FP8; k += 8) {
                __m256 v[8];
                if (k % 64 == 0) /* the next panel's block, as pack_vec */
                    #pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) _mm_prefetch((const char *)(blk[j] + GEMM_NR * nb) + k, _MM_HINT_T0);
                #pragma GCC unroll 8
                for (int j = 0; j < 8; j++) v[j] = e4m3x8(blk[j]->qs + k);
                tr8x8(v);
                #pragma GCC unroll 8
                for (int j = 0; j < 8; j++) _mm256_store_ps(dst + (size_t)(kb + k + j) * GEMM_NR + h, _mm256_mul_ps(v[j], dv));
            }
        }
}

#define PACK(t, KIND, RB)                                                                                  \
    void gemm_pack_##t##_avx2(float *dst, const void *W, int cols, int r, int nr, int k0, int kc) {        \
        const int kc8 = nr == GEMM_NR ? kc & ~7 : 0;                                                        \
        if (kc8) pack_vec(KIND, dst, W, RB, r, k0, kc8);                                                    \
        if (kc8 < kc) gemm_pack_##t##_ref(dst + (size_t)kc8 * GEMM_NR, W, cols, r, nr, k0 + kc8, kc - kc8); \
    }
PACK(f32, K_F32, (size_t)cols * 4)
PACK(bf16, K_BF16, (size_t)cols * 2)
PACK(f16, K_F16, (size_t)cols * 2)
#undef PACK

/* cols % 128 == 0 for fp8, so a slice is whole blocks */
void gemm_pack_fp8_avx2(float *dst, const void *W, int cols, int r, int nr, int k0, int kc) {
    if (nr == GEMM_NR && kc % QK_FP8 == 0) pack_fp8_vec(dst, W, (size_t)cols / QK_FP8, r, k0, kc);
    else gemm_pack_fp8_ref(dst, W, cols, r, nr, k0, kc);
}

/* A's panel: a whole group of MR tokens 8 columns at a time (the 6 rows'
 * 8 values and two zero rows through the 8 x 8 transpose, each column's MR
 * values stored over the next's first two, the last one exactly); the
 * rest, and groups of fewer tokens, as the plain C packer */
void gemm_pack_a_avx2(float *dst, const float *x, int cols, int n) {
    int k0 = 0;
    if (n == GEMM_MR)
        for (; k0 + 8 <= cols; k0 += 8) {
            __m256 v[8];
            #pragma GCC unroll 6
            for (int i = 0; i < GEMM_MR; i++) v[i] = _mm256_loadu_ps(x + (size_t)i * cols + k0);
            v[6] = v[7] = _mm256_setzero_ps();
            tr8x8(v);
            float *d = dst + (size_t)k0 * GEMM_MR;
            #pragma GCC unroll 7
            for (int k = 0; k < 7; k++) _mm256_storeu_ps(d + k * GEMM_MR, v[k]);
            _mm_storeu_ps(d + 7 * GEMM_MR, _mm256_castps256_ps128(v[7]));
            _mm_storel_pi((__m64 *)(d + 7 * GEMM_MR + 4), _mm256_extractf128_ps(v[7], 1));
        }
    for (float *d = dst + (size_t)k0 * GEMM_MR; k0 < cols; k0++, d += GEMM_MR) /* gemm_pack_a_ref's rule */
        for (int i = 0; i < GEMM_MR; i++) d[i] = i < n ? x[(size_t)i * cols + k0] : 0.0f;
}

/* the first m of the MR tokens (m a constant in each instance) */
INL void kern_m(int m, int kc, const float *a, const float *b, float *c, size_t ldc, int acc) {
    __m256 s[GEMM_MR][2];
    #pragma GCC unroll 6
    for (int i = 0; i < m; i++) s[i][0] = s[i][1] = _mm256_setzero_ps();
    #pragma GCC unroll 4
    for (int k = 0; k < kc; k++, a += GEMM_MR, b += GEMM_NR) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        #pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            s[i][0] = _mm256_fmadd_ps(ai, b0, s[i][0]);
            s[i][1] = _mm256_fmadd_ps(ai, b1, s[i][1]);
        }
    }
    #pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        if (acc) {
            s[i][0] = _mm256_add_ps(_mm256_loadu_ps(ci), s[i][0]);
            s[i][1] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), s[i][1]);
        }
        _mm256_storeu_ps(ci, s[i][0]);
        _mm256_storeu_ps(ci + 8, s[i][1]);
    }
}

/* fewer tokens than MR: fewer accumulators, each token's FMAs as in a full tile */
void gemm_kern_avx2(int kc, int mt, const float *a, const float *b, float *c, size_t ldc, int acc) {
    switch (mt) {
    case 1: kern_m(1, kc, a, b, c, ldc, acc); break;
    case 2: kern_m(2, kc, a, b, c, ldc, acc); break;
    case 3: kern_m(3, kc, a, b, c, ldc, acc); break;
    case 4: kern_m(4, kc, a, b, c, ldc, acc); break;
    case 5: kern_m(5, kc, a, b, c, ldc, acc); break;
    default: kern_m(GEMM_MR, kc, a, b, c, ldc, acc); break;
    }
}
