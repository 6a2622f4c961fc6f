/* tile_avx2.c — tile.h's tile with AVX2 + FMA (AVX-512 CPUs run it too):
 * TILE_MR rows x 2 vectors of 8 in 12 accumulators; per k two loads of B
 * (masked when nt < 16) and mt broadcasts of A. One instance per row count
 * (the FMAs of a row do not depend on it). tile_pack_avx2: 8 keys x 8
 * columns at a time through an 8 x 8 transpose; partial groups of keys or
 * columns by the plain C packer's rule, value by value. */
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include <stdint.h>
#include "kernels/simd_common.h"
#include "kernels/tile.h"

/* lanes j < n of 8 on (n clamped to 0..8) */
INL __m256i lanes(int n) {
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

INL void tile_m(const int m, const int full, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b,
                size_t sbk, float *c, size_t ldc, float alpha, int acc) {
    __m256 s[TILE_MR][2];
    const __m256i m0 = lanes(nt), m1 = lanes(nt - 8);
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) s[i][0] = s[i][1] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++, a += sak, b += sbk) {
        const __m256 b0 = full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
        const __m256 b1 = full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + (size_t)i * sai);
            s[i][0] = _mm256_fmadd_ps(ai, b0, s[i][0]);
            s[i][1] = _mm256_fmadd_ps(ai, b1, s[i][1]);
        }
    }
    const __m256 al = _mm256_set1_ps(alpha);
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        __m256 v0 = _mm256_mul_ps(al, s[i][0]), v1 = _mm256_mul_ps(al, s[i][1]);
        if (full) {
            if (acc) v0 = _mm256_add_ps(_mm256_loadu_ps(ci), v0), v1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), v1);
            _mm256_storeu_ps(ci, v0), _mm256_storeu_ps(ci + 8, v1);
        } else {
            if (acc)
                v0 = _mm256_add_ps(_mm256_maskload_ps(ci, m0), v0), v1 = _mm256_add_ps(_mm256_maskload_ps(ci + 8, m1), v1);
            _mm256_maskstore_ps(ci, m0, v0), _mm256_maskstore_ps(ci + 8, m1, v1);
        }
    }
}

#define ROWS(F)                                                          \
    switch (mt) {                                                        \
    case 1: tile_m(1, F, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break; \
    case 2: tile_m(2, F, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break; \
    case 3: tile_m(3, F, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break; \
    case 4: tile_m(4, F, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break; \
    case 5: tile_m(5, F, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break; \
    default: tile_m(TILE_MR, F, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break; \
    }

void tile_avx2(int mt, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk, float *c,
               size_t ldc, float alpha, int acc) {
    if (mt <= 0 || nt <= 0) return;
    if (nt == TILE_NR) ROWS(1)
    else ROWS(0)
}
#undef ROWS

void tile_pack_avx2(float *dst, int w_all, int off, const float *src, size_t ld, int T, int w) {
    const int np = (T + TILE_NR - 1) / TILE_NR, w8 = w & ~7;
    for (int j0 = 0; j0 < np * TILE_NR; j0 += 8) { /* 8 keys: half a panel */
        float *o = dst + (size_t)(j0 / TILE_NR) * w_all * TILE_NR + (size_t)off * TILE_NR + j0 % TILE_NR;
        const int whole = j0 + 8 <= T;
        for (int k0 = 0; whole && k0 < w8; k0 += 8) {
            __m256 v[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) v[j] = _mm256_loadu_ps(src + (size_t)(j0 + j) * ld + k0);
            tr8x8(v);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(o + (size_t)(k0 + k) * TILE_NR, v[k]);
        }
        for (int j = 0; j < 8; j++) /* the rest by the plain rule */
            for (int k = whole ? w8 : 0; k < w; k++)
                o[(size_t)k * TILE_NR + j] = j0 + j < T ? src[(size_t)(j0 + j) * ld + k] : 0.0f;
    }
}
