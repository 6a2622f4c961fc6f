/*
 * gemm_amx.h — gemm_bf16's kernel on AMX tiles (Intel Sapphire Rapids and
 * later): the same contract as gemm_bf16 / gemm_bf16_fp8 (gemm_bf16.h),
 * reached through them when gemm_bf16_kernel() is GEMM_BF16_AMX.
 *
 * gemm_amx_cpu(): the CPU has AMX-TILE and AMX-BF16 (cpuid) and the kernel
 * granted this process the tile state (arch_prctl ARCH_REQ_XCOMP_PERM,
 * asked once, process-wide): a kernel or virtual machine that does not
 * enable AMX says no here, and the AVX512_BF16 kernel runs instead
 * (gemm_bf16.c chooses; the kernel level in use must be AVX-512 too).
 */
#ifndef DC_GEMM_AMX_H
#define DC_GEMM_AMX_H
#include <stddef.h>
#include "kernels/gemm_bf16.h"

int gemm_amx_cpu(void);
size_t gemm_amx_scratch(int M, int N, int K);
/* s NULL: gemm_bf16; else gemm_bf16_fp8 with scales s. M, N, K > 0 (gemm_bf16
 * answers the empty shapes itself) */
void gemm_amx_run(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                  const fp8_scales *s, void *scratch);
#endif
