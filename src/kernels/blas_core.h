/*
 * blas_core.h — which of OpenBLAS's kernel sets ("cores") the process runs.
 *
 * OpenBLAS picks its sgemm kernels once, when it is loaded, from the CPU's
 * family and model. A release older than the CPU does not know the model and
 * falls back to its most generic x86-64 core: Debian 12's OpenBLAS 0.3.21
 * takes an Intel Xeon of model 207 (Emerald Rapids, AVX-512 with BF16) for a
 * Prescott (SSE3), and its sgemm ran 30 GF/s on one core there against 148
 * with OPENBLAS_CORETYPE=SKYLAKEX (bench_prec_gemm, same process otherwise).
 * Every float32 GEMM of training and of the MLA's products goes through it.
 *
 * blas_core_wanted says which core to ask for, from the vector units cpuid
 * reports, when the loaded one lacks them; the programs (cli/process.c,
 * bench_util.h) set OPENBLAS_CORETYPE and re-execute once, as they do for the
 * OpenMP wait policy, because OpenBLAS reads the variable only when it loads.
 * An embedding program can set the variable itself. Nothing here changes a
 * result's meaning: any core computes the same float32 products, in its own
 * summation order.
 */
#ifndef DC_BLAS_CORE_H
#define DC_BLAS_CORE_H

/* blas_core_name: the core the loaded OpenBLAS runs ("Haswell", "SkylakeX", ...). */
const char *blas_core_name(void);
/* blas_core_wanted: the OPENBLAS_CORETYPE value for this CPU ("SKYLAKEX" with
 * AVX-512 F/BW/VL/DQ, "HASWELL" with AVX2 + FMA) when the loaded core is not
 * one that uses those units, else NULL. */
const char *blas_core_wanted(void);
/* blas_core_held_back: blas_core_wanted's core when $OPENBLAS_CORETYPE (the
 * user's, which deepc never overrides) keeps OpenBLAS on an older one, else
 * NULL: for the benchmarks to say so. */
const char *blas_core_held_back(void);
#endif
