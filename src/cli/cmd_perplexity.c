/*
 * cmd_perplexity.c — `deepc perplexity -m MODEL -f TEXT`: how well a model
 * predicts real text, so that quantisation loss can be measured (the figure
 * llama.cpp's llama-perplexity gives), through the public session API
 * (dc_session_new / dc_forward) only.
 *
 * The text is tokenised whole (T tokens) and read in sliding windows of
 * --ctx N tokens that advance by --stride S (Hugging Face's recipe): window
 * k covers tokens [kS, kS + N) and scores the targets no earlier window
 * scored, so every target after the first window is predicted from at least
 * N - S tokens of context, and each of the T - 1 targets (T with --bos, the
 * BOS then predicting the first token) is scored exactly once. With --bos
 * each window starts with the BOS token (as llama-perplexity does) and holds
 * N - 1 text tokens.
 *
 *   nll_t = -log softmax(logits at t-1)[tok_t]          (in double)
 *   PPL   = exp(mean nll),  its standard error  PPL * sd(nll) / sqrt(n)
 * (the delta method on the mean; neighbouring tokens are correlated, so the
 * error is a guide, as llama-perplexity's is).
 *
 * A window is fed BATCH tokens at a time, so only (BATCH, vocab) logits are
 * ever held (a 129k vocabulary at N = 4096 would be 2 GB at once).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "cli/infer_cli.h"

static const char *HELP =
    "usage: deepc perplexity -m MODEL -f TEXT [--ctx N] [--stride S] [--bos] [--max-tokens K]\n"
    "                        [--dtype T] [--attn naive|absorb] [--tokenizer PATH] [-t N]\n"
    "\n"
    "Perplexity of MODEL (a checkpoint directory or .gguf) on the text in TEXT, in sliding\n"
    "windows; prints PPL, its standard error and the mean negative log-likelihood.\n"
    "\n"
    "  -m, --model MODEL      the model\n"
    "  -f, --file TEXT        the text (UTF-8), tokenised with the model's tokenizer\n"
    "  -c, --ctx N            tokens per window (default 512, at most the model's context)\n"
    "      --stride S         tokens a window advances (default N/2): each scored token has\n"
    "                         at least N - S tokens of context after the first window\n"
    "      --bos              start every window with the BOS token\n"
    "      --max-tokens K     read only the first K tokens of the text\n"
    "      --dtype T          weights at run time: f32 (default), bf16, f16, q8, q4_0, q4_1, q5_0,\n"
    "                         q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, fp8\n"
    "      --attn MODE        absorb (default) or naive\n"
    "      --tokenizer PATH   a tokenizer.json or directory other than the model's\n"
    "  -t, --threads N        threads (default: all cores)\n";

enum { BATCH = 64 };

typedef struct opts {
    const char *model, *file, *dtype, *tokp;
    long ctx, stride, max_tokens, threads;
    int bos, attn;
} opts;

static int parse(int argc, char **argv, opts *o) {
    static const struct option LONG[] = {
        {"model", 1, 0, 'm'},  {"file", 1, 0, 'f'},      {"ctx", 1, 0, 'c'},       {"stride", 1, 0, 'S'},
        {"bos", 0, 0, 'B'},    {"max-tokens", 1, 0, 'K'}, {"dtype", 1, 0, 'd'},    {"attn", 1, 0, 'a'},
        {"tokenizer", 1, 0, 'z'}, {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->ctx = 512, o->attn = DC_ATTN_ABSORB;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:f:c:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case 'f': o->file = optarg; break;
        case 'B': o->bos = 1; break;
        case 'd': o->dtype = optarg; break;
        case 'z': o->tokp = optarg; break;
        case 'c':
            if (cli_parse_int(optarg, 2, 1 << 20, &o->ctx)) return cli_usage_error("perplexity", "--ctx: bad size '%s'", optarg);
            break;
        case 'S':
            if (cli_parse_int(optarg, 1, 1 << 20, &o->stride))
                return cli_usage_error("perplexity", "--stride: bad size '%s'", optarg);
            break;
        case 'K':
            if (cli_parse_int(optarg, 2, 1L << 40, &o->max_tokens))
                return cli_usage_error("perplexity", "--max-tokens: bad count '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &o->threads))
                return cli_usage_error("perplexity", "-t: bad thread count '%s'", optarg);
            break;
        case 'a':
            if (!strcmp(optarg, "naive")) o->attn = DC_ATTN_NAIVE;
            else if (!strcmp(optarg, "absorb")) o->attn = DC_ATTN_ABSORB;
            else return cli_usage_error("perplexity", "--attn must be naive or absorb, not '%s'", optarg);
            break;
        case 'h': fputs(HELP, stdout); return 1;
        default: return cli_usage_error("perplexity", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("perplexity", "unexpected argument '%s'", argv[optind]);
    if (!o->model || !o->file) return cli_usage_error("perplexity", "-m MODEL and -f TEXT are required");
    if (!o->stride) o->stride = o->ctx / 2 > 0 ? o->ctx / 2 : 1;
    if (o->stride > o->ctx - o->bos)
        return cli_usage_error("perplexity", "--stride %ld is more than the %ld text tokens of a window", o->stride,
                               o->ctx - o->bos);
    return 0;
}

/* the sums of the scored tokens' negative log-likelihoods */
typedef struct acc {
    double sum, sum2;
    int64_t n;
} acc;

