/* matmul.c — see matmul.h. */
#include "kernels/matmul.h"
#include <math.h>
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu.h"
#include "kernels/dtype.h"
#include "kernels/gemm.h"
#include "kernels/quant.h"

/* The first index of the largest value, NaNs never winning (and v[0] a
 * NaN: 0), as the scalar `b = v[i] > v[b] ? i : b` gives it: each chunk's
 * maximum, the first chunk holding the largest, then the first index there
 * equal to it. A chunk's maximum in 16 lanes (a NaN never enters a lane, so
 * the lanes' order cannot change the maximum): gcc -O2 kept the one running
 * maximum of a plain loop as a chain of scalar vmaxss (~3 cycles a logit);
 * 16 lanes it turns into one vector max (mini's 128,896 logits, one Zen 5
 * thread: ~1% of a decoded token's time before, perf). */
#define ARGMAX_CHUNK 256
#define ARGMAX_LANES 16
int argmax_f32(const float *v, int n) {
    if (n <= 1 || v[0] != v[0]) return 0;
    float best = v[0];
    int bc = 0;
    for (int c = 0; c < n; c += ARGMAX_CHUNK) {
        const int e = n - c < ARGMAX_CHUNK ? n : c + ARGMAX_CHUNK;
        float l[ARGMAX_LANES], m = -INFINITY;
        for (int j = 0; j < ARGMAX_LANES; j++) l[j] = -INFINITY;
        int i = c;
        for (; i + ARGMAX_LANES <= e; i += ARGMAX_LANES)
            for (int j = 0; j < ARGMAX_LANES; j++) l[j] = v[i + j] > l[j] ? v[i + j] : l[j];
        for (; i < e; i++) m = v[i] > m ? v[i] : m;
        for (int j = 0; j < ARGMAX_LANES; j++) m = l[j] > m ? l[j] : m;
        if (m > best) best = m, bc = c;
    }
    for (int i = bc;; i++)
        if (v[i] == best) return i;
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

size_t mat_bytes(const mat *W) { return mat_type_bytes(W->type, W->rows, W->cols); }

void mat_row_f32(const mat *W, int r, float *dst) {
    const wtype *w = wtype_get(W->type);
    if (w->row_f32) { /* rows interleaved (q4_0x8) */
        w->row_f32(W->data, W->rows, r, W->cols, dst);
        return;
    }
    w->to_f32((const char *)(void *)W->data + (size_t)r * mat_type_bytes(W->type, 1, W->cols), dst, W->cols);
}

int mat_convert(const mat *W, int type, void *dst) {
    const wtype *w = wtype_get(type);
    if (!w || (!w->from_f32 && !w->from_f32_mat)) return 0;
    if (w->from_f32_mat) {
        w->from_f32_mat(W->data, W->rows, W->cols, dst);
        return 1;
    }
    const size_t C = W->cols, rb = mat_type_bytes(type, 1, W->cols);
#pragma omp parallel for schedule(static) if ((size_t)W->rows * C > 65536)
    for (int r = 0; r < W->rows; r++) w->from_f32(W->data + r * C, (char *)dst + r * rb, W->cols);
    return 1;
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
    const wtype *w = wtype_get(W->type);
    if (w->act == WT_ACT_F32) {
        w->mv[k->isa](o, R, W->data, C, r0, r1, x + (size_t)t0 * C, n);
        return;
    }
    q8_act v = q8_act_view(xa, t0, n);
    w->mv[k->isa](o, R, W->data, C, r0, r1, &v, n);
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
    const size_t xb = (size_t)W->cols * (wtype_get(W->type)->act == WT_ACT_F32 ? 4 : 1);
    const int tt = (32u << 10) / xb > 4 ? (int)((32u << 10) / xb) & ~3 : 4;
    /* chunks of 8 rows at least, a multiple of 8: the interleaved types' groups (repack.h) */
    const int rc = T <= 4 ? R : (64u << 10) / mat_type_bytes(W->type, 1, W->cols) > 8
                                    ? (int)((64u << 10) / mat_type_bytes(W->type, 1, W->cols)) & ~7 : 8;
    int r0 = (int)((int64_t)R * i / n), r1 = (int)((int64_t)R * (i + 1) / n);
    for (int c0 = r0; c0 < r1; c0 += rc)
        for (int t0 = 0; t0 < T; t0 += tt)
            mv_call(k, out, x, xa, W, c0, r1 - c0 < rc ? r1 : c0 + rc, t0, T - t0 < tt ? T - t0 : tt);
}

/* A big quantised matrix at a few tokens (the head in decode) goes to the
 * threads in chunks of MV_CHUNK bytes of rows, each taken by the next free
 * thread, not in one share each: issue 15, Zen 3, 2 threads, the 128896-row
 * q6_kx8 head, the two ways interleaved in one process, five runs: 4 MB
 * chunks 22.5-24.9 GB/s against 20.4-22.4 for halves (q4_0x8 and q8 the
 * same either way); mini Q4_0 decode paired with halves three times 135.0 /
 * 143.6 / 132.7 against 128.1 / 109.1 / 123.4 tokens/s. The float kinds
 * keep halves: f32 +0-3% there, F16 decode paired -0.3 to -4.5%. */
#define MV_CHUNK (4u << 20)

static void mv_chunks(const kern *k, float *out, const float *x, const q8_act *xa, const mat *W, int T, int nthr) {
    const int R = W->rows;
    const size_t rb = mat_type_bytes(W->type, 1, W->cols);
    const int rc = (int)(MV_CHUNK / rb) & ~31, nc = (R + rc - 1) / rc; /* whole groups of 8 (repack.h) */
    int next = 0;
#pragma omp parallel num_threads(nthr)
    for (int c; (c = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED)) < nc;)
        mv_call(k, out, x, xa, W, c * rc, c == nc - 1 ? R : (c + 1) * rc, 0, T);
}

