/*
 * team.h — the threads of one OpenMP parallel region as a team with a spin
 * barrier of its own.
 *
 * Issue 15: on the VMs deepc runs on, libgomp's barrier costs ~1.2 us and a
 * parallel region ~2.4 us (two barriers; the last thread to arrive wakes the
 * others with a futex syscall every time, waiting or not: strace counts one
 * a barrier), against ~0.06-0.15 us for two threads meeting on two flags.
 * A decode step ran ~40 regions and ~30 barriers a token. team_sync is a
 * sense-counting barrier on two cache lines (arrivals, generation): the
 * last to arrive bumps the generation; the others spin on it (pause, and
 * sched_yield after a while, so a team larger than the cores still moves).
 *
 *   team_bar bar; team_bar_init(&bar);       (before the region)
 *   #pragma omp parallel
 *   { team t = team_of(&bar); ... team_sync(&t); ... }
 *
 * The team is the threads the region got (omp_get_num_threads), whatever
 * was asked.
 */
#ifndef DC_TEAM_H
#define DC_TEAM_H

typedef struct team_bar {
    _Alignas(64) unsigned count; /* arrivals this round */
    _Alignas(64) unsigned gen;   /* rounds completed */
} team_bar;

typedef struct team {
    int i, n;      /* this thread, the team's threads */
    team_bar *bar; /* shared by the team */
} team;

void team_bar_init(team_bar *b);
/* team_of: the calling thread's place in the current parallel region's team
 * (its OpenMP thread number and count), meeting on b */
team team_of(team_bar *b);
/* team_sync: wait until all n threads of t's team arrive (memory written
 * before it is seen by every thread after it) */
void team_sync(const team *t);
#endif
