/*
 * moe_ep.h — expert parallelism: the routed experts of every MoE layer split
 * over the ep ranks of an expert group (dist.h: DIST_EP; rank e owns experts
 * [e*E/ep, (e+1)*E/ep)), tokens sent to their experts' owners and the outputs
 * sent back with MPI_Alltoallv (dist_alltoallv). No token is ever dropped:
 * an owner has room for every row of its group (ep x N x K).
 *
 * Training (each EP rank holds its own share of the batch, as DeepSeek's
 * ranks do; the router and shared experts are replicated):
 *   route locally -> slots grouped by expert, so owner r's rows are the
 *   contiguous slots of experts [r*El, (r+1)*El)  (El = E/ep)
 *   dispatch: counts (El ints per peer), then rows xe -> xr on the owner,
 *             xr grouped by source rank, then by local expert
 *   owner:    SwiGLU of each (source, expert) block, so an expert's gradient
 *             accumulates source by source: the sums one process makes over
 *             the same micro-batches in rank order
 *   combine:  yr -> ye (the reverse exchange), then the weighted sum locally
 *   backward: dye goes to the owners along the dispatch route, dxr comes back
 *             along the combine route (dispatch and combine swap).
 * Per MoE layer and micro-batch a rank sends, in the forward and again in
 * the backward, its rows bound elsewhere and the rows it computed for others:
 * about 2 x N x K x (ep-1)/ep x C x 4 bytes each (uniform routing).
 *
 * Inference (rank 0, the leader, runs the model: sampling, attention, the
 * shared experts, every engine path; the others only serve their experts):
 * at each MoE layer the leader broadcasts [op, layer, rows per expert],
 * sends each owner the rows of the tokens that chose its experts (expert
 * order, tokens in order), the owners send the outputs back, and the leader
 * sums every routed output in expert order exactly as one process does, so
 * greedy output is identical. Per token and MoE layer the leader sends
 * K x (ep-1)/ep rows of C floats on average and receives as many back.
 *
 * A failed exchange (a peer died) sets rc/err and every later exchange is
 * skipped; the caller checks rc after a forward or backward.
 */
#ifndef DC_MOE_EP_H
#define DC_MOE_EP_H
#include <stddef.h>
#include <stdint.h>
#include "deepc.h"
#include "dist/dist.h"
#include "model/train_layers.h"

typedef struct scratch scratch;
typedef struct layer_w layer_w;

typedef struct moe_ep {
    dist d;                     /* the layout; exchanges run on DIST_EP */
    int E, El, e0;              /* experts per layer, per rank, this rank's first */
    int rc;                     /* first exchange failure (DC_OK: none) */
    dc_err err;
    uint64_t bytes;             /* bytes this rank sent to peers in dispatch / combine */
    double secs;                /* wall seconds in the exchanges */
    long exchanges;             /* alltoallv calls made */
    size_t *sc, *sd, *rc_, *rd; /* (ep) byte counts and displacements of the current exchange */
    real *yr;                   /* training: (cap_rows, C) expert outputs on the owner */
    size_t cap_rows;
    float *ibuf;                /* inference: own rows then everyone's, grown on demand */
    int *itok;                  /* inference: (2, T*K) slot bookkeeping */
    size_t icap;                /* rows of ibuf / itok */
    float *gbuf;                /* trainer_ep.c: the gathered gradient chunk (ep x chunk floats) */
    double *vbuf;               /* trainer_ep.c: losses and loads summed over the group */
} moe_ep;

/* moe_ep_init: the expert split of d (ep_size divides E) with room for
 * training micro-batches of up to N tokens (0: inference only). */
int moe_ep_init(moe_ep *x, const dist *d, int E, int K, int C, size_t N, dc_err *err);
void moe_ep_free(moe_ep *x);
/* moe_ep_owns: expert e's weights live on this rank */
static inline int moe_ep_owns(const moe_ep *x, int e) { return e >= x->e0 && e < x->e0 + x->El; }

/* moe_ep_train_fwd / moe_ep_bwd: moe_train_fwd / moe_bwd with the routed
 * experts on their owners (p->experts[e] / g->experts[e] only for owned e). */
void moe_ep_train_fwd(moe_ep *x, real *y, moe_act *a, const moe_w *p, const moe_dims *d, const real *in, int B,
                      int T);
void moe_ep_bwd(moe_ep *x, real *dx, const moe_w *g, const real *dy, const real *in, const moe_act *a,
                const moe_w *p, const moe_dims *d, int B, int T, real *scratch);

/* moe_ep_forward: moe_forward (model.h) of MoE layer `layer` on the leader
 * (ep_rank 0), whose model runs every token: the routed rows go to their
 * experts' owners, which answer in moe_ep_follow; the output has the same
 * bits as one process's. */
void moe_ep_forward(moe_ep *x, const dc_config *c, scratch *s, const layer_w *lw, int layer, int T, const float *xn,
                    float *out);
/* moe_ep_follow: a follower's loop (ep_rank > 0): run this rank's experts of
 * m for the leader's rows, layer call after layer call, until the leader's
 * moe_ep_stop (DC_OK) or a failure. */
int moe_ep_follow(moe_ep *x, const dc_model *m, dc_err *err);
/* moe_ep_stop: on the leader, release the followers (dc_model_free calls it). */
void moe_ep_stop(moe_ep *x);
#endif
