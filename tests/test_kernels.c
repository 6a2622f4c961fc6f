/*
 * test_kernels.c — every SIMD matvec kernel against its plain C oracle
 * (src/kernels/matvec_*.c) on random and odd shapes, by normalised mean
 * squared error; the bit-identity of batched tokens; Q8_0 / bf16 round-trip
 * error limits; matmul on converted weights against matmul_ref; row
 * sub-ranges. Every type of wtype.h: f32, bf16, f16, q8, fp8, the GGUF
 * block types q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl,
 * iq4_xs, and their x8 layouts (rows
 * interleaved: their layouts and their bits against the plain types');
 * fp8's every code.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "kernels/cpu.h"
#include "kernels/dtype.h"
#include "kernels/fp8_block.h"
#include "kernels/ggml_types.h"
#include "kernels/repack.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

/* shapes: T tokens, R rows, C cols; q8 / q4_0 need C % 32 == 0, q4_k / q6_k C % 256 == 0 */
static const int SHAPES[][3] = {{1, 1, 1},    {1, 7, 13},    {1, 5, 15},   {1, 3, 17},    {2, 9, 31},
                                {3, 4, 33},   {4, 11, 47},   {5, 6, 64},   {1, 300, 257}, {7, 33, 96},
                                {9, 17, 160}, {1, 64, 1024}, {16, 8, 512}, {2, 3, 4096}, {2, 9, 256},
                                {3, 13, 768}, {5, 31, 1280}, {1, 67, 2304}};
#define NSHAPES (int)(sizeof SHAPES / sizeof *SHAPES)

/* run kernel type ty of table k over rows [r0, r1); x given as floats */
static void run_mv_rows(const kern *k, int ty, float *out, const void *W, int R, int C, const float *x, int T, int r0,
                        int r1) {
    if (wtype_get(ty)->act == WT_ACT_F32) {
        kern_mv(k, ty)(out, R, W, C, r0, r1, x, T);
        return;
    }
    q8_act xa;
    void *buf = aligned_alloc(64, (q8_act_bytes(T, C) + 63) & ~(size_t)63);
    q8_act_quantize(&xa, buf, x, T, C);
    kern_mv(k, ty)(out, R, W, C, r0, r1, &xa, T);
    free(buf);
}

/* run kernel type ty of table k over all rows; x given as floats */
static void run_mv(const kern *k, int ty, float *out, const void *W, int R, int C, const float *x, int T) {
    run_mv_rows(k, ty, out, W, R, C, x, T, 0, R);
}

static void simd_vs_ref(void) {
    const kern *ref = kern_table(ISA_REF);
    rng r;
    rng_seed(&r, 11);
    for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
        const kern *k = kern_table(isa);
        if (!k) {
            printf("    %s: not supported by this CPU, skipped\n", isa == ISA_AVX2 ? "avx2" : "avx512");
            continue;
        }
        double worst[MAT_NTYPES] = {0};
        for (int s = 0; s < NSHAPES; s++) {
            int T = SHAPES[s][0], R = SHAPES[s][1], C = SHAPES[s][2];
            float *w = harness_randv(&r, (size_t)R * C), *x = harness_randv(&r, (size_t)T * C);
            float *a = malloc(sizeof(float) * T * R), *b = malloc(sizeof(float) * T * R);
            for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
                size_t bytes = mat_type_bytes(ty, R, C);
                if (!bytes) continue;
                void *q = malloc(bytes);
                mat W = {w, MAT_F32, R, C};
                mat_convert(&W, ty, q);
                run_mv(k, ty, a, q, R, C, x, T);
                run_mv(ref, ty, b, q, R, C, x, T);
                double e = harness_nmse(a, b, (size_t)T * R);
                worst[ty] = fmax(worst[ty], e);
                CHECK(e < 1e-10, "%s %s T=%d R=%d C=%d: NMSE %g", k->name, mat_type_name(ty), T, R, C, e);
                free(q);
            }
            free(w), free(x), free(a), free(b);
        }
        printf("    %-6s vs ref, worst NMSE:", k->name);
        for (int ty = 0; ty < MAT_NTYPES; ty++) printf("%s %s %.1e", ty == 5 ? "\n          " : "", mat_type_name(ty), worst[ty]);
        printf("\n");
    }
}

/* rows [r0, r1) only: each kernel writes exactly those rows of out, with the
 * bits it gives them in a run over all rows (the order of a token's sum does
 * not depend on r0 / r1), for T = 1..9 and every type */
