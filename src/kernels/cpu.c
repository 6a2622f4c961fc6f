/* cpu.c — see cpu.h. Features come from gcc's __builtin_cpu_supports (cpuid). */
#include "kernels/cpu.h"
#include <cpuid.h>
#include <stdlib.h>
#include <string.h>

static const kern TABLES[] = {
    {ISA_REF, "ref", q8_act_fill},
    {ISA_AVX2, "avx2", q8_fill_avx2},
    {ISA_AVX512, "avx512", q8_fill_avx2},
};

mv_fn kern_mv(const kern *k, int type) {
    const wtype *w = wtype_get(type);
    return w ? w->mv[k->isa] : NULL;
}

static const kern *current;

/* F16C from cpuid itself: clang's __builtin_cpu_supports does not know "f16c" */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

int cpu_best_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni"))
        return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()) return ISA_AVX2;
    return ISA_REF;
}

const kern *kern_table(int isa) {
    if (isa < ISA_REF || isa > ISA_AVX512 || isa > cpu_best_isa()) return NULL;
    return &TABLES[isa];
}

int kern_select(int isa) {
    int best = cpu_best_isa();
    if (isa > best) isa = best;
    if (isa < ISA_REF) isa = ISA_REF;
    current = &TABLES[isa];
    return isa;
}

const kern *kern_get(void) {
    if (current) return current;
    int isa = ISA_AVX512;
    const char *env = getenv("DEEPC_ISA");
    if (env && strcmp(env, "ref") == 0) isa = ISA_REF;
    else if (env && strcmp(env, "avx2") == 0) isa = ISA_AVX2;
    kern_select(isa);
    return current;
}
