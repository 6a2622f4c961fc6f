/*
 * fp8.h — FP8 (e4m3fn) quantisation with DeepSeek-V3's fine-grained scales,
 * and the FP8 GEMM with f32 promotion every 128 elements along K.
 *
 * V3 report §3.3.2: activations are scaled per 1x128 tile (one token, 128
 * channels), weights per 128x128 block; a scale s = amax / 448 (1 when the
 * tile is all zero), the stored code q = e4m3(x / s) rounded to nearest even
 * (src/kernels/dtype.h's f32_to_fp8e4m3), and x ~ f32(q) * s. The official
 * checkpoints call s `weight_scale_inv`, shaped (ceil(R/128), ceil(C/128)).
 * Edge tiles and blocks are partial (shapes need not be multiples of 128).
 *
 * Promotion (V3 §3.3.2, "increasing accumulation precision"): a GEMM
 * C[m][n] = sum_k A[m][k] B[n][k] over FP8 operands sums each 128-long chunk
 * of K into a partial, multiplies it by the two scales of the chunk and adds
 * it to an f32 accumulator:
 *     C[m][n] = sum_c sa[m][c] * sb[n / bn][c] * sum_{k in chunk c} qa[m][k] qb[n][k]
 * (bn = 128 for a weight operand, 1 for an activation operand.)
 *
 * Shapes: M, N rows of the two operands, K the reduction length, KC =
 * ceil(K / 128) chunks, FP8_TILE = 128.
 */
#ifndef DC_FP8_H
#define DC_FP8_H
#include <stddef.h>
#include <stdint.h>

#define FP8_TILE 128
#define FP8_MAX 448.0f

/* fp8_tiles: how many 128-long tiles cover n */
static inline int fp8_tiles(int n) { return (n + FP8_TILE - 1) / FP8_TILE; }

/* fp8_round: the e4m3 value nearest v (ties to even), as a float, for |v| <=
 * 448 (beyond: +-448): f32(f32_to_fp8e4m3(v)) without the byte. */
float fp8_round(float v);

/* fp8_quant_rows: x (M, K) row-major, leading dimension ldx, into codes q
 * (M, K) and scales s (M, KC): one scale per 1x128 tile (row m, chunk c). */
void fp8_quant_rows(uint8_t *q, float *s, const float *x, int M, int K, int ldx);
/* fp8_quant_blocks: w (R, C) into codes q (R, C) and scales s
 * (ceil(R/128), ceil(C/128)): the official `weight_scale_inv` layout. */
void fp8_quant_blocks(uint8_t *q, float *s, const float *w, int R, int C);

/* The same quantisations written back as floats (f32(q) * s, the values an
 * FP8 GEMM multiplies), for the training GEMMs (linear.c):
 *   fp8_fq_rows   x (M, K) -> y (M, K), 1x128 tiles along each row
 *   fp8_fq_cols   x (M, K) -> y (M, K), 128x1 tiles down each column (the
 *                 weight-gradient operands, whose reduction runs over rows)
 *   fp8_fq_blocks w (R, C) -> y (R, C), 128x128 blocks
 * y may equal x. */
void fp8_fq_rows(float *y, const float *x, int M, int K);
void fp8_fq_cols(float *y, const float *x, int M, int K);
void fp8_fq_blocks(float *y, const float *w, int R, int C);
/* fp8_fqs_*: the same tiles with y the codes' values f32(q), not scaled
 * back, and the scales in s (NULL: scaled back, as fp8_fq_*): rows (M, KC),
 * cols (ceil(M/128), K), blocks (ceil(R/128), ceil(C/128)). For a GEMM that
 * applies the two scales per 128-long chunk of K (gemm_bf16_fp8). */
void fp8_fqs_rows(float *y, float *s, const float *x, int M, int K);
void fp8_fqs_cols(float *y, float *s, const float *x, int M, int K);
void fp8_fqs_blocks(float *y, float *s, const float *w, int R, int C);

/* fp8_gemm_ref: C (M, N) = sum over K chunks as above (overwrites C), qa (M,
 * K) with scales sa (M, KC), qb (N, K) with scales sb (ceil(N/bn), KC), bn
 * 128 (weight blocks) or 1 (per-row tiles). Plain C, the oracle. */
void fp8_gemm_ref(float *C, const uint8_t *qa, const float *sa, const uint8_t *qb, const float *sb, int M, int N,
                  int K, int bn);
#endif
