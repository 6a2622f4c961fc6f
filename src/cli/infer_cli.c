/* infer_cli.c — see infer_cli.h. */
#include "cli/cli.h"
#include "base/progress.h"
#include "cli/infer_cli.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "base/file.h"
#include "dist/dist.h"
#include "model/model.h"

/* a training run's directory (no config.json, a `latest` file naming a
 * step-NNNNNNN directory beside it) stands for its newest checkpoint */
static const char *resolve_run(const char *dir, char *buf, size_t cap) {
    char p[4096], *txt = NULL;
    size_t n;
    if (path_join(p, sizeof p, dir, "config.json", NULL) || file_exists(p)) return dir;
    if (path_join(p, sizeof p, dir, "latest", NULL) || file_read_all(p, &txt, &n, NULL)) return dir;
    while (n && (txt[n - 1] == '\n' || txt[n - 1] == ' ')) txt[--n] = 0;
    const char *out = dir;
    if (!strncmp(txt, "step-", 5) && !strchr(txt, '/') && !path_join(buf, cap, dir, txt, NULL) &&
        !path_join(p, sizeof p, buf, "config.json", NULL) && file_exists(p))
        out = buf;
    free(txt);
    return out;
}

int infer_load(const char *dir, const char *dtype, dc_model **m, double *secs, dc_err *err) {
    return infer_load_dist(dir, dtype, NULL, m, secs, err);
}

int infer_load_dist(const char *dir, const char *dtype, const dist *d, dc_model **m, double *secs, dc_err *err) {
    double t0 = progress_now();
    char run[4096];
    dir = resolve_run(dir, run, sizeof run);
    int rc = d && d->ep_size > 1 ? model_load_ep(dir, d, m, err) : dc_model_load(dir, m, err);
    if (!rc && dtype) rc = dc_model_set_dtype(*m, dtype, err);
    if (rc) {
        dc_model_free(*m);
        *m = NULL;
    }
    if (secs) *secs = progress_now() - t0;
    return rc;
}

int infer_tokenizer(const char *path, const char *dir, dc_tokenizer **t, dc_err *err) {
    *t = NULL;
    if (path) return dc_tokenizer_load(path, t, err);
    size_t dl = strlen(dir);
    if (dl > 5 && strcmp(dir + dl - 5, ".gguf") == 0) { /* a GGUF carries its tokenizer (when it has one) */
        int rc = dc_tokenizer_load(dir, t, err);
        /* no tokenizer in the file: run on ids, as for a directory without one;
         * a broken one is an error that says what is wrong */
        return rc == DC_ENOTFOUND ? DC_OK : rc;
    }
    char p[4096], run[4096];
    dir = resolve_run(dir, run, sizeof run);
    if (path_join(p, sizeof p, dir, "tokenizer.json", NULL) || !file_exists(p)) return DC_OK;
    return dc_tokenizer_load(dir, t, err);
}

int infer_encode_prompt(const dc_tokenizer *tok, const char *text, int raw, int r1, int **ids, int *n, dc_err *err) {
    char *rendered = NULL;
    int rc, flags = DC_TOK_SPECIAL;
    if (raw) flags |= DC_TOK_BOS;
    else {
        dc_chat_msg msg = {.role = "user", .content = text};
        if ((rc = dc_chat_render(r1 ? DC_CHAT_R1 : DC_CHAT_V3, &msg, 1, 1, &rendered, err))) return rc;
    }
    const char *src = rendered ? rendered : text;
    size_t nn = 0;
    rc = dc_tokenizer_encode(tok, src, strlen(src), flags, ids, &nn, err);
    free(rendered);
    *n = (int)nn;
    if (!rc && !nn) rc = err_set(err, DC_EARG, "the prompt has no tokens");
    return rc;
}

/* ---------------------------------------------------------------- streaming */

int stream_init(streamer *s, const dc_tokenizer *tok, FILE *out, const char *const *stops, int nstops, dc_err *err) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->out = out;
    int rc = dc_stop_new(stops, nstops, &s->stop, err);
    if (!rc && tok) rc = dc_detok_new(tok, 0, &s->dt, err);
    return rc;
}

