/* dist_cli.c — see dist_cli.h. */
#include "cli/dist_cli.h"
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "train/trainer.h"

static int g_rank;

int cli_lead(void) { return g_rank == 0; }

static struct {
    const char *cmd;
    double timeout;
    int rank;
} g_dog;

/* watchdog: checks once a second whether an exchange has waited too long */
static void *watchdog(void *arg) {
    (void)arg;
    double last = 0, resumed = 0;
    for (;;) {
        sleep(1);
        double since = dist_waiting_since();
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double now = ts.tv_sec + ts.tv_nsec * 1e-9;
        /* this process was itself stopped (SIGSTOP, a suspended machine): its
         * wait is not the others' silence; count from now */
        if (last > 0 && now - last > 5) resumed = now;
        last = now;
        if (since > 0 && now - (since > resumed ? since : resumed) > g_dog.timeout) {
            fprintf(stderr, "\ndeepc %s: error: rank %d (pid %d): no answer from the other ranks for %.0f s (--rank-timeout): "
                            "a rank died or cannot be reached; ending the job (continue from the last checkpoint "
                            "with --resume)\n", g_dog.cmd, g_dog.rank, (int)getpid(), g_dog.timeout);
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

int cli_dist(const char *cmd, long ep, long threads, double timeout, dist *d, dc_err *err) {
    int rc = dist_init(d, (int)ep, err);
    if (rc) return rc;
    g_rank = d->rank;
    if (d->size > 1 && timeout > 0) {
        g_dog.cmd = cmd, g_dog.timeout = timeout, g_dog.rank = d->rank;
        pthread_t th;
        if (pthread_create(&th, NULL, watchdog, NULL) == 0) pthread_detach(th);
    }
    /* ranks on one machine share its cores (OpenMPI says how many there are) */
    const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int local = ls ? atoi(ls) : 1;
    if (threads <= 0 && local > 1) {
        int per = omp_get_num_procs() / local;
        cli_threads(per > 0 ? per : 1);
    }
    if (d->size > 1 && d->rank == 0)
        fprintf(stderr, "%s: %d ranks = %d data-parallel replicas x %d expert-parallel, %d threads each\n", cmd,
                d->size, d->dp_size, d->ep_size, cli_get_threads());
    return DC_OK;
}

void cli_dist_optim_report(const char *cmd, const trainer *t) {
    if (!cli_lead() || (t->dist.size == 1 && !t->zero)) return;
    size_t most = 0;
    for (int r = 0; r < t->dist.dp_size; r++) most = t->cut[r + 1] - t->cut[r] > most ? t->cut[r + 1] - t->cut[r] : most;
    double whole = 2.0 * adam_mom_bytes(t->n, t->mv.bf16) / 1e6;
    if (t->zero)
        fprintf(stderr, "%s: optimiser state (AdamW m, v) per rank: %.2f MB at most (ZeRO-1 shards over %d replicas; "
                        "%.2f MB unsharded)\n", cmd, 2.0 * adam_mom_bytes(most, t->mv.bf16) / 1e6, t->dist.dp_size, whole);
    else
        fprintf(stderr, "%s: optimiser state (AdamW m, v) per rank: %.2f MB (--zero shards it over the %d replicas)\n",
                cmd, whole, t->dist.dp_size);
}
