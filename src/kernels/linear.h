/*
 * linear.h — the number type of the training code, and the two products every
 * layer's forward and backward are made of, in the run's training precision.
 *
 * Training code is written against `real`: float in the library, double when
 * a translation unit is compiled with -DDC_REAL_DOUBLE (the gradient checks
 * in tests/test_grad.c rebuild the layer files that way, so finite
 * differences are taken in double precision; precision then plays no part).
 *
 *   linear_fwd:  y (N, out)  = x (N, in) @ W^T        W (out, in), torch layout
 *   linear_bwd:  dx (N, in) += dy (N, out) @ W
 *                dW (out, in) += dy^T @ x             (either may be NULL)
 *
 * Rule (llm.c): parameter gradients accumulate (+=); so do activation
 * gradients here, so that a tensor feeding several paths sums them; callers
 * zero a gradient buffer before the first path writes it.
 *
 * Precision (DeepSeek-V3 report §3.3), carried by a lin_ctx that its
 * owner (a trainer) passes down to the layers, so that two trainers in one
 * process may train in different precisions: the three GEMMs of every
 * linear layer of the blocks (attention projections, dense / expert / shared
 * FFN, in the main model and the MTP blocks) run on
 *   PREC_F32   float operands (sgemm; also a NULL lin_ctx)
 *   PREC_BF16  operands rounded to bfloat16 (nearest even), f32 accumulation
 *   PREC_FP8   operands quantised to e4m3 (src/kernels/fp8.h): activations
 *              and gradients with a scale per 1x128 tile along K, weights with
 *              a scale per 128x128 block; for the weight gradient (K = the
 *              tokens) both operands with a scale per 128 tokens of one
 *              channel (V3 §3.3.2's 128x1 tiles); products summed in f32
 * Master weights, gradients and the results stay f32. linear_fwd_hp /
 * linear_bwd_hp are the same products always in full precision: the MoE
 * router (V3 §3.3.1 keeps it out of FP8) calls them, and so does the MTP
 * eh_proj (its forward is the inference code's f32 matmul); the output head
 * (also out of FP8) runs in BF16 in bf16 and fp8 runs (lin_head_*). The
 * attention core (scores, softmax, P@V) calls GEMM directly and stays f32,
 * as do the embedding and the norms.
 */
#ifndef DC_LINEAR_H
#define DC_LINEAR_H
#include <cblas.h>
#include <stddef.h>
#include "base/bump.h"
/* OpenBLAS's cblas.h pulls in <complex.h>, whose macro I would shadow every
 * variable named I (the intermediate size, in DeepSeek's own notation) */
#undef I

enum { PREC_F32 = 0, PREC_BF16 = 1, PREC_FP8 = 2 };

/* prec_name: "f32", "bf16", "fp8"; prec_parse: the PREC_* of a name, or -1 */
const char *prec_name(int prec);
int prec_parse(const char *s);

/* lin_ctx: a precision and the scratch its quantised operands live in, one
 * slot per OpenMP thread (the routed experts of a MoE layer run their GEMMs
 * on different threads at once). lin_ctx_init reserves slot 0 for operands
 * of up to `a` and `b` floats (a step then allocates nothing on one thread;
 * other slots grow on first use and are kept); DC_ENOMEM (as a negative int)
 * when it cannot. A call whose slot cannot grow falls back to f32 and counts
 * in lin_ctx_fallbacks. lin_ctx_free releases the scratch (a zeroed lin_ctx
 * is an f32 one with none). One lin_ctx serves one thread or one OpenMP team
 * at a time. */
typedef struct lin_slot {
    float *a, *b;          /* the two quantised operands */
    size_t cap_a, cap_b;   /* floats */
} lin_slot;
typedef struct lin_ctx {
    int prec;
    int nslot;
    lin_slot *slot;
    long fallbacks;
} lin_ctx;
int lin_ctx_init(lin_ctx *lc, int prec, size_t a, size_t b);
void lin_ctx_free(lin_ctx *lc);
long lin_ctx_fallbacks(const lin_ctx *lc);
/* lin_prec: lc's precision, PREC_F32 for NULL */
static inline int lin_prec(const lin_ctx *lc) { return lc ? lc->prec : 0; }

/* the float products in lc's precision (linear.c) */
void lin_fwd_f(lin_ctx *lc, float *y, const float *x, const float *W, int N, int in, int out);
void lin_bwd_f(lin_ctx *lc, float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int in,
               int out);

/* the output head's products: kept out of FP8 but not in f32 (V3 §3.3.1:
 * "BF16 or FP32"; DeepSeek's framework runs such GEMMs in BF16): BF16
 * operands in bf16 and fp8 runs, f32 in f32 runs (lin_fwd_f's paths) */
void lin_head_fwd_f(lin_ctx *lc, float *y, const float *x, const float *W, int N, int in, int out);
void lin_head_bwd_f(lin_ctx *lc, float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int in,
                    int out);

#ifdef DC_REAL_DOUBLE
typedef double real;
#define GEMM cblas_dgemm
#define rexp exp
#else
typedef float real;
#define GEMM cblas_sgemm
#define rexp expf
#endif

static inline void linear_fwd_hp(real *y, const real *x, const real *W, int N, int in, int out) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1, x, in, W, in, 0, y, out);
}

static inline void linear_bwd_hp(real *dx, real *dW, const real *dy, const real *x, const real *W, int N, int in,
                                 int out) {
    if (dx) GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1, dy, out, W, in, 1, dx, in);
    if (dW) GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1, dy, out, x, in, 1, dW, in);
}

#ifdef DC_REAL_DOUBLE
#define linear_fwd(lc, ...) ((void)(lc), linear_fwd_hp(__VA_ARGS__))
#define linear_bwd(lc, ...) ((void)(lc), linear_bwd_hp(__VA_ARGS__))
#else
#define linear_fwd lin_fwd_f
#define linear_bwd lin_bwd_f
#endif
#endif
