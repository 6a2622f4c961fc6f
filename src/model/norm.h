/*
 * norm.h — RMSNorm (Zhang & Sennrich 2019), as DeepSeek uses it everywhere:
 * y = x / sqrt(mean(x^2) + eps) * w.
 */
#ifndef DC_NORM_H
#define DC_NORM_H
#include "kernels/linear.h"
/* rmsnorm_forward: out (T, n) from x (T, n) and w (n); out may equal x. */
void rmsnorm_forward(float *out, const float *x, const float *w, int T, int n, float eps);

/* Training. rmsnorm_train_fwd also saves r = 1/sqrt(mean(x^2)+eps) per row
 * (rstd NULL: not saved).
 * rmsnorm_bwd (undoing y = x * r * w):
 *   dw += sum_rows dy * x * r
 *   dx += r * (dy*w) - x * r^3 / n * sum(dy*w*x)          */
void rmsnorm_train_fwd(real *y, real *rstd, const real *x, const real *w, int N, int n, float eps);
void rmsnorm_bwd(real *dx, real *dw, const real *dy, const real *x, const real *rstd, const real *w, int N, int n);
#endif
