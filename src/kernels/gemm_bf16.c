/*
 * gemm_bf16.c — see gemm_bf16.h.
 *
 * Both operands are packed once, rounded to bf16 as they go, into panels of
 * bf16 pairs along K (a dword = the values at k = 2p and 2p + 1, vdpbf16ps's
 * operand): A in panels of MR rows (per pair p the MR rows' dwords), B in
 * panels of NR = 32 columns (per pair p the 32 columns' dwords: two zmm).
 * The micro-kernel keeps an MR x 32 tile of C in 2 MR zmm accumulators; per
 * pair it loads B's two vectors and broadcasts each of A's MR dwords: 2 MR
 * vdpbf16ps for 64 MR multiply-adds. MR = 12: 24 accumulators, 2 B vectors,
 * the broadcasts from memory (the 32 zmm registers). Tiles are shared over
 * the threads A panel by A panel: one A panel stays in L1 while the B
 * panels (the smaller operand on training's shapes: W, or the 256-wide x)
 * come from L2, and C is written along its rows. (B panel by B panel
 * re-read the whole packed A from L3 for every 32 columns and wrote C down
 * its columns, a page a row: the forward y = x W^T at 2048 x 1024 x 256 ran
 * 238 GF/s a core against 298, Zen 5.) Operands read down their columns
 * are packed a few pairs at a time across all panels (pack_cols), the
 * others 16 rows at a time through an in-register transpose (pack_rows).
 *
 * The kernels carry their own target attributes (the rest of the file, and
 * gemm_bf16_ok, run on any x86-64): nothing here runs unless gemm_bf16_ok.
 */
#include "kernels/gemm_bf16.h"
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/bf16_pack.h"
#include "kernels/cpu.h"
#include "kernels/gemm_amx.h"

/* the MR x NR tile of C the micro-kernel keeps in registers; K is not
 * blocked (blocks of 128 pairs, the panels' blocks in L1, measured no
 * faster on the train-bench shapes: Zen 5, wgrad K = 2048 192 -> 184 GF/s) */
enum { MR = 12, NR = 32 };

/* The choice is made once from what the CPU has (pthread_once: the first
 * call may come from the routed experts' threads at once); gemm_bf16_kernel()
 * and gemm_bf16_train() say 0 while the kernel level is below AVX-512.
 * Intel's cores run vdpbf16ps at half the rate of vfmadd231ps (an Emerald
 * Rapids, model 207: 1.31 G zmm instructions/s against 5.31 G FMAs, 12-24
 * independent chains each), so 64 FLOP an instruction give half f32 FMA's
 * FLOPs: there, without AMX, the rounded operands go through OpenBLAS's
 * sgemm (148 GF/s a core against this kernel's 80). AMD's Zen 4 / Zen 5 run
 * it at the FMA's rate (Zen 5: 184-192 GF/s a core). AMX, where the CPU
 * has it and the OS grants it, runs tdpbf16ps at ~3 TFLOP/s a core (a
 * Sapphire Rapids class Xeon, tiles in registers). $DEEPC_BF16_GEMM values
 * other than amx, dp and sgemm, or naming a kernel the CPU lacks, are
 * ignored. */
static int has_bf16, kernel, train;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
    int intel = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    intel = __builtin_cpu_is("intel");
    has_bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#endif
    const char *e = getenv("DEEPC_BF16_GEMM");
    const int dp = has_bf16, amx = dp && gemm_amx_cpu();
    kernel = amx ? GEMM_BF16_AMX : dp ? GEMM_BF16_DP : 0;
    train = amx || (dp && !intel);
    if (e && !strcmp(e, "amx") && amx) kernel = GEMM_BF16_AMX, train = 1;
    else if (e && !strcmp(e, "dp") && dp) kernel = GEMM_BF16_DP, train = 1;
    else if (e && !strcmp(e, "sgemm")) train = 0;
}

static void ready(void) { pthread_once(&once, choose); }

int gemm_bf16_ok(void) {
    ready();
    return has_bf16 && kern_get()->isa == ISA_AVX512;
}

