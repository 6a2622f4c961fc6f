/* test_matmul.c — the threaded / BLAS matmul against the plain C oracle, on
 * random and odd shapes (src/kernels/matmul.c). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
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

/* a quantised matrix of 16 MB and more at T <= 4 goes to the threads in 4 MB
 * chunks of rows (matmul.c mv_chunks): each row's sums are the one-thread
 * ones (the same bits), every row written, for the interleaved q6_kx8 and
 * q8 (rows not a multiple of a chunk, nor of 8); float32 (halves) beside */
static void big_chunks(void) {
    const int R = 20011, C = 1024, types[] = {MAT_F32, MAT_Q6_KX8, MAT_Q8_0};
    rng r;
    rng_seed(&r, 11);
    float *w = malloc(sizeof(float) * (size_t)R * C), *x = malloc(sizeof(float) * 4 * C);
    float *a = malloc(sizeof(float) * 4 * R), *b = malloc(sizeof(float) * 4 * R);
    void *q = malloc(sizeof(float) * (size_t)R * C);
    if (!w || !x || !a || !b || !q) {
        CHECK(0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)R * C; i++) w[i] = rng_normal(&r);
    for (int i = 0; i < 4 * C; i++) x[i] = rng_normal(&r);
    const int nt = omp_get_max_threads();
    for (int k = 0; k < 3; k++) {
        mat F = {w, MAT_F32, R, C}, W = {types[k] == MAT_F32 ? w : q, types[k], R, C};
        if (types[k] != MAT_F32) mat_convert(&F, types[k], q);
        CHECK(mat_bytes(&W) >= (16u << 20), "%s: %zu bytes, under the chunked size",
              mat_type_name(types[k]), mat_bytes(&W));
        for (int T = 1; T <= 4; T++) {
            for (int i = 0; i < 4 * R; i++) a[i] = b[i] = NAN;
            omp_set_num_threads(1);
            matmul(a, x, &W, T);
            omp_set_num_threads(2);
            matmul(b, x, &W, T);
            int diff = 0, unset = 0;
            for (int i = 0; i < T * R; i++) diff += memcmp(&a[i], &b[i], sizeof(float)) != 0, unset += b[i] != b[i];
            CHECK(!diff && !unset, "%s T=%d: %d outputs differ from one thread's, %d not written", mat_type_name(types[k]),
                  T, diff, unset);
        }
    }
    omp_set_num_threads(nt);
out:
    free(w), free(x), free(a), free(b), free(q);
}

/* argmax_f32 (chunked vector maximum, then the first index) against the
 * scalar rule `b = v[i] > v[b] ? i : b` on lengths across the chunk
 * boundaries, with ties, NaNs (never winning; a NaN first gives 0),
 * infinities and signed zeros */
static int argmax_scalar(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) b = v[i] > v[b] ? i : b;
    return b;
}

static void argmax_rule(void) {
    rng r;
    rng_seed(&r, 9);
    enum { N = 1100 };
    float v[N];
    int bad = 0, trials = 0;
    const float pick[] = {NAN, -INFINITY, INFINITY, -0.0f, 0.0f, -3, -1, 1, 2, 2};
    for (int t = 0; t < 4000; t++) {
        int n = 1 + (int)(rng_u64(&r) % N);
        for (int i = 0; i < n; i++) {
            int k = (int)(rng_u64(&r) % 10);
            v[i] = t % 4 == 0 ? (k < 2 ? pick[k] : -INFINITY) : t % 4 == 1 && k == 2 ? 1 : pick[k];
        }
        bad += argmax_f32(v, n) != argmax_scalar(v, n), trials++;
    }
    printf("    %d of %d arrays give another index than the scalar rule\n", bad, trials);
    CHECK(bad == 0, "argmax_f32 differs from the scalar rule in %d arrays", bad);
    for (int i = 0; i < 700; i++) v[i] = 0;
    v[0] = 5, v[300] = 7, v[600] = 7;
    CHECK(argmax_f32(v, 700) == 300, "ties across chunks: the first (%d)", argmax_f32(v, 700));
}

int main(void) {
    RUN(shapes);
    RUN(big_chunks);
    RUN(argmax_rule);
    return harness_done();
}
