/*
 * linear.c — the linear layers' GEMMs in the training precision (linear.h).
 *
 * BF16 and FP8 are computed by rounding (bf16) or quantising and scaling
 * back (fp8, fp8.h's fq_*) both operands into a scratch copy, then one
 * OpenBLAS sgemm on the copies: the products are exactly those of the
 * narrow operands, and sgemm sums them in f32 (a single f32 accumulator per
 * output, so FP8's promotion every 128 elements of K is implied: every
 * partial is already f32; tests/test_prec.c checks the result against the
 * explicitly promoted fp8_gemm_ref and a double oracle). On CPUs without
 * BF16/FP8 arithmetic (AVX2) this is the fastest form measured: a
 * conversion pass is O(N*K) against the GEMM's O(N*K*out).
 *
 * Process state: the precision and the scratch (two growable float arrays),
 * set between steps; the GEMMs themselves are multithreaded by OpenBLAS and
 * the conversions by OpenMP.
 */
#include "kernels/linear.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "deepc.h"
#include "kernels/fp8.h"
#include "kernels/matmul.h"

static struct {
    int prec;
    float *a, *b;          /* scratch: the two quantised operands */
    size_t cap_a, cap_b;   /* floats */
    long fallbacks;
} S;

const char *prec_name(int prec) { return prec == PREC_BF16 ? "bf16" : prec == PREC_FP8 ? "fp8" : "f32"; }

int prec_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "f32") || !strcmp(s, "fp32")) return PREC_F32;
    if (!strcmp(s, "bf16")) return PREC_BF16;
    if (!strcmp(s, "fp8")) return PREC_FP8;
    return -1;
}

void lin_prec_set(int prec) { S.prec = prec == PREC_BF16 || prec == PREC_FP8 ? prec : PREC_F32; }
int lin_prec_get(void) { return S.prec; }
long lin_prec_fallbacks(void) { return S.fallbacks; }

static int grow(float **p, size_t *cap, size_t n) {
    if (n <= *cap) return 1;
    float *q = realloc(*p, (n ? n : 1) * sizeof(float));
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

int lin_prec_reserve(size_t a, size_t b) {
    return grow(&S.a, &S.cap_a, a) && grow(&S.b, &S.cap_b, b) ? DC_OK : DC_ENOMEM;
}

void lin_prec_release(void) {
    free(S.a);
    free(S.b);
    S.a = S.b = NULL;
    S.cap_a = S.cap_b = 0;
}

/* room: scratch for operands of a and b floats, else count a fallback to f32 */
static int room(size_t a, size_t b) {
    if (grow(&S.a, &S.cap_a, a) && grow(&S.b, &S.cap_b, b)) return 1;
    S.fallbacks++;
    return 0;
}

/* bf16_round_n: y = x rounded to bfloat16 (nearest even), kept as float;
 * branch-free so that the loop vectorises (NaN stays NaN) */
static void bf16_round_n(float *y, const float *x, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1)) & 0xffff0000u;
        r = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x400000u) & 0xffff0000u : r;
        memcpy(&y[i], &r, 4);
    }
}

static size_t mx(size_t a, size_t b) { return a > b ? a : b; }

/* the f32 forward through matmul (gemm.h's blocked GEMM on AVX2 machines:
 * C written once, where OpenBLAS zeroes it first) when out is at least
 * LIN_GEMM_OUT (measured ahead of OpenBLAS from 80 rows up, train-bench's
 * narrowest); OpenBLAS for narrower outputs */
#define LIN_GEMM_OUT 64
void lin_fwd_f(float *y, const float *x, const float *W, int N, int in, int out) {
    size_t nx = (size_t)N * in, nw = (size_t)out * in;
    if (S.prec == PREC_F32 && out >= LIN_GEMM_OUT) {
        const mat m = {(float *)W, MAT_F32, out, in};
        matmul(y, x, &m, N);
        return;
    }
    if (S.prec == PREC_F32 || !room(nx, nw)) {
        linear_fwd_hp(y, x, W, N, in, out);
        return;
    }
    if (S.prec == PREC_BF16) {
        bf16_round_n(S.a, x, nx);
        bf16_round_n(S.b, W, nw);
    } else {
        fp8_fq_rows(S.a, x, N, in);     /* 1x128 tiles along in (K) */
        fp8_fq_blocks(S.b, W, out, in); /* 128x128 blocks */
    }
    linear_fwd_hp(y, S.a, S.b, N, in, out);
}

void lin_bwd_f(float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int in, int out) {
    size_t ny = (size_t)N * out, nx = (size_t)N * in, nw = (size_t)out * in;
    if (S.prec == PREC_F32 || !room(mx(ny, nx), mx(nw, nx))) {
        linear_bwd_hp(dx, dW, dy, x, W, N, in, out);
        return;
    }
    if (S.prec == PREC_BF16) {
        bf16_round_n(S.a, dy, ny); /* one rounding of dy serves both products */
        if (dx) bf16_round_n(S.b, W, nw), linear_bwd_hp(dx, NULL, S.a, NULL, S.b, N, in, out);
        if (dW) bf16_round_n(S.b, x, nx), linear_bwd_hp(NULL, dW, S.a, S.b, NULL, N, in, out);
        return;
    }
    if (dx) { /* input gradient: K = out; dy in 1x128 tiles along out, W in its blocks */
        fp8_fq_rows(S.a, dy, N, out);
        fp8_fq_blocks(S.b, W, out, in);
        linear_bwd_hp(dx, NULL, S.a, NULL, S.b, N, in, out);
    }
    if (dW) { /* weight gradient: K = the N tokens; both in 128x1 tiles down the tokens */
        fp8_fq_cols(S.a, dy, N, out);
        fp8_fq_cols(S.b, x, N, in);
        linear_bwd_hp(NULL, dW, S.a, S.b, NULL, N, in, out);
    }
}
