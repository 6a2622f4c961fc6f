/* blas_core.c — see blas_core.h. */
#include "kernels/blas_core.h"
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

char *openblas_get_corename(void); /* from OpenBLAS (cblas.h pulls in much more) */

const char *blas_core_name(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}

static int named(const char *core, const char *const *names) {
    for (; *names; names++)
        if (!strcasecmp(core, *names)) return 1;
    return 0;
}

const char *blas_core_wanted(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* OpenBLAS's cores whose sgemm uses AVX-512, and those using at least AVX2 + FMA */
    static const char *const AVX512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const AVX2[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    __builtin_cpu_init();
    const char *core = blas_core_name();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return named(core, AVX512) ? NULL : "SKYLAKEX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return named(core, AVX2) ? NULL : "HASWELL";
#endif
    return NULL;
}

const char *blas_core_held_back(void) { return getenv("OPENBLAS_CORETYPE") ? blas_core_wanted() : NULL; }
