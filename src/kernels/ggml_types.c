/* ggml_types.c — see ggml_types.h. Dequantisers follow ggml's layouts bit
 * for bit; quantisers are fitted here (least squares from the range). */
#include "kernels/ggml_types.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "kernels/dtype.h"

/* name, values and bytes per block, and llama.cpp's general.file_type of a
 * file mostly of this type (LLAMA_FTYPE_MOSTLY_*; 0 where it has none) */
static const struct {
    const char *name;
    int blck, size, ftype;
} T[GG_NTYPES] = {
    [GG_F32] = {"f32", 1, 4, 0},        [GG_F16] = {"f16", 1, 2, 1},        [GG_Q4_0] = {"q4_0", 32, 18, 2},
    [GG_Q4_1] = {"q4_1", 32, 20, 3},    [GG_Q5_0] = {"q5_0", 32, 22, 8},    [GG_Q5_1] = {"q5_1", 32, 24, 9},
    [GG_Q8_0] = {"q8_0", 32, 34, 7},    [GG_Q8_1] = {"q8_1", 32, 36, 0},    [GG_Q2_K] = {"q2_K", 256, 84, 10},
    [GG_Q3_K] = {"q3_K", 256, 110, 11}, [GG_Q4_K] = {"q4_K", 256, 144, 14}, [GG_Q5_K] = {"q5_K", 256, 176, 16},
    [GG_Q6_K] = {"q6_K", 256, 210, 18}, [GG_Q8_K] = {"q8_K", 256, 292, 0},  [GG_I8] = {"i8", 1, 1, 0},
    [GG_I16] = {"i16", 1, 2, 0},        [GG_I32] = {"i32", 1, 4, 0},        [GG_I64] = {"i64", 1, 8, 0},
    [GG_F64] = {"f64", 1, 8, 0},        [GG_BF16] = {"bf16", 1, 2, 32},     [GG_IQ4_NL] = {"iq4_nl", 32, 18, 25},
    [GG_IQ4_XS] = {"iq4_xs", 256, 136, 30},
};

const int8_t IQ4_VALUES[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static int known(int t) { return t >= 0 && t < GG_NTYPES && T[t].name; }
const char *gg_type_name(int t) { return known(t) ? T[t].name : "?"; }
int gg_blck(int t) { return known(t) ? T[t].blck : 0; }
int gg_type_size(int t) { return known(t) ? T[t].size : 0; }
int gg_file_type(int t) { return known(t) ? T[t].ftype : 0; }

int gg_type_parse(const char *s) {
    for (int t = 0; t < GG_NTYPES; t++) {
        if (!T[t].name || strlen(T[t].name) != strlen(s)) continue;
        size_t i = 0;
        while (s[i] && tolower((unsigned char)s[i]) == tolower((unsigned char)T[t].name[i])) i++;
        if (!s[i]) return t;
    }
    return -1;
}

const char *gg_unread_type_note(int t) {
    static const struct {
        int id;
        const char *note;
    } N[] = {{16, " (iq2_xxs: a lattice IQ type, not read)"}, {17, " (iq2_xs: a lattice IQ type, not read)"},
             {18, " (iq3_xxs: a lattice IQ type, not read)"}, {19, " (iq1_s: a lattice IQ type, not read)"},
             {21, " (iq3_s: a lattice IQ type, not read)"},   {22, " (iq2_s: a lattice IQ type, not read)"},
             {29, " (iq1_m: a lattice IQ type, not read)"},   {34, " (tq1_0: not read)"},
             {35, " (tq2_0: not read)"},                      {39, " (mxfp4: not read)"}};
    for (size_t i = 0; i < sizeof N / sizeof *N; i++)
        if (N[i].id == t) return N[i].note;
    return "";
}

size_t gg_row_bytes(int t, int64_t n) {
    if (!known(t) || n < 0 || n % T[t].blck) return 0;
    return (size_t)(n / T[t].blck) * (size_t)T[t].size;
}


static float h2f(uint16_t h) { return f16_to_f32(h); }
static int nearest(float x) { return (int)lrintf(x); }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// ---------------------------------------------------------------- dequantise: 32-value blocks

/* (omp simd: gcc -O2 left the 16-value loop scalar, ~2 cycles a value;
 * each value is still one product d * int, so the same floats) */
static void dq_q4_0(const void *v, float *y, int64_t nb) {
    const block_q4_0 *b = v;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = h2f(b[i].d);
#pragma omp simd
        for (int j = 0; j < 16; j++) {
            y[j] = d * ((b[i].qs[j] & 15) - 8);
            y[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
        }
    }
}

static void dq_q4_1(const void *v, float *y, int64_t nb) {
    const block_q4_1 *b = v;
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = h2f(b[i].d), m = h2f(b[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (b[i].qs[j] & 15) + m;
            y[j + 16] = d * (b[i].qs[j] >> 4) + m;
        }
    }
}

static void dq_q5(const uint8_t *qh4, const uint8_t *qs, float d, float m, int off, float *y) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = d * (((qs[j] & 15) | h0) - off) + m;
        y[j + 16] = d * (((qs[j] >> 4) | h1) - off) + m;
    }
}

