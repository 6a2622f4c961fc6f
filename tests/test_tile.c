/* test_tile.c — the attention core's register tile (src/kernels/tile*.c):
 * the plain C oracle against a double-precision sum, and the AVX2 tile
 * against the oracle to the bit, over every row count (1..6), column count
 * (1..16), k from 0 to several hundred, A row-major and transposed (the
 * backward's P^T and dS^T), alpha and the accumulate flag; c's entries past
 * nt (masked stores) untouched; B's last row ending right before a page that
 * cannot be read (masked loads must not touch it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "base/rng.h"
#include "harness.h"
#include "kernels/cpu.h"
#include "kernels/tile.h"

#define LDC 20 /* c's row stride: 4 guard floats past the widest tile */
#define GUARD 12345.0f

typedef struct {
    int mt, nt, kc, trans, acc;
    float alpha;
    const float *a, *b;
    size_t sai, sak, sbk;
} tcase;

/* c = (acc ? c0 : 0) + alpha A B in double, rows of LDC */
static void want(const tcase *t, const float *c0, double *w) {
    for (int i = 0; i < t->mt; i++)
        for (int j = 0; j < t->nt; j++) {
            double s = 0;
            for (int k = 0; k < t->kc; k++) s += (double)t->a[i * t->sai + k * t->sak] * t->b[k * t->sbk + j];
            w[i * LDC + j] = (t->acc ? c0[i * LDC + j] : 0) + (double)t->alpha * s;
        }
}

static void run_case(const tcase *t, const tile_fn *fast, rng *r, int *bad_ref, int *bad_bits) {
    float c0[TILE_MR * LDC], cr[TILE_MR * LDC], cv[TILE_MR * LDC];
    double w[TILE_MR * LDC];
    for (int i = 0; i < TILE_MR * LDC; i++) c0[i] = (i % LDC) < t->nt ? (float)rng_normal(r) : GUARD;
    memcpy(cr, c0, sizeof c0), memcpy(cv, c0, sizeof c0);
    tile_ref(t->mt, t->nt, t->kc, t->a, t->sai, t->sak, t->b, t->sbk, cr, LDC, t->alpha, t->acc);
    want(t, c0, w);
    for (int i = 0; i < TILE_MR; i++)
        for (int j = 0; j < LDC; j++) {
            float v = cr[i * LDC + j];
            int in = i < t->mt && j < t->nt;
            double tol = 1e-5 * (sqrt((double)t->kc) + 1) * 4;
            if (in ? fabs(v - w[i * LDC + j]) > tol : memcmp(&v, &c0[i * LDC + j], sizeof v)) (*bad_ref)++;
        }
    for (int f = 0; f < 2; f++) {
        if (!fast[f]) continue;
        memcpy(cv, c0, sizeof c0);
        fast[f](t->mt, t->nt, t->kc, t->a, t->sai, t->sak, t->b, t->sbk, cv, LDC, t->alpha, t->acc);
        if (memcmp(cv, cr, sizeof cv)) bad_bits[f]++;
    }
}

