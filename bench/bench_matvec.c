/*
 * bench_matvec.c — the matvec kernels on a matrix far bigger than the caches
 * (the mini preset's head, 102400 x 1024), for each type, variant and thread
 * count, as GB/s of weights streamed beside the machine's read bandwidth
 * measured in the same run; then matmul at prefill sizes (T = 64, 512) on
 * mini's dense FFN shape (2816 x 1024), as tokens/s and GFLOP/s beside
 * OpenBLAS sgemm on the same matrix in float32. Prints figures; never
 * passes or fails.
 *   make bench-kernels && build/bench/bench_matvec [decode|gemm|all] [rows cols]
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/progress.h"
#include "base/rng.h"
#include "deepc.h"
#include "bench_util.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"

static double read_bw(const float *p, size_t n, int thr) {
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = progress_now();
        float s = 0;
#pragma omp parallel for num_threads(thr) reduction(+ : s) schedule(static)
        for (size_t i = 0; i < n; i += 16) s += p[i]; /* one float per cache line: every line is read */
        double dt = progress_now() - t0;
        if (s == 42) puts("");
        if (n * 4 / dt / 1e9 > best) best = n * 4 / dt / 1e9;
    }
    return best;
}

/* the best of reps timings of matmul(out, x, W, T) */
static double best_time(float *out, const float *x, const mat *W, int T, int reps) {
    matmul(out, x, W, T);
    double best = 1e9;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = progress_now();
        matmul(out, x, W, T);
        double dt = progress_now() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

static float *randv(rng *r, size_t n) {
    float *v = malloc(sizeof(float) * n);
    if (v)
        for (size_t i = 0; i < n; i++) v[i] = rng_uniform(r) - 0.5f;
    return v;
}

static void decode(int R, int C) {
    size_t n = (size_t)R * C;
    rng r;
    rng_seed(&r, 1);
    float *w = randv(&r, n), *x = randv(&r, (size_t)C * 4), *out = malloc(sizeof(float) * R * 4);
    if (!w || !x || !out) return;
    mat F = {w, MAT_F32, R, C};
    for (int thr = 1; thr <= 2; thr++) printf("read bandwidth, %d thread(s): %.1f GB/s\n", thr, read_bw(w, n, thr));
    for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
        if (!mat_type_bytes(ty, R, C)) continue;
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R, C));
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat W = {q, ty, R, C};
        for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            printf("%-5s %-6s", mat_type_name(ty), kern_get()->name);
            for (int thr = 1; thr <= 2; thr++)
                for (int T = 1; T <= 4; T *= 4) {
                    omp_set_num_threads(thr);
                    double dt = best_time(out, x, &W, T, 5);
                    printf("  %dthr T=%d %5.1f GB/s", thr, T, mat_bytes(&W) / dt / 1e9);
                }
            printf("\n");
            fflush(stdout);
        }
        if (ty != MAT_F32) free(q);
    }
    free(w), free(x), free(out);
}

static void gemm(int R, int C) {
    rng r;
    rng_seed(&r, 2);
    const int TS[] = {64, 512};
    float *w = randv(&r, (size_t)R * C), *x = randv(&r, (size_t)C * 512), *out = malloc(sizeof(float) * R * 512);
    if (!w || !x || !out) return;
    mat F = {w, MAT_F32, R, C};
    printf("matmul %d x %d, T tokens: tokens/s (GFLOP/s); f32 is OpenBLAS sgemm\n", R, C);
    for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
        if (!mat_type_bytes(ty, R, C)) continue;
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R, C));
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat W = {q, ty, R, C};
        for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            printf("%-5s %-6s", mat_type_name(ty), kern_get()->name);
            for (int thr = 1; thr <= 2; thr++)
                for (int i = 0; i < 2; i++) {
                    omp_set_num_threads(thr);
                    double dt = best_time(out, x, &W, TS[i], 3);
                    printf("  %dthr T=%-3d %7.0f tok/s (%5.1f)", thr, TS[i], TS[i] / dt, 2.0 * R * C * TS[i] / dt / 1e9);
                }
            printf("\n");
            fflush(stdout);
        }
        if (ty != MAT_F32) free(q);
    }
    free(w), free(x), free(out);
}

int main(int argc, char **argv) {
    bench_policy_reexec(argv, "active");
    const char *mode = argc > 1 ? argv[1] : "all";
    int R = argc > 3 ? atoi(argv[2]) : 0, C = argc > 3 ? atoi(argv[3]) : 0;
    if (strcmp(mode, "gemm") && strcmp(mode, "decode") && strcmp(mode, "all")) {
        fprintf(stderr, "usage: bench_matvec [decode|gemm|all] [rows cols]\n");
        return 2;
    }
    if (strcmp(mode, "gemm")) decode(R ? R : 102400, C ? C : 1024);
    if (strcmp(mode, "decode")) gemm(R ? R : 2816, C ? C : 1024);
    return 0;
}
