/*
 * mla.c — Multi-head Latent Attention (DeepSeek-V2 paper §2.1, V3 report
 * §2.1.1), in its two equivalent forms.
 *
 *   q      = q_b(norm(q_a(x)))  or  q_proj(x)         (T, H, nope+rope)
 *   [c, kr]= kv_a_proj_with_mqa(x)                    (T, kvl), (T, rope)
 *   c      = kv_a_layernorm(c); kr = rope(kr); q_pe = rope(q_pe)
 *   naive:    [k_nope, v] = kv_b(c) per head; score = q . [k_nope, kr]
 *   absorbed: score = (W_uk_h^T q_nope) . c + q_pe . kr, out_h = W_uv_h (sum p c)
 *             where kv_b's rows for head h are [W_uk_h (nope, kvl); W_uv_h (v, kvl)]
 *             (V2 appendix C): the cache holds only c and kr per token.
 *   p      = softmax(score * softmax_scale) over positions <= the query's
 *   out    = o_proj(concat_h out_h)
 *
 * Shapes as in model.h. Positions of this call are pos..pos+T-1; their keys
 * are appended to the cache before attending, so a token sees itself.
 *
 * kv_b in its stored type (issue 15): the absorbed products run through the
 * matvec kernels (matmul.h) on each head's rows, for the T tokens of a call
 * at once (a head's weights read once), one parallel region over the heads:
 *   q_abs = W_uk_h^T q_nope   rows h*kvl.. of k_b (layer_w: a GGUF's attn_k_b
 *                             as stored, or converted); without k_b, a sum of
 *                             kv_b's W_uk_h rows (each widened to float32)
 *   out_h = W_uv_h lat        rows h*v.. of v_b, or rows h*(nope+v)+nope.. of kv_b
 * Quantised pieces multiply 8-bit activations (q_nope, lat), as llama.cpp
 * does. The naive cache and the expanded prefill multiply by kv_b whole: a
 * model holding only k_b and v_b widens them to a float32 kv_b in scratch for
 * that call (kvb_of).
 */
#include <cblas.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "kernels/dtype.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model/norm.h"
#include "model/train_layers.h"
#include "kernels/rvec.h"
#include "kernels/tile.h"

/* softmax_inplace: p[j] = exp(s[j] - max) / sum over n entries, eight lanes
 * at a time (vexp.h: within 1 ulp of expf, the sum in double; one call per
 * score was 2-3% of a decode step at 512 positions). Every path (naive,
 * absorbed, T = 1 or batched) calls this one, so their bits agree. */
static void softmax_inplace(float *p, int n) {
    const float mx = vmax(p, (size_t)n);
    const double sum = vexp_shift_sum(p, p, mx, (size_t)n);
    vscale(p, (float)(1.0 / sum), (size_t)n);
}

/* KV_FOR_T(T, kv, pages, n, j, row): for j in 0..n-1, row = kv_at(kv, pages, j)
 * as a const T * (float, or uint16_t for a bf16 cache), walking page by page
 * (no division per position). KV_FOR: a float32 cache. */
