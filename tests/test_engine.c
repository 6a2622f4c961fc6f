/*
 * test_engine.c — src/infer/engine.c, kv_store.c, generate_batch.c, stop.c:
 * the batched engine against each sequence run alone.
 *
 *   mixed batches (prefill chunks of some sequences beside decode tokens of
 *   others, a fork, interleaved order) give every sequence the logits it
 *   gets alone: bit for bit on quantised weights (q8, q4_0), within 1e-4 on
 *   f32 / bf16 (sgemm vs matvec rounding, engine.c), naive and absorbed;
 *   forks share pages (memory figures) and copy on write, truncating a fork
 *   leaves the shared prefix intact; removing a sequence mid-batch; a full
 *   KV store is a clear error that changes nothing; batched generation
 *   (greedy, seeded, shared prompts, MTP) equals dc_generate alone; stop
 *   strings. The latent cache is bf16 (the default) in all of it; bf16
 *   against an f32 cache: half the bytes, logits within a stated bound.
 */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "deepc.h"
#include "harness.h"
#include "infer/engine.h"
#include "model/model.h"

#define BIN "build/deepc"
static char g_dir[600];

static char g_dir12[600]; /* tiny with 12 heads: mixed_case_in's other model */

/* tiny (dir NULL), or the model in dir, with its matrices in dtype */
/* tiny's directory, written on first use; NULL if that fails */
static const char *tiny_dir(void) {
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "%s/tiny", harness_tmpdir());
        if (harness_sh(BIN " init --preset tiny --seed 11 --out %s > /dev/null", g_dir)) return g_dir[0] = 0, NULL;
    }
    return g_dir;
}

static dc_model *load_in(const char *dir, const char *dtype) {
    if (!dir && !(dir = tiny_dir())) return NULL;
    dc_model *m = NULL;
    dc_err e = {0};
    if (dc_model_load(dir, &m, &e) || dc_model_set_dtype(m, dtype, &e)) {
        printf("    load %s: %s\n", dtype, e.msg);
        dc_model_free(m);
        return NULL;
    }
    return m;
}

static dc_model *load(const char *dtype) { return load_in(NULL, dtype); }

static int quantised(const char *dt) { return !strcmp(dt, "q8") || !strcmp(dt, "q4_0"); }

/* ---------------------------------------------------------------- reference: one sequence alone */

/* feed chunks[0..nc) of ids (sizes in chunk) alone through a session with
 * attention attn and cache type kv; logits (sum, V) of every token, and
 * the cache's bytes a position into *bytes_tok when not NULL */
static float *solo_kv_attn(dc_model *m, int attn, int kv, const int *ids, const int *chunk, int nc, size_t *bytes_tok) {
    const int V = dc_model_config(m)->vocab_size;
    int n = 0;
    for (int c = 0; c < nc; c++) n += chunk[c];
    float *out = malloc(sizeof(float) * (size_t)n * V);
    dc_session *s = NULL;
    dc_err e = {0};
    int rc = dc_session_new_kv(m, n + 4, attn, kv, &s, &e);
    for (int c = 0, at = 0; !rc && c < nc; at += chunk[c++]) rc = dc_forward(s, ids + at, chunk[c], out + (size_t)at * V, 0, &e);
    CHECK(rc == 0, "solo: %s", e.msg);
    dc_kv_stats st;
    if (!rc && bytes_tok) dc_engine_kv_stats(session_engine(s), &st), *bytes_tok = st.bytes_per_token;
    dc_session_free(s);
    return out;
}

/* the default (bf16) cache */
static float *solo(dc_model *m, int attn, const int *ids, const int *chunk, int nc) {
    return solo_kv_attn(m, attn, DC_KV_BF16, ids, chunk, nc, NULL);
}

static double diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* ---------------------------------------------------------------- mixed batches */

/* Streams: A 12 prompt + 4 decode, B 5 + 4, C = fork of A after its prompt
 * + 4 of its own, D 20 in two chunks of 10 + 2 decode. */
static const int SA[] = {3, 44, 91, 7, 250, 18, 301, 66, 9, 120, 77, 402, 5, 88, 190, 33};
static const int SB[] = {17, 230, 4, 99, 61, 140, 8, 355, 27};
static const int SC[] = {3, 44, 91, 7, 250, 18, 301, 66, 9, 120, 77, 402, 411, 2, 160, 73};
static const int SD[] = {200, 10, 45, 311, 6, 87, 150, 29, 74, 480, 12, 93, 38, 260, 147, 51, 300, 22, 8, 115, 64, 203};

typedef struct step {
    int n;
    int tok[32], seq[32], at[32]; /* at: index in the sequence's stream */
} step;