static void dq_q5_0(const void *v, float *y, int64_t nb) {
    const block_q5_0 *b = v;
    for (int64_t i = 0; i < nb; i++, y += 32) dq_q5(b[i].qh, b[i].qs, h2f(b[i].d), 0, 16, y);
}
static void dq_q5_1(const void *v, float *y, int64_t nb) {
    const block_q5_1 *b = v;
    for (int64_t i = 0; i < nb; i++, y += 32) dq_q5(b[i].qh, b[i].qs, h2f(b[i].d), h2f(b[i].m), 0, y);
}
static void dq_q8_1(const void *v, float *y, int64_t nb) {
    const block_q8_1 *b = v;
    for (int64_t i = 0; i < nb; i++, y += 32)
        for (int j = 0; j < 32; j++) y[j] = h2f(b[i].d) * b[i].qs[j];
}

// ---------------------------------------------------------------- dequantise: the IQ4 codebook types

static void dq_iq4(const uint8_t *qs, float d, float *y) {
    for (int j = 0; j < 16; j++) y[j] = d * IQ4_VALUES[qs[j] & 15], y[j + 16] = d * IQ4_VALUES[qs[j] >> 4];
}
static void dq_iq4_nl(const void *v, float *y, int64_t nb) {
    const block_iq4_nl *b = v;
    for (int64_t i = 0; i < nb; i++, y += 32) dq_iq4(b[i].qs, h2f(b[i].d), y);
}
static void dq_iq4_xs(const void *v, float *y, int64_t nb) {
    const block_iq4_xs *b = v;
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d);
        for (int s = 0; s < 8; s++, y += 32) dq_iq4(b[i].qs + 16 * s, d * (iq4_xs_scale(&b[i], s) - 32), y);
    }
}

// ---------------------------------------------------------------- dequantise: K-quants

static void dq_q2_K(const void *v, float *y, int64_t nb) {
    const block_q2_K *b = v;
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d), mn = h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int half = 0; half < 2; half++) {
                    uint8_t sc = b[i].scales[is++];
                    float dl = d * (sc & 15), ml = mn * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
                }
    }
}

/* q3_scales: the 16 6-bit scales of a Q3_K block, minus 32 */
static void q3_scales(const uint8_t *s, int *out) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (lo | hi << 4) - 32;
    }
}

static void dq_q3_K(const void *v, float *y, int64_t nb) {
    const block_q3_K *b = v;
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d);
        int sc[16];
        q3_scales(b[i].scales, sc);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                for (int half = 0; half < 2; half++) {
                    float dl = d * sc[is++];
                    for (int l = 0; l < 16; l++) {
                        int k = l + 16 * half;
                        *y++ = dl * (((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                    }
                }
    }
}

/* gg_k4_scale_min: scale and min j (0..7) of a Q4_K / Q5_K block's 12 bytes */
void gg_k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void dq_q4_K(const void *v, float *y, int64_t nb) {
    const block_q4_K *b = v;
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d), mn = h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            int s1, m1, s2, m2;
            gg_k4_scale_min(j, b[i].scales, &s1, &m1);
            gg_k4_scale_min(j + 1, b[i].scales, &s2, &m2);
            for (int l = 0; l < 32; l++) *y++ = d * s1 * (q[l] & 15) - mn * m1;
            for (int l = 0; l < 32; l++) *y++ = d * s2 * (q[l] >> 4) - mn * m2;
        }
    }
}

