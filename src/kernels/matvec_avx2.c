/*
 * matvec_avx2.c — the matvec.h kernels with AVX2, FMA and F16C, and the
 * activation quantiser q8_fill_avx2.
 *
 * f32 / bf16: two 8-wide accumulators per (row, token), a scalar tail; one
 * token takes four rows at once (the four weight streams of TILES below).
 *
 * The quantised types multiply 32 weights by 32 int8 activations (one q8_act
 * block, scale dx) with maddubs (unsigned bytes times signed bytes, pairs
 * summed to int16), then madd to int32 and float fma:
 *   q8    w signed: |w| times x carrying w's sign (|x| times w carrying x's
 *         for one token; the same integer), no saturation for |w|, |x| <= 127;
 *         acc += float(isum) * (dw * dx).
 *   q4_0  one ROW per lane instead (both layouts: q4_0x8, interleaved at
 *         load by repack.h, and plain rows gathered 8 at a time, so they
 *         give the same bits): 4 bytes of each of 8 rows in a vector,
 *         maddubs by 4 activation bytes broadcast, isum_j of row j in lane j,
 *         acc_j += dw_j * (dx * isum_j - 8 dx sum(x)): the conversion, the
 *         scales and the FMA once for 8 blocks (q4_lanes below).
 *   q4_k  w = d sc q - dmin m per 32 (q 0..15), one ROW per lane as q4_0
 *         (q4_kx8 and gathered plain rows, the same bits): madd by the rows'
 *         int16 scales sc, in += float(isum) * dx over the 8 sub-blocks of a
 *         super-block, then acc += d * in - dmin * sum_j m_j (dx_j sum_j x)
 *         (q8_act.ds): per super-block the scales and the mins term first,
 *         then sub-block by sub-block, each activation broadcast serving
 *         all the groups of the tile (q4k_super below).
 *   q6_k  w = d sc (q - 32) per 16 (q 0..63), one ROW per lane as q4_k
 *         (q6_kx8, with repack.h's bit order, and gathered plain rows: the
 *         same bits): maddubs by 4 activation bytes broadcast, 4 summed in
 *         int16, minus 32 x the pair sums (q8_act.c16), madd by the rows'
 *         int16 scales, in += float(isum) * dx per 32, acc += d * in
 *         (q6_lanes below); one token: 4 groups of 8 rows share each
 *         broadcast (q6_kx8_tile1x4).
 *   q5_k  w = d sc q - dmin m per 32 (q 0..31), one ROW per lane as q4_k
 *         (q5_kx8 with repack.h's bit order: a value whole in a byte's
 *         low 5 bits, its pair from the 3 above and 2 bits of qh; and
 *         plain rows gathered by dword transposes with ggml's bits: the
 *         same integers, the same bits), maddubs by 4 activation bytes
 *         broadcast, madd by the rows' scales, mins by q8_act.ds as q4_k
 *         (q5k_lanes below); 1 token: 3 groups, else 1 group x <= 3 tokens.
 * IEEE halves (dw, d, dmin) come from a 256 KB table: a broadcast load where
 * F16C takes three vector operations per block.
 *
 * Tiles (TILES below): NR rows x NT tokens, each (row, token) pair with its
 * own 8-lane accumulator updated block by block in one fixed order and summed
 * by hsum256 at the end, whatever the tile; so a token's bits depend on
 * neither T, nor its place among the T, nor r0/r1 (matvec.h's promise). One
 * token: 4 rows a quarter of [r0, r1) apart (four long weight streams: DRAM
 * reads ~1.6x faster here than one stream, while four adjacent short rows
 * read 2x slower); 2 to 4 tokens: 2 such rows x T; more: 1 row x 8 tokens.
 * Q4_0's lanes: 8 rows (or 4 groups of 8) x 1 token, else 8 rows x 4 tokens
 * (Q4_K: 2 tokens 2 groups of 8 at once; Q6_K as Q4_0).
 *
 * fp8: codes to float32 bits (value * 2^-120, exact, subnormals too) by
 * 16-bit shifts and masks on the codes as loaded, no byte shuffle
 * (e4m3x16); x put in the codes' order and scaled by 2^64 once per call, so
 * each product is one exact FMA, no multiply per weight, and the block
 * scale d applied once per 64 products, 2^56 once per row at the end
 * (fp8_block below); one token by an asm unit of 12 vector operations per
 * 32 codes (fp8_unit).
 */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include "kernels/dtype.h"
#include "kernels/fp8_block.h"
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/repack.h"
#include "kernels/simd_common.h"
#include "kernels/lanes_avx2.h"

INL __m256 bf16_load(const uint16_t *p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

/* the float weight kinds of row8 / rows8x4 (a constant in each caller) */
enum { K_F32, K_BF16, K_F16 };

/* 8 weights of kind K at element i of row w, as float32 */
INL __m256 wload(int K, const void *w, int i) {
    if (K == K_BF16) return bf16_load((const uint16_t *)w + i);
    if (K == K_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    return _mm256_loadu_ps((const float *)w + i);
}

INL float wscalar(int K, const void *w, int i) {
    if (K == K_BF16) return bf16_to_f32(((const uint16_t *)w)[i]);
    if (K == K_F16) return _cvtsh_ss(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

/* one row against NT tokens; K the weight kind */
INL void row8(const void *wp, int K, const float *x, int cols, size_t t0, int NT, float *res) {
    x += t0 * cols;
    const size_t es = K == K_F32 ? 4 : 2;
    __m256 a0[4], a1[4];
    float tail[4] = {0, 0, 0, 0};
    #pragma GCC unroll 8
    for (int t = 0; t < NT; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        /* software prefetch 1 KB ahead (+28% f32 decode with AVX-512, the same idea here) */
        _mm_prefetch((const char *)wp + (size_t)i * es + 1024, _MM_HINT_T0);
        __m256 w0 = wload(K, wp, i), w1 = wload(K, wp, i + 8);
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[t]);
            a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + (size_t)t * cols + i + 8), a1[t]);
        }
    }
    if (i + 8 <= cols) {
        __m256 w0 = wload(K, wp, i);
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[t]);
        i += 8;
    }
    for (; i < cols; i++) {
        float wv = wscalar(K, wp, i);
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) tail[t] += wv * x[(size_t)t * cols + i];
    }
    #pragma GCC unroll 8
    for (int t = 0; t < NT; t++) res[t] = hsum256(_mm256_add_ps(a0[t], a1[t])) + tail[t];
}

/* four rows r + i rs against one token, each in row8's order (so the bits
 * are row8's): the four weight streams of TILES below; each stream
 * prefetched pf bytes ahead (mv_float) */
INL void rows8x4(const void *wp, int K, const float *x, int cols, size_t r, size_t rs, float *out, size_t pf) {
    const size_t es = K == K_F32 ? 4 : 2;
    const char *w[4];
    __m256 a0[4], a1[4];
    float tail[4] = {0, 0, 0, 0};
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        w[k] = (const char *)wp + (r + k * rs) * cols * es;
        a0[k] = a1[k] = _mm256_setzero_ps();
    }
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            _mm_prefetch(w[k] + (size_t)i * es + pf, _MM_HINT_T0);
            a0[k] = _mm256_fmadd_ps(wload(K, w[k], i), x0, a0[k]);
            a1[k] = _mm256_fmadd_ps(wload(K, w[k], i + 8), x1, a1[k]);
        }
    }
    if (i + 8 <= cols) {
        const __m256 x0 = _mm256_loadu_ps(x + i);
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) a0[k] = _mm256_fmadd_ps(wload(K, w[k], i), x0, a0[k]);
        i += 8;
    }
    for (; i < cols; i++)
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) tail[k] += wscalar(K, w[k], i) * x[i];
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) out[r + k * rs] = hsum256(_mm256_add_ps(a0[k], a1[k])) + tail[k];
}

/* NR rows r + k rs (NR <= 2) against NT tokens t0 .. t0 + NT - 1 (NT <= 3),
 * each pair in row8's order (so the bits are row8's): per 16 columns each
 * row's two weight vectors are loaded (and widened) once for the NT tokens
 * and each token's x once for the NR rows: 2 NR + 2 NT loads for 2 NR NT
 * FMAs, where row8 takes 2 + 2 NT for 2 NT and is bound by its loads (issue
 * 15: f16 / bf16 at T = 4..8 ran at ~44 GFLOP/s in L2 on Zen 3, against ~56
 * for gemm.h with its packing). The first 8 columns of the 16 for every pair,
 * then the second 8 (a0 then a1: 12 accumulators, 2 weights and one x fit
 * the 16 registers). */
INL void rows_tile(const void *wp, int K, const float *x, int cols, size_t r, size_t rs, int NR, size_t t0, int NT,
                   float *out, size_t ldo, size_t pf) {
    const size_t es = K == K_F32 ? 4 : 2;
    const char *w[2];
    __m256 a0[2][3], a1[2][3];
    float tail[2][3] = {{0}};
    x += t0 * cols;
    #pragma GCC unroll 2
    for (int k = 0; k < NR; k++) {
        w[k] = (const char *)wp + (r + k * rs) * cols * es;
        #pragma GCC unroll 3
        for (int t = 0; t < NT; t++) a0[k][t] = a1[k][t] = _mm256_setzero_ps();
    }
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        __m256 wv[2];
        #pragma GCC unroll 2
        for (int k = 0; k < NR; k++) {
            _mm_prefetch(w[k] + (size_t)i * es + pf, _MM_HINT_T0);
            wv[k] = wload(K, w[k], i);
        }
        #pragma GCC unroll 3
        for (int t = 0; t < NT; t++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)t * cols + i);
            __asm__("" : "+x"(xv)); /* one load for the NR rows (gcc folded it into each FMA: load-bound) */
            #pragma GCC unroll 2
            for (int k = 0; k < NR; k++) a0[k][t] = _mm256_fmadd_ps(wv[k], xv, a0[k][t]);
        }
        #pragma GCC unroll 2
        for (int k = 0; k < NR; k++) wv[k] = wload(K, w[k], i + 8);
        #pragma GCC unroll 3
        for (int t = 0; t < NT; t++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)t * cols + i + 8);
            __asm__("" : "+x"(xv)); /* one load for the NR rows (gcc folded it into each FMA: load-bound) */
            #pragma GCC unroll 2
            for (int k = 0; k < NR; k++) a1[k][t] = _mm256_fmadd_ps(wv[k], xv, a1[k][t]);
        }
    }
    if (i + 8 <= cols) {
        #pragma GCC unroll 2
        for (int k = 0; k < NR; k++) {
            const __m256 wv = wload(K, w[k], i);
            #pragma GCC unroll 3
            for (int t = 0; t < NT; t++) a0[k][t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[k][t]);
        }
        i += 8;
    }
    for (; i < cols; i++)
        #pragma GCC unroll 2
        for (int k = 0; k < NR; k++) {
            const float wv = wscalar(K, w[k], i);
            #pragma GCC unroll 3
            for (int t = 0; t < NT; t++) tail[k][t] += wv * x[(size_t)t * cols + i];
        }
    #pragma GCC unroll 2
    for (int k = 0; k < NR; k++)
        #pragma GCC unroll 3
        for (int t = 0; t < NT; t++)
            out[(t0 + t) * ldo + r + k * rs] = hsum256(_mm256_add_ps(a0[k][t], a1[k][t])) + tail[k][t];
}

/* one token: four rows a quarter of [r0, r1) apart at a time (rows8x4);
 * more: tokens in groups of at most 3 (7 as 3 + 2 + 2), each group over rows
 * in pairs half of [r0, r1) apart (rows_tile; the last odd row alone). pf:
 * how far ahead each weight stream is prefetched, in bytes. 512 on AVX2
 * machines: f32 on Zen 3, 2 threads, a 128896 x 1024 matrix from DRAM
 * (issue 15), 4 streams a thread, rounds of each variant interleaved, three
 * runs: 1 KB ahead 21.3-26.3 GB/s, 512 B 23.8-29.1, 256-384 B about the
 * same, none 22.1-28.9, 2 KB 14.1-17.5 (bf16 / f16 were 512 B already: 256
 * of their elements). 1 KB for f32 on AVX-512 machines, as measured there
 * (the +28% of row8's comment) */
INL void mv_float(float *out, size_t ldo, const void *W, int K, int cols, int r0, int r1, const float *x, int T,
                  size_t pf) {
    if (T == 1) {
        const int q = (r1 - r0) / 4;
        for (int k = 0; k < q; k++) rows8x4(W, K, x, cols, (size_t)(r0 + k), (size_t)q, out, pf);
        const size_t es = K == K_F32 ? 4 : 2;
        for (int r = r0 + 4 * q; r < r1; r++) ROW_T4(row8, (const char *)W + (size_t)r * cols * es, K, x, cols)
        return;
    }
    const int h = (r1 - r0) / 2;
    for (int g = 0, ng = (T + 2) / 3, t0 = 0; g < ng; g++) {
        const int nt = T / ng + (g < T % ng);
        for (int k = 0; k < h; k++) {
            const size_t r = (size_t)(r0 + k);
            if (nt == 3) rows_tile(W, K, x, cols, r, (size_t)h, 2, (size_t)t0, 3, out, ldo, pf);
            else if (nt == 2) rows_tile(W, K, x, cols, r, (size_t)h, 2, (size_t)t0, 2, out, ldo, pf);
            else rows_tile(W, K, x, cols, r, (size_t)h, 2, (size_t)t0, 1, out, ldo, pf);
        }
        if (r0 + 2 * h < r1) {
            const size_t r = (size_t)(r1 - 1);
            if (nt == 3) rows_tile(W, K, x, cols, r, 0, 1, (size_t)t0, 3, out, ldo, pf);
            else if (nt == 2) rows_tile(W, K, x, cols, r, 0, 1, (size_t)t0, 2, out, ldo, pf);
            else rows_tile(W, K, x, cols, r, 0, 1, (size_t)t0, 1, out, ldo, pf);
        }
        t0 += nt;
    }
}

void mv_f32_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_float(out, ldo, W, K_F32, cols, r0, r1, x, T, 512);
}

void mv_f32_avx512(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_float(out, ldo, W, K_F32, cols, r0, r1, x, T, 1024);
}

void mv_bf16_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_float(out, ldo, W, K_BF16, cols, r0, r1, x, T, 512);
}

/* f16 (issue 15: an F16 GGUF stays F16): F16C's vcvtph2ps, as bf16 otherwise */
void mv_f16_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    mv_float(out, ldo, W, K_F16, cols, r0, r1, x, T, 512);
}

/* ---------------------------------------------------------------- tiles */

/* TILES(TILE, args...): in a mv_* function (out, ldo, r0, r1, T in scope),
 * TILE(args..., r, rs, NR, t0, NT): rows r, r + rs, ... (NR of them) times
 * tokens t0 .. t0 + NT - 1, NR and NT constants in each call so the tile
 * unrolls. The rows of a tile are (r1 - r0) / NR apart; leftover rows go one
 * by one. One token: 4 rows x 1; 2 to 4 tokens: 2 rows x T; more: 1 row x 8
 * tokens at a time (a row's blocks unpacked once for 8; measured in L2 on
 * Zen 3 at T = 8: 12-19% over 2 x 4 for q4_0 / q4_k / q6_k, even for q8),
 * the T shared out evenly over ceil(T / 8) groups (issue 15: 9 tokens as
 * 5 + 4, not 8 + 1, whose one token waits on its FMA chain).
 * Token groups are outside rows: a group's outputs stay a few cache lines
 * (T rows of out, ldo apart, can alias to a few L1 sets). */
#define TILE_NT(TILE, NR, nt, r, rs, t0, ...)                                    \
    do {                                                                         \
        switch (nt) {                                                            \
        case 8: TILE(__VA_ARGS__, r, rs, NR, t0, 8); break;                      \
        case 7: TILE(__VA_ARGS__, r, rs, NR, t0, 7); break;                      \
        case 6: TILE(__VA_ARGS__, r, rs, NR, t0, 6); break;                      \
        case 5: TILE(__VA_ARGS__, r, rs, NR, t0, 5); break;                      \
        case 4: TILE(__VA_ARGS__, r, rs, NR, t0, 4); break;                      \
        case 3: TILE(__VA_ARGS__, r, rs, NR, t0, 3); break;                      \
        case 2: TILE(__VA_ARGS__, r, rs, NR, t0, 2); break;                      \
        default: TILE(__VA_ARGS__, r, rs, NR, t0, 1); break;                     \
        }                                                                        \
    } while (0)
#define TILES(TILE, ...)                                                         \
    do {                                                                         \
        const int nr_ = T == 1 ? 4 : T <= 4 ? 2 : 1, q_ = (r1 - r0) / nr_;       \
        if (T == 1)                                                              \
            for (int k = 0; k < q_; k++) TILE(__VA_ARGS__, r0 + k, q_, 4, 0, 1); \
        else if (T <= 4)                                                         \
            for (int k = 0; k < q_; k++) {                                       \
                if (T == 4) TILE(__VA_ARGS__, r0 + k, q_, 2, 0, 4);              \
                else if (T == 3) TILE(__VA_ARGS__, r0 + k, q_, 2, 0, 3);         \
                else TILE(__VA_ARGS__, r0 + k, q_, 2, 0, 2);                     \
            }                                                                    \
        for (int g_ = 0, ng_ = (T + 7) / 8, t0 = 0; g_ < ng_; g_++) {           \
            const int nt = T / ng_ + (g_ < T % ng_);                             \
            for (int r = r0 + (T <= 4 ? nr_ * q_ : 0); r < r1; r++)              \
                TILE_NT(TILE, 1, nt, r, 0, t0, __VA_ARGS__);                     \
            t0 += nt;                                                            \
        }                                                                        \
    } while (0)

#define TILE_ACC(a)                                                               \
    __m256 a[4][8];                                                               \
    _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++)                          \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a[i][t] = _mm256_setzero_ps();

/* the results of a tile: pair (i, t) is row r + i rs, token t0 + t */
#define TILE_STORE(acc)                                                           \
    _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++)                          \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)                      \
            out[(size_t)(t0 + t) * ldo + r + i * rs] = hsum256(acc[i][t]);


/* IEEE half to float32 by a table (a broadcast load, where F16C takes three
 * vector operations a block): filled once, on first use */
static float f16_tab[1 << 16];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;
static void f16_fill(void) {
    for (int h = 0; h < 1 << 16; h++) f16_tab[h] = _cvtsh_ss((unsigned short)h);
}
#define F16_READY() pthread_once(&f16_once, f16_fill)
#define F16_BCAST(h) _mm256_broadcast_ss(f16_tab + (h))

/* ---------------------------------------------------------------- q8_0 */