static void subranges(void) {
    rng r;
    rng_seed(&r, 17);
    /* 71 rows: 8 groups of 8 interleaved rows and 7 plain ones, so the one-token tiles of 4 groups run too */
    const int R = 71, C = 512,
              RANGES[][2] = {{0, 71}, {0, 1}, {5, 6}, {3, 17}, {1, 70}, {70, 71}, {8, 16}, {3, 61}, {33, 71}};
    float *w = harness_randv(&r, (size_t)R * C), *x = harness_randv(&r, (size_t)9 * C);
    float *all = malloc(sizeof(float) * 9 * R), *sub = malloc(sizeof(float) * 9 * R);
    for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
        const kern *k = kern_table(isa);
        if (!k) continue;
        for (int ty = 0; ty < MAT_NTYPES; ty++) {
            void *q = malloc(mat_type_bytes(ty, R, C));
            mat W = {w, MAT_F32, R, C};
            mat_convert(&W, ty, q);
            int ok = 1;
            for (int T = 1; T <= 9; T++) {
                run_mv(k, ty, all, q, R, C, x, T);
                for (size_t g = 0; g < sizeof RANGES / sizeof *RANGES; g++) {
                    int r0 = RANGES[g][0], r1 = RANGES[g][1];
                    for (int i = 0; i < T * R; i++) sub[i] = NAN;
                    run_mv_rows(k, ty, sub, q, R, C, x, T, r0, r1);
                    for (int t = 0; t < T; t++)
                        for (int i = 0; i < R; i++) {
                            float v = sub[(size_t)t * R + i];
                            ok &= i >= r0 && i < r1 ? !memcmp(&v, &all[(size_t)t * R + i], 4) : isnan(v);
                        }
                }
            }
            CHECK(ok, "%s %s: rows [r0, r1) differ from the full run or rows outside were written", k->name,
                  mat_type_name(ty));
            free(q);
        }
    }
    printf("    every type and ISA: rows [r0, r1) bit-identical to the full run, T = 1..9\n");
    free(w), free(x), free(all), free(sub);
}

/* a token's result has the same bits alone and batched with others, at any
 * place: T = 2..9 (every token-group split of the tiles), widths with and
 * without the float kernels' 8-column step and scalar tail (168, 171: the
 * block types skip them) */
static void batch_invariant(void) {
    rng r;
    rng_seed(&r, 12);
    const int R = 37, CS[] = {160, 168, 171, 768}, Tmax = 9;
    for (size_t c = 0; c < sizeof CS / sizeof *CS; c++) {
        const int C = CS[c];
        float *w = harness_randv(&r, (size_t)R * C), *x = harness_randv(&r, (size_t)Tmax * C);
        float *all = malloc(sizeof(float) * Tmax * R), *one = malloc(sizeof(float) * Tmax * R);
        for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
            const kern *k = kern_table(isa);
            if (!k) continue;
            for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
                if (!mat_type_bytes(ty, R, C)) continue;
                void *q = malloc(mat_type_bytes(ty, R, C));
                mat W = {w, MAT_F32, R, C};
                mat_convert(&W, ty, q);
                for (int t = 0; t < Tmax; t++) run_mv(k, ty, one + (size_t)t * R, q, R, C, x + (size_t)t * C, 1);
                int same = 1;
                for (int T = 2; T <= Tmax; T++) {
                    run_mv(k, ty, all, q, R, C, x, T);
                    same &= memcmp(one, all, sizeof(float) * T * R) == 0;
                }
                CHECK(same, "%s %s C=%d: batched tokens differ from one at a time", k->name, mat_type_name(ty), C);
                free(q);
            }
        }
        free(w), free(x), free(all), free(one);
    }
}

