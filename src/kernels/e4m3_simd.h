/*
 * e4m3_simd.h — e4m3 (FP8, e4m3fn) rounding and encoding without branches,
 * one value, 8 (AVX2) or 16 (AVX-512) at a time: the one copy of the steps
 * that fp8.c (training's fake quantisation and FP8 export) and fp8_block.c
 * (the inference quantiser) share. Every lane gives the bits the scalar
 * definition gives (dtype.c's f32_to_fp8e4m3, ties to even, saturating at
 * 448 = code 0x7e, NaN 0x7f); test_fp8 and test_prec hold them to it.
 *
 * The steps: on the normal grid (|y| >= 2^-6) keep 3 mantissa bits of the
 * float's bits by adding half an ulp minus one plus the kept bit (ties to
 * even), then masking; below 2^-6 the grid is multiples of 2^-9, rounded by
 * the FPU's round-to-nearest-even. The code is read off the rounded bits
 * (exponent - 120 in bits 3..6, the 3 mantissa bits below), at most 0x7e.
 */
#ifndef DC_E4M3_SIMD_H
#define DC_E4M3_SIMD_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernels/dtype.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

#define E4M3_MAX 448.0f

/* e4m3_round: the e4m3 value nearest v (ties to even) as a float; |v| past
 * 448 gives +-448, a NaN stays NaN */
static inline float e4m3_round(float v) {
    float a = fminf(fabsf(v), E4M3_MAX), n, sub = nearbyintf(a * 512.0f) * 0x1p-9f;
    uint32_t u;
    memcpy(&u, &a, 4);
    u = (u + 0x7ffffu + ((u >> 20) & 1)) & 0xfff00000u;
    memcpy(&n, &u, 4);
    float r = copysignf(a < 0x1p-6f ? sub : n, v);
    return v != v ? v : r;
}

#ifdef __AVX2__
/* e4m3_grid8: |y|'s bits (ua) rounded to the normal grid's 3 mantissa bits */
static inline __m256i e4m3_grid8(__m256i ua) {
    const __m256i half = _mm256_add_epi32(_mm256_set1_epi32(0x7ffff),
                                          _mm256_and_si256(_mm256_srli_epi32(ua, 20), _mm256_set1_epi32(1)));
    return _mm256_and_si256(_mm256_add_epi32(ua, half), _mm256_set1_epi32((int)0xfff00000u));
}

/* e4m3_round8: 8 lanes of e4m3_round */
static inline __m256 e4m3_round8(__m256 v) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    const __m256 a = _mm256_min_ps(_mm256_andnot_ps(sgn, v), _mm256_set1_ps(E4M3_MAX));
    const __m256 n = _mm256_castsi256_ps(e4m3_grid8(_mm256_castps_si256(a)));
    const __m256 sub = _mm256_mul_ps(_mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(512.0f)),
                                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                     _mm256_set1_ps(0x1p-9f));
    __m256 r = _mm256_blendv_ps(n, sub, _mm256_cmp_ps(a, _mm256_set1_ps(0x1p-6f), _CMP_LT_OQ));
    r = _mm256_or_ps(r, _mm256_and_ps(v, sgn));
    return _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* e4m3_encode8: the codes of 8 floats y into q[0..7] (f32_to_fp8e4m3 of
 * each: 448 and up, and what rounds past it, infinity too, give 0x7e; a NaN
 * 0x7f; below 2^-6 cvtps rounds to nearest even as rintf does) */
static inline void e4m3_encode8(__m256 y, uint8_t *q) {
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), y);
    const __m256i r = e4m3_grid8(_mm256_castps_si256(a));
    __m256i c = _mm256_or_si256(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_srli_epi32(r, 23), _mm256_set1_epi32(120)), 3),
                                _mm256_and_si256(_mm256_srli_epi32(r, 20), _mm256_set1_epi32(7)));
    c = _mm256_min_epi32(c, _mm256_set1_epi32(0x7e));
    const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(a, _mm256_set1_ps(512.0f)));
    c = _mm256_blendv_epi8(c, sub, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(0x1p-6f), _CMP_LT_OQ)));
    c = _mm256_or_si256(c, _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(y), 24), _mm256_set1_epi32(0x80)));
    c = _mm256_blendv_epi8(c, _mm256_set1_epi32(0x7f), _mm256_castps_si256(_mm256_cmp_ps(y, y, _CMP_UNORD_Q)));
    /* the low byte of each lane: 4 in each 128-bit half, then the halves joined */
    const __m256i lo = _mm256_shuffle_epi8(c, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
    _mm_storel_epi64((__m128i *)q, _mm_unpacklo_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1)));
}
#endif

/* e4m3_encode_n: q[i] = f32_to_fp8e4m3(x[i] / s) for n floats, 8 at a time
 * where the CPU has AVX2 (a zero or NaN scale gives what the division gives) */
static inline void e4m3_encode_n(uint8_t *q, const float *x, int n, float s) {
    int i = 0;
#ifdef __AVX2__
    for (const __m256 vs = _mm256_set1_ps(s); i + 8 <= n; i += 8) e4m3_encode8(_mm256_div_ps(_mm256_loadu_ps(x + i), vs), q + i);
#endif
    for (; i < n; i++) q[i] = f32_to_fp8e4m3(x[i] / s);
}

#ifdef __AVX512F__
/* e4m3_round16: 16 lanes of e4m3_round (AVX-512 builds) */
static inline __m512 e4m3_round16(__m512 v) {
    const __m512i sgn = _mm512_set1_epi32((int)0x80000000u);
    const __m512 a = _mm512_min_ps(_mm512_abs_ps(v), _mm512_set1_ps(E4M3_MAX));
    __m512i u = _mm512_castps_si512(a);
    u = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7ffff),
                                             _mm512_and_si512(_mm512_srli_epi32(u, 20), _mm512_set1_epi32(1))));
    const __m512 n = _mm512_castsi512_ps(_mm512_and_si512(u, _mm512_set1_epi32((int)0xfff00000u)));
    const __m512 sub = _mm512_mul_ps(_mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(512.0f)),
                                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                     _mm512_set1_ps(0x1p-9f));
    __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0x1p-6f), _CMP_LT_OQ), n, sub);
    r = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(v), sgn)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, v);
}
#endif

#endif
