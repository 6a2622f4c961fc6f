/* norm.c — see norm.h. */
#include "model/norm.h"
#include <math.h>
#include <omp.h>
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

void rmsnorm_row_fwd(real *y, real *rstd, const real *x, const real *w, int n, float eps) {
    double ss = rv_sumsq(x, n);
    real r = (real)(1.0 / sqrt(ss / n + eps));
    if (rstd) *rstd = r;
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

void rmsnorm_train_fwd(real *y, real *rstd, const real *x, const real *w, int N, int n, float eps) {
#pragma omp parallel for schedule(static) if (N * (size_t)n > 65536)
    for (int t = 0; t < N; t++)
        rmsnorm_row_fwd(y + (size_t)t * n, rstd ? rstd + t : NULL, x + (size_t)t * n, w, n, eps);
}

void rmsnorm_row_bwd(real *dx, const real *dy, const real *x, real r, const real *w, int n) {
    double dot = rv_dot3(dy, w, x, n);
    real k = (real)(dot * r * r * r / n);
#pragma omp simd
    for (int i = 0; i < n; i++) dx[i] += r * dy[i] * w[i] - k * x[i];
}

/* columns in one block per thread (multiples of 16): each block's rows in
 * order, so the bits do not depend on the split; one thread reads whole rows */
void rmsnorm_dw(real *dw, const real *dy, size_t ldy, const real *x, size_t ldx, const real *rstd, int N, int n) {
    const int nt = N * (size_t)n > 65536 ? omp_get_max_threads() : 1;
    const int bw = ((n + nt - 1) / nt + 15) & ~15, nb = (n + bw - 1) / bw;
#pragma omp parallel for schedule(static) num_threads(nb) if (nb > 1)
    for (int b = 0; b < nb; b++) {
        const int c0 = b * bw, c1 = c0 + bw < n ? c0 + bw : n;
        for (int t = 0; t < N; t++) {
            const real *xt = x + (size_t)t * ldx, *dyt = dy + (size_t)t * ldy, r = rstd[t];
#pragma omp simd
            for (int i = c0; i < c1; i++) dw[i] += dyt[i] * xt[i] * r;
        }
    }
}

void rmsnorm_bwd(real *dx, real *dw, const real *dy, const real *x, const real *rstd, const real *w, int N, int n) {
    if (dw) rmsnorm_dw(dw, dy, (size_t)n, x, (size_t)n, rstd, N, n);
#pragma omp parallel for schedule(static) if (N * (size_t)n > 65536)
    for (int t = 0; t < N; t++)
        rmsnorm_row_bwd(dx + (size_t)t * n, dy + (size_t)t * n, x + (size_t)t * n, rstd[t], w, n);
}
