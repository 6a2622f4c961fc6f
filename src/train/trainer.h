/*
 * trainer.h — the training forward and backward of a whole DeepSeek-
 * architecture model over a batch with per-position loss weights: embedding,
 * blocks, final norm, head with a pluggable loss (loss.h), the MTP modules,
 * the balance losses; then clipping, AdamW and the bias update (optim.h).
 * Every trainer (pretrain, sft, grpo, distill) is built on it.
 *
 * Memory (STYLE.md): parameters, gradients and the AdamW moments m, v are one
 * arena of 4 equal parts in the layout of the weights table; activations are
 * one arena sized from the config and the capacity B x T at init. A batch may
 * use fewer rows and positions (B' <= B, T' <= T): the same buffers then hold
 * (B', T') shapes. Nothing is allocated in a step.
 *
 * Losses (V3 report §2.2, §2.1.2), for tokens (B, T+1), inputs x = tok[:, :T],
 * position n = b*T + i predicting tok[b][i+1] with weight w_n:
 *   main  = sum_n w_n l_n (l: CE, GRPO or KD, loss.h); reported as the
 *           weighted mean sum w l / sum w
 *   mtp_k = CE of module k's predictions of tok[b][i+k+1], i <= T-k-1, with
 *           weight w[b][i+k] rescaled so that depth k's weights sum to those
 *           of the main loss; module k reads tok[b][min(i+k, T)] and the
 *           previous depth's state (depth 0: the main model's final-normed
 *           hidden state); the MTP modules share the main embedding and head
 *           while training
 *   aux   = sum over MoE layers of the sequence-wise balance loss (alpha)
 *   total = main + lambda * mean_k mtp_k + aux
 * Without weights every position weighs 1/(B*T*accum): pretraining's mean.
 * With mtp_lambda 0, or the GRPO loss, the MTP modules are not run.
 */
#ifndef DC_TRAINER_H
#define DC_TRAINER_H
#include <stdint.h>
#include "base/rng.h"
#include "deepc.h"
#include "dist/dist.h"
#include "model/train_layers.h"
#include "model/weights.h"
#include "train/loss.h"
#include "train/optim.h"

typedef struct block_act {
    real *x_in, *rstd1, *xn1;   /* (N, C), (N), (N, C) */
    mla_act mla;
    real *x_mid, *rstd2, *xn2;  /* (N, C), (N), (N, C) */
    ffn_act ffn;
    moe_act moe;
} block_act;

typedef struct mtp_act {
    int *tok;                   /* (N) input token of each position */
    real *e, *e_rstd;           /* (N, C) embedding rows, (N) */
    real *h_rstd;               /* (N) hnorm of the previous depth */
    real *cat;                  /* (N, 2C) [enorm(e), hnorm(h)] */
    real *out, *out_rstd, *outn;/* (N, C) block output, (N), (N, C) shared_head.norm */
    real *dout;                 /* (N, C) gradient of out (from the next depth and the head) */
    real *doutn;                /* (N, C) gradient of outn (from the head, at forward time) */
    real *mask;                 /* (N) CE weight of each position (0: no target) */
    block_act blk;
} mtp_act;

typedef struct tlayer {        /* one block's parameters (or gradients) as layer views */
    mla_w mla;
    ffn_w ffn;
    moe_w moe;
} tlayer;

typedef struct trainer {
    dc_config cfg;
    train_opts o;
    dist dist;                  /* the rank layout (dist.h); a lone process: dist_single */
    struct moe_ep *ep;          /* expert parallel (moe_ep.h, trainer_ep.c), or NULL: every expert here */
    rope rp;
    int Bcap, Tcap;             /* capacity: the activation arena's shape */
    int B, T, N, L, D;          /* the current batch's rows, positions, B*T; layers, MTP depths */
    wt_entry *tab;
    int ntab;
    model_w P, G;               /* parameter / gradient pointers, same layout */
    tlayer *tp, *tg;            /* (L + D) */
    float *arena;               /* params | grads | m | v */
    size_t n;                   /* floats in each part */
    mla_dims md;
    moe_dims ed;
    lin_ctx lin;                /* the linear layers' precision (o.precision) and its scratch; md.lin = ed.lin = &lin */
    /* activations */
    void *act_mem;
    int *tok;                   /* (Bcap, Tcap+1) the micro-batch trainer_step draws */
    block_act *ba;              /* (L) */
    real *x_out, *rstd_f, *xf;  /* (N, C) last block's output, final norm */
    real *dxf;                  /* (N, C) gradient of xf */
    real *logits;               /* (N, V) */
    real *mask;                 /* (N) main loss weights */
    int *inputs, *targets, *mt; /* (N) input ids, next-token targets, an MTP depth's targets */
    double *rowloss;            /* (N) per-position loss, summed in order */
    mtp_act *ma;                /* (D) */
    real *dx, *dxn, *scratch;   /* (N, C), (N, C), max layer scratch */
    int *load;                  /* ((L + D), E) expert loads of this step */
    /* state */
    int64_t step;               /* optimiser steps done */
    /* sums over the micro-batches of this step (trainer_zero_grad resets them) */
    double acc_wl, acc_w, acc_mtp, acc_aux;
    /* figures of the last forward (loss, mtp_loss, aux_loss), or of the last
     * step after trainer_update (weighted means over its micro-batches) */
    double loss, mtp_loss, aux_loss, grad_norm, lr_now;
    double explode_above;       /* skip a step whose loss exceeds this (0: never) */
    int skipped;                /* the last step was skipped: 1 non-finite, 2 exploding loss,
                                 * 3 an expert-parallel exchange failed (t->ep->err) */
    /* data parallel (trainer_dp.c, dist/dp.h): the replicas of DIST_DP */
    int zero;                   /* ZeRO-1: AdamW state and update on this replica's shard only */
    size_t *cut;                /* (dp_size + 1) shard boundaries of the n floats */
    size_t lo, hi;              /* this replica's shard (ZeRO-1), else [0, n) */
    adam_mom mv;                /* AdamW moments of [lo, hi), indexed from lo (bf16 with o.bf16_moments) */
    float *gacc, *recv;         /* the step's gradient shard [cut[me], cut[me+1]); exchange scratch */
    int mb_used;                /* this step went through trainer_backward */
    int nmb, mbcap;             /* micro-batches of this step; capacity of mbf */
    double *mbf;                /* (mbcap, 4) each micro-batch's wl, w, mtp*w, aux*w */
    double comm_s;              /* seconds spent in the step's exchanges (cumulative) */
    dc_err derr;                /* the error of a failed trainer_update */
} trainer;

