/*
 * test_prec.c — mixed-precision training's kernels (src/kernels/linear.c,
 * fp8.c) against their oracles, with NMSE figures printed:
 *   bf16 GEMMs = double GEMMs of the bf16-rounded operands; their error vs f32
 *   fp8 quantisation (1x128 tiles, 128x1 tiles, 128x128 blocks) = codes and
 *     scales computed here from dtype.c's scalar e4m3 encoder; round-trip error
 *   fp8_gemm_ref (promotion every 128 of K) = a double oracle of the same
 *     quantised values; the training's fp8 GEMMs (forward, input gradient,
 *     weight gradient) = fp8_gemm_ref on the quantisations V3 §3.3 names
 *   a linear layer's gradients in bf16 / fp8 against f32 (bounded error)
 *   NaN in an operand reaches the output (a broken step is not hidden)
 * Shapes are not multiples of 128, so edge tiles and blocks are partial.
 * Training runs, the FP8 checkpoint and the PyTorch reference: test_prec_train.c.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "kernels/dtype.h"
#include "kernels/fp8.h"
#include "kernels/gemm_bf16.h"
#include "deepc.h"
#include "kernels/linear.h"

static float *randv(rng *r, size_t n, float sd) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = sd * rng_normal(r);
    return v;
}

/* nmse: sum (a - b)^2 / sum b^2 */
static double nmse(const float *a, const double *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) e += (a[i] - b[i]) * (a[i] - b[i]), s += b[i] * b[i];
    return s > 0 ? e / s : e;
}

/* C (M, N) = A (M, K) @ B^T, B (N, K), in double; strides as given */
static void gemm_d(double *C, const float *A, size_t sam, size_t sak, const float *B, size_t sbn, size_t sbk, int M,
                   int N, int K) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A[m * sam + k * sak] * B[n * sbn + k * sbk];
            C[(size_t)m * N + n] = s;
        }
}

static float bf16r(float x) { return bf16_to_f32(f32_to_bf16(x)); }

/* ---------------------------------------------------------------- bf16 */

static void bf16_gemms(void) {
    rng r;
    rng_seed(&r, 1);
    const int N = 37, in = 300, out = 70;
    float *x = randv(&r, (size_t)N * in, 1), *W = randv(&r, (size_t)out * in, 0.05f), *dy = randv(&r, (size_t)N * out, 1);
    float *xr = malloc(sizeof(float) * N * in), *Wr = malloc(sizeof(float) * out * in), *dyr = malloc(sizeof(float) * N * out);
    for (int i = 0; i < N * in; i++) xr[i] = bf16r(x[i]);
    for (int i = 0; i < out * in; i++) Wr[i] = bf16r(W[i]);
    for (int i = 0; i < N * out; i++) dyr[i] = bf16r(dy[i]);
    float *y = malloc(sizeof(float) * N * out), *dx = calloc((size_t)N * in, 4), *dW = calloc((size_t)out * in, 4);
    double *o = malloc(sizeof(double) * N * out), *of = malloc(sizeof(double) * N * out);
    double *ox = malloc(sizeof(double) * N * in), *oxf = malloc(sizeof(double) * N * in);
    double *oW = malloc(sizeof(double) * out * in), *oWf = malloc(sizeof(double) * out * in);
    lin_ctx lc;
    CHECK(lin_ctx_init(&lc, PREC_BF16, 0, 0) == DC_OK, "lin_ctx_init");
    lin_fwd_f(&lc, y, x, W, N, in, out);
    /* dx, dW accumulate: start from 1 */
    for (int i = 0; i < N * in; i++) dx[i] = 1;
    for (int i = 0; i < out * in; i++) dW[i] = 1;
    lin_bwd_f(&lc, dx, dW, dy, x, W, N, in, out);
    lin_ctx_free(&lc);
    gemm_d(o, xr, in, 1, Wr, in, 1, N, out, in);             /* y = xr Wr^T */
    gemm_d(of, x, in, 1, W, in, 1, N, out, in);
    gemm_d(ox, dyr, out, 1, Wr, 1, in, N, in, out);          /* dx = dyr Wr */
    gemm_d(oxf, dy, out, 1, W, 1, in, N, in, out);
    gemm_d(oW, dyr, 1, out, xr, 1, in, out, in, N);          /* dW = dyr^T xr */
    gemm_d(oWf, dy, 1, out, x, 1, in, out, in, N);
    for (int i = 0; i < N * in; i++) ox[i] += 1, oxf[i] += 1;
    for (int i = 0; i < out * in; i++) oW[i] += 1, oWf[i] += 1;
    double e[6] = {nmse(y, o, (size_t)N * out), nmse(dx, ox, (size_t)N * in), nmse(dW, oW, (size_t)out * in),
                   nmse(y, of, (size_t)N * out), nmse(dx, oxf, (size_t)N * in), nmse(dW, oWf, (size_t)out * in)};
    printf("    bf16 GEMM NMSE vs double of the rounded operands: fwd %.1e dgrad %.1e wgrad %.1e\n", e[0], e[1], e[2]);
    printf("    bf16 GEMM NMSE vs f32 operands:                  fwd %.1e dgrad %.1e wgrad %.1e\n", e[3], e[4], e[5]);
    for (int i = 0; i < 3; i++) CHECK(e[i] < 1e-12, "bf16 GEMM %d: NMSE %g vs the rounded operands' oracle", i, e[i]);
    /* rounding happened (not the f32 path), and costs what 8 mantissa bits cost */
    for (int i = 3; i < 6; i++) CHECK(e[i] > 1e-8 && e[i] < 1e-4, "bf16 GEMM %d: NMSE %g vs f32", i - 3, e[i]);
    free(x), free(W), free(dy), free(xr), free(Wr), free(dyr), free(y), free(dx), free(dW);
    free(o), free(of), free(ox), free(oxf), free(oW), free(oWf);
}