#define KV_FOR_T(T, kv, pages, n, j, ROWP)                                                                         \
    for (int j##_p = 0, j = 0; j < (n); j##_p++)                                                                   \
        for (const T *ROWP = (const T *)(kv)->base + (size_t)(pages)[j##_p] * (kv)->page_stride + (kv)->layer_off, \
                     *j##_e = ROWP + (size_t)(kv)->page_tokens * (kv)->row;                                        \
             ROWP < j##_e && j < (n); ROWP += (kv)->row, j++)
#define KV_FOR(kv, pages, n, j, ROWP) KV_FOR_T(float, kv, pages, n, j, ROWP)

static void bf16_row_f32(float *dst, const uint16_t *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

/* mat_rows: rows [r0, r0 + n) of W as a mat of their own (a row is whole
 * blocks in every type, so the view is W's storage from row r0 on) */
static mat mat_rows(const mat *W, int r0, int n) {
    char *p = (char *)(void *)W->data + mat_type_bytes(W->type, r0, W->cols);
    return (mat){(float *)(void *)p, W->type, n, W->cols};
}

/* kvb_of: kv_b (H*(nope+v), kvl) for the naive cache and the expanded
 * prefill: lw->kv_b when the model holds it, else k_b and v_b widened to
 * float32 into s->kvw, head by head (k_b's rows transposed back). 0 on OOM.
 * k_b's rows are widened 16 at a time and written back as 16 floats (a cache
 * line) per column: one row at a time, its nope values went to addresses kvl
 * floats apart (2 KB for V2-Lite, the same few L1 sets), and V2-Lite's prefill
 * of 16 tokens spent ~30% of its time in those stores (6.3 ms a layer on one
 * Zen 5 thread; 16 at a time 0.57 ms). */
#define KVB_ROWS 16
static int kvb_of(const dc_config *c, scratch *s, const layer_w *lw, mat *out) {
    if (lw->kv_b.data) {
        *out = lw->kv_b;
        return 1;
    }
    const int H = c->num_attention_heads, nope = c->qk_nope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
    if (!scratch_grow(&s->kvw, &s->kvw_cap, (size_t)H * (nope + vd) * kvl)) return 0;
    float *w = s->kvw;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < H; h++) {
        float *o = w + (size_t)h * (nope + vd) * kvl, rows[KVB_ROWS][nope];
        for (int l0 = 0; l0 < kvl; l0 += KVB_ROWS) { /* k_b rows h*kvl+l: W_uk_h[:, l] */
            const int n = kvl - l0 < KVB_ROWS ? kvl - l0 : KVB_ROWS;
            for (int j = 0; j < n; j++) mat_row_f32(&lw->k_b, h * kvl + l0 + j, rows[j]);
            for (int d = 0; d < nope; d++)
                for (int j = 0; j < n; j++) o[(size_t)d * kvl + l0 + j] = rows[j][d];
        }
        for (int e = 0; e < vd; e++) mat_row_f32(&lw->v_b, h * vd + e, o + (size_t)(nope + e) * kvl);
    }
    *out = (mat){w, MAT_F32, H * (nope + vd), kvl};
    return 1;
}

/* Attention of a run of T >= MLA_EXPAND_T tokens of one sequence (a prefill
 * chunk) over its cache, the way the naive form computes it. With many
 * queries, expanding every cached latent to per-head keys and values once
 * (one GEMM of n = pos+T rows by kv_b) costs n*H*(nope+v)*kvl multiply-adds,
 * far less than absorbing each query (T*H*(nope+v)*kvl) and scoring against
 * kvl-long latents; decode (short runs) keeps the absorbed form, and so do
 * short runs over a long cache (mla_absorb_run). Same math
 * (V2 appendix C). Per head, as products on strided views (OpenBLAS threads
 * each): S = scale (Qn Kn^T + Qp Kp^T), causal softmax by rows (row t sees
 * positions <= pos+t), att_h = P V_h. q (T, H, qk) and att (T, H, v) are the
 * run's rows. Returns 0 when the buffers cannot be had (the caller takes the
 * absorbed path). */
#define MLA_EXPAND_T 8
static int mla_attend_expanded(const dc_model *m, scratch *s, const layer_w *lw, const kv_view *kv,
                               const int *pages, int pos, int T, const float *q, float *att) {
    const dc_config *c = &m->cfg;
    const int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim;
    const int qk = nope + rd, vd = c->v_head_dim, kd = nope + vd, kvl = c->kv_lora_rank, n = pos + T;
    const float scale = m->softmax_scale;
    if (!scratch_grow(&s->sq, &s->sq_cap, (size_t)T * n) ||
        !scratch_grow(&s->ex, &s->ex_cap, (size_t)n * (H * kd + kvl + rd)))
        return 0;
    mat kvb;
    if (!kvb_of(c, s, lw, &kvb)) return 0;
    float *S = s->sq, *K = s->ex, *lat = K + (size_t)n * H * kd, *kpe = lat + (size_t)n * kvl;
    if (kv->bf16)
        KV_FOR_T(uint16_t, kv, pages, n, j, row) { /* the sequence's latents and rope keys, widened */
            bf16_row_f32(lat + (size_t)j * kvl, row, kvl);
            bf16_row_f32(kpe + (size_t)j * rd, row + kvl, rd);
        }
    else
        KV_FOR(kv, pages, n, j, row) { /* the sequence's latents and rope keys, contiguous */
            memcpy(lat + (size_t)j * kvl, row, sizeof(float) * kvl);
            memcpy(kpe + (size_t)j * rd, row + kvl, sizeof(float) * rd);
        }
    matmul(K, lat, &kvb, n); /* (n, H, nope+v) */
    for (int h = 0; h < H; h++) {
        const float *Q = q + (size_t)h * qk, *Kh = K + (size_t)h * kd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, nope, scale, Q, H * qk, Kh, H * kd, 0, S, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, rd, scale, Q + nope, H * qk, kpe, rd, 1, S, n);
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) {
            float *row = S + (size_t)t * n;
            int mm = pos + t + 1;
            softmax_inplace(row, mm);
            for (int j = mm; j < n; j++) row[j] = 0;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, vd, n, 1, S, n, Kh + nope, H * kd, 0,
                    att + (size_t)h * vd, H * vd);
    }
    return 1;
}

/* one query token t, head h, of the naive cache over positions 0..pos of
 * its sequence (per-head keys and values in the cache): att row (t, h) */
static void naive_one(const dc_model *m, scratch *s, const kv_view *kv, const int *pages, int pos, int t, int h,
                      float *sc) {
    const dc_config *c = &m->cfg;
    const int H = c->num_attention_heads, qk = c->qk_nope_head_dim + c->qk_rope_head_dim, vd = c->v_head_dim;
    const int n = pos + 1;
    const float *q = s->q + ((size_t)t * H + h) * qk;
    float *o = s->att + ((size_t)t * H + h) * vd;
    KV_FOR(kv, pages, n, j, row) sc[j] = dot_f32(q, row + (size_t)h * qk, qk) * m->softmax_scale;
    softmax_inplace(sc, n);
    memset(o, 0, sizeof(float) * vd);
    KV_FOR(kv, pages, n, j, row) {
        const float *v = row + (size_t)H * qk + (size_t)h * vd;
        for (int e = 0; e < vd; e++) o[e] += sc[j] * v[e];
    }
}

/* widen: cache row j (kvl + rope elements) as float32: bf16 widened into
 * buf, float32 used in place */
static const float *widen(const kv_view *kv, const void *row, int n, float *buf) {
    if (!kv->bf16) return row;
    const uint16_t *r = row;
#pragma omp simd
    for (int i = 0; i < n; i++) {
        union {
            uint32_t u;
            float f;
        } v = {.u = (uint32_t)r[i] << 16};
        buf[i] = v.f;
    }
    return buf;
}

/* hsum8: the eight lanes of v summed in lane order */
static inline float hsum8(v8f v) {
    float r = 0;
    for (int k = 0; k < 8; k++) r += v[k];
    return r;
}

/* dot8: a . b over n, eight lanes, then the lanes (hsum8), then the tail in
 * order (the one order of scores_row's partial sums) */
static inline float dot8_tail(v8f acc, const float *a, const float *b, int i, int n) {
    float r = hsum8(acc);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* hsum8x8: s[h] = hsum8(a[h]) for the 8 vectors at once, in the same order
 * (0, then lane 0, 1, ... 7 added one after another): a[] transposed (t_k[h]
 * = a[h][k], three rounds of shuffles), then 0 + t_0 + t_1 + ... + t_7 as
 * vectors; ~30 vector operations where eight hsum8 take ~120 (each lane
 * extracted, eight dependent adds) */
static inline __attribute__((always_inline)) v8f hsum8x8(const v8f *a) {
    /* __builtin_shufflevector: gcc >= 12 and clang (the fuzz build) */
#define LO(x, y) __builtin_shufflevector(x, y, 0, 8, 1, 9, 4, 12, 5, 13)
#define HI(x, y) __builtin_shufflevector(x, y, 2, 10, 3, 11, 6, 14, 7, 15)
#define S0(x, y) __builtin_shufflevector(x, y, 0, 1, 8, 9, 4, 5, 12, 13)
#define S1(x, y) __builtin_shufflevector(x, y, 2, 3, 10, 11, 6, 7, 14, 15)
#define H0(x, y) __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11)
#define H1(x, y) __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15)
    v8f t[8], c[8];
    for (int r = 0; r < 8; r += 2) t[r] = LO(a[r], a[r + 1]), t[r + 1] = HI(a[r], a[r + 1]);
    /* c[4 q + 2 j + m]: columns (2 j + m, 2 j + m + 4) of rows 4 q .. 4 q + 3 */
    for (int q = 0; q < 2; q++)
        for (int j = 0; j < 2; j++) {
            c[4 * q + 2 * j] = S0(t[4 * q + j], t[4 * q + 2 + j]);
            c[4 * q + 2 * j + 1] = S1(t[4 * q + j], t[4 * q + 2 + j]);
        }
    v8f sum = v8f_set(0);
    for (int k = 0; k < 4; k++) sum += H0(c[k], c[4 + k]); /* columns 0..3 */
    for (int k = 0; k < 4; k++) sum += H1(c[k], c[4 + k]); /* columns 4..7 */
#undef LO
#undef HI
#undef S0
#undef S1
#undef H0
#undef H1
    return sum;
}

typedef uint16_t v8u16 __attribute__((vector_size(16)));

/* 8 latents at element x of a cache row as float32 (BF: bf16, widened in a
 * register) */
static inline __attribute__((always_inline)) v8f kv_load8(const void *row, int x, const int BF) {
    if (!BF) return v8f_load((const float *)row + x);
#ifdef __AVX2__ /* gcc lowers the generic form to two 4-lane widenings and a lane insert: 5 operations, not 2 */
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + x)));
    return (v8f)_mm256_slli_epi32(u, 16);
#else
    v8u16 u;
    memcpy(&u, (const uint16_t *)row + x, sizeof u);
    return (v8f)(__builtin_convertvector(u, v8i) << 16);
#endif
}

#ifdef __AVX512F__
/* 16 latents at element x of a cache row as float32 (BF: bf16, widened in a
 * register): where the build has 512-bit vectors the attention core takes
 * 16 latents a step, twice the 8-lane loop's work an instruction */
static inline __attribute__((always_inline)) __m512 kv_load16(const void *row, int x, const int BF) {
    if (!BF) return _mm512_loadu_ps((const float *)row + x);
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + x)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