static void tiles(void) {
    const tile_fn fast[2] = {kern_table(ISA_AVX2) ? tile_avx2 : NULL, kern_table(ISA_AVX512) ? tile_avx512 : NULL};
    if (!fast[0]) printf("    (no AVX2 on this CPU: the oracle only)\n");
    else if (!fast[1]) printf("    (no AVX-512 on this CPU: the oracle and AVX2)\n");
    rng r;
    rng_seed(&r, 5);
    const int KC[] = {0, 1, 7, 48, 257};
    const int maxk = 257, lda = 300;
    /* B: rows of sbk = 16 floats, the last one ending where an unreadable page starts */
    long pg = sysconf(_SC_PAGESIZE);
    size_t bbytes = ((size_t)maxk * 16 * sizeof(float) + pg - 1) / pg * pg;
    char *map = mmap(NULL, bbytes + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED, "mmap");
    if (map == MAP_FAILED) return;
    CHECK(mprotect(map + bbytes, pg, PROT_NONE) == 0, "mprotect");
    float *a = harness_randv(&r, (size_t)lda * lda);
    int cases = 0, bad_ref = 0, bad_bits[2] = {0, 0};
    for (int nt = 1; nt <= TILE_NR; nt++) {
        /* B's kc rows end at the guard page: row k at end - (kc - k) * 16 floats, its first nt read */
        for (int ki = 0; ki < 5; ki++) {
            const int kc = KC[ki];
            float *b = (float *)(map + bbytes) - (size_t)kc * 16 + (16 - nt) * (kc > 0);
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < nt; j++) b[(size_t)k * 16 + j] = (float)rng_normal(&r);
            for (int mt = 1; mt <= TILE_MR; mt++)
                for (int v = 0; v < 4; v++) {
                    tcase t = {mt, nt, kc, v & 1, v >> 1, (v & 1) ? 0.125f : 1.0f, a, b, 0, 0, 16};
                    t.sai = t.trans ? 1 : lda, t.sak = t.trans ? lda : 1;
                    run_case(&t, fast, &r, &bad_ref, bad_bits);
                    cases++;
                }
        }
    }
    printf("    %d tiles: %d off the double sum (or writing past nt); differing from the oracle's bits: AVX2 %d%s, AVX-512 %d%s\n",
           cases, bad_ref, bad_bits[0], fast[0] ? "" : " (not run)", bad_bits[1], fast[1] ? "" : " (not run)");
    CHECK(bad_ref == 0, "the oracle: %d tiles wrong", bad_ref);
    CHECK(bad_bits[0] == 0, "AVX2: %d tiles differ from the oracle", bad_bits[0]);
    CHECK(bad_bits[1] == 0, "AVX-512: %d tiles differ from the oracle", bad_bits[1]);
    free(a);
    munmap(map, bbytes + pg);
}

static void packs(void) {
    rng r;
    rng_seed(&r, 6);
    const int Ts[] = {1, 7, 8, 16, 20, 37, 256}, ws[][2] = {{32, 16}, {8, 8}, {5, 3}, {13, 11}};
    const size_t ld = 70;
    float *src = harness_randv(&r, 256 * ld);
    int bad = 0, n = 0;
    for (int ti = 0; ti < 7; ti++)
        for (int wi = 0; wi < 4; wi++) {
            const int T = Ts[ti], w0 = ws[wi][0], w1 = ws[wi][1], wa = w0 + w1;
            const size_t nf = (size_t)(T + 15) / 16 * 16 * wa;
            float *a = malloc(sizeof(float) * nf), *b = malloc(sizeof(float) * nf);
            for (size_t i = 0; i < nf; i++) a[i] = b[i] = -1; /* every float gets written */
            tile_pack_ref(a, wa, 0, src, ld, T, w0), tile_pack_ref(a, wa, w0, src + 40, ld, T, w1);
            if (kern_table(ISA_AVX2)) tile_pack_avx2(b, wa, 0, src, ld, T, w0), tile_pack_avx2(b, wa, w0, src + 40, ld, T, w1);
            else memcpy(b, a, sizeof(float) * nf);
            for (size_t i = 0; i < nf; i++) {
                size_t p = i / ((size_t)wa * 16), k = i / 16 % wa, j = p * 16 + i % 16;
                float want = j < (size_t)T ? src[j * ld + (k < (size_t)w0 ? k : 40 + k - w0)] : 0.0f;
                bad += a[i] != want;
            }
            bad += memcmp(a, b, sizeof(float) * nf) != 0;
            n++;
            free(a), free(b);
        }
    printf("    %d packings: %d wrong\n", n, bad);
    CHECK(bad == 0, "key panels: %d wrong", bad);
    free(src);
}

int main(void) {
    RUN(tiles);
    RUN(packs);
    return harness_done();
}
