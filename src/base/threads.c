/* threads.c — one thread count for OpenMP and OpenBLAS. */
#include "deepc.h"
#include <omp.h>

void openblas_set_num_threads(int n); /* from OpenBLAS (cblas.h pulls in much more) */

void dc_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int dc_get_threads(void) { return omp_get_max_threads(); }