/* round trips: q8 error <= half a step (+ the fp16 scale rounding, 127 * 2^-11 step), bf16 relative <= 2^-9 */
static void round_trips(void) {
    rng r;
    rng_seed(&r, 13);
    const int n = 4096;
    float *x = harness_randv(&r, n), *y = malloc(sizeof(float) * n);
    x[5] = 0, x[100] = 1e-30f;
    for (int i = 64; i < 96; i++) x[i] = 0; /* an all-zero block */
    block_q8_0 *q = malloc(sizeof(block_q8_0) * (n / QK8_0));
    q8_quantize_row(q, x, n);
    q8_dequantize_row(y, q, n);
    int ok = 1;
    for (int b = 0; b < n / QK8_0; b++) {
        float amax = 0;
        for (int i = 0; i < QK8_0; i++) amax = fmaxf(amax, fabsf(x[b * QK8_0 + i]));
        for (int i = 0; i < QK8_0; i++) ok &= fabsf(x[b * QK8_0 + i] - y[b * QK8_0 + i]) <= amax / 127 * 0.6f + 1e-7f;
    }
    CHECK(ok, "q8 round trip beyond half a step");
    CHECK(y[70] == 0, "zero block must dequantise to 0");
    double e8 = harness_nmse(y, x, n);
    uint16_t *h = malloc(2 * n);
    bf16_from_f32_row(h, x, n);
    bf16_to_f32_row(y, h, n);
    ok = 1;
    for (int i = 0; i < n; i++) ok &= fabsf(x[i] - y[i]) <= fabsf(x[i]) * (1.0f / 256);
    CHECK(ok, "bf16 round trip beyond 2^-8 relative");
    printf("    round trip NMSE: q8 %.2e  bf16 %.2e\n", e8, harness_nmse(y, x, n));
    CHECK(e8 < 1e-4, "q8 NMSE %g", e8);
    free(x), free(y), free(q), free(h);
}

/* matmul (threads, GEMM path, every dtype) against the oracle on the same weights */
static void matmul_types(void) {
    rng r;
    rng_seed(&r, 14);
    int dims[][3] = {{1, 300, 256}, {2, 65, 96}, {16, 33, 64}, {17, 40, 128}, {70, 129, 160}, {3, 77, 512},
                     {20, 50, 768}};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        int T = dims[d][0], R = dims[d][1], C = dims[d][2];
        float *w = harness_randv(&r, (size_t)R * C), *x = harness_randv(&r, (size_t)T * C);
        float *a = malloc(sizeof(float) * T * R), *b = malloc(sizeof(float) * T * R);
        for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
            if (!mat_type_bytes(ty, R, C)) continue;
            void *q = malloc(mat_type_bytes(ty, R, C));
            mat W = {w, MAT_F32, R, C};
            mat_convert(&W, ty, q);
            mat Q = {q, ty, R, C};
            matmul(a, x, &Q, T);
            matmul_ref(b, x, &Q, T);
            double e = harness_nmse(a, b, (size_t)T * R);
            /* the quantised types also quantise x: about 3e-5 NMSE; the rest is rounding */
            double lim = wtype_get(ty)->act == WT_ACT_Q8 ? 1e-4 : 1e-10;
            CHECK(e < lim, "%s T=%d R=%d C=%d: NMSE %g", mat_type_name(ty), T, R, C, e);
            if (ty > MAT_Q8_0 && ty != MAT_F16 && ty != MAT_FP8) printf("    matmul %-4s T=%-2d R=%-3d C=%-3d vs matmul_ref: NMSE %.1e\n", mat_type_name(ty), T, R, C, e);
            free(q);
        }
        free(w), free(x), free(a), free(b);
    }
}

/* every variant's activation quantiser writes the bytes of q8_act_fill, on
 * random values with zeros, ties at half a step, huge and tiny blocks */
static void q8_fill_same(void) {
    rng r;
    rng_seed(&r, 16);
    const int T = 5, C = 320, n = T * C;
    float *x = harness_randv(&r, n);
    for (int i = 0; i < 32; i++) x[32 + i] = 0;                           /* an all-zero block */
    for (int i = 0; i < 32; i++) x[64 + i] = (float)(i - 16) / 2 * (127.0f / 8); /* v = +-k/2: ties */
    for (int i = 0; i < 32; i++) x[96 + i] *= 1e30f, x[128 + i] *= 1e-30f;
    x[200] = -0.0f;
    size_t bytes = q8_act_bytes(T, C);
    void *b0 = aligned_alloc(64, bytes), *b1 = aligned_alloc(64, bytes);
    for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
        const kern *k = kern_table(isa);
        if (!k) continue;
        memset(b0, 0, bytes), memset(b1, 0, bytes);
        q8_act a0, a1;
        q8_act_quantize(&a0, b0, x, T, C);
        q8_act_point(&a1, b1, T, C);
        k->q8_fill(&a1, x, 0, 2);
        k->q8_fill(&a1, x, 2, T);
        CHECK(!memcmp(b0, b1, bytes), "%s q8_fill differs from q8_act_fill", k->name);
    }
    free(x), free(b0), free(b1);
}

/* matmul on quantised weights: each token's row of the T-token product has
 * the bits of that token alone, whatever T (tiles of tokens for large T,
 * threads over rows), under every ISA this CPU runs; and is near the oracle */
