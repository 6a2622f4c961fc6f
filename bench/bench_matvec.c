/*
 * bench_matvec.c — the matvec kernels on a matrix far bigger than the caches
 * (the mini preset's head, 102400 x 1024), for each type, variant and thread
 * count, at T = 1, 2, 3, 4 and 8 tokens (decode of that many sequences; 2: MTP), as GB/s of
 * weights streamed beside the machine's read bandwidth (membw_read) measured
 * in the same run; then matmul at prefill sizes (T = 64, 512) on
 * mini's dense FFN shape (2816 x 1024), as tokens/s and GFLOP/s beside
 * OpenBLAS sgemm on the same matrix in float32. Prints figures; never
 * passes or fails.
 * Beside matmul: gemm.h's AVX2 kernel called directly (f32 too) and, for
 * bf16 / f16 / fp8, the path it replaced (rows dequantised, then sgemm).
 * `cross`: the matvec kernels against gemm.h at T = 4..32 (where
 * wtype.gemm_t should sit). One-thread figures are per second of the
 * thread's CPU time (robust on a shared machine), the others wall-clock.
 * `cache` instead: each kernel on a matrix that stays in L2, one thread, the
 * best of many short runs: its compute ceiling, which a busy machine
 * disturbs less than the DRAM figures.
 *   make bench-kernels && build/bench/bench_matvec [decode|gemm|cache|cross|small|all] [rows cols]
 * $DC_BENCH_TYPES=q4_0,q4_0x8,... limits decode, cache and gemm to those types.
 * q4_0x8 / q4_kx8 / q6_kx8 / q5_kx8 are what a GGUF's Q4_0 / Q4_K / Q6_K / Q5_K matrices
 * become at load (kernels/repack.h); q4_0 / q4_k / q6_k / q5_k here are their plain
 * layouts (borrowed blocks).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/membw.h"
#include "base/progress.h"
#include "base/rng.h"
#include "deepc.h"
#include "bench_util.h"
#include <cblas.h>
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

typedef void (*prod_fn)(float *out, const float *x, const mat *W, int T);

/* one thread: the thread's CPU time (all of a one-thread product runs on
 * the calling thread; time spent descheduled by other processes is left
 * out); more threads: wall-clock time */