INL void q8_tile(float *out, size_t ldo, const block_q8_0 *W, int nb, const q8_act *x, int r, int rs, int NR, int t0,
                 int NT) {
    const size_t cols = (size_t)nb * QK8_0;
    const __m256i ones = _mm256_set1_epi16(1);
    TILE_ACC(acc)
    for (int p = 0; p < nb; p++) {
        #pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const block_q8_0 *b = W + (size_t)(r + i * rs) * nb + p;
            _mm_prefetch((const char *)b + PF_BYTES, _MM_HINT_T0);
            const __m256i wv = _mm256_loadu_si256((const __m256i *)b->qs), aw = _mm256_sign_epi8(wv, wv);
            const __m256 dw = F16_BCAST(b->d);
            #pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const size_t tt = (size_t)(t0 + t);
                __m256i xv = _mm256_loadu_si256((const __m256i *)(x->qs + tt * cols + (size_t)p * QK8_0));
                /* |w| times x with w's sign, or |x| times w with x's sign: the same integer */
                __m256i s16 = NT > 1 ? _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv))
                                     : _mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(wv, xv));
                __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones));
                acc[i][t] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, _mm256_broadcast_ss(x->d + tt * nb + p)), acc[i][t]);
            }
        }
    }
    TILE_STORE(acc)
}

void mv_q8_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q8_0 *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK8_0;
    F16_READY();
    TILES(q8_tile, out, ldo, W, nb, x);
}

/* ---------------------------------------------------------------- q4_0 */

/* Q4_0 with one row per vector lane (both layouts: the interleaved q4_0x8
 * of repack.h, and plain rows gathered 8 at a time), so both give the same
 * bits for a (row, token). q[k] (k = 0..3) holds 4 bytes of each of 8 rows:
 * bytes 4k..4k+3 of its block's qs, i.e. values 4k..4k+3 (low nibbles) and
 * 16+4k.. (high); maddubs by the token's 4 matching int8 broadcast to all
 * lanes, summed in int16 (8 products of at most 15 * 127 a lane: exact),
 * madd to the row's int32 lane: isum = sum q x. Then per lane
 * acc += dw * (dx * isum - 8 ds) (ds = dx sum(x): the -8 of w = q - 8), one
 * fmsub and one FMA for 8 blocks. Lanes never mix, so a (row, token)'s bits
 * depend on neither T, nor its place, nor r0/r1, nor the other rows. */
/* chunk k of a lanes block: s16[t] (+)= maddubs of its low and high nibbles
 * by token t's 4 matching activation bytes (xb: token t0's block) */
INL void q4_chunk(__m256i *s16, __m256i qk, const int8_t *xb, size_t cols, int k, int NT) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i lo = _mm256_and_si256(qk, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qk, 4), m4);
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        int32_t xl, xh;
        memcpy(&xl, xb + (size_t)t * cols + 4 * k, 4), memcpy(&xh, xb + (size_t)t * cols + 4 * k + 16, 4);
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl)),
                                           _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh)));
        s16[t] = k ? _mm256_add_epi16(s16[t], p) : p;
    }
}

/* block b's int16 sums s16[t] of tokens t0 + t into acc[t]: acc += dw * (dx
 * * isum - 8 ds), one fmsub and one FMA for the 8 rows */
INL void q4_acc(__m256 *acc, const __m256i *s16, __m256 dw, const q8_act *x, int nb, int b, int t0, int NT) {
    const __m256i ones = _mm256_set1_epi16(1);
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        const size_t tb = (size_t)(t0 + t) * nb + b;
        const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16[t], ones));
        const __m256 ds8 = _mm256_mul_ps(_mm256_broadcast_ss(x->ds + tb), _mm256_set1_ps(8.0f));
        acc[t] = _mm256_fmadd_ps(_mm256_fmsub_ps(s, _mm256_broadcast_ss(x->d + tb), ds8), dw, acc[t]);
    }
}

INL void q4_lanes(__m256 *acc, const __m256i q[4], __m256 dw, const q8_act *x, int nb, int b, int t0, int NT) {
    const size_t cols = (size_t)nb * QK4_0;
    __m256i s16[4];
    /* (integer sums: the unrolling changes no bits; 1 token fully, more 2 chunks at a time, measured) */
    if (NT == 1) {
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) q4_chunk(s16, q[k], x->qs + (size_t)t0 * cols + (size_t)b * QK4_0, cols, k, 1);
    } else {
        #pragma GCC unroll 2
        for (int k = 0; k < 4; k++) q4_chunk(s16, q[k], x->qs + (size_t)t0 * cols + (size_t)b * QK4_0, cols, k, NT);
    }
    q4_acc(acc, s16, dw, x, nb, b, t0, NT);
}

/* plain rows rows[0..7] (each < rows of W; repeated ones are computed twice)
 * times NT tokens: per block, the 8 rows' 16 qs bytes transposed 4 bytes at
 * a time into q[0..3] (rows 0-3 in the low halves, 4-7 in the high), their
 * 8 scales gathered, then q4_lanes */
INL void q4_0_tile(float *out, size_t ldo, const block_q4_0 *W, int nb, const q8_act *x, const int *rows,
                   const int *keep, int t0, int NT) {
    const block_q4_0 *p[8];
    __m256 acc[4];
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) p[j] = W + (size_t)rows[j] * nb;
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i y[4], q[4];
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            _mm_prefetch((const char *)(p[j] + b) + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(p[j + 4] + b) + PF_BYTES, _MM_HINT_T0);
            y[j] = _mm256_loadu2_m128i((const __m128i *)p[j + 4][b].qs, (const __m128i *)p[j][b].qs);
        }
        const __m256i t0_ = _mm256_unpacklo_epi32(y[0], y[1]), t1_ = _mm256_unpackhi_epi32(y[0], y[1]),
                      t2_ = _mm256_unpacklo_epi32(y[2], y[3]), t3_ = _mm256_unpackhi_epi32(y[2], y[3]);
        q[0] = _mm256_unpacklo_epi64(t0_, t2_), q[1] = _mm256_unpackhi_epi64(t0_, t2_);
        q[2] = _mm256_unpacklo_epi64(t1_, t3_), q[3] = _mm256_unpackhi_epi64(t1_, t3_);
        const __m128i h = _mm_setr_epi16((short)p[0][b].d, (short)p[1][b].d, (short)p[2][b].d, (short)p[3][b].d,
                                         (short)p[4][b].d, (short)p[5][b].d, (short)p[6][b].d, (short)p[7][b].d);
        q4_lanes(acc, q, _mm256_cvtph_ps(h), x, nb, b, t0, NT);
    }
    lanes_store(out, ldo, acc, keep, t0, NT);
}

/* q4_0_tile over tokens 4 at a time */
INL void q4_0_rows(float *out, size_t ldo, const block_q4_0 *W, int nb, const q8_act *x, const int *rows,
                   const int *keep, int T) {
    for (int t0 = 0; t0 < T; t0 += 4) switch (T - t0 < 4 ? T - t0 : 4) {
        case 4: q4_0_tile(out, ldo, W, nb, x, rows, keep, t0, 4); break;
        case 3: q4_0_tile(out, ldo, W, nb, x, rows, keep, t0, 3); break;
        case 2: q4_0_tile(out, ldo, W, nb, x, rows, keep, t0, 2); break;
        default: q4_0_tile(out, ldo, W, nb, x, rows, keep, t0, 1); break;
        }
}

/* one token: 8 rows an eighth of [r0, r1) apart (eight long weight streams);
 * more, or what is left: 8 adjacent rows, the last group filled up with
 * its last row (computed, not written) */
void mv_q4_0_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q4_0 *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK4_0;
    int r = r0, rows[8], keep[8];
    if (T == 1) {
        const int q = (r1 - r0) / 8;
        for (int k = 0; k < q; k++) {
            for (int j = 0; j < 8; j++) rows[j] = keep[j] = r0 + k + j * q;
            q4_0_rows(out, ldo, W, nb, x, rows, keep, 1);
        }
        r = r0 + 8 * q;
    }
    for (; r < r1; r += 8) {
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        q4_0_rows(out, ldo, W, nb, x, rows, keep, T);
    }
}

/* ---------------------------------------------------------------- q4_0x8 */

/* block b of the 4 groups g + i gs (B[i]), each asked for PF_BYTES ahead */
INL void q4x8_blocks4(const block_q4_0x8 **B, const block_q4_0x8 *W, int nb, int g, int gs, int b) {
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        B[i] = W + (size_t)(g + i * gs) * nb + b;
        _mm_prefetch((const char *)B[i] + PF_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)B[i] + PF_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)B[i] + PF_BYTES + 128, _MM_HINT_T0);
    }
}

/* The interleaved layout: lane j of group g = row 8g + j; rows outside
 * [r0, r1) computed, not written. One token and 4 groups g + i gs (decode's
 * case), the loops turned: chunk k's two activation broadcasts serve the 4
 * groups before the next chunk's are made, so the 4 int16 sums, the 4 accumulators, the 2
 * broadcasts and the mask fit the 16 registers (the per-group order kept 8
 * broadcasts live and spilled accumulators and broadcasts to the stack
 * around every block). The same integer sums and the same float operations
 * per lane as q4_lanes: the same bits. */
INL void q4_0x8_tile1x4(float *out, size_t ldo, const block_q4_0x8 *W, int nb, const q8_act *x, int g, int gs,
                        int r0, int r1) {
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const block_q4_0x8 *B[4];
        __m256i s16[4];
        q4x8_blocks4(B, W, nb, g, gs, b);
        const int8_t *xb = x->qs + (size_t)b * QK4_0;
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m256i bl, bh;
            q4_bcast(xb, k, &bl, &bh);
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                const __m256i qk = _mm256_loadu_si256((const __m256i *)(B[i]->qs + 32 * k));
                const __m256i lo = _mm256_and_si256(qk, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qk, 4), m4);
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bl), _mm256_maddubs_epi16(hi, bh));
                s16[i] = k ? _mm256_add_epi16(s16[i], p) : p;
            }
            /* keeps gcc from hoisting the next chunks' loads and products above this point (it did, and spilled them) */
            __asm__ volatile("" : "+x"(s16[0]), "+x"(s16[1]), "+x"(s16[2]), "+x"(s16[3]) : : "memory");
        }
        const __m256 dx = _mm256_broadcast_ss(x->d + b);
        const __m256 ds8 = _mm256_mul_ps(_mm256_broadcast_ss(x->ds + b), _mm256_set1_ps(8.0f));
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16[i], ones));
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[i]->d));
            acc[i] = _mm256_fmadd_ps(_mm256_fmsub_ps(s, dx, ds8), dw, acc[i]);
        }
    }
    groups_store(out, ldo, acc, 1, g, gs, 4, r0, r1, 0, 1);
}

/* one group and NT (1..4) tokens (prefill, a few sequences, MTP's
 * verification, a last odd token), turned the same way: chunk k loaded, split into its
 * nibbles and multiplied by each token's two broadcasts before the next
 * chunk (the 4 chunks loaded up front with 4 tokens' sums and accumulators
 * spilled); the same bits as q4_lanes */
INL void q4_0x8_tile1g(float *out, size_t ldo, const block_q4_0x8 *W, int nb, const q8_act *x, int g, int r0, int r1,
                       int t0, int NT) {
    const size_t cols = (size_t)nb * QK4_0;
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const block_q4_0x8 *B = W + (size_t)g * nb + b;
        _mm_prefetch((const char *)B + PF_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)B + PF_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)B + PF_BYTES + 128, _MM_HINT_T0);
        const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)b * QK4_0;
        __m256i s16[4];
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            q4_chunk(s16, _mm256_loadu_si256((const __m256i *)(B->qs + 32 * k)), xb, cols, k, NT);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) __asm__ volatile("" : "+x"(s16[t]) : : "memory"); /* as in q4_0x8_tile1x4 */
        }
        q4_acc(acc, s16, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B->d)), x, nb, b, t0, NT);
    }
    groups_store(out, ldo, acc, 4, g, 0, 1, r0, r1, t0, NT);
}

/* a tile function's calls for tiles of up to 4 or 8 tokens, NT a constant in each (T_CASES8 only where the tile takes 8) */
#define T_CASES4(TILE, ...)                                                                                        \
    case 4: TILE(__VA_ARGS__, 4); break;                                                                           \
    case 3: TILE(__VA_ARGS__, 3); break;                                                                           \
    case 2: TILE(__VA_ARGS__, 2); break;                                                                           \
    default: TILE(__VA_ARGS__, 1); break;
#define T_CASES8(TILE, ...)                                                                                        \
    case 8: TILE(__VA_ARGS__, 8); break;                                                                           \
    case 7: TILE(__VA_ARGS__, 7); break;                                                                           \
    case 6: TILE(__VA_ARGS__, 6); break;                                                                           \
    case 5: TILE(__VA_ARGS__, 5); break;                                                                           \
    T_CASES4(TILE, __VA_ARGS__)

/* X8_MV: the matvec over an interleaved type's whole groups of 8 rows that
 * [r0, r1) touches: one token, 4 groups a quarter of them apart (four weight
 * streams, TILE1X4); then PAIRS (a statement: AVX-512's two-group tiles,
 * PAIR_WALK, or nothing); more tokens, or what is left, one group after
 * another, tokens 4 at a time (TILE1G, NT a constant); the rows % 8 last
 * rows are plain rows at their plain place (repack.h): the plain type's
 * kernel PLAIN, the same bits. ldo is the matrix's rows (matvec.h). */
#define X8_MV(NAME, BLK, QK, TILE1X4, PAIRS, TILE1G, PLAIN)                                                     \
    void NAME(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {      \
        const q8_act *x = xv;                                                                                  \
        const BLK *W = Wv;                                                                                     \
        const int nb = cols / (QK), G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;              \
        int g = r0 / 8;                                                                                        \
        if (T == 1 && g1 > g) {                                                                                \
            const int q = (g1 - g) / 4;                                                                        \
            for (int k = 0; k < q; k++) TILE1X4(out, ldo, W, nb, x, g + k, q, r0, r1);                         \
            g += 4 * q;                                                                                        \
        }                                                                                                      \
        PAIRS;                                                                                                 \
        for (; g < g1; g++)                                                                                    \
            for (int t0 = 0; t0 < T; t0 += 4) switch (T - t0 < 4 ? T - t0 : 4) {                              \
                T_CASES4(TILE1G, out, ldo, W, nb, x, g, r0, r1, t0)                                            \
                }                                                                                              \
        if (r1 > 8 * G) PLAIN(out, ldo, Wv, cols, r0 > 8 * G ? r0 : 8 * G, r1, xv, T);                         \
    }

X8_MV(mv_q4_0x8_avx2, block_q4_0x8, QK4_0, q4_0x8_tile1x4, (void)0, q4_0x8_tile1g, mv_q4_0_avx2)

/* ---------------------------------------------------------------- q4_0x8, VNNI */

/* The AVX-512 machines' q4_0x8 (cpu.h's AVX-512 level has AVX512_VNNI):
 * vpdpbusd on 256-bit vectors sums the 4 products of an int32 lane (u8
 * nibble x s8 activation, exact) straight into it, where maddubs gives int16
 * pairs that an add and, per block, a madd by ones gather: per chunk and
 * token 2 operations instead of 4 (and no madd a block). The same integer
 * sums (exact both ways), then the same float operations per lane as
 * q4_acc: the same bits as mv_q4_0x8_avx2. The low and high nibbles keep
 * separate int32 chains (added once a block) so that 8 independent chains
 * (2 x 4 tokens or groups) hide vpdpbusd's latency. */
#define VNNI_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* chunk k: l32[t], h32[t] (+)= dpbusd of its low / high nibbles by token t's 4 matching activation bytes */
VNNI_TARGET INL void q4v_chunk(__m256i *l32, __m256i *h32, __m256i qk, const int8_t *xb, size_t cols, int k, int NT) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i lo = _mm256_and_si256(qk, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qk, 4), m4);
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        int32_t xl, xh;
        memcpy(&xl, xb + (size_t)t * cols + 4 * k, 4), memcpy(&xh, xb + (size_t)t * cols + 4 * k + 16, 4);
        const __m256i z = _mm256_setzero_si256();
        l32[t] = _mm256_dpbusd_epi32(k ? l32[t] : z, lo, _mm256_set1_epi32(xl));
        h32[t] = _mm256_dpbusd_epi32(k ? h32[t] : z, hi, _mm256_set1_epi32(xh));
    }
}

/* q4_acc's float step from the int32 sums: acc += dw * (dx * isum - 8 ds) */
VNNI_TARGET INL __m256 q4v_acc(__m256 acc, __m256i l32, __m256i h32, __m256 dw, const q8_act *x, size_t tb) {
    const __m256 s = _mm256_cvtepi32_ps(_mm256_add_epi32(l32, h32));
    const __m256 ds8 = _mm256_mul_ps(_mm256_broadcast_ss(x->ds + tb), _mm256_set1_ps(8.0f));
    return _mm256_fmadd_ps(_mm256_fmsub_ps(s, _mm256_broadcast_ss(x->d + tb), ds8), dw, acc);
}

/* q4_0x8_tile1g by VNNI: one group, NT (1..4) tokens */
VNNI_TARGET INL void q4_0x8_tile1g_vnni(float *out, size_t ldo, const block_q4_0x8 *W, int nb, const q8_act *x, int g,
                                        int r0, int r1, int t0, int NT) {
    const size_t cols = (size_t)nb * QK4_0;
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const block_q4_0x8 *B = W + (size_t)g * nb + b;
        _mm_prefetch((const char *)B + PF_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)B + PF_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)B + PF_BYTES + 128, _MM_HINT_T0);
        const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)b * QK4_0;
        __m256i l32[4], h32[4];
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) q4v_chunk(l32, h32, _mm256_loadu_si256((const __m256i *)(B->qs + 32 * k)), xb, cols, k, NT);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B->d));
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[t] = q4v_acc(acc[t], l32[t], h32[t], dw, x, (size_t)(t0 + t) * nb + b);
    }
    groups_store(out, ldo, acc, 4, g, 0, 1, r0, r1, t0, NT);
}

/* the int32 at p in 16 lanes, as one broadcast load (q6_kx8's tile had
 * copied 16 activation bytes out at once, which gcc split in general
 * registers and broadcast from there: with its scalar -32 sum x, half the
 * tile's instructions) */
VNNI_TARGET INL __m512i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* the two-group tiles' (below) shared parts. pair_store: NT (<= 8) 16-lane
 * sums, lanes 0-7 group g's rows, 8-15 group g + gs's, as groups_store
 * takes them (8-lane halves, tokens 4 at a time) */
VNNI_TARGET INL void pair_store(float *out, size_t ldo, const __m512 *acc, int g, int gs, int r0, int r1, int t0, int NT) {
    for (int h = 0; h < NT; h += 4) {
        const int n = NT - h < 4 ? NT - h : 4;
        __m256 a8[8];
        for (int t = 0; t < n; t++)
            a8[t] = _mm512_castps512_ps256(acc[h + t]),
            a8[4 + t] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[h + t]), 1));
        groups_store(out, ldo, a8, 4, g, gs, 2, r0, r1, t0 + h, n);
    }
}

/* 32 bytes at a (lanes 0-7: group g's rows) and 32 at b (8-15: the pair's other group) */
VNNI_TARGET INL __m512i halves512(const void *a, const void *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)), _mm256_loadu_si256((const __m256i *)b), 1);
}