/* gemm_bf16 on its own, with each kernel this CPU has (vdpbf16ps; AMX
 * tiles): every layout (A or A^T, B or B^T), written or accumulated, on
 * shapes off both kernels' tiles (12 x 32, 32 x 32 blocks) and odd K,
 * against the double GEMM of the bf16-rounded operands; and 2 threads give
 * the 1-thread bits */
static const char *kernel_name(int k) { return k == GEMM_BF16_AMX ? "AMX" : k == GEMM_BF16_DP ? "AVX512_BF16" : "none"; }

static void bf16_kernel_one(int kern) {
    rng r;
    rng_seed(&r, 7);
    const int S[][3] = {{1, 1, 1}, {13, 33, 7}, {37, 70, 300}, {25, 17, 64}, {12, 32, 2}, {50, 97, 129}, {64, 96, 256}, {33, 65, 33}, {33, 1000, 300}};
    double worst = 0;
    int cases = 0;
    for (size_t s = 0; s < sizeof S / sizeof *S; s++) {
        const int M = S[s][0], N = S[s][1], K = S[s][2];
        float *A = randv(&r, (size_t)M * K, 1), *B = randv(&r, (size_t)K * N, 1), *C = malloc(sizeof(float) * M * N);
        float *C2 = malloc(sizeof(float) * M * N);
        float *Ar = malloc(sizeof(float) * M * K), *Br = malloc(sizeof(float) * K * N);
        double *o = malloc(sizeof(double) * M * N);
        void *scr = malloc(gemm_bf16_scratch(M, N, K));
        for (int i = 0; i < M * K; i++) Ar[i] = bf16r(A[i]);
        for (int i = 0; i < K * N; i++) Br[i] = bf16r(B[i]);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int acc = 0; acc < 2; acc++) {
                    /* op(A)(m, k) = ta ? A[k M + m] : A[m K + k]; op(B)(k, n) = tb ? B[n K + k] : B[k N + n] */
                    gemm_d(o, Ar, ta ? 1 : K, ta ? M : 1, Br, tb ? K : 1, tb ? 1 : N, M, N, K);
                    for (int i = 0; i < M * N; i++) C[i] = acc ? 0.5f : NAN;
                    if (acc)
                        for (int i = 0; i < M * N; i++) o[i] += 0.5;
                    gemm_bf16(C, A, B, M, N, K, ta, tb, acc, scr);
                    double e = nmse(C, o, (size_t)M * N);
                    CHECK(e < 1e-12, "gemm_bf16 %s M=%d N=%d K=%d ta=%d tb=%d acc=%d: NMSE %g", kernel_name(kern), M, N, K,
                          ta, tb, acc, e);
                    worst = e > worst ? e : worst;
                    cases++;
                    if (M * N * K < 1 << 20) continue; /* below gemm_bf16's thresholds for threads (AMX: 1 << 23) */
                    /* 2 threads: AMX packs each A panel in the thread using it (2 panels here); 3: more threads than panels */
                    for (int th = 2; th <= 3; th++) {
                        for (int i = 0; i < M * N; i++) C2[i] = acc ? 0.5f : NAN;
                        omp_set_num_threads(th);
                        gemm_bf16(C2, A, B, M, N, K, ta, tb, acc, scr);
                        omp_set_num_threads(1);
                        CHECK(!memcmp(C, C2, sizeof(float) * M * N), "gemm_bf16 %s M=%d N=%d K=%d ta=%d tb=%d: %d threads, 1 thread's bits",
                              kernel_name(kern), M, N, K, ta, tb, th);
                    }
                }
        free(A), free(B), free(C), free(C2), free(Ar), free(Br), free(o), free(scr);
    }
    /* K = 0: C zeroed, or left as it is when accumulated; M or N = 0: nothing touched */
    float C0[6] = {1, 2, 3, 4, 5, 6}, one = 1;
    gemm_bf16(C0, &one, &one, 2, 3, 0, 0, 0, 1, NULL);
    CHECK(C0[0] == 1 && C0[5] == 6, "gemm_bf16 %s K=0 acc: C kept", kernel_name(kern));
    gemm_bf16(C0, &one, &one, 0, 3, 5, 0, 0, 0, NULL);
    CHECK(C0[0] == 1, "gemm_bf16 %s M=0: C untouched", kernel_name(kern));
    gemm_bf16(C0, &one, &one, 2, 3, 0, 0, 0, 0, NULL);
    CHECK(C0[0] == 0 && C0[5] == 0, "gemm_bf16 %s K=0: C zeroed", kernel_name(kern));
    printf("    gemm_bf16 (%s): %d cases (A / A^T, B / B^T, written / accumulated, shapes off the tiles),"
           " worst NMSE vs double of the rounded operands %.1e\n", kernel_name(kern), cases, worst);
}

