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
#endif
