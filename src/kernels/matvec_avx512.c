/*
 * matvec_avx512.c — the matvec.h kernels with AVX-512 (F, BW, VL, DQ, VNNI).
 *
 * bf16: two 16-wide accumulators per token; bf16 weights widen to f32 by a
 * shift (exact), so bf16 only saves bytes (vdpbf16ps would round x); f16
 * the same with vcvtph2ps. f32
 * runs AVX2's kernel (wtype.c says why).
 * q8: two blocks (64 bytes) per step. vpdpbusd multiplies unsigned by signed
 * bytes, so the weights are offset to w+128 (unsigned) and the accumulator
 * starts at -128 * (sum of each group of four x), which q8_act precomputes:
 *     c4 + sum (w + 128) x = sum w x   (exact in int32)
 * then each 8-lane half is scaled by d_w * d_x of its block.
 */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")
#include <immintrin.h>
#include <string.h>
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/simd_common.h"

/* ---------------------------------------------------------------- bf16 */

/* software prefetch distance, in bf16 values (2 KB) */
#ifndef PF_BF16
#define PF_BF16 1024
#endif
/* 1 to 3 tokens (decode, a few sequences, MTP's verification): 4 rows a
 * quarter of [r0, r1) apart (four weight streams; a row at a time read
 * one), every token at once; the rest a row at a time, tokens 4 at a time;
 * every (row, token) the same bits either way */
#define MV_QUARTERS(ROWS4, W, x, stride, len)                                                                      \
    if (T <= 3) {                                                                                                  \
        const int q = (r1 - r0) / 4;                                                                               \
        for (int k = 0; k < q; k++) {                                                                              \
            const void *w4[4] = {W + (size_t)(r0 + k) * (stride), W + (size_t)(r0 + k + q) * (stride),            \
                                 W + (size_t)(r0 + k + 2 * q) * (stride), W + (size_t)(r0 + k + 3 * q) * (stride)}; \
            float res4[12];                                                                                        \
            ROWS4(w4, x, len, res4, T);                                                                            \
            for (int t = 0; t < T; t++)                                                                            \
                for (int j = 0; j < 4; j++) out[(size_t)t * ldo + r0 + k + j * q] = res4[4 * t + j];               \
        }                                                                                                          \
        r0 += 4 * q;                                                                                               \
    }

/* the 16-bit float kinds (a constant in each caller): bf16 widens by a
 * shift, f16 by vcvtph2ps; both exact, so each gives the same sums of the
 * same float32 weights in the same order */
enum { K_BF16, K_F16 };
INL __m512 h16_load(int K, const uint16_t *p) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    if (K == K_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
/* the first m lanes' values (the others zero) */
INL __m512 h16_mask(int K, const uint16_t *w, __mmask16 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, w);
    if (K == K_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INL void h16_row(int K, const uint16_t *w, const float *x, int cols, size_t t0, int NT, float *res) {
    x += t0 * cols;
    __m512 a0[4], a1[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) a0[t] = a1[t] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= cols; i += 32) {
        _mm_prefetch((const char *)(w + i + PF_BF16), _MM_HINT_T0); /* one 64-byte line a step */
        __m512 w0 = h16_load(K, w + i), w1 = h16_load(K, w + i + 16);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)t * cols + i), a0[t]);
            a1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + (size_t)t * cols + i + 16), a1[t]);
        }
    }
    if (i + 16 <= cols) {
        __m512 w0 = h16_load(K, w + i);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)t * cols + i), a0[t]);
        i += 16;
    }
    if (i < cols) {
        __mmask16 m = (__mmask16)((1u << (cols - i)) - 1);
        __m512 w0 = h16_mask(K, w + i, m);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++)
            a1[t] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x + (size_t)t * cols + i), a1[t]);
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) res[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}
INL void bf16_row(const uint16_t *w, const float *x, int cols, size_t t0, int NT, float *res) {
    h16_row(K_BF16, w, x, cols, t0, NT, res);
}
INL void f16_row(const uint16_t *w, const float *x, int cols, size_t t0, int NT, float *res) {
    h16_row(K_F16, w, x, cols, t0, NT, res);
}

/* the columns of row w from i on (under 32) for one token's xt: h16_row's
 * 16-wide step and masked rest on its two sums a0, a1, then their lanes */
