/*
 * test_fp8_block.c — FP8 e4m3 weights with block scales (src/kernels/fp8_block.c): every
 * code through each decoder (the row conversion and each ISA's kernel)
 * against the e4m3fn definition (dtype.c, itself checked code by code in
 * test_dtype.c); quantise / dequantise round trips against the block layout
 * the official weight_scale_inv defines (weight = e4m3(code) * scale_inv[r /
 * bm, c / bn], partial edge blocks); the official layout to the in-memory
 * rows of blocks and back without loss; --dtype fp8's quantiser giving the
 * official 128x128 scales.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "harness.h"
#include "kernels/cpu.h"
#include "kernels/dtype.h"
#include "kernels/fp8_block.h"
#include "kernels/matmul.h"

/* two rows of one block each: codes 0..127 and 128..255, scale d; NaN codes
 * (0x7f, 0xff) replaced by 0 */
static void all_codes(block_fp8 *b, float d) {
    for (int r = 0; r < 2; r++) {
        b[r].d = d;
        for (int i = 0; i < QK_FP8; i++) {
            int c = r * 128 + i;
            b[r].qs[i] = (uint8_t)((c & 0x7f) == 0x7f ? 0 : c);
        }
    }
}

/* every code decodes as the definition says: fp8_to_f32_row, and each ISA's
 * kernel multiplying by one-hot activations (exact: one product a sum) */
static void decode_all_codes(void) {
    block_fp8 b[2];
    const float d = 0.375f; /* a scale with bits below the top: the product stays exact */
    all_codes(b, d);
    float row[2 * QK_FP8];
    fp8_to_f32_row(b, row, 2 * QK_FP8);
    int ok = 1;
    for (int c = 0; c < 256; c++) {
        float want = (c & 0x7f) == 0x7f ? 0 : d * fp8e4m3_to_f32((uint8_t)c);
        ok &= row[c] == want;
    }
    CHECK(ok, "fp8_to_f32_row differs from the e4m3 definition");
    float nan_row[QK_FP8];
    block_fp8 n = {1.0f, {0}};
    n.qs[3] = 0x7f, n.qs[9] = 0xff;
    fp8_to_f32_row(&n, nan_row, QK_FP8);
    CHECK(isnan(nan_row[3]) && isnan(nan_row[9]) && nan_row[0] == 0, "0x7f and 0xff decode to NaN");
    float *x = calloc((size_t)QK_FP8 * QK_FP8, sizeof(float)), out[2 * QK_FP8];
    for (int t = 0; t < QK_FP8; t++) x[(size_t)t * QK_FP8 + t] = 1.0f;
    for (int isa = ISA_REF; isa <= ISA_AVX512; isa++) {
        const kern *k = kern_table(isa);
        if (!k) continue;
        kern_mv(k, MAT_FP8)(out, 2, b, QK_FP8, 0, 2, x, QK_FP8); /* out[t][r] = value of code r*128 + t */
        ok = 1;
        for (int t = 0; t < QK_FP8; t++)
            for (int r = 0; r < 2; r++) ok &= out[t * 2 + r] == row[r * 128 + t];
        CHECK(ok, "%s: the fp8 kernel decodes some code differently", k->name);
        printf("    %-6s fp8 kernel: all 254 finite codes (subnormals, +-448, +-0) decode exactly\n", k->name);
    }
    free(x);
}

/* the largest e4m3 step at or below |v| (scaled values): half of it bounds the rounding */
static double half_step(double v) {
    v = fabs(v);
    if (v < ldexp(1, -6)) return ldexp(1, -10);   /* subnormals: steps of 2^-9 */
    int e;
    frexp(v, &e);                                  /* v in [2^(e-1), 2^e) */
    return ldexp(1, e - 1 - 3) / 2;
}

/* official layout: scale_inv = amax / 448 of each (bm, bn) block, partial
 * edges included; each value within half an e4m3 step of the original */
