/* common.c — helpers shared by the subcommands. See cli.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include "base/err.h"
#include "base/file.h"
#include "cli/cli.h"

int cli_error(const char *cmd, const dc_err *err) {
    fprintf(stderr, "deepc %s: error: %s\n", cmd, err->msg);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "deepc %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'deepc %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int cli_parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_kv_type(const char *s) {
    if (!strcmp(s, "bf16")) return DC_KV_BF16;
    if (!strcmp(s, "f32")) return DC_KV_F32;
    return -1;
}

int cli_parse_float(const char *s, float lo, float hi, float *out) {
    char *end;
    float v = strtof(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int cli_parse_ids(const char *s, int **ids, int *n, dc_err *err) {
    int cap = 16, k = 0;
    int *a = malloc(sizeof *a * cap);
    if (!a) return err_set(err, DC_ENOMEM, "out of memory");
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7fffffff) {
            free(a);
            return err_set(err, DC_EARG, "--ids: \"%s\" is not a comma-separated list of token ids (at byte %d)", s,
                           (int)(p - s));
        }
        if (k == cap) {
            int *na = realloc(a, sizeof *a * (cap *= 2));
            if (!na) {
                free(a);
                return err_set(err, DC_ENOMEM, "out of memory");
            }
            a = na;
        }
        a[k++] = (int)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) {
            free(a);
            return err_set(err, DC_EARG, "--ids: unexpected '%c' at byte %d of \"%s\"", *p, (int)(p - s), s);
        }
    }
    if (!k) {
        free(a);
        return err_set(err, DC_EARG, "--ids: no token ids given");
    }
    *ids = a;
    *n = k;
    return DC_OK;
}

static int g_write_errno; /* the first failed write to stdout's errno (cli_note_write_error) */

void cli_note_write_error(int e) {
    if (!g_write_errno) g_write_errno = e;
}

int cli_finish(const char *cmd, int rc) {
    int bad = ferror(stdout), e = g_write_errno;
    if (fflush(stdout) != 0) bad = 1, e = errno;
    if (fclose(stdout) != 0) bad = 1, e = e ? e : errno;
    if (!bad) return rc;
    fprintf(stderr, "deepc %s: error: writing standard output: %s\n", cmd, e ? strerror(e) : "write error");
    return rc ? rc : 1;
}

const char *cli_kernels(void) { return dc_kernels_name(); }

static void on_fatal_signal(int sig) {
    afile_unlink_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_remove_temps_on_signal(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}
