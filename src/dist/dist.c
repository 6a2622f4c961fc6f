/*
 * dist.c — the rank layout and collectives of dist.h: MPI when built with
 * -DDC_MPI, a single rank otherwise (copies, no-ops).
 */
#include "dist/dist.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#ifdef DC_MPI
#include <mpi.h>
#endif

static uint64_t g_sent;
static volatile double g_wait; /* the start of the collective in progress (0: none) */

uint64_t dist_bytes_sent(void) { return g_sent; }
double dist_waiting_since(void) { return g_wait; }

__attribute__((unused)) static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
/* WAIT(call): the call, with g_wait set while it runs */
#define WAIT(call) (g_wait = mono(), wait_rc = (call), g_wait = 0, wait_rc)

void dist_single(dist *d) {
    memset(d, 0, sizeof *d);
    d->size = d->dp_size = d->ep_size = 1;
}

#ifndef DC_MPI
int dist_start(int *argc, char ***argv, dc_err *err) {
    (void)argc, (void)argv, (void)err;
    return DC_OK;
}
void dist_stop(void) {}
int dist_enabled(void) { return 0; }
int dist_world_size(void) { return 1; }
int dist_init(dist *d, int ep, dc_err *err) {
    dist_single(d);
    if (ep != 1) return err_set(err, DC_EARG, "dist: --ep %d needs %d ranks; this deepc was built without MPI (make MPI=1)", ep, ep);
    return DC_OK;
}
void dist_free(dist *d) { (void)d; }
int dist_barrier(const dist *d, int g, dc_err *err) { (void)d, (void)g, (void)err; return DC_OK; }
int dist_bcast(const dist *d, int g, void *buf, size_t bytes, int root, dc_err *err) {
    (void)d, (void)g, (void)buf, (void)bytes, (void)root, (void)err;
    return DC_OK;
}
int dist_allgather(const dist *d, int g, const void *send, void *recv, size_t bytes, dc_err *err) {
    (void)d, (void)g, (void)err;
    if (recv != send) memmove(recv, send, bytes);
    return DC_OK;
}
int dist_alltoallv(const dist *d, int g, const void *send, const size_t *scount, const size_t *sdispl, void *recv,
                   const size_t *rcount, const size_t *rdispl, dc_err *err) {
    (void)d, (void)g;
    if (scount[0] != rcount[0]) return err_set(err, DC_EARG, "dist_alltoallv: sends %zu bytes to itself, expects %zu", scount[0], rcount[0]);
    memmove((char *)recv + rdispl[0], (const char *)send + sdispl[0], scount[0]);
    return DC_OK;
}
int dist_sum_f64(const dist *d, int g, double *x, size_t n, dc_err *err) {
    (void)d, (void)g, (void)x, (void)n, (void)err;
    return DC_OK;
}
int dist_allgatherv(const dist *d, int g, const void *send, void *recv, const size_t *rcount, const size_t *rdispl,
                    dc_err *err) {
    (void)d, (void)g, (void)err;
    if (send) memmove((char *)recv + rdispl[0], send, rcount[0]);
    return DC_OK;
}
void dist_abort(int code) { exit(code); }
#else
/* ---------------------------------------------------------------- MPI */
static int g_started;

static int group_size(const dist *d, int g) {
    return g == DIST_WORLD ? d->size : g == DIST_DP ? d->dp_size : d->ep_size;
}


static int mpi_err(dc_err *err, const char *what, int rc) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return err_set(err, DC_EIO, "dist: %s failed: %.*s (a rank died or cannot be reached?)", what, len, msg);
}

/* launched: mpirun (OpenMPI, or a PMI launcher) started this process; a
 * plain run stays a quick single process without MPI_Init */
static int launched(void) {
    static const char *const ENV[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof ENV / sizeof *ENV; i++)
        if (getenv(ENV[i])) return 1;
    return 0;
}

