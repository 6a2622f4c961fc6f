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
 * State: the caller's lin_ctx (linear.h), the precision and one scratch
 * slot (two growable float arrays) per OpenMP thread: a call inside a
 * parallel region (the routed experts, one per thread) uses its thread's
 * slot, with its conversions on that thread; outside, the GEMMs are
 * multithreaded by OpenBLAS and the conversions by OpenMP.
 */
#include "kernels/linear.h"
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "deepc.h"
#include "kernels/fp8.h"
#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"

const char *prec_name(int prec) { return prec == PREC_BF16 ? "bf16" : prec == PREC_FP8 ? "fp8" : "f32"; }

int prec_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "f32") || !strcmp(s, "fp32")) return PREC_F32;
    if (!strcmp(s, "bf16")) return PREC_BF16;
    if (!strcmp(s, "fp8")) return PREC_FP8;
    return -1;
}

static int grow(float **p, size_t *cap, size_t n) {
    if (n <= *cap) return 1;
    float *q = realloc(*p, (n ? n : 1) * sizeof(float));
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

int lin_ctx_init(lin_ctx *lc, int prec, size_t a, size_t b) {
    *lc = (lin_ctx){0};
    lc->prec = prec == PREC_BF16 || prec == PREC_FP8 ? prec : PREC_F32;
    if (lc->prec == PREC_F32) return DC_OK;
    /* a slot for each thread a team may have (a later omp_set_num_threads
     * above both counts leaves the extra threads f32, counted) */
    lc->nslot = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    lc->slot = calloc((size_t)lc->nslot, sizeof *lc->slot);
    if (!lc->slot || !grow(&lc->slot[0].a, &lc->slot[0].cap_a, a) || !grow(&lc->slot[0].b, &lc->slot[0].cap_b, b)) {
        lin_ctx_free(lc);
        return DC_ENOMEM;
    }
    return DC_OK;
}

void lin_ctx_free(lin_ctx *lc) {
    for (int i = 0; lc->slot && i < lc->nslot; i++) free(lc->slot[i].a), free(lc->slot[i].b);
    free(lc->slot);
    *lc = (lin_ctx){0};
}

long lin_ctx_fallbacks(const lin_ctx *lc) { return lc ? lc->fallbacks : 0; }

/* slot: the calling thread's scratch with room for operands of a and b
 * floats, else NULL and a fallback to f32 counted */
static lin_slot *slot(lin_ctx *lc, size_t a, size_t b) {
    int i = omp_in_parallel() ? omp_get_thread_num() : 0;
    lin_slot *s = lc->slot && i < lc->nslot ? &lc->slot[i] : NULL;
    if (s && grow(&s->a, &s->cap_a, a) && grow(&s->b, &s->cap_b, b)) return s;
#pragma omp atomic
    lc->fallbacks++;
    return NULL;
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
static size_t ct(int n) { return (size_t)fp8_tiles(n); } /* 128-long tiles, as sizes */

/* the f32 forward through matmul (gemm.h's blocked GEMM, on AVX-512 machines
 * too since the twelfth session (wtype.c): C written once, where OpenBLAS
 * zeroes it first; f32 training's forward bits there changed with it) when out is at least
 * LIN_GEMM_OUT (measured ahead of OpenBLAS from 80 rows up, train-bench's
 * narrowest); OpenBLAS for narrower outputs */
#define LIN_GEMM_OUT 64
static void fwd(lin_ctx *lc, int prec, float *y, const float *x, const float *W, int N, int in, int out) {
    size_t nx = (size_t)N * in, nw = (size_t)out * in;
    if (prec == PREC_F32 && out >= LIN_GEMM_OUT) {
        const mat m = {(float *)W, MAT_F32, out, in};
        matmul(y, x, &m, N);
        return;
    }
    if (prec == PREC_BF16 && gemm_bf16_train()) { /* BF16 arithmetic (gemm_bf16.h): rounded as packed */
        lin_slot *S = slot(lc, gemm_bf16_scratch(N, out, in) / sizeof(float) + 1, 0);
        if (S) gemm_bf16(y, x, W, N, out, in, 0, 1, 0, S->a);
        else linear_fwd_hp(y, x, W, N, in, out);
        return;
    }
    if (prec == PREC_FP8 && gemm_bf16_train()) { /* the codes and scales apart, promoted per chunk (gemm_bf16.h) */
        const size_t KC = ct(in), CB = KC;
        lin_slot *S = slot(lc, nx + nw + N * KC + ct(out) * CB, gemm_bf16_scratch(N, out, in) / sizeof(float) + 1);
        if (S) {
            float *qx = S->a, *qw = qx + nx, *sx = qw + nw, *sw = sx + N * KC;
            fp8_fqs_rows(qx, sx, x, N, in);      /* 1x128 tiles along in (K) */
            fp8_fqs_blocks(qw, sw, W, out, in); /* 128x128 blocks */
            const fp8_scales sc = {sx, sw, KC, 1, CB, 1, FP8_TILE};
            gemm_bf16_fp8(y, qx, qw, N, out, in, 0, 1, 0, &sc, S->b);
            return;
        }
    }
    lin_slot *S = prec == PREC_F32 ? NULL : slot(lc, nx, nw);
    if (!S) {
        linear_fwd_hp(y, x, W, N, in, out);
        return;
    }
    if (prec == PREC_BF16) {
        bf16_round_n(S->a, x, nx);
        bf16_round_n(S->b, W, nw);
    } else {
        fp8_fq_rows(S->a, x, N, in);     /* 1x128 tiles along in (K) */
        fp8_fq_blocks(S->b, W, out, in); /* 128x128 blocks */
    }
    linear_fwd_hp(y, S->a, S->b, N, in, out);
}

static void bwd(lin_ctx *lc, int prec, float *dx, float *dW, const float *dy, const float *x, const float *W, int N,
                int in, int out) {
    size_t ny = (size_t)N * out, nx = (size_t)N * in, nw = (size_t)out * in;
    if (prec == PREC_BF16 && gemm_bf16_train()) { /* BF16 arithmetic (gemm_bf16.h) */
        lin_slot *S = slot(lc, mx(gemm_bf16_scratch(N, in, out), gemm_bf16_scratch(out, in, N)) / sizeof(float) + 1, 0);
        if (!S) {
            linear_bwd_hp(dx, dW, dy, x, W, N, in, out);
            return;
        }
        if (dx) gemm_bf16(dx, dy, W, N, in, out, 0, 0, 1, S->a);
        if (dW) gemm_bf16(dW, dy, x, out, in, N, 1, 0, 1, S->a);
        return;
    }
    if (prec == PREC_FP8 && gemm_bf16_train()) { /* the codes and scales apart, promoted per chunk (gemm_bf16.h) */
        const size_t KO = ct(out), CB = ct(in), KN = ct(N);
        lin_slot *S = slot(lc, mx(ny + nw + N * KO + KO * CB, ny + nx + KN * out + KN * in),
                           mx(gemm_bf16_scratch(N, in, out), gemm_bf16_scratch(out, in, N)) / sizeof(float) + 1);
        if (S) {
            if (dx) { /* K = out: dy's 1x128 tiles along out, W's blocks (out rows = K) */
                float *qd = S->a, *qw = qd + ny, *sd = qw + nw, *sw = sd + N * KO;
                fp8_fqs_rows(qd, sd, dy, N, out);
                fp8_fqs_blocks(qw, sw, W, out, in);
                const fp8_scales sc = {sd, sw, KO, 1, 1, CB, FP8_TILE};
                gemm_bf16_fp8(dx, qd, qw, N, in, out, 0, 0, 1, &sc, S->b);
            }
            if (dW) { /* K = the N tokens: both in 128x1 tiles down the tokens */
                float *qd = S->a, *qx = qd + ny, *sd = qx + nx, *sx = sd + KN * out;
                fp8_fqs_cols(qd, sd, dy, N, out);
                fp8_fqs_cols(qx, sx, x, N, in);
                const fp8_scales sc = {sd, sx, 1, (size_t)out, 1, (size_t)in, 1};
                gemm_bf16_fp8(dW, qd, qx, out, in, N, 1, 0, 1, &sc, S->b);
            }
            return;
        }
    }
    lin_slot *S = prec == PREC_F32 ? NULL : slot(lc, mx(ny, nx), mx(nw, nx));
    if (!S) {
        linear_bwd_hp(dx, dW, dy, x, W, N, in, out);
        return;
    }
    if (prec == PREC_BF16) {
        bf16_round_n(S->a, dy, ny); /* one rounding of dy serves both products */
        if (dx) bf16_round_n(S->b, W, nw), linear_bwd_hp(dx, NULL, S->a, NULL, S->b, N, in, out);
        if (dW) bf16_round_n(S->b, x, nx), linear_bwd_hp(NULL, dW, S->a, S->b, NULL, N, in, out);
        return;
    }
    if (dx) { /* input gradient: K = out; dy in 1x128 tiles along out, W in its blocks */
        fp8_fq_rows(S->a, dy, N, out);
        fp8_fq_blocks(S->b, W, out, in);
        linear_bwd_hp(dx, NULL, S->a, NULL, S->b, N, in, out);
    }
    if (dW) { /* weight gradient: K = the N tokens; both in 128x1 tiles down the tokens */
        fp8_fq_cols(S->a, dy, N, out);
        fp8_fq_cols(S->b, x, N, in);
        linear_bwd_hp(NULL, dW, S->a, S->b, NULL, N, in, out);
    }
}

void lin_fwd_f(lin_ctx *lc, float *y, const float *x, const float *W, int N, int in, int out) {
    fwd(lc, lin_prec(lc), y, x, W, N, in, out);
}

void lin_bwd_f(lin_ctx *lc, float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int in,
               int out) {
    bwd(lc, lin_prec(lc), dx, dW, dy, x, W, N, in, out);
}

/* the output head: BF16 in bf16 and fp8 runs (V3 §3.3.1 keeps it out of FP8, in BF16) */
static int head_prec(const lin_ctx *lc) { return lin_prec(lc) == PREC_F32 ? PREC_F32 : PREC_BF16; }

void lin_head_fwd_f(lin_ctx *lc, float *y, const float *x, const float *W, int N, int in, int out) {
    fwd(lc, head_prec(lc), y, x, W, N, in, out);
}

void lin_head_bwd_f(lin_ctx *lc, float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int in,
                    int out) {
    bwd(lc, head_prec(lc), dx, dW, dy, x, W, N, in, out);
}
