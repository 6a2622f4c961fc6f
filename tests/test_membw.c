/* test_membw.c — the read-bandwidth probe (src/base/membw.c) returns a sane
 * positive figure on 1 and 2 threads, and 0 for arguments it cannot use. It
 * does not judge the figure against a time: tests are never timed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/membw.h"
#include "harness.h"

static void figures(void) {
    size_t n = 64u << 20;
    char *buf = malloc(n);
    if (!buf) {
        CHECK(0, "out of memory for 64 MB");
        return;
    }
    memset(buf, 1, n);
    for (int thr = 1; thr <= 2; thr++) {
        double gbs = membw_read(buf, n, thr, 2);
        printf("    %d thread(s): %.1f GB/s over 64 MB\n", thr, gbs);
        /* above 0.05 GB/s (a 64 MB read in over a second) and below 10 TB/s */
        CHECK(isfinite(gbs) && gbs > 0.05 && gbs < 10000, "%d threads: %g GB/s", thr, gbs);
    }
    free(buf);
}

static void bad_arguments(void) {
    char small[1024];
    CHECK(membw_read(NULL, 1u << 20, 1, 1) == 0, "NULL buffer");
    CHECK(membw_read(small, sizeof small, 1, 1) == 0, "a buffer under 64 KB");
    CHECK(membw_read(small, 1u << 20, 0, 1) == 0, "0 threads");
    CHECK(membw_read(small, 1u << 20, 1, 0) == 0, "0 repetitions");
}

int main(void) {
    RUN(figures);
    RUN(bad_arguments);
    return harness_done();
}
