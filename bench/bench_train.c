/*
 * bench_train.c — training speed of deepc against the PyTorch reference on
 * the same shape (`train-bench`, ../shared/BENCHMARKS.md: batch 8 x 256,
 * f32, AdamW, main loss only, bias update on), with the same threads, plus
 * deepc's achieved GFLOP/s as a fraction of OpenBLAS's sgemm measured in the
 * same run; for each training precision (--precision f32|bf16|fp8 of
 * kernels/linear.h: the linear layers' GEMMs on bf16-rounded or
 * e4m3-quantised operands). Prints figures; never fails on time.
 *
 *   build/bench/bench_train [--steps N] [--no-torch] [--precision f32|bf16|fp8] [--threads N]
 *
 * --threads N: only that thread count (profiling, A/B runs on a loaded machine)
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/progress.h"
#include "base/rng.h"
#include "deepc.h"
#include "bench_util.h"
#include "kernels/gemm_bf16.h"
#include "train/trainer.h"

/* the process's CPU time over all threads: tokens per CPU-second compare
 * precisions fairly when other processes load the machine (wall time does not) */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static rng R;
static int B_, T_, V_;
static void random_batch(void *ctx, int *tok) {
    (void)ctx;
    for (int i = 0; i < B_ * (T_ + 1); i++) tok[i] = (int)(rng_u64(&R) % V_);
}

/* training FLOPs per token: 6 x (matrix parameters a token touches) plus the
 * attention products over the causal triangle (forward: a query sees T/2
 * keys on average, 2 flops each for q.k over qk and p v over v; backward 2x
 * forward). The useful work: deepc's blocked attention computes 62% of the
 * square at T = 256 (mla.c), the reference all of it. */
static double flops_per_token(const dc_config *c, int T) {
    dc_counts k;
    dc_config_counts(c, &k);
    double mat = (double)k.params_active; /* head included, embedding excluded */
    double attn = 2.0 * (T / 2.0) * (c->qk_nope_head_dim + c->qk_rope_head_dim + c->v_head_dim) *
                  c->num_attention_heads * c->num_hidden_layers;
    return 6 * mat + 3 * attn;
}

static double sgemm_peak(void) {
    int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = progress_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * n / (progress_now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(a), free(b), free(c);
    return best;
}

static double torch_tps(int threads, int steps) {
    char cmd[512], line[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/train_torch.py --threads %d --steps %d 2>/dev/null", threads, steps);
    FILE *p = popen(cmd, "r");
    double tps = -1;
    while (p && fgets(line, sizeof line, p)) {
        const char *s = strstr(line, "threads, ");
        if (s) tps = atof(s + 9);
    }
    if (p) pclose(p);
    return tps;
}

int main(int argc, char **argv) {
    bench_policy_reexec(argv, "active"); /* as deepc train (src/cli/main.c) */
    int steps = 5, torch = 1, only = -1, th0 = 1, th1 = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) th0 = th1 = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            if ((only = prec_parse(argv[++i])) < 0) return fprintf(stderr, "--precision: f32, bf16 or fp8\n"), 1;
        } else /* --help, or anything unknown: the usage, nothing run */
            return fprintf(stderr, "usage: bench_train [--steps N] [--no-torch] [--precision f32|bf16|fp8] [--threads N]\n"),
                   strcmp(argv[i], "--help") != 0;
    }
    dc_config c;
    dc_err err = {0};
    if (dc_config_preset("train-bench", &c, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    train_opts o;
    train_opts_default(&o);
    o.B = B_ = 8, o.T = T_ = 256, o.mtp_lambda = 0, o.aux_alpha = 0, o.warmup = 0;
    V_ = c.vocab_size;
    double fpt = flops_per_token(&c, o.T);
    printf("train-bench: batch %d x %d, %.1f MFLOP per token (6 x active matrix parameters + causal attention)\n"
           "OpenBLAS core %s (deepc's float32 GEMMs and, through the environment, the peer's)\n",
           o.B, o.T, fpt / 1e6, blas_core_name());
    const char *better = blas_core_held_back();
    if (better)
        printf("(OPENBLAS_CORETYPE=%s comes from the environment, which deepc never overrides: this CPU could run\n"
               " OpenBLAS's %s core; run with OPENBLAS_CORETYPE=%s for both programs' best float32 GEMMs)\n",
               getenv("OPENBLAS_CORETYPE"), better, better);
    /* the peer first: once deepc's OpenMP threads exist they spin (active
     * wait policy) and would take a core from it; and with the environment it
     * runs best in (libgomp's default policy) */
    double tt[3] = {-1, -1, -1};
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("GOMP_SPINCOUNT");
    if (th0 < 1 || th1 > 2) return fprintf(stderr, "--threads: 1 or 2\n"), 1;
    for (int th = th0; th <= th1 && torch; th++) tt[th] = torch_tps(th, steps);
    printf("%-8s %-5s %12s %12s %8s %11s %10s %9s %14s\n", "threads", "prec", "deepc tok/s", "torch tok/s", "ratio",
           "deepc GF/s", "sgemm GF/s", "of sgemm", "tok/CPU-s");
    for (int th = th0; th <= th1; th++) {
        bench_threads(th);
        double peak = sgemm_peak();
        for (int p = 0; p < 3; p++) {
            if (only >= 0 && p != only) continue;
            trainer t;
            rng_seed(&R, 1);
            o.precision = p;
            if (trainer_init(&t, &c, &o, NULL, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
            trainer_step(&t, random_batch, NULL); /* warm-up */
            double t0 = progress_now(), c0 = cpu_now();
            for (int s = 0; s < steps; s++) trainer_step(&t, random_batch, NULL);
            double dt = progress_now() - t0, tps = (double)steps * o.B * o.T / dt;
            double tpc = (double)steps * o.B * o.T / (cpu_now() - c0);
            trainer_free(&t);
            char ts[32] = "-", rs[32] = "-";
            if (tt[th] > 0) snprintf(ts, sizeof ts, "%.0f", tt[th]), snprintf(rs, sizeof rs, "%.2fx", tps / tt[th]);
            printf("%-8d %-5s %12.0f %12s %8s %11.1f %10.1f %8.0f%% %14.0f\n", th, prec_name(p), tps, ts, rs,
                   tps * fpt / 1e9, peak, 100 * tps * fpt / 1e9 / peak, tpc);
            fflush(stdout);
        }
    }
    if (gemm_bf16_train())
        printf("(torch: DeepSeek's official-style V3 code in f32, bench/train_torch.py. bf16 / fp8 here are the\n"
               " linear layers' GEMMs in BF16 arithmetic (%s, gemm_bf16.h): bf16 on the rounded operands,\n"
               " fp8 on the e4m3 codes with their scales applied per 128-long chunk of K)\n",
               gemm_bf16_kernel() == GEMM_BF16_AMX ? "AMX tiles" : "AVX512_BF16");
    else
        printf("(torch: DeepSeek's official-style V3 code in f32, bench/train_torch.py. bf16 / fp8 here are the\n"
               " linear layers' GEMMs on rounded / e4m3-quantised operands summed by f32 sgemm: this CPU has no\n"
               " BF16 arithmetic faster than its f32 FMA (AMX, or AVX512_BF16 at FMA rate), so they cost f32's\n"
               " GEMMs plus the conversion passes)\n");
    printf("(DeepSeek's own V3 code under PyTorch, 2 threads, BENCHMARKS.md: about 1,100 tokens/s on the Intel\n"
           " Sapphire Rapids machine, about 1,395 on the AMD EPYC Zen 3 one; figures from those machines)\n");
    return 0;
}
