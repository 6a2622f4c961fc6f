/*
 * test_quant_types.c — src/kernels/ggml_types.c: every GGUF block type
 * round-trips random data within its error bound (relative RMS error,
 * printed), block sizes match the type table, and hand-packed blocks
 * dequantise to the values ggml's layouts give them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "kernels/dtype.h"
#include "kernels/ggml_types.h"

/* relative RMS error bounds on Gaussian data (with a few outliers) */
static const struct {
    int type;
    double bound;
} CASES[] = {
    {GG_F32, 0},       {GG_F16, 1e-3},    {GG_BF16, 5e-3},   {GG_Q8_0, 0.008}, {GG_Q8_K, 0.015},
    {GG_Q6_K, 0.025},  {GG_Q5_0, 0.065},  {GG_Q5_1, 0.045},  {GG_Q5_K, 0.045}, {GG_Q4_0, 0.125},
    {GG_Q4_1, 0.09},   {GG_Q4_K, 0.09},   {GG_Q3_K, 0.2},    {GG_Q2_K, 0.4},   {GG_IQ4_NL, 0.1},
    {GG_IQ4_XS, 0.1},
};

static void fill(float *x, int n, uint64_t seed) {
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) x[i] = rng_normal(&r) * 0.02f + (i % 97 == 0 ? 0.1f : 0.0f);
}

static void round_trip(void) {
    const int n = 256 * 64;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    void *q = malloc(gg_row_bytes(GG_F32, n));
    fill(x, n, 7);
    double ref = 0;
    for (int i = 0; i < n; i++) ref += (double)x[i] * x[i];
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        int t = CASES[c].type;
        CHECK(gg_can_quantize(t) && gg_can_dequantize(t), "%s can round-trip", gg_type_name(t));
        CHECK(gg_row_bytes(t, n) == (size_t)n / gg_blck(t) * gg_type_size(t), "%s row bytes", gg_type_name(t));
        memset(q, 0xAB, gg_row_bytes(GG_F32, n));
        gg_quantize(t, x, q, n);
        gg_dequantize(t, q, y, n);
        double e = 0, mx = 0;
        for (int i = 0; i < n; i++) {
            double d = (double)y[i] - x[i];
            e += d * d;
            mx = fmax(mx, fabs(d));
        }
        double rel = sqrt(e / ref);
        printf("    %-5s %6.2f bits/value  rel. RMS error %.5f (bound %.3f)  max abs %.2e\n", gg_type_name(t),
               8.0 * gg_type_size(t) / gg_blck(t), rel, CASES[c].bound, mx);
        CHECK(rel <= CASES[c].bound, "%s: error %.5f above %.3f", gg_type_name(t), rel, CASES[c].bound);
        /* quantising the dequantised values again changes little (the stored grid is stable) */
        gg_quantize(t, y, q, n);
        float *z = malloc(sizeof(float) * n);
        gg_dequantize(t, q, z, n);
        double e2 = 0;
        for (int i = 0; i < n; i++) e2 += ((double)z[i] - y[i]) * ((double)z[i] - y[i]);
        CHECK(sqrt(e2 / ref) <= CASES[c].bound, "%s: requantising moved it by %.5f", gg_type_name(t), sqrt(e2 / ref));
        free(z);
    }
    /* all-zero and constant rows stay exact and finite */
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        int t = CASES[c].type;
        for (int i = 0; i < 256; i++) x[i] = 0;
        gg_quantize(t, x, q, 256);
        gg_dequantize(t, q, y, 256);
        int ok = 1;
        for (int i = 0; i < 256; i++) ok &= y[i] == 0;
        CHECK(ok, "%s: zeros do not round-trip", gg_type_name(t));
    }
    free(x), free(y), free(q);
}

