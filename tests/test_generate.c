/*
 * test_generate.c — src/infer/ (sampler, dc_generate, MTP speculative
 * decoding, session truncate / save / load), run on `deepc init --preset tiny`
 * models in the test's temporary directory:
 *   greedy output identical across thread counts, naive | absorbed attention,
 *   with and without --mtp, for f32 / bf16 / q8 weights;
 *   seeded sampling reproducible (and identical with --mtp);
 *   q8, bf16, f16, q5_0 and fp8 logits close to f32 (errors printed);
 *   truncating the cache and recomputing gives the same logits;
 *   `deepc generate` on the command line agrees with itself across options.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "deepc.h"
#include "harness.h"

#define BIN DC_BUILD "/deepc"
static char g_dir[600];

static const int PROMPT[] = {0, 17, 99, 254, 3, 77, 400, 12};
#define NPROMPT 8

static int model_dir(void) {
    if (g_dir[0]) return 0;
    snprintf(g_dir, sizeof g_dir, "%s/tiny", harness_tmpdir());
    return harness_sh(BIN " init --preset tiny --seed 5 --out %s > /dev/null", g_dir);
}

static dc_model *load(const char *dtype) {
    dc_model *m = NULL;
    dc_err e = {0};
    if (model_dir() || dc_model_load(g_dir, &m, &e) || dc_model_set_dtype(m, dtype, &e)) {
        printf("    load %s: %s\n", dtype, e.msg);
        dc_model_free(m);
        return NULL;
    }
    return m;
}

static int on_tok(void *ctx, int t) {
    int *v = ctx;
    v[1 + v[0]++] = t;
    return 0;
}

/* generate n tokens; out[0] = count, out[1..] the tokens */
static int gen(dc_model *m, int attn, int mtp, const dc_sampler_params *sp, int n, int *out, dc_gen_stats *gs) {
    dc_session *s = NULL;
    dc_sampler *smp = NULL;
    dc_err e = {0};
    out[0] = 0;
    int rc = dc_session_new(m, NPROMPT + n + 2, attn, &s, &e);
    if (!rc) rc = dc_sampler_new(sp, dc_model_config(m)->vocab_size, &smp, &e);
    dc_gen_opts o = {.max_new = n, .eos = -1, .mtp = mtp, .cb = on_tok, .ctx = out};
    if (!rc) rc = dc_generate(s, smp, PROMPT, NPROMPT, &o, gs, &e);
    if (rc) printf("    generate: %s\n", e.msg);
    dc_sampler_free(smp);
    dc_session_free(s);
    return rc;
}

static void greedy_identical(void) {
    const char *dts[] = {"f32", "bf16", "q8"};
    dc_sampler_params sp;
    dc_sampler_defaults(&sp);
    sp.temperature = 0;
    for (int d = 0; d < 3; d++) {
        dc_model *m = load(dts[d]);
        CHECK(m, "load %s", dts[d]);
        if (!m) continue;
        int base[64], got[64];
        dc_gen_stats gs;
        harness_threads(1);
        CHECK(gen(m, DC_ATTN_ABSORB, 0, &sp, 40, base, &gs) == 0 && base[0] == 40, "%s base run", dts[d]);
        const char *what[] = {"2 threads", "naive attention", "--mtp", "--mtp naive 2 threads"};
        int thr[] = {2, 1, 1, 2}, attn[] = {DC_ATTN_ABSORB, DC_ATTN_NAIVE, DC_ATTN_ABSORB, DC_ATTN_NAIVE},
            mtp[] = {0, 0, 1, 1};
        for (int k = 0; k < 4; k++) {
            harness_threads(thr[k]);
            gen(m, attn[k], mtp[k], &sp, 40, got, &gs);
            CHECK(got[0] == 40 && !memcmp(got, base, sizeof(int) * 41), "%s: greedy output differs with %s", dts[d],
                  what[k]);
            if (mtp[k]) CHECK(gs.mtp_used && gs.n_draft > 0, "%s: MTP did not run", dts[d]);
            if (mtp[k] && k == 2)
                printf("    %-4s greedy: MTP accepted %d of %d drafts (random weights)\n", dts[d], gs.n_accept, gs.n_draft);
        }
        harness_threads(0);
        dc_model_free(m);
    }
}

