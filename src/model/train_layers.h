/*
 * train_layers.h — the training-time forward (saving what the backward
 * needs) and the backward of each layer. The functions live beside the
 * inference forward of their layer: ffn.c, mla.c, moe.c (and norm.c, rope.c).
 *
 * Shapes: B sequences of T tokens, N = B*T rows; C hidden, H heads, nope /
 * rope / v head dims, kvl kv_lora_rank, ql q_lora_rank, E routed experts, K
 * chosen per token, Im expert width. Parameters are in torch layout
 * [out, in]; gradient structs have the same shape as parameter structs.
 * Backward functions ACCUMULATE into every gradient they are given (kernels/linear.h).
 */
#ifndef DC_TRAIN_LAYERS_H
#define DC_TRAIN_LAYERS_H
#include "deepc.h"
#include "model/rope.h"
#include "kernels/linear.h"

/* ---------------------------------------------------------------- SwiGLU */
typedef struct ffn_w {
    real *gate, *up, *down; /* (Iw, C), (Iw, C), (C, Iw) */
} ffn_w;
typedef struct ffn_act {
    real *h;                /* (N, 2 Iw): [h1 | h3] = [gate(x) | up(x)] per row */
    real *a;                /* (N, Iw): silu(h1) * h3 */
} ffn_act;
/* lc: the linear layers' precision and scratch (kernels/linear.h; NULL: f32) */
void swiglu_train_fwd(lin_ctx *lc, real *y, const ffn_act *s, const ffn_w *p, const real *x, int N, int C, int Iw);
/* scratch: (N, Iw) x 3. Where up follows gate in memory (p and g alike),
 * [gate; up] runs as one (2 Iw, C) matrix (ffn.c). */
void swiglu_bwd(lin_ctx *lc, real *dx, const ffn_w *g, const real *dy, const real *x, const ffn_act *s, const ffn_w *p,
                int N, int C, int Iw, real *scratch);

/* ---------------------------------------------------------------- MLA */
typedef struct mla_w {
    real *q_a, *q_a_norm, *q_b; /* q-LoRA: (ql, C), (ql), (H*qk, ql) */
    real *q;                    /* no q-LoRA: (H*qk, C) */
    real *kv_a, *kv_a_norm;     /* (kvl+rope, C), (kvl) */
    real *kv_b;                 /* (H*(nope+v), kvl) */
    real *o;                    /* (C, H*v) */
} mla_w;
typedef struct mla_act {
    real *qa, *qa_rstd, *qan;   /* (N, ql), (N), (N, ql) */
    real *q;                    /* (N, H, nope+rope), rope part rotated */
    real *kva;                  /* (N, kvl+rope) as projected */
    real *c_rstd, *cn;          /* (N), (N, kvl) normed latent */
    real *kpe;                  /* (N, rope) rotated shared key */
    real *cs;                   /* (T, rope) the rotations' cos and sin per position (rope_train_table) */
    real *kv;                   /* (N, H, nope+v) */
    real *k;                    /* (B, H, T/16, nope+rope, 16) each head's keys [k_nope | kpe] as panels of 16 (mla.c) */
    real *P;                    /* (B, H, T, T) attention probabilities */
    real *att;                  /* (N, H, v) */
} mla_act;
typedef struct mla_dims {
    int C, H, nope, rope, v, kvl, ql;
    float eps, scale;           /* rms_norm_eps, softmax scale (with YaRN's mscale^2) */
    const rope *rp;
    int qb;                     /* the attention backward's block of query rows, a multiple of 6 (mla_dims_init: 96) */
    lin_ctx *lin;               /* the linear layers' precision and scratch (linear.h; NULL: f32) */
} mla_dims;
void mla_dims_init(mla_dims *d, const dc_config *c, const rope *rp, float scale);
/* mla_act_point / mla_scratch_bytes: lay out the activations (bump.base NULL counts) */
void mla_act_point(mla_act *a, bump *b, const mla_dims *d, int B, int T);
size_t mla_scratch_floats(const mla_dims *d, int B, int T);
void mla_train_fwd(real *y, const mla_act *a, const mla_w *p, const mla_dims *d, const real *xn, int B, int T);
void mla_bwd(real *dxn, const mla_w *g, const real *dy, const real *xn, const mla_act *a, const mla_w *p,
             const mla_dims *d, int B, int T, real *scratch);

