/* tile_avx512.c — tile.h's tile on AVX-512 CPUs: a row of the tile (16
 * columns) is one zmm, so TILE_MR rows are 6 accumulators; per k one load
 * of B (masked when nt < 16) and mt broadcasts of A. Against the AVX2 tile
 * (12 ymm accumulators, 6 cycles a k step on two FMA pipes) the step takes
 * about 4: six chains of a 4-cycle FMA and seven loads. Each c[i][j] is the
 * same fmaf chain over k ascending from zero, times alpha, plus c when acc:
 * the same bits as tile_ref and tile_avx2. One instance per row count. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
#include <immintrin.h>
#include "kernels/simd_common.h"
#include "kernels/tile.h"

INL void tile_m(const int m, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk,
                float *c, size_t ldc, float alpha, int acc) {
    __m512 s[TILE_MR];
    const __mmask16 mk = (__mmask16)(nt >= 16 ? 0xffff : (1u << nt) - 1);
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) s[i] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++, a += sak, b += sbk) {
        const __m512 bv = _mm512_maskz_loadu_ps(mk, b);
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) s[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[(size_t)i * sai]), bv, s[i]);
    }
    const __m512 al = _mm512_set1_ps(alpha);
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 v = _mm512_mul_ps(al, s[i]);
        if (acc) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, ci), v);
        _mm512_mask_storeu_ps(ci, mk, v);
    }
}

void tile_avx512(int mt, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk, float *c,
                 size_t ldc, float alpha, int acc) {
    if (mt <= 0 || nt <= 0) return;
    switch (mt) {
    case 1: tile_m(1, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break;
    case 2: tile_m(2, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break;
    case 3: tile_m(3, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break;
    case 4: tile_m(4, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break;
    case 5: tile_m(5, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break;
    default: tile_m(TILE_MR, nt, kc, a, sai, sak, b, sbk, c, ldc, alpha, acc); break;
    }
}
