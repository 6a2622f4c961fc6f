/* test_hugemem.c — huge_alloc (src/base/hugemem.c): 2 MiB-aligned memory of
 * at least the size asked, usable to its last byte, small sizes too; where the
 * kernel backs it with huge pages (THP "always" or "madvise"), how much of it
 * is, from /proc/self/smaps (printed, not checked: compaction may not find a
 * free 2 MiB on a busy machine). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/hugemem.h"
#include "harness.h"

/* kB of AnonHugePages in the mapping that holds p; -1 when unknown */
static long huge_kb(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    long kb = -1;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ' ') && !strstr(line, "kB")) {
            in = (uintptr_t)p >= a && (uintptr_t)p < b;
            continue;
        }
        if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}

static void sizes(void) {
    static const size_t N[] = {1, 100, 4096, (2u << 20) - 1, 2u << 20, (2u << 20) + 1, 9u << 20};
    for (size_t i = 0; i < sizeof N / sizeof *N; i++) {
        unsigned char *p = huge_alloc(N[i]);
        CHECK(p != NULL, "huge_alloc(%zu) failed", N[i]);
        if (!p) continue;
        CHECK((uintptr_t)p % 64 == 0, "huge_alloc(%zu) not 64-byte aligned", N[i]);
        CHECK(N[i] < (2u << 20) || (uintptr_t)p % (2u << 20) == 0, "huge_alloc(%zu) not 2 MiB aligned", N[i]);
        memset(p, 0xa5, N[i]);
        int ok = p[0] == 0xa5 && p[N[i] - 1] == 0xa5;
        CHECK(ok, "huge_alloc(%zu): bytes not kept", N[i]);
        if (N[i] == (9u << 20)) printf("    9 MiB: %ld kB of it in huge pages\n", huge_kb(p));
        free(p);
    }
}

int main(void) {
    RUN(sizes);
    return harness_done();
}
