/* test_matmul.c — the threaded / BLAS matmul against the plain C oracle, on
 * random and odd shapes (src/kernels/matmul.c). */
#include <math.h>
#include <stdlib.h>
#include "base/rng.h"
#include "harness.h"
#include "kernels/matmul.h"

static void shapes(void) {
    int dims[][3] = {{1, 1, 1}, {1, 7, 13}, {1, 300, 257}, {2, 5, 3}, {3, 64, 33}, {17, 129, 65}, {64, 256, 512}, {5, 1, 1000}};
    rng r;
    rng_seed(&r, 7);
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        int T = dims[d][0], R = dims[d][1], C = dims[d][2];
        float *w = malloc(sizeof(float) * R * C), *x = malloc(sizeof(float) * T * C);
        float *a = malloc(sizeof(float) * T * R), *b = malloc(sizeof(float) * T * R);
        for (int i = 0; i < R * C; i++) w[i] = rng_normal(&r);
        for (int i = 0; i < T * C; i++) x[i] = rng_normal(&r);
        mat W = {w, MAT_F32, R, C};
        matmul(a, x, &W, T);
        matmul_ref(b, x, &W, T);
        /* normalised mean squared error, as ggml's backend tests judge kernels */
        double num = 0, den = 0;
        for (int i = 0; i < T * R; i++) num += (a[i] - b[i]) * (double)(a[i] - b[i]), den += (double)b[i] * b[i];
        CHECK(num / den < 1e-12, "T=%d R=%d C=%d: NMSE %g", T, R, C, num / den);
        free(w), free(x), free(a), free(b);
    }
}

int main(void) {
    RUN(shapes);
    return harness_done();
}
