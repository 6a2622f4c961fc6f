/* test_gemm.c — prefill's GEMM on float weights as stored (src/kernels/gemm*.c):
 * the packers of every ISA against the plain C ones to the bit; gemm_run on
 * f32, bf16, f16 and fp8 against matmul_ref by NMSE on odd shapes (rows,
 * cols and T no multiples of the tiles, T just above matmul's threshold,
 * large K), under every ISA this CPU runs (DEEPC_ISA's levels, forced with
 * kern_select); AVX2 against the plain C oracle to the bit; a token's bits
 * whatever T and the thread count; matmul above gemm_t taking this path. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"

static const int FTYPES[] = {MAT_F32, MAT_BF16, MAT_F16, MAT_FP8};
#define NFT 4

/* the packer of type ty for ISA isa (gemm.h's names; the table holds none for f32) */
static gemm_pack_fn packer(int ty, int isa) {
    static const gemm_pack_fn P[NFT][2] = {{gemm_pack_f32_ref, gemm_pack_f32_avx2},
                                          {gemm_pack_bf16_ref, gemm_pack_bf16_avx2},
                                          {gemm_pack_f16_ref, gemm_pack_f16_avx2},
                                          {gemm_pack_fp8_ref, gemm_pack_fp8_avx2}};
    for (int i = 0; i < NFT; i++)
        if (FTYPES[i] == ty) return P[i][isa == ISA_REF ? 0 : 1];
    return NULL;
}

/* W (R, C) random, converted to ty; caller frees */
static void *weights(rng *r, int ty, int R, int C) {
    float *w = harness_randv(r, (size_t)R * C);
    void *q = malloc(mat_type_bytes(ty, R, C));
    mat F = {w, MAT_F32, R, C};
    mat_convert(&F, ty, q);
    free(w);
    return q;
}

/* (T, R, C): T just above matmul's thresholds (9, 11), T % 6 != 0, R % 16
 * != 0, C % 8 != 0 (f32 / bf16 / f16 only: fp8 needs C % 128 == 0), C over
 * several 256-column slices, large K, T over a 192-token block */
static const int SHAPES[][3] = {{9, 23, 40},   {11, 50, 256},  {17, 7, 13},     {17, 33, 47},    {1, 1, 1},
                                {6, 16, 8},    {19, 37, 384},  {23, 16, 128},   {64, 50, 640},   {18, 129, 257},
                                {25, 64, 1000}, {7, 48, 4096}, {130, 21, 896}, {41, 100, 2816}, {200, 35, 520}};
#define NSHAPES (int)(sizeof SHAPES / sizeof *SHAPES)

/* each ISA's packer writes the plain C packer's floats: whole panels, an
 * edge panel of 5 rows, slices ending in a partial group of 8 */
static void packers_same(void) {
    rng r;
    rng_seed(&r, 21);
    const int R = 21, C = 896, k0s[] = {0, 256, 768}; /* 768: the last slice, 128 columns */
    float *a = aligned_alloc(64, sizeof(float) * GEMM_NR * GEMM_KC), *b = aligned_alloc(64, sizeof(float) * GEMM_NR * GEMM_KC);
    for (int f = 0; f < NFT; f++) {
        const int ty = FTYPES[f];
        void *q = weights(&r, ty, R, C);
        for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            for (int i = 0; i < 3; i++)
                for (int nr = 16; nr >= 5; nr -= 11) {
                    const int k0 = k0s[i], kc = k0 + GEMM_KC <= C ? GEMM_KC - (ty == MAT_FP8 ? 0 : 3) : C - k0;
                    memset(a, 0x7f, sizeof(float) * GEMM_NR * GEMM_KC), memset(b, 0x7f, sizeof(float) * GEMM_NR * GEMM_KC);
                    packer(ty, ISA_REF)(a, q, C, nr == 16 ? 0 : 16, nr, k0, kc);
                    packer(ty, isa)(b, q, C, nr == 16 ? 0 : 16, nr, k0, kc);
                    CHECK(!memcmp(a, b, sizeof(float) * GEMM_NR * kc), "%s %s pack k0=%d kc=%d nr=%d differs from ref",
                          kern_table(isa)->name, mat_type_name(ty), k0, kc, nr);
                }
        }
        free(q);
    }
    free(a), free(b);
    /* A's packer: every ISA's the plain C one's floats, for every group size and column tail */
    const int colss[] = {1, 7, 8, 13, 256, 301};
    float *x = harness_randv(&r, (size_t)GEMM_MR * 301), *pa = malloc(sizeof(float) * GEMM_MR * 301);
    float *pb = malloc(sizeof(float) * GEMM_MR * 301);
    for (int isa = ISA_AVX2; isa <= ISA_AVX512 && x && pa && pb; isa++) {
        if (!kern_table(isa)) continue;
        for (int ci = 0; ci < 6; ci++)
            for (int n = 1; n <= GEMM_MR; n++) {
                const int cols = colss[ci];
                memset(pa, 0x7f, sizeof(float) * GEMM_MR * cols), memset(pb, 0x7e, sizeof(float) * GEMM_MR * cols);
                gemm_pack_a_ref(pa, x, cols, n);
                gemm_pack_a_avx2(pb, x, cols, n);
                CHECK(!memcmp(pa, pb, sizeof(float) * GEMM_MR * cols), "%s A pack cols=%d n=%d differs from ref",
                      kern_table(isa)->name, cols, n);
            }
    }
    free(x), free(pa), free(pb);
}

