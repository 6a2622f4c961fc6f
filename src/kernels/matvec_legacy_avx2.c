/*
 * matvec_legacy_avx2.c — the matvec.h kernels with AVX2 for ggml's other
 * blocks of 32 values: q5_0 (w = d (q - 16), q 0..31), q4_1 (w = d q + m,
 * q 0..15) and q5_1 (w = d q + m, q 0..31), plain and with 8 rows
 * interleaved (q5_0x8, q4_1x8, q5_1x8: repack.h).
 *
 * One ROW per vector lane, as matvec_avx2.c's q4_0: chunk k of a block (4
 * values 4k + m and 4 values 16 + 4k + m of each of 8 rows) as two byte
 * vectors lo, hi with the row's values in its lane's 4 bytes; maddubs by
 * the token's 4 matching activation bytes broadcast to all lanes, the two
 * added in int16 (2 x 2 x 31 x 127 per chunk: two chunks fit, so q5's sums
 * go to int32 by madd every two chunks, q4_1's once a block), so isum_j of
 * row j is in lane j, exact. Then per lane and block (dx the activations'
 * scale, ds = dx sum(x): q8_act):
 *   q5_0        acc += dw * (dx isum - 16 ds)      (fmsub, FMA)
 *   q4_1, q5_1  acc += (dx isum) dw, acc += mw ds  (mul, FMA, FMA)
 * The interleaved layouts give a chunk's lo and hi with 6 vector operations
 * (q5_0, q5_1 in repack.h's bit order: an AND for lo; a shift, two ANDs, a
 * shift and an OR for hi) or 3 (q4_1: nibbles); plain rows (the rows % 8 last
 * rows of an interleaved matrix, a borrowed mapping, a k_b / v_b piece whose
 * heads are not whole groups) are gathered 8 at a time: their qs
 * transposed 4 bytes at a time, the fifth bits spread from the rows' qh by a
 * byte shuffle and a compare. Both give the same integers and the same
 * float operations per lane in the same order, so a (row, token)'s bits
 * depend on neither the layout, nor T, nor its place, nor r0/r1.
 * One token: 4 groups of the interleaved layout a quarter of [r0, r1) apart
 * (four weight streams), else one group x up to 4 tokens.
 */
#pragma GCC target("avx2,fma,f16c")
#include <stdint.h>
#include <string.h>
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/repack.h"
#include "kernels/simd_common.h"
#include "kernels/lanes_avx2.h"


/* the three types: HB a fifth bit, MN a min; the field offsets of an
 * interleaved block (repack.h) and of a plain one (ggml_types.h) */
#define IB(HB, MN) (16 + 16 * (MN) + 32 * (HB) + 128) /* interleaved block bytes */
#define I_QH(MN) (16 + 16 * (MN))
#define I_QS(HB, MN) (16 + 16 * (MN) + 32 * (HB))
#define P_QH(MN) (2 + 2 * (MN))
#define P_QS(HB, MN) (2 + 2 * (MN) + 4 * (HB))
#define PB(HB, MN) (P_QS(HB, MN) + 16) /* plain block bytes */


/* chunk k of an interleaved block B as lo / hi byte vectors (repack.h) */
INL void ilv_vals(int HB, int MN, const uint8_t *B, int k, __m256i *lo, __m256i *hi) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(B + I_QS(HB, MN) + 32 * k));
    if (!HB) {
        const __m256i m4 = _mm256_set1_epi8(15);
        *lo = _mm256_and_si256(q, m4), *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        return;
    }
    const __m256i h = _mm256_loadu_si256((const __m256i *)(B + I_QH(MN)));
    *lo = _mm256_and_si256(q, _mm256_set1_epi8(31));
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 5), _mm256_set1_epi8(7)),
                          _mm256_and_si256(sh16(h, 3 - 2 * k), _mm256_set1_epi8(0x18)));
}

/* the int32 sums s32[t] (t < NT) of one group's block: vals(k) gives chunk
 * k's lo / hi, xb token t0's activation block (tokens cols apart) */