/* nll: -log softmax(row)[target], in double */
static double nll(const float *row, int V, int target) {
    float mx = row[0];
    for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp((double)row[i] - mx);
    return log(z) + mx - row[target];
}

/* window: feed win (n tokens) to a fresh cache, scoring the targets whose
 * window positions lie in [lo, n) (position w's logits predict win[w+1]) */
static int window(dc_session *s, const int *win, int n, int lo, float *logits, int V, acc *a, dc_err *err) {
    dc_session_reset(s);
    for (int at = 0; at < n; at += BATCH) {
        int k = n - at < BATCH ? n - at : BATCH;
        int scored = at + k >= lo; /* a batch of context only needs no head */
        int rc = dc_forward(s, win + at, k, scored ? logits : NULL, 0, err);
        if (rc) return rc;
        if (!scored) continue;
        for (int r = 0; r < k; r++) {
            int w = at + r; /* predicts window token w + 1 */
            if (w + 1 < lo || w + 1 >= n) continue;
            double x = nll(logits + (size_t)r * V, V, win[w + 1]);
            if (!isfinite(x)) return err_set(err, DC_EFORMAT, "a non-finite log-likelihood at window position %d", w + 1);
            a->sum += x, a->sum2 += x * x, a->n++;
        }
    }
    return DC_OK;
}

/* run: every window over ids (T), into a */
static int run(const opts *o, dc_session *s, const int *ids, int64_t T, int bos, int V, acc *a, dc_err *err) {
    const int N = (int)o->ctx, text = N - (bos >= 0); /* text tokens per window */
    float *logits = malloc(sizeof(float) * BATCH * (size_t)V);
    int *win = malloc(sizeof(int) * (size_t)N);
    int rc = logits && win ? DC_OK : err_set(err, DC_ENOMEM, "out of memory for a window of %d tokens", N);
    progress pb;
    progress_start(&pb, "perplexity", T);
    int64_t done = 0; /* text targets [0, done) are scored (0 has no predecessor without BOS) */
    if (bos < 0) done = 1;
    for (int64_t b = 0; !rc && done < T; b += o->stride) {
        int64_t end = b + text < T ? b + text : T;
        int n = 0;
        if (bos >= 0) win[n++] = bos;
        for (int64_t t = b; t < end; t++) win[n++] = ids[t];
        /* text index t sits at window position t - b + (bos >= 0) */
        int lo = (int)(done - b + (bos >= 0));
        rc = window(s, win, n, lo, logits, V, a, err);
        done = end;
        char extra[96];
        snprintf(extra, sizeof extra, "PPL %.4f", a->n ? exp(a->sum / a->n) : 0.0);
        progress_update(&pb, done, "tok", extra);
        if (end == T) break;
    }
    progress_end(&pb);
    free(logits), free(win);
    return rc;
}

