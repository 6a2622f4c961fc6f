/*
 * matvec_lowk_avx2.c — the matvec.h kernels with AVX2 for the low-bit
 * K-quants, plain and with 8 rows interleaved (q3_kx8, q2_kx8: repack.h;
 * q2_kx8 ggml's bytes 4 at a time, q3_kx8 its 3-bit values regrouped):
 *   q3_k  w = d (sc_s - 32) (q - 4) per 16 values, q 0..7 (2 bits in qs, 1
 *         in hmask), 16 6-bit scales packed in 12 bytes
 *   q2_k  w = d sc_s q - dmin m_s per 16 values, q 0..3, sc_s | m_s << 4 a byte
 *
 * One ROW per vector lane, as matvec_avx2.c's q6_k. Per super-block of 256
 * values, half n, 2-bit field t and 16-value sub-block h (s = 8n + 2t + h;
 * the two sub-blocks of activation block 4n + t): 4 chunks of 4 values of
 * each row (lk_vals: q2_k (qs >> 2t) & 3; q3_k one or two shifts and ANDs
 * of its 96 bytes per 32 values, 19 operations for 8 chunks, where ggml's
 * qs and hmask take 40), maddubs by the token's 4 matching activation bytes broadcast, 4 summed
 * in int16 (at most 4 x 2 x 7 x 127: exact); q3_k: minus 4 x the pair sums
 * (q8_act.c16 / 8: the -4 of q - 4); madd by the rows' int16 scales (the 8
 * rows' 16 unpacked from 3 or 4 vectors once a super-block, a byte shuffle
 * per sub-block), the two sub-blocks added in int32; in += float(isum) * dx
 * per activation block, acc += d * in per super-block. q2_k's mins: per
 * activation block the rows' two m_s times the token's two 16-value sums
 * (c16 / 32) by one madd, im += float(that) * dx, acc -= dmin * im. Every
 * integer is exact, so the float operations alone fix the bits: per (lane,
 * token) the same ones in the same order whatever the tile, T or layout.
 * Plain rows (the rows % 8 last rows, a borrowed mapping) are gathered 8 at
 * a time with ggml's bytes 4 at a time on the stack first (q3_k's then give
 * their values by shifts and ANDs of qs and hmask: the same integers). One token: 2 groups
 * half of [r0, r1) apart (two weight streams), else one group x 2 tokens.
 */
#pragma GCC target("avx2,fma,f16c")
#include <stdint.h>
#include <string.h>
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/repack.h"
#include "kernels/simd_common.h"
#include "kernels/lanes_avx2.h"



/* 8 plain Q3_K rows' super-block gathered with ggml's bytes 4 at a time
 * (d and scales where block_q3_Kx8 has them) */
typedef struct q3_gathered {
    uint16_t d[8];
    uint8_t scales[96];
    uint8_t hmask[256];
    uint8_t qs[512];
} q3_gathered;
_Static_assert(sizeof(q3_gathered) == sizeof(block_q3_Kx8), "the same d and scales places");

INL size_t lk_bytes(int Q) { return Q == 3 ? sizeof(block_q3_Kx8) : sizeof(block_q2_Kx8); }

/* chunk c of sub-block h of field t of half n (values 128n + 32t + 16h + 4c
 * + m of each row) of block B as bytes 0..7 (q3_k) or 0..3 (q2_k): L = 1
 * q3_k's interleaved order (repack.h), L = 0 ggml's bytes (q2_kx8, and
 * plain Q3_K rows gathered as q3_gathered) */
INL __m256i lk_vals(int Q, int L, const void *B, int n, int t, int h, int c) {
    const __m256i m3 = _mm256_set1_epi8(3), m7 = _mm256_set1_epi8(7), b2 = _mm256_set1_epi8(4);
    if (Q == 3 && L) {
        const uint8_t *q = ((const block_q3_Kx8 *)B)->q + 96 * (4 * n + t);
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)q), v1 = _mm256_loadu_si256((const __m256i *)(q + 32)),
                      v2 = _mm256_loadu_si256((const __m256i *)(q + 64));
        const __m256i v = h ? v2 : c < 2 ? v0 : v1;
        if (!h || c < 2) return _mm256_and_si256(c % 2 ? _mm256_srli_epi16(v, 3) : v, m7);
        const __m256i top = c == 2 ? v0 : v1; /* q_6 / q_7: 2 bits atop v0 / v1, the third in bit 6 / 7 of v2 */
        return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(top, 6), m3),
                               _mm256_and_si256(_mm256_srli_epi16(v2, c == 2 ? 4 : 5), b2));
    }
    const uint8_t *qs = Q == 3 ? ((const q3_gathered *)B)->qs : ((const block_q2_Kx8 *)B)->qs;
    const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (8 * n + 4 * h + c)));
    __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * t), m3);
    if (Q == 3) {
        const __m256i hm = _mm256_loadu_si256((const __m256i *)(((const q3_gathered *)B)->hmask + 32 * (4 * h + c)));
        v = _mm256_or_si256(v, _mm256_and_si256(sh16(hm, 2 - (4 * n + t)), b2));
    }
    return v;
}

