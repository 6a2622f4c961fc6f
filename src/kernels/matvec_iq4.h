/*
 * matvec_iq4.h — the body of matvec_iq4_avx2.c's kernels, included once per
 * variant with:
 *   IQ4_VNNI  0: AVX2 (maddubs); 1: AVX512_VNNI's vpdpbusd on 256-bit vectors
 *   IQ4_TGT   the functions' target attribute (empty for AVX2)
 *   IQ4_SFX   the entry points' suffix (_avx2, _avx512)
 * Both give each (row, sub-block, token) the same exact integer sum, then the
 * same float operations per lane: the same bits (matvec_iq4_avx2.c says how).
 */
#define IQ4_CAT_(a, b) a##b
#define IQ4_CAT(a, b) IQ4_CAT_(a, b)
#define F(n) IQ4_CAT(n, IQ4_SFX)
#define IQ4_INL INL IQ4_TGT

/* -128 times the sum of token t0 + t's 32 activations from value v (q8_act.c4's 8 groups of 4 added), in every lane */
IQ4_INL void F(iq4_corr)(__m256i *c, const q8_act *x, size_t cols, size_t v, int t0, int NT) {
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        __m256i s = _mm256_loadu_si256((const __m256i *)(x->c4 + ((size_t)(t0 + t) * cols + v) / 4));
        s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0x4e));
        s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0xb1));
        c[t] = _mm256_add_epi32(s, _mm256_permute2x128_si256(s, s, 1));
    }
}

/* the int32 sums s32[t] (t < NT) of one sub-block of 8 rows: q[k] its chunk
 * k (4 bytes of each row in its lane), xb token t0's 32 activations (tokens
 * cols apart), each sum times the rows' scale sc (SC; xs_scale's form) or
 * not. AVX2: maddubs(|a|, w signed as a) per pair, to int32 by madd with sc
 * pairs / ones. VNNI: dpbusd of the codebook values + 128 (unsigned bytes)
 * and a, started from c (iq4_corr: -128 sum a), then times sc. */
IQ4_INL void F(iq4_sums)(const __m256i *q, int SC, __m256i sc, const __m256i *c, const int8_t *xb, size_t cols,
                         int NT, __m256i *s32) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i tw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)IQ4_VALUES));
#if IQ4_VNNI
    const __m256i tu = _mm256_xor_si256(tw, _mm256_set1_epi8((char)0x80)); /* w + 128 */
    __m256i h32[4];
    (void)sc;
#else
    const __m256i mul = SC ? sc : _mm256_set1_epi16(1);
    (void)c;
#endif
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m256i lo = _mm256_and_si256(q[k], m4), hi = _mm256_and_si256(_mm256_srli_epi16(q[k], 4), m4);
#if IQ4_VNNI
        const __m256i ul = _mm256_shuffle_epi8(tu, lo), uh = _mm256_shuffle_epi8(tu, hi);
#else
        const __m256i wl = _mm256_shuffle_epi8(tw, lo), wh = _mm256_shuffle_epi8(tw, hi);
#endif
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            __m256i bl, bh;
            q4_bcast(xb + (size_t)t * cols, k, &bl, &bh);
#if IQ4_VNNI
            s32[t] = _mm256_dpbusd_epi32(k ? s32[t] : c[t], ul, bl);
            h32[t] = _mm256_dpbusd_epi32(k ? h32[t] : _mm256_setzero_si256(), uh, bh);
#else
            const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(bl), _mm256_sign_epi8(wl, bl)), mul);
            const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(bh), _mm256_sign_epi8(wh, bh)), mul);
            const __m256i v = _mm256_add_epi32(pl, ph);
            s32[t] = k ? _mm256_add_epi32(s32[t], v) : v;
#endif
        }
    }
#if IQ4_VNNI
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        s32[t] = _mm256_add_epi32(s32[t], h32[t]);
        if (SC) s32[t] = _mm256_mullo_epi32(s32[t], sc);
    }
#endif
}

/* ---------------------------------------------------------------- iq4_nl */

