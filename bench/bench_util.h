/*
 * bench_util.h — what the benchmark programs share: the process's thread
 * count and OpenMP wait policy (program settings, not the library's).
 */
#ifndef DC_BENCH_UTIL_H
#define DC_BENCH_UTIL_H
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kernels/blas_core.h"

void openblas_set_num_threads(int n); /* from OpenBLAS */

static inline void bench_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

/* unless OMP_WAIT_POLICY is set, set it, and OPENBLAS_CORETYPE where the
 * loaded OpenBLAS runs a core older than the CPU (kernels/blas_core.h), and
 * re-execute (src/cli/process.c says why) */
static inline void bench_policy_reexec(char **argv, const char *policy) {
    const char *core = blas_core_wanted();
    const int a = !getenv("OMP_WAIT_POLICY") && !setenv("OMP_WAIT_POLICY", policy, 0);
    if (a && !strcmp(policy, "active")) setenv("GOMP_SPINCOUNT", "10000000", 0); /* as deepc's (process.c) */
    const int b = core && !getenv("OPENBLAS_CORETYPE") && !setenv("OPENBLAS_CORETYPE", core, 0);
    if (a || b) execv("/proc/self/exe", argv);
}
#endif
