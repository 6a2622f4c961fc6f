/* hugemem.c — see hugemem.h. */
#include "base/hugemem.h"
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *huge_alloc(size_t n) {
    if (n < HUGE_PAGE) return aligned_alloc(64, (n + 63) & ~(size_t)63);
    n = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1); /* aligned_alloc: a whole number of the alignment */
    void *p = aligned_alloc(HUGE_PAGE, n);
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, n, MADV_HUGEPAGE); /* advice only: without it the pages are 4 KiB */
#endif
    return p;
}
