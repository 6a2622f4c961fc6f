/* norm.c — see norm.h. */
#include "model/norm.h"
#include <math.h>
#include <stddef.h>
#include "kernels/rvec.h"

void rmsnorm_forward(float *out, const float *x, const float *w, int T, int n, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * n;
        float *ot = out + (size_t)t * n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xt[i] * xt[i];
        float r = (float)(1.0 / sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) ot[i] = xt[i] * r * w[i];
    }
}

/* ---------------------------------------------------------------- training
 * (`omp simd` on the elementwise loops: the rows and weights never overlap,
 * which at -O2 the compiler will not check at run time, so it did not
 * vectorise them; elementwise, so the same bits) */

void rmsnorm_train_fwd(real *y, real *rstd, const real *x, const real *w, int N, int n, float eps) {
#pragma omp parallel for schedule(static) if (N * (size_t)n > 65536)
    for (int t = 0; t < N; t++) {
        const real *xt = x + (size_t)t * n;
        real *yt = y + (size_t)t * n;
        double ss = rv_sumsq(xt, n);
        real r = (real)(1.0 / sqrt(ss / n + eps));
        if (rstd) rstd[t] = r;
#pragma omp simd
        for (int i = 0; i < n; i++) yt[i] = xt[i] * r * w[i];
    }
}

void rmsnorm_bwd(real *dx, real *dw, const real *dy, const real *x, const real *rstd, const real *w, int N, int n) {
    /* dw sums over rows: rows in order, so the result does not depend on threads */
    for (int t = 0; t < N; t++) {
        const real *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
        real r = rstd[t];
        if (dw)
#pragma omp simd
            for (int i = 0; i < n; i++) dw[i] += dyt[i] * xt[i] * r;
    }
#pragma omp parallel for schedule(static) if (N * (size_t)n > 65536)
    for (int t = 0; t < N; t++) {
        const real *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
        real *dxt = dx + (size_t)t * n;
        real r = rstd[t];
        double dot = rv_dot3(dyt, w, xt, n);
        real k = (real)(dot * r * r * r / n);
#pragma omp simd
        for (int i = 0; i < n; i++) dxt[i] += r * dyt[i] * w[i] - k * xt[i];
    }
}