/* a's two 8-lane halves added: the 16-lane sums folded into the 8 lanes */
static inline __attribute__((always_inline)) v8f fold16(__m512 a) {
    return (v8f)_mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

/* dots of G heads' q[h] + off with a row's n elements from off, 16 a step
 * (n % 16 left), into 8-lane partial sums s[h] (fold16) */
#define DOTS16(s, q, cr, off, n, i, BF, G)                                                                  \
    do {                                                                                                  \
        __m512 z16[MLA_HEAD_GROUP];                                                                       \
        _Pragma("GCC unroll 8") for (int h = 0; h < (G); h++) z16[h] = _mm512_setzero_ps();              \
        for (; (i) + 16 <= (n); (i) += 16) {                                                              \
            const __m512 cv = kv_load16(cr, (off) + (i), BF);                                             \
            _Pragma("GCC unroll 8") for (int h = 0; h < (G); h++) z16[h] =                               \
                _mm512_fmadd_ps(_mm512_loadu_ps((q)[h] + (i)), cv, z16[h]);                               \
        }                                                                                                 \
        _Pragma("GCC unroll 8") for (int h = 0; h < (G); h++) s[h] = fold16(z16[h]);                     \
    } while (0)
#endif

/* scores_row: one widened cache row c (kvl latents, rd rope) against g
 * heads' q_abs qa[h] (kvl) and q_pe qpe[h] (rd): sc[h * ld] = (qa[h] . c +
 * qpe[h] . kr) * scale. All g heads in one pass, each chunk of c loaded once
 * into a register for the g accumulators (g independent FMA chains, where
 * one dot at a time was one latency-bound chain: 8% of a decode step at 512+
 * positions). The order of a score's sum is fixed (lanes, then tail) and the
 * same for every T, so batched decode keeps T = 1's bits. */
static inline __attribute__((always_inline)) void scores_g(const void *cr, const int BF, int kvl, int rd, const int G,
                                                           const float *const *qa, const float *const *qpe,
                                                           float scale, float *sc, size_t ld) {
    const float *c = cr; /* the tails read floats: BF only without tails (absorbed_core) */
    v8f al[MLA_HEAD_GROUP], ar[MLA_HEAD_GROUP];
#pragma GCC unroll 8
    for (int h = 0; h < G; h++) al[h] = ar[h] = v8f_set(0);
    int i = 0, k = 0;
#ifdef __AVX512F__ /* 16 lanes first, folded to 8 (one lane order per build: every T the same bits) */
    DOTS16(al, qa, cr, 0, kvl, i, BF, G);
    DOTS16(ar, qpe, cr, kvl, rd, k, BF, G);
#endif
    for (; i + 8 <= kvl; i += 8) {
        const v8f cv = kv_load8(cr, i, BF);
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) al[h] = v8f_fma(v8f_load(qa[h] + i), cv, al[h]);
    }
    for (; k + 8 <= rd; k += 8) {
        const v8f cv = kv_load8(cr, kvl + k, BF);
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) ar[h] = v8f_fma(v8f_load(qpe[h] + k), cv, ar[h]);
    }
    if (G == 8 && i == kvl && k == rd) { /* no tails: the 8 heads' lane sums at once, the same bits */
        const v8f r = (hsum8x8(al) + hsum8x8(ar)) * v8f_set(scale);
#pragma GCC unroll 8
        for (int h = 0; h < 8; h++) sc[(size_t)h * ld] = r[h];
        return;
    }
#pragma GCC unroll 8
    for (int h = 0; h < G; h++)
        sc[(size_t)h * ld] = (dot8_tail(al[h], qa[h], c, i, kvl) + dot8_tail(ar[h], qpe[h], c + kvl, k, rd)) * scale;
}

/* a full group in registers (G a constant); a short last group head by head
 * (each head's sum is its own: the same bits either way) */
static void scores_row(const float *c, int kvl, int rd, int g, const float *const *qa, const float *const *qpe,
                       float scale, float *sc, size_t ld) {
    if (g == MLA_HEAD_GROUP) {
        scores_g(c, 0, kvl, rd, MLA_HEAD_GROUP, qa, qpe, scale, sc, ld);
        return;
    }
    for (int h = 0; h < g; h++) scores_g(c, 0, kvl, rd, 1, qa + h, qpe + h, scale, sc + (size_t)h * ld, ld);
}

/* LAT_TILE: cache rows per tile of lat_sum (16 rows of 512 bf16 latents:
 * 16 KB, kept in L1 across the chunks) */
#define LAT_TILE 16

/* lat[h][x] += sum over the nr rows of the tile of p[h][j] c_j[x], j in
 * order, for the G heads (a constant) of the group: per chunk of 8 latents,
 * G accumulators in registers loaded from lat, then stored once per tile
 * (where one row at a time loaded and stored lat for every row: the loop was
 * store-bound). Each lane's sum is lat = 0, then + p c per row in order, as
 * the row-at-a-time loop had it: the same bits. */
static inline __attribute__((always_inline)) void lat_tile(const void *const *rows, int nr, const float *p, size_t n,
                                                           const int G, const int BF, float *const *lat, int kvl) {
    int x = 0;
#ifdef __AVX512F__ /* 16 latents a step: each lane's sum as below, the same bits */
    for (; x + 16 <= kvl; x += 16) {
        __m512 acc[MLA_HEAD_GROUP];
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) acc[h] = _mm512_loadu_ps(lat[h] + x);
        for (int j = 0; j < nr; j++) {
            const __m512 cv = kv_load16(rows[j], x, BF);
#pragma GCC unroll 8
            for (int h = 0; h < G; h++) acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[(size_t)h * n + j]), cv, acc[h]);
        }
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) _mm512_storeu_ps(lat[h] + x, acc[h]);
    }
#endif
    for (; x + 8 <= kvl; x += 8) {
        v8f acc[MLA_HEAD_GROUP];
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) acc[h] = v8f_load(lat[h] + x);
        for (int j = 0; j < nr; j++) {
            const v8f cv = kv_load8(rows[j], x, BF);
#pragma GCC unroll 8
            for (int h = 0; h < G; h++) acc[h] = v8f_fma(v8f_set(p[(size_t)h * n + j]), cv, acc[h]);
        }
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) v8f_store(lat[h] + x, acc[h]);
    }
    for (; x < kvl; x++)
        for (int j = 0; j < nr; j++) {
            const float c = BF ? bf16_to_f32(((const uint16_t *)rows[j])[x]) : ((const float *)rows[j])[x];
            for (int h = 0; h < G; h++) lat[h][x] += p[(size_t)h * n + j] * c;
        }
}

/* lat_sum: lat[h] (kvl) = sum_j p_hj c_j over positions 0..n-1 for the g
 * heads, p = sc (g, n) the softmax rows, tile by tile of LAT_TILE rows */
static void lat_sum(const kv_view *kv, const int *pages, int n, int g, const float *sc, float *const *lat, int kvl) {
    for (int h = 0; h < g; h++) memset(lat[h], 0, sizeof(float) * kvl);
    for (int j0 = 0; j0 < n; j0 += LAT_TILE) {
        const int nr = n - j0 < LAT_TILE ? n - j0 : LAT_TILE;
        const void *rows[LAT_TILE];
        for (int j = 0; j < nr; j++) rows[j] = kv_at(kv, pages, j0 + j);
        const float *p = sc + j0;
        if (g == MLA_HEAD_GROUP && kv->bf16) lat_tile(rows, nr, p, (size_t)n, MLA_HEAD_GROUP, 1, lat, kvl);
        else if (g == MLA_HEAD_GROUP) lat_tile(rows, nr, p, (size_t)n, MLA_HEAD_GROUP, 0, lat, kvl);
        else
            for (int h = 0; h < g; h++)
                if (kv->bf16) lat_tile(rows, nr, p + (size_t)h * n, (size_t)n, 1, 1, lat + h, kvl);
                else lat_tile(rows, nr, p + (size_t)h * n, (size_t)n, 1, 0, lat + h, kvl);
    }
}