/* the 8 rows' 16 scales: S[q] byte 4j + b = scale 4q + b of row j (q3_k:
 * 0..63; q2_k: 0..15, M its mins) */
INL void lk_scales(int Q, const void *B, __m256i S[4], __m256i M[4]) {
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    if (Q == 2) {
        const uint8_t *sc = ((const block_q2_Kx8 *)B)->scales;
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(sc + 32 * q));
            S[q] = _mm256_and_si256(v, m4), M[q] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        return;
    }
    const uint8_t *sc = ((const block_q3_Kx8 *)B)->scales;
    const __m256i v0 = _mm256_loadu_si256((const __m256i *)sc), v1 = _mm256_loadu_si256((const __m256i *)(sc + 32)),
                  v2 = _mm256_loadu_si256((const __m256i *)(sc + 64));
    const __m256i lo[4] = {_mm256_and_si256(v0, m4), _mm256_and_si256(v1, m4),
                           _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4)};
    #pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
        S[q] = _mm256_or_si256(lo[q], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(v2, 2 * q), m3), 4));
}

/* bytes b and b2 of each lane of V as the lane's two int16 halves */
INL __m256i lk_pick(__m256i V, int b, int b2) {
    const char z = (char)0x80, c = (char)b, e = (char)b2;
    const __m256i ctl = _mm256_setr_epi8(c, z, e, z, c + 4, z, e + 4, z, c + 8, z, e + 8, z, c + 12, z, e + 12, z,
                                         c, z, e, z, c + 4, z, e + 4, z, c + 8, z, e + 8, z, c + 12, z, e + 12, z);
    return _mm256_shuffle_epi8(V, ctl);
}

/* super-block p of the NG groups B[i] x NT tokens from t0 (NG NT <= 2) into
 * acc[i NT + t]; the activations of token t0 + t are cols apart */
INL void lk_block(int Q, int L, const void *const *B, int NG, int NT, const q8_act *x, size_t cols, int p, int t0,
                  __m256 *acc) {
    const int nb = (int)(cols / 32), n16 = (int)(cols / 16);
    __m256i S[2][4], M[2][4];
    __m256 in[2], im[2];
    #pragma GCC unroll 2
    for (int i = 0; i < NG; i++) lk_scales(Q, B[i], S[i], M[i]);
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
                        const __m256i v = lk_vals(Q, L, B[i], n, t, h, c);
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
                    __m256i sc = lk_pick(S[i][s / 4], s % 4, s % 4);
                    if (Q == 3) sc = _mm256_sub_epi16(sc, _mm256_set1_epi16(32));
                    #pragma GCC unroll 2
                    for (int u = 0; u < NT; u++) {
                        __m256i a = s16[i * NT + u];
                        if (Q == 3) { /* 4 x the pair sums: the -4 of q - 4 */
                            const int32_t c16 = x->c16[(size_t)(t0 + u) * n16 + 16 * p + s];
                            a = _mm256_sub_epi16(a, _mm256_srai_epi16(_mm256_set1_epi32(c16), 3));
                        }
                        const __m256i w = _mm256_madd_epi16(a, sc);
                        s32[i * NT + u] = h ? _mm256_add_epi32(s32[i * NT + u], w) : w;
                    }
                }
            }
            #pragma GCC unroll 2
            for (int k = 0; k < NG * NT; k++) {
                const int u = k % NT, s0 = 8 * n + 2 * t;
                const __m256 dx = _mm256_broadcast_ss(x->d + (size_t)(t0 + u) * nb + 8 * p + 4 * n + t);
                const __m256 f = _mm256_cvtepi32_ps(s32[k]);
                in[k] = n || t ? _mm256_fmadd_ps(f, dx, in[k]) : _mm256_mul_ps(f, dx);
                if (Q == 2) { /* the rows' m_s0, m_s1 times the token's two 16-value sums */
                    const int32_t *c16 = x->c16 + (size_t)(t0 + u) * n16 + 16 * p + s0;
                    int xs[2];
                    for (int e = 0; e < 2; e++)
                        xs[e] = ((int)(int16_t)(c16[e] & 0xffff) + (int)(int16_t)((uint32_t)c16[e] >> 16)) / 32;
                    const __m256i mp = lk_pick(M[k / NT][s0 / 4], s0 % 4, s0 % 4 + 1);
                    const __m256i xp = _mm256_set1_epi32((int)((uint32_t)(uint16_t)xs[0] | (uint32_t)(uint16_t)xs[1] << 16));
                    const __m256 fm = _mm256_cvtepi32_ps(_mm256_madd_epi16(mp, xp));
                    im[k] = n || t ? _mm256_fmadd_ps(fm, dx, im[k]) : _mm256_mul_ps(fm, dx);
                }
            }
        }
    #pragma GCC unroll 2
    for (int k = 0; k < NG * NT; k++) {
        const uint16_t *d = Q == 3 ? ((const block_q3_Kx8 *)B[k / NT])->d : ((const block_q2_Kx8 *)B[k / NT])->d;
        acc[k] = _mm256_fmadd_ps(in[k], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d)), acc[k]);
        if (Q == 2) {
            const uint16_t *dm = ((const block_q2_Kx8 *)B[k / NT])->dmin;
            acc[k] = _mm256_fnmadd_ps(im[k], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dm)), acc[k]);
        }
    }
}