static int text_ids(const opts *o, const dc_tokenizer *tok, int **ids, int64_t *T, dc_err *err) {
    char *text = NULL;
    size_t len = 0, n = 0;
    int rc = file_read_all(o->file, &text, &len, err);
    if (!rc) rc = dc_tokenizer_encode(tok, text, len, DC_TOK_PLAIN, ids, &n, err);
    free(text);
    if (!rc && o->max_tokens && (int64_t)n > o->max_tokens) n = (size_t)o->max_tokens;
    if (!rc && n < 2) rc = err_set(err, DC_EARG, "%s: %zu tokens; perplexity needs at least 2", o->file, n);
    *T = (int64_t)n;
    return rc;
}

int cmd_perplexity(int argc, char **argv) {
    opts o;
    int prc = parse(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : prc;
    cli_threads(o.threads);
    dc_err err = {0};
    dc_model *m = NULL;
    dc_tokenizer *tok = NULL;
    dc_session *s = NULL;
    int *ids = NULL, rc;
    int64_t T = 0;
    acc a = {0};
    double load_s, t0;
    if ((rc = infer_load(o.model, o.dtype, &m, &load_s, &err))) goto fail;
    if ((rc = infer_tokenizer(o.tokp, o.model, &tok, &err))) goto fail;
    if (!tok) {
        rc = err_set(&err, DC_ENOTFOUND, "%s has no tokenizer to read the text with (give --tokenizer PATH)", o.model);
        goto fail;
    }
    const dc_config *c = dc_model_config(m);
    if (o.ctx > c->max_position_embeddings) {
        rc = err_set(&err, DC_EARG, "--ctx %ld is more than the model's context of %d", o.ctx, c->max_position_embeddings);
        goto fail;
    }
    int bos = o.bos ? dc_tokenizer_bos(tok) : -1;
    if (o.bos && bos < 0) {
        rc = err_set(&err, DC_EARG, "--bos: the tokenizer has no BOS token");
        goto fail;
    }
    if ((rc = text_ids(&o, tok, &ids, &T, &err))) goto fail;
    if (dc_tokenizer_n_vocab(tok) > c->vocab_size) {
        rc = err_set(&err, DC_ECONFIG, "the tokenizer has %d ids, the model's vocabulary %d",
                     dc_tokenizer_n_vocab(tok), c->vocab_size);
        goto fail;
    }
    if ((rc = dc_session_new(m, (int)o.ctx, o.attn, &s, &err)) || (rc = dc_session_reserve(s, BATCH, &err))) goto fail;
    t0 = progress_now();
    if ((rc = run(&o, s, ids, T, bos, c->vocab_size, &a, &err))) goto fail;
    double mean = a.sum / a.n, var = a.n > 1 ? (a.sum2 - a.n * mean * mean) / (a.n - 1) : 0;
    double ppl = exp(mean), se = ppl * sqrt(var > 0 ? var : 0) / sqrt((double)a.n);
    printf("perplexity %.4f +/- %.4f over %lld tokens (mean NLL %.5f nats; windows of %ld, stride %ld%s)\n", ppl, se,
           (long long)a.n, mean, o.ctx, o.stride, bos >= 0 ? ", BOS first" : "");
    fprintf(stderr, "deepc perplexity: %s weights, loaded in %.2f s; %lld tokens of %s in %.2f s (%.1f tokens/s, %d threads)\n",
            dc_model_dtype(m), load_s, (long long)T, o.file, progress_now() - t0,
            (double)a.n / (progress_now() - t0 + 1e-9), cli_get_threads());
fail:
    if (rc) cli_error("perplexity", &err);
    free(ids);
    dc_session_free(s);
    dc_tokenizer_free(tok);
    dc_model_free(m);
    return rc ? 1 : 0;
}