/* gemm_run with ty's packer of isa over shape (T, R, C) */
static void run(float *out, const float *x, const void *q, int ty, int isa, int T, int R, int C) {
    float *abuf = aligned_alloc(64, sizeof(float) * gemm_abuf_floats(T, C));
    gemm_run(out, x, q, R, C, T, packer(ty, isa), isa, abuf);
    free(abuf);
}

/* every type and ISA near the oracle; AVX2 bit-identical to the plain C path */
static void vs_oracle(void) {
    rng r;
    rng_seed(&r, 22);
    for (int s = 0; s < NSHAPES; s++) {
        const int T = SHAPES[s][0], R = SHAPES[s][1], C = SHAPES[s][2];
        float *x = harness_randv(&r, (size_t)T * C), *want = malloc(sizeof(float) * T * R);
        float *got = malloc(sizeof(float) * T * R), *plain = malloc(sizeof(float) * T * R);
        for (int f = 0; f < NFT; f++) {
            const int ty = FTYPES[f];
            if (!mat_type_bytes(ty, R, C)) continue;
            void *q = weights(&r, ty, R, C);
            mat W = {q, ty, R, C};
            matmul_ref(want, x, &W, T);
            run(plain, x, q, ty, ISA_REF, T, R, C);
            double e = harness_nmse(plain, want, (size_t)T * R);
            CHECK(e < 1e-11, "ref %s T=%d R=%d C=%d: NMSE %g", mat_type_name(ty), T, R, C, e);
            for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
                if (!kern_table(isa)) continue;
                run(got, x, q, ty, isa, T, R, C);
                e = harness_nmse(got, want, (size_t)T * R);
                CHECK(e < 1e-11, "%s %s T=%d R=%d C=%d: NMSE %g", kern_table(isa)->name, mat_type_name(ty), T, R, C, e);
                CHECK(!memcmp(got, plain, sizeof(float) * T * R), "%s %s T=%d R=%d C=%d: not the plain C path's bits",
                      kern_table(isa)->name, mat_type_name(ty), T, R, C);
            }
            if (C >= 2816 || (T == 17 && R == 7)) printf("    %-4s T=%-3d R=%-3d C=%-4d NMSE vs matmul_ref %.1e\n", mat_type_name(ty), T, R, C, e);
            free(q);
        }
        free(x), free(want), free(got), free(plain);
    }
}

/* a token's row has the same bits whatever T, its place and the thread count */
static void batch_invariant(void) {
    rng r;
    rng_seed(&r, 23);
    const int R = 77, C = 640, Tmax = 61, TS[] = {17, 18, 30, 61};
    float *x = harness_randv(&r, (size_t)Tmax * C), *all = malloc(sizeof(float) * Tmax * R), *part = malloc(sizeof(float) * Tmax * R);
    for (int f = 0; f < NFT; f++) {
        const int ty = FTYPES[f], isa = cpu_best_isa();
        void *q = weights(&r, ty, R, C);
        harness_threads(2);
        run(all, x, q, ty, isa, Tmax, R, C);
        for (int i = 0; i < 4; i++) {
            const int T = TS[i], off = Tmax - T; /* the last T: other places in the tiles */
            harness_threads(1 + i % 2);
            run(part, x + (size_t)off * C, q, ty, isa, T, R, C);
            CHECK(!memcmp(part, all + (size_t)off * R, sizeof(float) * T * R), "%s T=%d at %d, %d thread(s): bits differ",
                  mat_type_name(ty), T, off, 1 + i % 2);
        }
        free(q);
    }
    harness_threads(0);
    free(x), free(all), free(part);
}

