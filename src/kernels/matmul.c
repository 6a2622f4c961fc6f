/* matmul.c — see matmul.h. */
#include "kernels/matmul.h"
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "kernels/cpu.h"
#include "kernels/dtype.h"
#include "kernels/ggml_types.h"
#include "kernels/quant.h"

int argmax_f32(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) b = v[i] > v[b] ? i : b;
    return b;
}

float dot_f32(const float *a, const float *b, int n) {
    /* a vector of partial sums (the order is fixed for a given n, so the result
     * does not depend on threads or batching) */
    float r = 0;
#pragma omp simd reduction(+ : r)
    for (int i = 0; i < n; i++) r += a[i] * b[i];
    return r;
}

/* ---------------------------------------------------------------- types */

static const struct {
    const char *name;
    int gg;
} TYPES[MAT_NTYPES] = {
    [MAT_F32] = {"f32", GG_F32},   [MAT_BF16] = {"bf16", GG_BF16}, [MAT_Q8_0] = {"q8", GG_Q8_0},
    [MAT_Q4_0] = {"q4_0", GG_Q4_0}, [MAT_Q4_K] = {"q4_k", GG_Q4_K}, [MAT_Q6_K] = {"q6_k", GG_Q6_K},
};

const char *mat_type_name(int type) { return type > 0 && type < MAT_NTYPES ? TYPES[type].name : "f32"; }

int mat_type_parse(const char *s) {
    if (!strcasecmp(s, "q8_0")) return MAT_Q8_0;
    for (int t = 0; t < MAT_NTYPES; t++)
        if (!strcasecmp(s, TYPES[t].name)) return t;
    return -1;
}

int mat_type_gg(int type) { return type >= 0 && type < MAT_NTYPES ? TYPES[type].gg : GG_F32; }

int mat_type_from_gg(int gg) {
    for (int t = 0; t < MAT_NTYPES; t++)
        if (TYPES[t].gg == gg) return t;
    return -1;
}

size_t mat_type_bytes(int type, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    if (type == MAT_BF16) return n * 2;
    if (type == MAT_Q8_0) return cols % QK8_0 ? 0 : n / QK8_0 * sizeof(block_q8_0);
    if (type > MAT_Q8_0 && type < MAT_NTYPES) return gg_row_bytes(TYPES[type].gg, cols) * rows;
    return n * 4;
}

static int mat_is_gg(int type) { return type > MAT_Q8_0 && type < MAT_NTYPES; }

size_t mat_bytes(const mat *W) { return mat_type_bytes(W->type, W->rows, W->cols); }

void mat_row_f32(const mat *W, int r, float *dst) {
    size_t C = W->cols;
    if (W->type == MAT_BF16) bf16_to_f32_row(dst, (const uint16_t *)(void *)W->data + r * C, C);
    else if (W->type == MAT_Q8_0) q8_dequantize_row(dst, (const block_q8_0 *)(void *)W->data + r * (C / QK8_0), W->cols);
    else if (mat_is_gg(W->type)) {
        size_t rb = gg_row_bytes(TYPES[W->type].gg, W->cols);
        gg_dequantize(TYPES[W->type].gg, (const char *)(void *)W->data + r * rb, dst, W->cols);
    } else memcpy(dst, W->data + r * C, sizeof(float) * C);
}

void mat_convert(const mat *W, int type, void *dst) {
    size_t C = W->cols;
#pragma omp parallel for schedule(static) if ((size_t)W->rows * C > 65536)
    for (int r = 0; r < W->rows; r++) {
        const float *src = W->data + r * C;
        if (type == MAT_BF16) bf16_from_f32_row((uint16_t *)dst + r * C, src, C);
        else if (type == MAT_Q8_0) q8_quantize_row((block_q8_0 *)dst + r * (C / QK8_0), src, W->cols);
        else if (mat_is_gg(type))
            gg_quantize(TYPES[type].gg, src, (char *)dst + r * gg_row_bytes(TYPES[type].gg, W->cols), W->cols);
        else memcpy((float *)dst + r * C, src, sizeof(float) * C);
    }
}

