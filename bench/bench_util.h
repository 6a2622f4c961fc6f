/*
 * bench_util.h — what the benchmark programs share: the process's thread
 * count and OpenMP wait policy (program settings, not the library's).
 */
#ifndef DC_BENCH_UTIL_H
#define DC_BENCH_UTIL_H
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

void openblas_set_num_threads(int n); /* from OpenBLAS */

static inline void bench_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

/* unless OMP_WAIT_POLICY is set, set it and re-execute (src/cli/process.c says why) */
static inline void bench_policy_reexec(char **argv, const char *policy) {
    if (getenv("OMP_WAIT_POLICY") || setenv("OMP_WAIT_POLICY", policy, 0)) return;
    execv("/proc/self/exe", argv);
}
#endif