static void dq_q5_K(const void *v, float *y, int64_t nb) {
    const block_q5_K *b = v;
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d), mn = h2f(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            int s1, m1, s2, m2;
            gg_k4_scale_min(j, b[i].scales, &s1, &m1);
            gg_k4_scale_min(j + 1, b[i].scales, &s2, &m2);
            for (int l = 0; l < 32; l++) *y++ = d * s1 * ((ql[l] & 15) + (qh[l] & u1 ? 16 : 0)) - mn * m1;
            for (int l = 0; l < 32; l++) *y++ = d * s2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - mn * m2;
        }
    }
}

static void dq_q6_K(const void *v, float *y, int64_t nb) {
    const block_q6_K *b = v;
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
    }
}

static void dq_q8_K(const void *v, float *y, int64_t nb) {
    const block_q8_K *b = v;
    for (int64_t i = 0; i < nb; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = b[i].d * b[i].qs[j];
}

/* the plain types, value by value (nb = n) */
static void dq_f32(const void *v, float *y, int64_t n) { memcpy(y, v, (size_t)n * 4); }
static void dq_f16(const void *v, float *y, int64_t n) { f16_to_f32_n(y, v, (size_t)n); }
static void dq_bf16(const void *v, float *y, int64_t n) {
    const uint8_t *p = v;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = bf16_to_f32(h);
    }
}
static void dq_f64(const void *v, float *y, int64_t n) {
    const uint8_t *p = v;
    for (int64_t i = 0; i < n; i++) {
        double d;
        memcpy(&d, p + 8 * i, 8);
        y[i] = (float)d;
    }
}
static void dq_q8_0(const void *v, float *y, int64_t nb) { q8_dequantize_row(y, v, (int)(nb * QK8_0)); }

// ---------------------------------------------------------------- fitting scales

/* fit_sym: x[n] ~ s * L, L in lo..hi (lo < 0 < hi, |lo| >= hi). Starts with
 * the largest-magnitude value on lo, then alternates rounding and the least
 * squares scale; each step lowers the squared error. Returns s (may be < 0). */
static float fit_sym(const float *x, int n, int lo, int hi, int *L) {
    float v = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(v)) v = x[i];
    if (v == 0) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0;
    }
    float s = v / lo;
    for (int it = 0; it < 4; it++) {
        float sxl = 0, sll = 0;
        for (int i = 0; i < n; i++) {
            L[i] = clampi(nearest(x[i] / s), lo, hi);
            sxl += x[i] * L[i];
            sll += (float)L[i] * L[i];
        }
        if (sll == 0 || sxl == 0) break;
        s = sxl / sll;
    }
    return s;
}

/* fit_asym: x[n] ~ s * L + m, L in 0..nmax, s >= 0; when nonpos_min, m <= 0
 * (the K-quants store -m as an unsigned min). Returns s, *m the offset. */
static float fit_asym(const float *x, int n, int nmax, int nonpos_min, float *m) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    if (nonpos_min && lo > 0) lo = 0;
    if (hi <= lo) {
        *m = lo;
        return 0;
    }
    float s = (hi - lo) / nmax, mn = lo;
    for (int it = 0; it < 4; it++) {
        double sl = 0, sll = 0, sx = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest((x[i] - mn) / s), 0, nmax);
            sl += l, sll += (double)l * l, sx += x[i], sxl += (double)x[i] * l;
        }
        double D = n * sll - sl * sl;
        if (D <= 0) break;
        double ns = (n * sxl - sl * sx) / D, nm = (sx - ns * sl) / n;
        if (nonpos_min && nm > 0) nm = 0, ns = sll > 0 ? sxl / sll : 0;
        if (ns <= 0) break;
        s = (float)ns, mn = (float)nm;
    }
    *m = mn;
    return s;
}

static uint16_t f2h(float f) { return f32_to_f16(f); }
static float rt16(float f) { return f16_to_f32(f32_to_f16(f)); } /* f as stored in a half */