INL float h16_end(int K, const uint16_t *w, const float *xt, int cols, int i, __m512 a0, __m512 a1) {
    if (i + 16 <= cols) {
        a0 = _mm512_fmadd_ps(h16_load(K, w + i), _mm512_loadu_ps(xt + i), a0);
        i += 16;
    }
    if (i < cols) {
        __mmask16 m = (__mmask16)((1u << (cols - i)) - 1);
        a1 = _mm512_fmadd_ps(h16_mask(K, w + i, m), _mm512_maskz_loadu_ps(m, xt + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}
/* rows w[0..3] at once, NT = 1..3 tokens: h16_row's operations for each
 * (row, token), in its order (the same bits), each x vector loaded once
 * for the 4 rows */
INL void rows4(int K, const void *const *wv, const float *x, int cols, float *res, int NT) {
    const uint16_t *w[4] = {wv[0], wv[1], wv[2], wv[3]};
    __m512 a0[4][3], a1[4][3];
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        #pragma GCC unroll 3
        for (int t = 0; t < NT; t++) a0[j][t] = a1[j][t] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= cols; i += 32) {
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            _mm_prefetch((const char *)(w[j] + i + PF_BF16), _MM_HINT_T0);
            const __m512 w0 = h16_load(K, w[j] + i), w1 = h16_load(K, w[j] + i + 16);
            #pragma GCC unroll 3
            for (int t = 0; t < NT; t++) {
                a0[j][t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)t * cols + i), a0[j][t]);
                a1[j][t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + (size_t)t * cols + i + 16), a1[j][t]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        #pragma GCC unroll 3
        for (int t = 0; t < NT; t++) res[4 * t + j] = h16_end(K, w[j], x + (size_t)t * cols, cols, i, a0[j][t], a1[j][t]);
}
/* rows w[0], w[1] at once x NT = 1..4 tokens, res[2 t + j]: the same
 * operations for each (row, token) in the same order (the same bits), each
 * x vector loaded once for the two rows: for T >= 4, two rows x four
 * tokens, where one row at a time loaded a token's x vector for each pair
 * of FMAs (an expert's 512 x 1024 in L2, one Zen 5 thread, x on a cache
 * line: 158 -> 166 GFLOP/s at 8 tokens; from memory, 102400 x 1024, 4
 * tokens, two weight streams and x aligned together: 19 -> 28 GB/s).
 * rows4 stays apart for 1-3 tokens: this loop's shape with 4 rows read
 * one token ~5% slower from memory in one sitting */
INL void rows2(int K, const void *const *wv, const float *x, int cols, float *res, int NT) {
    enum { NR = 2 };
    const uint16_t *w[NR] = {wv[0], wv[1]};
    __m512 a0[NR][4], a1[NR][4];
    #pragma GCC unroll 4
    for (int j = 0; j < NR; j++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) a0[j][t] = a1[j][t] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= cols; i += 32) {
        __m512 w0[NR], w1[NR];
        #pragma GCC unroll 4
        for (int j = 0; j < NR; j++) {
            _mm_prefetch((const char *)(w[j] + i + PF_BF16), _MM_HINT_T0);
            w0[j] = h16_load(K, w[j] + i), w1[j] = h16_load(K, w[j] + i + 16);
        }
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512 x0 = _mm512_loadu_ps(x + (size_t)t * cols + i), x1 = _mm512_loadu_ps(x + (size_t)t * cols + i + 16);
            #pragma GCC unroll 4
            for (int j = 0; j < NR; j++) {
                a0[j][t] = _mm512_fmadd_ps(w0[j], x0, a0[j][t]);
                a1[j][t] = _mm512_fmadd_ps(w1[j], x1, a1[j][t]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int j = 0; j < NR; j++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) res[NR * t + j] = h16_end(K, w[j], x + (size_t)t * cols, cols, i, a0[j][t], a1[j][t]);
}
/* rows4 (MV_QUARTERS's ROWS4, res[4 t + j]) and rows2, NT a constant in each */
#define H16_TILES(PRE, KIND)                                                                   \
    INL void PRE##_rows4(const void *const *w, const float *x, int cols, float *res, int NT) {  \
        if (NT == 3) rows4(KIND, w, x, cols, res, 3);                                           \
        else if (NT == 2) rows4(KIND, w, x, cols, res, 2);                                      \
        else rows4(KIND, w, x, cols, res, 1);                                                   \
    }                                                                                          \
    INL void PRE##_rows2(const void *const *w, const float *x, int cols, float *res, int NT) {  \
        switch (NT) {                                                                          \
        case 4: rows2(KIND, w, x, cols, res, 4); break;                                     \
        case 3: rows2(KIND, w, x, cols, res, 3); break;                                     \
        case 2: rows2(KIND, w, x, cols, res, 2); break;                                     \
        default: rows2(KIND, w, x, cols, res, 1); break;                                    \
        }                                                                                      \
    }
H16_TILES(bf16, K_BF16)
H16_TILES(f16, K_F16)

/* T >= 4 (after MV_QUARTERS): rows in pairs half of [r0, r1) apart (two
 * weight streams), tokens in groups of up to 4 shared evenly (ROW_T4's
 * groups); an odd last row alone */
#define MV_PAIRS(ROWS2, ROW, W, x, cols)                                                                \
    {                                                                                                  \
        const int q = (r1 - r0) / 2;                                                                   \
        for (int g_ = 0, ng_ = (T + 3) / 4, t0 = 0; g_ < ng_; g_++) {                                  \
            const int nt = T / ng_ + (g_ < T % ng_);                                                   \
            for (int k = 0; k < q; k++) {                                                              \
                const void *w2[2] = {W + (size_t)(r0 + k) * (cols), W + (size_t)(r0 + k + q) * (cols)}; \
                float res2[8];                                                                         \
                ROWS2(w2, x + (size_t)t0 * (cols), cols, res2, nt);                                    \
                for (int t = 0; t < nt; t++)                                                           \
                    for (int j = 0; j < 2; j++) out[(size_t)(t0 + t) * ldo + r0 + k + j * q] = res2[2 * t + j]; \
            }                                                                                          \
            t0 += nt;                                                                                  \
        }                                                                                              \
        r0 += 2 * q;                                                                                   \
        for (int r = r0; r < r1; r++) ROW_T4(ROW, W + (size_t)r * (cols), x, cols)                      \
    }

void mv_bf16_avx512(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const uint16_t *W = Wv;
    const float *x = xv;
    MV_QUARTERS(bf16_rows4, W, x, cols, cols)
    MV_PAIRS(bf16_rows2, bf16_row, W, x, cols)
}

/* f16 as bf16 (an F16 GGUF stays F16; AVX2's kernel widens 8 at a time) */
void mv_f16_avx512(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const uint16_t *W = Wv;
    const float *x = xv;
    MV_QUARTERS(f16_rows4, W, x, cols, cols)
    MV_PAIRS(f16_rows2, f16_row, W, x, cols)
}

/* ---------------------------------------------------------------- q8 */

/* tokens t0..t0+NT-1 of x against one row of nb blocks */
/* rows w[0..NR) x tokens t0..t0 + NT - 1 (NR, NT <= 4), res[i][t]. Per
 * two blocks (64 bytes) of a row: vpdpbusd multiplies w + 128 (unsigned)
 * by x (signed) from q8_act's c4 = -128 sum(x), then each 8-lane half is
 * scaled by d_w d_x into the row's 16-lane sum; an odd last block by 8
 * lanes. Each weight vector is loaded once for the NT tokens and each
 * token's x, c4, d4 once for the NR rows (one row at a time reloads x for
 * every row: load-bound at prefill); a (row, token)'s operations and their
 * order do not depend on NR, NT or t0: the same bits in every tile. 4 x 4:
 * 16 zmm sums, 4 weight and 4 scale vectors, 24 of the 32 registers. */
INL void q8_tile(const block_q8_0 *const *w, int NR, const q8_act *x, int nb, size_t t0, int NT, float res[4][4]) {
    const size_t cols = (size_t)nb * QK8_0, g = cols / 4;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 a[4][4];
    #pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) a[i][t] = _mm512_setzero_ps();
    int p = 0;
    for (; p + 2 <= nb; p += 2) {
        __m512i wv[4];
        __m512 ws[4];
        #pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            _mm_prefetch((const char *)(w[i] + p + 32), _MM_HINT_T0); /* 32 blocks (1 KB) ahead */
            _mm_prefetch((const char *)(w[i] + p + 33) + 4, _MM_HINT_T0);
            __m256i lo = _mm256_loadu_si256((const __m256i *)w[i][p].qs), hi = _mm256_loadu_si256((const __m256i *)w[i][p + 1].qs);
            wv[i] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), bias);
            ws[i] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(_cvtsh_ss(w[i][p].d))),
                                       _mm256_set1_ps(_cvtsh_ss(w[i][p + 1].d)), 1);
        }
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const size_t tt = t0 + t;
            const __m512i c = _mm512_loadu_si512(x->c4 + tt * g + (size_t)p * 8), xq = _mm512_loadu_si512(x->qs + tt * cols + (size_t)p * QK8_0);
            const __m512 d = _mm512_loadu_ps(x->d4 + tt * g + (size_t)p * 8);
            #pragma GCC unroll 4
            for (int i = 0; i < NR; i++) {
                __m512i s = _mm512_dpbusd_epi32(c, wv[i], xq);
                __m512 sc = _mm512_mul_ps(ws[i], d);
                a[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, a[i][t]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            __m256 b = _mm256_setzero_ps();
            if (p < nb) { /* the odd last block */
                const size_t tt = t0 + t;
                __m256i wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)w[i][p].qs), _mm512_castsi512_si256(bias));
                __m256 ws = _mm256_set1_ps(_cvtsh_ss(w[i][p].d));
                __m256i s = _mm256_dpbusd_epi32(_mm256_loadu_si256((const __m256i *)(x->c4 + tt * g + (size_t)p * 8)), wv,
                                                _mm256_loadu_si256((const __m256i *)(x->qs + tt * cols + (size_t)p * QK8_0)));
                __m256 sc = _mm256_mul_ps(ws, _mm256_loadu_ps(x->d4 + tt * g + (size_t)p * 8));
                b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, b);
            }
            res[i][t] = _mm512_reduce_add_ps(a[i][t]) + hsum256(b);
        }
}

