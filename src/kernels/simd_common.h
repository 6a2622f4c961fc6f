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
