/*
 * bench_prec_gemm.c — one training linear layer's forward GEMM, y (N, out) =
 * x (N, in) @ W^T, in each form kernels/linear.h could take on this CPU,
 * 1 thread, against OpenBLAS sgemm measured in the same run (the bound: no
 * form here does fewer multiply-adds, and without BF16/FP8 arithmetic none
 * does them faster than f32 FMA):
 *   f32 sgemm                       the peer
 *   bf16: round + sgemm             what training uses (linear.c)
 *   fp8:  quantise + sgemm          what training uses (linear.c, fp8.c)
 *   bf16: AVX2 bf16-operand kernel  W packed as bf16 in 16-column panels and
 *                                   widened in registers (<<16), x rounded,
 *                                   6x16 register tile, FMA: halves W's bytes,
 *                                   adds 2 widening ops per 16 columns per k
 *   fp8:  fp8_gemm_ref              the promoted oracle (plain C)
 *   bf16: AVX512_BF16 (gemm_bf16.h)  what training uses on AMD CPUs with it:
 *                                   both operands rounded as packed, vdpbf16ps
 *   bf16: AMX (gemm_amx.h)          what training uses where the CPU has AMX:
 *                                   the same packing, tdpbf16ps on 32 x 32 blocks
 *   and the same kernels' three training layouts (forward, dgrad, wgrad)
 *   beside sgemm's on each, 1 and 2 threads (wall clock, best of 5)
 * The AVX2 kernel lives here only, as the measured alternative (it is slower,
 * so the library does not use it); its result is checked against round +
 * sgemm. Times are the process's CPU time (one thread), so that other
 * processes' load does not enter them. Prints figures, never fails on time.
 *
 *   build/bench/bench_prec_gemm [N in out]     (default: train-bench's FFN, 2048 256 1024)
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"
#include "kernels/dtype.h"
#include "kernels/fp8.h"
#include "kernels/gemm_bf16.h"
#include "kernels/cpu.h"
#include "base/progress.h"
#include <omp.h>
#include "kernels/linear.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

#ifdef __AVX2__
/* y (M, N) = A (M, K) f32 @ panels: Bp holds, per 16 output columns, K x 16 bf16 */
static void gemm_bf16_avx2(float *y, const float *A, const uint16_t *Bp, int M, int N, int K) {
    for (int j = 0; j < N; j += 16) {
        const uint16_t *bp = Bp + (size_t)j * K;
        int i = 0;
        for (; i + 6 <= M; i += 6) {
            __m256 c[6][2];
            for (int r = 0; r < 6; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
            for (int k = 0; k < K; k++) {
                __m256i b = _mm256_loadu_si256((const __m256i *)(bp + (size_t)k * 16));
                __m256 b0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(b)), 16));
                __m256 b1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(b, 1)), 16));
                for (int r = 0; r < 6; r++) {
                    __m256 a = _mm256_broadcast_ss(A + (size_t)(i + r) * K + k);
                    c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]), c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
                }
            }
            for (int r = 0; r < 6; r++)
                _mm256_storeu_ps(y + (size_t)(i + r) * N + j, c[r][0]), _mm256_storeu_ps(y + (size_t)(i + r) * N + j + 8, c[r][1]);
        }
        for (; i < M; i++) /* the rows left over */
            for (int l = 0; l < 16; l++) {
                float s = 0;
                for (int k = 0; k < K; k++) s += A[(size_t)i * K + k] * bf16_to_f32(bp[(size_t)k * 16 + l]);
                y[(size_t)i * N + j + l] = s;
            }
    }
}
#endif

