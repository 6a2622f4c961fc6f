/*
 * matvec.h — matrix times a few vectors, the kernels of decode (memory-bound).
 *
 * One contract for every kernel mv_<type>_<isa>:
 *     for r in [r0, r1), t in [0, T):   out[t*ldo + r] = W[r, :] . x_t
 * W is row-major (rows, cols) in torch Linear layout, stored as
 *     f32   cols floats per row
 *     bf16  cols uint16 per row
 *     q8    cols/32 block_q8_0 per row (cols % 32 == 0), x given as a q8_act
 *     q4_0  cols/32 block_q4_0 per row (ggml_types.h), x given as a q8_act
 *     q4_k  cols/256 block_q4_K per row, x given as a q8_act
 *     q6_k  cols/256 block_q6_K per row, x given as a q8_act
 * x_t is row t of x (T, cols) (float32 for f32 and bf16). The quantised
 * types all multiply 8-bit activations (per 32 values, as llama.cpp's
 * vec_dot_type Q8_0 / Q8_K): the oracle is sum_i w_i * xq_i * d_x over the
 * dequantised weights w.
 *
 * Any T works; the kernels take tokens four at a time so each weight row is
 * read from memory once for all of them. Each token's sum is formed in an
 * order that depends on neither T, nor its place among the T, nor r0/r1, so
 * batching tokens (prefill of a few, speculative verification) gives the
 * same bits as one at a time.
 *
 * _ref is the plain C oracle (double accumulation); _avx2 and _avx512 are the
 * SIMD variants (cpu.h picks one at run time).
 */
#ifndef DC_MATVEC_H
#define DC_MATVEC_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/quant.h"

typedef void (*mv_f32_fn)(float *out, size_t ldo, const float *W, int cols, int r0, int r1, const float *x, int T);
typedef void (*mv_bf16_fn)(float *out, size_t ldo, const uint16_t *W, int cols, int r0, int r1, const float *x, int T);
typedef void (*mv_q8_fn)(float *out, size_t ldo, const block_q8_0 *W, int cols, int r0, int r1, const q8_act *x, int T);
/* mv_qx_fn: the ggml block types (W points at the blocks of row 0) */
typedef void (*mv_qx_fn)(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x, int T);

#define MV_DECL(isa)                                                                                     \
    void mv_f32_##isa(float *out, size_t ldo, const float *W, int cols, int r0, int r1, const float *x, int T); \
    void mv_bf16_##isa(float *out, size_t ldo, const uint16_t *W, int cols, int r0, int r1, const float *x,   \
                       int T);                                                                           \
    void mv_q8_##isa(float *out, size_t ldo, const block_q8_0 *W, int cols, int r0, int r1, const q8_act *x, int T); \
    void mv_q4_0_##isa(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x, int T);   \
    void mv_q4_k_##isa(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x, int T);   \
    void mv_q6_k_##isa(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x, int T);
MV_DECL(ref)
MV_DECL(avx2)
MV_DECL(avx512)
#undef MV_DECL

/* q8_fill_fn: q8_act_fill (quant.h) for tokens [t0, t1); every variant writes
 * the same bytes. */
typedef void (*q8_fill_fn)(q8_act *a, const float *x, int t0, int t1);
void q8_fill_avx2(q8_act *a, const float *x, int t0, int t1);
#endif
