/*
 * gemm_amx.c — see gemm_amx.h.
 *
 * Operands rounded to bf16 as packed (bf16_pack.h): op(A) in the row layout,
 * panels of 32 rows, per 32 of K two 16 x 32 bf16 tiles (1 KB each); op(B)
 * in the pair layout, panels of 32 columns, per pair the 32 columns' dwords
 * (a 16-pair block: two 16 x 16-dword tiles at a 128-byte stride), K padded
 * to 32 with zeros. The micro-kernel keeps a 32 x 32 block of C in the four
 * accumulator tiles (tmm0-3) and per block of 32 along K loads two A tiles
 * (tmm4-5) and two B tiles (tmm6-7) and issues four tdpbf16ps: 4 x 16 x 16
 * x 32 multiply-adds, products of bf16 exact, summed in f32 (subnormal
 * inputs and results flushed to zero, as vdpbf16ps). Blocks of C are shared
 * over the threads A panel by A panel, as gemm_bf16.c's; an A panel from
 * A's rows is packed by the thread that uses it, when it comes to it (the
 * tall activations of training, 2048 x 256, are read once and their packed
 * panel stays in L1/L2: forward 2048 x 128 x 256 528 -> see docs). Full blocks are
 * read (acc) and written in C itself by tile loads and stores; blocks at
 * C's edges go through a 32 x 32 buffer with masks. The FP8 form sums each
 * 128-long chunk of K (four blocks) from zero in the tiles, then adds it,
 * times its two scales, into a 32 x 32 f32 block in L1.
 *
 * Each thread that runs the micro-kernel loads the tile configuration
 * (ldtilecfg: eight 16 x 64-byte tiles) and releases the tiles after.
 */
#include "kernels/gemm_amx.h"
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "kernels/bf16_pack.h"

enum { MB = 32, NB = 32 }; /* the block of C a micro-kernel call keeps in the tiles */

size_t gemm_amx_scratch(int M, int N, int K) {
    const size_t KB = (size_t)bf16_tile_blocks(K), pa = (size_t)(M + MB - 1) / MB, pb = (size_t)(N + NB - 1) / NB;
    return (pa * KB * BF16_TILE_BLOCK + pb * NB * KB * 16) * 4 + 64;
}

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include "kernels/bf16_kern.h"
#include <unistd.h>

/* asked once (pthread_once: the first call may come from threads at once) */
static int amx_usable;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static void amx_ask(void) {
    unsigned a, b, c, d;
    /* cpuid 7.0 edx: bit 22 AMX-BF16, bit 24 AMX-TILE; ebx bit 16 AVX512F (the packers' and the edges' code) */
    int ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1) && (d >> 24 & 1) && (b >> 16 & 1);
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): Linux 5.16+ */
    amx_usable = ok && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}
int gemm_amx_cpu(void) {
    pthread_once(&amx_once, amx_ask);
    return amx_usable;
}

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

AMX_TARGET static void tiles_on(void) {
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    _tile_loadconfig(&c);
}

/* tmm0-3 += the A panel's and B panel's blocks [b0, b1) (tile numbers are
 * immediates: a macro, not a function taking them) */
#define DP_BLOCKS(Ap, Bp, b0, b1)                                                                                   \
    for (int b_ = (b0); b_ < (b1); b_++) {                                                                          \
        _tile_loadd(4, (Ap) + (size_t)b_ * BF16_TILE_BLOCK, 64);                                                                \
        _tile_loadd(5, (Ap) + (size_t)b_ * BF16_TILE_BLOCK + BF16_TILE_BLOCK / 2, 64);                                                          \
        _tile_loadd(6, (Bp) + (size_t)b_ * BF16_TILE_BLOCK, 128);                                                               \
        _tile_loadd(7, (Bp) + (size_t)b_ * BF16_TILE_BLOCK + 16, 128);                                                          \
        _tile_dpbf16ps(0, 4, 6);                                                                                    \
        _tile_dpbf16ps(1, 4, 7);                                                                                    \
        _tile_dpbf16ps(2, 5, 6);                                                                                    \
        _tile_dpbf16ps(3, 5, 7);                                                                                    \
    }