/* the process's CPU time: one thread runs, so this is its time on a core,
 * which other processes' load does not inflate as it does wall time */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double best_of(int reps, void (*fn)(void *), void *ctx) {
    double best = 1e30;
    fn(ctx); /* warm: pages, OpenBLAS's buffers */
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_now();
        fn(ctx);
        double dt = cpu_now() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

typedef struct job {
    int N, in, out;
    lin_ctx lc;             /* the precision under test and its scratch, kept between calls */
    float *x, *W, *y, *xr;
    uint16_t *Wp;
    void *scr;
} job;

static void run_sgemm(void *p) {
    job *j = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->N, j->out, j->in, 1, j->x, j->in, j->W, j->in, 0, j->y, j->out);
}
static void run_lin(void *p) {
    job *j = p;
    lin_fwd_f(&j->lc, j->y, j->x, j->W, j->N, j->in, j->out);
}
static void run_dp(void *p) { /* gemm_bf16 itself, whichever linear.c takes here */
    job *j = p;
    gemm_bf16(j->y, j->x, j->W, j->N, j->out, j->in, 0, 1, 0, j->scr);
}
#ifdef __AVX2__
static void run_avx2(void *p) { /* the conversions count: x rounded, W packed, each call */
    job *j = p;
    for (size_t i = 0; i < (size_t)j->N * j->in; i++) j->xr[i] = bf16_to_f32(f32_to_bf16(j->x[i]));
    for (int c = 0; c < j->out; c += 16)
        for (int k = 0; k < j->in; k++)
            for (int l = 0; l < 16; l++) j->Wp[(size_t)c * j->in + k * 16 + l] = f32_to_bf16(j->W[(size_t)(c + l) * j->in + k]);
    gemm_bf16_avx2(j->y, j->xr, j->Wp, j->N, j->out, j->in);
}
#endif
static void run_fp8_ref(void *p) {
    job *j = p;
    int KC = (j->in + 127) / 128;
    uint8_t *qa = malloc((size_t)j->N * j->in), *qb = malloc((size_t)j->out * j->in);
    float *sa = malloc(sizeof(float) * j->N * KC), *sb = malloc(sizeof(float) * ((j->out + 127) / 128) * KC);
    fp8_quant_rows(qa, sa, j->x, j->N, j->in, j->in);
    fp8_quant_blocks(qb, sb, j->W, j->out, j->in);
    fp8_gemm_ref(j->y, qa, sa, qb, sb, j->N, j->out, j->in, 128);
    free(qa), free(qb), free(sa), free(sb);
}