/* an oracle drafter: the reference's next token, except every third draft is wrong */
typedef struct oracle {
    int out[64];       /* count + tokens, filled by the callback */
    const int *ref;    /* reference count + tokens */
    int wrong;
} oracle;

static int oracle_draft(void *ctx, const float *mtp_logits, int n_gen) {
    (void)mtp_logits;
    oracle *o = ctx;
    int t = n_gen < o->ref[0] ? o->ref[1 + n_gen] : 0;
    return ++o->wrong % 3 == 0 ? (t + 1) % 512 : t;
}

static int oracle_tok(void *ctx, int t) {
    oracle *o = ctx;
    o->out[1 + o->out[0]++] = t;
    return 0;
}

/* acceptance exercised: drafts right two times in three, output unchanged */
static void mtp_accept_path(void) {
    dc_model *m = load("f32");
    if (!m) return;
    dc_sampler_params sp;
    dc_sampler_defaults(&sp);
    sp.temperature = 0;
    int ref[64];
    dc_gen_stats gs;
    for (int attn = 0; attn < 2; attn++)
        for (int seeded = 0; seeded < 2; seeded++) {
            dc_sampler_params p = sp;
            if (seeded) p.temperature = 0.8f, p.top_k = 0, p.seed = 9;
            gen(m, attn, 0, &p, 40, ref, &gs);
            oracle o = {.ref = ref};
            dc_session *s = NULL;
            dc_sampler *smp = NULL;
            dc_err e = {0};
            dc_session_new(m, NPROMPT + 42, attn, &s, &e);
            dc_sampler_new(&p, 512, &smp, &e);
            dc_gen_opts go = {.max_new = 40, .eos = -1, .mtp = 1, .cb = oracle_tok, .ctx = &o, .draft = oracle_draft};
            int rc = dc_generate(s, smp, PROMPT, NPROMPT, &go, &gs, &e);
            CHECK(rc == 0 && o.out[0] == 40 && !memcmp(o.out, ref, sizeof(int) * 41),
                  "attn %d seeded %d: MTP output with accepted drafts differs", attn, seeded);
            CHECK(gs.n_accept > gs.n_draft / 2 && gs.n_accept < gs.n_draft, "accepted %d of %d", gs.n_accept, gs.n_draft);
            CHECK(dc_session_pos(s) == NPROMPT + 39 && dc_session_mtp_pos(s) == dc_session_pos(s),
                  "caches at %d / %d, want %d", dc_session_pos(s), dc_session_mtp_pos(s), NPROMPT + 39);
            if (!attn && !seeded) printf("    oracle drafts: %d of %d accepted, %d verify steps for 40 tokens\n",
                                         gs.n_accept, gs.n_draft, gs.n_draft);
            dc_sampler_free(smp);
            dc_session_free(s);
        }
    dc_model_free(m);
}

static void sampling_seeded(void) {
    dc_model *m = load("f32");
    if (!m) return;
    dc_sampler_params sp;
    dc_sampler_defaults(&sp);
    sp.temperature = 1.0f, sp.top_k = 0, sp.top_p = 0.9f, sp.min_p = 0.01f, sp.repeat_penalty = 1.1f, sp.seed = 42;
    int a[80], b[80], c[80];
    dc_gen_stats gs;
    gen(m, DC_ATTN_ABSORB, 0, &sp, 60, a, &gs);
    gen(m, DC_ATTN_ABSORB, 0, &sp, 60, b, &gs);
    CHECK(!memcmp(a, b, sizeof(int) * 61), "same seed, different tokens");
    gen(m, DC_ATTN_ABSORB, 1, &sp, 60, c, &gs);
    CHECK(!memcmp(a, c, sizeof(int) * 61), "seeded sampling differs with --mtp");
    sp.seed = 43;
    gen(m, DC_ATTN_ABSORB, 0, &sp, 60, c, &gs);
    CHECK(memcmp(a, c, sizeof(int) * 61), "another seed gave the very same 60 tokens");
    /* top-k 1 and a near-zero temperature are greedy */
    dc_sampler_params g;
    dc_sampler_defaults(&g);
    g.temperature = 0;
    gen(m, DC_ATTN_ABSORB, 0, &g, 30, a, &gs);
    sp.top_k = 1, sp.repeat_penalty = 1;
    gen(m, DC_ATTN_ABSORB, 0, &sp, 30, b, &gs);
    CHECK(!memcmp(a, b, sizeof(int) * 31), "top-k 1 is not greedy");
    dc_model_free(m);
}

