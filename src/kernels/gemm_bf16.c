/*
 * gemm_bf16.c — see gemm_bf16.h.
 *
 * Both operands are packed once, rounded to bf16 as they go, into panels of
 * bf16 pairs along K (a dword = the values at k = 2p and 2p + 1, vdpbf16ps's
 * operand): A in panels of MR rows (per pair p the MR rows' dwords), B in
 * panels of NR = 32 columns (per pair p the 32 columns' dwords: two zmm).
 * The micro-kernel keeps an MR x 32 tile of C in 2 MR zmm accumulators; per
 * pair it loads B's two vectors and broadcasts each of A's MR dwords: 2 MR
 * vdpbf16ps for 64 MR multiply-adds. MR = 12: 24 accumulators, 2 B vectors,
 * the broadcasts from memory (the 32 zmm registers). Tiles are shared over
 * the threads A panel by A panel: one A panel stays in L1 while the B
 * panels (the smaller operand on training's shapes: W, or the 256-wide x)
 * come from L2, and C is written along its rows. (B panel by B panel
 * re-read the whole packed A from L3 for every 32 columns and wrote C down
 * its columns, a page a row: the forward y = x W^T at 2048 x 1024 x 256 ran
 * 238 GF/s a core against 298, Zen 5.) Operands read down their columns
 * are packed a few pairs at a time across all panels (pack_cols), the
 * others 16 rows at a time through an in-register transpose (pack_rows).
 *
 * The kernels carry their own target attributes (the rest of the file, and
 * gemm_bf16_ok, run on any x86-64): nothing here runs unless gemm_bf16_ok.
 */
#include "kernels/gemm_bf16.h"
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu.h"

/* the MR x NR tile of C the micro-kernel keeps in registers; K is not
 * blocked (blocks of 128 pairs, the panels' blocks in L1, measured no
 * faster on the train-bench shapes: Zen 5, wgrad K = 2048 192 -> 184 GF/s) */
enum { MR = 12, NR = 32 };

int gemm_bf16_ok(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    static int ok = -1;
    if (ok < 0)
        ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
    return ok && kern_get()->isa == ISA_AVX512;
#else
    return 0;
#endif
}

/* Intel's cores run vdpbf16ps at half the rate of vfmadd231ps (an Emerald
 * Rapids, model 207: 1.31 G zmm instructions/s against 5.31 G FMAs, 12-24
 * independent chains each), so 64 FLOP an instruction give half f32 FMA's
 * FLOPs: there the rounded operands go through OpenBLAS's sgemm (148 GF/s a
 * core against this kernel's 80). AMD's Zen 4 / Zen 5 run it at the FMA's
 * rate (Zen 5: 184-192 GF/s a core). $DEEPC_BF16_GEMM=dp|sgemm overrides. */
int gemm_bf16_train(void) {
    static int use = -1;
    if (use < 0) {
        const char *e = getenv("DEEPC_BF16_GEMM");
        if (e && !strcmp(e, "dp")) use = 1;
        else if (e && !strcmp(e, "sgemm")) use = 0;
        else {
#if defined(__x86_64__) && defined(__GNUC__)
            __builtin_cpu_init();
            use = !__builtin_cpu_is("intel");
#else
            use = 0;
#endif
        }
    }
    return use && gemm_bf16_ok();
}

static size_t pairs(int K) { return (size_t)(K + 1) / 2; }