static double clock_for(int one) {
    struct timespec ts;
    if (!one) return progress_now();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* the best of at least reps timings of f(out, x, W, T), and of as many
 * more as fit in half a second (a busy machine spoils single runs) */
static double best_of(prod_fn f, float *out, const float *x, const mat *W, int T, int reps) {
    f(out, x, W, T);
    const int one = omp_get_max_threads() == 1;
    double best = 1e9, start = progress_now();
    for (int rep = 0; rep < reps || progress_now() - start < 0.5; rep++) {
        double t0 = clock_for(one);
        f(out, x, W, T);
        double dt = clock_for(one) - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

static double best_time(float *out, const float *x, const mat *W, int T, int reps) {
    return best_of(matmul, out, x, W, T, reps);
}

/* $DC_BENCH_TYPES: a comma list of type names (mat_type_name) to run, all when unset */
static int type_on(int ty) {
    const char *l = getenv("DC_BENCH_TYPES");
    if (!l || !*l) return 1;
    const char *n = mat_type_name(ty);
    size_t k = strlen(n);
    for (const char *p = l; (p = strstr(p, n)); p += k)
        if ((p == l || p[-1] == ',') && (p[k] == ',' || !p[k])) return 1;
    return 0;
}

/* on a cache line, as the model's activations (model.c, scratch_alloc) */
static float *randv(rng *r, size_t n) {
    float *v = aligned_alloc(64, (sizeof(float) * n + 63) & ~(size_t)63);
    if (v)
        for (size_t i = 0; i < n; i++) v[i] = rng_uniform(r) - 0.5f;
    return v;
}

static void decode(int R, int C) {
    size_t n = (size_t)R * C;
    rng r;
    rng_seed(&r, 1);
    float *w = randv(&r, n), *x = randv(&r, (size_t)C * 8), *out = malloc(sizeof(float) * R * 8);
    if (!w || !x || !out) return;
    mat F = {w, MAT_F32, R, C};
    for (int thr = 1; thr <= 2; thr++) printf("read bandwidth (membw_read), %d thread(s): %.1f GB/s\n", thr, membw_read(w, n * 4, thr, 3));
    for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
        if (!mat_type_bytes(ty, R, C) || !type_on(ty)) continue;
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R, C));
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat W = {q, ty, R, C};
        for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            printf("%-5s %-6s", mat_type_name(ty), kern_get()->name);
            for (int thr = 1; thr <= 2; thr++)
                for (int T = 1; T <= 8; T = T < 4 ? T + 1 : T * 2) {
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

/* the kernel of W's type over all rows, x pre-quantised in xa for the quantised types */
static void run_kernel(const kern *k, float *out, const mat *W, const float *x, const q8_act *xa, int T) {
    const wtype *w = wtype_get(W->type);
    w->mv[k->isa](out, W->rows, W->data, W->cols, 0, W->rows, w->act == WT_ACT_Q8 ? (const void *)xa : x, T);
}

/* the kernels' compute ceiling: a matrix of about 192 KB that stays in L2,
 * the kernel alone on this thread (x quantised before), best of many short
 * runs (robust to a busy machine); T = 1, 2, 3, 4 and 8 tokens (GB/s of
 * weights: the tokens share each weight's read) */
static void cache(int C) {
    rng r;
    rng_seed(&r, 3);
    float *x = randv(&r, (size_t)C * 8), *out = malloc(sizeof(float) * 4096 * 8);
    void *buf = aligned_alloc(64, (q8_act_bytes(8, C) + 63) & ~(size_t)63);
    q8_act xa;
    q8_act_quantize(&xa, buf, x, 8, C);
    printf("in-cache (L2) GB/s of weights, the kernel alone on 1 thread, %d cols:\n", C);
    for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
        if (!mat_type_bytes(ty, 1, C) || !type_on(ty)) continue;
        int R = (int)((192u << 10) / mat_type_bytes(ty, 1, C));
        R = R < 1 ? 1 : R > 4096 ? 4096 : R;
        float *w = randv(&r, (size_t)R * C);
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R, C));
        mat F = {w, MAT_F32, R, C};
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat W = {q, ty, R, C};
        for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
            const kern *k = kern_table(isa);
            if (!k) continue;
            printf("%-5s %-6s", mat_type_name(ty), k->name);
            for (int T = 1; T <= 8; T = T < 4 ? T + 1 : 2 * T) {
                double best = 1e9;
                for (int rep = 0; rep < 1500; rep++) {
                    double t0 = progress_now();
                    run_kernel(k, out, &W, x, &xa, T);
                    double dt = progress_now() - t0;
                    best = dt < best ? dt : best;
                }
                printf("  T=%d %6.1f GB/s", T, mat_bytes(&W) / best / 1e9);
            }
            printf("\n");
            fflush(stdout);
        }
        if (ty != MAT_F32) free(q);
        free(w);
    }
    free(x), free(out), free(buf);
}

/* the float32 / bf16 matvec kernel at prefill sizes, one thread, in tiles of
 * 16 rows x 8 tokens (what matmul would do were it to keep their order) */
