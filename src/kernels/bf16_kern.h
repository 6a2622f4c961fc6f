/*
 * bf16_kern.h — the AVX-512 pieces both BF16 GEMM kernels use (gemm_bf16.c's
 * vdpbf16ps one, gemm_amx.c's AMX one): the masks of a 32-column block's
 * two 16-lane halves, a row of the block written to C, and the FP8 form's
 * promotion of one 128-long chunk of K (gemm_bf16.h: sum += SA SB part).
 * Static inline with the kernels' instruction set; include after
 * <immintrin.h>, in code that runs only where gemm_bf16_ok().
 */
#ifndef DC_BF16_KERN_H
#define DC_BF16_KERN_H
#include <stddef.h>
#include "kernels/gemm_bf16.h"

#define BF16K __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"), always_inline)) static inline

/* the masks of nr (<= 32) columns in the two 16-lane halves */
BF16K void bf16k_masks(int nr, __mmask16 *m0, __mmask16 *m1) {
    *m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    *m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
}

/* a block row's two halves into C's row (added to it when acc), by the masks */
BF16K void bf16k_row_out(float *row, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1, int acc) {
    if (acc) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row)), v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
}

/* chunk c's B scales of the block's columns from j0: one 128 x 128 block's
 * (bn > 1; 32 | 128), or a scale per column (bn 1, bj 1: in a row) */
BF16K void bf16k_fp8_sb(const fp8_scales *s, int j0, size_t c, __mmask16 m0, __mmask16 m1, __m512 *sb0, __m512 *sb1) {
    if (s->bn > 1) {
        *sb0 = *sb1 = _mm512_set1_ps(s->b[(size_t)(j0 / s->bn) * s->bj + c * s->bc]);
        return;
    }
    const float *b = s->b + (size_t)j0 * s->bj + c * s->bc;
    *sb0 = _mm512_maskz_loadu_ps(m0, b), *sb1 = _mm512_maskz_loadu_ps(m1, b + 16);
}

/* sum (a block row of 32, 64-byte aligned) = (c ? sum : 0) + SA(row, c) SB (v0 | v1) */
BF16K void bf16k_fp8_add(float *sum, const fp8_scales *s, int row, size_t c, __m512 v0, __m512 v1, __m512 sb0,
                         __m512 sb1) {
    const __m512 f = _mm512_set1_ps(s->a[(size_t)row * s->ai + c * s->ac]);
    const __m512 t0 = c ? _mm512_load_ps(sum) : _mm512_setzero_ps(), t1 = c ? _mm512_load_ps(sum + 16) : _mm512_setzero_ps();
    _mm512_store_ps(sum, _mm512_fmadd_ps(v0, _mm512_mul_ps(f, sb0), t0));
    _mm512_store_ps(sum + 16, _mm512_fmadd_ps(v1, _mm512_mul_ps(f, sb1), t1));
}
#endif
