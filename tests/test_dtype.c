/* test_dtype.c — float32 <-> bf16 / f16 / fp8 e4m3 conversions (src/kernels/dtype.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "kernels/dtype.h"

/* every finite e4m3 value decodes to what the format defines and encodes back to itself */
static void fp8_all_values(void) {
    int finite = 0;
    for (int b = 0; b < 256; b++) {
        float f = fp8e4m3_to_f32((uint8_t)b);
        int exp = (b >> 3) & 15, man = b & 7;
        if (exp == 15 && man == 7) {
            CHECK(isnan(f), "byte 0x%02x must be NaN", b);
            continue;
        }
        double want = exp ? ldexp(1 + man / 8.0, exp - 7) : ldexp(man / 8.0, -6);
        if (b & 0x80) want = -want;
        CHECK(f == (float)want, "byte 0x%02x -> %g, want %g", b, f, want);
        uint8_t back = f32_to_fp8e4m3(f);
        if (b == 0x80) CHECK(back == 0x80, "-0 -> 0x%02x", back);
        else CHECK(back == b, "byte 0x%02x -> %g -> 0x%02x", b, f, back);
        finite++;
    }
    CHECK(finite == 254, "%d finite values", finite);
    CHECK(fp8e4m3_to_f32(0x7e) == 448.0f, "max is 448");
}

/* encoding rounds to the nearest value (ties to even) and saturates */
static void fp8_rounding(void) {
    CHECK(f32_to_fp8e4m3(1000.0f) == 0x7e, "saturate +");
    CHECK(f32_to_fp8e4m3(-1000.0f) == 0xfe, "saturate -");
    CHECK(fp8e4m3_to_f32(f32_to_fp8e4m3(1.0625f)) == 1.0f, "1.0625 is a tie between 1 and 1.125: even is 1");
    CHECK(fp8e4m3_to_f32(f32_to_fp8e4m3(1.1f)) == 1.125f, "1.1 -> 1.125");
    CHECK(fp8e4m3_to_f32(f32_to_fp8e4m3(ldexpf(1, -9))) == ldexpf(1, -9), "smallest subnormal is 2^-9");
    CHECK(fp8e4m3_to_f32(f32_to_fp8e4m3(ldexpf(1, -10))) == 0.0f, "2^-10 is a tie between 0 and 2^-9: even is 0");
    CHECK(fp8e4m3_to_f32(f32_to_fp8e4m3(ldexpf(1.5f, -10))) == ldexpf(1, -9), "0.75 * 2^-9 -> 2^-9");
    /* brute force: the result is the nearest representable value */
    for (float x = -460; x <= 460; x += 0.37f) {
        float got = fp8e4m3_to_f32(f32_to_fp8e4m3(x)), best = 0, bd = INFINITY;
        for (int b = 0; b < 256; b++) {
            float v = fp8e4m3_to_f32((uint8_t)b);
            if (!isnan(v) && fabsf(v - x) < bd) bd = fabsf(v - x), best = v;
        }
        if (fabsf(got - x) > bd) {
            CHECK(0, "%g -> %g, nearest is %g", x, got, best);
            break;
        }
    }
}

static void f16_all_values(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        if (f32_to_f16(f) != h) bad++;
    }
    CHECK(bad == 0, "%d half values do not round-trip", bad);
    CHECK(f16_to_f32(0x3c00) == 1.0f && f16_to_f32(0xc000) == -2.0f && f16_to_f32(0x0001) == ldexpf(1, -24),
          "known half values");
    CHECK(f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00, "tie to even rounds down");
    CHECK(f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02, "tie to even rounds up");
    /* the row converter (F16C where the CPU has it) gives the scalar's bits
     * for every code, NaN payloads included, from any start and length */
    uint16_t *hs = malloc(2 * 65536 + 2);
    float *row = malloc(4 * 65536 + 4);
    for (uint32_t h = 0; h < 65536; h++) hs[h + 1] = (uint16_t)(h * 40503u); /* every code once, shuffled */
    hs[0] = 0x7e01;
    int diff = 0;
    for (int start = 0; start < 2; start++) {
        f16_to_f32_n(row, hs + start, 65536 - 3 * start);
        for (int i = 0; i < 65536 - 3 * start; i++) {
            float want = f16_to_f32(hs[start + i]);
            diff += memcmp(&row[i], &want, 4) != 0;
        }
    }
    CHECK(diff == 0, "f16_to_f32_n: %d values differ from f16_to_f32", diff);
    free(hs), free(row);
}

static void bf16_values(void) {
    CHECK(bf16_to_f32(0x3f80) == 1.0f, "1.0");
    CHECK(f32_to_bf16(1.0f) == 0x3f80, "1.0 back");
    float tie;
    uint32_t u = 0x3f808000; /* exactly between 0x3f80 and 0x3f81 */
    memcpy(&tie, &u, 4);
    CHECK(f32_to_bf16(tie) == 0x3f80, "tie to even");
    u = 0x3f818000;
    memcpy(&tie, &u, 4);
    CHECK(f32_to_bf16(tie) == 0x3f82, "tie to even up");
    CHECK(isnan(bf16_to_f32(f32_to_bf16(NAN))), "NaN stays NaN");
}

int main(void) {
    RUN(fp8_all_values);
    RUN(fp8_rounding);
    RUN(f16_all_values);
    RUN(bf16_values);
    return harness_done();
}
