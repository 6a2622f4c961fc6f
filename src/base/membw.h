/*
 * membw.h — the machine's memory read bandwidth, measured: the bound the
 * decode benchmarks compare their weight streaming against.
 *
 * membw_read reads buf (bytes long) with nthr OpenMP threads, each thread its
 * own slice as S interleaved sequential streams, 64 bytes per stream per step
 * (S = 4 and 8, each with and without a software prefetch 1 KB ahead, are
 * tried: one stream per core reads well below what the
 * memory delivers, since a core's prefetchers keep few lines in flight per
 * stream; on the 2-core AMD EPYC of issue 15 one stream read 7.6 GB/s, four
 * 12.4, in the same run), and returns the best rate over reps passes of each
 * S, in GB/s (1e9 bytes a second). The decode kernels read their weights the
 * same way (four row streams per thread), so this is the rate they can reach.
 * Returns 0 when buf is NULL, bytes < 64 KB, nthr < 1 or reps < 1.
 * buf is borrowed and only read; its contents do not matter (integer sums).
 * Must not be called from inside a parallel region.
 */
#ifndef DC_MEMBW_H
#define DC_MEMBW_H
#include <stddef.h>

double membw_read(const void *buf, size_t bytes, int nthr, int reps);
#endif
