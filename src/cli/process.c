/*
 * process.c — the process-wide settings that belong to a program, not to the
 * library: the thread count of the main thread (OpenMP and OpenBLAS) and the
 * OpenMP wait policy. Engines take their own thread count (dc_engine_opts).
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "kernels/blas_core.h"

void openblas_set_num_threads(int n); /* from OpenBLAS (cblas.h pulls in much more) */

void cli_threads(long n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads((int)n);
    openblas_set_num_threads((int)n);
}

int cli_get_threads(void) { return omp_get_max_threads(); }

/* cli_omp_policy_reexec: GNU OpenMP's default wait policy (spin a while,
 * then sleep) made every parallel region several times slower on the 2-vCPU
 * virtual machines deepc is measured on (mini decode 8.6 tokens/s against 35
 * with OMP_WAIT_POLICY=active; training 1,300 against 4,600 tokens/s).
 * Measured per parallel region there: active 0.7 us, passive 40-60 us (a
 * futex wake through the hypervisor). Decode runs ~170 regions a token, so
 * latency-bound work wants "active" (mini f32 decode 25 -> 35 tokens/s);
 * training's regions were long, where passive cost nothing (4,573 against
 * 4,658 tokens/s), but with its bf16 / fp8 GEMMs on AMX tiles (an Intel
 * Xeon, twelfth session) a train-bench step at 2 threads ran 9,922-10,026
 * bf16 tokens/s passive against 11,289-11,968 spinning (fp8 7,274-7,358
 * against 8,490-8,887, f32 5,483-5,618 against 5,910-6,213): training
 * spins too, as long as it runs regions back to back. libgomp reads the variable when it is loaded, before main,
 * so a program that wants it set re-executes itself once with it. Does
 * nothing when the variable is set already or /proc/self/exe cannot be run.
 *
 * "active" alone spins for about five minutes (libgomp's GOMP_SPINCOUNT of
 * 3e10 for it): a thread left idle, as the second one is when `deepc bench
 * --threads 2,1` goes on to its one-thread runs or while chat waits for a
 * line, held a core the whole time (issue 15). GOMP_SPINCOUNT 1e7 (~0.1 s
 * by libgomp's estimate of 1e5 spins a millisecond) keeps spinning through
 * decode's back-to-back regions and lets an idle thread sleep soon after. */
#define SPINCOUNT "10000000"
static int set_policy(const char *policy) {
    if (getenv("OMP_WAIT_POLICY") || setenv("OMP_WAIT_POLICY", policy, 0) != 0) return 0;
    if (!strcmp(policy, "active")) setenv("GOMP_SPINCOUNT", SPINCOUNT, 0);
    return 1;
}

/* OPENBLAS_CORETYPE is read when OpenBLAS loads, as libgomp's variables are:
 * a core chosen by an OpenBLAS older than the CPU gets the same re-execution
 * (kernels/blas_core.h) */
static int set_blas_core(void) {
    const char *core = blas_core_wanted();
    return core && !getenv("OPENBLAS_CORETYPE") && setenv("OPENBLAS_CORETYPE", core, 0) == 0;
}

void cli_omp_policy_reexec(char **argv, const char *policy) {
    const int a = set_policy(policy), b = set_blas_core();
    if (a || b) execv("/proc/self/exe", argv);
}
