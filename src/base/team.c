/* team.c — see team.h. */
#include "base/team.h"
#include <omp.h>
#include <sched.h>

/* spins before each yield: ~10 us of pause on Zen 5 (a pause ~40 cycles) */
#define SPINS 1024

void team_bar_init(team_bar *b) {
    __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->gen, 0, __ATOMIC_RELAXED);
}

team team_of(team_bar *b) { return (team){omp_get_thread_num(), omp_get_num_threads(), b}; }

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void team_sync(const team *t) {
    if (t->n <= 1) return;
    team_bar *b = t->bar;
    const unsigned g = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == (unsigned)t->n) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->gen, g + 1, __ATOMIC_RELEASE);
        return;
    }
    for (int s = 0; __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == g;)
        if (++s < SPINS) relax();
        else s = 0, sched_yield();
}