AMX_TARGET static inline __attribute__((always_inline)) void tiles_zero(void) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
}

/* the four accumulators into a 32 x 32 buffer */
AMX_TARGET static inline __attribute__((always_inline)) void tiles_to(float buf[MB][NB]) {
    _tile_stored(0, buf[0], NB * 4);
    _tile_stored(1, buf[0] + 16, NB * 4);
    _tile_stored(2, buf[16], NB * 4);
    _tile_stored(3, buf[16] + 16, NB * 4);
}

/* buf's rows [0, mr), columns [0, nr) into C (added to it when acc) */
AMX_TARGET static void block_out(float *C, int ldc, float buf[MB][NB], int mr, int nr, int acc) {
    __mmask16 m0, m1;
    bf16k_masks(nr, &m0, &m1);
    for (int r = 0; r < mr; r++)
        bf16k_row_out(C + (size_t)r * ldc, _mm512_load_ps(buf[r]), _mm512_load_ps(buf[r] + 16), m0, m1, acc);
}

/* C rows [0, mr), columns [0, nr) (+)= A panel x B panel, KB blocks */
AMX_TARGET static void micro(float *C, int ldc, const uint32_t *Ap, const uint32_t *Bp, int KB, int mr, int nr, int acc) {
    const size_t ld = (size_t)ldc * 4;
    if (mr == MB && nr == NB) { /* in C itself */
        if (acc) {
            _tile_loadd(0, C, ld);
            _tile_loadd(1, C + 16, ld);
            _tile_loadd(2, C + (size_t)16 * ldc, ld);
            _tile_loadd(3, C + (size_t)16 * ldc + 16, ld);
        } else
            tiles_zero();
        DP_BLOCKS(Ap, Bp, 0, KB);
        _tile_stored(0, C, ld);
        _tile_stored(1, C + 16, ld);
        _tile_stored(2, C + (size_t)16 * ldc, ld);
        _tile_stored(3, C + (size_t)16 * ldc + 16, ld);
        return;
    }
    float buf[MB][NB] __attribute__((aligned(64)));
    tiles_zero();
    DP_BLOCKS(Ap, Bp, 0, KB);
    tiles_to(buf);
    block_out(C, ldc, buf, mr, nr, acc);
}

/* micro with fp8 scales: per 128 of K (4 blocks) the tiles from zero, then
 * sum += (SA SB) chunk in a 32 x 32 f32 block */
AMX_TARGET static void micro_fp8(float *C, int ldc, const uint32_t *Ap, const uint32_t *Bp, int KB, int mr, int nr,
                                 int acc, const fp8_scales *s, int i0, int j0) {
    float buf[MB][NB] __attribute__((aligned(64))), sum[MB][NB] __attribute__((aligned(64)));
    __mmask16 m0, m1;
    bf16k_masks(nr, &m0, &m1);
    for (int b0 = 0, c = 0; b0 < KB; b0 += 4, c++) {
        tiles_zero();
        DP_BLOCKS(Ap, Bp, b0, KB - b0 < 4 ? KB : b0 + 4);
        tiles_to(buf);
        __m512 sb0, sb1;
        bf16k_fp8_sb(s, j0, (size_t)c, m0, m1, &sb0, &sb1);
        for (int r = 0; r < mr; r++)
            bf16k_fp8_add(sum[r], s, i0 + r, (size_t)c, _mm512_load_ps(buf[r]), _mm512_load_ps(buf[r] + 16), sb0, sb1);
    }
    block_out(C, ldc, sum, mr, nr, acc);
}