static void add(step *s, int q, int tok, int at) { s->tok[s->n] = tok, s->seq[s->n] = q, s->at[s->n] = at, s->n++; }

static void mixed_case_in(const char *dir, const char *dt, int attn) {
    dc_model *m = load_in(dir, dt);
    CHECK(m != NULL, "load %s", dt);
    if (!m) return;
    const int V = dc_model_config(m)->vocab_size;
    int cA[] = {12, 1, 1, 1, 1}, cB[] = {5, 1, 1, 1, 1}, cC[] = {12, 1, 1, 1, 1}, cD[] = {10, 10, 1, 1};
    float *want[4] = {solo(m, attn, SA, cA, 5), solo(m, attn, SB, cB, 5), solo(m, attn, SC, cC, 5), solo(m, attn, SD, cD, 4)};
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = 6, o.max_len = 64, o.page_tokens = 4, o.attn = attn;
    dc_engine *e = NULL;
    dc_err err = {0};
    CHECK(dc_engine_new(m, &o, &e, &err) == 0, "%s", err.msg);
    if (!e) goto out;
    int id[4] = {dc_seq_new(e, &err), dc_seq_new(e, &err), -1, dc_seq_new(e, &err)};
    /* steps: A, B prompts (interleaved); then D's chunks beside decode tokens; C forked from A */
    step st[7] = {0};
    for (int i = 0; i < 12; i++) {
        add(&st[0], 0, SA[i], i);
        if (i < 5) add(&st[0], 1, SB[i], i);
    }
    for (int k = 0; k < 4; k++) {
        step *s = &st[1 + k];
        if (k < 2)
            for (int i = 0; i < 10; i++) add(s, 3, SD[10 * k + i], 10 * k + i);
        else add(s, 3, SD[20 + k - 2], 20 + k - 2);
        add(s, 2, SC[12 + k], 12 + k), add(s, 1, SB[5 + k], 5 + k), add(s, 0, SA[12 + k], 12 + k);
    }
    double worst = 0;
    int bits = 1;
    for (int k = 0; k < 5; k++) {
        step *s = &st[k];
        if (k == 1) id[2] = dc_seq_fork(e, id[0], &err); /* C shares A's prompt */
        if (k == 1) dc_seq_truncate(e, id[2], 12, &err);
        int sq[32];
        unsigned char want_l[32];
        for (int i = 0; i < s->n; i++) sq[i] = id[s->seq[i]], want_l[i] = 1;
        dc_batch b = {s->n, s->tok, sq, want_l};
        int rc = dc_engine_decode(e, &b, &err);
        CHECK(rc == 0, "%s step %d: %s", dt, k, err.msg);
        if (rc) break;
        for (int i = 0; i < s->n; i++) {
            const float *got = dc_engine_logits(e, i), *ref = want[s->seq[i]] + (size_t)s->at[i] * V;
            worst = fmax(worst, diff(got, ref, V));
            bits &= !memcmp(got, ref, sizeof(float) * V);
        }
    }
    printf("    %-5s %-6s mixed batch vs alone: max|diff| %.2e%s\n", dt, attn ? "absorb" : "naive", worst,
           bits ? " (bit for bit)" : "");
    if (quantised(dt)) CHECK(bits, "%s: quantised weights must give the same bits in a batch as alone", dt);
    else CHECK(worst <= 1e-4, "%s: %.3g", dt, worst);
    dc_engine_free(e);
out:
    for (int i = 0; i < 4; i++) free(want[i]);
    dc_model_free(m);
}

static void mixed_case(const char *dt, int attn) { mixed_case_in(NULL, dt, attn); }

static void mixed_batches(void) {
    const char *dts[] = {"f32", "bf16", "q8", "q4_0"};
    for (int d = 0; d < 4; d++)
        for (int attn = 0; attn < 2; attn++) mixed_case(dts[d], attn);
}

/* logits (n, V) of SD[0..n) fed as a 6-token prompt, 6 single tokens, 10 */
static float *logits_of(dc_model *m, int attn, int kv, int n) {
    const int V = dc_model_config(m)->vocab_size, ch[] = {6, 1, 1, 1, 1, 1, 1, 10};
    float *lg = malloc(sizeof(float) * (size_t)n * V);
    dc_session *s = NULL;
    dc_err e = {0};
    int r = dc_session_new_kv(m, n + 4, attn, kv, &s, &e);
    for (int c = 0, at = 0; !r && c < 8 && at < n; at += ch[c++]) r = dc_forward(s, SD + at, ch[c], lg + (size_t)at * V, 0, &e);
    CHECK(r == 0, "attn %d kv %d: %s", attn, kv, e.msg);
    dc_session_free(s);
    if (r) free(lg), lg = NULL;
    return lg;
}