/* the three training GEMMs of one linear layer by sgemm and by gemm_bf16 */
typedef struct lay {
    int M, N, K, ta, tb;
    const char *name;
} lay;
static void layouts(job *j) {
    const lay L[3] = {{j->N, j->out, j->in, 0, 1, "forward  y = x W^T"},
                      {j->N, j->in, j->out, 0, 0, "dgrad    dx += dy W"},
                      {j->out, j->in, j->N, 1, 0, "wgrad    dW += dy^T x"}};
    size_t big = (size_t)j->N * j->out > (size_t)j->out * j->in ? (size_t)j->N * j->out : (size_t)j->out * j->in;
    big = big > (size_t)j->N * j->in ? big : (size_t)j->N * j->in;
    float *A = malloc(big * 4), *B = malloc(big * 4), *C = malloc(big * 4);
    void *scr = malloc(gemm_bf16_scratch(j->N > j->out ? j->N : j->out, j->N > j->in ? j->N : j->in, j->N > j->in ? j->N : j->in) * 2);
    for (size_t i = 0; i < big; i++) A[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1, B[i] = A[(i * 7) % big] * 0.05f;
    const int was = gemm_bf16_kernel(), amx = gemm_bf16_use(GEMM_BF16_AMX) == GEMM_BF16_AMX;
    gemm_bf16_use(was);
    printf("the three GEMMs of a training step's linear layer, wall clock, best of 5, GF/s (x of sgemm):\n");
    for (int thr = 1; thr <= 2; thr++) {
        bench_threads(thr);
        for (int l = 0; l < 3; l++) {
            const lay *y = &L[l];
            const int lda = y->ta ? y->M : y->K, ldb = y->tb ? y->K : y->N;
            double fl = 2.0 * y->M * y->N * y->K, ts = 1e30, tk[3] = {1e30, 1e30, 1e30};
            for (int r = 0; r < 6; r++) {
                double t0 = progress_now();
                cblas_sgemm(CblasRowMajor, y->ta ? CblasTrans : CblasNoTrans, y->tb ? CblasTrans : CblasNoTrans, y->M, y->N,
                            y->K, 1, A, lda, B, ldb, l ? 1 : 0, C, y->N);
                if (r) ts = fmin(ts, progress_now() - t0);
                for (int k = GEMM_BF16_DP; k <= (amx ? GEMM_BF16_AMX : GEMM_BF16_DP); k++) {
                    gemm_bf16_use(k);
                    t0 = progress_now();
                    gemm_bf16(C, A, B, y->M, y->N, y->K, y->ta, y->tb, l != 0, scr);
                    if (r) tk[k] = fmin(tk[k], progress_now() - t0);
                }
            }
            printf("  %d thr %-24s (%5d x %5d x %5d)  sgemm %6.1f  dp %6.1f GF/s (x%.2f)", thr, y->name, y->M, y->N, y->K,
                   fl / ts / 1e9, fl / tk[1] / 1e9, ts / tk[1]);
            if (amx) printf("  amx %7.1f GF/s (x%.2f)", fl / tk[2] / 1e9, ts / tk[2]);
            printf("\n");
        }
    }
    gemm_bf16_use(was);
    bench_threads(1);
    free(A), free(B), free(C), free(scr);
}

int main(int argc, char **argv) {
    bench_policy_reexec(argv, "passive");
    job j = {.N = 2048, .in = 256, .out = 1024};
    if (argc == 4) j.N = atoi(argv[1]), j.in = atoi(argv[2]), j.out = (atoi(argv[3]) + 15) / 16 * 16;
    bench_threads(1);
    size_t nx = (size_t)j.N * j.in, nw = (size_t)j.out * j.in, ny = (size_t)j.N * j.out;
    j.x = malloc(nx * 4), j.W = malloc(nw * 4), j.y = malloc(ny * 4), j.xr = malloc(nx * 4), j.Wp = malloc(nw * 2);
    float *ref = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) j.x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1;
    for (size_t i = 0; i < nw; i++) j.W[i] = ((float)((i * 40503u) % 1000) / 500.0f - 1) * 0.05f;
    double fl = 2.0 * j.N * j.in * j.out;
    printf("linear forward y (%d, %d) = x (%d, %d) @ W^T, 1 thread, best of 5 in process CPU time\n", j.N, j.out, j.N,
           j.in);
    double t = best_of(5, run_sgemm, &j);
    printf("  %-52s %7.2f ms %7.1f GF/s (the bound)\n", "f32 sgemm", t * 1e3, fl / t / 1e9);
    if (lin_ctx_init(&j.lc, PREC_BF16, (size_t)j.N * j.in, (size_t)j.out * j.in)) return 1;
    const int best = kern_get()->isa;
    kern_select(best < ISA_AVX2 ? best : ISA_AVX2); /* below AVX-512 linear.c rounds and calls sgemm */
    t = best_of(5, run_lin, &j);
    kern_select(best);
    lin_ctx_free(&j.lc);
    memcpy(ref, j.y, ny * 4);
    const int dp = gemm_bf16_train();
    printf("  %-52s %7.2f ms %7.1f GF/s\n", dp ? "bf16: round + sgemm" : "bf16: round + sgemm (training's here)", t * 1e3,
           fl / t / 1e9);
    if (lin_ctx_init(&j.lc, PREC_FP8, (size_t)j.N * j.in, (size_t)j.out * j.in)) return 1;
    t = best_of(5, run_lin, &j);
    lin_ctx_free(&j.lc);
    printf("  %-52s %7.2f ms %7.1f GF/s\n",
           dp ? "fp8: 1x128 / 128x128 quantise + gemm_bf16_fp8 (training's)" : "fp8: 1x128 / 128x128 quantise + sgemm (training's)",
           t * 1e3, fl / t / 1e9);
#ifdef __AVX2__
    t = best_of(5, run_avx2, &j);
    double md = 0;
    for (size_t i = 0; i < ny; i++) md = md > fabsf(j.y[i] - ref[i]) ? md : fabsf(j.y[i] - ref[i]);
    printf("  %-52s %7.2f ms %7.1f GF/s (max|diff| vs round + sgemm %.1e)\n", "bf16: AVX2 bf16-operand kernel (bench only)",
           t * 1e3, fl / t / 1e9, md);
#endif
    if (gemm_bf16_ok()) {
        const int was = gemm_bf16_kernel();
        for (int k = GEMM_BF16_DP; k <= GEMM_BF16_AMX; k++) {
            const char *name = k == GEMM_BF16_AMX ? "bf16: AMX gemm_bf16" : "bf16: AVX512_BF16 gemm_bf16";
            if (gemm_bf16_use(k) != k) {
                printf("  %s: not on this CPU (or not granted by its OS)\n", name);
                continue;
            }
            j.scr = malloc(gemm_bf16_scratch(j.N, j.out, j.in));
            t = best_of(5, run_dp, &j);
            free(j.scr);
            double md = 0;
            for (size_t i = 0; i < ny; i++) md = md > fabsf(j.y[i] - ref[i]) ? md : fabsf(j.y[i] - ref[i]);
            char label[80];
            snprintf(label, sizeof label, "%s (%s)", name, dp && k == was ? "training's here" : "not training's here");
            printf("  %-52s %7.2f ms %7.1f GF/s (max|diff| vs round + sgemm %.1e)\n", label, t * 1e3, fl / t / 1e9, md);
        }
        gemm_bf16_use(was);
    } else
        printf("  bf16: gemm_bf16 (AVX512_BF16, AMX): not on this CPU\n");
    double t0 = cpu_now(); /* once: it is slow */
    run_fp8_ref(&j);
    t = cpu_now() - t0;
    printf("  %-52s %7.2f ms %7.1f GF/s\n", "fp8: fp8_gemm_ref, promoted (plain C oracle)", t * 1e3, fl / t / 1e9);
    if (gemm_bf16_ok()) layouts(&j);
    free(j.x), free(j.W), free(j.y), free(j.xr), free(j.Wp), free(ref);
    return 0;
}
