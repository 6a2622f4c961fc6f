/*
 * ggml_types.h — the tensor storage types of GGUF files (ggml's type ids and
 * block layouts, ggml-common.h), with plain-C dequantise and quantise.
 *
 * Every quantised type stores a row of n values as n / blck blocks; a block
 * holds blck values in `size` bytes. The layouts (all little-endian, halves
 * are IEEE binary16):
 *
 *   Q4_0  32 values: d | 16 bytes of nibbles. x[j] = d*((qs[j]&15)-8),
 *         x[j+16] = d*((qs[j]>>4)-8).
 *   Q4_1  32: d, m | 16 bytes. x = d*q + m, q in 0..15 (same nibble order).
 *   Q5_0  32: d | qh (32 high bits) | 16 bytes. q = nibble | bit << 4, x = d*(q-16).
 *   Q5_1  32: d, m | qh | 16 bytes. x = d*q + m.
 *   Q8_0  32: d | 32 int8. x = d*q (quant.h's block_q8_0, the same struct).
 *   Q8_1  32: d, s (= d * sum q) | 32 int8 (read only).
 *   K-quants: super-blocks of QK_K = 256 values in sub-blocks of 16 or 32,
 *   each sub-block with its own quantised scale (and min):
 *   Q2_K  16 x 16: scales[16] (4-bit scale | 4-bit min) | qs[64] (2-bit) | d, dmin.
 *         x = d*sc*q - dmin*m, q in 0..3.
 *   Q3_K  16 x 16: hmask[32] (3rd bit) | qs[64] (low 2 bits) | scales[12]
 *         (16 6-bit signed scales, +32) | d. x = d*(sc-32)*(q-4), q in 0..7.
 *   Q4_K  8 x 32: d, dmin | scales[12] (8 6-bit scales, 8 6-bit mins) | qs[128].
 *         x = d*sc*q - dmin*m, q in 0..15.
 *   Q5_K  8 x 32: as Q4_K plus qh[32] (5th bit). q in 0..31.
 *   Q6_K  16 x 16: ql[128] (low 4 bits) | qh[64] (high 2 bits) | int8 scales[16] | d.
 *         x = d*sc*(q-32), q in 0..63.
 *   Q8_K  256: float d | int8 qs[256] | int16 bsums[16] (sums of 16 q's).
 *   The non-linear 4-bit types: a nibble q indexes the 16-entry codebook
 *   IQ4_VALUES (-127 .. 113, denser near zero) instead of being q - 8:
 *   IQ4_NL 32: d | 16 bytes of nibbles (Q4_0's order). x = d*IQ4_VALUES[q].
 *   IQ4_XS 256, 8 x 32: d | scales_h (2 bits of each of 8 scales) |
 *         scales_l[4] (4 bits of each) | qs[128] (16 bytes a sub-block s,
 *         Q4_0's order). x = d*(ls_s - 32)*IQ4_VALUES[q], ls_s 6 bits:
 *         nibble s of scales_l | bits 2s, 2s+1 of scales_h << 4.
 * The bit orders inside qs/qh/scales are ggml's; gg_dequantize is written
 * from them and the quantisers pack exactly what it unpacks.
 *
 * The quantisers are this file's own (no importance matrix): each sub-block's
 * scale (and min) is fitted by a few rounds of least squares starting from
 * the range, then the scales themselves are quantised per super-block. Error
 * figures per type: tests/test_quant_types.c.
 */
#ifndef DC_GGML_TYPES_H
#define DC_GGML_TYPES_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/quant.h"