static void bf16_kernel(void) {
    if (!gemm_bf16_ok()) {
        printf("    gemm_bf16: this CPU has no AVX512_BF16 (or $DEEPC_ISA is below avx512): not run\n");
        return;
    }
    const int was = gemm_bf16_kernel();
    for (int k = GEMM_BF16_DP; k <= GEMM_BF16_AMX; k++)
        if (gemm_bf16_use(k) == k) bf16_kernel_one(k);
        else printf("    gemm_bf16 (%s): this CPU (or its OS) does not have it: not run\n", kernel_name(k));
    gemm_bf16_use(was);
}

/* ---------------------------------------------------------------- fp8 quantisation */

/* oracle of one tile: scale amax/448 (1 if zero), codes by the scalar encoder */
static float tile_scale(const float *x, size_t stride, int n) {
    float am = 0;
    for (int i = 0; i < n; i++) am = fmaxf(am, fabsf(x[i * stride]));
    return am > 0 ? am / 448.0f : 1.0f;
}

static void fp8_quantise(void) {
    rng r;
    rng_seed(&r, 2);
    const int M = 150, K = 300; /* tiles along K: 128, 128, 44; blocks 128 + 22 rows */
    float *x = randv(&r, (size_t)M * K, 1);
    for (int i = 0; i < M * K; i += 7) x[i] *= 1e-3f; /* small values: subnormal codes */
    for (int k = 0; k < 128; k++) x[5 * K + k] = 0;   /* an all-zero tile */
    uint8_t *q = malloc((size_t)M * K);
    float *s = malloc(sizeof(float) * M * 3), *y = malloc(sizeof(float) * M * K), *yc = malloc(sizeof(float) * M * K);
    float *yb = malloc(sizeof(float) * M * K), *sb = malloc(sizeof(float) * 2 * 3);
    fp8_quant_rows(q, s, x, M, K, K);
    fp8_fq_rows(y, x, M, K);
    int bad_s = 0, bad_q = 0, bad_y = 0, bad_bound = 0;
    double e = 0, n2 = 0;
    for (int m = 0; m < M; m++)
        for (int c = 0; c < 3; c++) {
            int n = c < 2 ? 128 : K - 256;
            const float *t = x + (size_t)m * K + c * 128;
            float sc = tile_scale(t, 1, n);
            bad_s += s[m * 3 + c] != sc;
            for (int k = 0; k < n; k++) {
                size_t i = (size_t)m * K + c * 128 + k;
                uint8_t want = f32_to_fp8e4m3(x[i] / sc);
                bad_q += q[i] != want;
                bad_y += y[i] != fp8e4m3_to_f32(want) * sc;
                /* within half a step: 2^-4 relative for normals, 2^-10 of the scale below */
                bad_bound += fabsf(y[i] - x[i]) > fabsf(x[i]) * 0x1p-4f + sc * 0x1p-10f;
                e += (double)(y[i] - x[i]) * (y[i] - x[i]), n2 += (double)x[i] * x[i];
            }
        }
    printf("    fp8 1x128 tiles: round-trip NMSE %.2e\n", e / n2);
    CHECK(!bad_s && !bad_q && !bad_y && !bad_bound, "1x128 tiles: %d scales, %d codes, %d values differ, %d beyond "
          "half a step", bad_s, bad_q, bad_y, bad_bound);
    CHECK(s[5 * 3] == 1.0f && y[5 * K] == 0, "all-zero tile: scale %g", s[5 * 3]);
    CHECK(e / n2 < 2e-3, "1x128 round-trip NMSE %g", e / n2);
    /* 128x1 tiles down the columns (the weight gradient's operands) */
    fp8_fq_cols(yc, x, M, K);
    bad_y = 0;
    for (int k = 0; k < K; k++)
        for (int c = 0; c < 2; c++) {
            int n = c < 1 ? 128 : M - 128;
            float sc = tile_scale(x + (size_t)c * 128 * K + k, K, n);
            for (int i = 0; i < n; i++) {
                size_t j = (size_t)(c * 128 + i) * K + k;
                bad_y += yc[j] != fp8e4m3_to_f32(f32_to_fp8e4m3(x[j] / sc)) * sc;
            }
        }
    CHECK(!bad_y, "128x1 tiles: %d values differ from the oracle", bad_y);
    /* 128x128 blocks: the official weight_scale_inv layout (2 x 3 blocks) */
    fp8_quant_blocks(q, sb, x, M, K);
    fp8_fq_blocks(yb, x, M, K);
    bad_s = bad_q = bad_y = 0;
    for (int br = 0; br < 2; br++)
        for (int bc = 0; bc < 3; bc++) {
            int r1 = br ? M : 128, c1 = bc < 2 ? (bc + 1) * 128 : K;
            float am = 0;
            for (int i = br * 128; i < r1; i++)
                for (int k = bc * 128; k < c1; k++) am = fmaxf(am, fabsf(x[(size_t)i * K + k]));
            float sc = am / 448.0f;
            bad_s += sb[br * 3 + bc] != sc;
            for (int i = br * 128; i < r1; i++)
                for (int k = bc * 128; k < c1; k++) {
                    size_t j = (size_t)i * K + k;
                    uint8_t want = f32_to_fp8e4m3(x[j] / sc);
                    bad_q += q[j] != want, bad_y += yb[j] != fp8e4m3_to_f32(want) * sc;
                }
        }
    CHECK(!bad_s && !bad_q && !bad_y, "128x128 blocks: %d scales, %d codes, %d values differ", bad_s, bad_q, bad_y);
    /* the fast rounding is the scalar encoder's on every code's neighbourhood */
    int bad_r = 0;
    for (int c = 0; c < 256; c++) {
        float v = fp8e4m3_to_f32((uint8_t)c);
        if (isnan(v)) continue;
        for (int d = -2; d <= 2; d++) {
            float w = nextafterf(v, d < 0 ? -INFINITY : INFINITY);
            for (int k = 1; k < abs(d); k++) w = nextafterf(w, d < 0 ? -INFINITY : INFINITY);
            if (d == 0) w = v;
            if (fabsf(w) > 448) continue;
            bad_r += fp8_round(w) != fp8e4m3_to_f32(f32_to_fp8e4m3(w));
        }
        float mid = c < 127 ? 0.5f * (v + fp8e4m3_to_f32((uint8_t)(c + 1))) : v; /* ties to even */
        if (c < 126) bad_r += fp8_round(mid) != fp8e4m3_to_f32(f32_to_fp8e4m3(mid));
    }
    CHECK(!bad_r, "fp8_round differs from the scalar encoder on %d values", bad_r);
    /* quotients next to every rounding boundary of e4m3 (the passes divide
     * without a division: fp8.c's div8), many scales: 1 x 128 tiles whose
     * first value sets amax, the rest x = (a midpoint between two codes) s,
     * nudged by up to 3 ulps either way, against x / s by the division */
    enum { TR = 4000, TK = 128 };
    float *bx = malloc(sizeof(float) * TR * TK), *by = malloc(sizeof(float) * TR * TK);
    for (int t = 0; t < TR; t++) {
        float *row = bx + (size_t)t * TK;
        row[0] = ldexpf(1.0f + (float)(rng_u64(&r) % 1000000) / 1e6f, (int)(rng_u64(&r) % 60) - 30);
        const float sc = row[0] / 448.0f;
        for (int k = 1; k < TK; k++) {
            const int c = (int)(rng_u64(&r) % 125) + 1; /* codes 1..125: midpoints below 448 */
            float mid = 0.5f * (fp8e4m3_to_f32((uint8_t)c) + fp8e4m3_to_f32((uint8_t)(c + 1))), v = mid * sc;
            for (int d = (int)(rng_u64(&r) % 7) - 3; d; d += d < 0 ? 1 : -1) v = nextafterf(v, d < 0 ? 0.0f : INFINITY);
            row[k] = rng_u64(&r) & 1 ? -v : v;
        }
    }
    fp8_fq_rows(by, bx, TR, TK);
    int bad_m = 0;
    for (int t = 0; t < TR; t++) {
        const float sc = bx[(size_t)t * TK] / 448.0f;
        for (int k = 0; k < TK; k++) {
            const size_t i = (size_t)t * TK + k;
            bad_m += by[i] != fp8e4m3_to_f32(f32_to_fp8e4m3(bx[i] / sc)) * sc;
        }
    }
    CHECK(!bad_m, "quotients at the rounding boundaries: %d of %d values differ from the division's", bad_m, TR * TK);
    fp8_fq_cols(by, bx, TK, TR); /* the same values as 128 x 1 tiles (other scales) */
    bad_m = 0;
    for (int j = 0; j < TR; j++) {
        float am = 0;
        for (int i = 0; i < TK; i++) am = fmaxf(am, fabsf(bx[(size_t)i * TR + j]));
        const float sc = am / 448.0f;
        for (int i = 0; i < TK; i++) bad_m += by[(size_t)i * TR + j] != fp8e4m3_to_f32(f32_to_fp8e4m3(bx[(size_t)i * TR + j] / sc)) * sc;
    }
    CHECK(!bad_m, "128 x 1 tiles of the same values: %d differ from the division's", bad_m);
    free(bx), free(by);
    free(x), free(q), free(s), free(y), free(yc), free(yb), free(sb);
}

