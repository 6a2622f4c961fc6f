/*
 * trainer_ep.h — the trainer's side of expert parallelism (moe_ep.h): which
 * tensors this rank holds, and the sums over the EP group before an update.
 *
 * Each EP rank trains on its own share of the step's batch, so a step is
 * accum x ep micro-batches: every unweighted position weighs
 * 1/(B*T*accum*ep), and the EP group's sums make the step one process would
 * make over the same micro-batches:
 *   shared tensors (attention, norms, router, shared experts, embedding,
 *   head): gradients summed over the EP ranks in rank order
 *   routed experts: each owner already holds the whole gradient (every
 *   rank's rows reached it)
 *   losses and weight sums, expert loads (the bias update's global loads):
 *   summed over the group
 *   gradient norm^2 = shared part + sum over ranks of their experts' part
 */
#ifndef DC_TRAINER_EP_H
#define DC_TRAINER_EP_H
#include "train/trainer.h"

/* trainer_shares: the micro-batches of one step across the EP group
 * (accum x ep): what an unweighted position's weight divides by. */
double trainer_shares(const trainer *t);
/* trainer_ep_init: with t->dist.ep_size > 1, the expert split and the
 * filtering of t->tab and gt (the gradient table, *ng entries) down to the
 * tensors this rank holds; nothing with one EP rank. */
int trainer_ep_init(trainer *t, wt_entry *gt, int *ng, dc_err *err);
void trainer_ep_free(trainer *t);
/* trainer_ep_sync: the sums above, in place (a failure: t->ep->rc); grads:
 * the step's whole gradient, laid out as the arena's gradient part (that
 * part itself, t->arena + t->n, unless the step was summed elsewhere). */
void trainer_ep_sync(trainer *t, float *grads);
/* trainer_ep_sumsq: the squared gradient norm over the whole group. */
double trainer_ep_sumsq(const trainer *t, const float *grads);
/* trainer_ep_full: the whole model as one process holds it, on ep_rank 0:
 * a trainer shell `full` (cfg, step, the whole table, an arena of params |
 * grads (zero) | m | v) for ckpt_save; the other ranks send their routed
 * experts' parameters and AdamW moments and get an empty shell. Collective
 * over DIST_EP. Free with trainer_ep_full_free. */
int trainer_ep_full(const trainer *t, trainer *full, dc_err *err);
void trainer_ep_full_free(trainer *full);
#endif