/* the 8 + 8 half-precision row factors (d, dmin) of two groups' blocks as 16 floats */
VNNI_TARGET INL __m512 halves16(const uint16_t *a, const uint16_t *b) {
    return _mm512_cvtph_ps(
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)), _mm_loadu_si128((const __m128i *)b), 1));
}

/* groups [g, g1): g + k with g + k + hg (hg = half of them: two long weight
 * streams) by TILE2G, N tokens at most a tile (CASES: T_CASES4 / 8); g is
 * left at the odd group over, if any */
#define PAIR_WALK(TILE2G, N, CASES)                                                                                \
    do {                                                                                                           \
        const int hg = (g1 - g) / 2;                                                                               \
        for (int k = 0; k < hg; k++)                                                                               \
            for (int t0 = 0; t0 < T; t0 += (N)) switch (T - t0 < (N) ? T - t0 : (N)) {                             \
                CASES(TILE2G, out, ldo, W, nb, x, g + k, hg, r0, r1, t0)                                           \
                }                                                                                                  \
        g += 2 * hg;                                                                                               \
    } while (0)

/* X8_MV on AVX-512: the two-group tiles TILE2G (N tokens at most a tile,
 * CASES) over half-apart pairs after the one-token tile */
#define X8_MV512(NAME, BLK, QK, TILE1X4, TILE2G, N, CASES, TILE1G, PLAIN) \
    VNNI_TARGET X8_MV(NAME, BLK, QK, TILE1X4, PAIR_WALK(TILE2G, N, CASES), TILE1G, PLAIN)

/* two groups g, g + gs and NT (1..8) tokens in 512-bit vectors (lanes
 * 0-7 group g's rows, 8-15 group g + gs's): each token's activation
 * broadcast and vpdpbusd serve 16 rows where tile1g's serve 8, and a
 * block's nibbles are split once for up to 8 tokens, so a block costs
 * about half the instructions a token (several tokens are bound by the
 * instructions, not by the bytes: in L2, one Zen 5 core, T = 4 read 20 GB/s
 * of weights against 75 at T = 1). One int32 chain a token for both
 * nibbles (NT chains hide vpdpbusd's latency); the same integer sums
 * (exact) and float steps per lane as q4v_acc: the same bits. */
VNNI_TARGET INL void q4_0x8_tile2g_vnni(float *out, size_t ldo, const block_q4_0x8 *W, int nb, const q8_act *x, int g,
                                        int gs, int r0, int r1, int t0, int NT) {
    const size_t cols = (size_t)nb * QK4_0;
    const __m512i m4 = _mm512_set1_epi8(15), z = _mm512_setzero_si512();
    __m512 acc[8];
    #pragma GCC unroll 8
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const block_q4_0x8 *B0 = W + (size_t)g * nb + b, *B1 = B0 + (size_t)gs * nb;
        if (NT > 4) /* software prefetch only past 4 tokens (below, the hardware's alone streams faster) */
            for (int o = 0; o < 192; o += 64)
                _mm_prefetch((const char *)B0 + PF_BYTES + o, _MM_HINT_T0), _mm_prefetch((const char *)B1 + PF_BYTES + o, _MM_HINT_T0);
        const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)b * QK4_0;
        __m512i i32[8];
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m512i qk = halves512(B0->qs + 32 * k, B1->qs + 32 * k);
            const __m512i lo = _mm512_and_si512(qk, m4), hi = _mm512_and_si512(_mm512_srli_epi16(qk, 4), m4);
            #pragma GCC unroll 8
            for (int t = 0; t < NT; t++)
                i32[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(k ? i32[t] : z, lo, bcast32(xb + (size_t)t * cols + 4 * k)), hi,
                                             bcast32(xb + (size_t)t * cols + 4 * k + 16));
        }
        const __m512 dw = halves16(B0->d, B1->d);
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            const size_t tb = (size_t)(t0 + t) * nb + b;
            const __m512 s = _mm512_cvtepi32_ps(i32[t]);
            const __m512 ds8 = _mm512_mul_ps(_mm512_set1_ps(x->ds[tb]), _mm512_set1_ps(8.0f));
            acc[t] = _mm512_fmadd_ps(_mm512_fmsub_ps(s, _mm512_set1_ps(x->d[tb]), ds8), dw, acc[t]);
        }
    }
    pair_store(out, ldo, acc, g, gs, r0, r1, t0, NT);
}

/* one token and 4 groups g + i gs as two pairs (g, g + 2gs) and (g + gs,
 * g + 3gs) in 512-bit vectors: four weight streams as AVX2's
 * q4_0x8_tile1x4, each broadcast and vpdpbusd serving 16 rows (the 256-bit
 * VNNI tile it replaces served 8: in L2, one Zen 5 thread, 67-79 -> 90-105
 * GB/s); the same integer sums and float steps per lane as q4v_acc: the
 * same bits */
/* the one-token AVX-512 tiles' software prefetch, bytes ahead in each of the
 * four weight streams: 3 lines a stream each step (q4_0x8: a 144-byte block;
 * q6_kx8: a sub-block's 192 bytes of qs). Without it these tiles read from
 * memory below what the hardware can stream once the model is bigger than a
 * cache-sized test: 2 GB of V2-Lite's expert (1408 x 2048 q4_0x8) matrices,
 * one Zen 5 thread, matmul_mv on each in turn: 28-31 -> 37-38 GB/s (1024
 * ahead 36, 2048 35-36, 4096 27-30, one line a block 24); mini's experts
 * (512 x 1024) 23-26 -> 28-31; 2 threads 41-52 -> 53-62 (1408 x 2048); mini's
 * Q6_K head (128896 x 1024 q6_kx8) 33-35 -> 39-40 (1024 ahead 36-40, 2048
 * 33-38, 3072 31-34); a plain read of the same 2 GB in 1.6 MB windows with
 * four streams, 38.6 without prefetch and 44.7 with. */
#define T1_PF 1536
VNNI_TARGET INL void q4_0x8_tile1x4_zmm(float *out, size_t ldo, const block_q4_0x8 *W, int nb, const q8_act *x, int g,
                                        int gs, int r0, int r1) {
    const __m512i m4 = _mm512_set1_epi8(15), z = _mm512_setzero_si512();
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int b = 0; b < nb; b++) {
        const block_q4_0x8 *B[2][2];
        #pragma GCC unroll 2
        for (int p = 0; p < 2; p++) B[p][0] = W + (size_t)(g + p * gs) * nb + b, B[p][1] = B[p][0] + (size_t)2 * gs * nb;
        const int8_t *xb = x->qs + (size_t)b * QK4_0;
        #pragma GCC unroll 2
        for (int p = 0; p < 2; p++)
            for (int q = 0; q < 2; q++)
                for (int o = 0; o < 192; o += 64) _mm_prefetch((const char *)B[p][q] + T1_PF + o, _MM_HINT_T0);
        __m512i i32[2];
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m512i bl = bcast32(xb + 4 * k), bh = bcast32(xb + 4 * k + 16);
            #pragma GCC unroll 2
            for (int p = 0; p < 2; p++) {
                const __m512i qk = halves512(B[p][0]->qs + 32 * k, B[p][1]->qs + 32 * k);
                const __m512i lo = _mm512_and_si512(qk, m4), hi = _mm512_and_si512(_mm512_srli_epi16(qk, 4), m4);
                i32[p] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(k ? i32[p] : z, lo, bl), hi, bh);
            }
        }
        const __m512 dx = _mm512_set1_ps(x->d[b]), ds8 = _mm512_mul_ps(_mm512_set1_ps(x->ds[b]), _mm512_set1_ps(8.0f));
        #pragma GCC unroll 2
        for (int p = 0; p < 2; p++)
            acc[p] = _mm512_fmadd_ps(_mm512_fmsub_ps(_mm512_cvtepi32_ps(i32[p]), dx, ds8), halves16(B[p][0]->d, B[p][1]->d), acc[p]);
    }
    #pragma GCC unroll 2
    for (int p = 0; p < 2; p++) pair_store(out, ldo, acc + p, g + p * gs, 2 * gs, r0, r1, 0, 1);
}

/* the AVX-512 q4_0x8 matvec: groups two at a time in 512-bit vectors and
 * tokens 8 at a time wherever more than one token shares them */
X8_MV512(mv_q4_0x8_avx512, block_q4_0x8, QK4_0, q4_0x8_tile1x4_zmm, q4_0x8_tile2g_vnni, 8, T_CASES8, q4_0x8_tile1g_vnni,
         mv_q4_0_avx2)

/* ---------------------------------------------------------------- q4_k */

/* the 8 scales then the 8 mins of a Q4_K super-block, one byte each (ggml's
 * 6-bit packing: gg_k4_scale_min) */
INL __m128i k4_scales_mins(const uint8_t *q) {
    uint32_t u[3], o[4];
    memcpy(u, q, 12);
    o[0] = u[0] & 0x3f3f3f3f;                                          /* sc 0-3 */
    o[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 6 & 0x03030303) << 4);      /* sc 4-7 */
    o[2] = u[1] & 0x3f3f3f3f;                                          /* m 0-3 */
    o[3] = (u[2] >> 4 & 0x0f0f0f0f) | ((u[1] >> 6 & 0x03030303) << 4); /* m 4-7 */
    return _mm_loadu_si128((const __m128i *)o);
}

/* ---------------------------------------------------------------- q4_k lanes */

/* Q4_K with one row per lane, as q4_0 (both layouts give the same bits: the
 * plain rows' super-blocks are gathered into the interleaved form first).
 * NG groups (super-block p of each: B[g]) times NT tokens, NG NT <= 4, one
 * super-block at a time (q4k_super):
 *   q4k_prep, per group: the 8 rows' scales and mins unpacked as vectors
 *     (k4_scales_mins on 8 rows at once: lane j bytes sc0-3 / sc4-7 / m0-3 /
 *     m4-7 of row j); the scale of each sub-block in both int16 of each lane
 *     (one byte shuffle) into sc[8] (on the stack: the main loop reads them
 *     as memory operands);
 *   q4k_mins: mn = sum_j m_j ds_j (ds = dx sum(x) per 32, q8_act.ds), which
 *     the quants do not touch, the groups' chains interleaved (one group
 *     after the other left 8-FMA chains in a row: 5% slower);
 *   q4k_sub, sub-block j by sub-block: chunk c (c = 0..7) of pair j / 2 holds
 *     4 bytes of each row, sub-block j in the low (j even) or high nibbles;
 *     maddubs by the token's 4 matching int8 broadcast, the 8 chunks summed
 *     in int16 (8 x 2 x 15 x 127: exact), madd by the scale pairs,
 *     in += float(.) * dx_j;
 * then acc += d * in - dmin * mn. The chunk loop is outermost: each
 * broadcast serves the NG groups, and the sums, in, the broadcasts and the
 * mask fit the 16 registers; with 2+ tokens q4_kx8's chunk c of pair i is
 * read twice, once for each nibble (the second time from L1; both at once
 * kept twice the sums and spilled: L2, T = 2, 20.9 -> 15.6 GB/s), with one
 * token once for both (q4k_pair: 8 sums, 2 broadcasts and the mask fit).
 * Zen 3 (measured) retires about 4 of these vector instructions a cycle
 * whatever they are (2 loads or 2 maddubs a cycle at most), so what counts
 * is their number: about 390 a group and super-block (T = 1 before
 * q4k_pair; 64 maddubs, 96 nibble ops, 56 int16 adds, 32 loads, ...);
 * software prefetch (18 a group and super-block) cost 20% of that speed.
 * Per lane the same integer sums and the same float operations in the same
 * order whatever NG and NT: a (row, token)'s bits depend on neither. */
INL void q4k_prep(__m256i *sc, __m256i *M, const block_q4_Kx8 *B) {
    const __m256i m4 = _mm256_set1_epi8(15), m6 = _mm256_set1_epi8(0x3f), m2 = _mm256_set1_epi8(3);
    const __m256i U0 = _mm256_loadu_si256((const __m256i *)B->scales),
                  U1 = _mm256_loadu_si256((const __m256i *)(B->scales + 32)),
                  U2 = _mm256_loadu_si256((const __m256i *)(B->scales + 64));
    const __m256i S[2] = {
        _mm256_and_si256(U0, m6),
        _mm256_or_si256(_mm256_and_si256(U2, m4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(U0, 6), m2), 4))};
    M[0] = _mm256_and_si256(U1, m6);
    M[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(U2, 4), m4),
                           _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(U1, 6), m2), 4));
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        /* the scale: byte j % 4 of the lane in both int16, zero high bytes */
        const char b = (char)(j % 4), z = -128;
        sc[j] = _mm256_shuffle_epi8(S[j / 4], _mm256_setr_epi8(b, z, b, z, b + 4, z, b + 4, z, b + 8, z, b + 8, z, b + 12, z,
                                                               b + 12, z, b, z, b, z, b + 4, z, b + 4, z, b + 8, z, b + 8, z,
                                                               b + 12, z, b + 12, z));
    }
}

/* mn[g NT + t] = sum_j m_j ds_j of group g (mins M[2g], M[2g + 1] as q4k_prep
 * leaves them) and token t0 + t, the groups' sums interleaved */
INL void q4k_mins(__m256 *mn, const __m256i *M, const q8_act *x, int nb, int p, int t0, int NG, int NT) {
    const size_t nsub = (size_t)nb * (QK_K / QK8_0);
    #pragma GCC unroll 4
    for (int k = 0; k < NG * NT; k++) mn[k] = _mm256_setzero_ps();
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        /* the min as an int32 lane: byte j % 4, zero above */
        const char b = (char)(j % 4), z = -128;
        const __m256i idx = _mm256_setr_epi8(b, z, z, z, b + 4, z, z, z, b + 8, z, z, z, b + 12, z, z, z, b, z, z, z, b + 4, z,
                                             z, z, b + 8, z, z, z, b + 12, z, z, z);
        __m256 ds[4];
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) ds[t] = _mm256_broadcast_ss(x->ds + (size_t)(t0 + t) * nsub + (size_t)p * 8 + j);
        #pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            const __m256 fm = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(M[2 * g + j / 4], idx));
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) mn[g * NT + t] = _mm256_fmadd_ps(fm, ds[t], mn[g * NT + t]);
        }
    }
}

/* sub-block j (J1 = j & 1, a constant) of super-block p: in[g NT + t] +=
 * float(madd(int16 sums, sc[8g + j])) * dx_j */
INL void q4k_sub(__m256 *in, const block_q4_Kx8 *const *B, const __m256i *sc, const q8_act *x, int nb, int p, int j,
                 int J1, int t0, int NG, int NT) {
    const size_t cols = (size_t)nb * QK_K, nsub = cols / QK8_0;
    const __m256i m4 = _mm256_set1_epi8(15);
    const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)p * QK_K + 32 * j;
    __m256i s16[4];
    #pragma GCC unroll 8
    for (int c = 0; c < 8; c++) {
        __m256i bx[4];
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            int32_t v;
            memcpy(&v, xb + (size_t)t * cols + 4 * c, 4);
            bx[t] = _mm256_set1_epi32(v);
        }
        #pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(B[g]->qs + 256 * (j >> 1) + 32 * c));
            const __m256i q = J1 ? _mm256_and_si256(_mm256_srli_epi16(v, 4), m4) : _mm256_and_si256(v, m4);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const __m256i pr = _mm256_maddubs_epi16(q, bx[t]);
                s16[g * NT + t] = c ? _mm256_add_epi16(s16[g * NT + t], pr) : pr;
            }
        }
        /* the sums stay sums: gcc otherwise kept the chunks' products apart (on the stack) to add them up at the end */
        #pragma GCC unroll 4
        for (int k = 0; k < NG * NT; k++) __asm__("" : "+x"(s16[k]));
    }
    #pragma GCC unroll 4
    for (int g = 0; g < NG; g++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 dx = _mm256_broadcast_ss(x->d + (size_t)(t0 + t) * nsub + (size_t)p * 8 + j);
            in[g * NT + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s16[g * NT + t], sc[8 * g + j])), dx,
                                             in[g * NT + t]);
        }
}

/* sub-blocks j and j + 1 (j even) of super-block p at once, for one token
 * (NG NT <= 4): each chunk loaded once for both nibbles (q4k_sub twice
 * loads it twice); in[g NT + t] += sub-block j's term, then sub-block j +
 * 1's: q4k_sub's integers and float operations in q4k_sub's order, the same
 * bits. L2, 1 thread, T = 1 (4 groups): 32.6 -> 35.8 GB/s (with
 * q4_kx8_one). The empty asm statements: v loaded once (not folded into
 * both nibble operations), the sums kept sums (as in q4k_sub). */
INL void q4k_pair(__m256 *in, const block_q4_Kx8 *const *B, const __m256i *sc, const q8_act *x, int nb, int p, int j,
                  int t0, int NG, int NT) {
    const size_t cols = (size_t)nb * QK_K, nsub = cols / QK8_0;
    const __m256i m4 = _mm256_set1_epi8(15);
    const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)p * QK_K + 32 * j;
    __m256i sl[4], sh[4];
    #pragma GCC unroll 8
    for (int c = 0; c < 8; c++) {
        __m256i bl[4], bh[4];
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            int32_t vl, vh;
            memcpy(&vl, xb + (size_t)t * cols + 4 * c, 4), memcpy(&vh, xb + (size_t)t * cols + 32 + 4 * c, 4);
            bl[t] = _mm256_set1_epi32(vl), bh[t] = _mm256_set1_epi32(vh);
        }
        #pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(B[g]->qs + 256 * (j >> 1) + 32 * c));
            __asm__("" : "+x"(v));
            const __m256i ql = _mm256_and_si256(v, m4), qh = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const __m256i pl = _mm256_maddubs_epi16(ql, bl[t]), ph = _mm256_maddubs_epi16(qh, bh[t]);
                sl[g * NT + t] = c ? _mm256_add_epi16(sl[g * NT + t], pl) : pl;
                sh[g * NT + t] = c ? _mm256_add_epi16(sh[g * NT + t], ph) : ph;
            }
        }
        #pragma GCC unroll 4
        for (int k = 0; k < NG * NT; k++) __asm__ volatile("" : "+x"(sl[k]), "+x"(sh[k]));
    }
    #pragma GCC unroll 4
    for (int g = 0; g < NG; g++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const float *d = x->d + (size_t)(t0 + t) * nsub + (size_t)p * 8 + j;
            const int k = g * NT + t;
            in[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sl[k], sc[8 * g + j])), _mm256_broadcast_ss(d), in[k]);
            in[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sh[k], sc[8 * g + j + 1])), _mm256_broadcast_ss(d + 1),
                                    in[k]);
        }
}

