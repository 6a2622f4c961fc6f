/* gemm.c — see gemm.h: the driver. Per pass of up to TB tokens, x is
 * packed into A panels by the threads' shares of the token groups (then a
 * barrier); the NR-row panels of W are handed out a chunk of up to NP at a
 * time (dynamic: on a shared machine a descheduled thread leaves its chunks
 * to the others; a panel's results do not depend on who computes them); per
 * chunk and KC slice the type's packer fills the thread's float32 B panels
 * in the caller's scratch and the micro-kernel runs each against the token
 * groups of a block of MC tokens. */
#include "kernels/gemm.h"
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "kernels/matvec.h"

/* the micro-kernel of each ISA_* (an AVX-512 CPU runs AVX2's on edge
 * panels), and the wide one on whole panels where the ISA has one */
static const gemm_kern_fn KERNS[ISA_N] = {gemm_kern_ref, gemm_kern_avx2, gemm_kern_avx2};
static const gemm_wide_fn WIDE[ISA_N] = {NULL, NULL, gemm_wide_avx512};

/* ... and A's packer (a copy: any ISA's gives the same floats) */
static const gemm_pack_a_fn PACKA[ISA_N] = {gemm_pack_a_ref, gemm_pack_a_avx2, gemm_pack_a_avx2};

/* token group g of ng: tokens [t0, t0 + n), the T shared out as evenly as
 * the groups allow (issue 15: 13 tokens as 5 + 4 + 4 rather than 6 + 6 + 1;
 * a tile of fewer than 4 tokens waits on the FMA latency, so 6 + 6 + 1 costs
 * 16 steps of a k where 5 + 4 + 4 costs 13). A token's sums do not depend on
 * its group. */
static void group_of(int T, int ng, int g, int *t0, int *n) {
    const int q = T / ng, e = T % ng;
    *t0 = g * q + (g < e ? g : e);
    *n = q + (g < e);
}

/* token group g (of ng) of x (T, cols) into A panel g: a[g*MR*cols + k*MR +
 * i] = x[t0+i][k] for its n tokens, zero for the MR - n slots past them */
static void pack_a(gemm_pack_a_fn pk, float *a, const float *x, int T, int cols, int ng, int g) {
    int t0, n;
    group_of(T, ng, g, &t0, &n);
    pk(a + (size_t)g * GEMM_MR * cols, x + (size_t)t0 * cols, cols, n);
}

/* a tile of fewer than NR rows (the last panel): the micro-kernel into a
 * whole tile, then its part added the way the kernel adds */
static void edge(gemm_kern_fn kern, int kc, const float *a, const float *b, float *o, size_t ldo, int acc, int mt,
                 int nr) {
    _Alignas(64) float tmp[GEMM_MR * GEMM_NR];
    kern(kc, mt, a, b, tmp, GEMM_NR, 0);
    for (int i = 0; i < mt; i++)
        for (int j = 0; j < nr; j++)
            o[(size_t)i * ldo + j] = acc ? o[(size_t)i * ldo + j] + tmp[i * GEMM_NR + j] : tmp[i * GEMM_NR + j];
}

/* panels [p0, p1) (at most GEMM_NP; rows [p0*NR, min(p1*NR, rows))) of out
 * for every token, one KC slice at a time: the slice of every panel packed
 * into b (once per call), then MC / MR token groups at a time against each
 * panel, so the block's A (MC x KC) stays in L2 and each B panel in L1 (the
 * slices of a tile added in ascending order) */