/* the packed panels */
size_t gemm_bf16_scratch(int M, int N, int K) {
    const size_t pa = (size_t)(M + MR - 1) / MR * MR, pb = (size_t)(N + NR - 1) / NR * NR;
    return (pa + pb) * pairs(K) * 4 + 64;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* 16 x 16 dwords transposed in the registers, r[i] lane c -> r[c] lane i:
 * the off-diagonal b x b blocks of every 2b x 2b block swapped, b = 8, 4, 2, 1 */
BF16_TARGET static inline __attribute__((always_inline)) void transpose16(__m512i r[16]) {
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

/* pair p of the panel of rows [i0, i0 + w) of op(X) = X (K, n) read down
 * its columns (rows of op(X) past n zero): rows 2p and 2p + 1 of X give the
 * panel's w dwords directly */
BF16_TARGET static inline __attribute__((always_inline)) void col_pair(uint32_t *dst, const float *X, int ld, int n,
                                                                      int K, int i0, int w, size_t p) {
    const int rows = n - i0 < w ? n - i0 : w, k = (int)(2 * p);
    for (int j = 0; j < w; j += 16) {
        const int m = rows - j <= 0 ? 0 : rows - j >= 16 ? 16 : rows - j;
        const __mmask16 mk = (__mmask16)((1u << m) - 1);
        const __m512 lo = _mm512_maskz_loadu_ps(mk, X + (size_t)k * ld + i0 + j);
        const __m512 hi = k + 1 < K ? _mm512_maskz_loadu_ps(mk, X + (size_t)(k + 1) * ld + i0 + j) : _mm512_setzero_ps();
        const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* 32 bf16: lo's 16, then hi's 16 */
        const __m512i d = _mm512_or_si512(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)),
                                          _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16));
        if (w - j >= 16) _mm512_storeu_si512(dst + p * w + j, d);
        else _mm512_mask_storeu_epi32(dst + p * w + j, (__mmask16)((1u << (w - j)) - 1), d);
    }
}

/* pairs of every panel of op(X) = X (K, n) read down its columns (panel i
 * at dst + i w P), PB pairs at a time: block c holds pairs [c PB, c PB +
 * PB) across all the panels, so X is read along its rows. (Panel by panel,
 * a 12-column strip of a 2048 x 1024 dy^T read 48 bytes from each of 2048
 * pages: the wgrad spent as long packing as multiplying.) */
enum { PB = 8 };
static int col_blocks(int K) { return (int)((pairs(K) + PB - 1) / PB); }
BF16_TARGET static void pack_cols(uint32_t *dst, const float *X, int ld, int n, int K, int w, int c) {
    const size_t P = pairs(K), b = (size_t)c * PB, e = P - b < PB ? P : b + PB;
    const int np = (n + w - 1) / w;
    for (int i = 0; i < np; i++)
        for (size_t p = b; p < e; p++) col_pair(dst + (size_t)i * w * P, X, ld, n, K, i * w, w, p);
}

/* panel of rows [i0, i0 + w) of op(X) = X (n, K) row-major with stride ld
 * (w <= 32), as w dwords a pair (p-major); rows past n and k past K zero.
 * Rounded by vcvtne2ps2bf16 (nearest even, as linear.c's rounding; NaNs
 * stay NaNs; subnormals to zero, which vdpbf16ps does anyway): 16 rows at
 * a time converted along k (16 pairs a row: one zmm of dwords each), the
 * 16 x 16 dwords transposed in the registers into 16 pairs' row dwords. */
BF16_TARGET static void pack_rows(uint32_t *dst, const float *X, int ld, int n, int K, int i0, int w) {
    const int rows = n - i0 < w ? n - i0 : w;
    for (int j0 = 0; j0 < w; j0 += 16) {
        const int nw = w - j0 < 16 ? w - j0 : 16; /* the panel's dwords a pair from these rows */
        const __mmask16 sm = (__mmask16)((1u << nw) - 1);
        for (int k = 0; k < K; k += 32) { /* 16 pairs a step */
            const int m = K - k >= 32 ? 32 : K - k;
            const __mmask16 m0 = (__mmask16)(m >= 16 ? 0xffff : (1u << m) - 1), m1 = (__mmask16)(m >= 32 ? 0xffff : m <= 16 ? 0 : (1u << (m - 16)) - 1);
            __m512i r[16];
            #pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                if (j0 + i >= rows) {
                    r[i] = _mm512_setzero_si512();
                    continue;
                }
                const float *x = X + (size_t)(i0 + j0 + i) * ld + k;
                /* cvtne2ps2bf16(b, a): a's 16 values then b's, each pair (2q, 2q + 1) one dword */
                r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + 16), _mm512_maskz_loadu_ps(m0, x));
            }
            transpose16(r);
            const int q = (m + 1) / 2;
            for (int p = 0; p < q; p++) _mm512_mask_storeu_epi32(dst + (size_t)(k / 2 + p) * w + j0, sm, r[p]);
        }
    }
}

