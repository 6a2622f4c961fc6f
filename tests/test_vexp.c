/*
 * test_vexp.c — kernels/vexp.h: vexp8 (eight lanes) and dc_expf (one
 * element) against double exp, and the passes built on them against plain
 * loops on libm.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "kernels/vexp.h"

/* ulps between a float and the exactly rounded value of e^x */
static double ulps(float got, double want) {
    float w = (float)want;
    if (got == w) return 0;
    float up = nextafterf(w, INFINITY);
    return fabs((double)got - want) / ((double)up - (double)w);
}

static void sweep(void) {
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = -87.0f + (87.0f + 88.3f) * (float)i / (N - 1);
    for (int i = 0; i < N; i += 8) v8f_store(y + i, vexp8(v8f_load(x + i)));
    double worst = 0;
    int at = 0;
    for (int i = 0; i < N; i++) {
        double u = ulps(y[i], exp((double)x[i]));
        if (u > worst) worst = u, at = i;
        if (y[i] != dc_expf(x[i])) { /* the vector and scalar forms are the same formula */
            CHECK(0, "x=%g: vector %a, scalar %a", x[i], y[i], dc_expf(x[i]));
            break;
        }
    }
    printf("  worst %.2f ulp at x=%g\n", worst, x[at]);
    CHECK(worst <= 2.0, "dc_expf(%g) = %a is %.2f ulp from exp", x[at], y[at], worst);
    free(x), free(y);
}

static void small_args(void) {
    /* near 0, where softmaxes of close logits live: relative error, and e^0 = 1 exactly */
    CHECK(dc_expf(0.0f) == 1.0f && vexp8(v8f_set(0.0f))[3] == 1.0f, "exp(0) = %a", dc_expf(0.0f));
    double worst = 0;
    for (int i = -100000; i <= 100000; i++) {
        float v = (float)i * 1e-5f;
        double u = ulps(dc_expf(v), exp((double)v));
        worst = u > worst ? u : worst;
    }
    CHECK(worst <= 2.0, "worst %.2f ulp on [-1, 1]", worst);
}

static void edges(void) {
    CHECK(dc_expf(-INFINITY) == 0.0f, "exp(-inf) = %g", dc_expf(-INFINITY));
    /* the lanes give what one element gives, edges included */
    float e[8] = {-INFINITY, -1000.0f, -87.5f, 89.0f, INFINITY, NAN, 88.3f, -86.9f};
    v8f v = vexp8(v8f_load(e));
    for (int i = 0; i < 8; i++) {
        float s = dc_expf(e[i]);
        CHECK(memcmp(&s, &v[i], 4) == 0 || (isnan(s) && isnan(v[i])), "lane %d: exp(%g) = %g, scalar %g", i, e[i],
              v[i], s);
    }
    CHECK(dc_expf(-1000.0f) == 0.0f, "exp(-1000) = %g", dc_expf(-1000.0f));
    CHECK(dc_expf(-87.5f) == 0.0f, "exp(-87.5) = %g (flushed below -87)", dc_expf(-87.5f));
    CHECK(isinf(dc_expf(89.0f)) && dc_expf(89.0f) > 0, "exp(89) = %g", dc_expf(89.0f));
    CHECK(isinf(dc_expf(INFINITY)), "exp(inf) = %g", dc_expf(INFINITY));
    CHECK(isnan(dc_expf(NAN)), "exp(nan) = %g", dc_expf(NAN));
    CHECK(isfinite(dc_expf(88.3f)) && dc_expf(88.3f) > 1e38f, "exp(88.3) = %g", dc_expf(88.3f));
    /* sigmoid through it saturates cleanly both ways */
    CHECK(1.0f / (1.0f + dc_expf(100.0f)) == 0.0f && 1.0f / (1.0f + dc_expf(-100.0f)) == 1.0f, "sigmoid saturation");
}

/* the passes against libm loops, on rows whose length is not a multiple of 8 */
static void passes(void) {
    enum { N = 203 };
    float x[N], h3[N], y[N], a[N], d1[N], d3[N], da[N];
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) % 20000) / 1000.0f - 10.0f;
        h3[i] = (float)((s >> 20) % 2000) / 1000.0f - 1.0f;
        da[i] = (float)((s >> 8) % 2000) / 1000.0f - 1.0f;
    }
    float mx = vmax(x, N), want = x[0];
    for (int i = 1; i < N; i++) want = x[i] > want ? x[i] : want;
    CHECK(mx == want, "vmax %g, want %g", mx, want);
    double sum = vexp_shift_sum(y, x, mx, N), ws = 0, werr = 0;
    for (int i = 0; i < N; i++) {
        double e = exp((double)(x[i] - mx)); /* the float difference is the argument */
        ws += e;
        werr = fmax(werr, fabs(y[i] - e) / e);
    }
    CHECK(fabs(sum - ws) / ws < 1e-6 && werr < 3e-7, "exp-shift-sum: sum %.9g vs %.9g, worst rel %g", sum, ws, werr);
    vexp_shift_scale(y, x, mx, 0.5f, N);
    for (int i = 0; i < N; i++) {
        double e = 0.5 * exp((double)(x[i] - mx));
        werr = fmax(werr, fabs(y[i] - e) / e);
    }
    CHECK(werr < 3e-7, "exp-shift-scale worst rel %g", werr);
    double ss = 0, d3w = 0;
    for (int i = 0; i < N; i++) ss += (double)x[i] * x[i], d3w += (double)x[i] * h3[i] * da[i];
    CHECK(fabs(vsumsq_d(x, N) - ss) <= 1e-12 * ss, "sumsq %.17g vs %.17g", vsumsq_d(x, N), ss);
    CHECK(fabs(vdot3_d(x, h3, da, N) - d3w) <= 1e-12 * fabs(ss), "dot3 %.17g vs %.17g", vdot3_d(x, h3, da, N), d3w);
    /* softmax backward on a row: p = y (a distribution), d = da */
    float p[N], d[N];
    double ps = 0, pd = 0, e4 = 0;
    for (int i = 0; i < N; i++) ps += (p[i] = dc_expf(x[i] - mx));
    for (int i = 0; i < N; i++) p[i] /= (float)ps, d[i] = da[i], pd += (double)p[i] * da[i];
    vsoftmax_bwd(d, p, N, 0.5f);
    for (int i = 0; i < N; i++) e4 = fmax(e4, fabs(d[i] - p[i] * (da[i] - pd) * 0.5));
    CHECK(e4 < 1e-6, "softmax backward max abs error %g", e4);
    float q[N];
    memcpy(q, d, sizeof q);
    vscale(q, 3.0f, N);
    int same = 1;
    for (int i = 0; i < N; i++) same &= q[i] == d[i] * 3.0f;
    CHECK(same, "vscale");
    vswiglu(a, x, h3, N);
    vswiglu_bwd(d1, d3, da, x, h3, N);
    double e1 = 0, e2 = 0, e3 = 0;
    for (int i = 0; i < N; i++) {
        double h = x[i], sg = 1 / (1 + exp(-h));
        e1 = fmax(e1, fabs(a[i] - h * sg * h3[i]));
        e2 = fmax(e2, fabs(d3[i] - da[i] * h * sg));
        e3 = fmax(e3, fabs(d1[i] - da[i] * h3[i] * sg * (1 + h * (1 - sg))));
    }
    CHECK(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5, "swiglu max abs errors %g %g %g", e1, e2, e3);
}

int main(void) {
    RUN(sweep);
    RUN(small_args);
    RUN(edges);
    RUN(passes);
    return harness_done();
}