/* super-block p of the NG groups B[g] times NT tokens into acc[g NT + t] */
INL void q4k_super(__m256 *acc, const block_q4_Kx8 *const *B, const q8_act *x, int nb, int p, int t0, int NG, int NT) {
    __m256i sc[4 * 8], M[4 * 2];
    __m256 mn[4], in[4];
    #pragma GCC unroll 4
    for (int g = 0; g < NG; g++) q4k_prep(sc + 8 * g, M + 2 * g, B[g]);
    q4k_mins(mn, M, x, nb, p, t0, NG, NT);
    #pragma GCC unroll 4
    for (int k = 0; k < NG * NT; k++) in[k] = _mm256_setzero_ps();
    #pragma GCC unroll 1
    for (int j = 0; j < 8; j += 2) {
        if (NT == 1)
            q4k_pair(in, B, sc, x, nb, p, j, t0, NG, NT);
        else {
            q4k_sub(in, B, sc, x, nb, p, j, 0, t0, NG, NT);
            q4k_sub(in, B, sc, x, nb, p, j + 1, 1, t0, NG, NT);
        }
    }
    #pragma GCC unroll 4
    for (int g = 0; g < NG; g++) {
        const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[g]->d)),
                     mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[g]->dmin));
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const int k = g * NT + t;
            acc[k] = _mm256_fnmadd_ps(mn[k], mv, _mm256_fmadd_ps(in[k], dv, acc[k]));
        }
    }
}

/* 8 vectors of 8 dwords (v[j] = row j's dwords 0..7) transposed: o[c] lane j = dword c of v[j] */
INL void dword_transpose8(__m256i *o, const __m256i *v) {
    __m256i t[8], u[8];
    #pragma GCC unroll 4
    for (int j = 0; j < 8; j += 2) t[j] = _mm256_unpacklo_epi32(v[j], v[j + 1]), t[j + 1] = _mm256_unpackhi_epi32(v[j], v[j + 1]);
    #pragma GCC unroll 2
    for (int k = 0; k < 8; k += 4) {
        u[k] = _mm256_unpacklo_epi64(t[k], t[k + 2]), u[k + 1] = _mm256_unpackhi_epi64(t[k], t[k + 2]);
        u[k + 2] = _mm256_unpacklo_epi64(t[k + 1], t[k + 3]), u[k + 3] = _mm256_unpackhi_epi64(t[k + 1], t[k + 3]);
    }
    /* u[k] (k < 4): rows 0-3' dwords k (low half) and k + 4 (high); u[k + 4] rows 4-7's */
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        o[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20), o[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
}

/* one q4_kx8 super-block (repack.h's layout) from 8 plain ones: the halves
 * and scale bytes copied, and per pair i the 8 rows' 32 qs bytes as 8 x 8
 * dwords transposed (chunk c = dword c of each row) */
INL void q4k_gather8(block_q4_Kx8 *dst, const block_q4_K *const *src) {
    for (int j = 0; j < 8; j++) {
        dst->d[j] = src[j]->d, dst->dmin[j] = src[j]->dmin;
        ilv_words(dst->scales, src[j]->scales, j, 3);
    }
    #pragma GCC unroll 1
    for (int i = 0; i < 4; i++) {
        __m256i r[8], o[8];
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_si256((const __m256i *)(src[j]->qs + 32 * i));
        dword_transpose8(o, r);
        #pragma GCC unroll 8
        for (int k = 0; k < 8; k++) _mm256_storeu_si256((__m256i *)(dst->qs + 256 * i) + k, o[k]);
    }
}

/* plain rows rows[0..7] times NT tokens: each super-block column of the 8
 * rows gathered into the interleaved form, then q4k_super */
INL void q4_k_tile(float *out, size_t ldo, const block_q4_K *W, int nb, const q8_act *x, const int *rows,
                   const int *keep, int t0, int NT) {
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q4_K *src[8];
        block_q4_Kx8 g;
        const block_q4_Kx8 *B[1] = {&g};
        for (int j = 0; j < 8; j++) src[j] = W + (size_t)rows[j] * nb + p;
        q4k_gather8(&g, src);
        q4k_super(acc, B, x, nb, p, t0, 1, NT);
    }
    lanes_store(out, ldo, acc, keep, t0, NT);
}

/* 8 adjacent rows at a time, tokens 4 at a time, the last group filled up
 * with its last row (computed, not written) */
void mv_q4_k_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q4_K *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK_K;
    int rows[8], keep[8];
    for (int r = r0; r < r1; r += 8) {
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        for (int t0 = 0; t0 < T; t0 += 4) switch (T - t0 < 4 ? T - t0 : 4) {
            case 4: q4_k_tile(out, ldo, W, nb, x, rows, keep, t0, 4); break;
            case 3: q4_k_tile(out, ldo, W, nb, x, rows, keep, t0, 3); break;
            case 2: q4_k_tile(out, ldo, W, nb, x, rows, keep, t0, 2); break;
            default: q4_k_tile(out, ldo, W, nb, x, rows, keep, t0, 1); break;
            }
    }
}

/* NG groups g + i gs of the interleaved layout times NT tokens (NG NT <= 4).
 * No software prefetch: the 18 prefetches a super-block of a group took
 * cost more than they gave (Zen 3, 1 thread, T = 1: 35 GB/s in L2 without,
 * 27.5 with; from DRAM 25.5 / 21) */
INL void q4_kx8_tile(float *out, size_t ldo, const block_q4_Kx8 *W, int nb, const q8_act *x, int g, int gs, int NG,
                     int r0, int r1, int t0, int NT) {
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int k = 0; k < NG * NT; k++) acc[k] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q4_Kx8 *B[4];
        #pragma GCC unroll 4
        for (int i = 0; i < NG; i++) B[i] = W + (size_t)(g + i * gs) * nb + p;
        q4k_super(acc, B, x, nb, p, t0, NG, NT);
    }
    groups_store(out, ldo, acc, NT, g, gs, NG, r0, r1, t0, NT);
}

/* groups [g, g1) times one token: 4 groups a quarter apart, the groups left
 * over all at once. q4_kx8_one, _two and _many are functions of their
 * own (noinline): inlined into mv_q4_kx8_avx2, the one-token tiles with
 * q4k_pair ran at 34.0 GB/s in L2 (35.8 alone) and made gcc's code for the
 * tiles of 2 tokens slower (20.9 -> 20.0; alone 21.2) and of 4 (from
 * memory 9.7-10.0 -> 9.5-9.7; alone 10.0) */
static __attribute__((noinline)) void q4_kx8_one(float *out, size_t ldo, const block_q4_Kx8 *W, int nb, const q8_act *x,
                                                 int g, int g1, int r0, int r1) {
    const int q = (g1 - g) / 4;
    for (int k = 0; k < q; k++) q4_kx8_tile(out, ldo, W, nb, x, g + k, q, 4, r0, r1, 0, 1);
    g += 4 * q;
    switch (g1 - g) {
    case 3: q4_kx8_tile(out, ldo, W, nb, x, g, 1, 3, r0, r1, 0, 1); break;
    case 2: q4_kx8_tile(out, ldo, W, nb, x, g, 1, 2, r0, r1, 0, 1); break;
    case 1: q4_kx8_tile(out, ldo, W, nb, x, g, 1, 1, r0, r1, 0, 1); break;
    default: break;
    }
}

/* groups [g, g1) times 2 tokens: 2 groups half the range apart (two
 * weight streams), the one left over alone. Two adjacent groups a tile read
 * from memory at a third of the speed on a Zen 5 (bench_matvec decode,
 * T = 2, 102400 x 1024: 1 thread 7.1-9.0 GB/s against 24.9-26.3 half
 * apart; 2 threads 14.6-19.9 against 45.8-52.7), in L2 the same (28.4 and
 * 29.0-29.5 GB/s) */
static __attribute__((noinline)) void q4_kx8_two(float *out, size_t ldo, const block_q4_Kx8 *W, int nb, const q8_act *x,
                                                 int g, int g1, int r0, int r1) {
    const int q = (g1 - g) / 2;
    for (int k = 0; k < q; k++) q4_kx8_tile(out, ldo, W, nb, x, g + k, q, 2, r0, r1, 0, 2);
    if (g + 2 * q < g1) q4_kx8_tile(out, ldo, W, nb, x, g + 2 * q, 1, 1, r0, r1, 0, 2);
}

/* groups [g, g1) one at a time times T tokens, 4 at a time */
static __attribute__((noinline)) void q4_kx8_many(float *out, size_t ldo, const block_q4_Kx8 *W, int nb, const q8_act *x,
                                                  int g, int g1, int r0, int r1, int T) {
    for (; g < g1; g++)
        for (int t0 = 0; t0 < T; t0 += 4) switch (T - t0 < 4 ? T - t0 : 4) {
            case 4: q4_kx8_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 4); break;
            case 3: q4_kx8_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 3); break;
            case 2: q4_kx8_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 2); break;
            default: q4_kx8_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 1); break;
            }
}

/* one token: 4 groups a quarter apart (four weight streams), the groups
 * left over all at once; two: 2 groups half apart x 2 tokens; more: one group
 * x 4 tokens at a time. The rows % 8 last rows plain (Q4_K's kernel, the
 * same bits). */
void mv_q4_kx8_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const q8_act *x = xv;
    const block_q4_Kx8 *W = Wv;
    const int nb = cols / QK_K, G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;
    int g = r0 / 8;
    if (T == 1 && g1 > g) q4_kx8_one(out, ldo, W, nb, x, g, g1, r0, r1), g = g1;
    if (T == 2) q4_kx8_two(out, ldo, W, nb, x, g, g1, r0, r1), g = g1;
    if (g < g1) q4_kx8_many(out, ldo, W, nb, x, g, g1, r0, r1, T);
    if (r1 > 8 * G) mv_q4_k_avx2(out, ldo, Wv, cols, r0 > 8 * G ? r0 : 8 * G, r1, xv, T);
}

/* ---------------------------------------------------------------- q4_kx8, AVX-512 */

/* the scale (S) and min (M) bytes of q4k_prep, before its shuffles, from a
 * q4_kx8 or q5_kx8 super-block's 96 scale bytes: lane j of S[0] / S[1] =
 * row j's scales of sub-blocks 0-3 / 4-7, M[] the mins */
VNNI_TARGET INL void q4k_sm(__m256i *S, __m256i *M, const uint8_t *scales) {
    const __m256i m4 = _mm256_set1_epi8(15), m6 = _mm256_set1_epi8(0x3f), m2 = _mm256_set1_epi8(3);
    const __m256i U0 = _mm256_loadu_si256((const __m256i *)scales),
                  U1 = _mm256_loadu_si256((const __m256i *)(scales + 32)),
                  U2 = _mm256_loadu_si256((const __m256i *)(scales + 64));
    S[0] = _mm256_and_si256(U0, m6);
    S[1] = _mm256_or_si256(_mm256_and_si256(U2, m4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(U0, 6), m2), 4));
    M[0] = _mm256_and_si256(U1, m6);
    M[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(U2, 4), m4),
                           _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(U1, 6), m2), 4));
}

/* q4k_sm of two groups' scale bytes, group g's in the low 8 lanes */
VNNI_TARGET INL void q4k_sm2(__m512i *S, __m512i *M, const uint8_t *sc0, const uint8_t *sc1) {
    __m256i S0[2], M0[2], S1[2], M1[2];
    q4k_sm(S0, M0, sc0), q4k_sm(S1, M1, sc1);
    for (int h = 0; h < 2; h++)
        S[h] = _mm512_inserti64x4(_mm512_castsi256_si512(S0[h]), S1[h], 1),
        M[h] = _mm512_inserti64x4(_mm512_castsi256_si512(M0[h]), M1[h], 1);
}

/* the Q4_K and Q5_K two-group tile: groups g, g + gs (lanes 0-7, 8-15) of
 * W (q4_kx8, or q5_kx8 where Q5, a constant) and NT (1..4) tokens in
 * 512-bit vectors by vpdpbusd. Per pair i of sub-blocks (2i, 2i + 1) and
 * token, each chunk of 4 values a row loaded once for both sub-blocks (Q4_K:
 * its nibbles; Q5_K: q5_vals' bits from qs and qh), the 8 chunks' products
 * summed in int32 (exact), times the rows' scale (vpmulld): the integer
 * q4k_sub's int16 sums and madd make (q5k_lanes' for Q5_K); then the float
 * steps in q4k_super's / q5k_lanes' order, the mins' term summed from zero
 * (Q4_K, q4k_mins) or from its first product (Q5_K): the same bits as
 * q4_kx8_tile / q5_kx8_tile. */
#define KX8(Q5, b, f) ((Q5) ? ((const block_q5_Kx8 *)(const void *)(b))->f : ((const block_q4_Kx8 *)(const void *)(b))->f)
VNNI_TARGET INL void kx8_tile2g_vnni(float *out, size_t ldo, const void *W, int nb, const q8_act *x, int g, int gs, int r0,
                                     int r1, int t0, int NT, int Q5) {
    const size_t cols = (size_t)nb * QK_K, nsub = cols / QK8_0;
    const size_t bs = Q5 ? sizeof(block_q5_Kx8) : sizeof(block_q4_Kx8);
    const __m512i m4 = _mm512_set1_epi8(15), m1f = _mm512_set1_epi8(0x1f), m18 = _mm512_set1_epi8(0x18);
    const __m512i ff = _mm512_set1_epi32(0xff), z = _mm512_setzero_si512();
    __m512 acc[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const uint8_t *B0 = (const uint8_t *)W + ((size_t)g * nb + p) * bs, *B1 = B0 + (size_t)gs * nb * bs;
        const uint8_t *qs0 = KX8(Q5, B0, qs), *qs1 = KX8(Q5, B1, qs);
        __m512i S[2], M[2];
        q4k_sm2(S, M, KX8(Q5, B0, scales), KX8(Q5, B1, scales));
        __m512 in[4];
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) in[t] = _mm512_setzero_ps();
        #pragma GCC unroll 1
        for (int i = 0; i < 4; i++) {
            __m512i il[4], ih[4];
            #pragma GCC unroll 8
            for (int c = 0; c < 8; c++) {
                const __m512i v = halves512(qs0 + 256 * i + 32 * c, qs1 + 256 * i + 32 * c);
                __m512i lo, hi;
                if (Q5) { /* q5_vals: bits 2i, 2i + 1 of qh to bits 3, 4; v ^ lo is bits 5-7 alone */
                    const __m512i h = halves512(((const block_q5_Kx8 *)(const void *)B0)->qh + 32 * c,
                                                ((const block_q5_Kx8 *)(const void *)B1)->qh + 32 * c);
                    const __m512i sh = i < 2 ? _mm512_slli_epi16(h, 3 - 2 * i) : _mm512_srli_epi16(h, 2 * i - 3);
                    lo = _mm512_and_si512(v, m1f);
                    hi = _mm512_or_si512(_mm512_srli_epi16(_mm512_xor_si512(v, lo), 5), _mm512_and_si512(sh, m18));
                } else
                    lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                #pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const int8_t *xb = x->qs + (size_t)(t0 + t) * cols + (size_t)p * QK_K + 64 * i + 4 * c;
                    il[t] = _mm512_dpbusd_epi32(c ? il[t] : z, lo, bcast32(xb));
                    ih[t] = _mm512_dpbusd_epi32(c ? ih[t] : z, hi, bcast32(xb + 32));
                }
            }
            /* the scales of sub-blocks 2i and 2i + 1: bytes 2i % 4 and 2i % 4 + 1 of S[i / 2] */
            const __m512i sl = _mm512_and_si512(_mm512_srli_epi32(S[i / 2], 16 * (i % 2)), ff),
                          sh = _mm512_and_si512(_mm512_srli_epi32(S[i / 2], 16 * (i % 2) + 8), ff);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const float *d = x->d + (size_t)(t0 + t) * nsub + (size_t)p * 8 + 2 * i;
                in[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(il[t], sl)), _mm512_set1_ps(d[0]), in[t]);
                in[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(ih[t], sh)), _mm512_set1_ps(d[1]), in[t]);
            }
        }
        const __m512 dv = halves16(KX8(Q5, B0, d), KX8(Q5, B1, d)), mv = halves16(KX8(Q5, B0, dmin), KX8(Q5, B1, dmin));
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            /* the mins' term: sum_s m_s ds_s, s in order */
            const float *ds = x->ds + (size_t)(t0 + t) * nsub + (size_t)p * 8;
            const __m512 f0 = _mm512_cvtepi32_ps(_mm512_and_si512(M[0], ff));
            __m512 mn = Q5 ? _mm512_mul_ps(f0, _mm512_set1_ps(ds[0])) : _mm512_fmadd_ps(f0, _mm512_set1_ps(ds[0]), _mm512_setzero_ps());
            #pragma GCC unroll 8
            for (int s = 1; s < 8; s++)
                mn = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(M[s / 4], 8 * (s % 4)), ff)),
                                     _mm512_set1_ps(ds[s]), mn);
            acc[t] = _mm512_fnmadd_ps(mn, mv, _mm512_fmadd_ps(in[t], dv, acc[t]));
        }
    }
    pair_store(out, ldo, acc, g, gs, r0, r1, t0, NT);
}
#undef KX8

VNNI_TARGET INL void q4_kx8_tile2g_vnni(float *out, size_t ldo, const block_q4_Kx8 *W, int nb, const q8_act *x, int g,
                                        int gs, int r0, int r1, int t0, int NT) {
    kx8_tile2g_vnni(out, ldo, W, nb, x, g, gs, r0, r1, t0, NT, 0);
}

/* KX8_MV512: the AVX-512 q4_kx8 / q5_kx8 matvec: two groups half the range
 * apart a vector (two long weight streams), 4 tokens a tile, one token
 * too (AVX2's one-token tiles were bound by their instructions: one Zen 5
 * thread, T = 1, q5_kx8 in L2 43-47 -> 64 GB/s, from a 100 MB matrix 31 ->
 * 48; q4_kx8 L2 56 -> 75-79, memory 37-38 -> 45-46); the odd group over by
 * MANY, the rows % 8 last rows by the plain kernel PLAIN */
#define KX8_MV512(NAME, BLK, TILE2G, MANY, PLAIN)                                                                  \
    VNNI_TARGET void NAME(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) { \
        const q8_act *x = xv;                                                                                    \
        const BLK *W = Wv;                                                                                       \
        const int nb = cols / QK_K, G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;                \
        int g = r0 / 8;                                                                                          \
        PAIR_WALK(TILE2G, 4, T_CASES4);                                                                          \
        if (g < g1) MANY(out, ldo, W, nb, x, g, g1, r0, r1, T);                                                  \
        if (r1 > 8 * G) PLAIN(out, ldo, Wv, cols, r0 > 8 * G ? r0 : 8 * G, r1, xv, T);                           \
    }

KX8_MV512(mv_q4_kx8_avx512, block_q4_Kx8, q4_kx8_tile2g_vnni, q4_kx8_many, mv_q4_k_avx2)

/* ---------------------------------------------------------------- q6_k lanes */

/* 16 values of each of 8 rows from q6_kx8's 96 bytes at qs (repack.h):
 * o[m] lane j = values 4m..4m+3 of the sub-block of row j */