/* ---------------------------------------------------------------- fp8 GEMMs */

/* transpose: (R, C) -> (C, R) */
static float *transposed(const float *x, int R, int C) {
    float *t = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) t[(size_t)j * R + i] = x[(size_t)i * C + j];
    return t;
}

/* promoted: C (M, N) by fp8_gemm_ref of A (M, K) in 1x128 tiles and B (N, K)
 * in blocks (bn 128) or tiles (bn 1); also the double oracle of the same
 * quantised values into D */
static void promoted(float *C, double *D, const float *A, const float *B, int M, int N, int K, int bn) {
    int KC = (K + 127) / 128;
    uint8_t *qa = malloc((size_t)M * K), *qb = malloc((size_t)N * K);
    float *sa = malloc(sizeof(float) * M * KC), *sb = malloc(sizeof(float) * N * KC);
    fp8_quant_rows(qa, sa, A, M, K, K);
    if (bn == 1) fp8_quant_rows(qb, sb, B, N, K, K);
    else fp8_quant_blocks(qb, sb, B, N, K);
    fp8_gemm_ref(C, qa, sa, qb, sb, M, N, K, bn);
    double *da = malloc(sizeof(double) * M * K), *db = malloc(sizeof(double) * N * K); /* the dequantised values */
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) da[(size_t)m * K + k] = (double)fp8e4m3_to_f32(qa[(size_t)m * K + k]) * sa[(size_t)m * KC + k / 128];
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            db[(size_t)n * K + k] = (double)fp8e4m3_to_f32(qb[(size_t)n * K + k]) * sb[(size_t)(n / bn) * KC + k / 128];
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += da[(size_t)m * K + k] * db[(size_t)n * K + k];
            D[(size_t)m * N + n] = s;
        }
    free(qa), free(qb), free(sa), free(sb), free(da), free(db);
}

