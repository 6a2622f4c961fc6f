/*
 * matvec_q3k_avx2.c — the matvec.h kernels with AVX2 for Q3_K (w = d (sc_s
 * - 32) (q - 4) per 16 values, q 0..7: 2 bits in qs, 1 in hmask; 16 6-bit
 * scales packed in 12 bytes), plain and with 8 rows interleaved (q3_kx8:
 * repack.h, ggml's bytes 4 at a time).
 *
 * One ROW per vector lane, as matvec_avx2.c's q6_k. Per super-block of 256
 * values, half n, 2-bit field t and 16-value sub-block h (s = 8n + 2t + h):
 * 4 chunks of 4 values of each row, each q = ((qs >> 2t) & 3) | (hmask bit
 * 4n + t moved to bit 2) (a shift and an AND of each, an OR), maddubs by the
 * token's 4 matching activation bytes broadcast, 4 summed in int16 (at most
 * 4 x 2 x 7 x 127: exact), minus 4 x the sub-block's pair sums (q8_act.c16
 * / 8: the -4 of q - 4), madd by the rows' int16 scales sc_s - 32 (the 8
 * rows' 16 scales unpacked from three vectors once a super-block, a byte
 * shuffle per sub-block), the two sub-blocks of an activation block added
 * in int32; in += float(isum) * dx per 32 values, acc += d * in per
 * super-block. Every integer is exact, so the float operations alone fix
 * the bits: per (lane, token) the same ones in the same order whatever the
 * tile, T or layout. Plain rows (the rows % 8 last rows, a borrowed mapping)
 * are gathered 8 at a time into the interleaved form on the stack first.
 * One token: 2 groups half of [r0, r1) apart (two weight streams), else one
 * group x 2 tokens.
 */
#pragma GCC target("avx2,fma,f16c")
#include <stdint.h>
#include <string.h>
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/repack.h"
#include "kernels/simd_common.h"
#include "kernels/lanes_avx2.h"

#ifndef PF_BYTES
#define PF_BYTES 1024
#endif

INL __m256i sh16(__m256i v, int s) { return s >= 0 ? _mm256_slli_epi16(v, s) : _mm256_srli_epi16(v, -s); }

/* the 8 rows' 16 scales: S[q] byte 4j + b = scale 4q + b of row j (0..63) */
INL void q3k_scales(const block_q3_Kx8 *B, __m256i S[4]) {
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    const __m256i v0 = _mm256_loadu_si256((const __m256i *)B->scales),
                  v1 = _mm256_loadu_si256((const __m256i *)(B->scales + 32)),
                  v2 = _mm256_loadu_si256((const __m256i *)(B->scales + 64));
    const __m256i lo[4] = {_mm256_and_si256(v0, m4), _mm256_and_si256(v1, m4),
                           _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4)};
    #pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
        S[q] = _mm256_or_si256(lo[q], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(v2, 2 * q), m3), 4));
}

/* scale s of each lane's row minus 32, in both int16 halves of the lane */
INL __m256i q3k_sc(const __m256i S[4], int s) {
    const char b = (char)(s % 4), z = (char)0x80;
    const __m256i ctl = _mm256_setr_epi8(b, z, b, z, b + 4, z, b + 4, z, b + 8, z, b + 8, z, b + 12, z, b + 12, z,
                                         b, z, b, z, b + 4, z, b + 4, z, b + 8, z, b + 8, z, b + 12, z, b + 12, z);
    return _mm256_sub_epi16(_mm256_shuffle_epi8(S[s / 4], ctl), _mm256_set1_epi16(32));
}

/* super-block p of the NG groups B[i] x NT tokens from t0 (NG NT <= 2) into
 * acc[i NT + t]; xq, c16, xd: token t0's activations, cols apart */
INL void q3k_block(const block_q3_Kx8 *const *B, int NG, int NT, const q8_act *x, size_t cols, int p, int t0,
                   __m256 *acc) {
    const __m256i m3 = _mm256_set1_epi8(3), b2 = _mm256_set1_epi8(4);
    const int nb = (int)(cols / 32), n16 = (int)(cols / 16);
    __m256i S[2][4];
    __m256 in[2];
    #pragma GCC unroll 2
    for (int i = 0; i < NG; i++) q3k_scales(B[i], S[i]);
    #pragma GCC unroll 2
    for (int n = 0; n < 2; n++)
        #pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            __m256i s32[2];
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256i s16[2];
                #pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    const int v0 = 256 * p + 128 * n + 32 * t + 16 * h + 4 * c; /* the chunk's first value */
                    #pragma GCC unroll 2
                    for (int i = 0; i < NG; i++) {
                        const __m256i q = _mm256_loadu_si256((const __m256i *)(B[i]->qs + 32 * (8 * n + 4 * h + c)));
                        const __m256i hm = _mm256_loadu_si256((const __m256i *)(B[i]->hmask + 32 * (4 * h + c)));
                        const __m256i v = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * t), m3),
                                                          _mm256_and_si256(sh16(hm, 2 - (4 * n + t)), b2));
                        #pragma GCC unroll 2
                        for (int u = 0; u < NT; u++) {
                            int32_t xw;
                            memcpy(&xw, x->qs + (size_t)(t0 + u) * cols + v0, 4);
                            const __m256i pr = _mm256_maddubs_epi16(v, _mm256_set1_epi32(xw));
                            s16[i * NT + u] = c ? _mm256_add_epi16(s16[i * NT + u], pr) : pr;
                        }
                    }
                }
                const int s = 8 * n + 2 * t + h;
                #pragma GCC unroll 2
                for (int i = 0; i < NG; i++) {
                    const __m256i sc = q3k_sc(S[i], s);
                    #pragma GCC unroll 2
                    for (int u = 0; u < NT; u++) {
                        const int32_t c16 = x->c16[(size_t)(t0 + u) * n16 + 16 * p + 8 * n + 2 * t + h];
                        const __m256i off = _mm256_srai_epi16(_mm256_set1_epi32(c16), 3); /* 4 x the pair sums */
                        const __m256i w = _mm256_madd_epi16(_mm256_sub_epi16(s16[i * NT + u], off), sc);
                        s32[i * NT + u] = h ? _mm256_add_epi32(s32[i * NT + u], w) : w;
                    }
                }
            }
            #pragma GCC unroll 2
            for (int k = 0; k < NG * NT; k++) {
                const int u = k % NT;
                const __m256 dx = _mm256_broadcast_ss(x->d + (size_t)(t0 + u) * nb + 8 * p + 4 * n + t);
                const __m256 f = _mm256_cvtepi32_ps(s32[k]);
                in[k] = n || t ? _mm256_fmadd_ps(f, dx, in[k]) : _mm256_mul_ps(f, dx);
            }
        }
    #pragma GCC unroll 2
    for (int k = 0; k < NG * NT; k++)
        acc[k] = _mm256_fmadd_ps(in[k], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[k / NT]->d)), acc[k]);
}