static double mv_float_time(const kern *k, float *out, const float *x, const mat *W, int T) {
    double best = 1e9, start = progress_now();
    for (int rep = 0; rep < 3 || progress_now() - start < 0.5; rep++) {
        double t0 = clock_for(1);
        for (int r = 0; r < W->rows; r += 16)
            for (int t = 0; t < T; t += 8) {
                int r1 = r + 16 < W->rows ? r + 16 : W->rows, n = T - t < 8 ? T - t : 8;
                kern_mv(k, W->type)(out + (size_t)t * W->rows, W->rows, W->data, W->cols, r, r1, x + (size_t)t * W->cols, n);
            }
        double dt = clock_for(1) - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

/* bf16 / f16 / fp8 as matmul ran them before gemm.h (main a1b41a7): rows
 * dequantised to float32 ~8 MB at a time, then OpenBLAS sgemm */
static void dq_sgemm(float *out, const float *x, const mat *W, int T) {
    static float *buf;
    static size_t n;
    const int R = W->rows, C = W->cols, rows = R < (8 << 20) / (4 * C) ? R : (8 << 20) / (4 * C);
    if (n < (size_t)rows * C && !(free(buf), buf = malloc(sizeof(float) * (n = (size_t)rows * C)))) return;
    for (int r0 = 0; r0 < R; r0 += rows) {
        int k = R - r0 < rows ? R - r0 : rows;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < k; r++) mat_row_f32(W, r0 + r, buf + (size_t)r * C);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, k, C, 1.0f, x, C, buf, C, 0.0f, out + r0, R);
    }
}

/* OpenBLAS sgemm on float32 W */
static void sgemm(float *out, const float *x, const mat *W, int T) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, W->rows, W->cols, 1.0f, x, W->cols, W->data, W->cols, 0.0f,
                out, W->rows);
}

/* gemm.h's kernel with the AVX2 packer of W's type (f32's too, which matmul leaves to sgemm) */
static int gemm_isa = ISA_AVX2; /* cross: the machine's own (AVX-512: the wide kernel) */
static void gemm_direct(float *out, const float *x, const mat *W, int T) {
    static float *abuf;
    static size_t n;
    const gemm_pack_fn P[MAT_NTYPES] = {[MAT_F32] = gemm_pack_f32_avx2, [MAT_BF16] = gemm_pack_bf16_avx2,
                                        [MAT_F16] = gemm_pack_f16_avx2, [MAT_FP8] = gemm_pack_fp8_avx2};
    if (n < gemm_abuf_floats(T, W->cols) && !(free(abuf), abuf = aligned_alloc(64, 4 * (n = gemm_abuf_floats(T, W->cols)))))
        return;
    gemm_run(out, x, W->data, W->rows, W->cols, T, P[W->type], gemm_isa, abuf);
}

/* one line: f at T = 64 and 512 on 1 and 2 threads, tokens/s and GFLOP/s */
static void gemm_line(const char *ty, const char *what, prod_fn f, float *out, const float *x, const mat *W) {
    const int TS[] = {64, 512};
    printf("%-5s %-9s", ty, what);
    for (int thr = 1; thr <= 2; thr++)
        for (int i = 0; i < 2; i++) {
            bench_threads(thr);
            double dt = best_of(f, out, x, W, TS[i], 3);
            printf("  %dthr T=%-3d %6.0f tok/s (%5.1f)", thr, TS[i], TS[i] / dt, 2.0 * W->rows * W->cols * TS[i] / dt / 1e9);
        }
    printf("\n");
    fflush(stdout);
}