static void fp8_gemms_one(void) {
    rng r;
    rng_seed(&r, 3);
    const int N = 140, in = 300, out = 200; /* tokens span two 128-tiles for the weight gradient */
    float *x = randv(&r, (size_t)N * in, 1), *W = randv(&r, (size_t)out * in, 0.05f), *dy = randv(&r, (size_t)N * out, 1);
    float *y = malloc(sizeof(float) * N * out), *dx = calloc((size_t)N * in, 4), *dW = calloc((size_t)out * in, 4);
    float *py = malloc(sizeof(float) * N * out), *pdx = malloc(sizeof(float) * N * in), *pdW = malloc(sizeof(float) * out * in);
    double *oy = malloc(sizeof(double) * N * out), *odx = malloc(sizeof(double) * N * in), *odW = malloc(sizeof(double) * out * in);
    double *fy = malloc(sizeof(double) * N * out), *fdx = malloc(sizeof(double) * N * in), *fdW = malloc(sizeof(double) * out * in);
    lin_ctx lc;
    CHECK(lin_ctx_init(&lc, PREC_FP8, 0, 0) == DC_OK, "lin_ctx_init");
    lin_fwd_f(&lc, y, x, W, N, in, out);
    lin_bwd_f(&lc, dx, dW, dy, x, W, N, in, out);
    lin_ctx_free(&lc);
    /* forward: K = in; x tiles, W blocks */
    promoted(py, oy, x, W, N, out, in, 128);
    /* input gradient: K = out; dy tiles, W^T in blocks (the same blocks, transposed) */
    float *Wt = transposed(W, out, in), *dyt = transposed(dy, N, out), *xt = transposed(x, N, in);
    promoted(pdx, odx, dy, Wt, N, in, out, 128);
    /* weight gradient: K = the N tokens; dy^T and x^T in 1x128 tiles = 128x1 tiles of dy, x */
    promoted(pdW, odW, dyt, xt, out, in, N, 1);
    gemm_d(fy, x, in, 1, W, in, 1, N, out, in);
    gemm_d(fdx, dy, out, 1, W, 1, in, N, in, out);
    gemm_d(fdW, dy, 1, out, x, 1, in, out, in, N);
    double ref[3] = {nmse(py, oy, (size_t)N * out), nmse(pdx, odx, (size_t)N * in), nmse(pdW, odW, (size_t)out * in)};
    double trn[3] = {nmse(y, oy, (size_t)N * out), nmse(dx, odx, (size_t)N * in), nmse(dW, odW, (size_t)out * in)};
    double f32[3] = {nmse(y, fy, (size_t)N * out), nmse(dx, fdx, (size_t)N * in), nmse(dW, fdW, (size_t)out * in)};
    printf("    fp8_gemm_ref (promoted every 128 K) NMSE vs double of the same codes: fwd %.1e dgrad %.1e wgrad %.1e\n",
           ref[0], ref[1], ref[2]);
    printf("    training fp8 GEMMs NMSE vs that double oracle:                    fwd %.1e dgrad %.1e wgrad %.1e\n",
           trn[0], trn[1], trn[2]);
    printf("    training fp8 GEMMs NMSE vs f32 operands:                          fwd %.1e dgrad %.1e wgrad %.1e\n",
           f32[0], f32[1], f32[2]);
    for (int i = 0; i < 3; i++) {
        CHECK(ref[i] < 1e-12, "fp8_gemm_ref %d: NMSE %g vs the double oracle", i, ref[i]);
        CHECK(trn[i] < 1e-12, "training fp8 GEMM %d: NMSE %g vs the double oracle of V3's quantisation", i, trn[i]);
        CHECK(f32[i] > 1e-6 && f32[i] < 5e-3, "training fp8 GEMM %d: NMSE %g vs f32", i, f32[i]);
    }
    free(x), free(W), free(dy), free(y), free(dx), free(dW), free(py), free(pdx), free(pdW), free(Wt), free(dyt), free(xt);
    free(oy), free(odx), free(odW), free(fy), free(fdx), free(fdW);
}

