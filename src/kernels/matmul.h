/*
 * matmul.h — weight matrices and the products the model runs on them.
 *
 * A mat is a (rows, cols) row-major weight in torch Linear layout [out, in],
 * borrowed from whoever owns its storage (the model arena). Only float32 is
 * stored today; the type tag is where bf16 / int8 blocks go.
 *
 * matmul: out (T, rows) = x (T, cols) @ W^T. T == 1 runs a threaded
 * matrix-vector product; T > 1 goes to OpenBLAS sgemm.
 */
#ifndef DC_MATMUL_H
#define DC_MATMUL_H
#include <stddef.h>

enum { MAT_F32 = 0 };

typedef struct mat {
    float *data; /* (rows, cols), borrowed */
    int type;    /* MAT_* */
    int rows, cols;
} mat;

void matmul(float *out, const float *x, const mat *W, int T);
/* matmul_ref: the plain C oracle for tests (one thread, no BLAS). */
void matmul_ref(float *out, const float *x, const mat *W, int T);
/* dot: sum_i a[i] * b[i]. */
float dot_f32(const float *a, const float *b, int n);
#endif