static void gemm(int R, int C) {
    rng r;
    rng_seed(&r, 2);
    const int TS[] = {64, 512};
    float *w = randv(&r, (size_t)R * C), *x = randv(&r, (size_t)C * 512), *out = malloc(sizeof(float) * R * 512);
    if (!w || !x || !out) return;
    mat F = {w, MAT_F32, R, C};
    printf("matmul %d x %d, T tokens: tokens/s (GFLOP/s), one run; 1thr per second of thread CPU time.\n"
           "avx2 / avx512: matmul (f32 on AVX-512: OpenBLAS; others gemm.h's wide AVX-512 kernel); gemm: gemm.h's AVX2\nkernel; sgemm: OpenBLAS; "
           "dq+sgemm: rows to float32, then sgemm (bf16 / f16 / fp8 before gemm.h)\n", R, C);
    for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
        if (!mat_type_bytes(ty, R, C) || !type_on(ty)) continue;
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R, C));
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat W = {q, ty, R, C};
        const int flt = wtype_get(ty)->act == WT_ACT_F32 && kern_table(ISA_AVX2);
        for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
            if (!kern_table(isa)) continue;
            kern_select(isa);
            gemm_line(mat_type_name(ty), kern_get()->name, matmul, out, x, &W);
        }
        if (flt) gemm_line(mat_type_name(ty), "gemm", gemm_direct, out, x, &W);
        if (flt) gemm_line(mat_type_name(ty), ty == MAT_F32 ? "sgemm" : "dq+sgemm", ty == MAT_F32 ? sgemm : dq_sgemm, out, x, &W);
        if (ty <= MAT_BF16) {
            printf("%-5s %-9s", mat_type_name(ty), "mv");
            for (int i = 0; i < 2; i++) {
                double dt = mv_float_time(kern_get(), out, x, &W, TS[i]);
                printf("  1thr T=%-3d %6.0f tok/s (%5.1f)", TS[i], TS[i] / dt, 2.0 * R * C * TS[i] / dt / 1e9);
            }
            printf("   (the matvec kernel's order, 1 thread)\n");
        }
        if (ty != MAT_F32) free(q);
    }
    free(w), free(x), free(out);
}

/* where matmul should leave the matvec kernels for gemm.h (wtype.gemm_t):
 * both at T = 4..32 on an expert's shape, 1 and 2 threads */
static void cross(int R, int C) {
    rng r;
    rng_seed(&r, 4);
    float *w = randv(&r, (size_t)R * C), *x = randv(&r, (size_t)C * 32), *out = malloc(sizeof(float) * R * 32);
    mat F = {w, MAT_F32, R, C};
    const int TS[] = {4, 8, 12, 16, 24, 32};
    gemm_isa = kern_get()->isa;
    printf("matvec kernels (mv) against gemm.h (gemm, %s kernel), %d x %d: GFLOP/s\n", kern_get()->name, R, C);
    for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
        if (wtype_get(ty)->act != WT_ACT_F32 || !mat_type_bytes(ty, R, C)) continue;
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R, C));
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat W = {q, ty, R, C};
        for (int thr = 1; thr <= 2; thr++) {
            bench_threads(thr);
            for (int v = 0; v < 2 + (ty == MAT_F32); v++) {
                prod_fn f = v == 0 ? matmul_mv : v == 1 ? gemm_direct : sgemm;
                printf("%-5s %dthr %-6s", mat_type_name(ty), thr, v == 0 ? "mv" : v == 1 ? "gemm" : "sgemm");
                for (int i = 0; i < 6; i++) {
                    double dt = best_of(f, out, x, &W, TS[i], 3);
                    printf("  T=%-2d %5.1f", TS[i], 2.0 * R * C * TS[i] / dt / 1e9);
                }
                printf("\n");
                fflush(stdout);
            }
        }
        if (ty != MAT_F32) free(q);
    }
    free(w), free(x), free(out);
}

/* `small`: decode's real diet, many small matrices one after another (a MoE
 * layer reads ~20 of 0.3 MB a token), against one big matrix of the same
 * bytes: N matrices of R x C (default 512 x 1024, ~240 MB in all, far beyond
 * the caches) of one type, T = 1, wall clock, best of 5 passes over all:
 *   big     one matrix of N R rows (the streaming rate)
 *   regions one parallel region per matrix (matmul_mv: how most of a layer runs)
 *   fused   one region, each thread its share of every matrix in turn, no
 *           barrier (how moe_one runs the experts) */