INL void q6x_unpack(__m256i *o, const uint8_t *qs) {
    const __m256i m6 = _mm256_set1_epi8(0x3f);
    const __m256i a = _mm256_loadu_si256((const __m256i *)qs), b = _mm256_loadu_si256((const __m256i *)(qs + 32)),
                  c = _mm256_loadu_si256((const __m256i *)(qs + 64));
    o[0] = _mm256_and_si256(a, m6), o[1] = _mm256_and_si256(b, m6), o[2] = _mm256_and_si256(c, m6);
    /* the top two bits of a, b, c to bits 0-1, 2-3, 4-5: masked first (~m6), then 16-bit shifts (nothing
     * crosses bytes; one mask register where the shift-then-mask order took three) */
    o[3] = _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(_mm256_andnot_si256(m6, a), 6),
                                           _mm256_srli_epi16(_mm256_andnot_si256(m6, b), 4)),
                           _mm256_srli_epi16(_mm256_andnot_si256(m6, c), 2));
}

/* Q6_K with one row per lane, as q4_k (q6_kx8, repack.h's layout and bit
 * order, and plain rows gathered 8 at a time: the same values in the same
 * vectors, so the same bits). Per 32-block b of a super-block, q[k] (k =
 * 0..7) holds values 4k..4k+3 (q = 0..63) of each of the 8 rows (lane j:
 * row j), sub-block 2b in q[0..3], 2b + 1 in q[4..7]. Per token and
 * sub-block: maddubs by the token's 4 matching int8 broadcast, 4 summed in
 * int16 (wrapping adds), minus c16 (q8_act: 32 x the same pairs of x) gives
 * sum (q - 32) x over 8 products per int16, |.| <= 8 * 32 * 127 < 2^15:
 * exact; madd by the rows' int16 scales (sc, sc in each lane), the two
 * sub-blocks added in int32 (|.| < 2^24: float exact), then
 * in += float(isum) * dx; per super-block acc += d * in. */
INL void q6_block(__m256 *in, __m256i *q, const uint8_t *qs, __m256i sc16, const q8_act *x, size_t cols, size_t blk, int t0,
                  int NT) {
    const __m256i dupA = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1, 0, 1, 4, 5, 4, 5, 8,
                                          9, 8, 9, 12, 13, 12, 13);
    const __m256i sc[2] = {_mm256_shuffle_epi8(sc16, dupA), _mm256_shuffle_epi8(sc16, _mm256_add_epi8(dupA, _mm256_set1_epi8(2)))};
    __m256i i32[4];
    #pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        if (qs) q6x_unpack(q + 4 * h, qs + 96 * h); /* q6_kx8: unpacked here, 4 vectors live */
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const size_t tt = (size_t)(t0 + t);
            /* 4 int8 of x as one float's bits: a broadcast load */
            const float *xb = (const float *)(const void *)(x->qs + tt * cols + blk * QK8_0 + 16 * h);
            __m256i xv[4];
            #pragma GCC unroll 4
            for (int m = 0; m < 4; m++) xv[m] = _mm256_castps_si256(_mm256_broadcast_ss(xb + m));
            const __m256i c = _mm256_castps_si256(_mm256_broadcast_ss((const float *)(const void *)(x->c16 + tt * (cols / 16) + 2 * blk + h)));
            __m256i s = _mm256_maddubs_epi16(q[4 * h], xv[0]);
            #pragma GCC unroll 3
            for (int m = 1; m < 4; m++) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[4 * h + m], xv[m]));
            const __m256i p = _mm256_madd_epi16(_mm256_sub_epi16(s, c), sc[h]);
            i32[t] = h ? _mm256_add_epi32(i32[t], p) : p;
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        in[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32[t]), _mm256_broadcast_ss(x->d + (size_t)(t0 + t) * (cols / QK8_0) + blk), in[t]);
}

/* the 32 values 0..63 of 32-block g (0..7) of a plain super-block in
 * ggml's order: in each half of 128, values 0-31 are the low nibbles of
 * ql[0..32) | qh bits 0-1 << 4, 32-63 low of ql[32..64) | bits 2-3, 64-95
 * high of ql[0..32) | bits 4-5, 96-127 high of ql[32..64) | bits 6-7 */
INL __m256i q6_group(const block_q6_K *b, int g) {
    const int h = g / 4, sub = g % 4;
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256i ql = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (sub & 1)));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    __m256i lo = _mm256_and_si256(sub < 2 ? ql : _mm256_srli_epi16(ql, 4), m4);
    /* bits 2sub, 2sub+1 of qh to bits 4-5 (16-bit shifts: the mask drops what crosses bytes) */
    qh = sub == 0 ? _mm256_slli_epi16(qh, 4) : sub == 1 ? _mm256_slli_epi16(qh, 2) : sub == 2 ? qh : _mm256_srli_epi16(qh, 2);
    return _mm256_or_si256(lo, _mm256_and_si256(qh, m30));
}

/* q[k] of 32-block g of plain super-blocks s[0..7]: each row's 32 values,
 * then the 8 x 8 transpose of their 4-byte pieces */
INL void q6_gather(__m256i *q, const block_q6_K *const *s, int g) {
    __m256i v[8];
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) v[j] = q6_group(s[j], g);
    dword_transpose8(q, v);
}

/* q6_kx8's prefetch distance: 2 KB ahead of each group (a super-block of 8 rows is 1680 bytes) */
#ifndef Q6X_PF
#define Q6X_PF 2048
#endif

/* super-block p of q6_kx8 group B times NT (<= 4) tokens into acc */
INL void q6_lanes(__m256 *acc, const block_q6_Kx8 *B, const q8_act *x, int nb, int p, int t0, int NT) {
    const size_t cols = (size_t)nb * QK_K;
    __m256 in[4];
    __m256i q[8];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) in[t] = _mm256_setzero_ps();
    for (int b = 0; b < 8; b++) {
        const uint8_t *qs = B->qs + 192 * b;
        /* spread over the super-block: a burst of 27 at once read slower */
        for (int o = 0; o < 192; o += 64) _mm_prefetch((const char *)qs + Q6X_PF + o, _MM_HINT_T0);
        q6_block(in, q, qs, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(B->scales + 16 * b))), x, cols,
                 (size_t)p * 8 + b, t0, NT);
    }
    const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B->d));
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_fmadd_ps(in[t], dv, acc[t]);
}

/* q6_lanes for plain super-blocks s[0..7] (d and sc in q6_kx8's order
 * given) and up to 16 tokens, 4 at a time: each 32-block gathered once for
 * all of them; the same operations per token as q6_lanes, so the same bits */
INL void q6_plain_lanes(__m256 *acc, const uint16_t *d, const int8_t *sc, const block_q6_K *const *s, const q8_act *x,
                        int nb, int p, int t0, int NT) {
    const size_t cols = (size_t)nb * QK_K;
    __m256 in[16];
    __m256i q[8];
    for (int t = 0; t < NT; t++) in[t] = _mm256_setzero_ps();
    #pragma GCC unroll 8 /* q6_group's shifts are constants */
    for (int b = 0; b < 8; b++) {
        q6_gather(q, s, b);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(sc + 16 * b)));
        const size_t blk = (size_t)p * 8 + b;
        for (int k = 0; k < NT; k += 4) switch (NT - k < 4 ? NT - k : 4) {
            case 4: q6_block(in + k, q, NULL, sc16, x, cols, blk, t0 + k, 4); break;
            case 3: q6_block(in + k, q, NULL, sc16, x, cols, blk, t0 + k, 3); break;
            case 2: q6_block(in + k, q, NULL, sc16, x, cols, blk, t0 + k, 2); break;
            default: q6_block(in + k, q, NULL, sc16, x, cols, blk, t0 + k, 1); break;
            }
    }
    const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d));
    for (int t = 0; t < NT; t++) acc[t] = _mm256_fmadd_ps(in[t], dv, acc[t]);
}

/* q6_k's prefetch distance for plain rows: 512 bytes (2.4 super-blocks)
 * ahead of each row (measured with the one-row-per-stream kernel before,
 * bench_matvec decode 102400 x 1024: 1024 14.5-15.1 GB/s, 512 17.3-17.8) */
#ifndef Q6_PF
#define Q6_PF 512
#endif

/* plain rows rows[0..7] times NT (<= 16) tokens: per super-block the 8
 * rows' half scales and int8 scales put in q6_kx8's order (one 8 x 8
 * transpose of 2-byte pieces), then q6_plain_lanes */
INL void q6_k_tile(float *out, size_t ldo, const block_q6_K *W, int nb, const q8_act *x, const int *rows,
                   const int *keep, int t0, int NT) {
    __m256 acc[16];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q6_K *s[8];
        uint16_t d[8];
        int8_t sc[128];
        __m128i v[8], u[8];
        for (int j = 0; j < 8; j++) {
            s[j] = W + (size_t)rows[j] * nb + p;
            for (int o = 0; o < (int)sizeof *s[j]; o += 64) _mm_prefetch((const char *)s[j] + Q6_PF + o, _MM_HINT_T0);
            d[j] = s[j]->d;
            v[j] = _mm_loadu_si128((const __m128i *)s[j]->scales); /* word b: scales 2b, 2b + 1 */
        }
        for (int j = 0; j < 8; j += 2) u[j] = _mm_unpacklo_epi16(v[j], v[j + 1]), u[j + 1] = _mm_unpackhi_epi16(v[j], v[j + 1]);
        for (int j = 0; j < 8; j += 4) {
            v[j] = _mm_unpacklo_epi32(u[j], u[j + 2]), v[j + 1] = _mm_unpackhi_epi32(u[j], u[j + 2]);
            v[j + 2] = _mm_unpacklo_epi32(u[j + 1], u[j + 3]), v[j + 3] = _mm_unpackhi_epi32(u[j + 1], u[j + 3]);
        }
        /* v[0..3]: words 0-1, 2-3, 4-5, 6-7 of rows 0-3; v[4..7] of rows 4-7 */
        for (int k = 0; k < 4; k++) {
            _mm_storeu_si128((__m128i *)(sc + 32 * k), _mm_unpacklo_epi64(v[k], v[k + 4]));
            _mm_storeu_si128((__m128i *)(sc + 32 * k + 16), _mm_unpackhi_epi64(v[k], v[k + 4]));
        }
        q6_plain_lanes(acc, d, sc, s, x, nb, p, t0, NT);
    }
    for (int t = 0; t < NT; t += 4) lanes_store(out, ldo, acc + t, keep, t0 + t, NT - t < 4 ? NT - t : 4);
}

/* 8 rows an eighth of [r0, r1) apart (eight long weight streams; 8
 * adjacent rows are 8 streams of a few hundred bytes, which read 2-3x
 * slower from memory), tokens 16 at a time (a 32-block gathered once for
 * them); the rows left 8 adjacent ones, the last group filled up with its
 * last row (computed, not written). Lanes never mix: a row's bits do not
 * depend on its neighbours. */
void mv_q6_k_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q6_K *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK_K;
    int rows[8], keep[8];
    const int q = (r1 - r0) / 8;
    for (int k = 0; k < q; k++) {
        for (int j = 0; j < 8; j++) rows[j] = keep[j] = r0 + k + j * q;
        if (T == 1) q6_k_tile(out, ldo, W, nb, x, rows, keep, 0, 1);
        else
            for (int t0 = 0; t0 < T; t0 += 16) q6_k_tile(out, ldo, W, nb, x, rows, keep, t0, T - t0 < 16 ? T - t0 : 16);
    }
    for (int r = r0 + 8 * q; r < r1; r += 8) {
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        for (int t0 = 0; t0 < T; t0 += 16) q6_k_tile(out, ldo, W, nb, x, rows, keep, t0, T - t0 < 16 ? T - t0 : 16);
    }
}


/* one q6_kx8 group g times NT tokens, lane j = row 8g + j; rows outside
 * [r0, r1) computed, not written */
INL void q6_kx8_tile(float *out, size_t ldo, const block_q6_Kx8 *W, int nb, const q8_act *x, int g, int r0, int r1,
                     int t0, int NT) {
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q6_Kx8 *B = W + (size_t)g * nb + p;
        for (int o = 0; o < 192; o += 64) _mm_prefetch((const char *)B + Q6X_PF + o, _MM_HINT_T0); /* d, scales */
        q6_lanes(acc, B, x, nb, p, t0, NT);
    }
    groups_store(out, ldo, acc, 4, g, 0, 1, r0, r1, t0, NT);
}

/* one token and 4 groups g + i gs, the loops turned as in q4_0x8_tile1x4:
 * per half h of a 32-block, the token's 4 activation broadcasts and its c16
 * serve the 4 groups (each group's 96 bytes loaded once, unpacked and
 * multiplied at once), so the broadcasts are loaded a quarter as often
 * (gcc keeps the 5 broadcasts and the mask in registers, the first half's 4
 * int32 sums and the 4 float sums on the stack: a few stores and loads per
 * 32-block; 2 or 3 groups, fewer spills, were no faster in L2). The same
 * integer sums (wrapping int16 adds: any order) and
 * the same float operations per lane as q6_lanes: the same bits.
 * No software prefetch: the hardware's alone reads the 4 streams faster
 * (from memory, 1 thread, 102400 x 1024, huge pages, paired runs against
 * the one-stream kernel before, which prefetched 2 KB ahead: none 1.26x
 * (31-33 GB/s, 25-26 before), 1 KB ahead 1.01-1.05x, 2 KB 0.88x; a second
 * prefetch 4-8 KB ahead into L2 0.82-0.85x). */
INL void q6_kx8_tile1x4(float *out, size_t ldo, const block_q6_Kx8 *W, int nb, const q8_act *x, int g, int gs,
                        int r0, int r1) {
    enum { NG = 4 };
    const __m256i m6 = _mm256_set1_epi8(0x3f);
    const __m256i dupA = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1, 0, 1, 4, 5, 4, 5, 8,
                                          9, 8, 9, 12, 13, 12, 13);
    __m256 acc[NG];
    #pragma GCC unroll 4
    for (int i = 0; i < NG; i++) acc[i] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q6_Kx8 *B[NG];
        __m256 in[NG];
        #pragma GCC unroll 4
        for (int i = 0; i < NG; i++) {
            B[i] = W + (size_t)(g + i * gs) * nb + p;
            in[i] = _mm256_setzero_ps();
        }
        for (int b = 0; b < 8; b++) {
            const size_t blk = (size_t)p * 8 + b;
            __m256i i32[NG];
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const float *xb = (const float *)(const void *)(x->qs + blk * QK8_0 + 16 * h);
                const __m256i x0 = _mm256_castps_si256(_mm256_broadcast_ss(xb)),
                              x1 = _mm256_castps_si256(_mm256_broadcast_ss(xb + 1)),
                              x2 = _mm256_castps_si256(_mm256_broadcast_ss(xb + 2)),
                              x3 = _mm256_castps_si256(_mm256_broadcast_ss(xb + 3)),
                              c = _mm256_castps_si256(_mm256_broadcast_ss((const float *)(const void *)(x->c16 + 2 * blk + h)));
                #pragma GCC unroll 8
                for (int i = 0; i < NG; i++) {
                    const uint8_t *qs = B[i]->qs + 192 * b + 96 * h;
                    const __m256i va = _mm256_loadu_si256((const __m256i *)qs),
                                  vb = _mm256_loadu_si256((const __m256i *)(qs + 32)),
                                  vc = _mm256_loadu_si256((const __m256i *)(qs + 64));
                    /* the top two bits of each byte, masked first (~m6), then shifted in 16 bits: nothing crosses bytes */
                    const __m256i d = _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(_mm256_andnot_si256(m6, va), 6),
                                                                      _mm256_srli_epi16(_mm256_andnot_si256(m6, vb), 4)),
                                                      _mm256_srli_epi16(_mm256_andnot_si256(m6, vc), 2));
                    __m256i s = _mm256_maddubs_epi16(_mm256_and_si256(va, m6), x0);
                    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(vb, m6), x1));
                    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(vc, m6), x2));
                    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(d, x3));
                    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(B[i]->scales + 16 * b)));
                    const __m256i sc = _mm256_shuffle_epi8(sc16, h ? _mm256_add_epi8(dupA, _mm256_set1_epi8(2)) : dupA);
                    const __m256i pr = _mm256_madd_epi16(_mm256_sub_epi16(s, c), sc);
                    i32[i] = h ? _mm256_add_epi32(i32[i], pr) : pr;
                }
            }
            const __m256 dx = _mm256_broadcast_ss(x->d + blk);
            #pragma GCC unroll 4
            for (int i = 0; i < NG; i++) in[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32[i]), dx, in[i]);
        }
        #pragma GCC unroll 4
        for (int i = 0; i < NG; i++) acc[i] = _mm256_fmadd_ps(in[i], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[i]->d)), acc[i]);
    }
    groups_store(out, ldo, acc, 1, g, gs, NG, r0, r1, 0, 1);
}

X8_MV(mv_q6_kx8_avx2, block_q6_Kx8, QK_K, q6_kx8_tile1x4, (void)0, q6_kx8_tile, mv_q6_k_avx2)

/* ---------------------------------------------------------------- q6_kx8, AVX-512 */

/* Two groups g, g + gs (lanes 0-7, 8-15) of q6_kx8 in 512-bit vectors, by
 * vpdpbusd: per sub-block of 16 and token, minus 32 times the sub-block's
 * sum of x plus the four dwords of q (0..63) times the token's matching x
 * bytes, one int32 chain (exact), times the row's scale (vpmulld): the
 * integer q6_lanes makes in int16 pieces (exact there too), so the same
 * integers and the same float steps per lane: the same bits as
 * q6_kx8_tile. Each x broadcast and each vpdpbusd serve 16 rows where
 * AVX2's maddubs serves 8 with two products an int16. */

/* the rows' scales of sub-blocks 2b (sc[0]: even bytes) and 2b + 1 (sc[1]) of
 * super-blocks B0 (lanes 0-7) and B1 (8-15) */
VNNI_TARGET INL void q6_2g_scales(__m512i *sc, const block_q6_Kx8 *B0, const block_q6_Kx8 *B1, int b) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i s0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(B0->scales + 16 * b))),
                  s1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(B1->scales + 16 * b)));
    sc[0] = _mm512_permutex2var_epi32(s0, even, s1);
    sc[1] = _mm512_permutex2var_epi32(s0, _mm512_add_epi32(even, _mm512_set1_epi32(1)), s1);
}

/* the 4 dword vectors (values 0..63) of half h of 32-block b, B0's 8 rows
 * then B1's */
VNNI_TARGET INL void q6_2g_unpack(__m512i *q, const block_q6_Kx8 *B0, const block_q6_Kx8 *B1, int b, int h) {
    const __m512i m6 = _mm512_set1_epi8(0x3f);
    const uint8_t *q0 = B0->qs + 192 * b + 96 * h, *q1 = B1->qs + 192 * b + 96 * h;
    __m512i v[3];
    #pragma GCC unroll 3
    for (int m = 0; m < 3; m++)
        v[m] = halves512(q0 + 32 * m, q1 + 32 * m);
    /* the top two bits of each byte, masked first, then shifted in 16 bits: nothing crosses bytes */
    q[3] = _mm512_or_si512(_mm512_or_si512(_mm512_srli_epi16(_mm512_andnot_si512(m6, v[0]), 6),
                                           _mm512_srli_epi16(_mm512_andnot_si512(m6, v[1]), 4)),
                           _mm512_srli_epi16(_mm512_andnot_si512(m6, v[2]), 2));
    q[0] = _mm512_and_si512(v[0], m6), q[1] = _mm512_and_si512(v[1], m6), q[2] = _mm512_and_si512(v[2], m6);
}

