/*
 * bench_matvec.c — the matvec kernels on a matrix far bigger than the caches
 * (the mini preset's head, 102400 x 1024), for each type, variant and thread
 * count, as GB/s of weights streamed beside the machine's read bandwidth
 * measured in the same run. Prints figures; never passes or fails.
 *   make bench-kernels && build/bench/bench_matvec [rows cols]
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/progress.h"
#include "base/rng.h"
#include "deepc.h"
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

int main(int argc, char **argv) {
    dc_omp_policy_reexec(argv, "active");
    int R = argc > 2 ? atoi(argv[1]) : 102400, C = argc > 2 ? atoi(argv[2]) : 1024;
    size_t n = (size_t)R * C;
    float *w = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * C * 4), *out = malloc(sizeof(float) * R * 4);
    rng r;
    rng_seed(&r, 1);
    for (size_t i = 0; i < n; i++) w[i] = rng_uniform(&r) - 0.5f;
    for (int i = 0; i < C * 4; i++) x[i] = rng_uniform(&r) - 0.5f;
    mat F = {w, MAT_F32, R, C};
    for (int thr = 1; thr <= 2; thr++) printf("read bandwidth, %d thread(s): %.1f GB/s\n", thr, read_bw(w, n, thr));
    for (int ty = MAT_F32; ty <= MAT_Q8_0; ty++) {
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R, C));
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat W = {q, ty, R, C};
        for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            for (int thr = 1; thr <= 2; thr++)
                for (int T = 1; T <= 2; T++) {
                    omp_set_num_threads(thr);
                    matmul(out, x, &W, T);
                    double best = 1e9;
                    for (int rep = 0; rep < 5; rep++) {
                        double t0 = progress_now();
                        matmul(out, x, &W, T);
                        double dt = progress_now() - t0;
                        best = dt < best ? dt : best;
                    }
                    printf("%-5s %-6s %d thr T=%d: %6.2f ms  %5.1f GB/s\n", mat_type_name(ty), kern_get()->name, thr, T,
                           best * 1e3, mat_bytes(&W) / best / 1e9);
                }
        }
        if (ty != MAT_F32) free(q);
    }
    free(w), free(x), free(out);
    return 0;
}