static void mv_threads(float *out, const float *x, const q8_act *xa, const mat *W, int T) {
    const kern *k = kern_get();
    const int R = W->rows;
    size_t work = (size_t)R * W->cols * T;
    int nthr = work < 32768 ? 1 : omp_get_max_threads();
    if (nthr > R) nthr = R;
    if (nthr > 1 && T <= 4 && wtype_get(W->type)->act == WT_ACT_Q8 && mat_bytes(W) >= 4 * (size_t)MV_CHUNK &&
        mat_type_bytes(W->type, 1, W->cols) * 32 <= MV_CHUNK) {
        mv_chunks(k, out, x, xa, W, T, nthr);
        return;
    }
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    mv_share(k, out, x, xa, W, T, omp_get_thread_num(), omp_get_num_threads());
}

/* above gemm_t: gemm.h's blocked GEMM on the weights as stored, when the
 * type has a packer; 0 when it has none or on OOM */
static int gemm_packed(float *out, const float *x, const mat *W, int T) {
    const int isa = kern_get()->isa;
    const gemm_pack_fn pack = wtype_get(W->type)->pack[isa];
    if (!pack) return 0;
    float *a = workspace(1, sizeof(float) * gemm_abuf_floats(T, W->cols));
    if (!a) return 0;
    gemm_run(out, x, W->data, W->rows, W->cols, T, pack, isa, a);
    return 1;
}

void matmul(float *out, const float *x, const mat *W, int T) {
    const int R = W->rows, C = W->cols, gt = wtype_get(W->type)->gemm_t[kern_get()->isa];
    if (gt && T > gt) {
        if (gemm_packed(out, x, W, T)) return;
        if (W->type == MAT_F32) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, R, C, 1.0f, x, C, W->data, C, 0.0f, out, R);
            return;
        }
    }
    matmul_mv(out, x, W, T);
}

void matmul_mv(float *out, const float *x, const mat *W, int T) {
    const int C = W->cols;
    q8_act xa = {0};
    if (wtype_get(W->type)->act == WT_ACT_Q8) {
        void *buf = workspace(0, q8_act_bytes(T, C));
        if (!buf) { /* out of memory: the oracle needs only one row */
            matmul_ref(out, x, W, T);
            return;
        }
        q8_act_point(&xa, buf, T, C);
        /* each token on its own, so threads give the same bytes */
        const kern *k = kern_get();
        if (T < 16)
            k->q8_fill(&xa, x, 0, T);
        else {
#pragma omp parallel for schedule(static)
            for (int t = 0; t < T; t++) k->q8_fill(&xa, x, t, t + 1);
        }
    }
    mv_threads(out, x, &xa, W, T);
}

/* ---------------------------------------------------------------- inside a parallel region */

int matmul_is_mv(const mat *W, int T) {
    const int gt = wtype_get(W->type)->gemm_t[kern_get()->isa];
    return !(gt && T > gt);
}

int mv_act_init(mv_act *a, int slot, const mat *W, int T) { return mv_acts_init(a, slot, &W, &T, 1); }

/* the n buffers one after another, each 64-byte aligned (q8_act_point) */
int mv_acts_init(mv_act *a, int slot, const mat *const *W, const int *T, int n) {
    size_t at[n + 1];
    at[0] = 0;
    for (int i = 0; i < n; i++) {
        const int q = wtype_get(W[i]->type)->act == WT_ACT_Q8;
        at[i + 1] = at[i] + (q ? (q8_act_bytes(T[i], W[i]->cols) + 63) & ~(size_t)63 : 0);
    }
    char *buf = at[n] ? workspace(slot & 1, at[n]) : NULL;
    if (at[n] && !buf) return 0;
    for (int i = 0; i < n; i++) {
        memset(&a[i], 0, sizeof a[i]);
        if (at[i + 1] == at[i]) continue;
        q8_act_point(&a[i].xa, buf + at[i], T[i], W[i]->cols);
        a[i].q = 1;
    }
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
