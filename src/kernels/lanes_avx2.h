/*
 * lanes_avx2.h — what the AVX2 kernels with one row per vector lane share
 * (matvec_avx2.c's q4_0 / q4_k / q6_k / q5_k, matvec_legacy_avx2.c's q5_0 /
 * q4_1 / q5_1, matvec_lowk_avx2.c's q3_k / q2_k): storing a lane vector's
 * rows, broadcasting a block's activation bytes, the prefetch distance and a
 * signed shift. Include it after the file's `#pragma GCC target(...)`.
 */
#ifndef DC_LANES_AVX2_H
#define DC_LANES_AVX2_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "kernels/simd_common.h"

/* the weights' prefetch distance in bytes, per row or group stream */
#ifndef PF_BYTES
#define PF_BYTES 1024
#endif

/* sh16: v's 16-bit lanes shifted left by s (right by -s when s < 0; s a constant) */
INL __m256i sh16(__m256i v, int s) { return s >= 0 ? _mm256_slli_epi16(v, s) : _mm256_srli_epi16(v, -s); }

/* lane j of acc[t] is row rows[j] (rows[j] < 0: none) for token t0 + t */
INL void lanes_store(float *out, size_t ldo, const __m256 *acc, const int *rows, int t0, int NT) {
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        float v[8];
        _mm256_storeu_ps(v, acc[t]);
        for (int j = 0; j < 8; j++)
            if (rows[j] >= 0) out[(size_t)(t0 + t) * ldo + rows[j]] = v[j];
    }
}

/* the NG groups of 8 interleaved rows g, g + gs, ... (acc + i na: the
 * tokens' lanes of group i): the rows of each inside [r0, r1) stored */
INL void groups_store(float *out, size_t ldo, const __m256 *acc, int na, int g, int gs, int NG, int r0, int r1, int t0,
                      int NT) {
    #pragma GCC unroll 4
    for (int i = 0; i < NG; i++) {
        const int r8 = 8 * (g + i * gs);
        if (r8 >= r0 && r8 + 8 <= r1) { /* the whole group: its 8 rows are adjacent in out */
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) _mm256_storeu_ps(out + (size_t)(t0 + t) * ldo + r8, acc[i * na + t]);
            continue;
        }
        int keep[8];
        for (int j = 0; j < 8; j++) {
            const int r = 8 * (g + i * gs) + j;
            keep[j] = r >= r0 && r < r1 ? r : -1;
        }
        lanes_store(out, ldo, acc + i * na, keep, t0, NT);
    }
}

/* chunk k's activation bytes of a block (xb): the 4 for the low nibbles and the 4 for the high, broadcast */
INL void q4_bcast(const int8_t *xb, int k, __m256i *bl, __m256i *bh) {
    int32_t xl, xh;
    memcpy(&xl, xb + 4 * k, 4), memcpy(&xh, xb + 4 * k + 16, 4);
    *bl = _mm256_set1_epi32(xl), *bh = _mm256_set1_epi32(xh);
}

#endif