/* pairs [p0, p1) of an A panel and a B panel into the MR x 32 tile c0 | c1 */
BF16_TARGET static inline __attribute__((always_inline)) void dp_pairs(__m512 *c0, __m512 *c1, const uint32_t *Ap,
                                                                      const uint32_t *Bp, size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(Bp + p * NR), b1 = (__m512bh)_mm512_loadu_si512(Bp + p * NR + 16);
        const uint32_t *a = Ap + p * MR;
        #pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r]);
            c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
        }
    }
}

/* the masks of a tile's nr (<= 32) columns in its two 16-lane halves */
BF16_TARGET static inline __attribute__((always_inline)) void nr_masks(int nr, __mmask16 *m0, __mmask16 *m1) {
    *m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    *m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
}

/* a tile row's two halves into C's row (added to it when acc), nr columns by the masks */
BF16_TARGET static inline __attribute__((always_inline)) void row_out(float *row, __m512 v0, __m512 v1, __mmask16 m0,
                                                                     __mmask16 m1, int acc) {
    if (acc) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row)), v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
}

/* C rows [i0, i0 + mr), columns [j0, j0 + nr) (+)= A panel x B panel */
BF16_TARGET static void micro(float *C, int ldc, const uint32_t *Ap, const uint32_t *Bp, size_t P, int mr, int nr,
                              int acc) {
    __m512 c0[MR], c1[MR];
    /* the tile's rows of C asked for now, written at the end: with K short (256
     * in the forward) their misses at the end cost as much as the sums */
    for (int r = 0; r < mr; r++) __builtin_prefetch(C + (size_t)r * ldc, 1, 3), __builtin_prefetch(C + (size_t)r * ldc + 16, 1, 3);
    for (int r = 0; r < MR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = _mm512_setzero_ps();
    dp_pairs(c0, c1, Ap, Bp, 0, P);
    __mmask16 m0, m1;
    nr_masks(nr, &m0, &m1);
    for (int r = 0; r < mr; r++) row_out(C + (size_t)r * ldc, c0[r], c1[r], m0, m1, acc);
}

/* micro with fp8 scales: each 64-pair chunk (128 of K) summed from zero in
 * the registers, then tile += (SA SB) chunk, tile in L1 (24 more vectors
 * would not fit the registers); C (+)= tile at the end */
BF16_TARGET static void micro_fp8(float *C, int ldc, const uint32_t *Ap, const uint32_t *Bp, size_t P, int mr, int nr,
                                  int acc, const fp8_scales *s, int i0, int j0) {
    enum { CP = 64 };
    float tile[MR][NR] __attribute__((aligned(64)));
    __mmask16 m0, m1;
    nr_masks(nr, &m0, &m1);
    for (size_t p0 = 0, c = 0; p0 < P; p0 += CP, c++) {
        __m512 c0[MR], c1[MR];
        for (int r = 0; r < MR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = _mm512_setzero_ps();
        const size_t p1 = P - p0 < CP ? P : p0 + CP;
        dp_pairs(c0, c1, Ap, Bp, p0, p1);
        __m512 sb0, sb1;
        if (s->bn > 1) sb0 = sb1 = _mm512_set1_ps(s->b[(size_t)(j0 / s->bn) * s->bj + c * s->bc]); /* 32 | 128: one block */
        else {
            const float *b = s->b + (size_t)j0 * s->bj + c * s->bc; /* bj = 1: the columns' scales in a row */
            sb0 = _mm512_maskz_loadu_ps(m0, b), sb1 = _mm512_maskz_loadu_ps(m1, b + 16);
        }
        for (int r = 0; r < mr; r++) {
            const __m512 f = _mm512_set1_ps(s->a[(size_t)(i0 + r) * s->ai + c * s->ac]);
            const __m512 t0 = c ? _mm512_load_ps(tile[r]) : _mm512_setzero_ps(), t1 = c ? _mm512_load_ps(tile[r] + 16) : _mm512_setzero_ps();
            _mm512_store_ps(tile[r], _mm512_fmadd_ps(c0[r], _mm512_mul_ps(f, sb0), t0));
            _mm512_store_ps(tile[r] + 16, _mm512_fmadd_ps(c1[r], _mm512_mul_ps(f, sb1), t1));
        }
    }
    for (int r = 0; r < mr; r++) row_out(C + (size_t)r * ldc, _mm512_load_ps(tile[r]), _mm512_load_ps(tile[r] + 16), m0, m1, acc);
}

static void bf16_run(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                     const fp8_scales *s, void *scratch) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!acc)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * N, 0, sizeof(float) * N);
        return;
    }
    const int PA = (M + MR - 1) / MR, PB = (N + NR - 1) / NR;
    const size_t P = pairs(K);
    uint32_t *Ap = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *Bp = Ap + (size_t)PA * MR * P;
    /* op(A) (M, K): A (M, K) row-major, or A (K, M) transposed; op(B)^T (N, K): B (N, K) when tb, else B (K, N) */
    const int lda = ta ? M : K, ldb = tb ? K : N;
    const int par = !omp_in_parallel() && (double)M * N * K > 1 << 20;
