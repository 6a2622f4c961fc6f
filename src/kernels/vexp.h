/*
 * vexp.h — e^x in float, eight lanes at a time, and the elementwise passes of
 * training built on it (issue 15: 7% of a training step went to libm's scalar
 * expf, one call per element, for the softmaxes, the loss over the vocabulary
 * and SiLU).
 *
 * Written with GCC's generic vector extension (vector_size 32), not
 * intrinsics: the compiler lowers it to whatever the build targets (AVX2: one
 * ymm; AVX-512: the same; SSE / NEON: two halves), so one source serves every
 * machine. A loop calling a branch-free scalar exp does not vectorise: GCC
 * threads the range clamps into constant paths and gives up.
 *
 * Math (Cody-Waite reduction, the Cephes expf polynomial):
 *   n = round(x log2 e),  r = x - n ln2  (ln2 in two parts, |r| <= ln2/2)
 *   e^r ~ 1 + r + r^2 (c0 + c1 r + ... + c5 r^5)   (minimax on [-ln2/2, ln2/2])
 *   e^x = e^r * 2^n, 2^n made from its exponent bits.
 * Accuracy: within 1 ulp of the exactly rounded e^x over [-87, 88.3]
 * (tests/test_vexp.c sweeps it against double exp). Edges: x < -87 gives 0
 * (expf gives a denormal below 1.2e-38 that no softmax or sigmoid here can
 * tell from 0), x > 88.3 gives +inf (expf overflows at 88.72), NaN stays NaN.
 * Beside it: max, sums of squares and triple products in double (the norms),
 * softmax rows and SwiGLU's forward and backward.
 * dc_expf is one lane of vexp8 (the same bits by construction), used for
 * the tails of rows.
 */
#ifndef DC_VEXP_H
#define DC_VEXP_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

static inline v8f v8f_load(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v8f_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f v8f_set(float a) { return (v8f){a, a, a, a, a, a, a, a}; }
/* a * b + c lane by lane, rounded once where the build has FMA (x86's FMA3:
 * one instruction; ISO C mode keeps gcc from fusing a * b + c by itself),
 * else a product and a sum */
static inline v8f v8f_fma(v8f a, v8f b, v8f c) {
#if defined(__FMA__)
    return __builtin_ia32_vfmaddps256(a, b, c);
#else
    return a * b + c;
#endif
}
/* m ? a : b lane by lane, m a comparison's result (all ones or zero) */
static inline v8f v8f_sel(v8i m, v8f a, v8f b) { return (v8f)(((v8i)a & m) | ((v8i)b & ~m)); }

#define VEXP_LOG2E 1.44269504088896341f
#define VEXP_LN2_HI 0.693359375f
#define VEXP_LN2_LO (-2.12194440e-4f)
#define VEXP_MAGIC 12582912.0f /* 1.5 * 2^23: adding it leaves round(t) in the low mantissa bits */

static inline v8f vexp8(v8f x) {
    v8f xc = v8f_sel(x > v8f_set(-87.0f), x, v8f_set(-87.0f)); /* NaN to -87 here, back at the end */
    xc = v8f_sel(xc < v8f_set(88.3f), xc, v8f_set(88.3f));
    v8f kf = xc * VEXP_LOG2E + VEXP_MAGIC;
    v8i n = (v8i)kf - 0x4b400000; /* round(xc log2 e), |n| <= 127 */
    kf = kf - VEXP_MAGIC;
    v8f r = xc - kf * VEXP_LN2_HI - kf * VEXP_LN2_LO;
    v8f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v8f y = p * (v8f)((n + 127) << 23);
    y = v8f_sel(x < v8f_set(-87.0f), v8f_set(0.0f), y);
    y = v8f_sel(x > v8f_set(88.3f), v8f_set(__builtin_inff()), y);
    return v8f_sel(x == x, y, x);
}

/* one element: a lane of vexp8, so a row's tail has its body's bits by
 * construction (the tails of rows call it; 8 lanes of work for one value) */
static inline float dc_expf(float x) { return vexp8(v8f_set(x))[0]; }

/* the lanes' sum in double, low half then high half, lanes in order */
static inline double v8f_sum_d(v4d a, v4d b) {
    v4d s = a + b;
    return (s[0] + s[1]) + (s[2] + s[3]);
}
static inline void v8f_acc_d(v4d *a, v4d *b, v8f v) {
    *a += __builtin_convertvector((v4f){v[0], v[1], v[2], v[3]}, v4d);
    *b += __builtin_convertvector((v4f){v[4], v[5], v[6], v[7]}, v4d);
}

static inline v4d v4d_lo(v8f v) { return __builtin_convertvector((v4f){v[0], v[1], v[2], v[3]}, v4d); }
static inline v4d v4d_hi(v8f v) { return __builtin_convertvector((v4f){v[4], v[5], v[6], v[7]}, v4d); }

/* vsumsq_d: sum_i x[i]^2 in double (each square exact), eight lanes */
static inline double vsumsq_d(const float *x, size_t n) {
    v4d a = {0}, b = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = v8f_load(x + i);
        v4d l = v4d_lo(v), h = v4d_hi(v);
        a += l * l, b += h * h;
    }
    double s = v8f_sum_d(a, b);
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* vdot3_d: sum_i a[i] b[i] c[i] in double, eight lanes */
static inline double vdot3_d(const float *a, const float *b, const float *c, size_t n) {
    v4d p = {0}, q = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f x = v8f_load(a + i), y = v8f_load(b + i), z = v8f_load(c + i);
        p += v4d_lo(x) * v4d_lo(y) * v4d_lo(z), q += v4d_hi(x) * v4d_hi(y) * v4d_hi(z);
    }
    double s = v8f_sum_d(p, q);
    for (; i < n; i++) s += (double)a[i] * b[i] * c[i];
    return s;
}