/* one row, tokens t0..t0 + NT - 1 (ROW_T4's form) */
INL void q8_row(const block_q8_0 *w, const q8_act *x, int nb, size_t t0, int NT, float *res) {
    float r[4][4];
    q8_tile(&w, 1, x, nb, t0, NT, r);
    for (int t = 0; t < NT; t++) res[t] = r[0][t];
}

/* rows w[0..3], NT = 1..3 tokens from 0, res[4 t + j] (MV_QUARTERS' form) */
INL void q8_rows4(const void *const *w, const q8_act *x, int nb, float *res, int NT) {
    const block_q8_0 *b[4] = {w[0], w[1], w[2], w[3]};
    float r[4][4];
    switch (NT) {
    case 3: q8_tile(b, 4, x, nb, 0, 3, r); break;
    case 2: q8_tile(b, 4, x, nb, 0, 2, r); break;
    default: q8_tile(b, 4, x, nb, 0, 1, r); break;
    }
    for (int t = 0; t < NT; t++)
        for (int j = 0; j < 4; j++) res[4 * t + j] = r[j][t];
}

/* 1 to 3 tokens (decode): 4 rows a quarter of [r0, r1) apart (MV_QUARTERS;
 * one row at a time read one stream); 4+ tokens: 4 rows a quarter apart x
 * 4 tokens a tile (4 adjacent rows, as before, read from memory at half
 * the speed on Zen 5, bench_matvec decode T = 4: 1 thread 12.6-15.0 GB/s,
 * in L2 28); the rows left a row at a time, tokens 4 at a time: every
 * (row, token) the same bits either way */