/* NG interleaved groups g + i gs x NT tokens from t0 (NG NT <= 4) */
IQ4_INL void F(nl_ilv_tile)(float *out, size_t ldo, const block_q4_0x8 *W, int nb, const q8_act *x, int g, int gs,
                            int NG, int r0, int r1, int t0, int NT) {
    const size_t cols = (size_t)nb * QK4_NL;
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int i = 0; i < NG * NT; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const int8_t *xb = x->qs + (size_t)t0 * cols + (size_t)b * QK4_NL;
        __m256i c[4];
#if IQ4_VNNI
        F(iq4_corr)(c, x, cols, (size_t)b * QK4_NL, t0, NT);
#endif
        #pragma GCC unroll 4
        for (int i = 0; i < NG; i++) {
            const block_q4_0x8 *B = W + (size_t)(g + i * gs) * nb + b;
            _mm_prefetch((const char *)B + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)B + PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)B + PF_BYTES + 128, _MM_HINT_T0);
            __m256i q[4], s32[4];
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++) q[k] = _mm256_loadu_si256((const __m256i *)(B->qs + 32 * k));
            F(iq4_sums)(q, 0, _mm256_setzero_si256(), c, xb, cols, NT, s32);
            nl_acc(acc + i * NT, s32, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B->d)), x, nb, b, t0, NT);
        }
    }
    groups_store(out, ldo, acc, NT, g, gs, NG, r0, r1, t0, NT);
}

/* 8 plain rows rows[0..7] x NT tokens from t0 */
IQ4_INL void F(nl_plain_tile)(float *out, size_t ldo, const block_iq4_nl *W, int nb, const q8_act *x, const int *rows,
                              const int *keep, int t0, int NT) {
    const size_t cols = (size_t)nb * QK4_NL;
    const uint8_t *p[8];
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        uint16_t d[8];
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const block_iq4_nl *blk = W + (size_t)rows[j] * nb + b;
            _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
            p[j] = blk->qs, d[j] = blk->d;
        }
        __m256i q[4], s32[4], c[4];
#if IQ4_VNNI
        F(iq4_corr)(c, x, cols, (size_t)b * QK4_NL, t0, NT);
#endif
        gather_chunks(q, p, 0);
        F(iq4_sums)(q, 0, _mm256_setzero_si256(), c, x->qs + (size_t)t0 * cols + (size_t)b * QK4_NL, cols, NT, s32);
        nl_acc(acc, s32, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d)), x, nb, b, t0, NT);
    }
    lanes_store(out, ldo, acc, keep, t0, NT);
}

/* ---------------------------------------------------------------- iq4_xs */

/* sub-block s's scales ls - 32 from lane j = row j's scales_l word (L) and
 * its scales_h shifted left by 4 (H4): as two int16 a lane (AVX2's madd),
 * as int32 (VNNI's mullo) */
IQ4_INL __m256i F(xs_scale)(__m256i L, __m256i H4, int s) {
    const __m256i lo = _mm256_and_si256(_mm256_srli_epi32(L, 4 * s), _mm256_set1_epi32(15));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(H4, 2 * s), _mm256_set1_epi32(0x30));
    const __m256i ls = _mm256_or_si256(lo, hi);
#if IQ4_VNNI
    return _mm256_sub_epi32(ls, _mm256_set1_epi32(32));
#else
    return _mm256_sub_epi16(_mm256_or_si256(ls, _mm256_slli_epi32(ls, 16)), _mm256_set1_epi16(32));
#endif
}

/* super-block p of NG sets of 8 rows, NT tokens from t0, into acc[i NT +
 * t]: B[i] set i's interleaved block (ILV), else P[j] row j's plain one
 * (NG = 1). The sets take each sub-block in turn, so they share its
 * activations. */
