/* progress.c — see progress.h. */
#include "base/progress.h"
#include "deepc.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, const char *label, int64_t total) {
    p->label = label;
    p->total = total;
    p->t0 = p->last = progress_now();
    p->tty = isatty(2);
}

static void fmt_time(char *b, size_t n, double s) {
    if (s < 0 || s > 1e7) snprintf(b, n, "?");
    else if (s < 60) snprintf(b, n, "%.0fs", s);
    else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(b, n, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
}

void progress_update(progress *p, int64_t done, const char *unit, const char *extra) {
    double now = progress_now();
    int final = done >= p->total;
    if (!final && now - p->last < (p->tty ? 0.1 : 5.0)) return;
    p->last = now;
    double el = now - p->t0, rate = el > 0 ? done / el : 0, frac = p->total > 0 ? (double)done / p->total : 1;
    if (frac > 1) frac = 1;
    char bar[31], eta[16], ela[16];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fmt_time(eta, sizeof eta, rate > 0 ? (p->total - done) / rate : -1);
    fmt_time(ela, sizeof ela, el);
    fprintf(stderr, "%s%s [%s] %3.0f%% %lld/%lld %s, %.1f %s/s, %s, ETA %s%s%s%s", p->tty ? "\r" : "", p->label, bar,
            frac * 100, (long long)done, (long long)p->total, unit, rate, unit, ela, eta, extra ? "  " : "",
            extra ? extra : "", p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void progress_end(progress *p) {
    if (p->tty) fputc('\n', stderr);
}

/* ---------------------------------------------------------------- library progress */
static dc_progress_fn g_fn;
static void *g_ctx;

void dc_set_progress(dc_progress_fn fn, void *ctx) {
    g_fn = fn;
    g_ctx = ctx;
}

void libprog_start(libprog *p, const char *stage, int64_t total) {
    p->stage = stage;
    p->done = 0;
    p->total = total;
    p->last = progress_now();
    if (g_fn) g_fn(g_ctx, stage, 0, total);
}

void libprog_add(libprog *p, int64_t n) {
    p->done += n;
    if (!g_fn || p->done >= p->total) return;
    double now = progress_now();
    if (now - p->last < 0.1) return;
    p->last = now;
    g_fn(g_ctx, p->stage, p->done, p->total);
}

void libprog_end(libprog *p) {
    if (g_fn) g_fn(g_ctx, p->stage, p->total, p->total);
}
