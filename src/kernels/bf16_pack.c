/* bf16_pack.c — see bf16_pack.h. */
#include "kernels/bf16_pack.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PACK_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* 16 x 16 dwords transposed in the registers, r[i] lane c -> r[c] lane i:
 * the off-diagonal b x b blocks of every 2b x 2b block swapped, b = 8, 4, 2, 1 */
PACK_TARGET static inline __attribute__((always_inline)) void transpose16(__m512i r[16]) {
    static const int32_t IDX[4][2][16] __attribute__((aligned(64))) = {
#define LO(b, c) ((c) & (b) ? 16 + (c) - (b) : (c))
#define HI(b, c) ((c) & (b) ? 16 + (c) : (c) + (b))
#define ROW(F, b) {F(b, 0), F(b, 1), F(b, 2), F(b, 3), F(b, 4), F(b, 5), F(b, 6), F(b, 7), F(b, 8), F(b, 9), F(b, 10), F(b, 11), F(b, 12), F(b, 13), F(b, 14), F(b, 15)}
        {ROW(LO, 8), ROW(HI, 8)}, {ROW(LO, 4), ROW(HI, 4)}, {ROW(LO, 2), ROW(HI, 2)}, {ROW(LO, 1), ROW(HI, 1)},
#undef ROW
#undef HI
#undef LO
    };
    #pragma GCC unroll 4
    for (int l = 0; l < 4; l++) {
        const int b = 8 >> l;
        const __m512i lo = _mm512_load_si512(IDX[l][0]), hi = _mm512_load_si512(IDX[l][1]);
        #pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            if (!(i & b)) {
                const __m512i x = r[i], y = r[i + b];
                r[i] = _mm512_permutex2var_epi32(x, lo, y);
                r[i + b] = _mm512_permutex2var_epi32(x, hi, y);
            }
    }
}

/* the dwords of pair p of columns [j, j + 16) of op(X) = X (K, n) read
 * down its columns: rows 2p and 2p + 1 of X, columns m of them (m <= 16,
 * the rest zero); zero past K */
PACK_TARGET static inline __attribute__((always_inline)) __m512i col_dwords(const float *X, int ld, int K, int j, int m,
                                                                           size_t p) {
    const int k = (int)(2 * p);
    if (k >= K || m <= 0) return _mm512_setzero_si512();
    const __mmask16 mk = (__mmask16)(m >= 16 ? 0xffff : (1u << m) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(mk, X + (size_t)k * ld + j);
    const __m512 hi = k + 1 < K ? _mm512_maskz_loadu_ps(mk, X + (size_t)(k + 1) * ld + j) : _mm512_setzero_ps();
    const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* 32 bf16: lo's 16, then hi's 16 */
    return _mm512_or_si512(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)),
                           _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16));
}

PACK_TARGET void bf16_pack_cols(uint32_t *dst, const float *X, int ld, int n, int K, int w, size_t Pst, int c) {
    const size_t b = (size_t)c * BF16_PB, e = Pst - b < BF16_PB ? Pst : b + BF16_PB;
    const int np = (n + w - 1) / w;
    for (int i = 0; i < np; i++) {
        uint32_t *d = dst + (size_t)i * w * Pst;
        const int rows = n - i * w < w ? n - i * w : w;
        for (size_t p = b; p < e; p++)
            for (int j = 0; j < w; j += 16) {
                const __m512i v = col_dwords(X, ld, K, i * w + j, rows - j, p);
                if (w - j >= 16) _mm512_storeu_si512(d + p * w + j, v);
                else _mm512_mask_storeu_epi32(d + p * w + j, (__mmask16)((1u << (w - j)) - 1), v);
            }
    }
}

/* 16 rows at a time converted along k (16 pairs a row: one zmm of dwords
 * each; vcvtne2ps2bf16 rounds to nearest even, NaNs stay NaNs, subnormals
 * go to zero as the kernels treat them anyway), the 16 x 16 dwords
 * transposed in the registers into 16 pairs' row dwords */