static void matmul_batch_invariant(void) {
    rng r;
    rng_seed(&r, 15);
    const int TS[] = {1, 2, 3, 5, 8, 16, 17, 40, 100}, NT = sizeof TS / sizeof *TS, Tmax = 100;
    /* C = 1280: the token tiles hold 24 tokens, so 40 and 100 span several; R = 97 rows split over threads */
    const int R = 97, C = 1280;
    float *w = harness_randv(&r, (size_t)R * C), *x = harness_randv(&r, (size_t)Tmax * C);
    float *all = malloc(sizeof(float) * Tmax * R), *one = malloc(sizeof(float) * Tmax * R);
    float *ref = malloc(sizeof(float) * Tmax * R);
    for (int ty = MAT_Q8_0; ty < MAT_NTYPES; ty++) {
        if (wtype_get(ty)->gemm_t[ISA_REF]) continue; /* f16 / fp8: sgemm above 16 tokens, as bf16 */
        void *q = malloc(mat_type_bytes(ty, R, C));
        mat F = {w, MAT_F32, R, C}, W = {q, ty, R, C};
        mat_convert(&F, ty, q);
        matmul_ref(ref, x, &W, Tmax);
        for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            for (int t = 0; t < Tmax; t++) matmul(one + (size_t)t * R, x + (size_t)t * C, &W, 1);
            for (int i = 0; i < NT; i++) {
                int T = TS[i], off = T == Tmax ? 0 : 7 % (Tmax - T + 1); /* a window not at the start */
                matmul(all, x + (size_t)off * C, &W, T);
                CHECK(!memcmp(all, one + (size_t)off * R, sizeof(float) * T * R),
                      "%s %s T=%d: a token's row differs from that token alone", kern_get()->name, mat_type_name(ty), T);
            }
            double e = harness_nmse(one, ref, (size_t)Tmax * R);
            CHECK(e < 1e-4, "%s %s: NMSE vs oracle %g", kern_get()->name, mat_type_name(ty), e);
            printf("    %-6s %-4s T=1..100 bit-identical to one at a time, NMSE vs matmul_ref %.1e\n", kern_get()->name,
                   mat_type_name(ty), e);
        }
        free(q);
    }
    kern_select(cpu_best_isa());
    free(w), free(x), free(all), free(one), free(ref);
}

/* the entry points for use inside a caller's parallel region (issue 15:
 * one region for several products): any thread count, any T, every type and
 * ISA give matmul's bits; two activations live at once (slots 0 and 1) */
static void mv_share_in_region(void) {
    rng r;
    rng_seed(&r, 16);
    const int R = 97, C = 1280, TS[] = {1, 3, 20};
    float *w = harness_randv(&r, (size_t)R * C), *x = harness_randv(&r, (size_t)20 * C), *y = harness_randv(&r, (size_t)20 * C);
    float *want = malloc(sizeof(float) * 20 * R), *got = malloc(sizeof(float) * 20 * R);
    float *want2 = malloc(sizeof(float) * 20 * R), *got2 = malloc(sizeof(float) * 20 * R);
    for (int ty = 0; ty < MAT_NTYPES; ty++) {
        void *q = malloc(mat_type_bytes(ty, R, C));
        mat F = {w, MAT_F32, R, C}, W = {q, ty, R, C};
        mat_convert(&F, ty, q);
        for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            for (int i = 0; i < 3; i++) {
                int T = TS[i], same = 1;
                if (!matmul_is_mv(&W, T)) continue;
                matmul(want, x, &W, T), matmul(want2, y, &W, T);
                for (int nthr = 1; nthr <= 3; nthr++) {
                    mv_act a, b;
                    CHECK(mv_act_init(&a, 0, &W, T) && mv_act_init(&b, 1, &W, T), "mv_act_init");
                    memset(got, 0, sizeof(float) * T * R), memset(got2, 0, sizeof(float) * T * R);
#pragma omp parallel num_threads(nthr)
                    {
                        int ith = omp_get_thread_num(), n = omp_get_num_threads();
                        mv_act_fill(&a, x, T, ith, n);
                        mv_act_fill(&b, y, T, ith, n);
#pragma omp barrier
                        matmul_mv_share(got, x, &a, &W, T, ith, n);
                        matmul_mv_share(got2, y, &b, &W, T, ith, n);
                    }
                    same &= !memcmp(got, want, sizeof(float) * T * R) && !memcmp(got2, want2, sizeof(float) * T * R);
                }
                CHECK(same, "%s %s T=%d: matmul_mv_share differs from matmul", kern_get()->name, mat_type_name(ty), T);
            }
        }
        free(q);
    }
    kern_select(cpu_best_isa());
    free(w), free(x), free(y), free(want), free(got), free(want2), free(got2);
}