/* hand-packed blocks: the bit positions of ggml's layouts */
static void layouts(void) {
    float y[256];
    block_q4_0 a = {f32_to_f16(0.5f), {0}};
    a.qs[3] = 0x2F; /* x[3] = (15-8)*0.5, x[19] = (2-8)*0.5 */
    gg_dequantize(GG_Q4_0, &a, y, 32);
    CHECK(y[3] == 3.5f && y[19] == -3.0f && y[0] == -4.0f, "q4_0: %g %g %g", y[3], y[19], y[0]);

    block_q5_0 b5;
    memset(&b5, 0, sizeof b5);
    b5.d = f32_to_f16(1.0f);
    b5.qh[0] = 0x01;          /* bit 0: high bit of x[0] */
    b5.qh[2] = 0x02;          /* bit 17: high bit of x[17] */
    gg_dequantize(GG_Q5_0, &b5, y, 32);
    CHECK(y[0] == 0 && y[1] == -16 && y[17] == 0, "q5_0: %g %g %g", y[0], y[1], y[17]);

    block_q4_K k;
    memset(&k, 0, sizeof k);
    k.d = f32_to_f16(1.0f);
    k.dmin = f32_to_f16(1.0f);
    k.scales[0] = 2;          /* sub-block 0 scale 2 */
    k.scales[4] = 1;          /* sub-block 0 min 1 */
    k.scales[8] = 0x53;       /* sub-block 4: scale 3 (low) min 5 (low) */
    k.scales[0] |= 1 << 6;    /* sub-block 4 scale high bits: 1 -> 3 + 16 = 19 */
    k.qs[0] = 0x74;           /* x[0] = 2*4 - 1; x[32] = 0*7 - 0 (sub-block 1: zero scale/min) */
    k.qs[64] = 0x01;          /* x[128] = 19*1 - 5 */
    gg_dequantize(GG_Q4_K, &k, y, 256);
    CHECK(y[0] == 7 && y[32] == 0 && y[128] == 14, "q4_K: %g %g %g", y[0], y[32], y[128]);

    block_q6_K s;
    memset(&s, 0, sizeof s);
    s.d = f32_to_f16(1.0f);
    for (int j = 0; j < 16; j++) s.scales[j] = (int8_t)(j + 1);
    s.ql[0] = 0x21;           /* x[0]: low 1, x[64]: low 2 */
    s.qh[0] = 0x02 | 0x30;    /* x[0] high 2 -> 33; x[64] high 3 -> 50 */
    gg_dequantize(GG_Q6_K, &s, y, 256);
    CHECK(y[0] == 1 * (33 - 32) && y[64] == 5 * (50 - 32) && y[32] == 3 * -32, "q6_K: %g %g %g", y[0], y[64], y[32]);

    /* the IQ4 codebook: -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 */
    block_iq4_nl n = {f32_to_f16(0.5f), {0}};
    n.qs[3] = 0x8E; /* x[3] = 0.5 * 89, x[19] = 0.5 * 1; x[0] = 0.5 * -127 */
    gg_dequantize(GG_IQ4_NL, &n, y, 32);
    CHECK(y[3] == 44.5f && y[19] == 0.5f && y[0] == -63.5f, "iq4_nl: %g %g %g", y[3], y[19], y[0]);

    block_iq4_xs xs;
    memset(&xs, 0, sizeof xs);
    xs.d = f32_to_f16(1.0f);
    xs.scales_l[0] = 0x01;            /* sub-block 0: low 4 bits 1 */
    xs.scales_l[1] = 0x50;            /* sub-block 3: low 4 bits 5 */
    xs.scales_h = 2 | 1 << 6;         /* sub-block 0: high 2 -> 33 (scale 1); 3: high 1 -> 21 (scale -11) */
    xs.qs[0] = 0xF0;                  /* x[0] = 1 * -127, x[16] = 1 * 113 */
    xs.qs[16 * 3 + 2] = 0x09;         /* x[98] = -11 * 13, x[114] = -11 * -127 */
    xs.scales_l[3] |= 0x70;           /* sub-block 7: low 4 bits 7, */
    xs.scales_h |= 3 << 14;           /* high 3 -> 55 (scale 23) */
    xs.qs[16 * 7 + 15] = 0xA0;        /* x[239] = 23 * -127, x[255] = 23 * 25 */
    gg_dequantize(GG_IQ4_XS, &xs, y, 256);
    CHECK(y[0] == -127 && y[16] == 113 && y[98] == -143 && y[114] == 1397 && y[32] == -32 * -127 &&
              y[239] == 23 * -127 && y[255] == 23 * 25,
          "iq4_xs: %g %g %g %g %g %g %g", y[0], y[16], y[98], y[114], y[32], y[239], y[255]);
}

static void names(void) {
    CHECK(gg_type_parse("q4_k") == GG_Q4_K && gg_type_parse("Q8_0") == GG_Q8_0 && gg_type_parse("bf16") == GG_BF16,
          "parse");
    CHECK(gg_type_parse("q4_x") == -1 && gg_type_size(5) == 0 && gg_row_bytes(GG_Q4_K, 100) == 0, "unknown types");
    CHECK(gg_row_bytes(GG_Q6_K, 512) == 420 && gg_row_bytes(GG_BF16, 3) == 6, "row bytes");
}

/* oracle: dequantise everything, then the first value that is not finite */
static int64_t first_bad_dequantised(int t, const void *q, float *y, int n) {
    gg_dequantize(t, q, y, n);
    for (int i = 0; i < n; i++)
        if (!isfinite(y[i])) return i;
    return -1;
}

/* gg_first_nonfinite (f16 scales only for the block types, exponent bits
 * for the halves) equals the dequantise-and-scan oracle whatever two bytes
 * of a block are made an f16 / bf16 infinity or NaN, for every type: the
 * scales' places found, the index of the first bad value given, and no
 * false alarm from quantised values that merely look like one */
static void nonfinite_scales(void) {
    const int n = 256 * 8;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    uint8_t *q = malloc(gg_row_bytes(GG_F32, n));
    fill(x, n, 11);
    static const uint16_t PAT[] = {0x7c00, 0xfe00, 0x7f80, 0x7fc1};
    int cases = 0, bad = 0, found = 0;
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        int t = CASES[c].type, size = gg_type_size(t), blk = gg_blck(t);
        gg_quantize(t, x, q, n);
        CHECK(gg_first_nonfinite(t, q, n) == -1, "%s: clean data flagged", gg_type_name(t));
        size_t at = (size_t)size * (5 % (n / blk)); /* a block (or value) inside */
        for (int k = 0; k + 2 <= (blk == 1 ? 2 : size); k++)
            for (size_t p = 0; p < sizeof PAT / sizeof *PAT; p++) {
                uint8_t keep[2];
                memcpy(keep, q + at + k, 2);
                memcpy(q + at + k, &PAT[p], 2);
                int64_t want = first_bad_dequantised(t, q, y, n), got = gg_first_nonfinite(t, q, n);
                cases++, found += want >= 0;
                if (got != want && bad++ < 5)
                    printf("    %s byte %d of block 5 = %04x: got %lld, want %lld\n", gg_type_name(t), k, PAT[p],
                           (long long)got, (long long)want);
                memcpy(q + at + k, keep, 2);
            }
    }
    printf("    %d pokes over %zu types, %d made a value non-finite: %d mismatches\n", cases,
           sizeof CASES / sizeof *CASES, found, bad);
    CHECK(bad == 0 && found > 0, "%d of %d pokes disagree with the oracle", bad, cases);
    free(x), free(y), free(q);
}

int main(void) {
    RUN(round_trip);
    RUN(nonfinite_scales);
    RUN(layouts);
    RUN(names);
    return harness_done();
}