// ---------------------------------------------------------------- quantise: 32-value blocks

static void qz_sym32(const float *x, int lo, int hi, float *d, int *L) {
    *d = rt16(fit_sym(x, 32, lo, hi, L));
    for (int i = 0; i < 32; i++) L[i] = *d ? clampi(nearest(x[i] / *d), lo, hi) : 0;
}

static void qz_asym32(const float *x, int nmax, float *d, float *m, int *L) {
    float mn;
    *d = rt16(fit_asym(x, 32, nmax, 0, &mn));
    *m = rt16(mn);
    for (int i = 0; i < 32; i++) L[i] = *d ? clampi(nearest((x[i] - *m) / *d), 0, nmax) : 0;
}

static void pack_nibbles(uint8_t *qs, const int *L) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((L[j] & 15) | (L[j + 16] & 15) << 4);
}
static void pack_q5h(uint8_t *qh4, const int *L) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) qh |= (uint32_t)((L[j] >> 4) & 1) << j | (uint32_t)((L[j + 16] >> 4) & 1) << (j + 16);
    memcpy(qh4, &qh, 4);
}

static void qz_q4_0(const float *x, void *v, int64_t nb) {
    block_q4_0 *b = v;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        int L[32];
        float d;
        qz_sym32(x, -8, 7, &d, L);
        for (int j = 0; j < 32; j++) L[j] += 8;
        b[i].d = f2h(d);
        pack_nibbles(b[i].qs, L);
    }
}

static void qz_q4_1(const float *x, void *v, int64_t nb) {
    block_q4_1 *b = v;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        int L[32];
        float d, m;
        qz_asym32(x, 15, &d, &m, L);
        b[i].d = f2h(d), b[i].m = f2h(m);
        pack_nibbles(b[i].qs, L);
    }
}

static void qz_q5_0(const float *x, void *v, int64_t nb) {
    block_q5_0 *b = v;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        int L[32];
        float d;
        qz_sym32(x, -16, 15, &d, L);
        for (int j = 0; j < 32; j++) L[j] += 16;
        b[i].d = f2h(d);
        pack_nibbles(b[i].qs, L);
        pack_q5h(b[i].qh, L);
    }
}

static void qz_q5_1(const float *x, void *v, int64_t nb) {
    block_q5_1 *b = v;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        int L[32];
        float d, m;
        qz_asym32(x, 31, &d, &m, L);
        b[i].d = f2h(d), b[i].m = f2h(m);
        pack_nibbles(b[i].qs, L);
        pack_q5h(b[i].qh, L);
    }
}

// ---------------------------------------------------------------- quantise: K-quants

/* kq_asym: per-sub-block (ns sub-blocks of len) scale/min fits, the scales
 * and mins quantised to 0..smax against the super-block's largest, then
 * every value re-rounded with the stored scales. sc/mc: codes; L: 0..nmax. */
static void kq_asym(const float *x, int ns, int len, int nmax, int smax, float *d, float *dmin, int *sc, int *mc,
                    int *L) {
    float s[16], m[16], maxs = 0, maxm = 0;
    for (int j = 0; j < ns; j++) {
        float mn;
        s[j] = fit_asym(x + j * len, len, nmax, 1, &mn);
        m[j] = -mn;
        maxs = fmaxf(maxs, s[j]), maxm = fmaxf(maxm, m[j]);
    }
    *d = rt16(maxs / smax), *dmin = rt16(maxm / smax);
    for (int j = 0; j < ns; j++) {
        sc[j] = *d > 0 ? clampi(nearest(s[j] / *d), 0, smax) : 0;
        mc[j] = *dmin > 0 ? clampi(nearest(m[j] / *dmin), 0, smax) : 0;
        float ds = *d * sc[j], dm = *dmin * mc[j];
        for (int i = 0; i < len; i++)
            L[j * len + i] = ds > 0 ? clampi(nearest((x[j * len + i] + dm) / ds), 0, nmax) : 0;
    }
}