int gemm_bf16_kernel(void) { return gemm_bf16_ok() ? kernel : 0; }

/* (tests and benchmarks: the kernel only; whether training takes gemm_bf16 stays) */
int gemm_bf16_use(int k) {
    ready();
    if (k == GEMM_BF16_AMX && has_bf16 && gemm_amx_cpu()) kernel = k;
    else if (k == GEMM_BF16_DP && has_bf16) kernel = k;
    return gemm_bf16_kernel();
}

int gemm_bf16_train(void) { return gemm_bf16_ok() && train && kernel; }

/* the packed panels, of whichever kernel runs */
size_t gemm_bf16_scratch(int M, int N, int K) {
    const size_t pa = (size_t)(M + MR - 1) / MR * MR, pb = (size_t)(N + NR - 1) / NR * NR;
    const size_t dp = (pa + pb) * bf16_pairs(K) * 4 + 64, amx = gemm_amx_scratch(M, N, K);
    return dp > amx ? dp : amx;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "kernels/bf16_kern.h"
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* pairs [p0, p1) of an A panel and a B panel into the MR x 32 tile c0 | c1 */
BF16_TARGET static inline __attribute__((always_inline)) void dp_pairs(__m512 *c0, __m512 *c1, const uint32_t *Ap,
                                                                      const uint32_t *Bp, size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(Bp + p * NR), b1 = (__m512bh)_mm512_loadu_si512(Bp + p * NR + 16);
        const uint32_t *a = Ap + p * MR;
        #pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r]);
            c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
        }
    }
}