void mv_q8_avx512(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q8_0 *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK8_0, T4 = T / 4 * 4;
    MV_QUARTERS(q8_rows4, W, x, nb, nb)
    int r = r0;
    if (T4) {
        const int q = (r1 - r0) / 4;
        for (int k = 0; k < q; k++) {
            const int ri[4] = {r0 + k, r0 + k + q, r0 + k + 2 * q, r0 + k + 3 * q};
            const block_q8_0 *w[4] = {W + (size_t)ri[0] * nb, W + (size_t)ri[1] * nb, W + (size_t)ri[2] * nb,
                                      W + (size_t)ri[3] * nb};
            for (int t0 = 0; t0 < T4; t0 += 4) {
                float res[4][4];
                q8_tile(w, 4, x, nb, (size_t)t0, 4, res);
                for (int i = 0; i < 4; i++)
                    for (int t = 0; t < 4; t++) out[(size_t)(t0 + t) * ldo + ri[i]] = res[i][t];
            }
            for (int i = 0; i < 4 && T4 < T; i++) /* the tokens past the last 4 */
                for (int t0 = T4; t0 < T; t0++) {
                    float res1[4];
                    q8_row(w[i], x, nb, (size_t)t0, 1, res1);
                    out[(size_t)t0 * ldo + ri[i]] = res1[0];
                }
        }
        r = r0 + 4 * q;
    }
    for (; r < r1; r++) ROW_T4(q8_row, W + (size_t)r * nb, x, nb)
}

/* (the ggml block types, Q4_0, Q4_K, Q6_K, Q5_0, Q5_K, run AVX2's kernels: matvec.h,
 * wtype.h; Q6_K's AVX-512 kernel went with issue 15's q6_kx8, whose bits its
 * plain rows must give.) */
