/*
 * matvec_avx2.c — the matvec.h kernels with AVX2, FMA and F16C.
 *
 * f32 / bf16: two 8-wide accumulators per token, a scalar tail.
 * q8: one block (32 bytes) per step with the sign trick of maddubs (unsigned
 * by signed bytes): |x| times w carrying x's sign, pairs summed to int16
 * (at most 2 * 127 * 127, no saturation for |w| <= 127), then to int32 by
 * madd with ones, converted and scaled by d_w * d_x.
 */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include "kernels/dtype.h"
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/simd_common.h"

INL __m256 bf16_load(const uint16_t *p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

/* one row against NT tokens; BF16 selects the weight type */
INL void row8(const void *wp, int BF16, const float *x, int cols, size_t t0, int NT, float *res) {
    x += t0 * cols;
    const float *wf = wp;
    const uint16_t *wh = wp;
    __m256 a0[4], a1[4];
    float tail[4] = {0, 0, 0, 0};
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        /* software prefetch 1 KB ahead (+28% f32 decode with AVX-512, the same idea here) */
        _mm_prefetch(BF16 ? (const char *)(wh + i + 512) : (const char *)(wf + i + 256), _MM_HINT_T0);
        __m256 w0 = BF16 ? bf16_load(wh + i) : _mm256_loadu_ps(wf + i);
        __m256 w1 = BF16 ? bf16_load(wh + i + 8) : _mm256_loadu_ps(wf + i + 8);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[t]);
            a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + (size_t)t * cols + i + 8), a1[t]);
        }
    }
    if (i + 8 <= cols) {
        __m256 w0 = BF16 ? bf16_load(wh + i) : _mm256_loadu_ps(wf + i);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * cols + i), a0[t]);
        i += 8;
    }
    for (; i < cols; i++) {
        float wv = BF16 ? bf16_to_f32(wh[i]) : wf[i];
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) tail[t] += wv * x[(size_t)t * cols + i];
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) res[t] = hsum256(_mm256_add_ps(a0[t], a1[t])) + tail[t];
}

void mv_f32_avx2(float *out, size_t ldo, const float *W, int cols, int r0, int r1, const float *x, int T) {
    for (int r = r0; r < r1; r++) ROW_T4(row8, W + (size_t)r * cols, 0, x, cols)
}

void mv_bf16_avx2(float *out, size_t ldo, const uint16_t *W, int cols, int r0, int r1, const float *x, int T) {
    for (int r = r0; r < r1; r++) ROW_T4(row8, W + (size_t)r * cols, 1, x, cols)
}

INL void q8_row(const block_q8_0 *w, const q8_act *x, int nb, size_t t0, int NT, float *res) {
    const size_t cols = (size_t)nb * QK8_0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 a[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) a[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        _mm_prefetch((const char *)(w + p + 30), _MM_HINT_T0); /* ~1 KB ahead */
        __m256i wv = _mm256_loadu_si256((const __m256i *)w[p].qs);
        float dw = _cvtsh_ss(w[p].d);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            size_t tt = t0 + t;
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->qs + tt * cols + (size_t)p * QK8_0));
            __m256i s16 = _mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(wv, xv));
            __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones));
            a[t] = _mm256_fmadd_ps(s, _mm256_set1_ps(dw * x->d[tt * nb + p]), a[t]);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) res[t] = hsum256(a[t]);
}

void mv_q8_avx2(float *out, size_t ldo, const block_q8_0 *W, int cols, int r0, int r1, const q8_act *x, int T) {
    const int nb = cols / QK8_0;
    for (int r = r0; r < r1; r++) ROW_T4(q8_row, (const block_q8_0 *)W + (size_t)r * nb, x, nb)
}

/* ---------------------------------------------------------------- ggml block types */

/* Q4_0 with integer dot products: a block's 16 bytes give its 32 values
 * (low nibbles first, then high, ggml's order) minus 8, as signed bytes; then
 * q8_row's sign trick against the int8 activations */
INL void q4_0_row(const block_q4_0 *w, const q8_act *x, int nb, size_t t0, int NT, float *res) {
    const size_t cols = (size_t)nb * QK4_0;
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    __m256 a[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) a[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        __m128i q = _mm_loadu_si128((const __m128i *)w[p].qs);
        __m256i wv = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
        wv = _mm256_sub_epi8(_mm256_and_si256(wv, m4), eight);
        float dw = _cvtsh_ss(w[p].d);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            size_t tt = t0 + t;
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->qs + tt * cols + (size_t)p * QK4_0));
            __m256i s16 = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
            __m256 sm = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones));
            a[t] = _mm256_fmadd_ps(sm, _mm256_set1_ps(dw * x->d[tt * nb + p]), a[t]);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) res[t] = hsum256(a[t]);
}

void mv_q4_0_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x, int T) {
    const int nb = cols / QK4_0;
    for (int r = r0; r < r1; r++) ROW_T4(q4_0_row, (const block_q4_0 *)W + (size_t)r * nb, x, nb)
}
/* Q4_K with integer dot products: per 32-value sub-block, the unsigned nibbles
 * times the int8 activations (maddubs takes unsigned by signed as it is), and
 * the min term from the activations' block sum (from q8_act's group sums):
 *   sum_i (d sc q_i - dmin m) x_i dx = dx (d sc sum q_i x_i - dmin m sum x_i) */
