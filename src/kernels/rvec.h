/*
 * rvec.h — the elementwise passes of training on `real` (kernels/linear.h):
 * kernels/vexp.h's vectorised float passes in the library, plain loops on
 * libm's exp when a file is built with -DDC_REAL_DOUBLE (the gradient checks
 * take finite differences in double, where speed plays no part).
 *
 *   rv_max(x, n)                  max_i x[i]
 *   rv_exp_shift_sum(y, x, m, n)  y = e^(x - m) (y NULL: not kept), returns its sum (in double)
 *   rv_exp_shift_scale(y, x, m, g, n)   y = e^(x - m) g
 *   rv_sumsq(x, n)                sum x^2 (in double)
 *   rv_dot3(a, b, c, n)           sum a b c (in double)
 *   rv_scale(x, k, n)             x *= k
 *   rv_softmax_bwd(d, p, n, k)    d = p (d - p.d) k (one softmax row's backward, in place)
 *   rv_swiglu(a, h1, h3, n)       a = silu(h1) h3
 *   rv_swiglu_bwd(dh1, dh3, da, h1, h3, n)   its gradients (vexp.h)
 *   rv_zero(p, n)                 p = 0 (over the threads when large)
 */
#ifndef DC_RVEC_H
#define DC_RVEC_H
#include <math.h>
#include <string.h>
#include "kernels/linear.h"
#include "kernels/vexp.h"

/* rv_zero: p[0..n) = 0, over the threads when it is 1 MB or more (a
 * gradient buffer: a serial memset left the other thread idle; inside a
 * parallel region the loop runs on the calling thread) */
static inline void rv_zero(real *p, size_t n) {
    const size_t ch = (size_t)1 << 16;
    if (n * sizeof *p < ((size_t)1 << 20)) {
        memset(p, 0, n * sizeof *p);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < (n + ch - 1) / ch; c++) memset(p + c * ch, 0, (n - c * ch < ch ? n - c * ch : ch) * sizeof *p);
}

#ifdef DC_REAL_DOUBLE
static inline double rv_max(const double *x, size_t n) {
    double m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
static inline double rv_sumsq(const double *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}
static inline double rv_dot3(const double *a, const double *b, const double *c, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i] * c[i];
    return s;
}
static inline double rv_exp_shift_sum(double *y, const double *x, double m, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = exp(x[i] - m);
        if (y) y[i] = e;
        s += e;
    }
    return s;
}
static inline void rv_exp_shift_scale(double *y, const double *x, double m, double g, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = exp(x[i] - m) * g;
}
static inline void rv_scale(double *x, double k, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= k;
}
static inline void rv_softmax_bwd(double *d, const double *p, size_t n, double k) {
    double dot = 0;
    for (size_t i = 0; i < n; i++) dot += p[i] * d[i];
    for (size_t i = 0; i < n; i++) d[i] = p[i] * (d[i] - dot) * k;
}
static inline void rv_swiglu(double *a, const double *h1, const double *h3, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = h1[i] / (1 + exp(-h1[i])) * h3[i];
}
static inline void rv_swiglu_bwd(double *dh1, double *dh3, const double *da, const double *h1, const double *h3,
                                 size_t n) {
    for (size_t i = 0; i < n; i++) {
        double h = h1[i], sg = 1 / (1 + exp(-h));
        dh3[i] = da[i] * h * sg;
        dh1[i] = da[i] * h3[i] * sg * (1 + h * (1 - sg));
    }
}
#else
#define rv_max vmax
#define rv_sumsq vsumsq_d
#define rv_dot3 vdot3_d
#define rv_exp_shift_sum vexp_shift_sum
#define rv_exp_shift_scale vexp_shift_scale
#define rv_scale vscale
#define rv_softmax_bwd vsoftmax_bwd
#define rv_swiglu vswiglu
#define rv_swiglu_bwd vswiglu_bwd
#endif
#endif
