/* matmul.c — see matmul.h. */
#include "kernels/matmul.h"
#include <cblas.h>

float dot_f32(const float *a, const float *b, int n) {
    /* eight independent partial sums let the compiler keep a vector register
     * per lane group busy instead of one serial chain */
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

void matmul_ref(float *out, const float *x, const mat *W, int T) {
    for (int t = 0; t < T; t++)
        for (int r = 0; r < W->rows; r++) {
            double s = 0;
            const float *w = W->data + (size_t)r * W->cols, *xt = x + (size_t)t * W->cols;
            for (int c = 0; c < W->cols; c++) s += (double)w[c] * xt[c];
            out[(size_t)t * W->rows + r] = (float)s;
        }
}

void matmul(float *out, const float *x, const mat *W, int T) {
    const int R = W->rows, C = W->cols;
    if (T == 1) {
#pragma omp parallel for schedule(static) if (R * (size_t)C > 32768)
        for (int r = 0; r < R; r++) out[r] = dot_f32(W->data + (size_t)r * C, x, C);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, R, C, 1.0f, x, C, W->data, C, 0.0f, out, R);
}