#pragma omp parallel if (par)
    {
        /* op(X) read down X's columns: by blocks of pairs, every panel; else by panels */
        const int cb = col_blocks(K);
        if (ta) {
#pragma omp for schedule(static) nowait
            for (int c = 0; c < cb; c++) pack_cols(Ap, A, lda, M, K, MR, c);
        } else {
#pragma omp for schedule(static) nowait
            for (int i = 0; i < PA; i++) pack_rows(Ap + (size_t)i * MR * P, A, lda, M, K, i * MR, MR);
        }
        if (!tb) {
#pragma omp for schedule(static)
            for (int c = 0; c < cb; c++) pack_cols(Bp, B, ldb, N, K, NR, c);
        } else {
#pragma omp for schedule(static)
            for (int j = 0; j < PB; j++) pack_rows(Bp + (size_t)j * NR * P, B, ldb, N, K, j * NR, NR);
        }
#pragma omp for schedule(static)
        for (int t = 0; t < PA * PB; t++) {
            const int i = t / PB, j = t % PB; /* A panel by A panel */
            const int mr = M - i * MR < MR ? M - i * MR : MR, nr = N - j * NR < NR ? N - j * NR : NR;
            if (s)
                micro_fp8(C + (size_t)i * MR * N + (size_t)j * NR, N, Ap + (size_t)i * MR * P, Bp + (size_t)j * NR * P, P,
                          mr, nr, acc, s, i * MR, j * NR);
            else
                micro(C + (size_t)i * MR * N + (size_t)j * NR, N, Ap + (size_t)i * MR * P, Bp + (size_t)j * NR * P, P, mr,
                      nr, acc);
        }
    }
}

void gemm_bf16(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc, void *scratch) {
    bf16_run(C, A, B, M, N, K, ta, tb, acc, NULL, scratch);
}

void gemm_bf16_fp8(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                   const fp8_scales *s, void *scratch) {
    bf16_run(C, A, B, M, N, K, ta, tb, acc, s, scratch);
}
#else
void gemm_bf16(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc, void *scratch) {
    (void)C, (void)A, (void)B, (void)M, (void)N, (void)K, (void)ta, (void)tb, (void)acc, (void)scratch;
}
void gemm_bf16_fp8(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                   const fp8_scales *s, void *scratch) {
    (void)C, (void)A, (void)B, (void)M, (void)N, (void)K, (void)ta, (void)tb, (void)acc, (void)s, (void)scratch;
}
#endif