/* NG interleaved groups g + i gs x NT tokens from t0 */
INL void lk_tile(int Q, float *out, size_t ldo, const uint8_t *W, int nb, const q8_act *x, int g, int gs, int NG,
                 int r0, int r1, int t0, int NT) {
    const size_t bb = lk_bytes(Q);
    __m256 acc[2];
    #pragma GCC unroll 2
    for (int k = 0; k < NG * NT; k++) acc[k] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const void *B[2];
        #pragma GCC unroll 2
        for (int i = 0; i < NG; i++) {
            B[i] = W + ((size_t)(g + i * gs) * nb + p) * bb;
            for (size_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)B[i] + PF_BYTES + o, _MM_HINT_T0);
        }
        lk_block(Q, 1, B, NG, NT, x, (size_t)nb * QK_K, p, t0, acc);
    }
    groups_store(out, ldo, acc, NT, g, gs, NG, r0, r1, t0, NT);
}

/* 8 plain rows' super-block p gathered into the interleaved form G */
INL void lk_gather(int Q, void *G, const uint8_t *W, int nb, const int *rows, int p) {
    for (int j = 0; j < 8; j++) {
        if (Q == 3) {
            const block_q3_K *s = (const block_q3_K *)W + (size_t)rows[j] * nb + p;
            q3_gathered *g = G;
            g->d[j] = s->d;
            ilv_words(g->scales, s->scales, j, 3), ilv_words(g->hmask, s->hmask, j, 8), ilv_words(g->qs, s->qs, j, 16);
        } else {
            const block_q2_K *s = (const block_q2_K *)W + (size_t)rows[j] * nb + p;
            block_q2_Kx8 *g = G;
            g->d[j] = s->d, g->dmin[j] = s->dmin;
            ilv_words(g->scales, s->scales, j, 4), ilv_words(g->qs, s->qs, j, 16);
        }
    }
}

/* plain rows [r0, r1), 8 at a time (the last set filled up with its last
 * row, computed, not written), tokens 2 at a time */
INL void lk_plain(int Q, float *out, size_t ldo, const uint8_t *W, int nb, const q8_act *x, int r0, int r1, int T) {
    for (int r = r0; r < r1; r += 8) {
        int rows[8], keep[8];
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        for (int t0 = 0; t0 < T; t0 += 2) {
            const int nt = T - t0 < 2 ? 1 : 2;
            __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int p = 0; p < nb; p++) {
                union { q3_gathered a; block_q2_Kx8 b; } G;
                const void *B[1] = {&G};
                lk_gather(Q, &G, W, nb, rows, p);
                if (nt == 2) lk_block(Q, 0, B, 1, 2, x, (size_t)nb * QK_K, p, t0, acc);
                else lk_block(Q, 0, B, 1, 1, x, (size_t)nb * QK_K, p, t0, acc);
            }
            lanes_store(out, ldo, acc, keep, t0, nt);
        }
    }
}

/* the groups [r0, r1) touches: one token 2 groups half of them apart, more
 * one group x 2 tokens; then the rows % 8 last rows (plain, at their plain
 * place: repack.h); ldo is the matrix's rows */
INL void lk_ilv(int Q, float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const q8_act *x, int T) {
    const uint8_t *W = Wv;
    const int nb = cols / QK_K, G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;
    int g = r0 / 8;
    if (T == 1 && g1 > g) {
        const int q = (g1 - g) / 2;
        for (int k = 0; k < q; k++) lk_tile(Q, out, ldo, W, nb, x, g + k, q, 2, r0, r1, 0, 1);
        g += 2 * q;
    }
    for (; g < g1; g++)
        for (int t0 = 0; t0 < T; t0 += 2) {
            if (T - t0 >= 2) lk_tile(Q, out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 2);
            else lk_tile(Q, out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 1);
        }
    if (r1 > 8 * G) lk_plain(Q, out, ldo, W, nb, x, r0 > 8 * G ? r0 : 8 * G, r1, T);
}

void mv_q3_k_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    lk_plain(3, out, ldo, W, cols / QK_K, x, r0, r1, T);
}
void mv_q2_k_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    lk_plain(2, out, ldo, W, cols / QK_K, x, r0, r1, T);
}
void mv_q3_kx8_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    lk_ilv(3, out, ldo, W, cols, r0, r1, x, T);
}
void mv_q2_kx8_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    lk_ilv(2, out, ldo, W, cols, r0, r1, x, T);
}