int dist_start(int *argc, char ***argv, dc_err *err) {
    if (!launched()) return DC_OK;
    int provided = 0, rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_err(err, "MPI_Init_thread", rc);
    g_started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return DC_OK;
}
void dist_stop(void) {
    if (g_started) MPI_Finalize();
    g_started = 0;
}
int dist_enabled(void) { return 1; }
int dist_world_size(void) {
    int n = 1;
    if (g_started) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

static MPI_Comm comm_of(const dist *d, int g) {
    return d->comm[g] ? *(MPI_Comm *)d->comm[g] : MPI_COMM_SELF;
}

int dist_init(dist *d, int ep, dc_err *err) {
    dist_single(d);
    if (!g_started) {
        if (ep != 1) return err_set(err, DC_EARG, "dist: --ep %d needs %d ranks (run under mpirun)", ep, ep);
        return DC_OK;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    if (ep < 1 || d->size % ep != 0)
        return err_set(err, DC_EARG, "dist: --ep %d does not divide the %d ranks of the job", ep, d->size);
    d->ep_size = ep;
    d->dp_size = d->size / ep;
    d->ep_rank = d->rank % ep;
    d->dp_rank = d->rank / ep;
    for (int g = 0; g < 3; g++) {
        MPI_Comm *c = malloc(sizeof *c);
        if (!c) {
            dist_free(d);
            return err_set(err, DC_ENOMEM, "dist: out of memory");
        }
        int rc = g == DIST_WORLD ? MPI_Comm_dup(MPI_COMM_WORLD, c)
               : g == DIST_DP    ? MPI_Comm_split(MPI_COMM_WORLD, d->ep_rank, d->dp_rank, c)
                                 : MPI_Comm_split(MPI_COMM_WORLD, d->dp_rank, d->ep_rank, c);
        if (rc != MPI_SUCCESS) {
            free(c);
            dist_free(d);
            return mpi_err(err, "MPI_Comm_split", rc);
        }
        MPI_Comm_set_errhandler(*c, MPI_ERRORS_RETURN);
        d->comm[g] = c;
    }
    return DC_OK;
}

void dist_free(dist *d) {
    for (int g = 0; g < 3; g++)
        if (d->comm[g]) {
            MPI_Comm_free((MPI_Comm *)d->comm[g]);
            free(d->comm[g]);
            d->comm[g] = NULL;
        }
}

int dist_barrier(const dist *d, int g, dc_err *err) {
    if (group_size(d, g) == 1) return DC_OK;
    int wait_rc, rc = WAIT(MPI_Barrier(comm_of(d, g)));
    return rc == MPI_SUCCESS ? DC_OK : mpi_err(err, "MPI_Barrier", rc);
}

int dist_bcast(const dist *d, int g, void *buf, size_t bytes, int root, dc_err *err) {
    if (group_size(d, g) == 1) return DC_OK;
    if (bytes > INT32_MAX) return err_set(err, DC_EARG, "dist_bcast: %zu bytes in one call", bytes);
    int wait_rc, rc = WAIT(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, comm_of(d, g)));
    g_sent += bytes;
    return rc == MPI_SUCCESS ? DC_OK : mpi_err(err, "MPI_Bcast", rc);
}

int dist_allgather(const dist *d, int g, const void *send, void *recv, size_t bytes, dc_err *err) {
    if (group_size(d, g) == 1) {
        if (recv != send) memmove(recv, send, bytes);
        return DC_OK;
    }
    if (bytes > INT32_MAX) return err_set(err, DC_EARG, "dist_allgather: %zu bytes in one call", bytes);
    int wait_rc, rc = WAIT(MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, comm_of(d, g)));
    g_sent += bytes * (uint64_t)(group_size(d, g) - 1);
    return rc == MPI_SUCCESS ? DC_OK : mpi_err(err, "MPI_Allgather", rc);
}

int dist_alltoallv(const dist *d, int g, const void *send, const size_t *scount, const size_t *sdispl, void *recv,
                   const size_t *rcount, const size_t *rdispl, dc_err *err) {
    int n = group_size(d, g);
    int sc[n], sd[n], rc_[n], rd[n];
    for (int i = 0; i < n; i++) {
        if (scount[i] > INT32_MAX || sdispl[i] > INT32_MAX || rcount[i] > INT32_MAX || rdispl[i] > INT32_MAX)
            return err_set(err, DC_EARG, "dist_alltoallv: more than 2 GB in one call");
        sc[i] = (int)scount[i], sd[i] = (int)sdispl[i], rc_[i] = (int)rcount[i], rd[i] = (int)rdispl[i];
        if (i != (g == DIST_WORLD ? d->rank : g == DIST_DP ? d->dp_rank : d->ep_rank)) g_sent += scount[i];
    }
    int wait_rc, rc = WAIT(MPI_Alltoallv(send, sc, sd, MPI_BYTE, recv, rc_, rd, MPI_BYTE, comm_of(d, g)));
    return rc == MPI_SUCCESS ? DC_OK : mpi_err(err, "MPI_Alltoallv", rc);
}

/* dist_sum_f64: gathered, then summed in rank order on every rank, so the
 * result's bits do not depend on MPI's reduction tree */
int dist_sum_f64(const dist *d, int g, double *x, size_t n, dc_err *err) {
    int m = group_size(d, g);
    if (m == 1) return DC_OK;
    double *all = malloc(sizeof *all * n * (size_t)m);
    if (!all) return err_set(err, DC_ENOMEM, "dist_sum_f64: out of memory");
    int rc = dist_allgather(d, g, x, all, n * sizeof *x, err);
    if (rc == DC_OK)
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (int r = 0; r < m; r++) s += all[(size_t)r * n + i];
            x[i] = s;
        }
    free(all);
    return rc;
}

static int my_index(const dist *d, int g) { return g == DIST_WORLD ? d->rank : g == DIST_DP ? d->dp_rank : d->ep_rank; }

int dist_allgatherv(const dist *d, int g, const void *send, void *recv, const size_t *rcount, const size_t *rdispl,
                    dc_err *err) {
    int n = group_size(d, g), me = my_index(d, g);
    if (n == 1) {
        if (send) memmove((char *)recv + rdispl[0], send, rcount[0]);
        return DC_OK;
    }
    int rc_[n], rd[n];
    for (int i = 0; i < n; i++) {
        if (rcount[i] > INT32_MAX || rdispl[i] > INT32_MAX)
            return err_set(err, DC_EARG, "dist_allgatherv: more than 2 GB in one call");
        rc_[i] = (int)rcount[i], rd[i] = (int)rdispl[i];
    }
    g_sent += rcount[me] * (uint64_t)(n - 1);
    int wait_rc, rc = send ? WAIT(MPI_Allgatherv(send, rc_[me], MPI_BYTE, recv, rc_, rd, MPI_BYTE, comm_of(d, g)))
                           : WAIT(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, recv, rc_, rd, MPI_BYTE, comm_of(d, g)));
    return rc == MPI_SUCCESS ? DC_OK : mpi_err(err, "MPI_Allgatherv", rc);
}

void dist_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
#endif
