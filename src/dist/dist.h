/*
 * dist.h — deepc across processes: the rank layout and the collectives the
 * trainers and the engine use. Built with MPI (OpenMPI) by `make MPI=1`
 * (-DDC_MPI); the plain build compiles the same functions for one rank, so
 * callers never test DC_MPI themselves and a single process behaves exactly
 * as before.
 *
 * Layout: world = dp x ep ranks. Rank r sits in data-parallel replica
 * dp_rank = r / ep and expert group position ep_rank = r % ep: the ep ranks
 * of one replica split the routed experts of every MoE layer between them
 * (rank e owns experts [e*E/ep, (e+1)*E/ep)); the dp replicas see different
 * shares of each global batch. Groups are sub-communicators:
 *   DIST_WORLD  every rank
 *   DIST_DP     the ranks with my ep_rank (one per replica): gradient sums
 *   DIST_EP     the ranks of my replica: token dispatch and combine
 *
 * Errors: a collective that fails (a peer died, the network broke) returns
 * DC_EIO with the MPI error text; the communicators use MPI_ERRORS_RETURN.
 * Ending a job whose peer died is the CLI's business (dist_abort).
 */
#ifndef DC_DIST_H
#define DC_DIST_H
#include <stddef.h>
#include <stdint.h>
#include "deepc.h"

enum { DIST_WORLD, DIST_DP, DIST_EP };

typedef struct dist {
    int rank, size;             /* in the world */
    int dp_rank, dp_size;       /* replica index, replica count */
    int ep_rank, ep_size;       /* position in the expert group, its size */
    void *comm[3];              /* MPI_Comm * per group (NULL in a 1-rank build) */
} dist;

/* dist_start: MPI_Init_thread (MPI_THREAD_FUNNELED) when built with MPI and
 * launched by mpirun; nothing otherwise. Call once, from main, before any
 * other dist_ call. dist_stop: MPI_Finalize if started. */
int dist_start(int *argc, char ***argv, dc_err *err);
void dist_stop(void);
/* dist_enabled: 1 when built with MPI (the binary can run on many ranks). */
int dist_enabled(void);
/* dist_world_size: ranks in the job (1 without MPI or without mpirun). */
int dist_world_size(void);

/* dist_init: the layout for `ep` ranks per expert group (ep divides the world
 * size; dp = size / ep). One rank: dp = ep = 1. dist_free: the communicators. */
int dist_init(dist *d, int ep, dc_err *err);
void dist_free(dist *d);

/* dist_single: the layout of a lone process (rank 0 of 1, no communicators). */
void dist_single(dist *d);

/* collectives on group g (DIST_*); a 1-rank group is a copy or nothing */
int dist_barrier(const dist *d, int g, dc_err *err);
int dist_bcast(const dist *d, int g, void *buf, size_t bytes, int root, dc_err *err);
/* dist_allgather: every rank's `bytes` bytes of send, in rank order, into recv
 * (size x bytes) */
int dist_allgather(const dist *d, int g, const void *send, void *recv, size_t bytes, dc_err *err);
/* dist_alltoallv: byte counts and displacements per rank of the group */
int dist_alltoallv(const dist *d, int g, const void *send, const size_t *scount, const size_t *sdispl, void *recv,
                   const size_t *rcount, const size_t *rdispl, dc_err *err);
/* dist_sum_f64: element-wise sum over the group of x (n doubles), in place;
 * the same bits on every rank. */
int dist_sum_f64(const dist *d, int g, double *x, size_t n, dc_err *err);

/* dist_allgatherv: every rank's rcount[r] bytes, at rdispl[r] of recv on
 * every rank; send NULL: this rank's part is already in place in recv.
 * (data parallel: src/dist/dp.h) */
int dist_allgatherv(const dist *d, int g, const void *send, void *recv, const size_t *rcount, const size_t *rdispl,
                    dc_err *err);

/* dist_abort: end every rank of the job (a peer failed); the CLI's last
 * resort, never called from library code. */
void dist_abort(int code);

/* dist_waiting_since: the CLOCK_MONOTONIC seconds at which the collective
 * now in progress began, or 0 when none is: a watchdog's measure of a peer
 * that neither answers nor fails (src/cli/dist_cli.c). */
double dist_waiting_since(void);

/* traffic counters (bytes this rank sent through the collectives) */
uint64_t dist_bytes_sent(void);
#endif