/* sum (q - 32) x times the row's scale, over sub-block half h of 32-block
 * blk, token tt: one int32 chain seeded with -32 sum x (c16's two int16
 * halves summed and negated by vpmaddwd with -1s, exact), then the four
 * dwords of q times the matching x bytes (exact in int32). One vector
 * instruction where the scalar sum, its broadcast, the zeroed chains and
 * their subtraction took six: in L2, one Zen 5 thread, T = 2 / 4 / 8
 * read 49 / 29 / 15 GB/s before, 66 / 40 / 22 after. */
VNNI_TARGET INL __m512i q6_2g_dot(const __m512i *q, __m512i sc, const q8_act *x, size_t cols, size_t tt, size_t blk,
                                  int h) {
    const int8_t *xb = x->qs + tt * cols + blk * QK8_0 + 16 * h;
    __m512i s = _mm512_madd_epi16(bcast32(x->c16 + tt * (cols / 16) + 2 * blk + h), _mm512_set1_epi16(-1));
    #pragma GCC unroll 4
    for (int m = 0; m < 4; m++) s = _mm512_dpbusd_epi32(s, q[m], bcast32(xb + 4 * m));
    return _mm512_mullo_epi32(s, sc);
}

/* groups g, g + gs and NT (1..8) tokens: both halves of a 32-block
 * unpacked first (8 vectors), then each token's two sub-block sums at once,
 * so per token only its float sum stays live (in[]; acc[] is touched once a
 * super-block). The same integers and float steps per lane as q6_lanes:
 * the same bits. Tokens 8 at a time: in L2, T = 4 / 8 read 40.5 / 21.8
 * GB/s against 38 / 19.5 for tiles of 4 (the halves one at a time, each
 * token's int32 sums live across them). Software prefetch from 3 tokens:
 * from memory (one thread, 102400 x 1024, two runs each) T = 3 / 4 / 8
 * 36-37 / 24-25 / 10 GB/s without, 41-42 / 36-37 / 15-17 with 4 KB ahead
 * (2 KB: 34-37 / 27-29 / 14-15; 8 KB: T = 8 13-14) */
VNNI_TARGET INL void q6_kx8_tile2g8_vnni(float *out, size_t ldo, const block_q6_Kx8 *W, int nb, const q8_act *x, int g,
                                         int gs, int r0, int r1, int t0, int NT) {
    const size_t cols = (size_t)nb * QK_K;
    __m512 acc[8];
    #pragma GCC unroll 8
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q6_Kx8 *B0 = W + (size_t)g * nb + p, *B1 = B0 + (size_t)gs * nb;
        __m512 in[8];
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) in[t] = _mm512_setzero_ps();
        for (int b = 0; b < 8; b++) {
            const size_t blk = (size_t)p * 8 + b;
            if (NT >= 3) /* 4 KB ahead from 3 tokens (below, the hardware's alone is as fast) */
                for (int o = 0; o < 192; o += 64)
                    _mm_prefetch((const char *)(B0->qs + 192 * b) + 4096 + o, _MM_HINT_T0),
                        _mm_prefetch((const char *)(B1->qs + 192 * b) + 4096 + o, _MM_HINT_T0);
            __m512i sc[2], q[8];
            q6_2g_scales(sc, B0, B1, b);
            q6_2g_unpack(q, B0, B1, b, 0);
            q6_2g_unpack(q + 4, B0, B1, b, 1);
            #pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const size_t tt = (size_t)(t0 + t);
                const __m512i i32 = _mm512_add_epi32(q6_2g_dot(q, sc[0], x, cols, tt, blk, 0), q6_2g_dot(q + 4, sc[1], x, cols, tt, blk, 1));
                in[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i32), _mm512_set1_ps(x->d[tt * (cols / QK8_0) + blk]), in[t]);
            }
        }
        const __m512 dv = halves16(B0->d, B1->d);
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[t] = _mm512_fmadd_ps(in[t], dv, acc[t]);
    }
    pair_store(out, ldo, acc, g, gs, r0, r1, t0, NT);
}

/* one token and 4 groups g + i gs, as two pairs (g, g + 2gs) and
 * (g + gs, g + 3gs) side by side: four weight streams, as AVX2's
 * q6_kx8_tile1x4, each vpdpbusd serving 16 rows. The same bits as
 * q6_kx8_tile. */
VNNI_TARGET INL void q6_kx8_tile1x4_vnni(float *out, size_t ldo, const block_q6_Kx8 *W, int nb, const q8_act *x, int g,
                                         int gs, int r0, int r1) {
    const size_t cols = (size_t)nb * QK_K;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int p = 0; p < nb; p++) {
        const block_q6_Kx8 *B[2][2];
        __m512 in[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        #pragma GCC unroll 2
        for (int k = 0; k < 2; k++) B[k][0] = W + (size_t)(g + k * gs) * nb + p, B[k][1] = B[k][0] + (size_t)2 * gs * nb;
        for (int b = 0; b < 8; b++) {
            const size_t blk = (size_t)p * 8 + b;
            #pragma GCC unroll 2
            for (int k = 0; k < 2; k++) /* T1_PF ahead in each stream (q4_0x8_tile1x4_zmm says why) */
                for (int e = 0; e < 2; e++)
                    for (int o = 0; o < 192; o += 64) _mm_prefetch((const char *)(B[k][e]->qs + 192 * b) + T1_PF + o, _MM_HINT_T0);
            __m512i i32[2];
            #pragma GCC unroll 2
            for (int k = 0; k < 2; k++) {
                __m512i sc[2], q[4];
                q6_2g_scales(sc, B[k][0], B[k][1], b);
                #pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    q6_2g_unpack(q, B[k][0], B[k][1], b, h);
                    const __m512i pr = q6_2g_dot(q, sc[h], x, cols, 0, blk, h);
                    i32[k] = h ? _mm512_add_epi32(i32[k], pr) : pr;
                }
            }
            const __m512 dx = _mm512_set1_ps(x->d[blk]);
            #pragma GCC unroll 2
            for (int k = 0; k < 2; k++) in[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i32[k]), dx, in[k]);
        }
        #pragma GCC unroll 2
        for (int k = 0; k < 2; k++) acc[k] = _mm512_fmadd_ps(in[k], halves16(B[k][0]->d, B[k][1]->d), acc[k]);
    }
    #pragma GCC unroll 2
    for (int k = 0; k < 2; k++) pair_store(out, ldo, acc + k, g + k * gs, 2 * gs, r0, r1, 0, 1);
}

/* the AVX-512 q6_kx8 matvec: one token by 4 groups in two pairs, more than
 * one with two groups a vector, tokens 8 at a time */
X8_MV512(mv_q6_kx8_avx512, block_q6_Kx8, QK_K, q6_kx8_tile1x4_vnni, q6_kx8_tile2g8_vnni, 8, T_CASES8, q6_kx8_tile, mv_q6_k_avx2)

/* ---------------------------------------------------------------- q5_k lanes */

/* Q5_K with one ROW per lane, as q4_k (q5_kx8 in repack.h's bit order, and
 * plain rows gathered 8 at a time into Q4_K's places with ggml's bits: the
 * same integers, so the same bits). w = d sc q - dmin m per 32, q = 0..31.
 * Per pair i of sub-blocks and chunk c: 32 bytes of qs (4 bytes of each
 * row) and 32 of qh at qh + 32c give 4 values of sub-blocks 2i and 2i + 1
 * of each row (q5_vals: 6 operations in q5_kx8's order, 9 in ggml's);
 * maddubs by the token's 4 matching int8 broadcast, 4 chunks summed in
 * int16 (4 x 2 x 31 x 127 < 2^15: exact), madd by the row's 6-bit scale to
 * int32, a sub-block's two halves added; in += float(isum) * dx per
 * sub-block; then acc += d * in - dmin * sum_s m_s ds_s (q8_act.ds). Every
 * integer is exact, so the float operations alone fix the bits: per (lane,
 * token) the same ones in the same order whatever NG, NT and the layout.
 * Chunk-outer: a chunk's two broadcasts serve the NG groups' (or a group's
 * tokens') int16 sums, all in registers (objdump of the NG = 3 loop: the
 * int32 half sums and some of the float sums stored and read back once a
 * pair, the scales and mins unpacked to the stack once a super-block;
 * nothing else). L2, 1 thread, T = 1 on Zen 3: 2 groups 25 GB/s, 28.6
 * without the prefetch (Q5X_PF), 3 groups with q5_vals' PIN 29.3 (the
 * ggml-order kernel before, 4 rows x 1 token: 13.8). 4 groups were slower
 * (24-27: gcc spilled the sums and the masks, ~450 stack operands a
 * super-block against ~210 for 3); llvm-mca finds the four vector pipes
 * and the two 256-bit load ports both near full (about 4 cycles per 64
 * weights of a group), so what is left to cut is operations. */

/* the weights' prefetch distances in bytes: per group of q5_kx8 (a
 * super-block of 8 rows is 1408 bytes), per plain row. The one-token tiles
 * of several groups prefetch nothing (measured with 2 groups): its 22 prefetches per group and
 * super-block took load slots from a loop bound by its loads and vector
 * ALUs, and the hardware's prefetcher alone reads its two streams faster
 * (1 thread, T = 1, same run: L2 24.0 -> 28.6 GB/s; from memory, 102400 x
 * 1024, 20.7-21.1 -> 21.9-22.0, membw_read 28-29). Tiles of one group (2+
 * tokens) keep it (from memory, T = 4: 8.1 with, 7.6 without). */
#ifndef Q5X_PF
#define Q5X_PF 2048
#endif
#ifndef Q5_PF
#define Q5_PF 512
#endif

/* bit k of each byte of h at bit 4, the rest cleared (k constant: one
 * 16-bit shift, none for k = 4; the mask drops what crosses bytes) */
INL __m256i q5_bit4(__m256i h, int k) {
    const __m256i s = k < 4 ? _mm256_slli_epi16(h, 4 - k) : k > 4 ? _mm256_srli_epi16(h, k - 4) : h;
    return _mm256_and_si256(s, _mm256_set1_epi8(0x10));
}

/* a q5_kx8 super-block's scales (sc[s]: lane j = row j's 6-bit scale of
 * sub-block s in both int16) and mins (mf[s]: lane j = its min as float),
 * unpacked as k4_scales_mins does for one row */
INL void q5k_scales(const block_q5_Kx8 *B, __m256i *sc, __m256 *mf) {
    const __m256i m4 = _mm256_set1_epi8(15), m6 = _mm256_set1_epi8(0x3f), m2 = _mm256_set1_epi8(3);
    const __m256i U0 = _mm256_loadu_si256((const __m256i *)B->scales),
                  U1 = _mm256_loadu_si256((const __m256i *)(B->scales + 32)),
                  U2 = _mm256_loadu_si256((const __m256i *)(B->scales + 64));
    __m256i S[2], M[2];
    S[0] = _mm256_and_si256(U0, m6);
    S[1] = _mm256_or_si256(_mm256_and_si256(U2, m4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(U0, 6), m2), 4));
    M[0] = _mm256_and_si256(U1, m6);
    M[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(U2, 4), m4),
                           _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(U1, 6), m2), 4));
    const __m256i lane = _mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 0, 0, 0, 0, 4, 4, 4, 4,
                                          8, 8, 8, 8, 12, 12, 12, 12);
    #pragma GCC unroll 8
    for (int s = 0; s < 8; s++) {
        /* byte s % 4 of the lane into both int16 (zero high bytes); the min into an int32 */
        const unsigned b = (unsigned)(s % 4);
        const __m256i cs = _mm256_set1_epi32((int)(b | 0x80u << 8 | b << 16 | 0x80u << 24)),
                      cm = _mm256_set1_epi32((int)(0x80808000u | b));
        sc[s] = _mm256_shuffle_epi8(S[s / 4], _mm256_add_epi8(cs, lane));
        mf[s] = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(M[s / 4], _mm256_add_epi8(cm, lane)));
    }
}

/* the 4 values of sub-blocks 2i (*lo) and 2i + 1 (*hi) of each row in q
 * (32 bytes of qs) and h (qh + 32c): q5_kx8's bits (repack.h), or GG:
 * ggml's (q5_gather's form) */
INL void q5_vals(__m256i q, __m256i h, int i, int GG, int PIN, __m256i *lo, __m256i *hi) {
    if (GG) {
        const __m256i m4 = _mm256_set1_epi8(15);
        *lo = _mm256_or_si256(_mm256_and_si256(q, m4), q5_bit4(h, 2 * i));
        *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), q5_bit4(h, 2 * i + 1));
        return;
    }
    /* bits 2i, 2i + 1 of h to bits 3, 4 (the masks drop what the 16-bit shifts carry across bytes) */
    const __m256i t = i < 2 ? _mm256_slli_epi16(h, 3 - 2 * i) : _mm256_srli_epi16(h, 2 * i - 3);
    *lo = _mm256_and_si256(q, _mm256_set1_epi8(0x1f));
    /* PIN: lo hidden from gcc, which else rewrote q ^ lo as q & 0xe0, a third mask register the tiles of
     * several groups do not have (it read the masks from the stack in every chunk) */
    if (PIN) __asm__("" : "+x"(*lo));
    /* q ^ lo: bits 5-7 alone, so the 16-bit shift carries nothing across bytes */
    *hi = _mm256_or_si256(_mm256_srli_epi16(_mm256_xor_si256(q, *lo), 5), _mm256_and_si256(t, _mm256_set1_epi8(0x18)));
}

/* gcc folded each qs load into two operations (two loads where one does:
 * the loads, as much as the vector ALUs, bound the kernel) and hoisted the
 * next chunks' products above the current sums' adds (spilling them):
 * these empty asm statements pin q and h in registers and keep the sums'
 * order (L2, 1 thread, T = 1: 22.2 GB/s without, 25.3 with) */
#define Q5_LOADED(q, h) __asm__("" : "+x"(q), "+x"(h))
#define Q5_BARRIER(a, b) __asm__ volatile("" : "+x"(a), "+x"(b))

/* super-block p of NG groups B[g] times NT tokens (NG <= 3, NG NT <= 3) into acc[g NT + t];
 * GG: B holds ggml's bits (q5_gather), else q5_kx8's */
INL void q5k_lanes(__m256 *acc, const block_q5_Kx8 *const *B, int NG, int GG, const q8_act *x, int nb, int p, int t0,
                   int NT) {
    const size_t cols = (size_t)nb * QK_K, nsub = cols / QK8_0;
    __m256i sc[3][8];
    __m256 mf[3][8], in[3];
    #pragma GCC unroll 4
    for (int g = 0; g < NG; g++) q5k_scales(B[g], sc[g], mf[g]);
    #pragma GCC unroll 4
    for (int a = 0; a < NG * NT; a++) in[a] = _mm256_setzero_ps();
    #pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m256i il[3], ih[3];
        #pragma GCC unroll 4
        for (int h = 0; h < 2; h++) {
            __m256i sl[3], sh[3];
            #pragma GCC unroll 4
            for (int c = 4 * h; c < 4 * h + 4; c++) {
                __m256i bl[3], bh[3];
                #pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const int8_t *xb = x->qs + (size_t)(t0 + t) * cols + (size_t)p * QK_K + 64 * i + 4 * c;
                    int32_t xl, xh;
                    memcpy(&xl, xb, 4), memcpy(&xh, xb + 32, 4);
                    bl[t] = _mm256_set1_epi32(xl), bh[t] = _mm256_set1_epi32(xh);
                }
                #pragma GCC unroll 4
                for (int g = 0; g < NG; g++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(B[g]->qs + 256 * i + 32 * c)),
                            hb = _mm256_loadu_si256((const __m256i *)(B[g]->qh + 32 * c));
                    Q5_LOADED(q, hb);
                    __m256i lo, hi;
                    q5_vals(q, hb, i, GG, NG > 1, &lo, &hi);
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; t++) {
                        const int a = g * NT + t;
                        const __m256i pl = _mm256_maddubs_epi16(lo, bl[t]), ph = _mm256_maddubs_epi16(hi, bh[t]);
                        sl[a] = c % 4 ? _mm256_add_epi16(sl[a], pl) : pl;
                        sh[a] = c % 4 ? _mm256_add_epi16(sh[a], ph) : ph;
                    }
                }
                #pragma GCC unroll 4
                for (int a = 0; a < NG * NT; a++) Q5_BARRIER(sl[a], sh[a]);
            }
            #pragma GCC unroll 4
            for (int a = 0; a < NG * NT; a++) {
                const __m256i vl = _mm256_madd_epi16(sl[a], sc[a / NT][2 * i]),
                              vh = _mm256_madd_epi16(sh[a], sc[a / NT][2 * i + 1]);
                il[a] = h ? _mm256_add_epi32(il[a], vl) : vl;
                ih[a] = h ? _mm256_add_epi32(ih[a], vh) : vh;
            }
        }
        #pragma GCC unroll 4
        for (int a = 0; a < NG * NT; a++) {
            const size_t sb = (size_t)(t0 + a % NT) * nsub + (size_t)p * 8;
            in[a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(il[a]), _mm256_broadcast_ss(x->d + sb + 2 * i), in[a]);
            in[a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ih[a]), _mm256_broadcast_ss(x->d + sb + 2 * i + 1), in[a]);
        }
    }
    #pragma GCC unroll 4
    for (int a = 0; a < NG * NT; a++) {
        const int g = a / NT;
        const size_t sb = (size_t)(t0 + a % NT) * nsub + (size_t)p * 8;
        __m256 mn = _mm256_mul_ps(mf[g][0], _mm256_broadcast_ss(x->ds + sb));
        #pragma GCC unroll 8
        for (int s = 1; s < 8; s++) mn = _mm256_fmadd_ps(mf[g][s], _mm256_broadcast_ss(x->ds + sb + s), mn);
        const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[g]->d)),
                     mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[g]->dmin));
        acc[a] = _mm256_fnmadd_ps(mn, mv, _mm256_fmadd_ps(in[a], dv, acc[a]));
    }
}

/* 8 plain super-blocks in the plain kernel's form of block_q5_Kx8
 * (repack.h: Q4_K's places and ggml's qh bytes, 4 at a time, ggml's bits)
 * by 8 x 8 dword transposes */
INL void q5_gather(block_q5_Kx8 *g, const block_q5_K *const *src) {
    __m256i v[8], o[8];
    for (int j = 0; j < 8; j++) {
        g->d[j] = src[j]->d, g->dmin[j] = src[j]->dmin;
        ilv_words(g->scales, src[j]->scales, j, 3);
    }
    #pragma GCC unroll 5
    for (int i = 0; i < 5; i++) { /* i = 4: the qh plane */
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) v[j] = _mm256_loadu_si256((const __m256i *)(i < 4 ? src[j]->qs + 32 * i : src[j]->qh));
        dword_transpose8(o, v);
        uint8_t *d = i < 4 ? g->qs + 256 * i : g->qh;
        #pragma GCC unroll 8
        for (int c = 0; c < 8; c++) _mm256_storeu_si256((__m256i *)(d + 32 * c), o[c]);
    }
}

