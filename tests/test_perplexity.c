/*
 * test_perplexity.c — `deepc perplexity` (src/cli/cmd_perplexity.c) against
 * numbers computed here independently with the public API:
 *   - a model whose head is all zeros predicts uniformly: PPL is exactly the
 *     vocabulary size, with no error, over T - 1 tokens (T with --bos);
 *   - sliding windows: every target t is scored once, from the tokens of the
 *     first window that reaches it (HF's recipe), which is recomputed here
 *     target by target with a fresh cache holding exactly that context.
 */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/file.h"
#include "harness.h"
#include "io/safetensors.h"

#define BIN DC_BUILD "/deepc"

static char dir[700], zdir[700], text[700];

static int setup(void) {
    const char *d = harness_tmpdir();
    snprintf(dir, sizeof dir, "%s/pm", d);
    snprintf(zdir, sizeof zdir, "%s/pz", d);
    snprintf(text, sizeof text, "%s/t.txt", d);
    if (harness_sh("for i in $(seq 120); do echo \"the owl and the pussycat went to sea $i\"; done > %s/c.txt && "
                   "head -c 600 %s/c.txt > %s && " BIN
                   " tokenizer-train --data %s/c.txt --vocab-size 320 --out %s/tk.json > /dev/null 2>&1 && " BIN
                   " init --preset tiny --seed 3 --tokenizer %s/tk.json --out %s > /dev/null && cp -r %s %s",
                   d, d, text, d, d, d, dir, dir, zdir))
        return -1;
    /* zdir: lm_head all zeros */
    char f[800];
    snprintf(f, sizeof f, "%s/model.safetensors", zdir);
    st_set s;
    memset(&s, 0, sizeof s);
    dc_err e;
    if (st_open_file(&s, f, &e)) return -1;
    const st_tensor *t = st_find(&s, "lm_head.weight");
    long off = t ? (long)(t->data - s.files[0].data) : -1;
    size_t nb = t ? t->nbytes : 0;
    st_close(&s);
    void *z = calloc(1, nb);
    int fd = open(f, O_WRONLY);
    int ok = off > 0 && fd >= 0 && pwrite(fd, z, nb, off) == (ssize_t)nb;
    if (fd >= 0) close(fd);
    free(z);
    return ok ? 0 : -1;
}

/* run perplexity, parse "perplexity P +/- E over N tokens (mean NLL M" */
static int ppl(const char *model, const char *args, double *p, double *err, long *n, double *mean) {
    char log[800], *o = NULL;
    size_t len;
    snprintf(log, sizeof log, "%s/ppl.txt", harness_tmpdir());
    int rc = harness_sh(BIN " perplexity -m %s -f %s %s > %s 2> /dev/null", model, text, args, log);
    if (rc || file_read_all(log, &o, &len, NULL)) return printf("    perplexity %s: exit %d\n", args, rc), -1;
    int k = sscanf(o, "perplexity %lf +/- %lf over %ld tokens (mean NLL %lf", p, err, n, mean);
    free(o);
    return k == 4 ? 0 : -1;
}

static int *tokens(const char *model, int *T) {
    dc_tokenizer *tk = NULL;
    dc_err e;
    char *txt = NULL;
    size_t len, n = 0;
    int *ids = NULL;
    if (!dc_tokenizer_load(model, &tk, &e) && !file_read_all(text, &txt, &len, &e))
        dc_tokenizer_encode(tk, txt, len, DC_TOK_PLAIN, &ids, &n, &e);
    free(txt);
    dc_tokenizer_free(tk);
    *T = (int)n;
    return ids;
}

static void uniform(void) {
    if (setup()) { CHECK(0, "setup"); return; }
    int T;
    int *ids = tokens(zdir, &T);
    free(ids);
    double p, e, m;
    long n;
    CHECK(ppl(zdir, "--ctx 48", &p, &e, &n, &m) == 0, "run");
    CHECK(fabs(p - 512) < 1e-3 && e < 1e-3 && n == T - 1 && fabs(m - log(512)) < 1e-5,
          "zero head: PPL %.4f +/- %.4f over %ld tokens (want 512 +/- 0 over %d)", p, e, n, T - 1);
    CHECK(ppl(zdir, "--ctx 48 --stride 47 --bos", &p, &e, &n, &m) == 0 && n == T && fabs(p - 512) < 1e-3,
          "--bos: %ld tokens, PPL %.4f (want %d, 512)", n, p, T);
}

