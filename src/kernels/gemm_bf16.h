/*
 * gemm_bf16.h — BF16 GEMM on CPUs with AVX512_BF16, on AMX tiles where the
 * CPU has them (issue 13: the BF16 arithmetic that makes bf16 training
 * faster than f32 where the CPU has it).
 *
 * gemm_bf16(C, op(A), op(B)): C (M, N) = op(A) (M, K) @ op(B) (K, N), plus
 * C when acc; A, B float32, rounded to bfloat16 (nearest even) as they are
 * packed, products summed in float32 by vdpbf16ps (two products a lane a
 * step: 32 multiply-adds an instruction, twice f32 FMA's) or by AMX's
 * tdpbf16ps (16 x 16 x 32 multiply-adds an instruction, gemm_amx.h). op(A) is A (M,
 * K) row-major with stride lda, or with ta its transpose (A (K, M)); op(B)
 * is B (K, N), or with tb B (N, K) transposed (a Linear weight as stored).
 * The training GEMMs of linear.c in bf16:
 *   forward  y = x W^T:   gemm_bf16(y, x, W,  N, out, in, ta 0, tb 1, acc 0)
 *   dgrad    dx += dy W:  gemm_bf16(dx, dy, W, N, in, out, ta 0, tb 0, acc 1)
 *   wgrad    dW += dy^T x gemm_bf16(dW, dy, x, out, in, N, ta 1, tb 0, acc 1)
 * The products are those of the bf16-rounded operands (exact in f32); the
 * sums are f32 in an order of the kernel's own (OpenBLAS's sgemm has its
 * own too), and vdpbf16ps treats bf16 subnormal inputs and results as zero
 * (|x| < 2^-126: a training value never comes near).
 *
 * Threads: OpenMP over the output's tiles when called outside a parallel
 * region, else on the calling thread alone (the routed experts, one a
 * thread). Scratch: the packed operands, (M + N) * K bf16 rounded up,
 * from the caller (gemm_bf16_scratch bytes), so nothing here allocates.
 *
 * gemm_bf16_ok(): whether this CPU has AVX512_BF16 (and AVX512F/BW/VL) and
 * the kernel level in use is AVX-512 ($DEEPC_ISA=avx2 turns it off, as for
 * the other AVX-512 kernels, AMX included).
 */
#ifndef DC_GEMM_BF16_H
#define DC_GEMM_BF16_H
#include <stddef.h>

int gemm_bf16_ok(void);
/* the kernel behind gemm_bf16: GEMM_BF16_AMX (tdpbf16ps on AMX tiles,
 * gemm_amx.h) where the CPU has AMX-BF16 and the OS grants the tile state,
 * else GEMM_BF16_DP (vdpbf16ps, gemm_bf16.c); 0 where !gemm_bf16_ok.
 * gemm_bf16_use(k) asks for kernel k (tests and benchmarks, before any
 * thread runs one) and returns the kernel now in use. */
enum { GEMM_BF16_DP = 1, GEMM_BF16_AMX = 2 };
int gemm_bf16_kernel(void);
int gemm_bf16_use(int kernel);
/* gemm_bf16_train(): whether training's bf16 and fp8 GEMMs (linear.c) take
 * gemm_bf16: where AMX runs it, or vdpbf16ps is faster than f32 FMA (AMD;
 * not Intel, gemm_bf16.c says why); else the operands rounded and OpenBLAS's
 * sgemm. $DEEPC_BF16_GEMM=amx|dp|sgemm overrides (amx and dp pick the
 * kernel too, where the CPU has it). */
int gemm_bf16_train(void);
size_t gemm_bf16_scratch(int M, int N, int K);
void gemm_bf16(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc, void *scratch);

/* gemm_bf16_fp8: the FP8 GEMM (fp8.h, V3 §3.3.2's promotion) on the same
 * kernel: A and B hold FP8 codes' values (fp8_fqs_*: exact in bf16, so the
 * rounding as packed changes nothing), and each 128-long chunk c of K is
 * summed on its own (f32), then multiplied by its two scales and added:
 *   C[i][j] (+)= sum_c SA(i, c) SB(j, c) sum_{k in chunk c} op(A)[i][k] op(B)[k][j]
 * with SA(i, c) = a[i ai + c ac] and SB(j, c) = b[(j / bn) bj + c bc], bn 1
 * (a scale per column) or 128 (128x128 blocks). */
typedef struct fp8_scales {
    const float *a, *b;
    size_t ai, ac, bj, bc;
    int bn;
} fp8_scales;
void gemm_bf16_fp8(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                   const fp8_scales *s, void *scratch);
#endif
