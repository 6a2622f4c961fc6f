/*
 * dist_cli.h — the commands' side of running on many ranks (src/dist/):
 * the options --ep N and --zero, the rank layout they give, threads shared
 * among the ranks of a machine, and who prints.
 *
 *   mpirun -np R deepc train ... [--ep E] [--zero]
 * R ranks = dp x ep: E ranks per expert group (default 1), dp = R / E
 * data-parallel replicas; --zero shards the AdamW state over the replicas
 * (ZeRO-1). docs/distributed.md.
 */
#ifndef DC_CLI_DIST_H
#define DC_CLI_DIST_H
#include "dist/dist.h"

/* the option lines every distributed command's --help shows */
#define DIST_HELP                                                                                     \
    "  --ep N                under mpirun: N ranks per expert group (default 1); the job's R\n"      \
    "                        ranks form R/N data-parallel replicas (docs/distributed.md)\n"           \
    "  --zero                ZeRO-1: each replica keeps and updates only its shard of the AdamW\n"    \
    "                        state (memory / replicas); the same results bit for bit\n"             \
    "  --rank-timeout S      end the job when the other ranks neither answer nor fail for S\n"       \
    "                        seconds in an exchange (default 600; 0: wait forever)\n"

/* the three option-table rows (opts.h) of those options, run settings that a
 * resumed run may change (a run resumes on any rank count) */
#define DIST_OPTS(ep, zero, timeout)                                                                  \
    {"ep", 0, OPT_LONG, &(ep), 1, 1 << 20, SET_NO}, {"zero", 0, OPT_FLAG, &(zero), 0, 0, SET_NO},    \
        {"rank-timeout", 0, OPT_FLOAT, &(timeout), 0, 1e9, SET_NO}

/* cli_dist: the layout for `ep` (dist_init); with threads 0 (the default)
 * each of the machine's ranks gets its share of the cores; rank 0 prints
 * the layout; with several ranks and timeout > 0, a watchdog thread ends
 * the process (exit status 3, with a message) when an exchange has waited
 * `timeout` seconds: a peer that stopped without dying (a machine gone from
 * the network) would otherwise hold the job forever; mpirun then ends the
 * others. Errors in err. */
int cli_dist(const char *cmd, long ep, long threads, double timeout, dist *d, dc_err *err);
/* cli_dist_optim_report: on rank 0 of a job of several ranks, the AdamW
 * state each rank holds (ZeRO-1: the largest shard, against the whole). */
struct trainer;
void cli_dist_optim_report(const char *cmd, const struct trainer *t);
/* cli_lead: this process prints and writes (rank 0; always without MPI). */
int cli_lead(void);
#endif