/* print b[0, n) in the current style */
static void emit(streamer *s, const char *b, size_t n) {
    if (!n || s->style == STREAM_HIDE) return;
    if (s->style == STREAM_DIM && s->color) fputs("\033[2m", s->out);
    fwrite(b, 1, n, s->out);
    if (s->style == STREAM_DIM && s->color) fputs("\033[0m", s->out);
    errno = 0;
    fflush(s->out);
    if (ferror(s->out)) { /* the reader is gone or the disk is full: stop generating */
        if (s->out == stdout) cli_note_write_error(errno);
        s->stopped = 1;
    }
}

int stream_token(streamer *s, int id) {
    if (s->stopped) return 1;
    char num[16];
    const char *b = num;
    size_t n;
    if (!s->tok) n = (size_t)snprintf(num, sizeof num, "%s%d", s->any ? " " : "", id);
    else if (dc_detok_push(s->dt, id, &b, &n, NULL)) return 0;
    s->any = 1;
    const char *out;
    size_t out_len;
    s->stopped = dc_stop_push(s->stop, b, n, &out, &out_len);
    emit(s, out, out_len);
    return s->stopped;
}

/* release what the stop strings held back */
static void stream_release(streamer *s) {
    const char *out;
    size_t out_len;
    dc_stop_flush(s->stop, &out, &out_len);
    emit(s, out, out_len);
}

void stream_style(streamer *s, int style) {
    if (!s->stopped) stream_release(s);
    s->style = style;
}

void stream_finish(streamer *s) {
    if (s->stopped) return;
    if (s->dt) {
        const char *b, *out;
        size_t n, out_len;
        dc_detok_flush(s->dt, &b, &n);
        s->stopped = dc_stop_push(s->stop, b, n, &out, &out_len);
        emit(s, out, out_len);
    }
    stream_release(s);
}

void stream_clear(streamer *s) {
    dc_stop_reset(s->stop);
    s->stopped = s->any = 0;
}

void stream_free(streamer *s) {
    dc_detok_free(s->dt);
    dc_stop_free(s->stop);
    memset(s, 0, sizeof *s);
}

int infer_sampling_opt(const char *cmd, int ch, const char *arg, dc_sampler_params *sp) {
    long v;
    switch (ch) {
    case 'T':
        if (cli_parse_float(arg, 0, 100, &sp->temperature)) return cli_usage_error(cmd, "--temp: bad value '%s'", arg);
        return 1;
    case 'k':
        if (cli_parse_int(arg, 0, 1 << 30, &v)) return cli_usage_error(cmd, "--top-k: bad value '%s'", arg);
        sp->top_k = (int)v;
        return 1;
    case 'P':
        if (cli_parse_float(arg, 1e-6f, 1, &sp->top_p)) return cli_usage_error(cmd, "--top-p: bad value '%s' (0 < P <= 1)", arg);
        return 1;
    case 'M':
        if (cli_parse_float(arg, 0, 1, &sp->min_p)) return cli_usage_error(cmd, "--min-p: bad value '%s' (0..1)", arg);
        return 1;
    case 'R':
        if (cli_parse_float(arg, 1e-3f, 100, &sp->repeat_penalty))
            return cli_usage_error(cmd, "--repeat-penalty: bad value '%s'", arg);
        return 1;
    case CLI_OPT_PRESENCE:
        if (cli_parse_float(arg, -2, 2, &sp->presence_penalty))
            return cli_usage_error(cmd, "--presence-penalty: bad value '%s' (-2..2)", arg);
        return 1;
    case CLI_OPT_FREQUENCY:
        if (cli_parse_float(arg, -2, 2, &sp->frequency_penalty))
            return cli_usage_error(cmd, "--frequency-penalty: bad value '%s' (-2..2)", arg);
        return 1;
    case 's':
        if (cli_parse_int(arg, 0, 0x7fffffffffffffffL, &v)) return cli_usage_error(cmd, "--seed: bad number '%s'", arg);
        sp->seed = (uint64_t)v;
        return 1;
    default: return 0;
    }
}

uint64_t infer_random_seed(void) {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) /* no entropy yet: still differ per process */
        s = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32 ^ (uint64_t)clock();
    return s & 0x7fffffffffffffffull; /* what --seed accepts, so the printed seed can be given back */
}
