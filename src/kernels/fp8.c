/* fp8.c — see fp8.h. */
#include "kernels/fp8.h"
#include <math.h>
#include <string.h>
#include "kernels/dtype.h"
#include "kernels/e4m3_simd.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

float fp8_round(float v) { return e4m3_round(v); }

/* scale_of: amax / 448, 1 for an all-zero tile; a NaN amax stays NaN */
static inline float scale_of(float amax) { return amax > 0 || amax != amax ? amax / FP8_MAX : 1.0f; }

/* max |x| over spans, then one reduction: a NaN anywhere makes it NaN, so
 * that the scale and the tile carry it. The lanes' maximum by shuffles (8
 * calls of fmaxf a tile, which gcc does not inline, took a third of the
 * 128 x 128 block quantiser's time); a NaN lane can only come with the NaN
 * flag, which wins anyway. */
typedef struct amax_acc {
    float m, nan;
#ifdef __AVX2__
    __m256 vm, vn;
#endif
} amax_acc;

static inline void amax_start(amax_acc *a) {
    a->m = 0, a->nan = 0;
#ifdef __AVX2__
    a->vm = _mm256_setzero_ps(), a->vn = _mm256_setzero_ps();
#endif
}

static inline void amax_add(amax_acc *a, const float *x, int n) {
    int i = 0;
#ifdef __AVX2__
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        a->vm = _mm256_max_ps(a->vm, _mm256_andnot_ps(sgn, v));
        a->vn = _mm256_or_ps(a->vn, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
#endif
    for (; i < n; i++) a->m = fmaxf(a->m, fabsf(x[i])), a->nan += x[i] - x[i];
}

static inline float amax_end(const amax_acc *a) {
    float m = a->m, nan = a->nan;
#ifdef __AVX2__
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(a->vm), _mm256_extractf128_ps(a->vm, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float v = _mm_cvtss_f32(h);
    m = v > m ? v : m;
    if (_mm256_movemask_ps(a->vn)) nan = NAN;
#endif
    return m + nan;
}

/* amax_of: max |x| (NaN if any is) */
static float amax_of(const float *x, int n) {
    amax_acc a;
    amax_start(&a);
    amax_add(&a, x, n);
    return amax_end(&a);
}

/* fq_cols_row: y = e4m3(x / s) * s with a scale per element (n floats) */
/* fq_cols_row: y = e4m3(x / s) * s per column (u: the codes' values, e4m3(x / s), not scaled back) */
static void fq_cols_row(float *y, const float *x, int n, const float *s, int u) {
    int i = 0;
#ifdef __AVX512F__
    for (; i + 16 <= n; i += 16) {
        __m512 vs = _mm512_loadu_ps(s + i), q = e4m3_round16(_mm512_div_ps(_mm512_loadu_ps(x + i), vs));
        _mm512_storeu_ps(y + i, u ? q : _mm512_mul_ps(q, vs));
    }
#endif
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) {
        __m256 vs = _mm256_loadu_ps(s + i), q = e4m3_round8(_mm256_div_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(y + i, u ? q : _mm256_mul_ps(q, vs));
    }
#endif
    for (; i < n; i++) y[i] = u ? e4m3_round(x[i] / s[i]) : e4m3_round(x[i] / s[i]) * s[i];
}

/* amax_cols_row: am[j] = max(am[j], |x[j]|) (NaN sticks) for n floats */
static void amax_cols_row(float *am, const float *x, int n) {
    int i = 0;
#ifdef __AVX512F__
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(x + i));
        _mm512_storeu_ps(am + i, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q),
                                                      _mm512_max_ps(v, _mm512_loadu_ps(am + i)), v));
    }
#endif
#ifdef __AVX2__
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_loadu_ps(am + i), v = _mm256_andnot_ps(sgn, _mm256_loadu_ps(x + i));
        /* max_ps(v, m) returns m when either is NaN: a NaN in am stays; a NaN in v is put in */
        m = _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        _mm256_storeu_ps(am + i, m);
    }
#endif
    for (; i < n; i++) am[i] = fmaxf(am[i], fabsf(x[i])) + (x[i] - x[i]);
}

/* fq_span: y = e4m3(x / s) * s for n floats (y may be x) */
static void fq_span(float *y, const float *x, int n, float s, int u) {
    int i = 0;
#ifdef __AVX512F__
    for (const __m512 vs = _mm512_set1_ps(s); i + 16 <= n; i += 16) {
        const __m512 q = e4m3_round16(_mm512_div_ps(_mm512_loadu_ps(x + i), vs));
        _mm512_storeu_ps(y + i, u ? q : _mm512_mul_ps(q, vs));
    }
#endif
#ifdef __AVX2__
    const __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8) {
        const __m256 q = e4m3_round8(_mm256_div_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(y + i, u ? q : _mm256_mul_ps(q, vs));
    }
#endif
    for (; i < n; i++) y[i] = u ? e4m3_round(x[i] / s) : e4m3_round(x[i] / s) * s;
}

void fp8_quant_rows(uint8_t *q, float *s, const float *x, int M, int K, int ldx) {
    const int KC = fp8_tiles(K);
#pragma omp parallel for schedule(static) if ((size_t)M * K > 65536)
    for (int m = 0; m < M; m++)
        for (int c = 0; c < KC; c++) {
            const float *xr = x + (size_t)m * ldx + c * FP8_TILE;
            int n = K - c * FP8_TILE < FP8_TILE ? K - c * FP8_TILE : FP8_TILE;
            float sc = scale_of(amax_of(xr, n));
            s[(size_t)m * KC + c] = sc;
            e4m3_encode_n(q + (size_t)m * K + c * FP8_TILE, xr, n, sc);
        }
}

