/* dtype.c — see dtype.h. */
#include "kernels/dtype.h"
#include <math.h>
#include "kernels/cpu.h"

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        float f = (float)man * 0x1p-24f; /* exact: man < 2^10 */
        return sign ? -f : f;
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00; /* rounds to infinity */
    if (a < 6.103515625e-05f) {              /* subnormal half: multiples of 2^-24 */
        float q = rintf(a * 16777216.0f);   /* ties to even in the default mode */
        return sign | (uint16_t)q;
    }
    uint32_t e = ((u >> 23) & 0xff) - 112, m = u & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return sign | (uint16_t)h;
}

float fp8e4m3_to_f32(uint8_t b) {
    int sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 7;
    float v;
    if (exp == 0xf && man == 7) return NAN;
    if (exp == 0) v = ldexpf((float)man, -9); /* man/8 * 2^-6 */
    else v = ldexpf(1.0f + man / 8.0f, exp - 7);
    return sign ? -v : v;
}

uint8_t f32_to_fp8e4m3(float f) {
    if (isnan(f)) return 0x7f;
    uint8_t sign = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (a >= 448.0f) return sign | 0x7e; /* saturate */
    if (a < ldexpf(1.0f, -6)) {          /* subnormal: multiples of 2^-9 */
        float q = rintf(ldexpf(a, 9));
        return sign | (uint8_t)q;        /* q == 8 is the smallest normal, encoded alike */
    }
    int e;
    float fr = frexpf(a, &e);            /* a = fr * 2^e, fr in [0.5, 1) */
    float m = rintf((fr * 2.0f - 1.0f) * 8.0f); /* mantissa in eighths */
    int exp = e - 1 + 7;
    if (m >= 8.0f) {
        m = 0;
        exp++;
    }
    if (exp > 15 || (exp == 15 && m > 6)) return sign | 0x7e;
    return sign | (uint8_t)(exp << 3) | (uint8_t)m;
}

void bf16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 8 halves at a time by F16C (the same floats: widening is exact); a block
 * holding an infinity or a NaN goes value by value, which keeps a NaN's
 * payload bits as they are (F16C would set the quiet bit). Issue 15: the
 * expanded prefill widened each layer's k_b / v_b with the scalar, ~4% of
 * an F16 prefill. Returns how many it did (a multiple of 8). */
__attribute__((target("avx,f16c"))) static size_t f16_n_f16c(float *dst, const uint16_t *src, size_t n) {
    const __m128i em = _mm_set1_epi16(0x7c00);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, em), em)))
            for (int j = 0; j < 8; j++) dst[i + j] = f16_to_f32(src[i + j]);
        else
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    return i;
}
#endif

void f16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (kern_get()->isa >= ISA_AVX2) i = f16_n_f16c(dst, src, n); /* cpu.c: F16C from cpuid (clang knows no "f16c") */
#endif
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}