IQ4_INL void F(xs_super)(int ILV, __m256 *acc, const block_iq4_xsx8 *const *B, const block_iq4_xs *const *P,
                         const q8_act *x, int nb, int p, int NG, int t0, int NT) {
    const size_t cols = (size_t)nb * QK_K;
    __m256i L[4], H[4];
    __m256 dw[4], a[4];
    const uint8_t *pq[8];
    #pragma GCC unroll 4
    for (int i = 0; i < NG; i++) {
        if (ILV) {
            L[i] = _mm256_loadu_si256((const __m256i *)B[i]->scales_l);
            H[i] = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)B[i]->scales_h));
            dw[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B[i]->d));
        } else {
            uint16_t d[8];
            int32_t l[8], h[8];
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                d[j] = P[j]->d, h[j] = P[j]->scales_h, pq[j] = P[j]->qs;
                memcpy(&l[j], P[j]->scales_l, 4);
            }
            L[i] = _mm256_loadu_si256((const __m256i *)l), H[i] = _mm256_loadu_si256((const __m256i *)h);
            dw[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d));
        }
        H[i] = _mm256_slli_epi32(H[i], 4);
    }
    #pragma GCC unroll 8
    for (int s = 0; s < 8; s++) {
        const size_t v = (size_t)p * QK_K + 32 * (size_t)s;
        const int8_t *xb = x->qs + (size_t)t0 * cols + v;
        __m256i c[4];
#if IQ4_VNNI
        F(iq4_corr)(c, x, cols, v, t0, NT);
#endif
        #pragma GCC unroll 4
        for (int i = 0; i < NG; i++) {
            __m256i q[4], s32[4];
            if (ILV) {
                /* no software prefetch: from memory (bench_matvec decode, Zen 5, 1 / 2
                 * threads, one token) 25-30 / 48-55 GB/s without, 17-23 / 40-45 with
                 * one at 512, 1024 or 2048 bytes ahead, or the next super-block whole */
                const uint8_t *qs = B[i]->qs + 128 * s;
                #pragma GCC unroll 4
                for (int k = 0; k < 4; k++) q[k] = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
            } else {
                gather_chunks(q, pq, 16 * (size_t)s);
            }
            F(iq4_sums)(q, 1, F(xs_scale)(L[i], H[i], s), c, xb, cols, NT, s32);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const __m256 dx = _mm256_broadcast_ss(x->d + ((size_t)(t0 + t) * cols + v) / 32);
                const __m256 f = _mm256_cvtepi32_ps(s32[t]);
                a[i * NT + t] = s ? _mm256_fmadd_ps(f, dx, a[i * NT + t]) : _mm256_mul_ps(f, dx);
            }
        }
    }
    #pragma GCC unroll 4
    for (int i = 0; i < NG; i++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[i * NT + t] = _mm256_fmadd_ps(a[i * NT + t], dw[i], acc[i * NT + t]);
}

/* NG interleaved groups g + i gs x NT tokens from t0 (NG NT <= 4) */
IQ4_INL void F(xs_ilv_tile)(float *out, size_t ldo, const block_iq4_xsx8 *W, int nb, const q8_act *x, int g, int gs,
                            int NG, int r0, int r1, int t0, int NT) {
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int i = 0; i < NG * NT; i++) acc[i] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_iq4_xsx8 *B[4];
        #pragma GCC unroll 4
        for (int i = 0; i < NG; i++) B[i] = W + (size_t)(g + i * gs) * nb + p;
        F(xs_super)(1, acc, B, NULL, x, nb, p, NG, t0, NT);
    }
    groups_store(out, ldo, acc, NT, g, gs, NG, r0, r1, t0, NT);
}

/* 8 plain rows rows[0..7] x NT tokens from t0 */
IQ4_INL void F(xs_plain_tile)(float *out, size_t ldo, const block_iq4_xs *W, int nb, const q8_act *x, const int *rows,
                              const int *keep, int t0, int NT) {
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int p = 0; p < nb; p++) {
        const block_iq4_xs *P[8];
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            P[j] = W + (size_t)rows[j] * nb + p;
            _mm_prefetch((const char *)P[j] + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)P[j] + PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)P[j] + PF_BYTES + 128, _MM_HINT_T0);
        }
        F(xs_super)(0, acc, NULL, P, x, nb, p, 1, t0, NT);
    }
    lanes_store(out, ldo, acc, keep, t0, NT);
}

