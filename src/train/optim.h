/*
 * optim.h — what every trainer shares after the backward: the options of a
 * run's optimisation, learning-rate schedules, the global gradient norm,
 * AdamW and the aux-loss-free bias update.
 *
 * AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW, per element with
 * t = step + 1:  p *= 1 - lr wd (matrices only; norms get wd 0)
 *                m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *                p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * g is the gradient times min(1, clip / (|g| + 1e-6)) (torch's clip_grad_norm_).
 * With bf16_moments, m and v are kept as bfloat16 (rounded to nearest even
 * each time they are written), as V3 keeps them (§3.3.3, "low-precision
 * optimizer states"): 2 bytes each instead of 4 (adam_mom below), so the
 * trainer's state is 12 bytes a parameter instead of 16. The update reads
 * them widened to float32; the arithmetic is float32's either way.
 *
 * Schedules: linear warm-up over `warmup` steps to lr, then cosine to min_lr
 * at `steps`, or WSD (stable at lr, linear decay over the last wsd_decay of
 * the steps), or constant.
 *
 * Bias update (V3 report §2.1.2): after each step, for each MoE layer,
 * bias_i += gamma * sign(mean load - load_i), loads counted over the step.
 * The default gamma is 0.01, not V3's 0.001 (issue 14 #14): early in
 * training the hidden states collapse onto one direction (the unigram phase:
 * at step 10 of the small preset 96% of their energy is in their mean), so
 * every token's router scores are nearly the same vector (expert means 0.3
 * apart, tokens 0.015 around them) and all tokens choose the same experts;
 * only the bias can pull them apart, and at 0.001 a step it needs ~300
 * steps to cross 0.3: V3 runs 100k+ steps, the runs here hundreds. At 0.01
 * the small preset's layers go from max/mean load 8 (every token on the same
 * two experts) to ~1.4 by step 100 at the same loss; at 0.001 they stay at 3-6.
 */
#ifndef DC_OPTIM_H
#define DC_OPTIM_H
#include <stddef.h>
#include <stdint.h>
#include "model/weights.h"

enum { SCHED_COSINE, SCHED_WSD, SCHED_CONST };

typedef struct train_opts {
    int B, T;                /* sequences per micro-batch, positions per sequence (capacity) */
    int accum;               /* micro-batches per optimiser step */
    float lr, min_lr;        /* peak and final learning rate */
    int warmup, steps;       /* linear warm-up steps, total steps (for the schedule) */
    int sched;               /* SCHED_* */
    float wsd_decay;         /* WSD: fraction of steps spent decaying (default 0.2) */
    float wd, clip;          /* AdamW weight decay, global-norm clip (0: none) */
    float beta1, beta2, eps;
    float mtp_lambda;        /* MTP loss weight (0: the MTP modules are not run) */
    float aux_alpha;         /* sequence-wise balance loss weight */
    float bias_gamma;        /* bias update speed */
    int precision;           /* PREC_* (kernels/linear.h): the linear layers' GEMMs */
    int bf16_moments;        /* keep AdamW's m and v rounded to bfloat16 (V3 §3.3.3) */
} train_opts;

/* train_opts_default: the pretraining defaults (see cmd_train.c's help). */
void train_opts_default(train_opts *o);

/* sched_lr: the schedule's learning rate at step s (0-based). */
float sched_lr(const train_opts *o, int64_t s);

/* grad_sumsq: sum of squares of g (n), in fixed chunks added in order: the
 * same bits for the same data and thread count. */
double grad_sumsq(const float *g, size_t n);
/* grad_chunk: the chunk length grad_sumsq uses for n floats; grad_sumsq_parts:
 * the chunk sums of squares part[c] for the chunks c in [lo/CH, hi/CH) of a
 * range [lo, hi) starting and ending on chunk boundaries (or at n), g indexed
 * from lo: the shards of ZeRO-1 (dist/dp.h) compute the same partial sums. */
size_t grad_chunk(size_t n);
void grad_sumsq_parts(const float *g, size_t lo, size_t hi, size_t CH, double *part);

/* adam_mom: AdamW's m and v of a run of elements, float32 or bfloat16
 * (bf16 set: uint16_t each). adam_mom_bytes: bytes of one of them for n
 * elements. adam_mom_at: the view from element i on. adam_mom_get / _put:
 * elements [i, i + n) to / from float32 (a NULL m or v is skipped); put
 * rounds to nearest even in bf16, get is exact. */
typedef struct adam_mom {
    void *m, *v;
    int bf16;
} adam_mom;
size_t adam_mom_bytes(size_t n, int bf16);
adam_mom adam_mom_at(adam_mom s, size_t i);
void adam_mom_get(const adam_mom *s, size_t i, size_t n, float *m, float *v);
void adam_mom_put(adam_mom *s, size_t i, size_t n, const float *m, const float *v);

/* adamw_update: one AdamW step over the table's tensors (aliases and biases
 * skipped) whose parameters sit in arena[0, n), gradients in [n, 2n), the
 * moments of all n in mv; `step` steps done before this one; gradients
 * scaled by `scale` first (clipping). */
void adamw_update(const wt_entry *tab, int ntab, float *arena, size_t n, adam_mom mv, const train_opts *o,
                  int64_t step, float lr, float scale);

/* adamw_update_range: the same over the elements [lo, hi) of the arena's n
 * (a ZeRO-1 shard): parameters p (n, full), gradients g and moments mv
 * indexed from lo. */
void adamw_update_range(const wt_entry *tab, int ntab, const float *arena, float *p, const float *g, adam_mom mv,
                        size_t lo, size_t hi, const train_opts *o, int64_t step, float lr, float scale);

/* router_bias_update: bias (E) += gamma * sign(mean(load) - load_i). */
void router_bias_update(float *bias, const int *load, int E, float gamma);
#endif