/* fp8: every e4m3 code (NaN codes aside), subnormals and zero included,
 * through each kernel exactly: rows of 2 blocks holding all 256 codes, one-hot
 * tokens pick one code each, so out == d * e4m3(code) with no rounding (d a
 * power of two or 3 * 2^40), scales from 2^-20 to 2^80 (the AVX2 kernel
 * keeps its sums times 2^-56: neither end may lose bits), T = 1..9, and
 * rows [r0, r1) off any tile */
static void fp8_every_code(void) {
    const int R = 11, C = 256, nb = C / QK_FP8;
    const float DS[] = {0x1p-3f, 0x1p-20f, 0x1p10f, 3.0f * 0x1p40f, 0x1p80f};
    block_fp8 *W = malloc(sizeof(block_fp8) * R * nb);
    float *x = calloc((size_t)9 * C, sizeof(float)), *out = malloc(sizeof(float) * 9 * R);
    for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
        const kern *k = kern_table(isa);
        if (!k) continue;
        int bad = 0;
        for (size_t di = 0; di < sizeof DS / sizeof *DS; di++) {
            for (int r = 0; r < R; r++)
                for (int b = 0; b < nb; b++) {
                    W[r * nb + b].d = DS[di] * (r == 3 && b == 1 ? 0.5f : 1.0f); /* one row mixes two scales */
                    for (int i = 0; i < QK_FP8; i++) {
                        int code = (b * QK_FP8 + i + 37 * r) & 255;
                        W[r * nb + b].qs[i] = (code & 0x7f) == 0x7f ? 0 : (uint8_t)code;
                    }
                }
            for (int T = 1; T <= 9; T++) {
                memset(x, 0, sizeof(float) * 9 * C);
                for (int t = 0; t < T; t++) x[(size_t)t * C + (t * 97 + (int)di * 31 + T) % C] = 1.0f;
                const int r0 = T % 3, r1 = R - (T % 2);
                for (int i = 0; i < 9 * R; i++) out[i] = NAN;
                kern_mv(k, MAT_FP8)(out, R, W, C, r0, r1, x, T);
                for (int t = 0; t < T; t++)
                    for (int r = r0; r < r1; r++) {
                        int j = (t * 97 + (int)di * 31 + T) % C;
                        const block_fp8 *b = &W[r * nb + j / QK_FP8];
                        float want = b->d * fp8e4m3_to_f32(b->qs[j % QK_FP8]), got = out[(size_t)t * R + r];
                        bad += !(want == got); /* -0 and +0 alike: a sum of +0 terms is +0 */
                    }
            }
        }
        CHECK(!bad, "%s fp8: %d outputs differ from d * e4m3(code)", k->name, bad);
    }
    printf("    fp8: all 254 codes (subnormals, +-0) exact through every kernel, d 2^-20..2^80, T=1..9\n");
    free(W), free(x), free(out);
}

/* fp8 with activations of 2^64 and more (the kernel then scales the weights
 * by 2^64, not x: the same exact products): each token gives the bits it gives
 * alone, beside tokens of ordinary size and batched with them, and is near
 * the oracle; rows [r0, r1) of fewer than 4 rows (x reordered per use) too */
static void fp8_huge_x(void) {
    rng r;
    rng_seed(&r, 23);
    const int R = 37, C = 384, T = 5;
    float *w = harness_randv(&r, (size_t)R * C), *x = harness_randv(&r, (size_t)T * C);
    float *all = malloc(sizeof(float) * T * R), *one = malloc(sizeof(float) * R), *ref = malloc(sizeof(float) * T * R);
    x[2 * C + 77] = 0x1p70f, x[4 * C + 5] = -0x1p100f, x[4 * C + 300] = 0x1p64f;
    void *q = malloc(mat_type_bytes(MAT_FP8, R, C));
    mat F = {w, MAT_F32, R, C};
    mat_convert(&F, MAT_FP8, q);
    run_mv(kern_table(ISA_REF), MAT_FP8, ref, q, R, C, x, T);
    for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
        const kern *k = kern_table(isa);
        if (!k) continue;
        run_mv(k, MAT_FP8, all, q, R, C, x, T);
        int same = 1;
        for (int t = 0; t < T; t++) {
            run_mv(k, MAT_FP8, one, q, R, C, x + (size_t)t * C, 1);
            same &= !memcmp(one, all + (size_t)t * R, sizeof(float) * R);
            for (int r0 = 0; r0 + 3 <= R; r0 += 17) {
                run_mv_rows(k, MAT_FP8, one, q, R, C, x + (size_t)t * C, 1, r0, r0 + 3);
                same &= !memcmp(one + r0, all + (size_t)t * R + r0, sizeof(float) * 3);
            }
            double e = harness_nmse(all + (size_t)t * R, ref + (size_t)t * R, R);
            CHECK(e < 1e-10, "%s fp8 token %d (huge x: %d): NMSE vs ref %g", k->name, t, t == 2 || t == 4, e);
        }
        CHECK(same, "%s fp8 with |x| >= 2^64: a token's bits differ alone, batched or in 3 rows", k->name);
    }
    printf("    fp8: tokens with |x| >= 2^64 (weights scaled instead of x) alone = batched = in 3 rows, near ref\n");
    free(w), free(x), free(all), free(one), free(ref), free(q);
}