/* NG interleaved groups g + i gs x NT tokens from t0 */
INL void q3k_tile(float *out, size_t ldo, const block_q3_Kx8 *W, int nb, const q8_act *x, int g, int gs, int NG,
                  int r0, int r1, int t0, int NT) {
    __m256 acc[2];
    #pragma GCC unroll 2
    for (int k = 0; k < NG * NT; k++) acc[k] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q3_Kx8 *B[2];
        #pragma GCC unroll 2
        for (int i = 0; i < NG; i++) {
            B[i] = W + (size_t)(g + i * gs) * nb + p;
            for (int o = 0; o < 880; o += 64) _mm_prefetch((const char *)B[i] + PF_BYTES + o, _MM_HINT_T0);
        }
        q3k_block(B, NG, NT, x, (size_t)nb * QK_K, p, t0, acc);
    }
    groups_store(out, ldo, acc, NT, g, gs, NG, r0, r1, t0, NT);
}

/* 8 plain rows' super-block p gathered into the interleaved form */
INL void q3k_gather(block_q3_Kx8 *G, const block_q3_K *W, int nb, const int *rows, int p) {
    for (int j = 0; j < 8; j++) {
        const block_q3_K *s = W + (size_t)rows[j] * nb + p;
        G->d[j] = s->d;
        for (int w = 0; w < 3; w++) memcpy(G->scales + 32 * w + 4 * j, s->scales + 4 * w, 4);
        for (int c = 0; c < 8; c++) memcpy(G->hmask + 32 * c + 4 * j, s->hmask + 4 * c, 4);
        for (int c = 0; c < 16; c++) memcpy(G->qs + 32 * c + 4 * j, s->qs + 4 * c, 4);
    }
}

/* plain rows [r0, r1), 8 at a time (the last set filled up with its last
 * row, computed, not written), tokens 2 at a time */
static void q3k_plain(float *out, size_t ldo, const block_q3_K *W, int nb, const q8_act *x, int r0, int r1, int T) {
    for (int r = r0; r < r1; r += 8) {
        int rows[8], keep[8];
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        for (int t0 = 0; t0 < T; t0 += 2) {
            const int nt = T - t0 < 2 ? 1 : 2;
            __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int p = 0; p < nb; p++) {
                block_q3_Kx8 G;
                const block_q3_Kx8 *B[1] = {&G};
                q3k_gather(&G, W, nb, rows, p);
                if (nt == 2) q3k_block(B, 1, 2, x, (size_t)nb * QK_K, p, t0, acc);
                else q3k_block(B, 1, 1, x, (size_t)nb * QK_K, p, t0, acc);
            }
            lanes_store(out, ldo, acc, keep, t0, nt);
        }
    }
}

void mv_q3_k_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *xv, int T) {
    q3k_plain(out, ldo, W, cols / QK_K, xv, r0, r1, T);
}

/* the groups [r0, r1) touches: one token 2 groups half of them apart, more
 * one group x 2 tokens; then the rows % 8 last rows (plain, at their plain
 * place: repack.h); ldo is the matrix's rows */
void mv_q3_kx8_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q3_Kx8 *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK_K, G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;
    int g = r0 / 8;
    if (T == 1 && g1 > g) {
        const int q = (g1 - g) / 2;
        for (int k = 0; k < q; k++) q3k_tile(out, ldo, W, nb, x, g + k, q, 2, r0, r1, 0, 1);
        g += 2 * q;
    }
    for (; g < g1; g++)
        for (int t0 = 0; t0 < T; t0 += 2) {
            if (T - t0 >= 2) q3k_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 2);
            else q3k_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 1);
        }
    if (r1 > 8 * G) q3k_plain(out, ldo, Wv, nb, x, r0 > 8 * G ? r0 : 8 * G, r1, T);
}
