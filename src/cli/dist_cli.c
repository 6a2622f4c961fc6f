/* dist_cli.c — see dist_cli.h. */
#include "cli/dist_cli.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"
#include "train/trainer.h"

static int g_rank;

int cli_lead(void) { return g_rank == 0; }

int cli_dist(const char *cmd, long ep, long threads, dist *d, dc_err *err) {
    int rc = dist_init(d, (int)ep, err);
    if (rc) return rc;
    g_rank = d->rank;
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
    double whole = 2.0 * t->n * sizeof(float) / 1e6;
    if (t->zero)
        fprintf(stderr, "%s: optimiser state (AdamW m, v) per rank: %.2f MB at most (ZeRO-1 shards over %d replicas; "
                        "%.2f MB unsharded)\n", cmd, 2.0 * most * sizeof(float) / 1e6, t->dist.dp_size, whole);
    else
        fprintf(stderr, "%s: optimiser state (AdamW m, v) per rank: %.2f MB (--zero shards it over the %d replicas)\n",
                cmd, whole, t->dist.dp_size);
}