/* the scores' first read of the cache rows (a layer's, from beyond L2:
 * the weights streamed since evict them) prefetched KV_PF rows ahead: the
 * pages' 16-row runs are too short for the hardware's prefetcher, and the
 * scores waited on these loads (perf: ~a third of absorbed_core's samples
 * on the instruction after the row's load). Mini Q4_0, 1200 tokens decoded, one
 * Zen 5 thread, perf samples of absorbed_core alternated: 2207 / 2205 -> 1887 /
 * 1898 (4 rows ahead), 1718 / 1713 (4) against 1597 / 1719 (8) */
#define KV_PF 8
static inline void kv_prefetch(const void *row, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)row + o, 0, 3);
}

/* g (<= MLA_HEAD_GROUP) heads of one query over the latents of its
 * sequence's positions 0..pos, each cache row read (and widened) once for
 * all g: scores (q_abs qa[h] (kvl) . c_j + q_pe qpe[h] (rope) . kr_j) *
 * scale into sc (g, pos+1), softmax per head, lat[h] (kvl) = sum_j p_hj c_j.
 * rowf: kvl + rope floats. */
static void absorbed_core(const dc_model *m, const kv_view *kv, const int *pages, int pos, int g,
                          const float *const *qa, const float *const *qpe, float *sc, float *const *lat, float *rowf) {
    const int rd = m->cfg.qk_rope_head_dim, kvl = m->cfg.kv_lora_rank, n = pos + 1;
    const float scale = m->softmax_scale;
    /* a full group on a bf16 cache without tails widens in registers (the
     * same floats: the same bits), else each row is widened into rowf first */
    const int raw = kv->bf16 && g == MLA_HEAD_GROUP && kvl % 8 == 0 && rd % 8 == 0;
    const size_t rb = (size_t)(kvl + rd) * (kv->bf16 ? 2 : 4);
    for (int j = 0; j < n; j++) {
        if (j + KV_PF < n) kv_prefetch(kv_at(kv, pages, j + KV_PF), rb);
        if (raw) {
            scores_g(kv_at(kv, pages, j), 1, kvl, rd, MLA_HEAD_GROUP, qa, qpe, scale, sc + j, (size_t)n);
            continue;
        }
        const float *c = widen(kv, kv_at(kv, pages, j), kvl + rd, rowf);
        scores_row(c, kvl, rd, g, qa, qpe, scale, sc + j, (size_t)n);
    }
    for (int h = 0; h < g; h++) softmax_inplace(sc + (size_t)h * n, n);
    lat_sum(kv, pages, n, g, sc, lat, kvl);
}

/* mv_here: out (nt, rows) = x (nt, cols) @ W^T on the calling thread alone,
 * through the matvec kernels of W's type (x's 8-bit form in the thread's
 * workspace); the oracle if that cannot be had */
static void mv_here(float *out, const float *x, const mat *W, int nt) {
    mv_act a;
    if (!mv_act_init(&a, 0, W, nt)) {
        matmul_ref(out, x, W, nt);
        return;
    }
    mv_act_fill(&a, x, nt, 0, 1);
    matmul_mv_share(out, x, &a, W, nt, 0, 1);
}

/* q_abs qa (nt, kvl) = W_uk_h^T q_nope for nt rows qn (nt, nope): k_b's rows
 * of head h through the kernels, or without k_b the sum over kv_b's W_uk_h
 * rows d (kvl) of q_nope[d] times the row, widened one at a time */
static void absorb_q(const dc_config *c, const layer_w *lw, int h, const float *qn, int nt, float *qa) {
    const int nope = c->qk_nope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
    if (lw->k_b.data) {
        mat W = mat_rows(&lw->k_b, h * kvl, kvl);
        mv_here(qa, qn, &W, nt);
        return;
    }
    mat W = mat_rows(&lw->kv_b, h * (nope + vd), nope);
    float buf[kvl];
    memset(qa, 0, sizeof(float) * (size_t)nt * kvl);
    for (int d = 0; d < nope; d++) {
        const float *wr = W.data + (size_t)d * kvl;
        if (W.type != MAT_F32) mat_row_f32(&W, d, buf), wr = buf;
        for (int i = 0; i < nt; i++) {
            float *o = qa + (size_t)i * kvl, qd = qn[(size_t)i * nope + d];
#pragma omp simd
            for (int l = 0; l < kvl; l++) o[l] += qd * wr[l];
        }
    }
}

/* heads [h0, h1) of the nt tokens s->att_t[0..nt) attending in the absorbed
 * form, on one thread: per head, the tokens' q_nope gathered (nt, nope) and
 * absorbed through W_uk_h; per token, the heads' scores and latent sums in
 * groups of MLA_HEAD_GROUP (a cache row read once per group); per head,
 * W_uv_h for all nt; att rows (t, h) written. s->kv (unused by the absorbed
 * cache) holds the gathered rows (H, nt, nope+v), s->qabs and s->lat hold
 * (H, nt, kvl); sc is the thread's scratch_score_floats. */
static void absorbed_heads(const dc_model *m, scratch *s, const layer_w *lw, const kv_view *kv, const tok_batch *b,
                           int h0, int h1, int nt, float *sc) {
    const dc_config *c = &m->cfg;
    const int H = c->num_attention_heads, nope = c->qk_nope_head_dim, qk = nope + c->qk_rope_head_dim;
    const int vd = c->v_head_dim, kvl = c->kv_lora_rank;
    for (int h = h0; h < h1; h++) {
        float *qn = s->kv + (size_t)h * nt * (nope + vd);
        for (int i = 0; i < nt; i++)
            memcpy(qn + (size_t)i * nope, s->q + ((size_t)s->att_t[i] * H + h) * qk, sizeof(float) * nope);
        absorb_q(c, lw, h, qn, nt, s->qabs + (size_t)h * nt * kvl);
    }
    float *rowf = sc + (size_t)MLA_HEAD_GROUP * s->max_len;
    for (int i = 0; i < nt; i++) {
        int t = s->att_t[i];
        for (int g0 = h0; g0 < h1; g0 += MLA_HEAD_GROUP) {
            int g = h1 - g0 < MLA_HEAD_GROUP ? h1 - g0 : MLA_HEAD_GROUP;
            const float *qa[MLA_HEAD_GROUP], *qpe[MLA_HEAD_GROUP];
            float *lat[MLA_HEAD_GROUP];
            for (int k = 0; k < g; k++) {
                qa[k] = s->qabs + ((size_t)(g0 + k) * nt + i) * kvl;
                qpe[k] = s->q + ((size_t)t * H + g0 + k) * qk + nope;
                lat[k] = s->lat + ((size_t)(g0 + k) * nt + i) * kvl;
            }
            absorbed_core(m, kv, b->pages[t], b->pos[t], g, qa, qpe, sc, lat, rowf);
        }
    }
    for (int h = h0; h < h1; h++) {
        float *oh = s->kv + (size_t)h * nt * (nope + vd) + (size_t)nt * nope;
        mat W = lw->v_b.data ? mat_rows(&lw->v_b, h * vd, vd) : mat_rows(&lw->kv_b, h * (nope + vd) + nope, vd);
        mv_here(oh, s->lat + (size_t)h * nt * kvl, &W, nt); /* out_h = W_uv_h lat: (nt, v) */
        for (int i = 0; i < nt; i++)
            memcpy(s->att + ((size_t)s->att_t[i] * H + h) * vd, oh + (size_t)i * vd, sizeof(float) * vd);
    }
}

