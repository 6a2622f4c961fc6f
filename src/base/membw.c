/* membw.c — see membw.h. */
#include "base/membw.h"
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "base/progress.h"

/* the window the streams of one pass share */
#define MEMBW_WIN (32u << 20)

/* 32 bytes as one GCC vector: AVX2 loads where the target has them */
typedef unsigned long long v4u __attribute__((vector_size(32)));

#define INL static inline __attribute__((always_inline))

/* S streams of sl bytes each, sp bytes apart from p, interleaved 64 bytes at
 * a time; PF: with a software prefetch 1 KB ahead in each stream */
INL v4u read_streams(const char *p, size_t sl, size_t sp, int S, int PF) {
    v4u acc[8] = {{0}};
    for (size_t o = 0; o < sl; o += 64)
        _Pragma("GCC unroll 8") for (int s = 0; s < S; s++) {
            v4u a, b;
            if (PF) __builtin_prefetch(p + (size_t)s * sp + o + 1024);
            memcpy(&a, p + (size_t)s * sp + o, 32);
            memcpy(&b, p + (size_t)s * sp + o + 32, 32);
            acc[s] += a + b;
        }
    v4u t = {0};
    _Pragma("GCC unroll 8") for (int s = 0; s < S; s++) t += acc[s];
    return t;
}

/* one pass: thread i reads bytes [i per, (i + 1) per) of buf, in windows of
 * win bytes, each as S streams win / S bytes apart (win / S - 192 read from
 * each: a spacing of a power of two can put every stream in the same DRAM
 * bank, which the kernels' row streams are not); seconds */
static double pass(const char *buf, size_t per, size_t win, int nthr, int S, int PF, unsigned long long *sink) {
    double t0 = progress_now();
#pragma omp parallel num_threads(nthr)
    {
        const char *p = buf + per * (size_t)omp_get_thread_num();
        const size_t sp = win / (size_t)S, sl = sp - 192;
        v4u t = {0};
        for (size_t w = 0; w + win <= per; w += win)
            t += S == 4 ? (PF ? read_streams(p + w, sl, sp, 4, 1) : read_streams(p + w, sl, sp, 4, 0))
                        : (PF ? read_streams(p + w, sl, sp, 8, 1) : read_streams(p + w, sl, sp, 8, 0));
        unsigned long long x = t[0] ^ t[1] ^ t[2] ^ t[3];
#pragma omp atomic
        *sink ^= x; /* keeps the loads */
    }
    return progress_now() - t0;
}

double membw_read(const void *buf, size_t bytes, int nthr, int reps) {
    if (!buf || bytes < (64u << 10) || nthr < 1 || reps < 1) return 0;
    unsigned long long sink = 0;
    const size_t per = (bytes / (size_t)nthr) & ~(size_t)63;
    double best = 0;
    for (int v = 0; v < 4; v++) {
        const int S = v & 1 ? 8 : 4, PF = v >> 1;
        /* windows of at most MEMBW_WIN bytes, a whole number of S * 64 */
        size_t win = per < MEMBW_WIN ? per : MEMBW_WIN;
        win -= win % ((size_t)S * 64);
        const size_t done = per / win * (win - 192 * (size_t)S) * (size_t)nthr;
        for (int r = 0; r < reps; r++) {
            double dt = pass(buf, per, win, nthr, S, PF, &sink);
            double gbs = dt > 0 ? (double)done / dt / 1e9 : 0;
            best = gbs > best ? gbs : best;
        }
    }
    volatile unsigned long long keep = sink;
    (void)keep;
    return best;
}