/* kq_sym: the same for signed scales: codes in slo..shi, L in lo..hi */
static void kq_sym(const float *x, int ns, int len, int lo, int hi, int slo, int shi, float *d, int *sc, int *L) {
    float s[16], v = 0;
    for (int j = 0; j < ns; j++) {
        s[j] = fit_sym(x + j * len, len, lo, hi, L + j * len);
        if (fabsf(s[j]) > fabsf(v)) v = s[j];
    }
    *d = rt16(v / slo);
    for (int j = 0; j < ns; j++) {
        sc[j] = *d ? clampi(nearest(s[j] / *d), slo, shi) : 0;
        float ds = *d * sc[j];
        for (int i = 0; i < len; i++) L[j * len + i] = ds ? clampi(nearest(x[j * len + i] / ds), lo, hi) : 0;
    }
}

/* the 2-bit fields of 256 values: byte j/4 + l of each 128-half holds l, l+32, l+64, l+96 */
static void pack_2bit(uint8_t *qs, const int *L) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)((L[j + l] & 3) | (L[j + l + 32] & 3) << 2 | (L[j + l + 64] & 3) << 4 |
                                      (L[j + l + 96] & 3) << 6);
}

static void qz_q2_K(const float *x, void *v, int64_t nb) {
    block_q2_K *b = v;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        int sc[16], mc[16], L[QK_K];
        float d, dmin;
        kq_asym(x, 16, 16, 3, 15, &d, &dmin, sc, mc, L);
        for (int j = 0; j < 16; j++) b[i].scales[j] = (uint8_t)(sc[j] | mc[j] << 4);
        b[i].d = f2h(d), b[i].dmin = f2h(dmin);
        pack_2bit(b[i].qs, L);
    }
}

static void qz_q3_K(const float *x, void *v, int64_t nb) {
    block_q3_K *b = v;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        int sc[16], L[QK_K];
        float d;
        kq_sym(x, 16, 16, -4, 3, -32, 31, &d, sc, L);
        memset(b[i].scales, 0, 12);
        for (int j = 0; j < 16; j++) {
            int l = sc[j] + 32;
            if (j < 8) b[i].scales[j] = (uint8_t)(l & 15);
            else b[i].scales[j - 8] |= (uint8_t)((l & 15) << 4);
            b[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        b[i].d = f2h(d);
        memset(b[i].hmask, 0, sizeof b[i].hmask);
        for (int j = 0; j < QK_K; j++) {
            L[j] += 4;
            if (L[j] > 3) b[i].hmask[j % 32] |= (uint8_t)(1 << (j / 32)), L[j] -= 4;
        }
        pack_2bit(b[i].qs, L);
    }
}

static void pack_k4_scales(uint8_t *s, const int *sc, const int *mc) {
    memset(s, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = (uint8_t)sc[j];
            s[j + 4] = (uint8_t)mc[j];
        } else {
            s[j + 4] = (uint8_t)((sc[j] & 15) | (mc[j] & 15) << 4);
            s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            s[j] |= (uint8_t)((mc[j] >> 4) << 6);
        }
    }
}

static void qz_q4_K(const float *x, void *v, int64_t nb) {
    block_q4_K *b = v;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        int sc[8], mc[8], L[QK_K];
        float d, dmin;
        kq_asym(x, 8, 32, 15, 63, &d, &dmin, sc, mc, L);
        pack_k4_scales(b[i].scales, sc, mc);
        b[i].d = f2h(d), b[i].dmin = f2h(dmin);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; l++) b[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
    }
}

static void qz_q5_K(const float *x, void *v, int64_t nb) {
    block_q5_K *b = v;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        int sc[8], mc[8], L[QK_K];
        float d, dmin;
        kq_asym(x, 8, 32, 31, 63, &d, &dmin, sc, mc, L);
        pack_k4_scales(b[i].scales, sc, mc);
        b[i].d = f2h(d), b[i].dmin = f2h(dmin);
        memset(b[i].qh, 0, sizeof b[i].qh);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < QK_K; j += 64, m1 <<= 2, m2 <<= 2)
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) l1 -= 16, b[i].qh[l] |= m1;
                if (l2 > 15) l2 -= 16, b[i].qh[l] |= m2;
                b[i].qs[j / 2 + l] = (uint8_t)(l1 | l2 << 4);
            }
    }
}

