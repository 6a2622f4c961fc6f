/*
 * dtype.h — scalar conversions between float32 and the storage types of
 * checkpoints: bfloat16, IEEE half, and float8 e4m3fn (OCP FP8, as in the
 * official DeepSeek-V3 weights: bias 7, 3 mantissa bits, no infinities,
 * S.1111.111 is NaN, largest finite 448).
 *
 * Rounding when narrowing is to nearest, ties to even; values beyond the
 * largest finite e4m3 value saturate to +-448.
 */
#ifndef DC_DTYPE_H
#define DC_DTYPE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float fp8e4m3_to_f32(uint8_t b);
uint8_t f32_to_fp8e4m3(float f);

/* Bulk conversions into float32. */
void bf16_to_f32_n(float *dst, const uint16_t *src, size_t n);
void f16_to_f32_n(float *dst, const uint16_t *src, size_t n);
#endif