INL void q4_k_row(const block_q4_K *w, const q8_act *x, int nb, size_t t0, int NT, float *res) {
    const size_t cols = (size_t)nb * QK_K, nsub = cols / QK8_0;
    const __m256i ones16 = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(15);
    __m256 a[4];
    float mins[4] = {0};
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) a[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const float d = _cvtsh_ss(w[p].d), dmin = _cvtsh_ss(w[p].dmin);
        for (int j = 0; j < 4; j++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(w[p].qs + 32 * j));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            int sc0, m0, sc1, m1;
            gg_k4_scale_min(2 * j, w[p].scales, &sc0, &m0);
            gg_k4_scale_min(2 * j + 1, w[p].scales, &sc1, &m1);
            size_t sb = (size_t)p * 8 + 2 * j; /* the sub-block's index among the row's 32-value blocks */
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                size_t tt = t0 + t;
                const int8_t *xq = x->qs + tt * cols + sb * QK8_0;
                __m256i x0 = _mm256_loadu_si256((const __m256i *)xq), x1 = _mm256_loadu_si256((const __m256i *)(xq + 32));
                __m256 s0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), ones16));
                __m256 s1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), ones16));
                float dx0 = x->d[tt * nsub + sb], dx1 = x->d[tt * nsub + sb + 1];
                a[t] = _mm256_fmadd_ps(s0, _mm256_set1_ps(d * sc0 * dx0), a[t]);
                a[t] = _mm256_fmadd_ps(s1, _mm256_set1_ps(d * sc1 * dx1), a[t]);
                /* the activations' block sums from their group sums: c4 = -128 * sum of 4 */
                const int32_t *c4 = x->c4 + tt * (cols / 4) + sb * 8;
                int32_t xs = 0, ys = 0;
                for (int g = 0; g < 8; g++) xs += c4[g], ys += c4[8 + g];
                mins[t] += dmin * (m0 * dx0 * (float)(xs / -128) + m1 * dx1 * (float)(ys / -128));
            }
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) res[t] = hsum256(a[t]) - mins[t];
}

void mv_q4_k_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x, int T) {
    const int nb = cols / QK_K;
    for (int r = r0; r < r1; r++) ROW_T4(q4_k_row, (const block_q4_K *)W + (size_t)r * nb, x, nb)
}
/* Q6_K with integer dot products: 32 values at a time (one activation block),
 * q = low or high nibble of ql | two bits of qh << 4 (ggml's order: in each
 * half of 128, values 0-31 low of ql[l] | bits 0-1, 32-63 low of ql[l+32] |
 * bits 2-3, 64-95 high of ql[l] | bits 4-5, 96-127 high of ql[l+32] | bits
 * 6-7), value d sc (q - 32) with one int8 scale per 16: the unsigned q times
 * x by maddubs, and the -32 from the activations' sums of 16. */
INL void q6_k_row(const block_q6_K *w, const q8_act *x, int nb, size_t t0, int NT, float *res) {
    const size_t cols = (size_t)nb * QK_K, nblk = cols / QK8_0;
    const __m256i ones16 = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    __m256 a[4];
    float offs[4] = {0};
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) a[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const float d = _cvtsh_ss(w[p].d);
        for (int gi = 0; gi < 8; gi++) {
            int h = gi / 4, sub = gi % 4;
            __m256i ql = _mm256_loadu_si256((const __m256i *)(w[p].ql + 64 * h + 32 * (sub & 1)));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(w[p].qh + 32 * h));
            __m256i lo = sub < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
            __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * sub), m3);
            __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 4));
            const float sa = d * w[p].scales[2 * gi], sb = d * w[p].scales[2 * gi + 1];
            const __m256 S = _mm256_setr_ps(sa, sa, sa, sa, sb, sb, sb, sb);
            const size_t blk = (size_t)p * 8 + gi;
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                size_t tt = t0 + t;
                __m256i xv = _mm256_loadu_si256((const __m256i *)(x->qs + tt * cols + blk * QK8_0));
                __m256 sm = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), ones16));
                float dx = x->d[tt * nblk + blk];
                a[t] = _mm256_fmadd_ps(sm, _mm256_mul_ps(S, _mm256_set1_ps(dx)), a[t]);
                const int32_t *c4 = x->c4 + tt * (cols / 4) + blk * 8; /* c4 = -128 * sum of 4 */
                int32_t s0 = c4[0] + c4[1] + c4[2] + c4[3], s1 = c4[4] + c4[5] + c4[6] + c4[7];
                offs[t] += 32.0f * dx * (sa * (float)(s0 / -128) + sb * (float)(s1 / -128));
            }
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) res[t] = hsum256(a[t]) - offs[t];
}

void mv_q6_k_avx2(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x, int T) {
    const int nb = cols / QK_K;
    for (int r = r0; r < r1; r++) ROW_T4(q6_k_row, (const block_q6_K *)W + (size_t)r * nb, x, nb)
}