enum {
    GG_F32 = 0, GG_F16 = 1, GG_Q4_0 = 2, GG_Q4_1 = 3, GG_Q5_0 = 6, GG_Q5_1 = 7, GG_Q8_0 = 8, GG_Q8_1 = 9,
    GG_Q2_K = 10, GG_Q3_K = 11, GG_Q4_K = 12, GG_Q5_K = 13, GG_Q6_K = 14, GG_Q8_K = 15, GG_IQ4_NL = 20,
    GG_IQ4_XS = 23,
    GG_I8 = 24, GG_I16 = 25, GG_I32 = 26, GG_I64 = 27, GG_F64 = 28, GG_BF16 = 30,
    GG_NTYPES = 40
};

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct block_q4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct block_q4_1 { uint16_t d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct block_q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct block_q8_1 { uint16_t d, s; int8_t qs[32]; } block_q8_1;
typedef struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; } block_q2_K;
typedef struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } block_q3_K;
typedef struct block_q4_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
typedef struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
#define QK4_NL 32
typedef struct block_iq4_nl { uint16_t d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
typedef struct block_iq4_xs { uint16_t d, scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; } block_iq4_xs;
/* the IQ4 codebook: the format's 16 values, as GGUF readers define them */
extern const int8_t IQ4_VALUES[16];
/* iq4_xs_scale: sub-block s's 6-bit scale code ls (0..63; the scale is ls - 32) */
static inline int iq4_xs_scale(const block_iq4_xs *b, int s) {
    return (b->scales_l[s / 2] >> 4 * (s % 2) & 15) | (b->scales_h >> 2 * s & 3) << 4;
}

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 is 18 bytes in GGUF");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 is 20 bytes in GGUF");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 is 22 bytes in GGUF");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 is 24 bytes in GGUF");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 is 36 bytes in GGUF");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K is 84 bytes in GGUF");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K is 110 bytes in GGUF");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K is 144 bytes in GGUF");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K is 176 bytes in GGUF");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K is 210 bytes in GGUF");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K is 292 bytes in GGUF");
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl is 18 bytes in GGUF");
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs is 136 bytes in GGUF");

/* gg_type_name: "f32", "q4_K", ...; "?" for an id this file does not know. */
const char *gg_type_name(int type);
/* gg_type_parse: a name (case-insensitive: q4_k, Q4_K, bf16) -> id, -1 if unknown. */
int gg_type_parse(const char *s);
/* gg_unread_type_note: for the ggml types GGUF files hold that deepc does
 * not read, " (name: why)" for an error message (the lattice IQ types'
 * values come from grid tables only ggml's source defines, docs/gguf.md);
 * "" for other ids. */
const char *gg_unread_type_note(int type);
/* gg_blck / gg_type_size: values per block and bytes per block; 0 when the id is unknown. */
int gg_blck(int type);
int gg_type_size(int type);
/* gg_file_type: llama.cpp's general.file_type (LLAMA_FTYPE_MOSTLY_*) of a file mostly of type; 0 if none. */
int gg_file_type(int type);
/* gg_row_bytes: bytes of n values; 0 when n is not a whole number of blocks or the type is unknown. */
size_t gg_row_bytes(int type, int64_t n);
/* gg_can_dequantize / gg_can_quantize: the types gg_dequantize / gg_quantize handle. */
int gg_can_dequantize(int type);
int gg_can_quantize(int type);

/* gg_dequantize: n values (a whole number of blocks) of src into float32 dst. */
void gg_dequantize(int type, const void *src, float *dst, int64_t n);
/* gg_k4_scale_min: sub-block j (0..7) of a Q4_K / Q5_K super-block: its
 * 6-bit scale and min, unpacked from the 12 bytes q (ggml's packing). */
void gg_k4_scale_min(int j, const uint8_t *q, int *sc, int *m);
/* f32_first_nonfinite: the index of the first NaN or infinity in x[0, n), -1 when none. */
int64_t f32_first_nonfinite(const float *x, int64_t n);
/* gg_first_nonfinite: the same for n values (whole blocks) stored as type:
 * f16 / bf16 by their exponent bits, the block types by their f16 scales
 * alone (a block's values are finite iff its scales are; the index is then
 * the block's first value, which a bad scale always makes non-finite), the
 * rest (f64, q8_K) dequantised a few thousand at a time. */
int64_t gg_first_nonfinite(int type, const void *src, int64_t n);
/* gg_quantize: n float32 values (a whole number of blocks) into dst (gg_row_bytes(type, n) bytes). */
void gg_quantize(int type, const float *src, void *dst, int64_t n);
#endif