PACK_TARGET void bf16_pack_rows(uint32_t *dst, const float *X, int ld, int n, int K, int i0, int w, size_t Pst) {
    const int rows = n - i0 < w ? n - i0 : w;
    for (int j0 = 0; j0 < w; j0 += 16) {
        const int nw = w - j0 < 16 ? w - j0 : 16; /* the panel's dwords a pair from these rows */
        const __mmask16 sm = (__mmask16)((1u << nw) - 1);
        for (int k = 0; (size_t)k / 2 < Pst; k += 32) { /* 16 pairs a step */
            const int m = K - k >= 32 ? 32 : K - k > 0 ? K - k : 0;
            const __mmask16 m0 = (__mmask16)(m >= 16 ? 0xffff : (1u << m) - 1), m1 = (__mmask16)(m >= 32 ? 0xffff : m <= 16 ? 0 : (1u << (m - 16)) - 1);
            __m512i r[16];
            #pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                if (j0 + i >= rows || !m) {
                    r[i] = _mm512_setzero_si512();
                    continue;
                }
                const float *x = X + (size_t)(i0 + j0 + i) * ld + k;
                /* cvtne2ps2bf16(b, a): a's 16 values then b's, each pair (2q, 2q + 1) one dword */
                r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + 16), _mm512_maskz_loadu_ps(m0, x));
            }
            transpose16(r);
            const size_t q = Pst - (size_t)k / 2 < 16 ? Pst - (size_t)k / 2 : 16;
            for (size_t p = 0; p < q; p++) _mm512_mask_storeu_epi32(dst + ((size_t)k / 2 + p) * w + j0, sm, r[p]);
        }
    }
}

PACK_TARGET void bf16_pack_tiles_rows(uint32_t *dst, const float *X, int ld, int n, int K, int i) {
    const int KB = bf16_tile_blocks(K);
    for (int b = 0; b < KB; b++) {
        const int k = 32 * b, m = K - k >= 32 ? 32 : K - k;
        const __mmask16 m0 = (__mmask16)(m >= 16 ? 0xffff : (1u << m) - 1), m1 = (__mmask16)(m >= 32 ? 0xffff : m <= 16 ? 0 : (1u << (m - 16)) - 1);
        uint32_t *d = dst + (size_t)b * BF16_TILE_BLOCK;
        for (int r = 0; r < 32; r++) {
            const int row = 32 * i + r;
            __m512i v = _mm512_setzero_si512();
            if (row < n) {
                const float *x = X + (size_t)row * ld + k;
                v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + 16), _mm512_maskz_loadu_ps(m0, x));
            }
            _mm512_store_si512(d + 16 * r, v);
        }
    }
}

/* per 16 rows of a panel: the 16 pairs' column dwords (col_dwords), transposed
 * into the rows' 32 bf16 */
PACK_TARGET void bf16_pack_tiles_cols(uint32_t *dst, const float *X, int ld, int n, int K, int b) {
    const int KB = bf16_tile_blocks(K), groups = (n + 31) / 32 * 2;
    for (int g = 0; g < groups; g++) {
        __m512i r[16];
        #pragma GCC unroll 16
        for (int p = 0; p < 16; p++) r[p] = col_dwords(X, ld, K, 16 * g, n - 16 * g, (size_t)b * 16 + p);
        transpose16(r);
        uint32_t *d = dst + ((size_t)(g / 2) * KB + b) * BF16_TILE_BLOCK + (g % 2) * (BF16_TILE_BLOCK / 2);
        #pragma GCC unroll 16
        for (int m = 0; m < 16; m++) _mm512_store_si512(d + 16 * m, r[m]);
    }
}
#else
void bf16_pack_cols(uint32_t *dst, const float *X, int ld, int n, int K, int w, size_t Pst, int c) {
    (void)dst, (void)X, (void)ld, (void)n, (void)K, (void)w, (void)Pst, (void)c;
}
void bf16_pack_rows(uint32_t *dst, const float *X, int ld, int n, int K, int i0, int w, size_t Pst) {
    (void)dst, (void)X, (void)ld, (void)n, (void)K, (void)i0, (void)w, (void)Pst;
}
void bf16_pack_tiles_rows(uint32_t *dst, const float *X, int ld, int n, int K, int i) {
    (void)dst, (void)X, (void)ld, (void)n, (void)K, (void)i;
}
void bf16_pack_tiles_cols(uint32_t *dst, const float *X, int ld, int n, int K, int b) {
    (void)dst, (void)X, (void)ld, (void)n, (void)K, (void)b;
}
#endif