/* write each token's cache row: the absorbed row is kva's (already normed
 * and roped); the naive one expands per-head keys and values through kv_b */
static void mla_cache_write(const dc_config *c, scratch *s, const layer_w *lw, const kv_view *kv, const tok_batch *b) {
    const int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim;
    const int qk = nope + rd, vd = c->v_head_dim, kvl = c->kv_lora_rank, T = b->T;
    if (kv->attn != DC_ATTN_NAIVE) {
        for (int t = 0; t < T; t++) {
            const float *src = s->kva + (size_t)t * (kvl + rd);
            if (!kv->bf16) {
                memcpy(kv_at(kv, b->pages[t], b->pos[t]), src, sizeof(float) * (kvl + rd));
                continue;
            }
            uint16_t *dst = kv_at(kv, b->pages[t], b->pos[t]);
            for (int i = 0; i < kvl + rd; i++) dst[i] = f32_to_bf16(src[i]);
        }
        return;
    }
    float *lat_in = s->lat; /* (T, kvl): the latents sit strided inside kva */
    for (int t = 0; t < T; t++) memcpy(lat_in + (size_t)t * kvl, s->kva + (size_t)t * (kvl + rd), sizeof(float) * kvl);
    mat kvb;
    if (kvb_of(c, s, lw, &kvb)) matmul_mv(s->kv, lat_in, &kvb, T); /* (T, H, nope+v), the same bits in any batch */
    else memset(s->kv, 0, sizeof(float) * (size_t)T * H * (nope + vd)); /* not reached: mla_reserve grew it */
    for (int t = 0; t < T; t++) {
        float *row = kv_at(kv, b->pages[t], b->pos[t]);
        for (int h = 0; h < H; h++) {
            const float *src = s->kv + ((size_t)t * H + h) * (nope + vd);
            memcpy(row + (size_t)h * qk, src, sizeof(float) * nope);
            memcpy(row + (size_t)h * qk + nope, s->kva + (size_t)t * (kvl + rd) + kvl, sizeof(float) * rd);
            memcpy(row + (size_t)H * qk + (size_t)h * vd, src + nope, sizeof(float) * vd);
        }
    }
}

int mla_reserve(const dc_model *m, scratch *s, int attn, dc_err *err) {
    const dc_config *c = &m->cfg;
    if (attn != DC_ATTN_NAIVE || !m->w.nlayers || m->w.layers[0].kv_b.data) return DC_OK;
    size_t n = (size_t)c->num_attention_heads * (c->qk_nope_head_dim + c->v_head_dim) * c->kv_lora_rank;
    if (!scratch_grow(&s->kvw, &s->kvw_cap, n))
        return err_set(err, DC_ENOMEM, "forward: out of memory for kv_b widened for the naive cache (%zu floats)", n);
    return DC_OK;
}

/* matmul_pair: o1 = x @ W1^T and o2 = x @ W2^T (W1, W2 of the same width:
 * the first query projection and kv_a both read the normed input) in ONE
 * parallel region when matmul takes the matvec kernels for both and they
 * multiply the same kind of activations: x quantised once (before the region
 * for a few tokens), each thread its share of the rows of both (issue 15: a
 * region less per layer). The bits of the two matmul calls. */
static void matmul_pair(float *o1, const mat *W1, float *o2, const mat *W2, const float *x, int T) {
    mv_act a;
    if (!matmul_is_mv(W1, T) || !matmul_is_mv(W2, T) || wtype_get(W1->type)->act != wtype_get(W2->type)->act ||
        !mv_act_init(&a, 0, W1, T)) {
        matmul(o1, x, W1, T);
        matmul(o2, x, W2, T);
        return;
    }
    const int pre = T <= 4;
    if (pre) mv_act_fill(&a, x, T, 0, 1);
    size_t work = ((size_t)W1->rows + W2->rows) * W1->cols * T;
#pragma omp parallel num_threads(work < 32768 ? 1 : omp_get_max_threads())
    {
        int i = omp_get_thread_num(), n = omp_get_num_threads();
        if (!pre) {
            mv_act_fill(&a, x, T, i, n);
#pragma omp barrier
        }
        matmul_mv_share(o1, x, &a, W1, T, i, n);
        matmul_mv_share(o2, x, &a, W2, T, i, n);
    }
}

/* token t's latent normed, its shared rope key and its queries' rope parts
 * roped at its position */
static void norm_rope(const dc_model *m, scratch *s, const layer_w *lw, const tok_batch *b, int t) {
    const dc_config *c = &m->cfg;
    const int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim;
    const int qk = nope + rd, kvl = c->kv_lora_rank;
    float *row = s->kva + (size_t)t * (kvl + rd);
    rmsnorm_forward(row, row, lw->kv_a_norm, 1, kvl, c->rms_norm_eps);
    rope_apply(&m->rope, row + kvl, 1, rd, b->pos[t]);
    rope_apply(&m->rope, s->q + (size_t)t * H * qk + nope, H, qk, b->pos[t]);
}

/* the queries: (T, H, qk), the latent and shared rope key (T, kvl + rope),
 * normed and roped at each token's position */
static void mla_project(const dc_model *m, scratch *s, const layer_w *lw, const tok_batch *b, const float *xn) {
    const dc_config *c = &m->cfg;
    const int T = b->T;
    if (c->q_lora_rank) {
        matmul_pair(s->qa, &lw->q_a, s->kva, &lw->kv_a, xn, T);
        rmsnorm_forward(s->qa, s->qa, lw->q_a_norm, T, c->q_lora_rank, c->rms_norm_eps);
        matmul(s->q, s->qa, &lw->q_b, T);
    } else {
        matmul_pair(s->q, &lw->q, s->kva, &lw->kv_a, xn, T);
    }
    for (int t = 0; t < T; t++) norm_rope(m, s, lw, b, t);
}

/* mla_absorb_run: whether a run of T tokens after pos cached positions
 * (n = pos + T in all) attends in the absorbed form though it is
 * prefill-sized: the cheaper form, by multiply-adds a head,
 *   expanded  n kvl (nope + v)       every cached latent widened by kv_b
 *             + T n (qk + v)         scores and sums, per-head keys
 *   absorbed  T kvl (nope + v)       each query absorbed, each output widened
 *             + T n (2 kvl + rope)   scores and sums on the latents
 * the absorbed side counted twice (it runs at about half the rate of the
 * expanded GEMMs). Mini Q4_0 after 1024 positions, one Zen 5 thread, prefill
 * of 16 / 32 / 48 / 64 tokens: 150 / 284 / 353 / 363 tokens/s expanded, 295
 * / 336 / 346 / 350 absorbed; the rule turns at T = 35 there. So a chat's
 * next turn or a prompt's later chunk over a long cache goes absorbed, and a
 * prompt from position 0 never does (its float32 kv_b products kept; the
 * absorbed form's 8-bit q_nope and latent sums are decode's accuracy). */
static int mla_absorb_run(const dc_config *c, int pos, int T) {
    const double nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
    const double n = (double)pos + T;
    const double expanded = n * kvl * (nope + vd) + T * n * (nope + rd + vd);
    const double absorbed = T * kvl * (nope + vd) + T * n * (2 * kvl + rd);
    return 2 * absorbed < expanded;
}