/* the interleaved types (repack.h), each beside its plain type: packing
 * keeps every row (taken back out byte for byte), in place and into a new
 * buffer alike, mat_convert's from_f32_mat equals quantise-then-pack; and
 * the interleaved kernel gives the plain kernel's bits for every row (whole
 * groups, the rows % 8 tail) and token, T = 1..9, under every ISA (the GGUF
 * loader repacks copied matrices but not borrowed ones: the same logits
 * either way) */
typedef struct ilv_case {
    int plain, ilv, C;
    size_t blk;
    void (*pack)(void *, const void *, int, int);
    int (*repack)(void *, int, int);
    void (*row)(const void *, int, int, int, void *);
} ilv_case;

static void row_q4_0(const void *W, int R, int r, int C, void *d) { q4_0x8_row(W, R, r, C, d); }
static void row_q4_k(const void *W, int R, int r, int C, void *d) { q4_kx8_row(W, R, r, C, d); }
static void row_q6_k(const void *W, int R, int r, int C, void *d) { q6_kx8_row(W, R, r, C, d); }
static void row_q5_k(const void *W, int R, int r, int C, void *d) { q5_kx8_row(W, R, r, C, d); }
static void row_q5_0(const void *W, int R, int r, int C, void *d) { q5_0x8_row(W, R, r, C, d); }
static void row_q4_1(const void *W, int R, int r, int C, void *d) { q4_1x8_row(W, R, r, C, d); }
static void row_q5_1(const void *W, int R, int r, int C, void *d) { q5_1x8_row(W, R, r, C, d); }
static void row_q3_k(const void *W, int R, int r, int C, void *d) { q3_kx8_row(W, R, r, C, d); }
static void row_q2_k(const void *W, int R, int r, int C, void *d) { q2_kx8_row(W, R, r, C, d); }
static void row_iq4_nl(const void *W, int R, int r, int C, void *d) { iq4_nlx8_row(W, R, r, C, d); }
static void row_iq4_xs(const void *W, int R, int r, int C, void *d) { iq4_xsx8_row(W, R, r, C, d); }

static void ilv_one(const ilv_case *k, int R, rng *r) {
    const int C = k->C, nb = C / wtype_get(k->plain)->blck;
    const size_t bytes = mat_type_bytes(k->plain, R, C);
    float *w = harness_randv(r, (size_t)R * C), *x = harness_randv(r, (size_t)9 * C);
    char *plain = malloc(bytes), *pk = malloc(bytes), *inpl = malloc(bytes), *conv = malloc(bytes), *row = malloc(k->blk * nb);
    float *a = malloc(sizeof(float) * 9 * R), *b = malloc(sizeof(float) * 9 * R);
    mat F = {w, MAT_F32, R, C};
    mat_convert(&F, k->plain, plain);
    k->pack(pk, plain, R, C);
    memcpy(inpl, plain, bytes);
    const char *nm = mat_type_name(k->ilv);
    CHECK(k->repack(inpl, R, C) && !memcmp(inpl, pk, bytes), "%s R=%d: in-place repack differs from pack", nm, R);
    CHECK(mat_convert(&F, k->ilv, conv) && !memcmp(conv, pk, bytes), "%s R=%d: from_f32_mat differs", nm, R);
    int rows_ok = 1;
    for (int i = 0; i < R; i++) {
        k->row(pk, R, i, C, row);
        rows_ok &= !memcmp(row, plain + (size_t)i * nb * k->blk, nb * k->blk);
    }
    CHECK(rows_ok, "%s R=%d: a row taken back out differs from the plain row", nm, R);
    CHECK(R < 8 || memcmp(pk, plain, bytes), "%s R=%d: packing left the bytes as they were", nm, R);
    for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
        const kern *kt = kern_table(isa);
        if (!kt) continue;
        int same = 1;
        for (int T = 1; T <= 9; T++) {
            run_mv(kt, k->plain, a, plain, R, C, x, T);
            run_mv(kt, k->ilv, b, pk, R, C, x, T);
            same &= !memcmp(a, b, sizeof(float) * T * R);
        }
        CHECK(same, "%s %s R=%d: interleaved and plain give different bits", kt->name, nm, R);
    }
    free(w), free(x), free(plain), free(pk), free(inpl), free(conv), free(a), free(b), free(row);
}

