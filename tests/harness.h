/*
 * harness.h — the tiny test harness every tests/test_*.c uses.
 *
 * A test is a function `void name(void)` run with RUN(name); inside it,
 * CHECK(cond, fmt, ...) records a failure with the file, line and message,
 * and the test passes when none was recorded. main() ends with
 * `return harness_done();`, which prints "<file>: N passed, N failed".
 * tests/run.sh adds these up across binaries.
 */
#ifndef DC_HARNESS_H
#define DC_HARNESS_H
#include <stddef.h>
#include <stdio.h>
#include "base/rng.h"

/* DC_BUILD: the build directory (make's BUILD, passed by the Makefile):
 * where the deepc binary, the reference cases and the scratch space are. */
#ifndef DC_BUILD
#define DC_BUILD "build"
#endif

extern int harness_cur_failed;
void harness_run(const char *name, void (*fn)(void));
int harness_done(void);
/* harness_data_dir: ../shared/data (or $DEEPC_DATA), NULL when absent. */
const char *harness_data_dir(void);
/* harness_tmpdir: a fresh directory under build/tmp for this binary. */
const char *harness_tmpdir(void);
/* harness_threads: n OpenMP / OpenBLAS threads for the calling thread (0: all cores). */
void harness_threads(int n);
/* harness_now: a monotonic clock in seconds. */
double harness_now(void);
/* harness_sh: run a shell command, returns its exit status. */
int harness_sh(const char *fmt, ...);

/* harness_arith_shards: the training tests' corpus, 3000 lines of two-digit
 * sums with worked steps (seeded), written to work/corpus.txt, a 320-token
 * BPE trained on it (work/tok.json) and its shards prepared into data (10%
 * validation), with DC_BUILD's deepc. 0 when all of it worked. */
int harness_arith_shards(const char *work, const char *data);

/* harness_nmse: sum (a - b)^2 / sum b^2 over n (the plain sum of squares
 * when b is all zeros): the kernels' error against their oracle. */
double harness_nmse(const float *a, const float *b, size_t n);
/* harness_randv: n standard normal floats from r (caller frees; NULL on OOM). */
float *harness_randv(rng *r, size_t n);

#define RUN(fn) harness_run(#fn, fn)
#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            harness_cur_failed++;                                     \
            printf("    FAIL %s:%d: ", __FILE__, __LINE__);           \
            printf(__VA_ARGS__);                                      \
            printf("\n");                                             \
        }                                                             \
    } while (0)
#endif