static void qz_q6_K(const float *x, void *v, int64_t nb) {
    block_q6_K *b = v;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        int sc[16], L[QK_K];
        float d;
        kq_sym(x, 16, 16, -32, 31, -128, 127, &d, sc, L);
        for (int j = 0; j < 16; j++) b[i].scales[j] = (int8_t)sc[j];
        b[i].d = f2h(d);
        uint8_t *ql = b[i].ql, *qh = b[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                int q1 = L[j + l] + 32, q2 = L[j + l + 32] + 32, q3 = L[j + l + 64] + 32, q4 = L[j + l + 96] + 32;
                ql[l] = (uint8_t)((q1 & 15) | (q3 & 15) << 4);
                ql[l + 32] = (uint8_t)((q2 & 15) | (q4 & 15) << 4);
                qh[l] = (uint8_t)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
            }
    }
}

static void qz_q8_K(const float *x, void *v, int64_t nb) {
    block_q8_K *b = v;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float amax = 0;
        for (int j = 0; j < QK_K; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127, id = d ? 1 / d : 0;
        b[i].d = d;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += b[i].qs[g * 16 + j] = (int8_t)clampi(nearest(x[g * 16 + j] * id), -127, 127);
            b[i].bsums[g] = (int16_t)s;
        }
    }
}

static void qz_f32(const float *x, void *v, int64_t n) { memcpy(v, x, (size_t)n * 4); }
static void qz_f16(const float *x, void *v, int64_t n) {
    uint8_t *p = v;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = f32_to_f16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}
static void qz_bf16(const float *x, void *v, int64_t n) {
    uint8_t *p = v;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = f32_to_bf16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}
static void qz_q8_0(const float *x, void *v, int64_t nb) { q8_quantize_row(v, x, (int)(nb * QK8_0)); }

// ---------------------------------------------------------------- quantise: the IQ4 codebook types

/* the index of the codebook value nearest v (IQ4_VALUES ascends: a binary
 * search over the midpoints) */
static int iq4_nearest(float v) {
    int lo = 0, hi = 15;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (v >= 0.5f * (float)(IQ4_VALUES[mid - 1] + IQ4_VALUES[mid])) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* the squared error of x[32] ~ s * IQ4_VALUES[L] with L rounded for s */
static float iq4_round(const float *x, float s, int *L) {
    float e = 0;
    for (int i = 0; i < 32; i++) {
        L[i] = s ? iq4_nearest(x[i] / s) : 8;
        const float r = x[i] - s * IQ4_VALUES[L[i]];
        e += r * r;
    }
    return e;
}

/* fit_iq4: x[32] ~ s * IQ4_VALUES[L]. The codebook is asymmetric (-127 ..
 * 113), so the largest-magnitude value v may sit at either end: scales from
 * v / -127 and v / 113 and a few around each are rounded, refined once by
 * least squares and rounded again; the least squared error wins. */
static float fit_iq4(const float *x, int *L) {
    float v = 0;
    for (int i = 0; i < 32; i++)
        if (fabsf(x[i]) > fabsf(v)) v = x[i];
    if (v == 0) {
        for (int i = 0; i < 32; i++) L[i] = 8;
        return 0;
    }
    static const float ENDS[] = {-127, -121, -133, -115, 113, 108, 118, 103};
    float best = INFINITY, bs = 0;
    for (size_t c = 0; c < sizeof ENDS / sizeof *ENDS; c++) {
        int K[32];
        float s = v / ENDS[c];
        iq4_round(x, s, K);
        float sxk = 0, skk = 0;
        for (int i = 0; i < 32; i++) sxk += x[i] * IQ4_VALUES[K[i]], skk += (float)(IQ4_VALUES[K[i]] * IQ4_VALUES[K[i]]);
        if (skk > 0 && sxk != 0) s = sxk / skk;
        const float e = iq4_round(x, s, K);
        if (e < best) best = e, bs = s;
    }
    iq4_round(x, bs, L);
    return bs;
}

static void pack_iq4(uint8_t *qs, const int *L) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
}