/* more tokens than a pass (GEMM_TB): the tokens of the second pass have the
 * bits they have in a short batch and are near the oracle; no columns: zeros;
 * no tokens or rows: nothing */
static void passes(void) {
    rng r;
    rng_seed(&r, 25);
    const int T = GEMM_TB + 130, R = 40, C = 256, n = 150;
    float *x = harness_randv(&r, (size_t)T * C), *all = malloc(sizeof(float) * T * R), *part = malloc(sizeof(float) * n * R);
    float *want = malloc(sizeof(float) * T * R);
    void *q = weights(&r, MAT_F16, R, C);
    mat W = {q, MAT_F16, R, C};
    run(all, x, q, MAT_F16, cpu_best_isa(), T, R, C);
    run(part, x + (size_t)(T - n) * C, q, MAT_F16, cpu_best_isa(), n, R, C);
    CHECK(!memcmp(part, all + (size_t)(T - n) * R, sizeof(float) * n * R), "T=%d: the last %d tokens' bits differ", T, n);
    matmul_ref(want, x, &W, T);
    CHECK(harness_nmse(all, want, (size_t)T * R) < 1e-11, "T=%d: NMSE %g", T, harness_nmse(all, want, (size_t)T * R));
    for (int i = 0; i < 3 * R; i++) all[i] = 1;
    run(all, x, q, MAT_F16, cpu_best_isa(), 3, R, 0);
    int zeros = 1;
    for (int i = 0; i < 3 * R; i++) zeros &= all[i] == 0;
    CHECK(zeros, "cols = 0: out not zero");
    all[0] = 7;
    run(all, x, q, MAT_F16, cpu_best_isa(), 0, R, C); /* no tokens, no rows: out untouched */
    run(all, x, q, MAT_F16, cpu_best_isa(), 3, 0, C);
    CHECK(all[0] == 7, "T = 0 or rows = 0 wrote out");
    free(q), free(x), free(all), free(part), free(want);
}

/* matmul above the type's gemm_t is this GEMM with the table's packer of
 * the ISA chosen, for each ISA (where the table has none, f32 on AVX-512:
 * OpenBLAS, near the oracle); at gemm_t it still takes the matvec kernels */
static void matmul_dispatch(void) {
    rng r;
    rng_seed(&r, 24);
    const int R = 40, C = 384;
    float *x = harness_randv(&r, (size_t)40 * C), *a = malloc(sizeof(float) * 40 * R), *b = malloc(sizeof(float) * 40 * R);
    for (int ty = 0; ty < MAT_NTYPES; ty++) {
        const wtype *w = wtype_get(ty);
        if (!w->gemm_t[ISA_REF]) continue;
        void *q = weights(&r, ty, R, C);
        mat W = {q, ty, R, C};
        for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            const int gt = w->gemm_t[isa], T = gt + 1;
            matmul(a, x, &W, T);
            if (w->pack[isa]) {
                run(b, x, q, ty, isa, T, R, C);
                CHECK(!memcmp(a, b, sizeof(float) * T * R), "%s %s T=%d: matmul is not gemm_run", kern_get()->name, w->name, T);
            } else {
                matmul_ref(b, x, &W, T);
                CHECK(harness_nmse(a, b, (size_t)T * R) < 1e-11, "%s %s T=%d: sgemm path off the oracle", kern_get()->name, w->name, T);
            }
            printf("    matmul %-4s %-6s T=%d (gemm_t + 1): %s\n", w->name, kern_get()->name, T,
                   w->pack[isa] ? "gemm_run's bits" : "sgemm, near matmul_ref");
            /* at gemm_t: the matvec kernels, one token at a time gives the same bits */
            matmul(a, x, &W, gt);
            for (int t = 0; t < gt; t++) matmul(b + (size_t)t * R, x + (size_t)t * C, &W, 1);
            CHECK(!memcmp(a, b, sizeof(float) * gt * R), "%s %s T=%d: not the matvec kernels' bits",
                  kern_get()->name, w->name, gt);
        }
        free(q);
    }
    kern_select(cpu_best_isa());
    free(x), free(a), free(b);
}

int main(void) {
    printf("    best ISA on this CPU: %s\n", kern_table(cpu_best_isa())->name);
    RUN(packers_same);
    RUN(vs_oracle);
    RUN(batch_invariant);
    RUN(passes);
    RUN(matmul_dispatch);
    return harness_done();
}
