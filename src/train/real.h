/*
 * real.h — the number type of the training code, and the two products every
 * layer's forward and backward are made of.
 *
 * Training code is written against `real`: float in the library, double when
 * a translation unit is compiled with -DDC_REAL_DOUBLE (the gradient checks
 * in tests/test_grad.c rebuild the layer files that way, so finite
 * differences are taken in double precision).
 *
 *   linear_fwd:  y (N, out)  = x (N, in) @ W^T        W (out, in), torch layout
 *   linear_bwd:  dx (N, in) += dy (N, out) @ W
 *                dW (out, in) += dy^T @ x             (either may be NULL)
 *
 * Rule (llm.c): parameter gradients accumulate (+=); so do activation
 * gradients here, so that a tensor feeding several paths sums them; callers
 * zero a gradient buffer before the first path writes it.
 */
#ifndef DC_REAL_H
#define DC_REAL_H
#include <cblas.h>
#include <stddef.h>
/* OpenBLAS's cblas.h pulls in <complex.h>, whose macro I would shadow every
 * variable named I (the intermediate size, in DeepSeek's own notation) */
#undef I

#ifdef DC_REAL_DOUBLE
typedef double real;
#define GEMM cblas_dgemm
#define rexp exp
#else
typedef float real;
#define GEMM cblas_sgemm
#define rexp expf
#endif

static inline void linear_fwd(real *y, const real *x, const real *W, int N, int in, int out) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1, x, in, W, in, 0, y, out);
}

static inline void linear_bwd(real *dx, real *dW, const real *dy, const real *x, const real *W, int N, int in,
                              int out) {
    if (dx) GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1, dy, out, W, in, 1, dx, in);
    if (dW) GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1, dy, out, x, in, 1, dW, in);
}

/* bump: carve typed arrays out of one block. With base == NULL it only
 * counts, so the same walk sizes an arena and then points into it. */
typedef struct bump {
    char *base;
    size_t off;
} bump;

static inline void *bump_take(bump *b, size_t bytes) {
    size_t at = (b->off + 63) & ~(size_t)63;
    b->off = at + bytes;
    return b->base ? b->base + at : NULL;
}
#define BUMP(b, n, type) ((type *)bump_take((b), sizeof(type) * (size_t)(n)))
#endif
