/*
 * cpu.h — the CPU's vector features and the kernel dispatch table.
 *
 * kern_get() returns the table of the best variant this CPU runs (AVX-512
 * with VNNI, else AVX2 with FMA and F16C, else the plain C oracles), chosen
 * once from cpuid. $DEEPC_ISA=ref|avx2|avx512 caps the choice (to compare
 * variants); kern_select() does the same from code (tests, bench) and must be
 * called before any thread runs a kernel.
 *
 * Every matvec kernel has one contract (src/kernels/matvec.h); the kernels
 * of each weight type per level are in wtype.h's table, so a level here is
 * an index into it. The choice is the only process-wide state the kernels keep.
 */
#ifndef DC_CPU_H
#define DC_CPU_H
#include "kernels/matvec.h"
#include "kernels/wtype.h"

typedef struct kern {
    int isa;                 /* ISA_* (matvec.h): the column of wtype.h's kernels */
    const char *name;        /* "ref", "avx2", "avx512" */
    q8_fill_fn q8_fill;      /* activations to q8_act (matvec.h) */
} kern;

/* kern_mv: the matvec kernel of weight type (MAT_*, wtype.h) in table k. */
mv_fn kern_mv(const kern *k, int type);

/* cpu_best_isa: the best ISA_* this CPU supports. */
int cpu_best_isa(void);
/* kern_get: the current table (first call picks it from cpuid and $DEEPC_ISA). */
const kern *kern_get(void);
/* kern_select: use variant isa (capped at what the CPU supports); returns the ISA chosen. */
int kern_select(int isa);
/* kern_table: the table of one variant, or NULL when this CPU cannot run it. */
const kern *kern_table(int isa);
#endif
