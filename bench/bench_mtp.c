/*
 * bench_mtp.c — MTP speculative decoding: decode speed and acceptance with
 * the model's own MTP drafts, and with an oracle drafter (the plain run's
 * next token, so every draft is accepted) for the speed-up at full
 * acceptance; random-weight models accept almost nothing on their own.
 *   make build/bench/bench_mtp && build/bench/bench_mtp DIR [dtype] [n]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deepc.h"
#include "bench_util.h"

typedef struct run {
    int out[4096], n;
    const int *ref;
} run;

static int on_tok(void *ctx, int t) {
    run *r = ctx;
    r->out[r->n++] = t;
    return 0;
}

static int oracle(void *ctx, const float *l, int n_gen) {
    (void)l;
    run *r = ctx;
    return r->ref[n_gen];
}

static int go(dc_model *m, int mtp, int use_oracle, const int *ref, int n, run *r, dc_gen_stats *gs) {
    static const int prompt[] = {1, 100, 200, 300, 400, 500, 600, 700};
    dc_session *s;
    dc_sampler *smp;
    dc_err e;
    dc_sampler_params sp;
    dc_sampler_defaults(&sp);
    sp.temperature = 0;
    memset(r, 0, sizeof *r);
    r->ref = ref;
    if (dc_session_new(m, 8 + n + 2, DC_ATTN_ABSORB, &s, &e) || dc_sampler_new(&sp, dc_model_config(m)->vocab_size, &smp, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    dc_gen_opts o = {.max_new = n, .eos = -1, .mtp = mtp, .cb = on_tok, .ctx = r, .draft = use_oracle ? oracle : NULL};
    int rc = dc_generate(s, smp, prompt, 8, &o, gs, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    dc_sampler_free(smp);
    dc_session_free(s);
    return rc;
}

int main(int argc, char **argv) {
    bench_policy_reexec(argv, "active");
    if (argc < 2) return fprintf(stderr, "usage: bench_mtp DIR [f32|bf16|q8] [n]\n"), 2;
    const char *dt = argc > 2 ? argv[2] : "q8";
    int n = argc > 3 ? atoi(argv[3]) : 128;
    if (n < 1 || n > 4000) n = 128;
    dc_model *m;
    dc_err e;
    if (dc_model_load(argv[1], &m, &e) || dc_model_set_dtype(m, dt, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    static run plain, spec, orc;
    dc_gen_stats a, b, c;
    go(m, 0, 0, NULL, 16, &plain, &a); /* warm-up */
    if (go(m, 0, 0, NULL, n, &plain, &a) || go(m, 1, 0, NULL, n, &spec, &b) || go(m, 1, 1, plain.out, n, &orc, &c)) return 1;
    double ra = a.n_gen / a.decode_s, rb = b.n_gen / b.decode_s, rc = c.n_gen / c.decode_s;
    printf("%s, %d tokens, %d threads\n", dt, n, omp_get_max_threads());
    printf("  plain          %7.2f tok/s\n", ra);
    printf("  mtp (own)      %7.2f tok/s  x%.2f  accepted %d/%d (%.1f%%)  same output: %s\n", rb, rb / ra, b.n_accept,
           b.n_draft, 100.0 * b.n_accept / (b.n_draft ? b.n_draft : 1), memcmp(plain.out, spec.out, sizeof(int) * n) ? "NO" : "yes");
    printf("  mtp (oracle)   %7.2f tok/s  x%.2f  accepted %d/%d (%.1f%%)  same output: %s\n", rc, rc / ra, c.n_accept,
           c.n_draft, 100.0 * c.n_accept / (c.n_draft ? c.n_draft : 1), memcmp(plain.out, orc.out, sizeof(int) * n) ? "NO" : "yes");
    dc_model_free(m);
    return 0;
}