static void qz_iq4_nl(const float *x, void *v, int64_t nb) {
    block_iq4_nl *b = v;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        int L[32];
        const float d = rt16(fit_iq4(x, L));
        iq4_round(x, d, L);
        b[i].d = f2h(d);
        pack_iq4(b[i].qs, L);
    }
}

/* IQ4_XS: each sub-block's scale fitted, the 8 quantised to -32..31 against
 * the largest (which lands on -32), every value re-rounded with its stored scale */
static void qz_iq4_xs(const float *x, void *v, int64_t nb) {
    block_iq4_xs *b = v;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float s[8], big = 0;
        int L[32];
        for (int j = 0; j < 8; j++) {
            s[j] = fit_iq4(x + 32 * j, L);
            if (fabsf(s[j]) > fabsf(big)) big = s[j];
        }
        const float d = rt16(big / -32);
        b[i].d = f2h(d), b[i].scales_h = 0;
        memset(b[i].scales_l, 0, sizeof b[i].scales_l);
        for (int j = 0; j < 8; j++) {
            const int sc = d ? clampi(nearest(s[j] / d), -32, 31) : 0, ls = sc + 32;
            b[i].scales_l[j / 2] |= (uint8_t)((ls & 15) << 4 * (j % 2));
            b[i].scales_h |= (uint16_t)((ls >> 4) << 2 * j);
            iq4_round(x + 32 * j, d * sc, L);
            pack_iq4(b[i].qs + 16 * j, L);
        }
    }
}

// ---------------------------------------------------------------- the conversions of each type

/* per ggml id: n / blck blocks to float32 and back (NULL: not handled) */
static const struct {
    void (*dq)(const void *src, float *y, int64_t nb);
    void (*qz)(const float *x, void *dst, int64_t nb);
} CONV[GG_NTYPES] = {
    [GG_F32] = {dq_f32, qz_f32},    [GG_F16] = {dq_f16, qz_f16},    [GG_BF16] = {dq_bf16, qz_bf16},
    [GG_F64] = {dq_f64, NULL},      [GG_Q4_0] = {dq_q4_0, qz_q4_0}, [GG_Q4_1] = {dq_q4_1, qz_q4_1},
    [GG_Q5_0] = {dq_q5_0, qz_q5_0}, [GG_Q5_1] = {dq_q5_1, qz_q5_1}, [GG_Q8_0] = {dq_q8_0, qz_q8_0},
    [GG_Q8_1] = {dq_q8_1, NULL},    [GG_Q2_K] = {dq_q2_K, qz_q2_K}, [GG_Q3_K] = {dq_q3_K, qz_q3_K},
    [GG_Q4_K] = {dq_q4_K, qz_q4_K}, [GG_Q5_K] = {dq_q5_K, qz_q5_K}, [GG_Q6_K] = {dq_q6_K, qz_q6_K},
    [GG_Q8_K] = {dq_q8_K, qz_q8_K}, [GG_IQ4_NL] = {dq_iq4_nl, qz_iq4_nl}, [GG_IQ4_XS] = {dq_iq4_xs, qz_iq4_xs},
};

int gg_can_dequantize(int t) { return known(t) && CONV[t].dq; }
int gg_can_quantize(int t) { return known(t) && CONV[t].qz; }

void gg_dequantize(int t, const void *src, float *y, int64_t n) {
    if (known(t) && CONV[t].dq) CONV[t].dq(src, y, n / T[t].blck);
    else memset(y, 0, (size_t)n * sizeof *y);
}

void gg_quantize(int t, const float *x, void *dst, int64_t n) {
    if (known(t) && CONV[t].qz) CONV[t].qz(x, dst, n / T[t].blck);
}

// ---------------------------------------------------------------- finiteness

int64_t f32_first_nonfinite(const float *x, int64_t n) {
    const int64_t CH = 4096;
    for (int64_t a = 0; a < n; a += CH) {
        int64_t b = a + CH < n ? a + CH : n;
        uint32_t any = 0; /* exponent all ones: inf or NaN; no branch in the loop, so it vectorises */
        const uint32_t *u = (const uint32_t *)(const void *)x;
#pragma omp simd reduction(| : any)
        for (int64_t i = a; i < b; i++) any |= (u[i] & 0x7f800000u) == 0x7f800000u;
        if (any)
            for (int64_t i = a; i < b; i++)
                if (!isfinite(x[i])) return i;
    }
    return -1;
}

