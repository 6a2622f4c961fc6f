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
#endif
