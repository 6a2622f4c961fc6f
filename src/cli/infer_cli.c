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

int infer_load(const char *dir, const char *dtype, dc_model **m, double *secs, dc_err *err) {
    double t0 = progress_now();
    int rc = dc_model_load(dir, m, err);
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
    char p[4096];
    if (path_join(p, sizeof p, dir, "tokenizer.json", NULL) || !file_exists(p)) return DC_OK;
    return dc_tokenizer_load(dir, t, err);
}

/* ---------------------------------------------------------------- streaming */

int stream_init(streamer *s, const dc_tokenizer *tok, FILE *out, const char *const *stops, int nstops, dc_err *err) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->out = out;
    s->stops = stops;
    s->nstops = nstops;
    for (int i = 0; i < nstops; i++)
        if (strlen(stops[i]) > s->maxstop) s->maxstop = strlen(stops[i]);
    s->cap = 256;
    s->text = malloc(s->cap);
    if (!s->text) return err_set(err, DC_ENOMEM, "out of memory");
    s->text[0] = 0;
    if (tok) return dc_detok_new(tok, 0, &s->dt, err);
    return DC_OK;
}

static int append(streamer *s, const char *b, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *nt = realloc(s->text, cap);
        if (!nt) return -1;
        s->text = nt, s->cap = cap;
    }
    memcpy(s->text + s->len, b, n);
    s->len += n;
    s->text[s->len] = 0;
    return 0;
}

/* print text[printed, upto) in the current style */
static void emit_upto(streamer *s, size_t upto) {
    if (upto <= s->printed) return;
    if (s->style != STREAM_HIDE) {
        if (s->style == STREAM_DIM && s->color) fputs("\033[2m", s->out);
        fwrite(s->text + s->printed, 1, upto - s->printed, s->out);
        if (s->style == STREAM_DIM && s->color) fputs("\033[0m", s->out);
        errno = 0;
        fflush(s->out);
        if (ferror(s->out)) { /* the reader is gone or the disk is full: stop generating */
            if (s->out == stdout) cli_note_write_error(errno);
            s->stopped = 1;
        }
    }
    s->printed = upto;
}

int stream_token(streamer *s, int id) {
    if (s->stopped) return 1;
    if (!s->tok) {
        char b[16];
        int n = snprintf(b, sizeof b, "%s%d", s->len ? " " : "", id);
        append(s, b, n);
        emit_upto(s, s->len);
        return s->stopped;
    }
    const char *b;
    size_t n;
    if (dc_detok_push(s->dt, id, &b, &n, NULL)) return 0;
    size_t from = s->len;
    if (append(s, b, n)) return 0;
    /* a stop string may start up to maxstop-1 bytes before the new text */
    size_t scan = from >= s->maxstop ? from - s->maxstop + 1 : 0;
    if (scan < s->printed) scan = s->printed;
    for (int i = 0; i < s->nstops; i++) {
        char *hit = strstr(s->text + scan, s->stops[i]);
        if (hit) {
            emit_upto(s, (size_t)(hit - s->text));
            s->stopped = 1;
            return 1;
        }
    }
    size_t safe = s->maxstop ? (s->len >= s->maxstop - 1 ? s->len - (s->maxstop - 1) : 0) : s->len;
    emit_upto(s, safe);
    return s->stopped;
}

void stream_style(streamer *s, int style) {
    if (!s->stopped) emit_upto(s, s->len);
    s->style = style;
}

void stream_finish(streamer *s) {
    if (s->stopped) return;
    if (s->dt) {
        const char *b;
        size_t n;
        dc_detok_flush(s->dt, &b, &n);
        append(s, b, n);
    }
    emit_upto(s, s->len);
}

void stream_clear(streamer *s) {
    s->len = s->printed = 0;
    s->text[0] = 0;
    s->stopped = 0;
}

void stream_free(streamer *s) {
    dc_detok_free(s->dt);
    free(s->text);
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