/* training's fp8 GEMMs on each bf16 kernel this CPU has (where training
 * takes gemm_bf16; else round + sgemm, once) */
static void fp8_gemms(void) {
    const int was = gemm_bf16_kernel();
    if (!gemm_bf16_train()) {
        fp8_gemms_one();
        return;
    }
    for (int k = GEMM_BF16_DP; k <= GEMM_BF16_AMX; k++)
        if (gemm_bf16_use(k) == k) {
            printf("    on the %s kernel:\n", kernel_name(k));
            fp8_gemms_one();
        }
    gemm_bf16_use(was);
}

/* ---------------------------------------------------------------- a linear layer's gradients */

/* loss = sum(r * (x W^T)): dy = r; the gradients in each precision against f32 */
static void linear_grads(void) {
    rng g;
    rng_seed(&g, 4);
    const int N = 64, in = 200, out = 96;
    float *x = randv(&g, (size_t)N * in, 1), *W = randv(&g, (size_t)out * in, 0.05f), *r = randv(&g, (size_t)N * out, 1);
    float *dx[3], *dW[3];
    for (int p = 0; p < 3; p++) {
        dx[p] = calloc((size_t)N * in, 4), dW[p] = calloc((size_t)out * in, 4);
        lin_ctx lc;
        CHECK(lin_ctx_init(&lc, p, 0, 0) == DC_OK, "lin_ctx_init");
        lin_bwd_f(&lc, dx[p], dW[p], r, x, W, N, in, out);
        lin_ctx_free(&lc);
    }
    const double bound[3] = {0, 1e-2, 6e-2};
    for (int p = 1; p < 3; p++) {
        double ex = 0, sx = 0, ew = 0, sw = 0;
        for (int i = 0; i < N * in; i++) ex += pow(dx[p][i] - dx[0][i], 2), sx += pow(dx[0][i], 2);
        for (int i = 0; i < out * in; i++) ew += pow(dW[p][i] - dW[0][i], 2), sw += pow(dW[0][i], 2);
        double rx = sqrt(ex / sx), rw = sqrt(ew / sw);
        printf("    linear layer gradients, %s vs f32: |ddx|/|dx| %.2e  |ddW|/|dW| %.2e\n", prec_name(p), rx, rw);
        CHECK(rx < bound[p] && rw < bound[p], "%s gradients: relative errors %g, %g (bound %g)", prec_name(p), rx, rw,
              bound[p]);
    }
    for (int p = 0; p < 3; p++) free(dx[p]), free(dW[p]);
    free(x), free(W), free(r);
}