/* half_first_nonfinite: the first of n IEEE halves (mask 0x7c00) or
 * bfloat16 (0x7f80) whose exponent is all ones, -1 when none */
static int64_t half_first_nonfinite(const void *src, int64_t n, uint16_t mask) {
    const int64_t CH = 8192;
    const uint16_t *h = src;
    for (int64_t a = 0; a < n; a += CH) {
        int64_t b = a + CH < n ? a + CH : n;
        uint16_t any = 0;
#pragma omp simd reduction(| : any)
        for (int64_t i = a; i < b; i++) any |= (uint16_t)((h[i] & mask) == mask);
        if (any)
            for (int64_t i = a; i < b; i++)
                if ((h[i] & mask) == mask) return i;
    }
    return -1;
}

/* where each block type keeps its f16 scales (byte offsets in the block):
 * every value is a scale times a small integer (plus a min times one), so a
 * block's values are all finite iff its scales are, and a non-finite scale
 * makes every value of the block NaN or infinite (0 * inf is NaN), its first
 * value included. Q8_K's float32 scale times 127 can overflow: not listed. */
static const struct {
    int n;
    short off[2];
} SCALE_AT[GG_NTYPES] = {
    [GG_Q4_0] = {1, {0}},     [GG_Q4_1] = {2, {0, 2}},  [GG_Q5_0] = {1, {0}},     [GG_Q5_1] = {2, {0, 2}},
    [GG_Q8_0] = {1, {0}},     [GG_Q8_1] = {1, {0}},     [GG_Q2_K] = {2, {80, 82}}, [GG_Q3_K] = {1, {108}},
    [GG_Q4_K] = {2, {0, 2}},  [GG_Q5_K] = {2, {0, 2}},  [GG_Q6_K] = {1, {208}},   [GG_IQ4_NL] = {1, {0}},
    [GG_IQ4_XS] = {1, {0}},
};

/* the first value of the first block whose f16 scales are not all finite */
static int64_t blocks_first_nonfinite(int type, const uint8_t *p, int64_t nb) {
    const int size = T[type].size, k = SCALE_AT[type].n, o0 = SCALE_AT[type].off[0], o1 = SCALE_AT[type].off[k - 1];
    const int64_t CH = 1024;
    for (int64_t a = 0; a < nb; a += CH) {
        int64_t b = a + CH < nb ? a + CH : nb;
        unsigned any = 0;
        for (int64_t i = a; i < b; i++) {
            uint16_t h0, h1;
            memcpy(&h0, p + i * size + o0, 2);
            memcpy(&h1, p + i * size + o1, 2);
            any |= ((h0 & 0x7c00) == 0x7c00) | ((h1 & 0x7c00) == 0x7c00);
        }
        if (!any) continue;
        for (int64_t i = a; i < b; i++)
            for (int j = 0; j < k; j++) {
                uint16_t h;
                memcpy(&h, p + i * size + SCALE_AT[type].off[j], 2);
                if ((h & 0x7c00) == 0x7c00) return i * T[type].blck;
            }
    }
    return -1;
}

int64_t gg_first_nonfinite(int type, const void *src, int64_t n) {
    if (type == GG_F32) return f32_first_nonfinite(src, n);
    if (type == GG_F16) return half_first_nonfinite(src, n, 0x7c00);
    if (type == GG_BF16) return half_first_nonfinite(src, n, 0x7f80);
    if (known(type) && SCALE_AT[type].n) return blocks_first_nonfinite(type, src, n / T[type].blck);
    float buf[4096]; /* the other types (f64, q8_K): dequantised a few thousand at a time */
    const int64_t CH = 4096;
    const uint8_t *p = src;
    for (int64_t a = 0; a < n; a += CH) {
        int64_t k = a + CH < n ? CH : n - a;
        gg_dequantize(type, p, buf, k);
        int64_t i = f32_first_nonfinite(buf, k);
        if (i >= 0) return a + i;
        p += gg_row_bytes(type, k);
    }
    return -1;
}