/* logits of every prompt position */
static float *logits_all(dc_model *m) {
    int V = dc_model_config(m)->vocab_size;
    float *l = malloc(sizeof(float) * V * NPROMPT);
    dc_session *s = NULL;
    dc_err e;
    if (dc_session_new(m, NPROMPT, DC_ATTN_ABSORB, &s, &e) == 0) {
        /* decode one by one: the matvec kernels, as generation uses them */
        for (int i = 0; i < NPROMPT; i++) dc_forward(s, PROMPT + i, 1, l + (size_t)i * V, 0, &e);
    }
    dc_session_free(s);
    return l;
}

static void quantised_logits(void) {
    dc_model *f = load("f32");
    if (!f) return;
    int V = dc_model_config(f)->vocab_size;
    float *ref = logits_all(f);
    /* fp8 at load: tiny's matrices 128 wide (the dense down_proj) only */
    const char *dts[] = {"bf16", "q8", "f16", "q5_0", "fp8"};
    double lim[] = {1e-3, 1e-2, 1e-5, 2e-2, 1e-2};
    for (int d = 0; d < 5; d++) {
        dc_model *m = load(dts[d]);
        if (!m) continue;
        float *l = logits_all(m);
        double num = 0, den = 0, mx = 0, scale = 0;
        int agree = 0;
        for (int i = 0; i < NPROMPT; i++) {
            int am = 0, bm = 0;
            for (int v = 0; v < V; v++) {
                size_t k = (size_t)i * V + v;
                num += (l[k] - ref[k]) * (double)(l[k] - ref[k]), den += (double)ref[k] * ref[k];
                mx = fmax(mx, fabs(l[k] - ref[k])), scale = fmax(scale, fabs(ref[k]));
                am = l[k] > l[(size_t)i * V + am] ? v : am;
                bm = ref[k] > ref[(size_t)i * V + bm] ? v : bm;
            }
            agree += am == bm;
        }
        printf("    %-4s vs f32 logits: NMSE %.2e, max |diff| %.4f (max |logit| %.2f), argmax agrees %d/%d\n", dts[d],
               num / den, mx, scale, agree, NPROMPT);
        CHECK(num / den < lim[d], "%s logits NMSE %g", dts[d], num / den);
        free(l);
        dc_model_free(m);
    }
    free(ref);
    dc_model_free(f);
}