/* -log softmax(row)[y] */
static double nll_of(const float *row, int V, int y) {
    double mx = row[0], z = 0;
    for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    for (int i = 0; i < V; i++) z += exp(row[i] - mx);
    return log(z) + mx - row[y];
}

static void sliding_windows(void) {
    const int N = 32, S = 12;
    int T;
    int *ids = tokens(dir, &T);
    CHECK(ids && T > 3 * N, "%d tokens: the text must span several windows", T);
    if (!ids) return;
    dc_model *m = NULL;
    dc_session *s = NULL;
    dc_err e = {0};
    CHECK(dc_model_load(dir, &m, &e) == 0 && dc_session_new(m, N, DC_ATTN_ABSORB, &s, &e) == 0, "%s", e.msg);
    int V = m ? dc_model_config(m)->vocab_size : 0;
    float *lg = malloc(sizeof(float) * (size_t)N * V);
    double sum = 0;
    int cnt = 0;
    for (int t = 1; s && t < T; t++) {
        int k = t < N ? 0 : (t - N + 1 + S - 1) / S; /* the first window [kS, kS + N) that holds t */
        int b = k * S;
        dc_session_reset(s);
        if (dc_forward(s, ids + b, t - b, lg, 1, &e)) { CHECK(0, "%s", e.msg); break; }
        sum += nll_of(lg, V, ids[t]), cnt++;
    }
    double p, err, mean;
    long n;
    char args[64];
    snprintf(args, sizeof args, "--ctx %d --stride %d", N, S);
    CHECK(ppl(dir, args, &p, &err, &n, &mean) == 0, "run");
    printf("    %d windows of %d, stride %d: mean NLL %.5f, recomputed per target %.5f; PPL %.3f +/- %.3f\n",
           (T - N + S - 1) / S + 1, N, S, mean, sum / cnt, p, err);
    CHECK(n == cnt && fabs(mean - sum / cnt) < 2e-5, "mean NLL %.6f over %ld vs %.6f over %d", mean, n, sum / cnt, cnt);
    CHECK(err > 0 && err < p, "the error %.4f", err);
    free(lg);
    free(ids);
    dc_session_free(s);
    dc_model_free(m);
}

static void errors(void) {
    char log[800], *o = NULL;
    size_t n;
    snprintf(log, sizeof log, "%s/err.txt", harness_tmpdir());
    const struct { const char *args; int rc; const char *msg; } C[] = {
        {"--ctx 4096", 1, "context of 1024"},
        {"--ctx 16 --stride 17", 2, "--stride"},
        {"--ctx 16 --tokenizer /nonexistent.json", 1, "nonexistent"},
    };
    for (size_t i = 0; i < sizeof C / sizeof *C; i++) {
        int rc = harness_sh(BIN " perplexity -m %s -f %s %s > %s 2>&1", dir, text, C[i].args, log);
        file_read_all(log, &o, &n, NULL);
        CHECK(rc == C[i].rc && o && strstr(o, C[i].msg), "%s: exit %d, %s", C[i].args, rc, o);
        free(o), o = NULL;
    }
    int rc = harness_sh(BIN " init --preset tiny --out %s/notok > /dev/null && " BIN " perplexity -m %s/notok -f %s > %s 2>&1",
                        harness_tmpdir(), harness_tmpdir(), text, log);
    file_read_all(log, &o, &n, NULL);
    CHECK(rc == 1 && o && strstr(o, "no tokenizer"), "no tokenizer: exit %d, %s", rc, o);
    free(o);
}

int main(void) {
    RUN(uniform);
    RUN(sliding_windows);
    RUN(errors);
    return harness_done();
}