void mla_forward(const dc_model *m, scratch *s, const layer_w *lw, const kv_view *kv, const tok_batch *b,
                 const float *xn, float *out) {
    const dc_config *c = &m->cfg;
    const int H = c->num_attention_heads, qk = c->qk_nope_head_dim + c->qk_rope_head_dim, vd = c->v_head_dim;
    const int T = b->T;
    mla_project(m, s, lw, b, xn);
    mla_cache_write(c, s, lw, kv, b);

    /* prefill-sized runs of the absorbed cache attend in the expanded form;
     * every other token (decode steps, short runs, naive caches) on its own:
     * att_t flags the expanded tokens, then lists the others */
    int *att = s->att_t, nt = 0;
    memset(att, 0, sizeof(int) * (size_t)T);
    if (kv->attn != DC_ATTN_NAIVE)
        for (int r = 0; r < b->nrun; r++) {
            int t0 = b->run0[r], n = b->run0[r + 1] - t0;
            if (n < MLA_EXPAND_T || mla_absorb_run(c, b->pos[t0], n)) continue;
            if (mla_attend_expanded(m, s, lw, kv, b->pages[t0], b->pos[t0], n, s->q + (size_t)t0 * H * qk,
                                    s->att + (size_t)t0 * H * vd))
                for (int t = t0; t < t0 + n; t++) att[t] = 1;
        }
    for (int t = 0; t < T; t++)
        if (!att[t]) att[nt++] = t;
    if (kv->attn == DC_ATTN_NAIVE) {
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
        for (int i = 0; i < nt; i++)
            for (int h = 0; h < H; h++)
                naive_one(m, s, kv, b->pages[att[i]], b->pos[att[i]], att[i], h, scratch_scores(s, c, omp_get_thread_num()));
    } else if (nt) { /* each thread a contiguous share of the heads (they all cost the same) */
#pragma omp parallel
        {
            int i = omp_get_thread_num(), n = omp_get_num_threads();
            absorbed_heads(m, s, lw, kv, b, H * i / n, H * (i + 1) / n, nt, scratch_scores(s, c, i));
        }
    }
    matmul(out, s->att, &lw->o, T); /* (T, C) */
}

/* mla_one_team: mla_forward of one token (b->T == 1) on an absorbed cache,
 * in the phases of a decode step's one parallel region (model.c), thread t->i
 * of t->n, meeting at team_sync where the old path ended a region: the first
 * projections (x quantised once per kind of activation, each thread its
 * share of both), q_b's, thread 0's norms, rope and cache row, the heads
 * shared out (absorbed_heads, as mla_forward's region), o's. Thread 0 makes
 * each product's activation in its workspace (mv_act_init; slot 0 and 1 for
 * the first two). The same kernels on the same rows: mla_forward's bits.
 * out is complete after the caller's next team_sync. 0 (every thread) when an
 * activation could not get memory. */
/* team_mv: out (1, rows) = x @ W^T, thread 0 making x's activation in
 * sh->a[0] (after whatever it wrote of x), then each thread its share; 0 on
 * every thread when the activation could not get memory */
static int team_mv(const team *t, one_share *sh, float *out, const float *x, const mat *W) {
    if (t->i == 0) {
        sh->ok = mv_act_init(&sh->a[0], 0, W, 1);
        if (sh->ok) mv_act_fill(&sh->a[0], x, 1, 0, 1);
    }
    team_sync(t);
    if (!sh->ok) return 0;
    matmul_mv_share(out, x, &sh->a[0], W, 1, t->i, t->n);
    return 1;
}

int mla_one_team(const team *t, one_share *sh, const dc_model *m, scratch *s, const layer_w *lw, const kv_view *kv,
                 const tok_batch *b, const float *xn, float *out) {
    const dc_config *c = &m->cfg;
    const int H = c->num_attention_heads, i = t->i, n = t->n;
    const mat *W1 = c->q_lora_rank ? &lw->q_a : &lw->q;
    float *o1 = c->q_lora_rank ? s->qa : s->q;
    if (i == 0) {
        sh->ok = mv_act_init(&sh->a[0], 0, W1, 1) && mv_act_init(&sh->a[1], 1, &lw->kv_a, 1);
        if (sh->ok) mv_act_fill(&sh->a[0], xn, 1, 0, 1), mv_act_fill(&sh->a[1], xn, 1, 0, 1);
    }
    team_sync(t);
    if (!sh->ok) return 0;
    matmul_mv_share(o1, xn, &sh->a[0], W1, 1, i, n);
    matmul_mv_share(s->kva, xn, &sh->a[1], &lw->kv_a, 1, i, n);
    team_sync(t);
    if (c->q_lora_rank) {
        if (i == 0) rmsnorm_forward(s->qa, s->qa, lw->q_a_norm, 1, c->q_lora_rank, c->rms_norm_eps);
        if (!team_mv(t, sh, s->q, s->qa, &lw->q_b)) return 0;
        team_sync(t);
    }
    if (i == 0) {
        norm_rope(m, s, lw, b, 0);
        mla_cache_write(c, s, lw, kv, b);
        s->att_t[0] = 0;
    }
    team_sync(t);
    absorbed_heads(m, s, lw, kv, b, H * i / n, H * (i + 1) / n, 1, scratch_scores(s, c, i));
    team_sync(t);
    return team_mv(t, sh, out, s->att, &lw->o);
}

/* ---------------------------------------------------------------- training
 *
 * The naive form over B independent sequences of T tokens (positions 0..T-1),
 * saving what the backward needs; the backward runs it in reverse:
 *   y = att @ o^T;  att_i = sum_j P_ij v_j;  P = softmax(S);  S_ij = scale (q_i . k_j), j <= i
 *   k_j = [k_nope_j (from kv_b), kpe_j (shared by the heads)]
 */

/* The attention core of one sequence b and head h, on strided views of the
 * projections, in register tiles (kernels/tile.h: TILE_MR query or key rows
 * by TILE_NR columns, the operands read in place; issue 15: through OpenBLAS
 * these 64 x 256 x 48 and smaller products ran at a third to a half of its
 * rate on big ones). Causal, by groups of MR rows: query group i0 sees keys
 * j < n = i0 + mt (its last row's), so its scores, P V, dP and dS K stop
 * there; key group j0 is seen by queries i >= j0, so P^T dO and dS^T Q start
 * there. P's and dS's entries above the diagonal up to the group's end are
 * written zero (all that is read), the rest never touched.
 *   S = scale Q K^T, P = softmax by rows, O = P V;  K = [Kn | Kp], Kp shared
 * The keys' columns are packed as panels of NR keys (pack_panels: K^T for
 * the scores into a->k, V^T for dP into the backward's scratch). */
#define MR TILE_MR
#define NR TILE_NR
#ifdef DC_REAL_DOUBLE /* the gradient checks: the same loops on a plain double tile */
typedef void (*rtile_fn)(int mt, int nt, int kc, const real *a, size_t sai, size_t sak, const real *b, size_t sbk,
                         real *c, size_t ldc, real alpha, int acc);
static void tile_dbl(int mt, int nt, int kc, const real *a, size_t sai, size_t sak, const real *b, size_t sbk, real *c,
                     size_t ldc, real alpha, int acc) {
    for (int i = 0; i < mt; i++)
        for (int j = 0; j < nt; j++) {
            real s = 0;
            for (int k = 0; k < kc; k++) s += a[(size_t)i * sai + (size_t)k * sak] * b[(size_t)k * sbk + j];
            c[(size_t)i * ldc + j] = (acc ? c[(size_t)i * ldc + j] : 0) + alpha * s;
        }
}
static rtile_fn rtile_get(void) { return tile_dbl; }
#else
typedef tile_fn rtile_fn;
#define rtile_get tile_get
#endif

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline size_t t16(int T) { return (size_t)(T + NR - 1) / NR * NR; }