static void official_round_trip(void) {
    const int SH[][4] = {{300, 200, 128, 128}, {129, 257, 128, 128}, {56, 88, 16, 16}, {1, 5, 128, 128}, {7, 130, 4, 64}};
    rng r;
    rng_seed(&r, 21);
    for (size_t s = 0; s < sizeof SH / sizeof *SH; s++) {
        int R = SH[s][0], C = SH[s][1], bm = SH[s][2], bn = SH[s][3];
        int sr = (R + bm - 1) / bm, sc = (C + bn - 1) / bn;
        float *w = malloc(sizeof(float) * R * C), *y = malloc(sizeof(float) * R * C), *si = malloc(sizeof(float) * sr * sc);
        uint8_t *q = malloc((size_t)R * C);
        for (int i = 0; i < R * C; i++) w[i] = rng_normal(&r) * (i % 7 == 0 ? 1e-3f : 0.02f);
        if (R > 60) for (int c = 0; c < C; c++) w[60 * C + c] = 0; /* a zero row */
        fp8_quantize_official(w, R, C, bm, bn, q, si);
        fp8_dequantize_official(q, si, R, C, bm, bn, y);
        int ok_scale = 1, ok_val = 1, max_hit = 1;
        for (int g = 0; g < sr; g++)
            for (int j = 0; j < sc; j++) {
                float amax = 0;
                int has448 = 0;
                for (int rr = g * bm; rr < R && rr < (g + 1) * bm; rr++)
                    for (int cc = j * bn; cc < C && cc < (j + 1) * bn; cc++) {
                        amax = fmaxf(amax, fabsf(w[rr * C + cc]));
                        has448 |= (q[rr * C + cc] & 0x7f) == 0x7e;
                        double sv = w[rr * C + cc] / (double)si[g * sc + j];
                        ok_val &= si[g * sc + j] == 0 ? y[rr * C + cc] == 0
                                                      : fabs(y[rr * C + cc] - w[rr * C + cc]) <=
                                                            half_step(sv) * si[g * sc + j] * (1 + 1e-6);
                    }
                ok_scale &= si[g * sc + j] == amax / 448.0f;
                max_hit &= amax == 0 || has448;
            }
        CHECK(ok_scale, "%dx%d blocks %dx%d: scale_inv is not amax/448 of each block", R, C, bm, bn);
        CHECK(ok_val, "%dx%d blocks %dx%d: a value beyond half an e4m3 step", R, C, bm, bn);
        CHECK(max_hit, "%dx%d: each block's largest value must take code +-448", R, C);
        double num = 0, den = 0;
        for (int i = 0; i < R * C; i++) num += (y[i] - w[i]) * (double)(y[i] - w[i]), den += (double)w[i] * w[i];
        printf("    official %3dx%-3d blocks %3dx%-3d (%dx%d scales): round trip NMSE %.1e\n", R, C, bm, bn, sr, sc,
               num / den);
        CHECK(num / den < 2e-3, "NMSE %g", num / den);
        free(w), free(y), free(si), free(q);
    }
}

/* official (bm x 128 blocks) -> rows of blocks -> float32: the same floats
 * as the official dequantisation, codes untouched; and mat_convert to fp8
 * (the --dtype fp8 path) writes what the official 128x128 quantiser gives */
static void official_to_rows(void) {
    rng r;
    rng_seed(&r, 22);
    const int R = 300, C = 384, BMS[] = {128, 1, 7};
    float *w = malloc(sizeof(float) * R * C), *a = malloc(sizeof(float) * R * C), *b = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R * C; i++) w[i] = rng_normal(&r) * 0.05f;
    uint8_t *q = malloc((size_t)R * C);
    float *si = malloc(sizeof(float) * R * 3);
    block_fp8 *rows = malloc(mat_type_bytes(MAT_FP8, R, C)), *conv = malloc(mat_type_bytes(MAT_FP8, R, C));
    for (size_t k = 0; k < sizeof BMS / sizeof *BMS; k++) {
        int bm = BMS[k];
        fp8_quantize_official(w, R, C, bm, 128, q, si);
        fp8_dequantize_official(q, si, R, C, bm, 128, a);
        fp8_from_official(q, si, 0, R, C, bm, rows);
        mat M = {(float *)(void *)rows, MAT_FP8, R, C};
        for (int i = 0; i < R; i++) mat_row_f32(&M, i, b + (size_t)i * C);
        CHECK(!memcmp(a, b, sizeof(float) * R * C), "bm %d: rows of blocks dequantise differently", bm);
        int same = 1;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C / 128; j++) same &= !memcmp(rows[i * 3 + j].qs, q + (size_t)i * C + 128 * j, 128);
        CHECK(same, "bm %d: codes changed", bm);
    }
    /* bm = 128: mat_convert's fp8 is the official quantiser in rows of blocks */
    fp8_quantize_official(w, R, C, 128, 128, q, si);
    fp8_from_official(q, si, 0, R, C, 128, rows);
    mat F = {w, MAT_F32, R, C};
    CHECK(mat_convert(&F, MAT_FP8, conv) == 1, "mat_convert fp8");
    CHECK(!memcmp(rows, conv, mat_type_bytes(MAT_FP8, R, C)), "mat_convert fp8 differs from the official 128x128 blocks");
    CHECK(mat_type_bytes(MAT_FP8, 3, 200) == 0 && mat_type_bytes(MAT_FP8, 3, 256) == 3 * 2 * 132,
          "fp8 rows are whole 128-blocks of 132 bytes");
    free(w), free(a), free(b), free(q), free(si), free(rows), free(conv);
}

