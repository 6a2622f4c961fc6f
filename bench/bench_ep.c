/*
 * bench_ep.c — expert parallelism's traffic and time (moe_ep.h), run as
 *   make MPI=1 build-mpi/bench/bench_ep
 *   mpirun -np 2 --oversubscribe build-mpi/bench/bench_ep [--steps N] [--B B] [--T T]
 * Training on the train-bench shape (16 experts, top-2, 3 MoE layers): ep=2,
 * each rank one micro-batch of B x T, against the peer in the same run: one
 * process (rank 0, the same threads) training on both micro-batches (accum 2,
 * the same global batch). Per step: step time, time in the exchanges, bytes
 * sent, and bytes per token per MoE layer against the uniform-routing
 * expectation 4 exchanges x K (ep-1)/ep rows x C x 4 bytes. The bound: the
 * same alltoallv moving one large buffer (the transport's own rate).
 * Inference: greedy decode through model_load_ep, bytes per token per MoE
 * layer (rank 0 sends the rows bound elsewhere and receives their outputs).
 * Prints figures; never fails on time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/progress.h"
#include "base/rng.h"
#include "bench_util.h"
#include "dist/dist.h"
#include "model/model.h"
#include "model/moe_ep.h"
#include "model/weights.h"
#include "train/trainer.h"

static void batch(int step, int mb, int V, int n, int *tok) {
    rng r;
    rng_seed(&r, 77 + 31 * step + mb);
    for (int i = 0; i < n; i++) tok[i] = (int)(rng_u64(&r) % V);
}

/* the transport's rate: one alltoallv of `bytes` to the peer, best of 5 */
static double link_gbs(const dist *d, size_t bytes) {
    char *s = malloc(2 * bytes), *r = malloc(2 * bytes);
    memset(s, 1, 2 * bytes);
    size_t sc[2] = {bytes, bytes}, sd[2] = {0, bytes};
    double best = 0;
    dc_err err;
    for (int i = 0; i < 5; i++) {
        dist_barrier(d, DIST_EP, &err);
        double t0 = progress_now();
        dist_alltoallv(d, DIST_EP, s, sc, sd, r, sc, sd, &err);
        double g = bytes / (progress_now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(s), free(r);
    return best;
}

static void bench_train(const dist *d, int steps, int B, int T) {
    dc_config c;
    dc_err err = {0};
    dc_config_preset("train-bench", &c, &err);
    train_opts oe, o1;
    train_opts_default(&oe);
    oe.B = B, oe.T = T, oe.warmup = 0, oe.mtp_lambda = 0;
    o1 = oe, o1.accum = 2;
    trainer te, t1;
    if (trainer_init_dist(&te, &c, &oe, NULL, 1, d, 0, &err)) {
        fprintf(stderr, "bench_ep: %s\n", err.msg);
        return;
    }
    int moe = 0;
    for (int l = 0; l < c.num_hidden_layers; l++) moe += dc_config_is_moe_layer(&c, l);
    const int n = B * (T + 1);
    int *tok = malloc(sizeof(int) * 2 * n);
    double ep_s = 0, one_s = 0;
    uint64_t b0 = 0;
    double c0 = 0;
    for (int s = 0; s <= steps; s++) { /* step 0 warms up */
        for (int m = 0; m < 2; m++) batch(s, m, c.vocab_size, n, tok + m * n);
        if (s == 1) b0 = te.ep->bytes, c0 = te.ep->secs;
        dist_barrier(d, DIST_EP, &err);
        double t0 = progress_now();
        trainer_zero_grad(&te);
        tbatch b = {B, T, tok + d->ep_rank * n, NULL, NULL};
        trainer_forward(&te, &b, 1, &err);
        trainer_update(&te);
        if (s) ep_s += progress_now() - t0;
    }
    double bytes = (double)(te.ep->bytes - b0) / steps, comm = (te.ep->secs - c0) / steps;
    if (d->rank == 0) {
        trainer_init(&t1, &c, &o1, NULL, 1, &err);
        for (int s = 0; s <= steps; s++) {
            for (int m = 0; m < 2; m++) batch(s, m, c.vocab_size, n, tok + m * n);
            double t0 = progress_now();
            trainer_zero_grad(&t1);
            for (int m = 0; m < 2; m++) {
                tbatch bm = {B, T, tok + m * n, NULL, NULL};
                trainer_forward(&t1, &bm, 1, &err);
            }
            trainer_update(&t1);
            if (s) one_s += progress_now() - t0;
        }
        trainer_free(&t1);
        double per_tok = bytes / ((double)B * T) / moe, expect = 4.0 * c.num_experts_per_tok * 0.5 * c.hidden_size * 4;
        double gbs = link_gbs(d, 8u << 20);
        printf("train-bench shape (C %d, E %d, K %d, %d MoE layers), global batch 2 x %d x %d, %d steps, "
               "%d thread(s) per rank\n", c.hidden_size, c.n_routed_experts, c.num_experts_per_tok, moe, B, T, steps,
               omp_get_max_threads());
        printf("  one process (accum 2):   step %.3f s\n", one_s / steps);
        printf("  ep=2, rank 0:            step %.3f s (%.2fx), in exchanges %.3f s (%.0f%%)\n", ep_s / steps,
               one_s / ep_s, comm, 100 * comm / (ep_s / steps));
        printf("  sent per step per rank:  %.2f MB in %ld exchanges per step (%.1f MB/s achieved)\n", bytes / 1e6,
               (te.ep->exchanges) / (steps + 1), bytes / comm / 1e6);
        printf("  per token per MoE layer: %.0f bytes sent (fwd+bwd); uniform routing expects %.0f "
               "(4 x K/2 rows x C x 4 B)\n", per_tok, expect);
        printf("  bound: the transport moves %.2f GB/s (one 8 MB alltoallv, same run)\n", gbs);
    } else {
        link_gbs(d, 8u << 20);
    }
    free(tok);
    trainer_free(&te);
}

static void bench_infer(const dist *d, int ntok) {
    const char *dir = "build-mpi/tmp/bench_ep_model";
    dc_config c;
    dc_err err = {0};
    dc_config_preset("train-bench", &c, &err);
    if (d->rank == 0) {
        if (system("rm -rf build-mpi/tmp/bench_ep_model && mkdir -p build-mpi/tmp/bench_ep_model")) return;
        weights_write_random(&c, dir, 3, "f32", 0, &err);
    }
    dist_barrier(d, DIST_WORLD, &err);
    dc_model *m = NULL;
    if (model_load_ep(dir, d, &m, &err)) {
        fprintf(stderr, "bench_ep: %s\n", err.msg);
        return;
    }
    if (d->ep_rank) {
        moe_ep_follow(m->ep, m, &err);
        dc_model_free(m);
        return;
    }
    dc_session *s = NULL;
    float *lg = malloc(sizeof(float) * c.vocab_size);
    int tok = 5, moe = 0;
    for (int l = 0; l < c.num_hidden_layers; l++) moe += dc_config_is_moe_layer(&c, l);
    dc_session_new(m, ntok + 1, DC_ATTN_ABSORB, &s, &err);
    double t0 = progress_now();
    for (int i = 0; i < ntok; i++) dc_forward(s, &tok, 1, lg, 1, &err), tok = argmax_f32(lg, c.vocab_size);
    double dt = progress_now() - t0;
    printf("inference (greedy decode, ep=2): %d tokens, %.1f ms each, %.1f ms of it in exchanges; rank 0 sent "
           "%.0f bytes per token per MoE layer (rows out; as many come back)\n", ntok, dt / ntok * 1e3,
           m->ep->secs / ntok * 1e3, (double)m->ep->bytes / ntok / moe);
    printf("  resident weights on rank 0: %.1f MB\n", dc_model_weight_bytes(m) / 1e6);
    dc_session_free(s);
    free(lg);
    dc_model_free(m);
}

int main(int argc, char **argv) {
    dc_err err = {0};
    dist d;
    int steps = 3, B = 2, T = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--B")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) T = atoi(argv[i + 1]);
    }
    if (dist_start(&argc, &argv, &err) || dist_init(&d, 2, &err)) {
        fprintf(stderr, "bench_ep: %s (run under mpirun -np 2)\n", err.msg);
        return 1;
    }
    bench_threads(1);
    bench_train(&d, steps, B, T);
    bench_infer(&d, 32);
    dist_free(&d);
    dist_stop();
    return 0;
}
