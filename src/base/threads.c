/* threads.c — one thread count for OpenMP and OpenBLAS. */
#include "deepc.h"
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

void openblas_set_num_threads(int n); /* from OpenBLAS (cblas.h pulls in much more) */

void dc_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int dc_get_threads(void) { return omp_get_max_threads(); }

/* dc_omp_policy_reexec: GNU OpenMP's default wait policy (spin a while, then
 * sleep) made every parallel region several times slower on the 2-vCPU
 * virtual machines deepc is measured on (decode 8.6 vs 24 tokens/s, training
 * 1,300 vs 4,400 tokens/s), while an explicit OMP_WAIT_POLICY, passive or
 * active, did not. libgomp reads the variable when it is loaded, before
 * main, so a program that wants it set re-executes itself once with it.
 * Does nothing when the variable is already set or /proc/self/exe fails. */
void dc_omp_policy_reexec(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
    execv("/proc/self/exe", argv);
}