/* a thread's share of C's blocks, A panel by A panel (an orphaned omp for:
 * called from gemm_amx_run's region); the tiles configured for it and
 * released after. Its own function with the AMX target, so that the
 * compiler's outlined region holds no tile code. fuse: op(A) from A's rows,
 * each panel packed when the thread comes to it, into the thread's slot */
AMX_TARGET static void blocks(float *C, const float *A, int lda, uint32_t *Ap, const uint32_t *Bp, int M, int N, int K,
                              int acc, const fp8_scales *s, int fuse) {
    const int KB = bf16_tile_blocks(K), PA = (M + MB - 1) / MB, PB = (N + NB - 1) / NB;
    const size_t Pst = (size_t)KB * 16;
    tiles_on();
    uint32_t *mine = Ap + (size_t)omp_get_thread_num() * KB * BF16_TILE_BLOCK;
    int have = -1;
#pragma omp for schedule(static)
    for (int t = 0; t < PA * PB; t++) {
        const int i = t / PB, j = t % PB;
        const int mr = M - i * MB < MB ? M - i * MB : MB, nr = N - j * NB < NB ? N - j * NB : NB;
        float *c = C + (size_t)i * MB * N + (size_t)j * NB;
        const uint32_t *a = Ap + (size_t)i * KB * BF16_TILE_BLOCK, *b = Bp + (size_t)j * NB * Pst;
        if (fuse) {
            if (i != have) bf16_pack_tiles_rows(mine, A, lda, M, K, i), have = i;
            a = mine;
        }
        if (s) micro_fp8(c, N, a, b, KB, mr, nr, acc, s, i * MB, j * NB);
        else micro(c, N, a, b, KB, mr, nr, acc);
    }
    _tile_release();
}

void gemm_amx_run(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                             const fp8_scales *s, void *scratch) {
    const int KB = bf16_tile_blocks(K), PA = (M + MB - 1) / MB, PB = (N + NB - 1) / NB;
    const size_t Pst = (size_t)KB * 16; /* B's pairs a panel, K padded to 32 */
    uint32_t *Ap = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *Bp = Ap + (size_t)PA * KB * BF16_TILE_BLOCK;
    const int lda = ta ? M : K, ldb = tb ? K : N;
    /* threads where each has some 4M multiply-adds (~10 us here) or more */
    const int par = !omp_in_parallel() && (double)M * N * K > 1 << 23;
#pragma omp parallel if (par)
    {
        /* op(A) from A's rows: each thread packs the A panel it works on as
         * it comes to it, into its own slot (the panel stays in L1/L2, not
         * written to memory and read back), where the slots fit */
        const int fuse = !ta && omp_get_num_threads() <= PA;
        if (ta) {
#pragma omp for schedule(static) nowait
            for (int b = 0; b < KB; b++) bf16_pack_tiles_cols(Ap, A, lda, M, K, b);
        } else if (!fuse) {
#pragma omp for schedule(static) nowait
            for (int i = 0; i < PA; i++) bf16_pack_tiles_rows(Ap + (size_t)i * KB * BF16_TILE_BLOCK, A, lda, M, K, i);
        }
        if (!tb) {
            const int cb = bf16_col_blocks(Pst);
#pragma omp for schedule(static)
            for (int c = 0; c < cb; c++) bf16_pack_cols(Bp, B, ldb, N, K, NB, Pst, c);
        } else {
#pragma omp for schedule(static)
            for (int j = 0; j < PB; j++) bf16_pack_rows(Bp + (size_t)j * NB * Pst, B, ldb, N, K, j * NB, NB, Pst);
        }
        blocks(C, A, lda, Ap, Bp, M, N, K, acc, s, fuse);
    }
}
#else
int gemm_amx_cpu(void) { return 0; }
void gemm_amx_run(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, int acc,
                  const fp8_scales *s, void *scratch) {
    (void)C, (void)A, (void)B, (void)M, (void)N, (void)K, (void)ta, (void)tb, (void)acc, (void)s, (void)scratch;
}
#endif