/* the quantiser's codes are f32_to_fp8e4m3(w / scale) value for value
 * (fp8_block.c encodes 8 at a time where the CPU has AVX2): blocks whose
 * amax is 448 (scale 1) holding every kind of case, the e4m3 ties to even
 * (normal and subnormal), values near 448 and past it, the subnormal edge,
 * signed zeros and a NaN; blocks of random bit patterns; a block with an
 * infinity (scale infinite: NaN and zero codes); a partial last block */
static void codes_match_scalar(void) {
    enum { R = 7, C = 300 }; /* blocks of 128: two whole and one of 44 a row */
    rng r;
    rng_seed(&r, 23);
    float *w = malloc(sizeof(float) * R * C), si[1 * 3];
    uint8_t *q = malloc((size_t)R * C);
    const float edge[] = {1.0625f, 1.1875f, -1.0625f, 3.25f, 0x1p-10f, 3 * 0x1p-10f, -5 * 0x1p-10f, 0x1p-6f,
                          0x1.fp-7f, 0x1.ep-7f, 0x1.dp-7f, 440.0f, 444.0f, 447.9f, -446.0f, 416.0f, 424.0f, 0.0f,
                          -0.0f, 0x1p-12f, 15.5f, 0.0146484375f, 1e-20f, -1e-30f};
    const int ne = sizeof edge / sizeof *edge;
    for (int i = 0; i < R * C; i++) {
        const int row = i / C, col = i % C;
        float v;
        if (row < 2) v = col % 64 == 0 ? (row ? -448.0f : 448.0f) : col % 3 ? edge[(col + row) % ne] : (rng_uniform(&r) - 0.5f) * 800;
        else if (row == 6) v = (rng_uniform(&r) - 0.5f) * 0x1p-138f; /* amax / 448 a subnormal: x / s past 448 (saturation) */
        else {
            uint32_t b = (uint32_t)rng_u64(&r) & 0x87ffffffu; /* exponents up to 2^16 and their negatives */
            b = b % 3 == 0 ? b | 0x38000000u : b;
            memcpy(&v, &b, 4);
        }
        w[i] = v;
    }
    w[1 * C + 72] = NAN; /* left out of the amax, code 0x7f (in the lane of the block's last 448) */
    w[3 * C + 130] = INFINITY; /* its block's scale is infinite */
    int bad = 0, n = 0, sat = 0;
    for (int g = 0; g < R; g++) { /* one row a block row (bm 1): each row's three blocks */
        fp8_quantize_official(w + (size_t)g * C, 1, C, 1, 128, q + (size_t)g * C, si);
        if (g == 3) CHECK(isinf(si[1]), "an infinite amax must give an infinite scale, got %a", si[1]);
        for (int b = 0; b < 3; b++) { /* the scale: amax / 448, NaNs left out */
            float am = 0;
            for (int c = 128 * b; c < C && c < 128 * (b + 1); c++) am = fabsf(w[g * C + c]) > am ? fabsf(w[g * C + c]) : am;
            CHECK(si[b] == am / 448.0f, "row %d block %d: scale %a, amax / 448 is %a", g, b, si[b], am / 448.0f);
        }
        for (int c = 0; c < C; c++, n++) {
            sat += si[c / 128] > 0 && fabsf(w[g * C + c] / si[c / 128]) > 448.0f;
            const float sc = si[c / 128];
            const uint8_t want = sc > 0 ? f32_to_fp8e4m3(w[g * C + c] / sc) : 0;
            if (q[g * C + c] != want && bad++ < 5)
                printf("    row %d col %d: %a / %a -> 0x%02x, scalar 0x%02x\n", g, c, w[g * C + c], sc, q[g * C + c], want);
        }
    }
    printf("    %d codes against f32_to_fp8e4m3 (%d past 448: saturated), %d differ\n", n, sat, bad);
    CHECK(sat > 0, "no value saturated: the test lost its subnormal-scale row");
    CHECK(bad == 0, "%d codes differ from the scalar conversion", bad);
    free(w), free(q);
}

int main(void) {
    RUN(decode_all_codes);
    RUN(official_round_trip);
    RUN(official_to_rows);
    RUN(codes_match_scalar);
    return harness_done();
}
