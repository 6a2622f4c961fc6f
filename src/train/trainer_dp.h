/*
 * trainer_dp.h — the trainer's data-parallel parts (trainer_dp.c), private to
 * src/train: the shard layout, the step's exchanges (the gradient's
 * reduce-scatter in micro-batch order, the figures, the expert loads, the
 * gradient norm's partial sums) and AdamW on this replica's shard.
 */
#ifndef DC_TRAINER_DP_H
#define DC_TRAINER_DP_H
#include "train/trainer.h"

/* trainer_dp_layout: t->cut, t->zero, t->lo, t->hi for t->n floats. */
int trainer_dp_layout(trainer *t, int zero, dc_err *err);
/* trainer_dp_reduce: the step's figures (acc_*), loads and the squared
 * gradient norm *ss, the same on every replica. */
int trainer_dp_reduce(trainer *t, double *ss);
/* trainer_dp_adamw: AdamW over [lo, hi) with the step's gradient, then
 * (ZeRO-1) the parameters all-gathered. */
int trainer_dp_adamw(trainer *t, float scale);
/* trainer_dp_gather_optim: the whole m and v as float32 (n floats each,
 * caller frees) from the shards: a collective over DIST_DP; with no
 * sharding, copies (widened from bfloat16 with bf16 moments). */
int trainer_dp_gather_optim(trainer *t, float **m, float **v, dc_err *err);
#endif