static void interleaved_layouts(void) {
    rng r;
    rng_seed(&r, 19);
    /* each type at a short row, then at a row longer than from_f32's and row_f32's 8192-value
     * chunks (266 blocks, 33 super-blocks) */
    static const struct {
        ilv_case k;
        int long_cols;
    } K[] = {{{MAT_Q4_0, MAT_Q4_0X8, 320, sizeof(block_q4_0), q4_0x8_pack, q4_0x8_repack, row_q4_0}, 8512},
             {{MAT_Q4_K, MAT_Q4_KX8, 512, sizeof(block_q4_K), q4_kx8_pack, q4_kx8_repack, row_q4_k}, 8448},
             {{MAT_Q6_K, MAT_Q6_KX8, 512, sizeof(block_q6_K), q6_kx8_pack, q6_kx8_repack, row_q6_k}, 8448},
             {{MAT_Q5_K, MAT_Q5_KX8, 512, sizeof(block_q5_K), q5_kx8_pack, q5_kx8_repack, row_q5_k}, 8448},
             {{MAT_Q5_0, MAT_Q5_0X8, 320, sizeof(block_q5_0), q5_0x8_pack, q5_0x8_repack, row_q5_0}, 8512},
             {{MAT_Q4_1, MAT_Q4_1X8, 320, sizeof(block_q4_1), q4_1x8_pack, q4_1x8_repack, row_q4_1}, 8512},
             {{MAT_Q5_1, MAT_Q5_1X8, 320, sizeof(block_q5_1), q5_1x8_pack, q5_1x8_repack, row_q5_1}, 8512},
             {{MAT_Q3_K, MAT_Q3_KX8, 512, sizeof(block_q3_K), q3_kx8_pack, q3_kx8_repack, row_q3_k}, 8448},
             {{MAT_Q2_K, MAT_Q2_KX8, 512, sizeof(block_q2_K), q2_kx8_pack, q2_kx8_repack, row_q2_k}, 8448},
             {{MAT_IQ4_NL, MAT_IQ4_NLX8, 320, sizeof(block_iq4_nl), iq4_nlx8_pack, iq4_nlx8_repack, row_iq4_nl}, 8512},
             {{MAT_IQ4_XS, MAT_IQ4_XSX8, 512, sizeof(block_iq4_xs), iq4_xsx8_pack, iq4_xsx8_repack, row_iq4_xs}, 8448}};
    const int RS[] = {8, 29, 64, 3};
    for (size_t k = 0; k < sizeof K / sizeof *K; k++) {
        for (size_t ri = 0; ri < sizeof RS / sizeof *RS; ri++) ilv_one(&K[k].k, RS[ri], &r);
        ilv_case l = K[k].k;
        l.C = K[k].long_cols;
        ilv_one(&l, 9, &r);
    }
    printf("    q4_0x8, q4_kx8, q6_kx8, q5_kx8, q5_0x8, q4_1x8, q5_1x8, q3_kx8, q2_kx8, iq4_nlx8, iq4_xsx8: rows kept through pack / repack / from_f32; the plain type's bits (rows 3, 8, 29, 64, and 9 rows past the 8192-value chunks; T=1..9)\n");
}

/* the IQ4 kernels at their integer extremes: every weight the codebook's
 * -127 or 113 and every activation +-127, so each product pair is +-32258
 * (two of them overflow int16: a kernel adding them there saturates), with
 * IQ4_XS's scales at -32 and 31; every kernel equals the oracle */
