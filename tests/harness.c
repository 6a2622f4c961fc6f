/* harness.c — see harness.h. */
#include "harness.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <omp.h>
#include "base/rng.h"

int harness_cur_failed;
static int n_pass, n_fail;

void harness_run(const char *name, void (*fn)(void)) {
    harness_cur_failed = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (harness_cur_failed) {
        n_fail++;
        printf("  FAIL %s (%.0f ms)\n", name, ms);
    } else {
        n_pass++;
        printf("  ok   %s (%.0f ms)\n", name, ms);
    }
    fflush(stdout);
}

int harness_done(void) {
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

const char *harness_data_dir(void) {
    static char buf[4096];
    const char *env = getenv("DEEPC_DATA");
    const char *cands[] = {env, "../shared/data", "../../shared/data"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        struct stat st;
        if (cands[i] && stat(cands[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(buf, sizeof buf, "%s", cands[i]);
            return buf;
        }
    }
    return NULL;
}

const char *harness_tmpdir(void) {
    static char buf[512];
    if (!buf[0]) {
        snprintf(buf, sizeof buf, DC_BUILD "/tmp/t%ld", (long)getpid());
        harness_sh("rm -rf '%s' && mkdir -p '%s'", buf, buf);
    }
    return buf;
}

double harness_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int harness_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

void openblas_set_num_threads(int n); /* from OpenBLAS */

void harness_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int harness_arith_shards(const char *work, const char *data) {
    char p[700];
    snprintf(p, sizeof p, "%s/corpus.txt", work);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < 3000; i++) {
        int a = (int)(rng_u64(&r) % 90) + 10, b = (int)(rng_u64(&r) % 90) + 10;
        fprintf(f, "%d + %d = %d + %d + %d = %d\n", a, b, a, b / 10 * 10, b % 10, a + b);
    }
    if (fclose(f)) return -1;
    if (harness_sh(DC_BUILD "/deepc tokenizer-train --data %s --vocab-size 320 --out %s/tok.json > /dev/null 2>&1", p,
                   work))
        return -1;
    return harness_sh(DC_BUILD "/deepc prepare --tokenizer %s/tok.json --data %s --out %s --val-frac 0.1 > /dev/null 2>&1",
                      work, p, data);
}

double harness_nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (double)(a[i] - b[i]), den += (double)b[i] * b[i];
    return den > 0 ? num / den : num;
}

float *harness_randv(rng *r, size_t n) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; v && i < n; i++) v[i] = rng_normal(r);
    return v;
}