static void chunk(float *out, const float *a, const void *W, int rows, int cols, int T, int p0, int p1,
                  gemm_pack_fn pack, gemm_kern_fn kern, gemm_wide_fn wide, float *b) {
    const int ng = (T + GEMM_MR - 1) / GEMM_MR, gb = GEMM_MC / GEMM_MR;
    for (int k0 = 0; k0 < cols; k0 += GEMM_KC) {
        const int kc = cols - k0 < GEMM_KC ? cols - k0 : GEMM_KC;
        for (int p = p0; p < p1; p++)
            pack(b + (size_t)(p - p0) * GEMM_NR * GEMM_KC, W, cols, p * GEMM_NR,
                 rows - p * GEMM_NR < GEMM_NR ? rows - p * GEMM_NR : GEMM_NR, k0, kc);
        for (int g0 = 0; g0 < ng; g0 += gb) {
            const int ge = ng - g0 < gb ? ng : g0 + gb;
            for (int p = p0, pw; p < p1; p += pw) {
                const int r = p * GEMM_NR, nr = rows - r < GEMM_NR ? rows - r : GEMM_NR;
                const int w = wide && nr == GEMM_NR; /* the wide kernel: whole panels, two at once where both are */
                pw = w && p + 1 < p1 && rows - r >= 2 * GEMM_NR ? 2 : 1;
                const float *bp = b + (size_t)(p - p0) * GEMM_NR * GEMM_KC;
                for (int g = g0, gw; g < ge; g += gw) {
                    gw = w && g + 1 < ge ? 2 : 1;
                    int t0, mt, t1, mt1 = 0;
                    group_of(T, ng, g, &t0, &mt);
                    if (gw == 2) group_of(T, ng, g + 1, &t1, &mt1);
                    const float *ag = a + (size_t)g * GEMM_MR * cols + (size_t)k0 * GEMM_MR;
                    float *o = out + (size_t)t0 * rows + r;
                    if (w)
                        wide(kc, gw, pw, mt, mt1, ag, (size_t)GEMM_MR * cols, bp, (size_t)GEMM_NR * GEMM_KC, o, rows,
                             k0 > 0);
                    else if (nr == GEMM_NR) kern(kc, mt, ag, bp, o, rows, k0 > 0);
                    else edge(kern, kc, ag, bp, o, rows, k0 > 0, mt, nr);
                }
            }
        }
    }
}

/* floats of the packed A of up to TB tokens, rounded to 64 bytes (the B
 * slices after it are aligned loads) */
static size_t a_floats(int T, int cols) {
    T = T < GEMM_TB ? T : GEMM_TB;
    return ((size_t)((T + GEMM_MR - 1) / GEMM_MR) * GEMM_MR * cols + 15) & ~(size_t)15;
}

size_t gemm_abuf_floats(int T, int cols) {
    return a_floats(T, cols) + (size_t)omp_get_max_threads() * GEMM_NP * GEMM_NR * GEMM_KC;
}

/* T <= TB tokens: x packed by the threads' shares of its token groups, then
 * the chunks of panels handed out */
static void pass(float *out, const float *x, const void *W, int rows, int cols, int T, gemm_pack_fn pack,
                 gemm_kern_fn kern, gemm_wide_fn wide, gemm_pack_a_fn pk, float *abuf) {
    const int np = (rows + GEMM_NR - 1) / GEMM_NR, ng = (T + GEMM_MR - 1) / GEMM_MR;
    int nthr = (double)rows * cols * T < 1e6 ? 1 : omp_get_max_threads();
    if (nthr > np) nthr = np;
    /* chunks of up to NP panels, at least ~4 per thread to share out */
    int per = np / (4 * nthr);
    per = per < 1 ? 1 : per > GEMM_NP ? GEMM_NP : per;
    const int nch = (np + per - 1) / per;
    float *bbuf = abuf + a_floats(T, cols);
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    {
#pragma omp for schedule(static)
        for (int g = 0; g < ng; g++) pack_a(pk, abuf, x, T, cols, ng, g);
        float *b = bbuf + (size_t)omp_get_thread_num() * GEMM_NP * GEMM_NR * GEMM_KC;
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < nch; c++)
            chunk(out, abuf, W, rows, cols, T, c * per, (c + 1) * per < np ? (c + 1) * per : np, pack, kern, wide, b);
    }
}

void gemm_run(float *out, const float *x, const void *W, int rows, int cols, int T, gemm_pack_fn pack, int isa,
              float *abuf) {
    const gemm_kern_fn kern = KERNS[isa >= 0 && isa < ISA_N ? isa : ISA_REF];
    const gemm_pack_a_fn pk = PACKA[isa >= 0 && isa < ISA_N ? isa : ISA_REF];
    const gemm_wide_fn wide = WIDE[isa >= 0 && isa < ISA_N ? isa : ISA_REF];
    if (rows <= 0 || T <= 0) return;
    if (cols <= 0) { /* empty sums */
        memset(out, 0, sizeof(float) * (size_t)T * (size_t)rows);
        return;
    }
    for (int t0 = 0; t0 < T; t0 += GEMM_TB)
        pass(out + (size_t)t0 * rows, x + (size_t)t0 * cols, W, rows, cols, T - t0 < GEMM_TB ? T - t0 : GEMM_TB, pack,
             kern, wide, pk, abuf);
}