static void iq4_extremes(void) {
    const int R = 19, C = 512, T = 3; /* 2 groups of 8 interleaved rows and 3 plain ones */
    float *x = malloc(sizeof(float) * T * C), *a = malloc(sizeof(float) * T * R), *b = malloc(sizeof(float) * T * R);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) x[t * C + i] = t == 0 ? 1.0f : t == 1 ? -2.0f : ((i / 2) % 2 ? 3.0f : -3.0f);
    block_iq4_nl *nl = malloc(sizeof(block_iq4_nl) * R * C / 32), *nlx = malloc(sizeof(block_iq4_nl) * R * C / 32);
    block_iq4_xs *xs = malloc(sizeof(block_iq4_xs) * R * C / 256), *xsx = malloc(sizeof(block_iq4_xs) * R * C / 256);
    for (int r = 0; r < R; r++) {
        const uint8_t q = r % 3 == 0 ? 0x00 : r % 3 == 1 ? 0xFF : 0x0F; /* -127 / 113 / both */
        for (int b = 0; b < C / 32; b++) {
            block_iq4_nl *k = nl + r * (C / 32) + b;
            k->d = f32_to_f16(r % 2 ? 0.5f : -0.25f);
            memset(k->qs, q, sizeof k->qs);
        }
        for (int b = 0; b < C / 256; b++) {
            block_iq4_xs *k = xs + r * (C / 256) + b;
            k->d = f32_to_f16(0.125f);
            k->scales_h = r % 2 ? 0 : 0xFFFF; /* scale codes 0 (-32) or 63 (31), some mixed below */
            memset(k->scales_l, r % 2 ? 0 : 0xFF, sizeof k->scales_l);
            if (r % 4 == 2) k->scales_l[1] = 0x0F, k->scales_h = 0x0F0F;
            memset(k->qs, q, sizeof k->qs);
        }
    }
    iq4_nlx8_pack(nlx, nl, R, C);
    iq4_xsx8_pack(xsx, xs, R, C);
    const struct {
        int type;
        const void *W;
    } K[] = {{MAT_IQ4_NL, nl}, {MAT_IQ4_NLX8, nlx}, {MAT_IQ4_XS, xs}, {MAT_IQ4_XSX8, xsx}};
    for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
        const kern *k = kern_table(isa);
        if (!k) continue;
        for (size_t i = 0; i < sizeof K / sizeof *K; i++) {
            run_mv(k, K[i].type, a, K[i].W, R, C, x, T);
            run_mv(kern_table(ISA_REF), K[i].type, b, K[i].W, R, C, x, T);
            const double e = harness_nmse(a, b, (size_t)T * R);
            CHECK(e < 1e-12, "%s %s at the extremes: NMSE %g against the oracle", k->name, mat_type_name(K[i].type), e);
        }
    }
    printf("    iq4_nl / iq4_xs (plain and x8): weights -127 / 113, activations +-127, scales -32 / 31: = oracle\n");
    /* the AVX2 (maddubs) and VNNI (vpdpbusd) kernels: the same integers, the same float steps, so the same bits */
    const kern *k2 = kern_table(ISA_AVX2), *k5 = kern_table(ISA_AVX512);
    if (k2 && k5) {
        rng r;
        rng_seed(&r, 23);
        const int RR = 29, CC = 768;
        float *w = harness_randv(&r, (size_t)RR * CC), *xr = harness_randv(&r, (size_t)9 * CC);
        float *o2 = malloc(sizeof(float) * 9 * RR), *o5 = malloc(sizeof(float) * 9 * RR);
        int same = 1;
        for (int ty = MAT_IQ4_NL; ty <= MAT_IQ4_XSX8; ty++) {
            void *q = malloc(mat_type_bytes(ty, RR, CC));
            mat Wf = {w, MAT_F32, RR, CC};
            mat_convert(&Wf, ty, q);
            for (int T = 1; T <= 9; T++) {
                run_mv(k2, ty, o2, q, RR, CC, xr, T);
                run_mv(k5, ty, o5, q, RR, CC, xr, T);
                same &= !memcmp(o2, o5, sizeof(float) * T * RR);
            }
            free(q);
        }
        CHECK(same, "iq4 types: the AVX2 and AVX-512 kernels give different bits");
        printf("    iq4_nl, iq4_xs, iq4_nlx8, iq4_xsx8: AVX2 = AVX-512 (VNNI) bit for bit, T=1..9\n");
        free(w), free(xr), free(o2), free(o5);
    }
    free(x), free(a), free(b), free(nl), free(nlx), free(xs), free(xsx);
}

int main(void) {
    printf("    best ISA on this CPU: %s\n", kern_table(cpu_best_isa())->name);
    RUN(simd_vs_ref);
    RUN(batch_invariant);
    RUN(subranges);
    RUN(round_trips);
    RUN(matmul_types);
    RUN(q8_fill_same);
    RUN(matmul_batch_invariant);
    RUN(mv_share_in_region);
    RUN(fp8_every_code);
    RUN(fp8_huge_x);
    RUN(interleaved_layouts);
    RUN(iq4_extremes);
    return harness_done();
}