/* a NaN in the input reaches the output in every precision */
static void nan_propagates(void) {
    const int N = 3, in = 130, out = 4;
    float x[3 * 130], W[4 * 130], y[12];
    for (int i = 0; i < N * in; i++) x[i] = 0.01f * (i % 17);
    for (int i = 0; i < out * in; i++) W[i] = 0.02f * (i % 5) - 0.04f;
    x[in + 3] = NAN;
    for (int p = 0; p < 3; p++) {
        lin_ctx lc;
        CHECK(lin_ctx_init(&lc, p, 0, 0) == DC_OK, "lin_ctx_init");
        lin_fwd_f(&lc, y, x, W, N, in, out);
        CHECK(isnan(y[out]) && !isnan(y[0]), "%s: NaN in row 1 gives y[1][0] = %g, y[0][0] = %g", prec_name(p), y[out],
              y[0]);
        CHECK(lin_ctx_fallbacks(&lc) == 0, "no GEMM fell back to f32 (%ld)", lin_ctx_fallbacks(&lc));
        lin_ctx_free(&lc);
    }
    CHECK(prec_parse("fp8") == PREC_FP8 && prec_parse("bf16") == PREC_BF16 && prec_parse("f32") == PREC_F32 &&
              prec_parse("fp16") < 0 && prec_parse(NULL) < 0,
          "prec_parse");
}