/* 12 heads: the absorbed decode's head groups (mla.c: one full group of
 * MLA_HEAD_GROUP = 8 heads in registers, then 4 head by head). Batched
 * equals alone (bit for bit on q8), and the absorbed attention agrees with
 * the naive one on every position (f32 weights; an f32 latent cache is only
 * rounding apart, a bf16 one its rounding of the latents; a wrong head,
 * score or latent sum is far outside either). */
static void head_groups(void) {
    CHECK(tiny_dir() != NULL, "init tiny");
    if (!g_dir[0]) return;
    snprintf(g_dir12, sizeof g_dir12, "%s/tiny12", harness_tmpdir());
    int rc = harness_sh("sed 's/\"num_attention_heads\":[[:space:]]*4/\"num_attention_heads\": 12/' %s/config.json > %s.json && "
                        "grep -q '\"num_attention_heads\": 12' %s.json && " BIN
                        " init --config %s.json --seed 5 --out %s > /dev/null",
                        g_dir, g_dir12, g_dir12, g_dir12, g_dir12);
    CHECK(rc == 0, "init a 12-head tiny in %s", g_dir12);
    if (rc) return;
    mixed_case_in(g_dir12, "q8", DC_ATTN_ABSORB);
    mixed_case_in(g_dir12, "f32", DC_ATTN_ABSORB);
    dc_model *m = load_in(g_dir12, "f32");
    CHECK(m != NULL, "load %s", g_dir12);
    if (!m) return;
    /* one thread: the heads are shared out between threads, so on more a
     * thread's range may hold no full group */
    const int nthr = omp_get_max_threads();
    omp_set_num_threads(1);
    const int V = dc_model_config(m)->vocab_size, n = 22;
    float *naive = logits_of(m, DC_ATTN_NAIVE, DC_KV_F32, n);
    const char *kvn[2] = {"f32", "bf16"};
    const int kvt[2] = {DC_KV_F32, DC_KV_BF16};
    const double tol[2] = {1e-4, 5e-3}; /* of max|logit|; bf16: kv_bf16_vs_f32's bound */
    for (int k = 0; naive && k < 2; k++) {
        float *ab = logits_of(m, DC_ATTN_ABSORB, kvt[k], n);
        if (!ab) break;
        double d = diff(naive, ab, n * V), mx = 0;
        for (int i = 0; i < n * V; i++) mx = fmax(mx, fabs(naive[i]));
        printf("    12 heads, f32 weights, %s cache: absorbed vs naive max|diff| %.2e (logits up to %.2f)\n", kvn[k], d, mx);
        CHECK(d <= tol[k] * fmax(1, mx), "absorbed (%s cache) vs naive: %.3g", kvn[k], d);
        free(ab);
    }
    omp_set_num_threads(nthr);
    free(naive);
    dc_model_free(m);
}

/* ---------------------------------------------------------------- the bf16 latent cache */

/* logits (n, V) of ids fed as chunks through a session with cache type kv */
static float *solo_kv(dc_model *m, int kv, const int *ids, const int *chunk, int nc, size_t *bytes_tok) {
    return solo_kv_attn(m, DC_ATTN_ABSORB, kv, ids, chunk, nc, bytes_tok);
}

/* the default bf16 latent cache against float32: half the bytes a position,
 * logits within 2e-2 of the largest logit's magnitude (bf16 keeps 8 bits of
 * mantissa: ~4e-3 relative per cached number), through the expanded prefill
 * path (a chunk of 12) and the absorbed decode path (single tokens) */
