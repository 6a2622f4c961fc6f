/*
 * fp8_block.h — float8 e4m3 weights with block scales, kept as stored for inference
 * (issue 13), and the official DeepSeek-V3 layout they come from.
 *
 * Official layout (V3 report §3.3, inference/kernel.py weight_dequant): a
 * (rows, cols) weight is rows*cols e4m3fn codes plus a float32
 * weight_scale_inv of shape (ceil(rows/bm), ceil(cols/bn)), bm = bn = 128;
 *     W[r, c] = e4m3(code[r, c]) * scale_inv[r / bm, c / bn]
 * the edge blocks of a dimension that is no multiple of the block partial.
 *
 * In memory (MAT_FP8, wtype.h) each row is cols/128 block_fp8: the 128 codes
 * of one block of that row and the block's scale (the scale of the 128x128
 * block the row crosses, repeated in each of its rows: 4 bytes per 128
 * weights, so decode reads 1.03 bytes a weight). Rows are independent, as in
 * the GGUF block types, so the row kernels and the trait table fit FP8
 * unchanged; the official layout converts both ways without loss when
 * cols % 128 == 0.
 *
 * e4m3fn (OCP FP8): bias 7, 3 mantissa bits, no infinities, S.1111.111 NaN,
 * largest finite 448, subnormals m/8 * 2^-6 (dtype.h's scalar conversions).
 */
#ifndef DC_FP8_BLOCK_H
#define DC_FP8_BLOCK_H
#include <stddef.h>
#include <stdint.h>

#define QK_FP8 128
#define FP8_MAX 448.0f

typedef struct block_fp8 {
    float d;              /* the block's scale: value i = d * e4m3(qs[i]) */
    uint8_t qs[QK_FP8];   /* e4m3fn codes */
} block_fp8;
_Static_assert(sizeof(block_fp8) == 132, "block_fp8 is a float and 128 codes");

/* fp8_to_f32_row: n values (n % 128 == 0) of blocks into float32 dst. */
void fp8_to_f32_row(const void *src, float *dst, int64_t n);
/* fp8_from_f32_row: n values (n % 128 == 0) into blocks, one scale per 128
 * values of this row (amax / 448; an all-zero block gets scale 0). */
void fp8_from_f32_row(const float *src, void *dst, int64_t n);
/* fp8_quantize_mat: W (rows, cols) float32, cols % 128 == 0, into rows of
 * blocks whose scales are those of 128x128 blocks (amax / 448 of the block,
 * as the official checkpoints), so every 128 rows share their scales. */
void fp8_quantize_mat(const float *W, int rows, int cols, block_fp8 *dst);

/* fp8_quantize_official: W (rows, cols) float32 into the official layout
 * with (bm, bn) blocks, partial edges included: codes (rows*cols bytes) and
 * scale_inv ((rows+bm-1)/bm x (cols+bn-1)/bn floats) = amax / 448 per block. */
void fp8_quantize_official(const float *W, int rows, int cols, int bm, int bn, uint8_t *codes, float *scale_inv);
/* fp8_dequantize_official: the reverse, W = e4m3(code) * scale_inv[r/bm, c/bn]. */
void fp8_dequantize_official(const uint8_t *codes, const float *scale_inv, int rows, int cols, int bm, int bn,
                             float *W);
/* fp8_from_official: the official layout (scales float32, or bfloat16 when
 * sc_bf16) into rows of blocks; needs bn == 128 and cols % 128 == 0 (the
 * caller checks: fp8_keeps). Codes are copied, not re-rounded. */
void fp8_from_official(const uint8_t *codes, const void *scale_inv, int sc_bf16, int rows, int cols, int bm,
                       block_fp8 *dst);
/* fp8_keeps: whether a (rows, cols) official tensor with (bm, bn) blocks can
 * be kept as MAT_FP8 (bn == 128, cols % 128 == 0, bm >= 1). */
int fp8_keeps(int cols, int bm, int bn);
#endif