#define LANE_SUMS(HB, NT, VALS, xb, cols, s32)                                                         \
    do {                                                                                               \
        const __m256i ones_ = _mm256_set1_epi16(1);                                                    \
        __m256i s16_[4];                                                                               \
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                                          \
            __m256i lo_, hi_;                                                                          \
            VALS(k, &lo_, &hi_);                                                                       \
            _Pragma("GCC unroll 4") for (int t = 0; t < (NT); t++) {                                   \
                __m256i bl_, bh_;                                                                      \
                q4_bcast((xb) + (size_t)t * (cols), k, &bl_, &bh_);                                    \
                const __m256i p_ = _mm256_add_epi16(_mm256_maddubs_epi16(lo_, bl_),                    \
                                                    _mm256_maddubs_epi16(hi_, bh_));                   \
                s16_[t] = (k & ((HB) ? 1 : 3)) ? _mm256_add_epi16(s16_[t], p_) : p_;                   \
                if ((HB) ? (k & 1) : k == 3) {                                                         \
                    const __m256i w_ = _mm256_madd_epi16(s16_[t], ones_);                              \
                    s32[t] = (HB) && k == 3 ? _mm256_add_epi32(s32[t], w_) : w_;                       \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    } while (0)

/* block b's sums s32[t] of tokens t0 + t into acc[t], the rows' half
 * scales (and mins) at d (m) */
INL void lane_acc(int MN, __m256 *acc, const __m256i *s32, const uint16_t *d, const uint16_t *m, const q8_act *x,
                  int nb, int b, int t0, int NT) {
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d));
    __m256 mw = _mm256_setzero_ps();
    if (MN) mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)m));
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        const size_t tb = (size_t)(t0 + t) * nb + b;
        const __m256 s = _mm256_cvtepi32_ps(s32[t]), dx = _mm256_broadcast_ss(x->d + tb);
        const __m256 ds = _mm256_broadcast_ss(x->ds + tb);
        if (!MN) {
            acc[t] = _mm256_fmadd_ps(_mm256_fmsub_ps(s, dx, _mm256_mul_ps(ds, _mm256_set1_ps(16.0f))), dw, acc[t]);
        } else {
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(s, dx), dw, acc[t]);
            acc[t] = _mm256_fmadd_ps(ds, mw, acc[t]);
        }
    }
}

/* NG interleaved groups g + i gs x NT tokens from t0 (NG NT <= 4) */
INL void ilv_tile(int HB, int MN, float *out, size_t ldo, const uint8_t *W, int nb, const q8_act *x, int g, int gs,
                  int NG, int r0, int r1, int t0, int NT) {
    const size_t cols = (size_t)nb * 32, ib = IB(HB, MN);
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int i = 0; i < NG * NT; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)b * 32;
        #pragma GCC unroll 4
        for (int i = 0; i < NG; i++) {
            const uint8_t *B = W + ((size_t)(g + i * gs) * nb + b) * ib;
            _mm_prefetch((const char *)B + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)B + PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)B + PF_BYTES + 128, _MM_HINT_T0);
            if (ib > 192) _mm_prefetch((const char *)B + PF_BYTES + 192, _MM_HINT_T0);
            __m256i s32[4];
#define ILV_VALS(k, lo, hi) ilv_vals(HB, MN, B, k, lo, hi)
            LANE_SUMS(HB, NT, ILV_VALS, xb, cols, s32);
#undef ILV_VALS
            lane_acc(MN, acc + i * NT, s32, (const uint16_t *)B, (const uint16_t *)(B + 16), x, nb, b, t0, NT);
        }
    }
    groups_store(out, ldo, acc, NT, g, gs, NG, r0, r1, t0, NT);
}

/* ---------------------------------------------------------------- plain rows */

/* the fifth bits of chunk k (h = 0: values 4k + m, 1: 16 + 4k + m) of the 8
 * rows whose qh are the lanes of qh, as 16 in their lane's bytes m: byte
 * 2h + k / 2 of each lane copied to its 4 bytes, bit m + 4 (k % 2) tested */
INL __m256i bit5(__m256i qh, int k, int h) {
    const char c = (char)(2 * h + k / 2);
    const __m256i ctl = _mm256_setr_epi8(c, c, c, c, c + 4, c + 4, c + 4, c + 4, c + 8, c + 8, c + 8, c + 8, c + 12,
                                         c + 12, c + 12, c + 12, c, c, c, c, c + 4, c + 4, c + 4, c + 4, c + 8, c + 8,
                                         c + 8, c + 8, c + 12, c + 12, c + 12, c + 12);
    const int s = 4 * (k % 2);
    const __m256i bit = _mm256_set1_epi32((int)(1u << s | 2u << (8 + s) | 4u << (16 + s) | 8u << (24 + s)));
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(qh, ctl), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(16));
}

/* 8 plain rows (block pointers p[j] of row j's row start) x NT tokens from t0 */
INL void plain_tile(int HB, int MN, float *out, size_t ldo, const uint8_t *W, int nb, const q8_act *x, const int *rows,
                    const int *keep, int t0, int NT) {
    const size_t cols = (size_t)nb * 32, pb = PB(HB, MN);
    const uint8_t *p[8];
    __m256 acc[4];
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) p[j] = W + (size_t)rows[j] * nb * pb;
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i y[4], q[4], qh = _mm256_setzero_si256();
        uint16_t d[8], m[8];
        int32_t h[8];
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const uint8_t *blk = p[j] + (size_t)b * pb;
            _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
            memcpy(&d[j], blk, 2);
            if (MN) memcpy(&m[j], blk + 2, 2);
            if (HB) memcpy(&h[j], blk + P_QH(MN), 4);
        }
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            y[j] = _mm256_loadu2_m128i((const __m128i *)(p[j + 4] + (size_t)b * pb + P_QS(HB, MN)),
                                       (const __m128i *)(p[j] + (size_t)b * pb + P_QS(HB, MN)));
        const __m256i t0_ = _mm256_unpacklo_epi32(y[0], y[1]), t1_ = _mm256_unpackhi_epi32(y[0], y[1]),
                      t2_ = _mm256_unpacklo_epi32(y[2], y[3]), t3_ = _mm256_unpackhi_epi32(y[2], y[3]);
        q[0] = _mm256_unpacklo_epi64(t0_, t2_), q[1] = _mm256_unpackhi_epi64(t0_, t2_);
        q[2] = _mm256_unpacklo_epi64(t1_, t3_), q[3] = _mm256_unpackhi_epi64(t1_, t3_);
        if (HB) qh = _mm256_loadu_si256((const __m256i *)h);
        const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)b * 32;
        __m256i s32[4];
