/* test_cli.c — the deepc binary as users and other tools drive it: exit codes,
 * error messages, and `deepc logits` output against the reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/file.h"
#include "harness.h"

#define BIN "build/deepc"

/* run a command, capture stdout+stderr into *out (caller frees), return exit status */
static int run(char **out, const char *fmt, const char *arg) {
    char cmd[2048], log[600];
    snprintf(log, sizeof log, "%s/out.txt", harness_tmpdir());
    snprintf(cmd, sizeof cmd, fmt, arg);
    int rc = harness_sh("%s > %s 2>&1", cmd, log);
    size_t n;
    if (file_read_all(log, out, &n, NULL)) *out = strdup("");
    return rc;
}

static void exit_codes(void) {
    char *o;
    CHECK(run(&o, BIN " --help%s", "") == 0 && strstr(o, "logits"), "--help lists commands: %s", o);
    free(o);
    CHECK(run(&o, BIN " frobnicate%s", "") == 2 && strstr(o, "unknown command"), "unknown command: %s", o);
    free(o);
    const char *cmds[] = {"init", "info", "logits"};
    for (int i = 0; i < 3; i++) {
        CHECK(run(&o, BIN " %s --help", cmds[i]) == 0 && strstr(o, "usage: deepc"), "%s --help: %s", cmds[i], o);
        free(o);
    }
    CHECK(run(&o, BIN " logits -m /nonexistent/m --ids 1,2%s", "") == 1 && strstr(o, "/nonexistent/m") &&
              strstr(o, "error"),
          "missing model: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m build/ref/v3_f32 --ids 1,x,3%s", "") == 1 && strstr(o, "--ids"), "bad ids: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m build/ref/v3_f32 --ids 1,99999%s", "") == 1 && strstr(o, "99999"),
          "id out of range: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m build/ref/v2lite_f32 --ids 1,2 --mtp%s", "") == 1 && strstr(o, "MTP"),
          "--mtp without MTP: %s", o);
    free(o);
    CHECK(run(&o, BIN " logits -m build/ref/v3_f32 --ids 1 --attn fast%s", "") == 2 && strstr(o, "--attn"),
          "bad --attn: %s", o);
    free(o);
    CHECK(run(&o, BIN " init --preset tiny --dtype f4 --out %s/x", harness_tmpdir()) == 1 && strstr(o, "f4"),
          "bad dtype: %s", o);
    free(o);
    CHECK(run(&o, BIN " info --preset v3%s", "") == 0 && strstr(o, "671.03G total") && strstr(o, "absorbed 35136"),
          "info v3: %s", o);
    free(o);
}

static float *load(const char *name, size_t *n) {
    char p[700], *b;
    snprintf(p, sizeof p, "%s/%s", harness_tmpdir(), name);
    if (file_read_all(p, &b, n, NULL)) return NULL;
    *n /= 4;
    return (float *)b;
}

static double md(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* the logits file matches the reference for every thread count and path */
static void logits_file(void) {
    char *txt;
    size_t n;
    CHECK(file_read_all("build/ref/v3_f32/case.json", &txt, &n, NULL) == 0, "case.json");
    if (!txt) return;
    /* "ids": [a, b, ...] -> "a,b,..." */
    char ids[1024] = "";
    const char *p = strstr(txt, "\"ids\"");
    p = p ? strchr(p, '[') : NULL;
    for (p = p ? p + 1 : ""; *p && *p != ']'; p++)
        if ((*p >= '0' && *p <= '9') || *p == ',') strncat(ids, p, 1);
    free(txt);
    const char *variants[] = {"-t 1", "-t 2", "-t 2 --attn naive", "-t 1 --decode-from 4", "-t 2 --attn naive --decode-from 2"};
    size_t nw;
    float *want = NULL;
    char wp[] = "build/ref/v3_f32/logits.f32";
    CHECK(file_read_all(wp, (char **)&want, &nw, NULL) == 0, "reference logits");
    nw /= 4;
    for (int v = 0; v < 5; v++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, BIN " logits -m build/ref/v3_f32 --ids %s %s --out %s/l.f32", ids, variants[v],
                 harness_tmpdir());
        CHECK(harness_sh("%s", cmd) == 0, "%s", cmd);
        size_t ng;
        float *got = load("l.f32", &ng);
        CHECK(got && ng == nw, "%s: %zu numbers, want %zu", variants[v], got ? ng : 0, nw);
        if (got && ng == nw) CHECK(md(got, want, nw) <= 1e-4, "%s: max|diff| %g", variants[v], md(got, want, nw));
        free(got);
    }
    free(want);
}

int main(void) {
    RUN(exit_codes);
    RUN(logits_file);
    return harness_done();
}