static void small(int R, int C) {
    const char *tys = getenv("DC_BENCH_TYPES");
    const int N = (int)((240u << 20) / ((size_t)R * C));
    rng r;
    rng_seed(&r, 5);
    float *w = randv(&r, (size_t)R * C * N), *x = randv(&r, C), *out = malloc(sizeof(float) * (size_t)R * N);
    if (!w || !x || !out) return;
    printf("small matrices: %d of %d x %d against one of %d x %d, T = 1, GB/s of weights (wall clock)\n", N, R, C,
           R * N, C);
    for (int thr = 1; thr <= 2; thr++) printf("read bandwidth (membw_read), %d thread(s): %.1f GB/s\n", thr, membw_read(w, (size_t)R * C * N * 4, thr, 3));
    for (int ty = MAT_F32; ty < MAT_NTYPES; ty++) {
        if (!mat_type_bytes(ty, R, C) || !type_on(ty) || (!tys && ty == MAT_F32)) continue;
        mat F = {w, MAT_F32, R * N, C};
        void *q = ty == MAT_F32 ? (void *)w : malloc(mat_type_bytes(ty, R * N, C));
        if (!q) continue;
        if (ty != MAT_F32) mat_convert(&F, ty, q);
        mat big = {q, ty, R * N, C}, *m = malloc(sizeof(mat) * N);
        const size_t mb = mat_type_bytes(ty, R, C);
        for (int i = 0; m && i < N; i++) m[i] = (mat){(float *)(void *)((char *)q + mb * i), ty, R, C};
        mv_act a;
        if (!m || !mv_act_init(&a, 0, &m[0], 1)) {
            free(m);
            if (ty != MAT_F32) free(q);
            break;
        }
        mv_act_fill(&a, x, 1, 0, 1);
        printf("%-7s", mat_type_name(ty));
        for (int thr = 1; thr <= 2; thr++) {
            bench_threads(thr);
            double best[3] = {1e9, 1e9, 1e9};
            for (int rep = 0; rep < 5; rep++)
                for (int v = 0; v < 3; v++) {
                    double t0 = progress_now();
                    if (v == 0) matmul_mv(out, x, &big, 1);
                    else if (v == 1)
                        for (int i = 0; i < N; i++) matmul_mv(out + (size_t)i * R, x, &m[i], 1);
                    else {
#pragma omp parallel
                        for (int i = 0; i < N; i++)
                            matmul_mv_share(out + (size_t)i * R, x, &a, &m[i], 1, omp_get_thread_num(), omp_get_num_threads());
                    }
                    double dt = progress_now() - t0;
                    best[v] = dt < best[v] ? dt : best[v];
                }
            printf("  %dthr big %5.1f regions %5.1f fused %5.1f", thr, mb * N / best[0] / 1e9, mb * N / best[1] / 1e9,
                   mb * N / best[2] / 1e9);
        }
        printf("\n");
        fflush(stdout);
        free(m);
        if (ty != MAT_F32) free(q);
    }
    free(w), free(x), free(out);
}

int main(int argc, char **argv) {
    bench_policy_reexec(argv, "passive"); /* idle threads sleep: a spinning one would take a core from the 1-thread runs */
    const char *mode = argc > 1 ? argv[1] : "all";
    int R = argc > 3 ? atoi(argv[2]) : 0, C = argc > 3 ? atoi(argv[3]) : 0;
    if (!strcmp(mode, "cache")) {
        cache(C ? C : 1024);
        return 0;
    }
    if (!strcmp(mode, "small")) {
        small(R ? R : 512, C ? C : 1024);
        return 0;
    }
    if (!strcmp(mode, "cross")) {
        cross(R ? R : 512, C ? C : 1024);
        return 0;
    }
    if (strcmp(mode, "gemm") && strcmp(mode, "decode") && strcmp(mode, "all")) {
        fprintf(stderr, "usage: bench_matvec [decode|gemm|cache|cross|small|all] [rows cols]\n");
        return 2;
    }
    if (strcmp(mode, "gemm")) decode(R ? R : 102400, C ? C : 1024);
    if (strcmp(mode, "decode")) gemm(R ? R : 2816, C ? C : 1024);
    return 0;
}