/* tokens 3 at a time, shared out evenly over n = ceil(T / 3) tiles (4 as
 * 2 + 2: L2, 1 thread, T = 4: 8.7 GB/s, 3 + 1 7.7; a tile of 4 spilled,
 * 7.1): tile k's count */
#define Q5_NT(T, n, k) ((T) / (n) + ((k) < (T) % (n)))

/* plain rows rows[0..7] times NT (<= 3) tokens: each super-block column of
 * the 8 rows gathered (q5_gather), then q5k_lanes */
INL void q5_k_tile(float *out, size_t ldo, const block_q5_K *W, int nb, const q8_act *x, const int *rows,
                   const int *keep, int t0, int NT) {
    __m256 acc[3];
    #pragma GCC unroll 3
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q5_K *src[8];
        block_q5_Kx8 g;
        for (int j = 0; j < 8; j++) {
            src[j] = W + (size_t)rows[j] * nb + p;
            for (int o = 0; o < (int)sizeof *src[j]; o += 64) _mm_prefetch((const char *)src[j] + Q5_PF + o, _MM_HINT_T0);
        }
        q5_gather(&g, src);
        const block_q5_Kx8 *B = &g;
        q5k_lanes(acc, &B, 1, 1, x, nb, p, t0, NT);
    }
    lanes_store(out, ldo, acc, keep, t0, NT);
}

/* plain rows rows[0..7] times T tokens, up to 3 a tile (Q5_NT) */
INL void q5_k_rows(float *out, size_t ldo, const block_q5_K *W, int nb, const q8_act *x, const int *rows,
                   const int *keep, int T) {
    for (int k = 0, n = (T + 2) / 3, t0 = 0, nt; k < n; k++, t0 += nt) switch (nt = Q5_NT(T, n, k)) {
        case 3: q5_k_tile(out, ldo, W, nb, x, rows, keep, t0, 3); break;
        case 2: q5_k_tile(out, ldo, W, nb, x, rows, keep, t0, 2); break;
        default: q5_k_tile(out, ldo, W, nb, x, rows, keep, t0, 1); break;
        }
}

/* 8 rows an eighth of [r0, r1) apart (eight long weight streams: 8
 * adjacent rows read from memory at half the speed, bench_matvec decode,
 * T = 4: 3.4 GB/s, apart 6+), the rows left 8 adjacent ones, the last group
 * filled up with its last row (computed, not written) */
void mv_q5_k_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const block_q5_K *W = Wv;
    const q8_act *x = xv;
    const int nb = cols / QK_K, q = (r1 - r0) / 8;
    int rows[8], keep[8];
    for (int k = 0; k < q; k++) {
        for (int j = 0; j < 8; j++) rows[j] = keep[j] = r0 + k + j * q;
        q5_k_rows(out, ldo, W, nb, x, rows, keep, T);
    }
    for (int r = r0 + 8 * q; r < r1; r += 8) {
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        q5_k_rows(out, ldo, W, nb, x, rows, keep, T);
    }
}

/* NG (<= 3) groups g + i gs of q5_kx8 times NT tokens (NG NT <= 3) */
INL void q5_kx8_tile(float *out, size_t ldo, const block_q5_Kx8 *W, int nb, const q8_act *x, int g, int gs, int NG,
                     int r0, int r1, int t0, int NT) {
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int a = 0; a < NG * NT; a++) acc[a] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_q5_Kx8 *B[3];
        #pragma GCC unroll 3
        for (int i = 0; i < NG; i++) {
            B[i] = W + (size_t)(g + i * gs) * nb + p;
            if (NG == 1) /* see Q5X_PF */
                for (int o = 0; o < (int)sizeof *B[i]; o += 64) _mm_prefetch((const char *)B[i] + Q5X_PF + o, _MM_HINT_T0);
        }
        q5k_lanes(acc, B, NG, 0, x, nb, p, t0, NT);
    }
    groups_store(out, ldo, acc, NT, g, gs, NG, r0, r1, t0, NT);
}

/* groups [g, g1) times one token: 3 groups a third apart, then 2 adjacent
 * ones if 2 are left; returns the first group not done. q5_kx8_one and
 * _many are functions of their own (noinline) as q4_kx8_one: L2, T = 1,
 * copies of each binary alternated, 29.0-29.5 -> 29.6-30.1 GB/s */
static __attribute__((noinline)) int q5_kx8_one(float *out, size_t ldo, const block_q5_Kx8 *W, int nb, const q8_act *x,
                                                int g, int g1, int r0, int r1) {
    const int q = (g1 - g) / 3;
    for (int k = 0; k < q; k++) q5_kx8_tile(out, ldo, W, nb, x, g + k, q, 3, r0, r1, 0, 1);
    g += 3 * q;
    if (g1 - g == 2) q5_kx8_tile(out, ldo, W, nb, x, g, 1, 2, r0, r1, 0, 1), g += 2;
    return g;
}

/* groups [g, g1) one at a time times T tokens, up to 3 a tile (Q5_NT) */
static __attribute__((noinline)) void q5_kx8_many(float *out, size_t ldo, const block_q5_Kx8 *W, int nb, const q8_act *x,
                                                  int g, int g1, int r0, int r1, int T) {
    for (; g < g1; g++)
        for (int k = 0, n = (T + 2) / 3, t0 = 0, nt; k < n; k++, t0 += nt) switch (nt = Q5_NT(T, n, k)) {
            case 3: q5_kx8_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 3); break;
            case 2: q5_kx8_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 2); break;
            default: q5_kx8_tile(out, ldo, W, nb, x, g, 0, 1, r0, r1, t0, 1); break;
            }
}

/* one token: 3 groups a third of [r0, r1)'s apart (three weight streams,
 * the activations' broadcasts shared; 2 left over: one tile of 2 adjacent
 * groups); more, one group x up to 3 tokens (Q5_NT); the rows % 8 last rows
 * plain (Q5_K's kernel, the same bits) */
void mv_q5_kx8_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const q8_act *x = xv;
    const block_q5_Kx8 *W = Wv;
    const int nb = cols / QK_K, G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;
    int g = r0 / 8;
    if (T == 1 && g1 > g) g = q5_kx8_one(out, ldo, W, nb, x, g, g1, r0, r1);
    if (g < g1) q5_kx8_many(out, ldo, W, nb, x, g, g1, r0, r1, T);
    if (r1 > 8 * G) mv_q5_k_avx2(out, ldo, Wv, cols, r0 > 8 * G ? r0 : 8 * G, r1, xv, T);
}

/* ---------------------------------------------------------------- q5_kx8, AVX-512 */

/* (kx8_tile2g_vnni, with the Q4_K tiles) */
VNNI_TARGET INL void q5_kx8_tile2g_vnni(float *out, size_t ldo, const block_q5_Kx8 *W, int nb, const q8_act *x, int g,
                                        int gs, int r0, int r1, int t0, int NT) {
    kx8_tile2g_vnni(out, ldo, W, nb, x, g, gs, r0, r1, t0, NT, 1);
}

/* (KX8_MV512, with the Q4_K matvec) */
KX8_MV512(mv_q5_kx8_avx512, block_q5_Kx8, q5_kx8_tile2g_vnni, q5_kx8_many, mv_q5_k_avx2)

/* ---------------------------------------------------------------- fp8 */

/* e4m3 code c as float32 bits: the value times 2^-120 exactly, subnormal
 * codes too: S.EEEE.MMM -> S.0000EEEE.MMM0..0 (M * 2^-9 is the float32
 * denormal M << 20 = M * 2^-129). The NaN codes 0x7f / 0xff read as 480 (a
 * loaded model holds none: load checks).
 *
 * 32 codes at a time, int32 lane m holding codes 4m .. 4m + 3 (one load, no
 * byte shuffle), half of them per call (H = 0: codes 4m and 4m + 2, H = 1:
 * 4m + 1 and 4m + 3), by 16-bit halves: for H = 0 the lane moved up a byte
 * first, then each half holds its code in its top byte (and garbage below);
 * one 16-bit arithmetic shift by 4 puts EEEE.MMM on bits 10-4 and S on bits
 * 15-11; hi = the high halves (code 4m + 2 + H), lo = the low halves moved
 * up (4m + H), each masked to S.0000EEEE.MMM (bits 15, 10-4). Four or five
 * operations for 16 codes (a byte shuffle, a shift, masks, a shift: five).
 * MA: H = 0's two shifts by one maddubs instead, 16 * int8 code (the same
 * bits), which runs beside the shifts but on the FMA units: for the tiles
 * of one pass (NR NT <= 4, fp8_pass), whose decoding outweighs their FMAs
 * (L2, 1 thread, T = 1: 19.5 -> 20.0 GB/s; slower from T = 5). One token
 * has its own unit (fp8_unit below). */
INL void e4m3x16(__m256i c, int H, int MA, __m256 *lo, __m256 *hi) {
    const __m256i m = _mm256_set1_epi32((int)0x87f00000u);
    __m256i v;
    if (H) v = _mm256_srai_epi16(c, 4);
    else if (MA) v = _mm256_maddubs_epi16(_mm256_set1_epi16(16), c);
    else v = _mm256_srai_epi16(_mm256_slli_epi32(c, 8), 4);
    *lo = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(v, 16), m));
    *hi = _mm256_castsi256_ps(_mm256_and_si256(v, m));
}

/* x in the codes' order: per 32 values, X_2H+j = x{4m + H + 2j, m = 0..7}
 * (H, j = 0, 1), times sc: a 4 x 8 transpose */
INL void fp8_xv(const float *x, __m256 sc, __m256 X[4]) {
    const __m256 a0 = _mm256_loadu_ps(x), a1 = _mm256_loadu_ps(x + 8), a2 = _mm256_loadu_ps(x + 16),
                 a3 = _mm256_loadu_ps(x + 24);
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    const __m256i idx = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    /* column k of x[4m + k]: shuffle_ps gives m = 0, 2, 4, 6, 1, 3, 5, 7 */
    const __m256 c0 = _mm256_shuffle_ps(t0, t2, 0x44), c1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 c2 = _mm256_shuffle_ps(t1, t3, 0x44), c3 = _mm256_shuffle_ps(t1, t3, 0xee);
    X[0] = _mm256_mul_ps(_mm256_permutevar8x32_ps(c0, idx), sc); /* k = 0 */
    X[2] = _mm256_mul_ps(_mm256_permutevar8x32_ps(c1, idx), sc); /* k = 1 */
    X[1] = _mm256_mul_ps(_mm256_permutevar8x32_ps(c2, idx), sc); /* k = 2 */
    X[3] = _mm256_mul_ps(_mm256_permutevar8x32_ps(c3, idx), sc); /* k = 3 */
}

/* vector v of 32 values at x in the codes' order: the buffer's (XB), else
 * reordered here (and scaled: XS) */
INL __m256 fp8_x(const float *x, int v, int XS, int XB) {
    if (XB) return _mm256_loadu_ps(x + 8 * v);
    __m256 X[4];
    fp8_xv(x, _mm256_set1_ps(XS ? 0x1p64f : 1.0f), X);
    return X[v];
}

/* Every tile computes, for its (row, token) pairs and each block b (scale
 * d), the same sums in the same order (matvec.h's promise):
 *   p_H = sum over the 4 groups of 32 values of the block, in order, of
 *         (lo, hi of e4m3x16 with H) times x: one 8-lane FMA chain each
 *         (H = 0, 1), started by a multiply; each product
 *         (e4m3 * 2^-120) * (x * 2^64) = (e4m3 * 2^-56) * x is exact, so it
 *         does not matter which of the two is scaled by 2^64
 *   acc = fma(p_0, d, acc), then the same with p_1: the block scale once
 *         per 64 products, not once per weight; acc is the row's sum times
 *         2^-56, times 2^56 (exact) before hsum256. One broadcast load per
 *         row and block, no test of d (d * 2^56 would overflow from 2^72):
 *         L2, 1 thread, T = 1: 21.1 -> 21.8 GB/s, T = 2: 14.1 -> 15.5. The
 *         price: a row whose sums fall below 2^-70 (2^-126 * 2^56) loses
 *         bits to float32 subnormals in acc (no weight times x of a model
 *         comes near)
 * mv_fp8_avx2 first writes each token's x in the codes' order (fp8_xv) to
 * a buffer, scaled by 2^64 when every |x| < 2^64 (XS: the weights need no
 * multiply), else as is (the weights scaled). */

/* block p of the NR rows times NT tokens, both chains at once (H = 2: 2 NR
 * NT of them) or one (H = 0, 1); xp: x in the codes' order (XB), else x */
INL void fp8_block(__m256 acc[4][8], const block_fp8 *W, int nb, const float *xp, size_t cols, int p, int r, int rs,
                   int NR, int t0, int NT, int XS, int XB, int H) {
    const __m256 two64 = _mm256_set1_ps(0x1p64f);
    __m256 pc[2][4][8];
    #pragma GCC unroll 4
    for (int k = 0; k < QK_FP8; k += 32) {
        const float *xk = xp + (size_t)t0 * cols + (size_t)p * QK_FP8 + k;
        #pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const block_fp8 *b = W + (size_t)(r + i * rs) * nb + p;
            const __m256i c = _mm256_loadu_si256((const __m256i *)(b->qs + k));
            #pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                if (H != 2 && h != H) continue;
                __m256 lo, hi;
                e4m3x16(c, h, NR * NT <= 4, &lo, &hi);
                if (!XS) lo = _mm256_mul_ps(lo, two64), hi = _mm256_mul_ps(hi, two64);
                #pragma GCC unroll 8
                for (int t = 0; t < NT; t++) {
                    const __m256 x0 = fp8_x(xk + t * cols, 2 * h, XS, XB), x1 = fp8_x(xk + t * cols, 2 * h + 1, XS, XB);
                    __m256 a = k ? _mm256_fmadd_ps(lo, x0, pc[h][i][t]) : _mm256_mul_ps(lo, x0);
                    pc[h][i][t] = _mm256_fmadd_ps(hi, x1, a);
                }
            }
        }
    }
    #pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const __m256 d = _mm256_broadcast_ss(&W[(size_t)(r + i * rs) * nb + p].d);
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            if (H != 1) acc[i][t] = _mm256_fmadd_ps(pc[0][i][t], d, acc[i][t]);
            if (H != 0) acc[i][t] = _mm256_fmadd_ps(pc[1][i][t], d, acc[i][t]);
        }
    }
}

/* One token (NT = 1, x scaled in the buffer): fp8_block's sums for 32 codes
 * q of one row, x (in the codes' order) at xk, by one asm statement:
 *   c = the 32 codes (one load)
 *   p0 += lo * x0 + hi * x1, lo, hi = codes 4m, 4m + 2: maddubs(16, c)
 *   p1 += lo * x2 + hi * x3, lo, hi = codes 4m + 1, 4m + 3: maddubs(16 << 8, c)
 * each lo the 16-bit halves moved up (slld 16), each masked (e4m3x16's bits;
 * the odd codes by a second maddubs where e4m3x16 shifts the codes: one
 * operation fewer, the same bits); F: the block's first 32, the chains
 * started by a multiply. 12 vector operations per 32 codes (4 FMAs, 2
 * maddubs, 2 shifts, 4 ands), 3 temporaries, the chains accumulated in place.
 * Given the intrinsics, gcc kept 4 rows' 8 chains + 4 sums + constants in
 * the 16 registers by copying and spilling (~40 extra instructions a block)
 * and reloaded the constants. L2, Zen 3, 1 thread, T = 1, GB/s: 21.8 (fold
 * above alone) -> 23.9; with e4m3x16's shift for the odd codes 23.3; codes
 * read by each maddubs (no load) 23.5; x in 4 registers shared by the 4 rows
 * (one asm per 32 codes of 4 rows: 16 registers, the odd codes shifted)
 * 23.1. Bounds measured on loops of registers: 4 FMAs + 2 maddubs 2.9
 * cycles (maddubs shares the FMA pipes), shifts 2 a cycle, ands 4; the whole
 * unit ~3.0-3.6 cycles, ~4.0 in the kernel (12 prefetches, 4 broadcasts, 8
 * FMAs and loop upkeep a block of 4 rows). Slower too: the codes loaded at
 * q - 3 .. q so that one shift or maddubs puts each code on top (no slld):
 * 4 loads (half split across lines) 17.3, 2 loads 22.9; a row's 4 groups
 * of 32 before the next row's (8-FMA chains) 20.9; two blocks a loop 23.2.
 * The same unit for 2 rows x 2 tokens (codes decoded once): T = 2 15.5 ->
 * 15.4, not kept. DRAM (bench_matvec small, 1 thread, one big matrix):
 * 18.8-20.1 -> 22.7 GB/s, read bandwidth 21-30 (busy machine) */
#define FP8_UNIT_ASM(OP, PC)                                                                       \
    __asm__("vmovdqu %[q], %[c]\n\t"                                                               \
            "vpmaddubsw %[c], %[k], %[t0]\n\t"                                                     \
            "vpslld $16, %[t0], %[t1]\n\t"                                                          \
            "vpand %[m], %[t1], %[t1]\n\t" OP " %[x0], %[t1], %[p0]\n\t"                           \
            "vpand %[m], %[t0], %[t0]\n\t"                                                          \
            "vfmadd231ps %[x1], %[t0], %[p0]\n\t"                                                   \
            "vpmaddubsw %[c], %[k2], %[t0]\n\t"                                                    \
            "vpslld $16, %[t0], %[t1]\n\t"                                                          \
            "vpand %[m], %[t1], %[t1]\n\t" OP " %[x2], %[t1], %[p1]\n\t"                           \
            "vpand %[m], %[t0], %[t0]\n\t"                                                          \
            "vfmadd231ps %[x3], %[t0], %[p1]"                                                       \
            : [p0] PC(*p0), [p1] PC(*p1), [t0] "=&x"(t0), [t1] "=&x"(t1), [c] "=&x"(c)              \
            : [q] "m"(*(const __m256i *)q), [x0] "m"(*(const __m256 *)xk),                          \
              [x1] "m"(*(const __m256 *)(xk + 8)), [x2] "m"(*(const __m256 *)(xk + 16)),            \
              [x3] "m"(*(const __m256 *)(xk + 24)), [m] "x"(m), [k] "x"(k16), [k2] "x"(k2))
INL void fp8_unit(int F, const uint8_t *q, const float *xk, __m256 *p0, __m256 *p1, __m256 m, __m256i k16,
                  __m256i k2) {
    __m256 t0, t1, c;
    if (F) FP8_UNIT_ASM("vmulps", "=&x");
    else FP8_UNIT_ASM("vfmadd231ps", "+x");
}