/* tbatch: one micro-batch. */
typedef struct tbatch {
    int B, T;                   /* rows and positions, at most the trainer's capacity */
    const int *tok;             /* (B, T+1) token ids */
    const float *w;             /* (B, T) weight of predicting tok[b][i+1], or NULL: 1/(B*T*accum) each */
    const loss_spec *loss;      /* NULL: cross-entropy */
} tbatch;

/* trainer_init: arenas for cfg at capacity (o->B, o->T); parameters from
 * init_dir (a checkpoint) when given, else random N(0, 0.02) (seeded), norms
 * 1, biases 0. */
int trainer_init(trainer *t, const dc_config *cfg, const train_opts *o, const char *init_dir, uint64_t seed,
                 dc_err *err);
void trainer_free(trainer *t);
/* trainer_init_dist: trainer_init for replica d->dp_rank of d->dp_size
 * (d copied into t->dist); with zero, ZeRO-1: the moments m, v only for this
 * replica's shard (the memory of optimiser state falls by dp_size). Every
 * replica starts from the same parameters (the same seed or init_dir).
 * With d->ep_size > 1 the routed experts are split (moe_ep.h): this rank
 * allocates parameters, gradients and moments for its own experts only (the
 * table t->tab lists only those), each EP rank trains on its own share of
 * every step's batch (its micro-batches weigh 1/ep of the step's), and
 * trainer_update first sums over the EP group the shared parameters'
 * gradients, the losses, the expert loads and the gradient norm
 * (trainer_ep.c). EP runs with one replica (dp 1) and without ZeRO-1. */
int trainer_init_dist(trainer *t, const dc_config *cfg, const train_opts *o, const char *init_dir, uint64_t seed,
                      const dist *d, int zero, dc_err *err);
/* trainer_optim_bytes: bytes of AdamW state (m, v) this rank holds. */
size_t trainer_optim_bytes(const trainer *t);
/* trainer_forward: the losses of one micro-batch (t->loss etc.); with grad,
 * also the backward, accumulating into the gradients. DC_EARG when the
 * batch exceeds the capacity or holds an id outside the vocabulary. */
int trainer_forward(trainer *t, const tbatch *b, int grad, dc_err *err);
/* trainer_zero_grad: zero the gradients, the expert loads and the step's sums. */
void trainer_zero_grad(trainer *t);
/* trainer_mb_mine: micro-batch a of a step is this replica's (a % dp == dp_rank). */
int trainer_mb_mine(const trainer *t, int a);
/* trainer_backward: micro-batch a (0, 1, .. in order) of a step of A: when
 * it is this replica's, its forward and backward into a gradient of its own,
 * its figures kept; after every dp micro-batches (and the last) the round's
 * gradients are summed into the step's in micro-batch order (dist/dp.h).
 * Every replica calls it for every a (b may be NULL when not mine). One
 * process and N replicas give the same bits. */
int trainer_backward(trainer *t, const tbatch *b, int a, int A, dc_err *err);
/* trainer_update: from the gradients accumulated since trainer_zero_grad
 * (by trainer_backward, or by trainer_forward with grad in one process):
 * the step's figures, the gradient norm, then (unless the loss is non-finite
 * or above explode_above: t->skipped) clipping, AdamW and the bias update;
 * the step counter advances either way. With several replicas the figures,
 * the expert loads and the norm are the job's; ZeRO-1 updates the shard and
 * all-gathers the parameters. DC_OK, or an exchange's error (in t->derr). */
int trainer_update(trainer *t);
/* trainer_step: pretraining's step: `accum` micro-batches of (B, T+1) tokens
 * from next_batch(ctx, tokens), unweighted, then trainer_update. */
int trainer_step(trainer *t, void (*next_batch)(void *ctx, int *tokens), void *ctx);
/* trainer_lr: the schedule's learning rate at step s. */
float trainer_lr(const train_opts *o, int64_t s);
/* trainer_model: a dc_model whose weights are the trainer's parameters
 * (borrowed: valid while the trainer lives, and seeing every update), for the
 * inference path (sampling, evaluation, rollouts). Free with trainer_model_free. */
int trainer_model(trainer *t, dc_model **out, dc_err *err);
void trainer_model_free(dc_model *m);
/* trainer_sample: greedy continuation (n ids into out) of prompt with the
 * current parameters, through the inference path. */
int trainer_sample(trainer *t, const int *prompt, int np, int n, int *out, dc_err *err);
/* trainer_point: the arena layout of a weights table: non-alias entries get
 * consecutive 64-byte aligned slots from base (NULL: only count), aliases
 * (the MTP copies of embedding and head) share the tensor they name. Returns
 * the floats of one part (parameters, gradients, m or v). */
size_t trainer_point(wt_entry *e, int n, float *base);
/* trainer_imbalance: max load / mean load of MoE layer l in the last step (0 if dense). */
double trainer_imbalance(const trainer *t, int l);
#endif