/* block_amax: max |w| over rows [r0, r1) and columns [c0, c1) of w (R, C) */
static float block_amax(const float *w, int C, int r0, int r1, int c0, int c1) {
    amax_acc a;
    amax_start(&a);
    for (int r = r0; r < r1; r++) amax_add(&a, w + (size_t)r * C + c0, c1 - c0);
    return amax_end(&a);
}

/* block b of the row-major CB blocks a row of an (R, C) matrix: rows
 * [r0, r1), columns [c0, c1) (the last ones cut at the edge) */
static void block_at(int b, int CB, int R, int C, int *r0, int *r1, int *c0, int *c1) {
    *r0 = b / CB * FP8_TILE, *c0 = b % CB * FP8_TILE;
    *r1 = *r0 + FP8_TILE < R ? *r0 + FP8_TILE : R, *c1 = *c0 + FP8_TILE < C ? *c0 + FP8_TILE : C;
}

void fp8_quant_blocks(uint8_t *q, float *s, const float *w, int R, int C) {
    const int RB = fp8_tiles(R), CB = fp8_tiles(C);
#pragma omp parallel for schedule(static) if ((size_t)R * C > 65536)
    for (int b = 0; b < RB * CB; b++) {
        int r0, r1, c0, c1;
        block_at(b, CB, R, C, &r0, &r1, &c0, &c1);
        float sc = scale_of(block_amax(w, C, r0, r1, c0, c1));
        s[b] = sc;
        for (int r = r0; r < r1; r++) e4m3_encode_n(q + (size_t)r * C + c0, w + (size_t)r * C + c0, c1 - c0, sc);
    }
}

void fp8_fq_rows(float *y, const float *x, int M, int K) { fp8_fqs_rows(y, NULL, x, M, K); }
void fp8_fq_cols(float *y, const float *x, int M, int K) { fp8_fqs_cols(y, NULL, x, M, K); }
void fp8_fq_blocks(float *y, const float *w, int R, int C) { fp8_fqs_blocks(y, NULL, w, R, C); }

void fp8_fqs_rows(float *y, float *s, const float *x, int M, int K) {
    const int KC = fp8_tiles(K);
#pragma omp parallel for schedule(static) if ((size_t)M * K > 65536)
    for (int m = 0; m < M; m++)
        for (int c = 0; c < KC; c++) {
            size_t o = (size_t)m * K + (size_t)c * FP8_TILE;
            int n = K - c * FP8_TILE < FP8_TILE ? K - c * FP8_TILE : FP8_TILE;
            float sc = scale_of(amax_of(x + o, n));
            if (s) s[(size_t)m * KC + c] = sc;
            fq_span(y + o, x + o, n, sc, s != NULL);
        }
}

/* 128 rows x 64 columns at a time: the amax of each column's tile in a small array */
void fp8_fqs_cols(float *y, float *s, const float *x, int M, int K) {
    enum { W = 64 };
    const int RC = fp8_tiles(M), CW = (K + W - 1) / W;
#pragma omp parallel for schedule(static) if ((size_t)M * K > 65536)
    for (int t = 0; t < RC * CW; t++) {
        int r0 = t / CW * FP8_TILE, c0 = t % CW * W;
        int r1 = r0 + FP8_TILE < M ? r0 + FP8_TILE : M, nc = c0 + W < K ? W : K - c0;
        float am[W] = {0};
        for (int r = r0; r < r1; r++) amax_cols_row(am, x + (size_t)r * K + c0, nc);
        for (int j = 0; j < nc; j++) am[j] = scale_of(am[j]);
        if (s) memcpy(s + (size_t)(t / CW) * K + c0, am, sizeof(float) * nc);
        for (int r = r0; r < r1; r++) fq_cols_row(y + (size_t)r * K + c0, x + (size_t)r * K + c0, nc, am, s != NULL);
    }
}

void fp8_fqs_blocks(float *y, float *s, const float *w, int R, int C) {
    const int RB = fp8_tiles(R), CB = fp8_tiles(C);
#pragma omp parallel for schedule(static) if ((size_t)R * C > 65536)
    for (int b = 0; b < RB * CB; b++) {
        int r0, r1, c0, c1;
        block_at(b, CB, R, C, &r0, &r1, &c0, &c1);
        float sc = scale_of(block_amax(w, C, r0, r1, c0, c1));
        if (s) s[b] = sc;
        for (int r = r0; r < r1; r++) fq_span(y + (size_t)r * C + c0, w + (size_t)r * C + c0, c1 - c0, sc, s != NULL);
    }
}

void fp8_gemm_ref(float *C, const uint8_t *qa, const float *sa, const uint8_t *qb, const float *sb, int M, int N,
                  int K, int bn) {
    float dec[256];
    for (int i = 0; i < 256; i++) dec[i] = fp8e4m3_to_f32((uint8_t)i);
    const int KC = fp8_tiles(K);
#pragma omp parallel for schedule(static) if ((size_t)M * N * K > 1000000)
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            const uint8_t *a = qa + (size_t)m * K, *b = qb + (size_t)n * K;
            float acc = 0;
            for (int c = 0; c < KC; c++) {
                int k1 = (c + 1) * FP8_TILE < K ? (c + 1) * FP8_TILE : K;
                float part = 0; /* the chunk's partial sum, then promoted with its scales */
                for (int k = c * FP8_TILE; k < k1; k++) part += dec[a[k]] * dec[b[k]];
                acc += part * sa[(size_t)m * KC + c] * sb[(size_t)(n / bn) * KC + c];
            }
            C[(size_t)m * N + n] = acc;
        }
}
