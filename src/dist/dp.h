/*
 * dp.h — data parallelism's exchanges, in an order that does not depend on
 * the rank count, so N data-parallel ranks reproduce one process bit for bit.
 *
 * A step's global batch is A micro-batches; micro-batch a is computed by
 * replica a % dp, each into a gradient of its own (n floats, from zero). They
 * are summed in rounds of dp micro-batches: round j holds micro-batches
 * [j*dp, min(A, (j+1)*dp)), and each replica s owns the shard
 * [cut[s], cut[s+1]) of the n floats: every replica sends the owner its
 * round gradient's slice (MPI_Alltoallv), and the owner adds the slices to
 * its shard of the step's gradient in micro-batch order:
 *   acc = ((0 + g_0) + g_1) + ... + g_{A-1}      (per element, float)
 * exactly what one process computes with dp = 1 (a reduce-scatter whose
 * order is fixed by the micro-batch index, not by MPI's reduction tree).
 * The cuts fall on multiples of `chunk` (the gradient-norm's chunks,
 * optim.h), so the norm's partial sums are per-shard too.
 *
 * Bytes per round: each replica sends (dp-1)/dp of its gradient (a
 * reduce-scatter); the parameters' (ZeRO-1) or gradients' all-gather after
 * the step sends the same again.
 */
#ifndef DC_DIST_DP_H
#define DC_DIST_DP_H
#include <stddef.h>
#include "dist/dist.h"

/* dp_cuts: cut[0..parts] of n elements into `parts` contiguous shards whose
 * boundaries are multiples of chunk (the last ends at n); shards of very
 * small arrays may be empty. */
void dp_cuts(size_t n, size_t chunk, int parts, size_t *cut);

/* dp_round: add round `round`'s micro-batch gradients (g: this replica's,
 * n floats, ignored when it had none in the round) to this replica's shard
 * acc (cut[me+1]-cut[me] floats) in micro-batch order; A micro-batches in the
 * step; recv: scratch of dp x (largest shard) floats. */
int dp_round(const dist *d, int round, int A, const float *g, const size_t *cut, float *acc, float *recv,
             dc_err *err);

/* dp_allgather: every replica's shard [cut[r], cut[r+1]) of x into x on all
 * replicas; mine comes from src (NULL: already in place in x). */
int dp_allgather(const dist *d, const size_t *cut, const float *src, float *x, dc_err *err);
#endif
