/*
 * progress_bar.c — the CLI's drawing of the library's progress reports
 * (dc_set_progress): a bar with rate and ETA on stderr (base/progress.c) for
 * an operation still running after a second, so quick loads stay quiet.
 * Loading and writing count tensors; init counts megabytes written.
 */
#include <string.h>
#include "base/progress.h"
#include "cli/cli.h"

typedef struct bar_state {
    progress pb;
    const char *stage;
    double t0;
    int shown;
} bar_state;

static void draw(void *ctx, const char *stage, long long done, long long total) {
    bar_state *b = ctx;
    int mb = strcmp(stage, "init") == 0;
    if (done == 0 || !b->stage || strcmp(b->stage, stage) != 0) {
        if (b->shown) progress_end(&b->pb);
        b->stage = stage, b->t0 = progress_now(), b->shown = 0;
        if (done == 0) return;
    }
    if (!b->shown) {
        if (done >= total || progress_now() - b->t0 < 1.0) return;
        progress_start(&b->pb, stage, mb ? total / 1000000 : total);
        b->pb.t0 = b->t0;
        b->shown = 1;
    }
    progress_update(&b->pb, mb ? done / 1000000 : done, mb ? "MB" : "tensors", NULL);
    if (done >= total) {
        progress_end(&b->pb);
        b->shown = 0, b->stage = NULL;
    }
}

void cli_progress_bars(void) {
    static bar_state st;
    dc_set_progress(draw, &st);
}
