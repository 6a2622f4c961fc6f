/* dp.c — see dp.h. */
#include "dist/dp.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"

void dp_cuts(size_t n, size_t chunk, int parts, size_t *cut) {
    size_t nc = (n + chunk - 1) / chunk;
    for (int r = 0; r <= parts; r++) {
        size_t c = nc * (size_t)r / (size_t)parts, e = c * chunk;
        cut[r] = e < n ? e : n;
    }
}

int dp_round(const dist *d, int round, int A, const float *g, const size_t *cut, float *acc, float *recv,
             dc_err *err) {
    const int P = d->dp_size, me = d->dp_rank;
    const int first = round * P, cnt = A - first < P ? A - first : P;
    const size_t lo = cut[me], len = cut[me + 1] - lo;
    if (cnt <= 0) return DC_OK;
    if (P == 1) {
        for (size_t i = 0; i < len; i++) acc[i] += g[lo + i];
        return DC_OK;
    }
    size_t sc[P], sd[P], rc[P], rd[P];
    const int mine = me < cnt;
    for (int r = 0; r < P; r++) {
        sc[r] = mine ? (cut[r + 1] - cut[r]) * sizeof(float) : 0, sd[r] = cut[r] * sizeof(float);
        rc[r] = r < cnt ? len * sizeof(float) : 0, rd[r] = (size_t)r * len * sizeof(float);
    }
    int rcode = dist_alltoallv(d, DIST_DP, mine ? (const void *)g : (const void *)acc, sc, sd, recv, rc, rd, err);
    if (rcode) return rcode;
    for (int r = 0; r < cnt; r++) {
        const float *s = recv + (size_t)r * len;
        for (size_t i = 0; i < len; i++) acc[i] += s[i];
    }
    return DC_OK;
}

int dp_allgather(const dist *d, const size_t *cut, const float *src, float *x, dc_err *err) {
    const int P = d->dp_size;
    size_t rc[P], rd[P];
    for (int r = 0; r < P; r++) rc[r] = (cut[r + 1] - cut[r]) * sizeof(float), rd[r] = cut[r] * sizeof(float);
    return dist_allgatherv(d, DIST_DP, src, x, rc, rd, err);
}
