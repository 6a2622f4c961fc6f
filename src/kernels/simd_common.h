/*
 * simd_common.h — small helpers every x86 kernel file uses. Include it after
 * the file's `#pragma GCC target(...)`: the functions are static inline and
 * take that file's instruction set.
 */
#ifndef DC_SIMD_COMMON_H
#define DC_SIMD_COMMON_H
#include <immintrin.h>

#define INL static inline __attribute__((always_inline))

/* hsum256: the sum of the 8 lanes */
INL float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* tr8x8: v[j] (row j's 8 values) -> v[k] (value k of the 8 rows), spelt
 * out so that everything stays in registers (AVX: the packers of gemm_avx2.c
 * and tile_avx2.c) */
INL void tr8x8(__m256 v[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    v[0] = _mm256_permute2f128_ps(s0, s4, 0x20), v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    v[1] = _mm256_permute2f128_ps(s1, s5, 0x20), v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    v[2] = _mm256_permute2f128_ps(s2, s6, 0x20), v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    v[3] = _mm256_permute2f128_ps(s3, s7, 0x20), v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* ROW_T4: in a mv_* function (out, ldo, r and T in scope), one row's results
 * for every token, up to four tokens at a time: ROW(args..., t0, NT, res)
 * computes tokens t0..t0+NT-1 into res, NT a constant so the row kernel
 * unrolls. The T are shared out evenly over ceil(T / 4) groups (issue 15: 5
 * tokens as 3 + 2, not 4 + 1, whose one token waits on the FMA latency);
 * a token's sums do not depend on its group. */
#define ROW_T4(ROW, ...)                                                       \
    for (int g_ = 0, ng_ = (T + 3) / 4, t0 = 0; g_ < ng_; g_++) {              \
        float res[4];                                                          \
        const int nt = T / ng_ + (g_ < T % ng_);                               \
        switch (nt) {                                                          \
        case 4: ROW(__VA_ARGS__, t0, 4, res); break;                           \
        case 3: ROW(__VA_ARGS__, t0, 3, res); break;                           \
        case 2: ROW(__VA_ARGS__, t0, 2, res); break;                           \
        default: ROW(__VA_ARGS__, t0, 1, res); break;                          \
        }                                                                      \
        for (int t = 0; t < nt; t++) out[(size_t)(t0 + t) * ldo + r] = res[t]; \
        t0 += nt;                                                              \
    }
#endif