/* ---------------------------------------------------------------- MoE */
typedef struct moe_w {
    real *router;               /* (E, C) */
    real *bias;                 /* (E) selection bias: a buffer, never a gradient */
    ffn_w *experts;             /* (E), each (Im, C), (Im, C), (C, Im) */
    ffn_w shared;               /* (Im*S, C) ...; gate NULL when no shared expert */
} moe_w;
typedef struct moe_act {
    real *s;                    /* (N, E) gate scores */
    int *idx;                   /* (N, K) chosen experts */
    real *w;                    /* (N, K) their final weights */
    real *ssum;                 /* (N) sum of the chosen scores (normalisation) */
    real *f;                    /* (B, E) balance-loss load factors f_i */
    int *cnt, *off;             /* (E), (E+1) slots per expert */
    int *slot;                  /* (N*K) slot -> t*K + k, grouped by expert */
    int *pos;                   /* (N*K) t*K + k -> slot */
    real *xe, *ye;              /* (N*K, C) gathered inputs, expert outputs */
    ffn_act ex;                 /* (N*K, Im); expert parallel: (ep*N*K, Im) of the rows this rank's experts ran */
    real *xr;                   /* expert parallel: (ep*N*K, C) the rows received for this rank's experts */
    int *rcnt;                  /* expert parallel: (ep, E/ep) rows received from each rank per local expert */
    ffn_act sh;                 /* (N, Im*S) */
    real aux;                   /* this layer's balance loss */
} moe_act;
typedef struct moe_dims {
    int C, E, K, Im, S, G, topk_group, topk_method, scoring, norm;
    float rsf;                  /* routed_scaling_factor */
    float alpha;                /* sequence-wise balance loss weight (0: off) */
    int ep;                     /* ranks the routed experts are split over (moe_ep.h); 1: all here */
    lin_ctx *lin;               /* the linear layers' precision and scratch (linear.h; NULL: f32) */
} moe_dims;
void moe_dims_init(moe_dims *d, const dc_config *c, float alpha);
void moe_act_point(moe_act *a, bump *b, const moe_dims *d, int B, int T);
size_t moe_scratch_floats(const moe_dims *d, int B, int T);
/* moe_train_fwd: routing (V3 §2.1.2), experts, shared experts, and the
 * sequence-wise balance loss into a->aux. */
void moe_train_fwd(real *y, moe_act *a, const moe_w *p, const moe_dims *d, const real *x, int B, int T);
/* moe_choose: the top-K experts of one token from its choice scores (scores
 * plus selection bias), limited to the topk_group best groups for
 * group_limited_greedy / noaux_tc (a group's score: its max, or with a bias
 * the sum of its two best). Shared by inference and training. */
void moe_choose(const double *choice, int E, int G, int topk_group, int K, int method, int has_bias, int *idx);
void moe_bwd(real *dx, const moe_w *g, const real *dy, const real *x, const moe_act *a, const moe_w *p,
             const moe_dims *d, int B, int T, real *scratch);

/* The parts of moe_train_fwd / moe_bwd around the routed experts, which the
 * expert-parallel layer (moe_ep.c) runs on their owners between them:
 *   forward:  moe_train_route (scores, choice, slots, gathered xe), experts
 *             (xe -> ye per slot), moe_train_combine (shared + sum w ye, aux)
 *   backward: moe_bwd_out (shared, dye = w dy per slot, dw), experts
 *             (dye -> dxe per slot, expert gradients), moe_bwd_gate (dxe into
 *             dx, the gate and balance loss back to the router) */
typedef struct moe_bwd_scr {
    real *dxe, *dye;            /* (N*K, C) per slot */
    real *ds, *dw;              /* (N, E), (N*K) */
    real *dyr, *dxr;            /* expert parallel: (ep*N*K, C) rows of this rank's experts */
    real *ffs;                  /* swiglu_bwd scratch */
} moe_bwd_scr;
void moe_train_route(moe_act *a, const moe_w *p, const moe_dims *d, const real *x, int N);
void moe_train_combine(real *y, moe_act *a, const moe_w *p, const moe_dims *d, const real *x, int B, int T);
/* moe_bwd_split: the parts in scratch, dxe and ds zeroed (the others are written whole) */
moe_bwd_scr moe_bwd_split(const moe_dims *d, int N, real *scratch);
void moe_bwd_out(real *dx, const moe_w *g, const real *dy, const real *x, const moe_act *a, const moe_w *p,
                 const moe_dims *d, int N, const moe_bwd_scr *s);
void moe_bwd_gate(real *dx, const moe_w *g, const real *x, const moe_act *a, const moe_w *p, const moe_dims *d,
                  int B, int T, const moe_bwd_scr *s);
#endif
