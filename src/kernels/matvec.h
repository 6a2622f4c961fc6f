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
 *     f16   cols IEEE halves per row
 *     q5_0  cols/32 block_q5_0 per row, x given as a q8_act
 *     q5_k  cols/256 block_q5_K per row, x given as a q8_act
 *     fp8   cols/128 block_fp8 per row (fp8_block.h: e4m3 codes and a float32
 *           scale per 128 values), x float32
 *     q4_1, q5_1, q3_k, q2_k, iq4_nl, iq4_xs  the same with their ggml blocks
 *     q4_0x8, q4_kx8, q6_kx8, q5_kx8 (and the x8 layouts of the types
 *           above)  with 8 rows interleaved (repack.h), x a q8_act;
 *           W is the whole matrix of rows rows (the kernel reads them from
 *           out's stride: rows = ldo, as every caller has it)
 * x_t is row t of x (T, cols) (float32 for f32, bf16, f16 and fp8). The quantised
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

/* mv_fn: the one signature of every kernel. W points at row 0 of the
 * weights in the type's layout; x is `const float *` (T, cols) for the types
 * whose activations are float32 (wtype.h: WT_ACT_F32) and `const q8_act *`
 * for the quantised ones (WT_ACT_Q8). */
typedef void (*mv_fn)(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T);

enum { ISA_REF = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_N = 3 };

#define MV_DECL(type, isa) \
    void mv_##type##_##isa(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T);
#define MV_DECL_ALL(isa) \
    MV_DECL(f32, isa) MV_DECL(bf16, isa) MV_DECL(q8, isa)
MV_DECL_ALL(ref)
MV_DECL_ALL(avx2)
/* f32 on AVX-512 machines: AVX2's kernel (wtype.c says why), its own prefetch distance (matvec_avx2.c) */
MV_DECL(f32, avx512) MV_DECL(bf16, avx512) MV_DECL(f16, avx512) MV_DECL(q8, avx512)
/* q4_0, q4_k, q6_k, q5_k: one row per vector lane in plain C and AVX2 only, so the plain
 * and the interleaved layouts (q4_0x8, q4_kx8, q6_kx8, q5_kx8) give the same bits on every
 * machine (the AVX-512 kernels of q4_0x8, q4_kx8, q5_kx8 and q6_kx8 keep AVX2's bits) */
MV_DECL(q4_0, ref) MV_DECL(q4_0, avx2) MV_DECL(q4_k, ref) MV_DECL(q4_k, avx2)
MV_DECL(q4_kx8, ref) MV_DECL(q4_kx8, avx2) MV_DECL(q4_kx8, avx512)
MV_DECL(q6_k, ref) MV_DECL(q6_k, avx2) MV_DECL(q6_kx8, ref) MV_DECL(q6_kx8, avx2) MV_DECL(q6_kx8, avx512)
MV_DECL(q5_kx8, ref) MV_DECL(q5_kx8, avx2) MV_DECL(q5_kx8, avx512)
/* the types kept as stored since issues 13 / 15: plain C and AVX2 (an AVX-512
 * machine runs the AVX2 kernels for them, wtype.c, but for fp8's own) */
MV_DECL(f16, ref) MV_DECL(q5_0, ref) MV_DECL(q5_k, ref) MV_DECL(fp8, ref)
MV_DECL(f16, avx2) MV_DECL(q5_0, avx2) MV_DECL(q5_k, avx2) MV_DECL(fp8, avx2)
MV_DECL(fp8, avx512) /* 64 codes a vector: matvec_avx2.c */
/* ggml's other blocks of 32 (q4_1, q5_1 kept as stored since issue 15) and
 * their interleaved layouts: matvec_legacy_avx2.c */
MV_DECL(q4_1, ref) MV_DECL(q4_1, avx2) MV_DECL(q5_1, ref) MV_DECL(q5_1, avx2)
MV_DECL(q5_0x8, ref) MV_DECL(q5_0x8, avx2) MV_DECL(q4_1x8, ref) MV_DECL(q4_1x8, avx2)
MV_DECL(q5_1x8, ref) MV_DECL(q5_1x8, avx2)
MV_DECL(q3_k, ref) MV_DECL(q3_k, avx2) MV_DECL(q3_kx8, ref) MV_DECL(q3_kx8, avx2) /* matvec_lowk_avx2.c */
MV_DECL(q2_k, ref) MV_DECL(q2_k, avx2) MV_DECL(q2_kx8, ref) MV_DECL(q2_kx8, avx2)
/* the IQ4 codebook types and their interleaved layouts: matvec_iq4_avx2.c */
MV_DECL(iq4_nl, ref) MV_DECL(iq4_nl, avx2) MV_DECL(iq4_xs, ref) MV_DECL(iq4_xs, avx2)
MV_DECL(iq4_nlx8, ref) MV_DECL(iq4_nlx8, avx2) MV_DECL(iq4_xsx8, ref) MV_DECL(iq4_xsx8, avx2)
MV_DECL(iq4_nl, avx512) MV_DECL(iq4_xs, avx512) MV_DECL(iq4_nlx8, avx512) MV_DECL(iq4_xsx8, avx512) /* by VNNI */
MV_DECL(q4_0x8, ref) MV_DECL(q4_0x8, avx2)
MV_DECL(q4_0x8, avx512) /* AVX2's sums (the same bits) by AVX512_VNNI: matvec_avx2.c */
#undef MV_DECL
#undef MV_DECL_ALL

/* q8_fill_fn: q8_act_fill (quant.h) for tokens [t0, t1); every variant writes
 * the same bytes. */
typedef void (*q8_fill_fn)(q8_act *a, const float *x, int t0, int t1);
void q8_fill_avx2(q8_act *a, const float *x, int t0, int t1);
#endif