static void truncate_save_load(void) {
    dc_model *m = load("f32");
    if (!m) return;
    int V = dc_model_config(m)->vocab_size;
    dc_err e = {0};
    dc_session *s = NULL, *s2 = NULL;
    float *a = malloc(sizeof(float) * V * NPROMPT), *b = malloc(sizeof(float) * V * NPROMPT);
    CHECK(dc_session_new(m, 32, DC_ATTN_ABSORB, &s, &e) == 0, "%s", e.msg);
    dc_forward(s, PROMPT, NPROMPT, a, 0, &e);
    CHECK(dc_session_truncate(s, 3, &e) == 0 && dc_session_pos(s) == 3, "truncate");
    CHECK(dc_session_truncate(s, 9, &e) != 0, "truncate beyond the cache must fail");
    dc_forward(s, PROMPT + 3, NPROMPT - 3, b + 3 * V, 0, &e);
    double md = 0;
    for (size_t i = 3 * (size_t)V; i < (size_t)V * NPROMPT; i++) md = fmax(md, fabs(a[i] - b[i]));
    CHECK(md < 1e-5, "after truncate: max |diff| %g", md);
    /* save after 5, load into a fresh session, continue */
    char path[700];
    snprintf(path, sizeof path, "%s/s.kv", harness_tmpdir());
    dc_session_truncate(s, 5, &e);
    CHECK(dc_session_save(s, PROMPT, 5, path, &e) == 0, "save: %s", e.msg);
    CHECK(dc_session_new(m, 32, DC_ATTN_ABSORB, &s2, &e) == 0, "session");
    int *ids = NULL, n = 0;
    CHECK(dc_session_load(s2, path, &ids, &n, &e) == 0 && n == 5 && !memcmp(ids, PROMPT, 5 * sizeof(int)), "load: %s",
          e.msg);
    dc_forward(s2, PROMPT + 5, NPROMPT - 5, b + 5 * V, 0, &e);
    md = 0;
    for (size_t i = 5 * (size_t)V; i < (size_t)V * NPROMPT; i++) md = fmax(md, fabs(a[i] - b[i]));
    CHECK(md < 1e-5, "after load: max |diff| %g", md);
    free(ids);
    dc_session_free(s2);
    s2 = NULL;
    CHECK(dc_session_new(m, 32, DC_ATTN_NAIVE, &s2, &e) == 0 && dc_session_load(s2, path, &ids, &n, &e) != 0,
          "a naive session must refuse an absorbed save");
    dc_session_free(s2);
    s2 = NULL;
    /* issue 14 defect 9: the same shape from another checkpoint, or in another weight type, is refused */
    char other[700];
    snprintf(other, sizeof other, "%s/tiny-other", harness_tmpdir());
    dc_model *m2 = NULL, *m3 = load("q8");
    if (harness_sh("build/deepc init --preset tiny --seed 6 --out %s > /dev/null", other) == 0) dc_model_load(other, &m2, &e);
    dc_model *others[2] = {m2, m3};
    for (int k = 0; k < 2; k++) {
        CHECK(others[k] && dc_session_new(others[k], 32, DC_ATTN_ABSORB, &s2, &e) == 0, "other model %d", k);
        CHECK(s2 && dc_session_load(s2, path, &ids, &n, &e) == DC_EARG && strstr(e.msg, "another checkpoint"),
              "a session from another checkpoint (%d) must be refused: %s", k, e.msg);
        dc_session_free(s2);
        s2 = NULL;
        dc_model_free(others[k]);
    }
    /* issue 14 defect 1: a NaN in a saved cache is refused, naming where */
    {
        char *raw = NULL;
        size_t len = 0;
        CHECK(file_read_all(path, &raw, &len, &e) == 0, "%s", e.msg);
        float nan = NAN;
        if (raw && len > 8) memcpy(raw + len - 8, &nan, 4); /* a value of the last layer's rows */
        char bad[720];
        snprintf(bad, sizeof bad, "%s.nan", path);
        file_write_atomic(bad, raw, len, &e);
        free(raw);
        CHECK(dc_session_new(m, 32, DC_ATTN_ABSORB, &s2, &e) == 0, "session");
        CHECK(dc_session_load(s2, bad, &ids, &n, &e) == DC_EFORMAT && strstr(e.msg, "NaN") && strstr(e.msg, "layer") &&
                  dc_session_pos(s2) == 0,
              "a NaN in the cache: %s", e.msg);
        dc_session_free(s2);
        s2 = NULL;
    }
    file_write_atomic(path, "DCKV", 4, &e);
    CHECK(dc_session_load(s, path, &ids, &n, &e) == DC_EFORMAT, "truncated file: %s", e.msg);
    /* an empty file (fuzz_session's first finding: pointer arithmetic on the
     * NULL mapping of 0 bytes, undefined behaviour under UBSan) */
    file_write_atomic(path, "", 0, &e);
    CHECK(dc_session_load(s, path, &ids, &n, &e) == DC_EFORMAT && strstr(e.msg, "not a deepc session"),
          "empty file: %s", e.msg);
    dc_session_free(s2);
    dc_session_free(s);
    free(a), free(b);
    dc_model_free(m);
}

/* session files keep the cache in its type (bf16 by default: half the
 * bytes of f32) and convert on load into a session of the other type (bf16
 * widens exactly, f32 rounds to bf16), whose next logits stay within the
 * bf16-vs-f32 cache bound of test_engine.c */