#ifdef DC_REAL_DOUBLE
/* tile.h's tile_pack in double (the gradient checks) */
static void pack_panels(real *dst, int w_all, int off, const real *src, size_t ld, int T, int w) {
    for (int j = 0; j < (int)t16(T); j++) {
        real *o = dst + (size_t)(j / NR) * w_all * NR + (size_t)off * NR + j % NR;
        for (int k = 0; k < w; k++) o[(size_t)k * NR] = j < T ? src[(size_t)j * ld + k] : 0;
    }
}
#else
#define pack_panels(...) tile_pack_get()(__VA_ARGS__)
#endif

static void attn_fwd_head(const mla_act *a, const mla_dims *d, int b, int h, int T, rtile_fn tf) {
    const int H = d->H, nope = d->nope, rd = d->rope, qk = nope + rd, vd = d->v;
    const int ldq = H * qk, ldkv = H * (nope + vd), ldo = H * vd;
    const real *Q = a->q + ((size_t)b * T * H + h) * qk, *Kn = a->kv + ((size_t)b * T * H + h) * (nope + vd);
    const real *Kp = a->kpe + (size_t)b * T * rd, *V = Kn + nope;
    real *Kt = a->k + ((size_t)b * H + h) * t16(T) * qk;
    real *P = a->P + ((size_t)b * H + h) * T * T, *O = a->att + ((size_t)b * T * H + h) * vd;
    pack_panels(Kt, qk, 0, Kn, ldkv, T, nope);
    pack_panels(Kt, qk, nope, Kp, rd, T, rd);
    for (int i0 = 0; i0 < T; i0 += MR) {
        const int mt = imin(MR, T - i0), n = i0 + mt;
        real *Pg = P + (size_t)i0 * T;
        for (int j0 = 0; j0 < n; j0 += NR)
            tf(mt, imin(NR, n - j0), qk, Q + (size_t)i0 * ldq, ldq, 1, Kt + (size_t)j0 * qk, NR, Pg + j0, T, d->scale, 0);
        for (int i = i0; i < n; i++) {
            real *row = P + (size_t)i * T, mx = rv_max(row, i + 1);
            rv_scale(row, (real)(1 / rv_exp_shift_sum(row, row, mx, i + 1)), i + 1);
            memset(row + i + 1, 0, sizeof(real) * (n - i - 1));
        }
        for (int c0 = 0; c0 < vd; c0 += NR)
            tf(mt, imin(NR, vd - c0), n, Pg, T, 1, V + c0, ldkv, O + (size_t)i0 * ldo + c0, ldo, 1, 0);
    }
}

/* attn_bwd_head: by blocks of QB query rows (QB a multiple of MR): per
 * group of the block dP = dO V^T, dS = P (dP - rowsum(P dP)) scale, dQ =
 * dS K; then for the keys the block sees dV += P^T dO, dK += dS^T Q over the
 * block's queries (a key group's first block writes, later ones add). The
 * block's P rows are read from memory once and its dS rows live in a
 * QB x T buffer (L2), not a T x T one written out and read back (issue
 * 15: 64 MB of dS a step, and P read twice). dq, dk ([nope | rope] rows,
 * the rope part per head: the caller sums it) and dv are written, not added
 * to what they held; vt: scratch of t16(T) v; dSb: of min(T, QB) T. QB =
 * d->qb, a multiple of MR (mla_dims_init: 96). */
static void attn_bwd_head(const mla_act *a, const mla_dims *d, int b, int h, int T, const real *datt, real *dq,
                          real *dk, real *dv, real *dSb, real *vt, rtile_fn tf) {
    const int H = d->H, nope = d->nope, rd = d->rope, qk = nope + rd, vd = d->v, QB = d->qb;
    const int ldq = H * qk, ldkv = H * (nope + vd), ldo = H * vd;
    const size_t r0 = (size_t)b * T * H + h;
    const real *Q = a->q + r0 * qk, *Kn = a->kv + r0 * (nope + vd), *V = Kn + nope, *Kp = a->kpe + (size_t)b * T * rd;
    const real *P = a->P + ((size_t)b * H + h) * T * T, *dO = datt + r0 * vd;
    pack_panels(vt, vd, 0, V, ldkv, T, vd);
    for (int q0 = 0; q0 < T; q0 += QB) {
        const int q1 = imin(T, q0 + QB);
        for (int i0 = q0; i0 < q1; i0 += MR) {
            const int mt = imin(MR, q1 - i0), n = i0 + mt;
            real *dSg = dSb + (size_t)(i0 - q0) * T, *dqg = dq + (r0 + (size_t)i0 * H) * qk;
            for (int j0 = 0; j0 < n; j0 += NR)
                tf(mt, imin(NR, n - j0), vd, dO + (size_t)i0 * ldo, ldo, 1, vt + (size_t)j0 * vd, NR, dSg + j0, T, 1, 0);
            for (int i = i0; i < n; i++) {
                real *sr = dSb + (size_t)(i - q0) * T;
                rv_softmax_bwd(sr, P + (size_t)i * T, i + 1, d->scale);
                memset(sr + i + 1, 0, sizeof(real) * (n - i - 1));
            }
            for (int c0 = 0; c0 < nope; c0 += NR)
                tf(mt, imin(NR, nope - c0), n, dSg, T, 1, Kn + c0, ldkv, dqg + c0, ldq, 1, 0);
            for (int c0 = 0; c0 < rd; c0 += NR)
                tf(mt, imin(NR, rd - c0), n, dSg, T, 1, Kp + c0, rd, dqg + nope + c0, ldq, 1, 0);
        }
        for (int j0 = 0; j0 < q1; j0 += MR) { /* queries [k0, q1) of the block see key group j0 */
            const int mt = imin(MR, T - j0), k0 = j0 > q0 ? j0 : q0, kc = q1 - k0, acc = j0 < q0;
            const real *Pc = P + (size_t)k0 * T + j0, *dSc = dSb + (size_t)(k0 - q0) * T + j0; /* A(j, i) = P[k0 + i][j0 + j] */
            const size_t rj = r0 + (size_t)j0 * H;
            for (int c0 = 0; c0 < vd; c0 += NR)
                tf(mt, imin(NR, vd - c0), kc, Pc, 1, T, dO + (size_t)k0 * ldo + c0, ldo, dv + rj * vd + c0, ldo, 1, acc);
            for (int c0 = 0; c0 < qk; c0 += NR)
                tf(mt, imin(NR, qk - c0), kc, dSc, 1, T, Q + (size_t)k0 * ldq + c0, ldq, dk + rj * qk + c0, ldq, 1, acc);
        }
    }
}
#undef MR
#undef NR

void mla_dims_init(mla_dims *d, const dc_config *c, const rope *rp, float scale) {
    *d = (mla_dims){c->hidden_size, c->num_attention_heads, c->qk_nope_head_dim, c->qk_rope_head_dim,
                    c->v_head_dim, c->kv_lora_rank, c->q_lora_rank, c->rms_norm_eps, scale, rp, 96, NULL};
}

