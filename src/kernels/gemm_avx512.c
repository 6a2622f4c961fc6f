/* gemm_avx512.c — gemm.h's wide micro-kernel for AVX-512 CPUs: up to two
 * token groups (2 x MR = 12 tokens) times up to two whole B panels (2 x NR =
 * 32 weight rows) in 24 zmm accumulators. Per k step: two 16-float loads of
 * B, twelve broadcasts of A (folded into the FMAs as {1to16} operands),
 * 24 FMAs: FMA-bound on two 512-bit FMA pipes (12 cycles a step against 7
 * for the loads), where the AVX2 kernel's 6 x 16 tile gives half the FLOPs
 * a cycle and a 6 x 16 zmm tile would wait on its loads (7 a step for 6
 * FMAs).
 *
 * The packers and the panels are AVX2's (gemm_avx2.c): two groups' A panels
 * lie MR * cols floats apart, two panels' B slices NR * KC apart, so the
 * driver hands this kernel neighbours. Each out[t][r] is the FMA chain over
 * k in ascending order from zero, then added to c when acc (c + s), as in
 * gemm_kern_avx2 and gemm_kern_ref with fmaf: the same bits.
 */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
#include <immintrin.h>
#include "kernels/gemm.h"
#include "kernels/simd_common.h"

/* G groups (G == 2: both groups' MR slots computed, padding slots being
 * zeros in A; G == 1: the first m tokens only), P panels; c: the first
 * token's row (group 1's tokens follow group 0's mt0) */
INL void wide(int G, int P, int m, int kc, const float *a0, const float *a1, const float *b0, const float *b1,
              float *c, size_t ldc, int mt0, int mt1, int acc) {
    enum { S = 2 * GEMM_MR };
    const int n = G == 2 ? S : m;
    __m512 s[S][2];
    #pragma GCC unroll 12
    for (int i = 0; i < n; i++) s[i][0] = s[i][1] = _mm512_setzero_ps();
    #pragma GCC unroll 2
    for (int k = 0; k < kc; k++, a0 += GEMM_MR, a1 += GEMM_MR, b0 += GEMM_NR, b1 += GEMM_NR) {
        const __m512 w0 = _mm512_load_ps(b0), w1 = P == 2 ? _mm512_load_ps(b1) : w0;
        #pragma GCC unroll 12
        for (int i = 0; i < n; i++) {
            const __m512 av = _mm512_set1_ps(i < GEMM_MR ? a0[i] : a1[i - GEMM_MR]);
            s[i][0] = _mm512_fmadd_ps(av, w0, s[i][0]);
            if (P == 2) s[i][1] = _mm512_fmadd_ps(av, w1, s[i][1]);
        }
    }
    #pragma GCC unroll 12
    for (int i = 0; i < n; i++) {
        if (i < GEMM_MR ? i >= mt0 : i - GEMM_MR >= mt1) continue; /* a padding slot */
        float *ci = c + (size_t)(i < GEMM_MR ? i : mt0 + i - GEMM_MR) * ldc;
        #pragma GCC unroll 2
        for (int j = 0; j < P; j++) {
            __m512 v = s[i][j];
            if (acc) v = _mm512_add_ps(_mm512_loadu_ps(ci + j * GEMM_NR), v);
            _mm512_storeu_ps(ci + j * GEMM_NR, v);
        }
    }
}

#define ONE_GROUP(P)                                                                                          \
    switch (mt0) {                                                                                            \
    case 1: wide(1, P, 1, kc, a, a, b, b + bs, c, ldc, mt0, 0, acc); break;                                   \
    case 2: wide(1, P, 2, kc, a, a, b, b + bs, c, ldc, mt0, 0, acc); break;                                   \
    case 3: wide(1, P, 3, kc, a, a, b, b + bs, c, ldc, mt0, 0, acc); break;                                   \
    case 4: wide(1, P, 4, kc, a, a, b, b + bs, c, ldc, mt0, 0, acc); break;                                   \
    case 5: wide(1, P, 5, kc, a, a, b, b + bs, c, ldc, mt0, 0, acc); break;                                   \
    default: wide(1, P, GEMM_MR, kc, a, a, b, b + bs, c, ldc, mt0, 0, acc); break;                            \
    }

void gemm_wide_avx512(int kc, int ng, int np, int mt0, int mt1, const float *a, size_t as, const float *b, size_t bs,
                      float *c, size_t ldc, int acc) {
    if (ng == 2 && np == 2) wide(2, 2, 0, kc, a, a + as, b, b + bs, c, ldc, mt0, mt1, acc);
    else if (ng == 2) wide(2, 1, 0, kc, a, a + as, b, b, c, ldc, mt0, mt1, acc);
    else if (np == 2) ONE_GROUP(2)
    else ONE_GROUP(1)
}
