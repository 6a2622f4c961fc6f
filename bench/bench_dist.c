/*
 * bench_dist.c — data-parallel training figures on the train-bench shape
 * (bench_train.c: batch 8 x 256, f32, AdamW, main loss only): a global batch
 * of `accum` micro-batches per step, split over the ranks of the job; per
 * step: wall time, time in the exchanges (the gradient's reduce-scatter in
 * micro-batch order, the figures, the all-gather of gradients or, with
 * --zero, of parameters) and the bytes this rank sent. Run plainly (one
 * process) or under mpirun; rank 0 prints one line. Never fails on time.
 *
 *   bench_dist [--steps N] [--accum A] [--threads T] [--zero] [--label S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/progress.h"
#include "base/rng.h"
#include "bench_util.h"
#include "deepc.h"
#include "dist/dist.h"
#include "train/trainer.h"

static rng R;
static int B_, T_, V_;
static void random_batch(void *ctx, int *tok) {
    (void)ctx;
    for (int i = 0; i < B_ * (T_ + 1); i++) tok[i] = (int)(rng_u64(&R) % V_);
}

int main(int argc, char **argv) {
    bench_policy_reexec(argv, "passive");
    int steps = 3, accum = 2, threads = 1, zero = 0;
    const char *label = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--accum") && i + 1 < argc) accum = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--zero")) zero = 1;
        else if (!strcmp(argv[i], "--label") && i + 1 < argc) label = argv[++i];
    }
    dc_err err = {0};
    dist d;
    if (dist_start(&argc, &argv, &err) || dist_init(&d, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    bench_threads(threads);
    dc_config c;
    if (dc_config_preset("train-bench", &c, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    train_opts o;
    train_opts_default(&o);
    o.B = B_ = 8, o.T = T_ = 256, o.accum = accum, o.mtp_lambda = 0, o.aux_alpha = 0, o.warmup = 0;
    V_ = c.vocab_size;
    trainer t;
    rng_seed(&R, 1);
    if (trainer_init_dist(&t, &c, &o, NULL, 1, &d, zero, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    trainer_step(&t, random_batch, NULL); /* warm-up */
    dist_barrier(&d, DIST_WORLD, &err);
    double c0 = t.comm_s, t0 = progress_now();
    uint64_t b0 = dist_bytes_sent();
    for (int s = 0; s < steps; s++) trainer_step(&t, random_batch, NULL);
    double dt = (progress_now() - t0) / steps, comm = (t.comm_s - c0) / steps;
    double mb = (double)(dist_bytes_sent() - b0) / steps / 1e6;
    if (d.rank == 0) {
        printf("%-26s %5d %7d %9.3f %9.3f %8.1f%% %10.1f %9.0f %10.1f %12.2f\n", label, d.size, threads, dt, comm,
               100 * comm / dt, mb, (double)accum * o.B * o.T / dt, comm > 0 ? mb / comm : 0,
               trainer_optim_bytes(&t) / 1e6);
        fflush(stdout);
    }
    trainer_free(&t);
    dist_free(&d);
    dist_stop();
    return 0;
}
