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
/* one row of each, for loops that are already parallel (no OpenMP region of
 * their own: a nested one per row was ~16,000 regions a training step) */
void rmsnorm_row_fwd(real *y, real *rstd, const real *x, const real *w, int n, float eps);
void rmsnorm_row_bwd(real *dx, const real *dy, const real *x, real r, const real *w, int n);
/* rmsnorm_dw: dw += sum_rows dy * x * r alone (rows of dy, x ldy, ldx
 * apart), rows in order for every column (the threads take blocks of columns: the same bits on any count) */
void rmsnorm_dw(real *dw, const real *dy, size_t ldy, const real *x, size_t ldx, const real *rstd, int N, int n);
#endif
