/*
 * gemm.h — prefill's products on float-type weights (f16, bf16, fp8 e4m3,
 * f32) read in their stored type, without dequantising whole matrices
 * (issues 13 and 15).
 *
 *     out (T, rows) = x (T, cols) @ W^T        x, out float32; W as stored
 *
 * BLIS's scheme (docs/KernelsHowTo.md), the tokens as BLIS's M and the
 * weight rows as its N, up to TB tokens a pass:
 *   - x is packed into A panels of up to MR tokens, A[g][k][i] = x[t_g+i][k]
 *     (the T shared out evenly over ceil(T / MR) groups, t_g the first of
 *     group g: gemm.c; slots past a group's tokens zero), the threads
 *     sharing the groups (one barrier), then read by every thread;
 *   - the threads take chunks of up to NP panels of NR rows of W (dynamic);
 *     for each KC-deep slice of the columns a thread converts its chunk's
 *     weights into float32 panels B[k][j] = W[r+j][k0+k] (NR*KC floats =
 *     16 KB each, L1; rows past the matrix zero): gemm_pack_fn, one per
 *     type and ISA; every weight is converted once a pass;
 *   - then, MC tokens at a time (their A, MC x KC floats, stays in L2), the
 *     micro-kernel adds MR tokens of A times a B panel into an MR x NR tile
 *     of out held in registers (gemm_kern_fn; 12 of the 16 AVX2 registers
 *     accumulate), storing it the first slice and adding it after.
 * Each out[t][r] is the sum over k in ascending order, one FMA chain per
 * KC slice added slice by slice: its bits depend on neither T, nor the
 * token's place, nor the thread count (batch-invariant within this path;
 * matmul's matvec path below gemm_t rounds differently).
 *
 * Packing a weight costs ~0.1 ns (f16, one Zen 3 core; fp8 ~0.17), against
 * T FMAs that use it (~0.024 ns each at 85 GFLOP/s). An edge panel (rows %
 * NR, cols % 8) is packed value by value. fp8 slices start on a 128-value
 * block (KC % 128 == 0) so each block's scale applies to whole groups.
 *
 * gemm_ref.c holds the plain C packers and micro-kernel (the oracle of the
 * others; the same blocking and, with fmaf, the same order), gemm_avx2.c the
 * AVX2 + FMA + F16C ones (AVX-512 machines run its packers), gemm_avx512.c a
 * wide micro-kernel (12 tokens x 32 rows) for AVX-512, gemm.c the driver.
 */
#ifndef DC_GEMM_H
#define DC_GEMM_H
#include <stddef.h>

#define GEMM_MR 6   /* tokens per micro-tile */
#define GEMM_NR 16  /* weight rows per micro-tile (two 8-lane vectors) */
#define GEMM_KC 256 /* columns per packed slice: a multiple of 128 (fp8 blocks) and of 8 */
#define GEMM_MC 192 /* tokens per block (MC x KC floats of A = 192 KB, for L2); a multiple of MR */
#define GEMM_NP 8   /* panels per chunk of work (their packed slices: 128 KB, for L2) */
#define GEMM_TB 512 /* tokens per pass (bounds the packed x: TB x cols floats; W packed once a pass) */

/* gemm_pack_fn: rows [r, r + nr) (1 <= nr <= NR) and columns [k0, k0 + kc)
 * of W (row-major, rows of `cols` values in the type's layout) as float32
 * into dst[k * NR + j] (NR * kc floats, 64-byte aligned); rows j >= nr
 * zero. k0 % KC == 0; kc <= KC. */
typedef void (*gemm_pack_fn)(float *dst, const void *W, int cols, int r, int nr, int k0, int kc);

/* gemm_kern_fn: the first mt (1..MR) rows of c (MR x NR, row stride ldc)
 * = (acc ? c : 0) + a b, a the packed A of MR tokens over kc columns
 * (a[k * MR + i]), b the packed B (b[k * NR + j]); a token's sums do not
 * depend on mt. */
typedef void (*gemm_kern_fn)(int kc, int mt, const float *a, const float *b, float *c, size_t ldc, int acc);

/* gemm_pack_a_fn: n (1 <= n <= MR) token rows of x (rows of `cols`
 * values) into dst[k * MR + i] for k < cols, rows i >= n zero: A's panel
 * of one token group (a copy: every ISA's the same floats) */
typedef void (*gemm_pack_a_fn)(float *dst, const float *x, int cols, int n);

/* gemm_wide_fn (AVX-512's): ng (1..2) token groups times np (1..2) whole
 * panels at once: group 1's A panel at a + as (its mt1 tokens following
 * group 0's mt0 in c), panel 1's B at b + bs (its rows NR further on in c);
 * otherwise as gemm_kern_fn, and the same bits */
typedef void (*gemm_wide_fn)(int kc, int ng, int np, int mt0, int mt1, const float *a, size_t as, const float *b,
                             size_t bs, float *c, size_t ldc, int acc);
void gemm_wide_avx512(int kc, int ng, int np, int mt0, int mt1, const float *a, size_t as, const float *b, size_t bs,
                      float *c, size_t ldc, int acc);

#define GEMM_PACK_DECL(isa) \
    void gemm_pack_a_##isa(float *dst, const float *x, int cols, int n);                            \
    void gemm_pack_f32_##isa(float *dst, const void *W, int cols, int r, int nr, int k0, int kc);  \
    void gemm_pack_bf16_##isa(float *dst, const void *W, int cols, int r, int nr, int k0, int kc); \
    void gemm_pack_f16_##isa(float *dst, const void *W, int cols, int r, int nr, int k0, int kc);  \
    void gemm_pack_fp8_##isa(float *dst, const void *W, int cols, int r, int nr, int k0, int kc);  \
    void gemm_kern_##isa(int kc, int mt, const float *a, const float *b, float *c, size_t ldc, int acc);
GEMM_PACK_DECL(ref)
GEMM_PACK_DECL(avx2)
#undef GEMM_PACK_DECL

/* gemm_abuf_floats: the floats of gemm_run's scratch for T tokens of cols
 * values on omp_get_max_threads() threads: the packed A of up to TB tokens
 * and each thread's packed B slices (64-byte aligned, the caller's; ask on
 * the thread that calls gemm_run, with its thread count). */
size_t gemm_abuf_floats(int T, int cols);

/* gemm_run: out (T, rows) = x (T, cols) @ W^T over the OpenMP threads
 * (omp_get_max_threads(); never from inside a parallel region that expects
 * it to spread), W's panels packed by `pack`, tiles by the micro-kernel of
 * isa (ISA_*, matvec.h; AVX-512: gemm_wide_avx512 on whole panels). abuf: scratch of
 * gemm_abuf_floats(T, cols) floats, borrowed. out, x, W borrowed. No rows
 * or tokens: nothing; no columns: out zero. */
void gemm_run(float *out, const float *x, const void *W, int rows, int cols, int T, gemm_pack_fn pack, int isa,
              float *abuf);
#endif