/* C rows [i0, i0 + mr), columns [j0, j0 + nr) (+)= A panel x B panel */
BF16_TARGET static void micro(float *C, int ldc, const uint32_t *Ap, const uint32_t *Bp, size_t P, int mr, int nr,
                              int acc) {
    __m512 c0[MR], c1[MR];
    /* the tile's rows of C asked for now, written at the end: with K short (256
     * in the forward) their misses at the end cost as much as the sums */
    for (int r = 0; r < mr; r++) __builtin_prefetch(C + (size_t)r * ldc, 1, 3), __builtin_prefetch(C + (size_t)r * ldc + 16, 1, 3);
    for (int r = 0; r < MR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = _mm512_setzero_ps();
    dp_pairs(c0, c1, Ap, Bp, 0, P);
    __mmask16 m0, m1;
    bf16k_masks(nr, &m0, &m1);
    for (int r = 0; r < mr; r++) bf16k_row_out(C + (size_t)r * ldc, c0[r], c1[r], m0, m1, acc);
}

/* micro with fp8 scales: each 64-pair chunk (128 of K) summed from zero in
 * the registers, then tile += (SA SB) chunk, tile in L1 (24 more vectors
 * would not fit the registers); C (+)= tile at the end */
BF16_TARGET static void micro_fp8(float *C, int ldc, const uint32_t *Ap, const uint32_t *Bp, size_t P, int mr, int nr,
                                  int acc, const fp8_scales *s, int i0, int j0) {
    enum { CP = 64 };
    float tile[MR][NR] __attribute__((aligned(64)));
    __mmask16 m0, m1;
    bf16k_masks(nr, &m0, &m1);
    for (size_t p0 = 0, c = 0; p0 < P; p0 += CP, c++) {
        __m512 c0[MR], c1[MR];
        for (int r = 0; r < MR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = _mm512_setzero_ps();
        const size_t p1 = P - p0 < CP ? P : p0 + CP;
        dp_pairs(c0, c1, Ap, Bp, p0, p1);
        __m512 sb0, sb1;
        bf16k_fp8_sb(s, j0, c, m0, m1, &sb0, &sb1);
        for (int r = 0; r < mr; r++) bf16k_fp8_add(tile[r], s, i0 + r, c, c0[r], c1[r], sb0, sb1);
    }
    for (int r = 0; r < mr; r++)
        bf16k_row_out(C + (size_t)r * ldc, _mm512_load_ps(tile[r]), _mm512_load_ps(tile[r] + 16), m0, m1, acc);
}

static void bf16_run(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                     const fp8_scales *s, void *scratch) {
    const int PA = (M + MR - 1) / MR, PB = (N + NR - 1) / NR;
    const size_t P = bf16_pairs(K);
    uint32_t *Ap = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *Bp = Ap + (size_t)PA * MR * P;
    /* op(A) (M, K): A (M, K) row-major, or A (K, M) transposed; op(B)^T (N, K): B (N, K) when tb, else B (K, N) */
    const int lda = ta ? M : K, ldb = tb ? K : N;
    const int par = !omp_in_parallel() && (double)M * N * K > 1 << 20;
#pragma omp parallel if (par)
    {
        /* op(X) read down X's columns: by blocks of pairs, every panel; else by panels */
        const int cb = bf16_col_blocks(P);
        if (ta) {
#pragma omp for schedule(static) nowait
            for (int c = 0; c < cb; c++) bf16_pack_cols(Ap, A, lda, M, K, MR, P, c);
        } else {
#pragma omp for schedule(static) nowait
            for (int i = 0; i < PA; i++) bf16_pack_rows(Ap + (size_t)i * MR * P, A, lda, M, K, i * MR, MR, P);
        }
        if (!tb) {
#pragma omp for schedule(static)
            for (int c = 0; c < cb; c++) bf16_pack_cols(Bp, B, ldb, N, K, NR, P, c);
        } else {
#pragma omp for schedule(static)
            for (int j = 0; j < PB; j++) bf16_pack_rows(Bp + (size_t)j * NR * P, B, ldb, N, K, j * NR, NR, P);
        }
#pragma omp for schedule(static)
        for (int t = 0; t < PA * PB; t++) {
            const int i = t / PB, j = t % PB; /* A panel by A panel */
            const int mr = M - i * MR < MR ? M - i * MR : MR, nr = N - j * NR < NR ? N - j * NR : NR;
            if (s)
                micro_fp8(C + (size_t)i * MR * N + (size_t)j * NR, N, Ap + (size_t)i * MR * P, Bp + (size_t)j * NR * P, P,
                          mr, nr, acc, s, i * MR, j * NR);
            else
                micro(C + (size_t)i * MR * N + (size_t)j * NR, N, Ap + (size_t)i * MR * P, Bp + (size_t)j * NR * P, P, mr,
                      nr, acc);
        }
    }
}

/* an empty product: nothing, or C zeroed when K is 0 and not acc (1), else 0 */
static int empty(float *C, int M, int N, int K, int acc) {
    if (M <= 0 || N <= 0) return 1;
    if (K > 0) return 0;
    if (!acc)
        for (int i = 0; i < M; i++) memset(C + (size_t)i * N, 0, sizeof(float) * N);
    return 1;
}

/* both entry points: the empty shapes, then the kernel in use (s NULL: no FP8 scales) */
static void run(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                const fp8_scales *s, void *scratch) {
    if (empty(C, M, N, K, acc)) return;
    if (gemm_bf16_kernel() == GEMM_BF16_AMX) gemm_amx_run(C, A, B, M, N, K, ta, tb, acc, s, scratch);
    else bf16_run(C, A, B, M, N, K, ta, tb, acc, s, scratch);
}

void gemm_bf16(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc, void *scratch) {
    run(C, A, B, M, N, K, ta, tb, acc, NULL, scratch);
}

void gemm_bf16_fp8(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                   const fp8_scales *s, void *scratch) {
    run(C, A, B, M, N, K, ta, tb, acc, s, scratch);
}
#else
void gemm_bf16(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc, void *scratch) {
    (void)C, (void)A, (void)B, (void)M, (void)N, (void)K, (void)ta, (void)tb, (void)acc, (void)scratch;
}
void gemm_bf16_fp8(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                   const fp8_scales *s, void *scratch) {
    (void)C, (void)A, (void)B, (void)M, (void)N, (void)K, (void)ta, (void)tb, (void)acc, (void)s, (void)scratch;
}
#endif
