/*
 * trainer.h — pretraining a DeepSeek-architecture model: the whole model's
 * training forward and backward (embedding, blocks, final norm, head and
 * cross-entropy, the MTP modules, the balance losses), AdamW, gradient
 * clipping, learning-rate schedules and the aux-loss-free bias update.
 *
 * Memory (STYLE.md): parameters, gradients and the AdamW moments m, v are one
 * arena of 4 equal parts in the layout of the weights table; activations are
 * one arena sized from the config, B and T at init. Nothing is allocated in
 * a step.
 *
 * Losses (V3 report §2.2, §2.1.2), for tokens (B, T+1), inputs x = tok[:, :T]:
 *   main  = mean CE of tok[:, 1:] over the B*T positions
 *   mtp_k = mean CE of module k's predictions of tok[b][i+k+1], i <= T-k-1;
 *           module k reads tok[b][min(i+k, T)] and the previous depth's state
 *           (depth 0: the main model's final-normed hidden state); the MTP
 *           modules share the main embedding and head while training
 *   aux   = sum over MoE layers of the sequence-wise balance loss (alpha)
 *   total = main + lambda * mean_k mtp_k + aux
 */
#ifndef DC_TRAINER_H
#define DC_TRAINER_H
#include <stdint.h>
#include "base/rng.h"
#include "deepc.h"
#include "model/train_layers.h"
#include "model/weights.h"

enum { SCHED_COSINE, SCHED_WSD, SCHED_CONST };

typedef struct train_opts {
    int B, T;
    int accum;               /* micro-batches per optimiser step */
    float lr, min_lr;        /* peak and final learning rate */
    int warmup, steps;       /* linear warm-up steps, total steps (for the schedule) */
    int sched;               /* SCHED_* */
    float wsd_decay;         /* WSD: fraction of steps spent decaying (default 0.2) */
    float wd, clip;          /* AdamW weight decay, global-norm clip (0: none) */
    float beta1, beta2, eps;
    float mtp_lambda;        /* MTP loss weight */
    float aux_alpha;         /* sequence-wise balance loss weight */
    float bias_gamma;        /* bias update speed */
} train_opts;

void train_opts_default(train_opts *o);

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
    rope rp;
    int B, T, N, L, D;
    wt_entry *tab;
    int ntab;
    model_w P, G;               /* parameter / gradient pointers, same layout */
    tlayer *tp, *tg;            /* (L + D) */
    float *arena;               /* params | grads | m | v */
    size_t n;                   /* floats in each part */
    mla_dims md;
    moe_dims ed;
    /* activations */
    void *act_mem;
    int *tok;                   /* (B, T+1) the micro-batch trainer_step draws */
    block_act *ba;              /* (L) */
    real *x_out, *rstd_f, *xf;  /* (N, C) last block's output, final norm */
    real *dxf;                  /* (N, C) gradient of xf */
    real *logits;               /* (N, V) */
    real *mask;                 /* (N) main CE weights */
    int *inputs, *targets, *mt; /* (N) input ids, next-token targets, an MTP depth's targets */
    double *rowloss;            /* (N) per-position CE, summed in order */
    mtp_act *ma;                /* (D) */
    real *dx, *dxn, *scratch;   /* (N, C), (N, C), max layer scratch */
    int *load;                  /* ((L + D), E) expert loads of this step */
    /* state */
    int64_t step;               /* optimiser steps done */
    /* figures of the last step */
    double loss, mtp_loss, aux_loss, grad_norm, lr_now;
    double explode_above;       /* skip a step whose loss exceeds this (0: never) */
    int skipped;                /* the last step was skipped: 1 non-finite, 2 exploding loss */
} trainer;

/* trainer_init: arenas for cfg at (o->B, o->T); parameters from init_dir (a
 * checkpoint) when given, else random N(0, 0.02) (seeded), norms 1, biases 0. */
int trainer_init(trainer *t, const dc_config *cfg, const train_opts *o, const char *init_dir, uint64_t seed,
                 dc_err *err);
void trainer_free(trainer *t);
/* trainer_forward: losses of one micro-batch tokens (B, T+1); with grad set,
 * also the backward, accumulating gradients scaled by 1/accum. */
void trainer_forward(trainer *t, const int *tokens, int grad);
/* trainer_step: one optimiser step from `accum` micro-batches taken from
 * next_batch(ctx, tokens) — zero grads, forward/backward each, clip, AdamW,
 * bias update. Sets t->loss etc. (means over the micro-batches). */
int trainer_step(trainer *t, void (*next_batch)(void *ctx, int *tokens), void *ctx);
/* trainer_lr: the schedule's learning rate at step s. */
float trainer_lr(const train_opts *o, int64_t s);
/* trainer_sample: greedy continuation (n ids into out) of prompt with the
 * current parameters, through the inference path. */
int trainer_sample(trainer *t, const int *prompt, int np, int n, int *out, dc_err *err);
/* trainer_imbalance: max load / mean load of MoE layer l in the last step (0 if dense). */
double trainer_imbalance(const trainer *t, int l);
#endif