/* ---------------------------------------------------------------- drivers */

/* rows [r0, r1) of a plain matrix: one token, 8 rows an eighth of the range
 * apart; more, or what is left, 8 adjacent rows (the last set filled up
 * with its last row, computed, not written) */
IQ4_INL void F(plain_mv)(int XS, float *out, size_t ldo, const void *W, int cols, int r0, int r1, const q8_act *x,
                         int T) {
    const int nb = cols / (XS ? QK_K : QK4_NL);
    int r = r0, rows[8], keep[8];
#define PLAIN_TILE(t0, NT)                                                                                        \
    (XS ? F(xs_plain_tile)(out, ldo, W, nb, x, rows, keep, t0, NT) : F(nl_plain_tile)(out, ldo, W, nb, x, rows, keep, t0, NT))
    if (T == 1) {
        const int q = (r1 - r0) / 8;
        for (int k = 0; k < q; k++) {
            for (int j = 0; j < 8; j++) rows[j] = keep[j] = r0 + k + j * q;
            PLAIN_TILE(0, 1);
        }
        r = r0 + 8 * q;
    }
    for (; r < r1; r += 8) {
        for (int j = 0; j < 8; j++) rows[j] = r + j < r1 ? r + j : r1 - 1, keep[j] = r + j < r1 ? r + j : -1;
        BY_TOKENS(T, PLAIN_TILE)
    }
#undef PLAIN_TILE
}

/* the groups of an interleaved matrix that [r0, r1) touches, then its rows
 * % 8 last rows (plain, at their plain place: repack.h); ldo is its rows */
IQ4_INL void F(ilv_mv)(int XS, float *out, size_t ldo, const void *Wv, int cols, int r0, int r1, const q8_act *x,
                       int T) {
    const int nb = cols / (XS ? QK_K : QK4_NL), G = (int)(ldo / 8), g1 = (r1 + 7) / 8 < G ? (r1 + 7) / 8 : G;
    int g = r0 / 8;
#define ILV_TILE(g_, gs, NG, t0, NT)                                                                              \
    (XS ? F(xs_ilv_tile)(out, ldo, Wv, nb, x, g_, gs, NG, r0, r1, t0, NT)                                          \
        : F(nl_ilv_tile)(out, ldo, Wv, nb, x, g_, gs, NG, r0, r1, t0, NT))
    if (T == 1 && g1 > g) {
        const int q = (g1 - g) / 4;
        for (int k = 0; k < q; k++) ILV_TILE(g + k, q, 4, 0, 1);
        g += 4 * q;
    }
#define ONE_GROUP(t0, NT) ILV_TILE(g, 0, 1, t0, NT)
    for (; g < g1; g++) BY_TOKENS(T, ONE_GROUP)
#undef ONE_GROUP
#undef ILV_TILE
    if (r1 > 8 * G) F(plain_mv)(XS, out, ldo, Wv, cols, r0 > 8 * G ? r0 : 8 * G, r1, x, T);
}

IQ4_TGT void F(mv_iq4_nl)(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    F(plain_mv)(0, out, ldo, W, cols, r0, r1, x, T);
}
IQ4_TGT void F(mv_iq4_xs)(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    F(plain_mv)(1, out, ldo, W, cols, r0, r1, x, T);
}
IQ4_TGT void F(mv_iq4_nlx8)(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    F(ilv_mv)(0, out, ldo, W, cols, r0, r1, x, T);
}
IQ4_TGT void F(mv_iq4_xsx8)(float *out, size_t ldo, const void *W, int cols, int r0, int r1, const void *x, int T) {
    F(ilv_mv)(1, out, ldo, W, cols, r0, r1, x, T);
}

#undef F
#undef IQ4_INL
#undef IQ4_CAT
#undef IQ4_CAT_