#define PLAIN_VALS(k, lo, hi)                                                                                \
    do {                                                                                                     \
        const __m256i m4_ = _mm256_set1_epi8(15);                                                            \
        *(lo) = _mm256_and_si256(q[k], m4_), *(hi) = _mm256_and_si256(_mm256_srli_epi16(q[k], 4), m4_);      \
        if (HB) *(lo) = _mm256_or_si256(*(lo), bit5(qh, k, 0)), *(hi) = _mm256_or_si256(*(hi), bit5(qh, k, 1)); \
    } while (0)
        LANE_SUMS(HB, NT, PLAIN_VALS, xb, cols, s32);
#undef PLAIN_VALS
        lane_acc(MN, acc, s32, d, m, x, nb, b, t0, NT);
    }
    lanes_store(out, ldo, acc, keep, t0, NT);
}

/* rows [r0, r1) of a plain matrix: one token, 8 rows an eighth of the range
 * apart (eight weight streams); more, or what is left, 8 adjacent rows (the
 * last set filled up with its last row, computed, not written), tokens 4 at
 * a time */
INL void plain_mv(int HB, int MN, float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const q8_act *x,
                  int T) {
    const uint8_t *W = Wv;
    const int nb = cols / 32;
    int r = r0, rows[8], keep[8];
    if (T == 1) {
        const int q = (r1 - r0) / 8;
        for (int k = 0; k < q; k++) {
            for (int j = 0; j < 8; j++) rows[j] = keep[j] = r0 + k + j * q;
            plain_tile(HB, MN, out, ldo, W, nb, x, rows, keep, 0, 1);
        }
        r = r0 + 8 * q;
    }
    for (; r < r1; r += 8) {
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        for (int t0 = 0; t0 < T; t0 += 4) switch (T - t0 < 4 ? T - t0 : 4) {
            case 4: plain_tile(HB, MN, out, ldo, W, nb, x, rows, keep, t0, 4); break;
            case 3: plain_tile(HB, MN, out, ldo, W, nb, x, rows, keep, t0, 3); break;
            case 2: plain_tile(HB, MN, out, ldo, W, nb, x, rows, keep, t0, 2); break;
            default: plain_tile(HB, MN, out, ldo, W, nb, x, rows, keep, t0, 1); break;
            }
    }
}

/* the groups of an interleaved matrix that [r0, r1) touches, then its rows %
 * 8 last rows (plain, at their plain place: repack.h); ldo is its rows */
INL void ilv_mv(int HB, int MN, float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const q8_act *x,
                int T) {
    const uint8_t *W = Wv;
    const int nb = cols / 32, G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;
    int g = r0 / 8;
    if (T == 1 && g1 > g) {
        const int q = (g1 - g) / 4;
        for (int k = 0; k < q; k++) ilv_tile(HB, MN, out, ldo, W, nb, x, g + k, q, 4, r0, r1, 0, 1);
        g += 4 * q;
    }
    for (; g < g1; g++)
        for (int t0 = 0; t0 < T; t0 += 4) switch (T - t0 < 4 ? T - t0 : 4) {
            case 4: ilv_tile(HB, MN, out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 4); break;
            case 3: ilv_tile(HB, MN, out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 3); break;
            case 2: ilv_tile(HB, MN, out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 2); break;
            default: ilv_tile(HB, MN, out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 1); break;
            }
    if (r1 > 8 * G) plain_mv(HB, MN, out, ldo, W, cols, r0 > 8 * G ? r0 : 8 * G, r1, x, T);
}

#define LEGACY_MV(name, HB, MN, DRIVER)                                                                  \
    void name(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) { \
        DRIVER(HB, MN, out, ldo, W, cols, r0, r1, x, T);                                              \
    }
LEGACY_MV(mv_q5_0_avx2, 1, 0, plain_mv)
LEGACY_MV(mv_q4_1_avx2, 0, 1, plain_mv)
LEGACY_MV(mv_q5_1_avx2, 1, 1, plain_mv)
LEGACY_MV(mv_q5_0x8_avx2, 1, 0, ilv_mv)
LEGACY_MV(mv_q4_1x8_avx2, 0, 1, ilv_mv)
LEGACY_MV(mv_q5_1x8_avx2, 1, 1, ilv_mv)