static void session_kv_types(void) {
    dc_model *m = load("f32");
    if (!m) return;
    int V = dc_model_config(m)->vocab_size;
    dc_err e = {0};
    float *ref = malloc(sizeof(float) * V * NPROMPT), *got = malloc(sizeof(float) * V * NPROMPT);
    char path[2][700];
    size_t size[2] = {0, 0};
    for (int kv = 0; kv < 2; kv++) { /* DC_KV_BF16, DC_KV_F32 */
        dc_session *s = NULL;
        snprintf(path[kv], sizeof path[kv], "%s/kv%d.kv", harness_tmpdir(), kv);
        CHECK(dc_session_new_kv(m, 32, DC_ATTN_ABSORB, kv, &s, &e) == 0 && dc_forward(s, PROMPT, 5, got, 0, &e) == 0 &&
                  dc_session_save(s, PROMPT, 5, path[kv], &e) == 0,
              "save %d: %s", kv, e.msg);
        char *raw = NULL;
        if (file_read_all(path[kv], &raw, &size[kv], &e) == 0) free(raw);
        dc_session_free(s);
    }
    CHECK(size[0] < size[1] && size[1] - size[0] > size[1] / 3, "bf16 file %zu bytes, f32 %zu", size[0], size[1]);
    for (int kv = 0; kv < 2; kv++) {
        /* the reference: the whole prompt in a session of type kv; then the other type's file loaded into kv */
        dc_session *s = NULL, *t = NULL;
        int *ids = NULL, n = 0;
        dc_session_new_kv(m, 32, DC_ATTN_ABSORB, kv, &s, &e);
        dc_forward(s, PROMPT, 5, ref, 0, &e);
        dc_forward(s, PROMPT + 5, NPROMPT - 5, ref + 5 * V, 0, &e);
        CHECK(dc_session_new_kv(m, 32, DC_ATTN_ABSORB, kv, &t, &e) == 0 &&
                  dc_session_load(t, path[!kv], &ids, &n, &e) == 0 && n == 5,
              "load a %s file into a %s session: %s", kv ? "bf16" : "f32", kv ? "f32" : "bf16", e.msg);
        dc_forward(t, PROMPT + 5, NPROMPT - 5, got + 5 * V, 0, &e);
        double md = 0, amax = 0;
        for (size_t i = 5 * (size_t)V; i < (size_t)V * NPROMPT; i++)
            md = fmax(md, fabs(ref[i] - got[i])), amax = fmax(amax, fabs(ref[i]));
        printf("    %s file into a %s session: next logits max|diff| %.2e (max|logit| %.2f)\n", kv ? "bf16" : "f32",
               kv ? "f32" : "bf16", md, amax);
        CHECK(md < 2e-2 * amax, "converted cache: logits differ by %g", md);
        free(ids);
        dc_session_free(s);
        dc_session_free(t);
    }
    free(ref), free(got);
    dc_model_free(m);
}

static char *run(const char *args) {
    char log[700], *out;
    size_t n;
    snprintf(log, sizeof log, "%s/gen.txt", harness_tmpdir());
    harness_sh(BIN " generate -m %s %s > %s 2>/dev/null", g_dir, args, log);
    if (file_read_all(log, &out, &n, NULL)) return strdup("");
    return out;
}

static void cli_generate(void) {
    if (model_dir()) return;
    const char *p = "--prompt-ids 0,5,9,300 -n 24 --temp 0";
    char *base = run("--prompt-ids 0,5,9,300 -n 24 --temp 0 -t 1");
    CHECK(strlen(base) > 24, "no output: '%s'", base);
    const char *var[] = {"-t 2", "--mtp", "--attn naive --mtp -t 2", "--ctx 40"};
    for (int i = 0; i < 4; i++) {
        char args[256];
        snprintf(args, sizeof args, "%s %s", p, var[i]);
        char *o = run(args);
        CHECK(!strcmp(o, base), "generate %s: '%s' vs '%s'", var[i], o, base);
        free(o);
    }
    char *a = run("--prompt-ids 0,5 -n 20 --temp 0.9 --seed 7"), *b = run("--prompt-ids 0,5 -n 20 --temp 0.9 --seed 7");
    CHECK(!strcmp(a, b) && strlen(a) > 10, "seeded CLI runs differ: '%s' vs '%s'", a, b);
    free(a), free(b), free(base);
    CHECK(harness_sh(BIN " generate -m %s -p hello > /dev/null 2>&1", g_dir) == 1, "-p without a tokenizer must fail");
    CHECK(harness_sh(BIN " generate -m %s --prompt-ids 1 --top-p 0 > /dev/null 2>&1", g_dir) == 2, "bad --top-p");
    CHECK(harness_sh(BIN " generate --help > /dev/null") == 0, "--help");
}

int main(void) {
    RUN(greedy_identical);
    RUN(mtp_accept_path);
    RUN(sampling_seeded);
    RUN(quantised_logits);
    RUN(truncate_save_load);
    RUN(session_kv_types);
    RUN(cli_generate);
    return harness_done();
}