/* ---------------------------------------------------------------- workspace */

/* Per-thread scratch that only grows: quantised activations and dequantised
 * weight chunks. Steady-state decoding allocates nothing. NULL on OOM. A
 * thread that ends (a server's worker, a program's own pthread) gives its
 * scratch back through the key's destructor. */
typedef struct ws_slot {
    void *p;
    size_t n;
} ws_slot;
static _Thread_local ws_slot ws[2];
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_free(void *arg) {
    ws_slot *w = arg;
    for (int i = 0; i < 2; i++) free(w[i].p), w[i].p = NULL, w[i].n = 0;
}

static void ws_key_init(void) { pthread_key_create(&ws_key, ws_free); }

static void *workspace(int i, size_t n) {
    if (ws[i].n >= n) return ws[i].p;
    if (!ws[0].p && !ws[1].p) { /* this thread's first: free it when the thread ends */
        pthread_once(&ws_once, ws_key_init);
        pthread_setspecific(ws_key, ws);
    }
    free(ws[i].p);
    n = (n + 4095) & ~(size_t)4095;
    ws[i].p = aligned_alloc(64, n);
    ws[i].n = ws[i].p ? n : 0;
    return ws[i].p;
}

/* ---------------------------------------------------------------- products */

/* rows [r0, r1) times tokens [t0, t0 + n) by the kernel of W's type */
static void mv_call(const kern *k, float *out, const float *x, const q8_act *xa, const mat *W, int r0, int r1, int t0,
                    int n) {
    const int R = W->rows, C = W->cols;
    float *o = out + (size_t)t0 * R;
    const float *xt = x + (size_t)t0 * C;
    if (W->type == MAT_F32) {
        k->mv_f32(o, R, W->data, C, r0, r1, xt, n);
        return;
    }
    if (W->type == MAT_BF16) {
        k->mv_bf16(o, R, (void *)W->data, C, r0, r1, xt, n);
        return;
    }
    q8_act v = q8_act_view(xa, t0, n);
    if (W->type == MAT_Q8_0) k->mv_q8(o, R, (void *)W->data, C, r0, r1, &v, n);
    else if (W->type == MAT_Q4_0) k->mv_q4_0(o, R, W->data, C, r0, r1, &v, n);
    else if (W->type == MAT_Q4_K) k->mv_q4_k(o, R, W->data, C, r0, r1, &v, n);
    else k->mv_q6_k(o, R, W->data, C, r0, r1, &v, n);
}

/* The matvec kernels over all T tokens: rows split over the OpenMP threads;
 * each thread walks its rows in chunks of about 64 KB of weights and, for each
 * chunk, the tokens in tiles of about 32 KB of activations, so both stay in
 * cache when T is large (prefill; the kernels take tokens a few at a time
 * over all the rows they are given). A token's sums do not depend on the tiling
 * (matvec.h), so its bits do not depend on T or on its place. */
/* share i of n of W's rows, all T tokens, in cache-sized chunks and tiles */
static void mv_share(const kern *k, float *out, const float *x, const q8_act *xa, const mat *W, int T, int i, int n) {
    const int R = W->rows;
    const size_t xb = (size_t)W->cols * (W->type == MAT_F32 || W->type == MAT_BF16 ? 4 : 1);
    const int tt = (32u << 10) / xb > 4 ? (int)((32u << 10) / xb) & ~3 : 4;
    const int rc = T <= 4 ? R : (64u << 10) / mat_type_bytes(W->type, 1, W->cols) > 4
                                    ? (int)((64u << 10) / mat_type_bytes(W->type, 1, W->cols)) & ~3 : 4;
    int r0 = (int)((int64_t)R * i / n), r1 = (int)((int64_t)R * (i + 1) / n);
    for (int c0 = r0; c0 < r1; c0 += rc)
        for (int t0 = 0; t0 < T; t0 += tt)
            mv_call(k, out, x, xa, W, c0, r1 - c0 < rc ? r1 : c0 + rc, t0, T - t0 < tt ? T - t0 : tt);
}