/* block p of NR rows, one token, x scaled in the buffer: fp8_block's sums */
INL void fp8_block1(__m256 acc[4][8], const block_fp8 *W, int nb, const float *xp, int p, int r, int rs, int NR) {
    const __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x87f00000u));
    const __m256i k16 = _mm256_set1_epi16(16), k2 = _mm256_set1_epi16(16 << 8);
    const float *xk = xp + (size_t)p * QK_FP8;
    __m256 pc[2][4];
    #pragma GCC unroll 4
    for (int k = 0; k < QK_FP8; k += 32)
        #pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const uint8_t *q = W[(size_t)(r + i * rs) * nb + p].qs + k;
            if (k) fp8_unit(0, q, xk + k, &pc[0][i], &pc[1][i], m, k16, k2);
            else fp8_unit(1, q, xk, &pc[0][i], &pc[1][i], m, k16, k2);
        }
    #pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        const __m256 d = _mm256_broadcast_ss(&W[(size_t)(r + i * rs) * nb + p].d);
        acc[i][0] = _mm256_fmadd_ps(pc[0][i], d, acc[i][0]);
        acc[i][0] = _mm256_fmadd_ps(pc[1][i], d, acc[i][0]);
    }
}

/* one token with x scaled in the buffer by fp8_block1; else both chains in
 * one pass where they fit the registers (NR NT <= 4), else chain 0 of the
 * block, then chain 1 (the codes loaded again: a compiler barrier, not kept
 * in registers across) */
INL void fp8_pass(__m256 acc[4][8], const block_fp8 *W, int nb, const float *xp, size_t cols, int p, int r, int rs,
                  int NR, int t0, int NT, int XS, int XB) {
    if (NT == 1 && XS && XB) fp8_block1(acc, W, nb, xp + (size_t)t0 * cols, p, r, rs, NR);
    else if (NR * NT <= 4) fp8_block(acc, W, nb, xp, cols, p, r, rs, NR, t0, NT, XS, XB, 2);
    else {
        fp8_block(acc, W, nb, xp, cols, p, r, rs, NR, t0, NT, XS, XB, 0);
        __asm__ volatile("" ::: "memory");
        fp8_block(acc, W, nb, xp, cols, p, r, rs, NR, t0, NT, XS, XB, 1);
    }
}

INL void fp8_tile_(float *out, size_t ldo, const block_fp8 *W, int nb, const float *xp, int r, int rs, int NR, int t0,
                   int NT, int XS, int XB) {
    const size_t cols = (size_t)nb * QK_FP8;
    TILE_ACC(acc)
    for (int p = 0; p < nb; p++) {
        #pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const block_fp8 *b = W + (size_t)(r + i * rs) * nb + p;
            _mm_prefetch((const char *)b + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)b + PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)b + PF_BYTES + 128, _MM_HINT_T0);
        }
        fp8_pass(acc, W, nb, xp, cols, p, r, rs, NR, t0, NT, XS, XB);
    }
    #pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[i][t] = _mm256_mul_ps(acc[i][t], _mm256_set1_ps(0x1p56f));
    TILE_STORE(acc)
}

INL void fp8_tile(float *out, size_t ldo, const block_fp8 *W, int nb, const float *xp, int xs, int r, int rs, int NR,
                  int t0, int NT) {
    if (xs) fp8_tile_(out, ldo, W, nb, xp, r, rs, NR, t0, NT, 1, 1);
    else fp8_tile_(out, ldo, W, nb, xp, r, rs, NR, t0, NT, 0, 1);
}

/* the tiles (any shape gives the same bits): one token, 4 rows a quarter of
 * [r0, r1) apart (TILES); two, 2 rows x 2; more, row by row, up to 7 tokens
 * at a time, the T shared evenly over the groups (8 as 4 + 4: L2, 1 thread,
 * 4.3 GB/s where one group of 8 in two passes gives 3.9) */
INL void fp8_tiles(float *out, size_t ldo, const block_fp8 *W, int nb, const float *xp, int xs, int r0, int r1, int T) {
    if (T <= 2) {
        TILES(fp8_tile, out, ldo, W, nb, xp, xs);
        return;
    }
    for (int g = 0, ng = (T + 6) / 7, t0 = 0; g < ng; g++) {
        const int nt = T / ng + (g < T % ng);
        for (int r = r0; r < r1; r++) TILE_NT(fp8_tile, 1, nt, r, 0, t0, out, ldo, W, nb, xp, xs);
        t0 += nt;
    }
}

/* whether every |x_i| < 2^64 (NaN counts as small: it gives NaN either way) */
static int fp8_x_small(const float *x, size_t n) {
    const __m256 lim = _mm256_set1_ps(0x1p64f), sgn = _mm256_set1_ps(-0.0f);
    __m256 big = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        big = _mm256_or_ps(big, _mm256_cmp_ps(_mm256_andnot_ps(sgn, _mm256_loadu_ps(x + i)), lim, _CMP_GE_OQ));
    int small = _mm256_movemask_ps(big) == 0;
    for (; i < n; i++) small &= !(fabsf(x[i]) >= 0x1p64f);
    return small;
}

/* x (n values, n % 32 == 0) in the codes' order times sc, into xp */
static void fp8_x_order(float *xp, const float *x, size_t n, float sc) {
    const __m256 s = _mm256_set1_ps(sc);
    for (size_t i = 0; i < n; i += 32) {
        __m256 X[4];
        fp8_xv(x + i, s, X);
        for (int v = 0; v < 4; v++) _mm256_storeu_ps(xp + i + 8 * v, X[v]);
    }
}

/* the calling thread's buffer of at least n floats, grown (never shrunk)
 * as needed and kept for its next calls, freed when the thread ends (a
 * pthread key's destructor): decode allocates nothing per token; NULL when
 * it cannot be had (the caller then reorders in place) */
typedef struct {
    float *p;
    size_t cap;
} fp8_buf;
static pthread_key_t fp8_key;
static int fp8_key_ok;
static pthread_once_t fp8_key_once = PTHREAD_ONCE_INIT;
static void fp8_buf_free(void *v) {
    fp8_buf *b = v;
    free(b->p);
    free(b);
}
static void fp8_key_make(void) { fp8_key_ok = !pthread_key_create(&fp8_key, fp8_buf_free); }

static float *fp8_xbuf(size_t n) {
    pthread_once(&fp8_key_once, fp8_key_make);
    if (!fp8_key_ok) return NULL;
    fp8_buf *b = pthread_getspecific(fp8_key);
    if (!b) {
        if (!(b = calloc(1, sizeof *b))) return NULL;
        if (pthread_setspecific(fp8_key, b)) {
            free(b);
            return NULL;
        }
    }
    if (n <= b->cap) return b->p;
    float *p = aligned_alloc(32, (n * sizeof(float) + 32 + 31) / 32 * 32); /* 32 bytes spare, as before */
    if (!p) return NULL;
    free(b->p);
    b->p = p, b->cap = n;
    return p;
}

/* x reordered (and scaled) once per call into the thread's buffer every row
 * reads; for fewer than 4 rows (the reordering would outweigh them), or
 * without memory for the buffer, row by row, each x vector reordered where
 * it is used (the same sums) */
void mv_fp8_avx2(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const float *x = xv;
    const block_fp8 *W = Wv;
    const int nb = cols / QK_FP8, xs = fp8_x_small(x, (size_t)T * cols);
    float *xp = r1 - r0 < 4 ? NULL : fp8_xbuf((size_t)T * cols);
    if (!xp) {
        for (int r = r0; r < r1; r++)
            for (int t = 0; t < T; t++)
                if (xs) fp8_tile_(out, ldo, W, nb, x, r, 0, 1, t, 1, 1, 0);
                else fp8_tile_(out, ldo, W, nb, x, r, 0, 1, t, 1, 0, 0);
        return;
    }
    fp8_x_order(xp, x, (size_t)T * cols, xs ? 0x1p64f : 1.0f);
    fp8_tiles(out, ldo, W, nb, xp, xs, r0, r1, T);
}

/* ---------------------------------------------------------------- fp8, AVX-512 */

/* The AVX-512 machines' fp8 (cpu.h): e4m3x16's decoding on 64 codes a
 * vector (16 int32 lanes of 4 codes each), x in the 64-code order (per 64
 * values, vector 2H + j lane m = x[4m + H + 2j], scaled by 2^64 when every
 * |x| < 2^64, else the weights scaled: the same exact products), per (row,
 * token) and block: p_H = the two 64-code units' lo x + hi x (one FMA chain
 * each, H = 0, 1, started by a multiply), acc = fma(p_0, d, acc), then p_1;
 * the sum times 2^56 (exact), then the 16 lanes added. Every tile shape
 * computes each (row, token) so: the same bits whatever T (batch
 * invariance); not the AVX2 kernel's bits (8 lanes a sum). The tiles:
 * fp8z_rows. */
#define Z512_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))

Z512_TARGET INL void e4m3x64(__m512i c, int H, __m512 *lo, __m512 *hi) {
    const __m512i m = _mm512_set1_epi32((int)0x87f00000u);
    const __m512i v = H ? _mm512_srai_epi16(c, 4) : _mm512_srai_epi16(_mm512_slli_epi32(c, 8), 4);
    *lo = _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(v, 16), m));
    *hi = _mm512_castsi512_ps(_mm512_and_si512(v, m));
}

/* n values (n % 64 == 0) of x into xp in the 64-code order, times sc (a
 * power of 2: exact): xp[16 k + m] = x[4 m + c(k)], c = 0, 2, 1, 3, per 64
 * values, by two rounds of permutes (vectors v0 v1 and v2 v3 to columns
 * 0 and 2 (a) and 1 and 3 (b) of their 8 m each, then the two halves of m
 * joined); the scalar loop it replaced cost more than the products at 4-16
 * tokens (it runs once per call, per token tile of a chunk of rows) */
Z512_TARGET static void fp8z_x_order(float *xp, const float *x, size_t n, float sc) {
    const __m512i ia = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 2, 6, 10, 14, 18, 22, 26, 30),
                  ib = _mm512_setr_epi32(1, 5, 9, 13, 17, 21, 25, 29, 3, 7, 11, 15, 19, 23, 27, 31),
                  lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                  hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const __m512 vs = _mm512_set1_ps(sc);
    for (size_t i = 0; i < n; i += 64) {
        const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16), v2 = _mm512_loadu_ps(x + i + 32),
                     v3 = _mm512_loadu_ps(x + i + 48);
        const __m512 a01 = _mm512_permutex2var_ps(v0, ia, v1), b01 = _mm512_permutex2var_ps(v0, ib, v1),
                     a23 = _mm512_permutex2var_ps(v2, ia, v3), b23 = _mm512_permutex2var_ps(v2, ib, v3);
        _mm512_storeu_ps(xp + i, _mm512_mul_ps(_mm512_permutex2var_ps(a01, lo, a23), vs));
        _mm512_storeu_ps(xp + i + 16, _mm512_mul_ps(_mm512_permutex2var_ps(a01, hi, a23), vs));
        _mm512_storeu_ps(xp + i + 32, _mm512_mul_ps(_mm512_permutex2var_ps(b01, lo, b23), vs));
        _mm512_storeu_ps(xp + i + 48, _mm512_mul_ps(_mm512_permutex2var_ps(b01, hi, b23), vs));
    }
}

/* rows r + i rs (i < NR) times tokens t0.. t0 + NT - 1, xp in the 64-code order */
Z512_TARGET INL void fp8z_tile(float *out, size_t ldo, const block_fp8 *W, int nb, const float *xp, int r, int rs,
                               int NR, int t0, int NT, int XS) {
    const size_t cols = (size_t)nb * QK_FP8;
    const __m512 two64 = _mm512_set1_ps(0x1p64f);
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[i][t] = _mm512_setzero_ps();
    for (int p = 0; p < nb; p++) {
        __m512 pc[2][4][4];
        #pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const block_fp8 *b = W + (size_t)(r + i * rs) * nb + p;
            _mm_prefetch((const char *)b + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)b + PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)b + PF_BYTES + 128, _MM_HINT_T0);
        }
        #pragma GCC unroll 2
        for (int u = 0; u < 2; u++)
            #pragma GCC unroll 4
            for (int i = 0; i < NR; i++) {
                const __m512i c = _mm512_loadu_si512(W[(size_t)(r + i * rs) * nb + p].qs + 64 * u);
                #pragma GCC unroll 2
                for (int H = 0; H < 2; H++) {
                    __m512 lo, hi;
                    e4m3x64(c, H, &lo, &hi);
                    if (!XS) lo = _mm512_mul_ps(lo, two64), hi = _mm512_mul_ps(hi, two64);
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; t++) {
                        const float *xk = xp + (size_t)(t0 + t) * cols + (size_t)p * QK_FP8 + 64 * u;
                        const __m512 a = u ? _mm512_fmadd_ps(lo, _mm512_loadu_ps(xk + 32 * H), pc[H][i][t])
                                           : _mm512_mul_ps(lo, _mm512_loadu_ps(xk + 32 * H));
                        pc[H][i][t] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xk + 32 * H + 16), a);
                    }
                }
            }
        #pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const __m512 d = _mm512_set1_ps(W[(size_t)(r + i * rs) * nb + p].d);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                acc[i][t] = _mm512_fmadd_ps(pc[0][i][t], d, acc[i][t]);
                acc[i][t] = _mm512_fmadd_ps(pc[1][i][t], d, acc[i][t]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++)
            out[(size_t)(t0 + t) * ldo + r + i * rs] = _mm512_reduce_add_ps(_mm512_mul_ps(acc[i][t], _mm512_set1_ps(0x1p56f)));
}

/* fp8z_tile with NR and NT as constants: NR 4 (NT 1 or 2), 2 or 1 (NT 1..4) */
Z512_TARGET INL void fp8z_tile_n(float *out, size_t ldo, const block_fp8 *W, int nb, const float *xp, int r, int rs,
                                 int NR, int t0, int NT, int XS) {
#define FZ(R, N) fp8z_tile(out, ldo, W, nb, xp, r, rs, R, t0, N, XS)
    if (NR == 4 && NT == 1) FZ(4, 1);
    else if (NR == 4) FZ(4, 2);
    else if (NR == 2) switch (NT) {
        case 4: FZ(2, 4); break;
        case 3: FZ(2, 3); break;
        case 2: FZ(2, 2); break;
        default: FZ(2, 1); break;
        }
    else switch (NT) {
        case 4: FZ(1, 4); break;
        case 3: FZ(1, 3); break;
        case 2: FZ(1, 2); break;
        default: FZ(1, 1); break;
        }
#undef FZ
}

/* one or two tokens: 4 rows a quarter of [r0, r1) apart x all of them;
 * more: 2 rows half apart, tokens up to 4 at a time (the T
 * shared evenly over the groups). One row at a time (one weight stream)
 * read from memory far below the kernel's speed in L2 on a Zen 5
 * (bench_matvec decode, 102400 x 1024, 1 thread: T = 2 10.0-11.0 GB/s, T =
 * 4 5.5-5.9, where L2 gives 32 and 17): 4 rows apart at T = 2 18.4-20.3,
 * 2 apart at T = 4 7.3-8.1 (2 threads 20-21 -> 36-39, 11-12.5 -> 14.5-16) */
Z512_TARGET static void fp8z_rows(float *out, size_t ldo, const block_fp8 *W, int nb, const float *xp, int r0, int r1,
                                  int T, int XS) {
    const int nr = T <= 2 ? 4 : 2, q = (r1 - r0) / nr;
    for (int g = 0, ng = (T + 3) / 4, t0 = 0; g < ng; g++) {
        const int nt = T / ng + (g < T % ng);
        for (int k = 0; k < q; k++) fp8z_tile_n(out, ldo, W, nb, xp, r0 + k, q, nr, t0, nt, XS);
        for (int r = r0 + nr * q; r < r1; r++) fp8z_tile_n(out, ldo, W, nb, xp, r, 0, 1, t0, nt, XS);
        t0 += nt;
    }
}

/* x reordered once per call into the thread's buffer (fp8_xbuf); without
 * memory for it, the AVX2 kernel (other bits: out of memory only) */
Z512_TARGET void mv_fp8_avx512(float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const void *xv, int T) {
    const float *x = xv;
    const block_fp8 *W = Wv;
    const int nb = cols / QK_FP8, xs = fp8_x_small(x, (size_t)T * cols);
    float *xp = fp8_xbuf((size_t)T * cols);
    if (!xp) {
        mv_fp8_avx2(out, ldo, Wv, cols, r0, r1, xv, T);
        return;
    }
    fp8z_x_order(xp, x, (size_t)T * cols, xs ? 0x1p64f : 1.0f);
    if (xs) fp8z_rows(out, ldo, W, nb, xp, r0, r1, T, 1);
    else fp8z_rows(out, ldo, W, nb, xp, r0, r1, T, 0);
}

/* ---------------------------------------------------------------- activations */

/* q8_act_fill (quant.c) with AVX2, the same bytes: amax by max (a NaN never
 * wins, as in the scalar compare), v = x * (1/d), q = trunc(v +- 0.5) */
void q8_fill_avx2(q8_act *a, const float *x, int t0, int t1) {
    const size_t nb = (size_t)a->cols / QK8_0;
    const __m256 sgn = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), ones8 = _mm256_set1_epi8(1),
                  ones16 = _mm256_set1_epi16(1);
    for (size_t b = (size_t)t0 * nb; b < (size_t)t1 * nb; b++) {
        const float *xb = x + b * QK8_0;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            m = _mm256_max_ps(_mm256_andnot_ps(sgn, v[k]), m);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4), d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        __m256i qi[4];
        for (int k = 0; k < 4; k++) {
            __m256 s = _mm256_mul_ps(v[k], _mm256_set1_ps(id));
            /* +0.5 carrying v's sign (v >= 0 ? 0.5 : -0.5; -0.0 takes +0.5 as the scalar does) */
            __m256 h = _mm256_blendv_ps(half, _mm256_or_ps(half, sgn), _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_LT_OQ));
            qi[k] = _mm256_cvttps_epi32(_mm256_add_ps(s, h));
        }
        __m256i q16a = _mm256_packs_epi32(qi[0], qi[1]), q16b = _mm256_packs_epi32(qi[2], qi[3]);
        __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), perm);
        _mm256_storeu_si256((__m256i *)(a->qs + b * QK8_0), q);
        a->d[b] = d;
        __m256i pair = _mm256_maddubs_epi16(ones8, q), g4 = _mm256_madd_epi16(pair, ones16);
        _mm256_storeu_si256((__m256i *)(a->xp8 + b * (QK8_0 / 2)), _mm256_slli_epi16(pair, 3));
        /* c16: per 16 values the even and odd pairs summed as int16 (4 lanes of each half added), times 32 */
        __m256i c = _mm256_add_epi16(pair, _mm256_shuffle_epi32(pair, 0x4e));
        c = _mm256_slli_epi16(_mm256_add_epi16(c, _mm256_shuffle_epi32(c, 0xb1)), 5);
        a->c16[2 * b] = _mm256_cvtsi256_si32(c), a->c16[2 * b + 1] = _mm256_extract_epi32(c, 4);
        _mm256_storeu_si256((__m256i *)(a->c4 + b * 8), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(g4, 7)));
        _mm256_storeu_ps(a->d4 + b * 8, _mm256_set1_ps(d));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(g4), _mm256_extracti128_si256(g4, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        a->ds[b] = d * (float)_mm_cvtsi128_si32(s4);
    }
}