/* vexp_shift_sum: y[i] = e^(x[i] - m) (y may be x, or NULL: not kept);
 * returns sum_i e^(x[i] - m), summed in double */
static inline double vexp_shift_sum(float *y, const float *x, float m, size_t n) {
    v4d a = {0}, b = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f e = vexp8(v8f_load(x + i) - m);
        if (y) v8f_store(y + i, e);
        v8f_acc_d(&a, &b, e);
    }
    double s = v8f_sum_d(a, b);
    for (; i < n; i++) {
        float e = dc_expf(x[i] - m);
        if (y) y[i] = e;
        s += e;
    }
    return s;
}

/* vexp_shift_scale: y[i] = e^(x[i] - m) * g (y may be x) */
static inline void vexp_shift_scale(float *y, const float *x, float m, float g, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8f_store(y + i, vexp8(v8f_load(x + i) - m) * g);
    for (; i < n; i++) y[i] = dc_expf(x[i] - m) * g;
}

/* vmax: the largest of x[0..n), n >= 1 (NaN-free input) */
static inline float vmax(const float *x, size_t n) {
    size_t i = 0;
    float mx = x[0];
    if (n >= 8) {
        v8f m = v8f_load(x);
        for (i = 8; i + 8 <= n; i += 8) {
            v8f v = v8f_load(x + i);
            m = v8f_sel(v > m, v, m);
        }
        for (int k = 0; k < 8; k++) mx = m[k] > mx ? m[k] : mx;
    }
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* vscale: x[i] *= k */
static inline void vscale(float *x, float k, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) v8f_store(x + i, v8f_load(x + i) * k);
    for (; i < n; i++) x[i] *= k;
}

/* vsoftmax_bwd: one row of softmax's backward, in place: with p the
 * probabilities and d = dL/dp on entry, d <- p (d - sum_j p_j d_j) k
 * (the dot in eight float lanes, then the lanes in order) */
static inline void vsoftmax_bwd(float *d, const float *p, size_t n, float k) {
    v8f acc = v8f_set(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) acc += v8f_load(p + i) * v8f_load(d + i);
    float dot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) dot += p[i] * d[i];
    for (i = 0; i + 8 <= n; i += 8) v8f_store(d + i, v8f_load(p + i) * (v8f_load(d + i) - dot) * k);
    for (; i < n; i++) d[i] = p[i] * (d[i] - dot) * k;
}

/* vswiglu: a[i] = silu(h1[i]) * h3[i], silu(h) = h / (1 + e^-h) */
static inline void vswiglu(float *a, const float *h1, const float *h3, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f h = v8f_load(h1 + i);
        v8f_store(a + i, h / (1.0f + vexp8(-h)) * v8f_load(h3 + i));
    }
    for (; i < n; i++) a[i] = h1[i] / (1.0f + dc_expf(-h1[i])) * h3[i];
}

/* vswiglu_bwd: from da = dL/da, the gradients of a = silu(h1) * h3:
 *   dh3 = da silu(h1),  dh1 = da h3 sig(h1) (1 + h1 (1 - sig(h1))) */
static inline void vswiglu_bwd(float *dh1, float *dh3, const float *da, const float *h1, const float *h3, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f h = v8f_load(h1 + i), d = v8f_load(da + i), sg = 1.0f / (1.0f + vexp8(-h));
        v8f_store(dh3 + i, d * h * sg);
        v8f_store(dh1 + i, d * v8f_load(h3 + i) * sg * (1.0f + h * (1.0f - sg)));
    }
    for (; i < n; i++) {
        float h = h1[i], sg = 1.0f / (1.0f + dc_expf(-h));
        dh3[i] = da[i] * h * sg;
        dh1[i] = da[i] * h3[i] * sg * (1.0f + h * (1.0f - sg));
    }
}
#endif
