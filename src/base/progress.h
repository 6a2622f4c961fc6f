/*
 * progress.h — a progress bar with rate and ETA on stderr for long work.
 * On a terminal it redraws one line; elsewhere (logs, pipes) it prints a line
 * at most every few seconds, so logs stay readable.
 */
#ifndef DC_PROGRESS_H
#define DC_PROGRESS_H
#include <stdint.h>

typedef struct progress {
    const char *label;
    int64_t total;
    double t0, last;
    int tty;
} progress;

void progress_start(progress *p, const char *label, int64_t total);
/* progress_update: done of total; unit names what is counted ("tok", "step");
 * extra (may be NULL) is appended to the line. */
void progress_update(progress *p, int64_t done, const char *unit, const char *extra);
/* progress_end: finish the line. */
void progress_end(progress *p);
double progress_now(void);

/* libprog: a long library operation reporting to dc_set_progress's function
 * (nothing when none is set): start with the total, add what is done (from
 * the starting thread only), end (reports done == total once). */
typedef struct libprog {
    const char *stage;
    int64_t done, total;
    double last;
} libprog;
void libprog_start(libprog *p, const char *stage, int64_t total);
void libprog_add(libprog *p, int64_t n);
void libprog_end(libprog *p);
#endif