static void kv_bf16_vs_f32(void) {
    const char *dts[] = {"f32", "q8"};
    for (int d = 0; d < 2; d++) {
        dc_model *m = load(dts[d]);
        if (!m) { CHECK(0, "load"); continue; }
        const int V = dc_model_config(m)->vocab_size, n = 22;
        int ch[] = {12, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        size_t b16 = 0, b32 = 0;
        float *a = solo_kv(m, DC_KV_BF16, SD, ch, 11, &b16), *b = solo_kv(m, DC_KV_F32, SD, ch, 11, &b32);
        double amax = 0, worst = 0, rel = 0;
        for (size_t i = 0; i < (size_t)n * V; i++) amax = fmax(amax, fabs(b[i]));
        for (int t = 0; t < n; t++) {
            double dt = diff(a + (size_t)t * V, b + (size_t)t * V, V);
            worst = fmax(worst, dt);
        }
        rel = worst / amax;
        printf("    %-4s bf16 vs f32 cache: %zu vs %zu bytes a position; logits max|diff| %.2e, %.2e of max|logit| %.2f\n",
               dts[d], b16, b32, worst, rel, amax);
        CHECK(b16 * 2 == b32, "bf16 cache: %zu bytes a position, f32 %zu", b16, b32);
        CHECK(worst > 0, "%s: the bf16 cache gives the f32 cache's bits: is it used?", dts[d]);
        CHECK(rel < 2e-2, "%s: bf16 cache logits differ by %.3g of max |logit|", dts[d], rel);
        free(a), free(b);
        dc_model_free(m);
    }
}

/* ---------------------------------------------------------------- fork, truncate, remove, full */

static int decode1(dc_engine *e, int seq, int tok, float *logits, int V, dc_err *err) {
    dc_batch b = {1, &tok, &seq, NULL};
    int rc = dc_engine_decode(e, &b, err);
    if (!rc && logits) memcpy(logits, dc_engine_logits(e, 0), sizeof(float) * V);
    return rc;
}

static void fork_shares_pages(void) {
    dc_model *m = load("q8");
    if (!m) return;
    const int V = dc_model_config(m)->vocab_size;
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = 8, o.max_len = 64, o.page_tokens = 8;
    dc_engine *e = NULL;
    dc_err err = {0};
    CHECK(dc_engine_new(m, &o, &e, &err) == 0, "%s", err.msg);
    int prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = (i * 37 + 5) % V;
    int a = dc_seq_new(e, &err), sq[40];
    for (int i = 0; i < 40; i++) sq[i] = a;
    dc_batch b = {40, prompt, sq, NULL};
    CHECK(dc_engine_decode(e, &b, &err) == 0, "%s", err.msg);
    dc_kv_stats k0, k1, k2;
    dc_engine_kv_stats(e, &k0);
    int f[7];
    for (int i = 0; i < 7; i++) f[i] = dc_seq_fork(e, a, &err);
    dc_engine_kv_stats(e, &k1);
    CHECK(k1.pages_used == k0.pages_used && k1.positions == 8 * 40, "8 x 40 positions in %d pages (alone %d)",
          k1.pages_used, k0.pages_used);
    printf("    8 sequences sharing a 40-token prompt: %lld positions in %d pages of %d (%.1f KB, %.1f KB unshared)\n",
           (long long)k1.positions, k1.pages_used, k1.page_tokens, k1.pages_used * k1.bytes_per_page / 1e3,
           (double)k1.positions * k1.bytes_per_token / 1e3);
    /* the prompt fills 5 pages exactly: the forks' next tokens take a new page each, no copy */
    float *ref = malloc(sizeof(float) * V), *got = malloc(sizeof(float) * V);
    CHECK(decode1(e, a, 7, ref, V, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 7; i++) CHECK(decode1(e, f[i], 7, got, V, &err) == 0 && !memcmp(got, ref, sizeof(float) * V), "fork %d", i);
    dc_engine_kv_stats(e, &k2);
    CHECK(k2.pages_used == k0.pages_used + 8, "after one token each: %d pages", k2.pages_used);
    /* truncate a fork into the shared prefix and write there: copy on write, A untouched */
    CHECK(dc_seq_truncate(e, f[0], 20, &err) == 0, "%s", err.msg);
    CHECK(decode1(e, f[0], 300, NULL, V, &err) == 0, "%s", err.msg);
    CHECK(decode1(e, f[0], 301, got, V, &err) == 0, "%s", err.msg);
    int streamF[22];
    memcpy(streamF, prompt, sizeof(int) * 20), streamF[20] = 300, streamF[21] = 301;
    float *fal = solo(m, DC_ATTN_ABSORB, streamF, (int[]){20, 1, 1}, 3);
    CHECK(!memcmp(got, fal + (size_t)21 * V, sizeof(float) * V), "the truncated fork differs from its stream alone");
    free(fal);
    CHECK(decode1(e, a, 9, got, V, &err) == 0, "%s", err.msg);
    int streamA[42];
    memcpy(streamA, prompt, sizeof prompt), streamA[40] = 7, streamA[41] = 9;
    float *alone = solo(m, DC_ATTN_ABSORB, streamA, (int[]){40, 1, 1}, 3);
    CHECK(!memcmp(got, alone + (size_t)41 * V, sizeof(float) * V), "A changed by its fork's truncate + write");
    /* remove a sequence in the middle; the others go on unchanged */
    dc_seq_free(e, f[3]);
    CHECK(dc_seq_len(e, f[3]) == -1, "freed sequence still there");
    int toks[3] = {9, 9, 9}, seqs[3] = {f[2], f[4], f[5]};
    dc_batch b3 = {3, toks, seqs, NULL};
    CHECK(dc_engine_decode(e, &b3, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) CHECK(!memcmp(dc_engine_logits(e, i), alone + (size_t)41 * V, sizeof(float) * V), "seq %d", i);
    free(alone);
    free(ref), free(got);
    dc_engine_free(e);
    dc_model_free(m);
}

static void full_store(void) {
    dc_model *m = load("q8");
    if (!m) return;
    const int V = dc_model_config(m)->vocab_size;
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = 2, o.max_len = 64, o.page_tokens = 4, o.n_pages = 5; /* 20 positions in all */
    dc_engine *e = NULL;
    dc_err err = {0};
    CHECK(dc_engine_new(m, &o, &e, &err) == 0, "%s", err.msg);
    int a = dc_seq_new(e, &err), b = dc_seq_new(e, &err);
    CHECK(dc_seq_new(e, &err) == DC_EFULL && strstr(err.msg, "slots"), "a third sequence: %s", err.msg);
    int ids[16], sa[16];
    for (int i = 0; i < 16; i++) ids[i] = i + 3, sa[i] = a;
    dc_batch ba = {16, ids, sa, NULL};
    CHECK(dc_engine_decode(e, &ba, &err) == 0, "%s", err.msg);
    int sb[8];
    for (int i = 0; i < 8; i++) sb[i] = b;
    dc_batch bb = {8, ids, sb, NULL};
    CHECK(dc_engine_decode(e, &bb, &err) == DC_EFULL && strstr(err.msg, "full"), "over-full store: %s", err.msg);
    CHECK(dc_seq_len(e, b) == 0 && dc_seq_len(e, a) == 16, "a failed batch changed lengths: %d %d", dc_seq_len(e, a),
          dc_seq_len(e, b));
    /* the others go on: A's next token equals A alone */
    float *got = malloc(sizeof(float) * V);
    CHECK(decode1(e, a, 40, got, V, &err) == 0, "%s", err.msg);
    int stream[17];
    memcpy(stream, ids, sizeof(int) * 16), stream[16] = 40;
    float *alone = solo(m, DC_ATTN_ABSORB, stream, (int[]){16, 1}, 2);
    CHECK(!memcmp(got, alone + (size_t)16 * V, sizeof(float) * V), "A after the failed batch");
    /* bad batches: clear errors */
    int bad = V, s0 = a;
    dc_batch bt = {1, &bad, &s0, NULL};
    CHECK(dc_engine_decode(e, &bt, &err) == DC_EARG && strstr(err.msg, "vocabulary"), "%s", err.msg);
    int s9 = 9, t1 = 1;
    dc_batch bs = {1, &t1, &s9, NULL};
    CHECK(dc_engine_decode(e, &bs, &err) == DC_EARG && strstr(err.msg, "sequence 9"), "%s", err.msg);
    CHECK(dc_seq_truncate(e, a, 99, &err) == DC_EARG, "truncate past the end");
    int many[600], mseq[600];
    for (int i = 0; i < 600; i++) many[i] = 3, mseq[i] = a;
    dc_batch bm = {600, many, mseq, NULL};
    CHECK(dc_engine_decode(e, &bm, &err) == DC_EARG && strstr(err.msg, "batch of 512") && dc_seq_len(e, a) == 17,
          "a batch past max_batch: %s", err.msg);
    CHECK(dc_engine_decode_mtp(e, &bt, NULL, &err) == DC_EARG, "MTP without hidden states");
    free(got), free(alone);
    dc_engine_free(e);
    dc_model_free(m);
}

/* ---------------------------------------------------------------- batched generation */

/* prompts shorter than MLA_EXPAND_T (8, mla.c): alone, dc_generate feeds a
 * prompt in one forward, batched it goes in chunks of 5; a run of >= 8 would
 * take the expanded attention alone and the absorbed one batched, the same
 * math in another rounding order, which the 8-bit activations of quantised
 * weights can turn into a different sampled token (seen with P3 of 11 tokens,
 * q4_0 and the bf16 cache). Mixed batches of equal chunks: mixed_batches. */
static const int P1[] = {0, 17, 99, 254, 3, 77, 400}, P2[] = {5, 6, 7}, P3[] = {300, 2, 41, 41, 90, 11, 8};

static int on_tok(void *ctx, int t) {
    int *v = ctx;
    v[1 + v[0]++] = t;
    return 0;
}

static int solo_gen(dc_model *m, const int *p, int n, const dc_sampler_params *sp, int mtp, int max_new, int *out) {
    dc_session *s = NULL;
    dc_sampler *smp = NULL;
    dc_err e = {0};
    int rc = dc_session_new(m, n + max_new + 2, DC_ATTN_ABSORB, &s, &e);
    if (!rc) rc = dc_sampler_new(sp, dc_model_config(m)->vocab_size, &smp, &e);
    int buf[65] = {0};
    dc_gen_opts o = {.max_new = max_new, .eos = -1, .mtp = mtp, .cb = on_tok, .ctx = buf};
    if (!rc) rc = dc_generate(s, smp, p, n, &o, NULL, &e);
    memcpy(out, buf + 1, sizeof(int) * buf[0]);
    dc_sampler_free(smp);
    dc_session_free(s);
    return rc ? -1 : buf[0];
}

/* an oracle drafter: the token the sequence will choose (known from its solo
 * run) for even positions, a wrong one for odd, so both verify paths run */
static int (*g_want)[20];
static int oracle(void *ctx, int i, const float *l, int n_gen) {
    (void)ctx, (void)l;
    int t = n_gen < 20 ? g_want[i][n_gen] : 0;
    return n_gen % 3 == 2 ? (t + 1) % 512 : t;
}

static void batch_gen_case(const char *dt, int mtp, float temp) {
    dc_model *m = load(dt);
    if (!m) return;
    const int V = dc_model_config(m)->vocab_size, N = 6, MAXN = 20;
    const int *prompts[] = {P1, P2, P3, P1, P1, P2};
    const int np[] = {7, 3, 7, 7, 7, 3}, share[] = {-1, -1, -1, 0, 0, 1};
    dc_sampler *smp[6];
    int out[6][20], want[6][20], nw[6];
    dc_gen_seq q[6];
    dc_err err = {0};
    for (int i = 0; i < N; i++) {
        dc_sampler_params sp;
        dc_sampler_defaults(&sp);
        sp.temperature = temp, sp.seed = 100 + i;
        dc_sampler_new(&sp, V, &smp[i], &err);
        nw[i] = solo_gen(m, prompts[i], np[i], &sp, mtp, MAXN, want[i]);
        q[i] = (dc_gen_seq){.prompt = prompts[i], .n_prompt = np[i], .share_prompt_of = share[i], .smp = smp[i],
                            .max_new = MAXN - i, .out = out[i]};
    }
    dc_engine_opts o;
    dc_engine_defaults(&o);
    /* fewer slots than sequences (some wait), a batch smaller than every slot with a draft (some skip a step) */
    o.max_seqs = 4, o.max_len = 64, o.page_tokens = 4, o.max_batch = 6;
    dc_engine *e = NULL;
    CHECK(dc_engine_new(m, &o, &e, &err) == 0, "%s", err.msg);
    g_want = want;
    dc_gen_batch_opts go = {.eos = -1, .mtp = mtp, .prefill_chunk = 5, .draft = mtp ? oracle : NULL};
    dc_gen_stats st;
    int rc = dc_generate_batch(e, q, N, &go, &st, &err);
    CHECK(rc == 0, "%s", err.msg);
    int same = 1;
    for (int i = 0; i < N && !rc; i++) {
        CHECK(q[i].n_out == MAXN - i && q[i].finish == DC_FINISH_LENGTH, "seq %d: %d tokens, finish %d", i, q[i].n_out,
              q[i].finish);
        same &= nw[i] >= q[i].n_out && !memcmp(out[i], want[i], sizeof(int) * q[i].n_out);
    }
    CHECK(same, "%s mtp %d temp %.1f: batched tokens differ from dc_generate alone", dt, mtp, temp);
    dc_kv_stats ks;
    dc_engine_kv_stats(e, &ks);
    CHECK(ks.n_seqs == 0 && ks.pages_used == 0, "sequences left: %d, pages %d", ks.n_seqs, ks.pages_used);
    printf("    %-4s mtp %d temp %.1f: 6 sequences (3 share prompts) in 4 slots = alone; %d prompt tokens fed, "
           "%d generated, drafts %d accepted %d\n", dt, mtp, temp, st.n_prompt, st.n_gen, st.n_draft, st.n_accept);
    if (mtp) CHECK(st.n_accept > 0 && st.n_accept < st.n_draft, "MTP: %d of %d drafts accepted", st.n_accept, st.n_draft);
    for (int i = 0; i < N; i++) dc_sampler_free(smp[i]);
    dc_engine_free(e);
    dc_model_free(m);
}

static void generate_batch_equals_alone(void) {
    const char *dts[] = {"f32", "q8", "q4_0"};
    for (int d = 0; d < 3; d++)
        for (int mtp = 0; mtp < 2; mtp++) {
            batch_gen_case(dts[d], mtp, 0);
            batch_gen_case(dts[d], mtp, 1.0f);
        }
}

/* ---------------------------------------------------------------- threads per engine */

typedef struct thr_job {
    dc_model *m;
    int n_threads, ok;
    const float *want; /* (12, V) the stream alone */
} thr_job;

static void *thr_run(void *arg) {
    thr_job *j = arg;
    const int V = dc_model_config(j->m)->vocab_size;
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = 2, o.max_len = 32, o.n_threads = j->n_threads;
    dc_engine *e = NULL;
    dc_err err;
    j->ok = dc_engine_new(j->m, &o, &e, &err) == 0;
    int s = j->ok ? dc_seq_new(e, &err) : -1;
    for (int rep = 0; rep < 20 && j->ok; rep++) {
        dc_seq_truncate(e, s, 0, &err);
        for (int i = 0; i < 12 && j->ok; i++) {
            j->ok = decode1(e, s, SA[i], NULL, V, &err) == 0 &&
                    !memcmp(dc_engine_logits(e, 0), j->want + (size_t)i * V, sizeof(float) * V);
        }
    }
    dc_engine_free(e);
    return NULL;
}

/* two engines with their own thread counts share one model from two threads
 * at once; each gives what one sequence gets alone, and the calling
 * threads' OpenMP settings are left as they were */
static void engines_on_threads(void) {
    dc_model *m = load("q8");
    if (!m) return;
    int ones[12];
    for (int i = 0; i < 12; i++) ones[i] = 1;
    float *want = solo(m, DC_ATTN_ABSORB, SA, ones, 12);
    int before = omp_get_max_threads();
    thr_job a = {m, 1, 0, want}, b = {m, 2, 0, want};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, thr_run, &a);
    pthread_create(&tb, NULL, thr_run, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.ok && b.ok, "engines on 1 and 2 threads at once: %d %d", a.ok, b.ok);
    thr_run(&(thr_job){m, 1, 0, want});
    CHECK(omp_get_max_threads() == before, "the caller's thread count changed: %d -> %d", before, omp_get_max_threads());
    free(want);
    dc_model_free(m);
}

/* ---------------------------------------------------------------- one region a step */

/* the main model's and the MTP module's logits of SA[0..n) decoded one token
 * at a time on an engine of nthr threads: out (2n, V), main then MTP a step */
static int steps_of(dc_model *m, int nthr, int n, float *out) {
    const int V = dc_model_config(m)->vocab_size, C = dc_model_config(m)->hidden_size;
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = 1, o.max_len = 32, o.n_threads = nthr;
    dc_engine *e = NULL;
    dc_err err = {0};
    int rc = dc_engine_new(m, &o, &e, &err), s = rc ? -1 : dc_seq_new(e, &err);
    float h[C];
    for (int i = 0; !rc && i < n; i++) {
        rc = decode1(e, s, SA[i], out + (size_t)2 * i * V, V, &err);
        if (rc) break;
        memcpy(h, dc_engine_hidden(e, 0), sizeof h);
        dc_batch b = {1, &SA[i + 1], &s, NULL};
        rc = dc_engine_decode_mtp(e, &b, h, &err);
        if (!rc) memcpy(out + (size_t)(2 * i + 1) * V, dc_engine_logits(e, 0), sizeof(float) * V);
    }
    CHECK(rc == 0, "steps on %d threads: %s", nthr, err.msg);
    dc_engine_free(e);
    return rc;
}

/* A decode step of one token runs its blocks in one parallel region, the
 * sublayers' phases meeting at a spin barrier (model.c blocks_one); the bits
 * of the region-per-product way (model_one_off) on 1 and 2 threads, main
 * model and MTP block, f32 / q8 / q4_0 weights, on tiny (q_lora, a dense
 * first layer, one shared expert) and a V2-Lite-like tiny (no q_lora, two
 * shared experts, one FFN of 2 Im rows). model_one_runs shows the one-region
 * way ran (a main step and an MTP step each). */
static void one_region_steps(void) {
    char v2[600];
    CHECK(tiny_dir() != NULL, "init tiny");
    if (!g_dir[0]) return;
    snprintf(v2, sizeof v2, "%s/tinyv2", harness_tmpdir());
    int rc = harness_sh("sed -e 's/\"q_lora_rank\":[[:space:]]*32/\"q_lora_rank\": 0/' "
                        "-e 's/\"n_shared_experts\":[[:space:]]*1/\"n_shared_experts\": 2/' %s/config.json > %s.json && "
                        "grep -q '\"q_lora_rank\": 0' %s.json && grep -q '\"n_shared_experts\": 2' %s.json && " BIN
                        " init --config %s.json --seed 9 --out %s > /dev/null",
                        g_dir, v2, v2, v2, v2, v2);
    CHECK(rc == 0, "init a V2-Lite-like tiny in %s", v2);
    const char *dirs[2] = {g_dir, v2}, *dts[3] = {"f32", "q8", "q4_0"};
    const int n = 12;
    for (int d = 0; d < (rc ? 1 : 2); d++)
        for (int k = 0; k < 3; k++) {
            dc_model *m = load_in(dirs[d], dts[k]);
            if (!m) continue;
            const size_t V = (size_t)dc_model_config(m)->vocab_size;
            float *want = malloc(sizeof(float) * 2 * n * V), *got = malloc(sizeof(float) * 2 * n * V);
            for (int thr = 1; thr <= 2 && want && got; thr++) {
                model_one_off = 1;
                long r0 = model_one_runs;
                int bad = steps_of(m, thr, n, want);
                long r1 = model_one_runs;
                model_one_off = 0;
                bad |= steps_of(m, thr, n, got);
                long r2 = model_one_runs;
                if (bad) break;
                int first = -1;
                for (size_t i = 0; i < 2 * n * V && first < 0; i++)
                    if (memcmp(&want[i], &got[i], sizeof(float))) first = (int)i;
                printf("    %s %s, %d thread(s): %ld steps in one region, logits %s\n", d ? "tinyv2" : "tiny", dts[k], thr,
                       r2 - r1, first < 0 ? "bit-identical" : "DIFFER");
                CHECK(r1 == r0 && r2 - r1 == 2 * n, "one-region steps: %ld off, %ld on (want 0, %d)", r1 - r0, r2 - r1, 2 * n);
                CHECK(first < 0, "%s %s, %d threads: logit %d (step %d, %s) %.9g vs %.9g", dirs[d], dts[k], thr,
                      first, first / (int)V / 2, first / (int)V % 2 ? "MTP" : "main", first < 0 ? 0 : want[first],
                      first < 0 ? 0 : got[first]);
            }
            free(want), free(got);
            dc_model_free(m);
        }
}

/* ---------------------------------------------------------------- stop strings */

static void push_all(dc_stop *s, const char *const *pieces, int n, char *shown, int *stopped) {
    shown[0] = 0;
    *stopped = 0;
    for (int i = 0; i < n && !*stopped; i++) {
        const char *o;
        size_t ol;
        *stopped = dc_stop_push(s, pieces[i], strlen(pieces[i]), &o, &ol);
        strncat(shown, o, ol);
    }
    if (!*stopped) {
        const char *o;
        size_t ol;
        dc_stop_flush(s, &o, &ol);
        strncat(shown, o, ol);
    }
}

static void stop_strings(void) {
    const char *stops[] = {"</answer>", "\n\nUser:", "xyz"};
    dc_stop *s = NULL;
    dc_err e = {0};
    CHECK(dc_stop_new(stops, 3, &s, &e) == 0, "%s", e.msg);
    char shown[256];
    int stopped;
    const char *a[] = {"The answer is <ans", "wer>42</ans", "wer> and more"};
    push_all(s, a, 3, shown, &stopped);
    CHECK(stopped && !strcmp(shown, "The answer is <answer>42"), "across pieces: '%s'", shown);
    dc_stop_reset(s);
    const char *b[] = {"a < b\n", "\nUse", "r is fine"};
    push_all(s, b, 3, shown, &stopped);
    CHECK(!stopped && !strcmp(shown, "a < b\n\nUser is fine"), "no stop, everything released: '%s'", shown);
    dc_stop_reset(s);
    /* held back only while it could still be a stop string */
    const char *o;
    size_t ol;
    dc_stop_push(s, "hello </ans", 11, &o, &ol);
    CHECK(ol == 6 && !memcmp(o, "hello ", 6), "held back: %zu '%.*s'", ol, (int)ol, o);
    dc_stop_push(s, "q", 1, &o, &ol);
    CHECK(ol == 6 && !memcmp(o, "</ansq", 6), "released when it cannot match: '%.*s'", (int)ol, o);
    dc_stop_reset(s);
    const char *c[] = {"wxy", "z tail xyz"};
    push_all(s, c, 2, shown, &stopped);
    CHECK(stopped && !strcmp(shown, "w"), "earliest stop wins: '%s'", shown);
    dc_stop_free(s);
    const char *empty[] = {""};
    CHECK(dc_stop_new(empty, 1, &s, &e) == DC_EARG, "an empty stop string is refused");
}

int main(void) {
    RUN(mixed_batches);
    RUN(head_groups);
    RUN(kv_bf16_vs_f32);
    RUN(fork_shares_pages);
    RUN(full_store);
    RUN(generate_batch_equals_alone);
    RUN(engines_on_threads);
    RUN(one_region_steps);
    RUN(stop_strings);
    return harness_done();
}