static void mv_threads(float *out, const float *x, const q8_act *xa, const mat *W, int T) {
    const kern *k = kern_get();
    const int R = W->rows;
    size_t work = (size_t)R * W->cols * T;
    int nthr = work < 32768 ? 1 : omp_get_max_threads();
    if (nthr > R) nthr = R;
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    mv_share(k, out, x, xa, W, T, omp_get_thread_num(), omp_get_num_threads());
}

/* bf16 GEMM: dequantise up to ~8 MB of rows to float32, sgemm, repeat */
static int gemm_chunks(float *out, const float *x, const mat *W, int T) {
    const int R = W->rows, C = W->cols;
    int rows = (int)((8u << 20) / (sizeof(float) * C));
    if (rows < 16) rows = 16;
    if (rows > R) rows = R;
    float *buf = workspace(1, sizeof(float) * (size_t)rows * C);
    if (!buf) return 0;
    for (int r0 = 0; r0 < R; r0 += rows) {
        int n = R - r0 < rows ? R - r0 : rows;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < n; r++) mat_row_f32(W, r0 + r, buf + (size_t)r * C);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, C, 1.0f, x, C, buf, C, 0.0f, out + r0, R);
    }
    return 1;
}

void matmul(float *out, const float *x, const mat *W, int T) {
    const int R = W->rows, C = W->cols;
    if (W->type == MAT_F32 && T > MATMUL_MV_T_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, R, C, 1.0f, x, C, W->data, C, 0.0f, out, R);
        return;
    }
    if (W->type == MAT_BF16 && T > MATMUL_MV_T && gemm_chunks(out, x, W, T)) return;
    matmul_mv(out, x, W, T);
}

void matmul_mv(float *out, const float *x, const mat *W, int T) {
    const int C = W->cols;
    q8_act xa = {0};
    if (W->type == MAT_Q8_0 || mat_is_gg(W->type)) {
        void *buf = workspace(0, q8_act_bytes(T, C));
        if (!buf) { /* out of memory: the oracle needs only one row */
            matmul_ref(out, x, W, T);
            return;
        }
        q8_act_point(&xa, buf, T, C);
        /* each token on its own, so threads give the same bytes */
        const kern *k = kern_get();
#pragma omp parallel for schedule(static) if (T >= 16)
        for (int t = 0; t < T; t++) k->q8_fill(&xa, x, t, t + 1);
    }
    mv_threads(out, x, &xa, W, T);
}

/* ---------------------------------------------------------------- inside a parallel region */

int matmul_is_mv(const mat *W, int T) {
    return !(W->type == MAT_F32 && T > MATMUL_MV_T_F32) && !(W->type == MAT_BF16 && T > MATMUL_MV_T);
}

int mv_act_init(mv_act *a, int slot, const mat *W, int T) {
    memset(a, 0, sizeof *a);
    if (W->type != MAT_Q8_0 && !mat_is_gg(W->type)) return 1;
    void *buf = workspace(slot & 1, q8_act_bytes(T, W->cols));
    if (!buf) return 0;
    q8_act_point(&a->xa, buf, T, W->cols);
    a->q = 1;
    return 1;
}

void mv_act_fill(mv_act *a, const float *x, int T, int ith, int nth) {
    if (!a->q) return;
    const kern *k = kern_get();
    for (int t = ith; t < T; t += nth) k->q8_fill(&a->xa, x, t, t + 1);
}

void matmul_mv_share(float *out, const float *x, const mv_act *a, const mat *W, int T, int ith, int nth) {
    mv_share(kern_get(), out, x, a->q ? &a->xa : NULL, W, T, ith, nth);
}

void matmul_ref(float *out, const float *x, const mat *W, int T) {
    float *w = malloc(sizeof(float) * (size_t)W->cols);
    if (!w) return; /* the oracle of tests only */
    for (int r = 0; r < W->rows; r++) {
        mat_row_f32(W, r, w);
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * W->cols;
            double s = 0;
            for (int c = 0; c < W->cols; c++) s += (double)w[c] * xt[c];
            out[(size_t)t * W->rows + r] = (float)s;
        }
    }
    free(w);
}