/* two precisions in one process (two trainers): each context's products are
 * those it gives alone, whatever the other did in between; and products run
 * by two threads of one team at once (a MoE layer's experts) give the bits
 * of the same products run one after another */
static void contexts_apart(void) {
    rng g;
    rng_seed(&g, 5);
    enum { N = 40, in = 256, out = 130, J = 6 };
    float *x = randv(&g, (size_t)J * N * in, 1), *W = randv(&g, (size_t)J * out * in, 0.05f);
    float *y[3], *ya = malloc(sizeof(float) * J * N * out);
    lin_ctx lc[3], lb;
    for (int p = 0; p < 3; p++) {
        y[p] = malloc(sizeof(float) * J * N * out);
        CHECK(lin_ctx_init(&lc[p], p, 0, 0) == DC_OK, "lin_ctx_init %s", prec_name(p));
        lin_fwd_f(&lc[p], y[p], x, W, N, in, out); /* alone */
    }
    for (int p = 2; p >= 0; p--) { /* interleaved, in the other order */
        lin_fwd_f(&lc[p], ya, x, W, N, in, out);
        lin_fwd_f(&lc[(p + 1) % 3], ya + N * out, x, W, N, in, out);
        CHECK(!memcmp(ya, y[p], sizeof(float) * N * out), "%s after %s: the bits it gives alone", prec_name(p),
              prec_name((p + 2) % 3));
    }
    CHECK(memcmp(y[1], y[0], sizeof(float) * N * out) && memcmp(y[2], y[1], sizeof(float) * N * out),
          "the three precisions give three results");
    for (int p = 1; p < 3; p++) {
        /* one after another on one thread (OpenBLAS too), then by a team of 2 */
        CHECK(lin_ctx_init(&lb, p, 0, 0) == DC_OK, "lin_ctx_init");
        for (int j = 0; j < J; j++) lin_fwd_f(&lb, y[0] + (size_t)j * N * out, x + (size_t)j * N * in, W + (size_t)j * out * in, N, in, out);
        lin_ctx_free(&lb);
        omp_set_num_threads(2); /* slots are made for the threads a team may have */
        CHECK(lin_ctx_init(&lb, p, 0, 0) == DC_OK, "lin_ctx_init");
#pragma omp parallel for schedule(static, 1)
        for (int j = 0; j < J; j++) lin_fwd_f(&lb, ya + (size_t)j * N * out, x + (size_t)j * N * in, W + (size_t)j * out * in, N, in, out);
        omp_set_num_threads(1);
        CHECK(!memcmp(ya, y[0], sizeof(float) * J * N * out), "%s: 2 threads of one team, the serial bits", prec_name(p));
        CHECK(lin_ctx_fallbacks(&lb) == 0 && lb.slot[1].cap_a > 0, "%s: both slots used, no fallback to f32 (%ld)",
              prec_name(p), lin_ctx_fallbacks(&lb));
        lin_ctx_free(&lb);
    }
    for (int p = 0; p < 3; p++) lin_ctx_free(&lc[p]), free(y[p]);
    free(x), free(W), free(ya);
}

int main(void) {
    harness_threads(1);
    RUN(bf16_gemms);
    RUN(bf16_kernel);
    RUN(fp8_quantise);
    RUN(fp8_gemms);
    RUN(linear_grads);
    RUN(nan_propagates);
    RUN(contexts_apart);
    return harness_done();
}
