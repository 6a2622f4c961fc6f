/*
 * hugemem.h — memory for big arrays that are streamed from DRAM (a model's
 * weights, the bandwidth probe's buffer).
 *
 * huge_alloc(n): n bytes (rounded up to whole 2 MiB when n is at least
 * that), 2 MiB-aligned, with transparent huge pages asked for
 * (madvise(MADV_HUGEPAGE): the kernel's THP setting here is "madvise", so
 * plain allocations get 4 KiB pages). Streaming a 1.6 MB expert matrix from
 * DRAM on one Zen 3 core in this VM read 8-10% more a second from huge pages
 * (issue 15: a TLB miss, and a nested page walk, every 4 KiB otherwise).
 * Where the kernel gives none the memory is plain and works the same.
 * Released with free(); NULL when out of memory.
 */
#ifndef DC_HUGEMEM_H
#define DC_HUGEMEM_H
#include <stddef.h>

void *huge_alloc(size_t n);
#endif
