/*
 * bench_parallel.c — `deepc bench --parallel 1,2,4,8,16`: aggregate decode
 * tokens/s of B sequences decoding together on one engine (each step one
 * token of every sequence in one forward pass), the weights read per step
 * (dc_engine_last_bytes: the routed experts are the union of those the B
 * tokens chose) and the bound for that batch, B x bandwidth / bytes per
 * step. With --peer DIR, llama.cpp's llama-batched-bench runs on the same
 * GGUF file in the same run (-npp 16 -ntg N), once for each batch size just
 * before ours (-npl B: the two in the same minutes of a machine whose
 * bandwidth moves), and its S_TG figures stand beside ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
#include "base/rng.h"
#include "cli/bench.h"
#include "cli/cli.h"

#define PROMPT 16

/* B sequences: a 16-token prompt each in one batch, then `steps` decode
 * steps of B tokens, each the argmax of its sequence's logits */
static int run_batch(dc_model *m, int B, int steps, int attn, int kv, double *rate, double *mb_step, dc_err *err) {
    const dc_config *c = dc_model_config(m);
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = B, o.max_len = PROMPT + steps + 8, o.max_batch = B * PROMPT, o.attn = attn, o.kv_type = kv;
    dc_engine *e = NULL;
    int rc = dc_engine_new(m, &o, &e, err);
    int *tok = malloc(sizeof(int) * B * PROMPT), *sq = malloc(sizeof(int) * B * PROMPT);
    if (!rc && (!tok || !sq)) rc = err_set(err, DC_ENOMEM, "bench: out of memory");
    rng r;
    rng_seed(&r, 99);
    for (int i = 0; !rc && i < B; i++) {
        int s = dc_seq_new(e, err);
        if (s < 0) rc = s;
        for (int j = 0; j < PROMPT; j++) tok[i * PROMPT + j] = (int)(rng_u64(&r) % c->vocab_size), sq[i * PROMPT + j] = s;
    }
    if (!rc) rc = dc_engine_decode(e, &(dc_batch){B * PROMPT, tok, sq, NULL}, err);
    /* after the prefill, logits rows are each sequence's last: batch index s*PROMPT + PROMPT-1 */
    for (int i = 0; !rc && i < B; i++) tok[i] = dc_argmax(dc_engine_logits(e, i * PROMPT + PROMPT - 1), c->vocab_size), sq[i] = i;
    double t0 = 0, bytes = 0;
    for (int k = -2; !rc && k < steps; k++) { /* two warm-up steps */
        if (k == 0) t0 = progress_now();
        rc = dc_engine_decode(e, &(dc_batch){B, tok, sq, NULL}, err);
        for (int i = 0; !rc && i < B; i++) tok[i] = dc_argmax(dc_engine_logits(e, i), c->vocab_size);
        if (k >= 0) bytes += dc_engine_last_bytes(e);
    }
    if (!rc) *rate = (double)B * steps / (progress_now() - t0), *mb_step = bytes / steps / 1e6;
    free(tok), free(sq);
    dc_engine_free(e);
    return rc;
}

int bench_parallel(dc_model *m, const char *model_path, const char *peer, const int *B, int nb, int steps, int thr,
                   int attn, int kv, double bw, dc_err *err) {
    double base = 0, s_tg[16] = {0};
    size_t ml = strlen(model_path);
    int gguf = ml > 5 && !strcmp(model_path + ml - 5, ".gguf");
    printf("  %d thr  batched decode, %d steps after a %d-token prompt per sequence:\n", thr, steps, PROMPT);
    printf("     B   tok/s (all)  per seq   MB read/step   bound tok/s   of bound   vs B=1%s\n",
           peer && gguf ? "   llama-batched-bench S_TG   deepc/llama.cpp" : "");
    for (int i = 0; i < nb; i++) {
        double rate = 0, mb = 0;
        /* the peer just before ours, batch size by batch size: the two in the same minutes */
        if (peer && gguf) peer_batched_bench(peer, model_path, B + i, 1, PROMPT, steps, thr, s_tg + i);
        int rc = run_batch(m, B[i], steps, attn, kv, &rate, &mb, err);
        if (rc) return rc;
        if (i == 0 || B[i] == 1) base = B[i] == 1 ? rate : base;
        /* the bound's bandwidth: the run's best probe, or what this decode read when more (never above 100%) */
        const double got = rate / B[i] * mb / 1e3, bound = B[i] * (got > bw ? got : bw) * 1e3 / mb;
        printf("  %4d   %10.1f  %8.1f   %12.1f   %11.1f   %7.0f%%", B[i], rate, rate / B[i], mb, bound, 100 * rate / bound);
        if (base > 0) printf("   %5.2fx", rate / base);
        else printf("   %6s", "-"); /* no B = 1 measured first */
        if (peer && gguf) {
            if (s_tg[i] > 0) printf("   %22.1f   %13.2fx", s_tg[i], rate / s_tg[i]);
            else printf("   %22s", "(no figure)");
        }
        printf("\n");
        fflush(stdout);
    }
    if (peer && !gguf) printf("  (--peer: llama.cpp needs a .gguf model; none run)\n");
    return DC_OK;
}
