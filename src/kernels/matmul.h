/*
 * matmul.h — weight matrices and the products the model runs on them.
 *
 * A mat is a (rows, cols) row-major weight in torch Linear layout [out, in],
 * borrowed from whoever owns its storage (the model arena). Its type tag
 * (MAT_*, wtype.h: f32, bf16, f16, q8, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl,
 * iq4_xs, fp8, and the interleaved layouts)
 * says how its storage `data` is laid out; everything type-dependent here is
 * a lookup in wtype.h's table (a GGUF's block types are used in place).
 * Code that reads data as floats directly must check the type (mat_row_f32
 * widens a row of any type).
 *
 * matmul: out (T, rows) = x (T, cols) @ W^T, x and out float32 always.
 *   Quantised weights (the WT_ACT_Q8 types), any T: x is quantised to
 *     8 bits per block of 32 (q8_act, as llama.cpp's vec_dot_type) and the
 *     matvec kernels (matvec.h, chosen from the CPU at run time) take integer
 *     dot products; rows split over the OpenMP threads, and for T > 4 each
 *     thread walks ~64 KB chunks of its rows and ~32 KB tiles of tokens so
 *     both stay in cache (prefill). BATCH-INVARIANT: each token's row of out
 *     has the same bits whatever T is and wherever the token sits among the
 *     T (for a given kernel variant; the variants differ in rounding).
 *   float32, bf16, f16, fp8, T <= 8 (wtype.gemm_t): the matvec kernels,
 *     batch-invariant within that range.
 *   above: gemm.h's blocked GEMM on the weights as stored (float32 panels
 *     converted on the fly, a 6x16 FMA micro-kernel), threaded itself;
 *     batch-invariant within that range too (a token's sums do not depend
 *     on T, its place or the threads), but a token's bits differ between T
 *     below and above the threshold (float32 on AVX-512 CPUs too, since it
 *     left OpenBLAS's sgemm for gemm.h: wtype.c).
 *   Measured on Zen 3, one core, GFLOP/s per second of thread CPU time
 *   (bench_matvec gemm / cross; a one-thread microbenchmark), 2816 x 1024:
 *   f32 T = 64 / 512 / 1024: gemm 77-81 / 88 / 90, OpenBLAS sgemm 71-80 /
 *   89 / 92; f16 and fp8 gemm 82-88 / 89 / 91 (packing ~0.1 ns a weight),
 *   where rows dequantised for sgemm gave 32 / 73 (f16), 58 / 84 (fp8). On
 *   an expert (512 x 1024), T = 8 / 9 / 10 / 12 / 16: f16 matvec 57 / 55 /
 *   57 / 60 / 57, gemm 50 / 56 / 61 / 67 / 71; fp8 matvec 53 / 42 / 49 / 51,
 *   gemm 43 / 48 / 53 / 59 / 64; hence 8.
 * Must not be called from inside an OpenMP parallel region that expects it
 * to spread over threads (it would run on one).
 */
#ifndef DC_MATMUL_H
#define DC_MATMUL_H
#include <stddef.h>
#include "kernels/quant.h"

#include "kernels/wtype.h"

typedef struct mat {
    float *data; /* storage, borrowed: float32 (rows, cols) only when type is MAT_F32 */
    int type;    /* MAT_* */
    int rows, cols;
} mat;

void matmul(float *out, const float *x, const mat *W, int T);
/* matmul_mv: matmul through the matvec kernels for any T and type, so each
 * token's row has the same bits whatever else is in the batch (float32 and
 * bf16 too, at the matvec kernels' speed): for small matrices whose results
 * steer discrete choices (the MoE router) and for the naive cache's kv_b. */
void matmul_mv(float *out, const float *x, const mat *W, int T);
/* Inside a parallel region the caller already runs (one region for several
 * products, issue 15: a region per product cost ~12% of decode in barriers):
 *   matmul_is_mv(W, T): whether matmul takes the matvec kernels for W and T
 *     (quantised: always; float types T <= wtype.gemm_t),
 *     the only case the functions below cover;
 *   mv_act_init(a, slot, W, T): before the region, on the thread that starts
 *     it: a buffer for T tokens of W's activations (q8 for a quantised W)
 *     in the calling thread's workspace slot (0 or 1; two live at once); 0 on OOM;
 *   mv_acts_init(a, slot, W, T, n): the same for n products at once (a[i]
 *     for T[i] tokens of W[i]'s width), all in that one slot;
 *   mv_act_fill(a, x, T, ith, nth): thread ith of nth quantises its tokens
 *     of x (T, cols); a barrier must follow before any thread reads a;
 *   matmul_mv_share(out, x, a, W, T, ith, nth): thread ith of nth computes
 *     its share of W's rows of out (T, rows) = x @ W^T.
 * Every token's row has the bits matmul_mv gives (the same kernels; a row's
 * sums do not depend on how rows are shared out). */
typedef struct mv_act {
    q8_act xa;
    int q; /* 1: W is quantised and xa holds x as q8 */
} mv_act;
int matmul_is_mv(const mat *W, int T);
int mv_act_init(mv_act *a, int slot, const mat *W, int T);
int mv_acts_init(mv_act *a, int slot, const mat *const *W, const int *T, int n);
void mv_act_fill(mv_act *a, const float *x, int T, int ith, int nth);
void matmul_mv_share(float *out, const float *x, const mv_act *a, const mat *W, int T, int ith, int nth);

/* matmul_ref: the plain C oracle for tests (one thread, no BLAS, double sums,
 * dequantised weights times float32 x). */
void matmul_ref(float *out, const float *x, const mat *W, int T);
/* argmax_f32: the index of the largest of v[0..n) (the first on ties). */
int argmax_f32(const float *v, int n);
/* dot: sum_i a[i] * b[i]. */
float dot_f32(const float *a, const float *b, int n);

/* mat_type_name / parse / gg / from_gg / bytes: wtype.h. */
/* mat_bytes: storage of W. */
size_t mat_bytes(const mat *W);
/* mat_row_f32: row r of W as float32 into dst (cols), dequantised. */
void mat_row_f32(const mat *W, int r, float *dst);
/* mat_convert: fill dst (mat_type_bytes(type, ...) bytes, caller-owned) with
 * the float32 W in the new type (threaded; fp8 with 128x128 block scales).
 * Does not change W. 0 when the type has no quantiser here. */
int mat_convert(const mat *W, int type, void *dst);
#endif