void mla_act_point(mla_act *a, bump *b, const mla_dims *d, int B, int T) {
    size_t N = (size_t)B * T, qk = d->nope + d->rope;
    a->qa = d->ql ? BUMP(b, N * d->ql, real) : NULL;
    a->qa_rstd = d->ql ? BUMP(b, N, real) : NULL;
    a->qan = d->ql ? BUMP(b, N * d->ql, real) : NULL;
    a->q = BUMP(b, N * d->H * qk, real);
    a->kva = BUMP(b, N * (d->kvl + d->rope), real);
    a->c_rstd = BUMP(b, N, real);
    a->cn = BUMP(b, N * d->kvl, real);
    a->kpe = BUMP(b, N * d->rope, real);
    a->cs = BUMP(b, (size_t)T * d->rope, real);
    a->kv = BUMP(b, N * d->H * (d->nope + d->v), real);
    a->k = BUMP(b, (size_t)B * d->H * t16(T) * qk, real);
    a->P = BUMP(b, (size_t)B * d->H * T * T, real);
    a->att = BUMP(b, N * d->H * d->v, real);
}

size_t mla_scratch_floats(const mla_dims *d, int B, int T) {
    size_t N = (size_t)B * T, qk = d->nope + d->rope;
    /* datt, dq, dk, dv, dkv, dcn, dkva, dqan, dqa, dS (B, H, T, T), V^T panels (B, H, t16(T), v) */
    return N * d->H * d->v * 2 + N * d->H * qk * 2 + N * d->H * (d->nope + d->v) + N * d->kvl +
           N * (d->kvl + d->rope) + 2 * N * (d->ql + 1) + (size_t)B * d->H * T * T + (size_t)B * d->H * t16(T) * d->v;
}

void mla_train_fwd(real *y, const mla_act *a, const mla_w *p, const mla_dims *d, const real *xn, int B, int T) {
    const int N = B * T, H = d->H, nope = d->nope, rd = d->rope, qk = nope + rd, vd = d->v, kvl = d->kvl;
    if (d->ql) {
        linear_fwd(d->lin, a->qa, xn, p->q_a, N, d->C, d->ql);
        rmsnorm_train_fwd(a->qan, a->qa_rstd, a->qa, p->q_a_norm, N, d->ql, d->eps);
        linear_fwd(d->lin, a->q, a->qan, p->q_b, N, d->ql, H * qk);
    } else {
        linear_fwd(d->lin, a->q, xn, p->q, N, d->C, H * qk);
    }
    linear_fwd(d->lin, a->kva, xn, p->kv_a, N, d->C, kvl + rd);
    rope_train_table(d->rp, a->cs, T);
#pragma omp parallel for schedule(static) if (N >= 256)
    for (int t = 0; t < N; t++) {
        const real *row = a->kva + (size_t)t * (kvl + rd), *cs = a->cs + (size_t)(t % T) * rd;
        rmsnorm_row_fwd(a->cn + (size_t)t * kvl, a->c_rstd + t, row, p->kv_a_norm, kvl, d->eps);
        memcpy(a->kpe + (size_t)t * rd, row + kvl, sizeof(real) * rd);
        rope_train_cs(cs, rd, a->kpe + (size_t)t * rd, 1, rd, 0);
        rope_train_cs(cs, rd, a->q + (size_t)t * H * qk + nope, H, qk, 0);
    }
    linear_fwd(d->lin, a->kv, a->cn, p->kv_b, N, kvl, H * (nope + vd));
    /* per sequence and head */
    const rtile_fn tf = rtile_get();
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) attn_fwd_head(a, d, b, h, T, tf);
    linear_fwd(d->lin, y, a->att, p->o, N, H * vd, d->C);
}

void mla_bwd(real *dxn, const mla_w *g, const real *dy, const real *xn, const mla_act *a, const mla_w *p,
             const mla_dims *d, int B, int T, real *scratch) {
    const int N = B * T, H = d->H, nope = d->nope, rd = d->rope, qk = nope + rd, vd = d->v, kvl = d->kvl;
    const size_t nN = (size_t)N;
    real *datt = scratch, *dq = datt + nN * H * vd, *dk = dq + nN * H * qk, *dv = dk + nN * H * qk;
    real *dkv = dv + nN * H * vd, *dcn = dkv + nN * H * (nope + vd), *dkva = dcn + nN * kvl;
    real *dqan = dkva + nN * (kvl + rd), *dqa = dqan + nN * (d->ql + 1), *dPall = dqa + nN * (d->ql + 1);
    real *vt = dPall + (size_t)B * H * T * T;
    /* the sums (linear_bwd adds): dq, dk, dv and dkv are written whole below */
    rv_zero(datt, nN * H * vd);
    rv_zero(dcn, (size_t)(dPall - dcn));
    /* y = att @ o^T */
    linear_bwd(d->lin, datt, g->o, dy, a->att, p->o, N, H * vd, d->C);
    /* attention, per sequence and head (rows of dq, dk, dv of head h are its own) */
    const rtile_fn tf = rtile_get();
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            attn_bwd_head(a, d, b, h, T, datt, dq, dk, dv, dPall + ((size_t)b * H + h) * T * T,
                          vt + ((size_t)b * H + h) * t16(T) * vd, tf);
    /* kv = cn @ kv_b^T, per head [k_nope, v] */
#pragma omp parallel for schedule(static) if (N >= 256)
    for (int t = 0; t < N; t++)
        for (int h = 0; h < H; h++) {
            real *dst = dkv + ((size_t)t * H + h) * (nope + vd);
            memcpy(dst, dk + ((size_t)t * H + h) * qk, sizeof(real) * nope);
            memcpy(dst + nope, dv + ((size_t)t * H + h) * vd, sizeof(real) * vd);
        }
    linear_bwd(d->lin, dcn, g->kv_b, dkv, a->cn, p->kv_b, N, kvl, H * (nope + vd));
#pragma omp parallel for schedule(static) if (N >= 256)
    for (int t = 0; t < N; t++) {
        real *row = dkva + (size_t)t * (kvl + rd);
        const real *cs = a->cs + (size_t)(t % T) * rd;
        /* kpe = rope(kva[kvl:]), shared by every head */
        for (int h = 0; h < H; h++) {
            const real *src = dk + ((size_t)t * H + h) * qk + nope;
            for (int e = 0; e < rd; e++) row[kvl + e] += src[e];
        }
        rope_train_cs(cs, rd, row + kvl, 1, rd, 1);
        /* cn = rmsnorm(kva[:kvl]); its weight's gradient below, in token order */
        rmsnorm_row_bwd(row, dcn + (size_t)t * kvl, a->kva + (size_t)t * (kvl + rd), a->c_rstd[t], p->kv_a_norm, kvl);
        /* q_pe = rope(q_pe) */
        rope_train_cs(cs, rd, dq + (size_t)t * H * qk + nope, H, qk, 1);
    }
    rmsnorm_dw(g->kv_a_norm, dcn, (size_t)kvl, a->kva, (size_t)(kvl + rd), a->c_rstd, N, kvl);
    linear_bwd(d->lin, dxn, g->kv_a, dkva, xn, p->kv_a, N, d->C, kvl + rd);
    if (d->ql) {
        linear_bwd(d->lin, dqan, g->q_b, dq, a->qan, p->q_b, N, d->ql, H * qk);
        rmsnorm_bwd(dqa, g->q_a_norm, dqan, a->qa, a->qa_rstd, p->q_a_norm, N, d->ql);
        linear_bwd(d->lin, dxn, g->q_a, dqa, xn, p->q_a, N, d->C, d->ql);
    } else {
        linear_bwd(d->lin, dxn, g->q, dq, xn, p->q, N, d->C, H * qk);
    }
}
