/* repack.c — see repack.h: Q4_0, Q4_K, Q5_K, Q6_K, Q5_0, Q4_1, Q5_1, Q3_K, Q2_K, IQ4_NL and IQ4_XS rows
 * interleaved 8 at a time, and back. */
#include "kernels/repack.h"
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the types */

/* block j of an interleaved group from a plain block, and back */
static void q40_put(block_q4_0x8 *g, int j, const block_q4_0 *s) {
    g->d[j] = s->d;
    ilv_words(g->qs, s->qs, j, 4);
}

static void q40_get(const block_q4_0x8 *g, int j, block_q4_0 *dst) {
    dst->d = g->d[j];
    ilv_words_back(dst->qs, g->qs, j, 4);
}

/* block j of an interleaved group from a plain block, and back */
static void kx8_put(block_q4_Kx8 *g, int j, const block_q4_K *s) {
    g->d[j] = s->d, g->dmin[j] = s->dmin;
    ilv_words(g->scales, s->scales, j, 3);
    ilv_words(g->qs, s->qs, j, 32); /* word 8i + c: qs + 256i + 32c + 4j */
}

static void kx8_block(const block_q4_Kx8 *g, int j, block_q4_K *dst) {
    dst->d = g->d[j], dst->dmin = g->dmin[j];
    ilv_words_back(dst->scales, g->scales, j, 3);
    ilv_words_back(dst->qs, g->qs, j, 32);
}

/* block j of a Q5_K group from a plain block, and back (repack.h's
 * layout: per pair i of sub-blocks and value l, the low value's 5 bits and
 * the high value's low 3 in one qs byte, the high value's top 2 bits at
 * bits 2i, 2i + 1 of a qh byte) */
static void k5_put(block_q5_Kx8 *g, int j, const block_q5_K *s) {
    g->d[j] = s->d, g->dmin[j] = s->dmin;
    ilv_words(g->scales, s->scales, j, 3);
    /* 4 values l = 4c..4c+3 at a time, a byte each in a uint32 (the masks keep the bytes apart) */
    for (int c = 0; c < 8; c++) {
        uint32_t h, top = 0;
        memcpy(&h, s->qh + 4 * c, 4);
        for (int i = 0; i < 4; i++) {
            uint32_t q;
            memcpy(&q, s->qs + 32 * i + 4 * c, 4);
            const uint32_t lo = (q & 0x0f0f0f0fu) | (h >> 2 * i & 0x01010101u) << 4,
                           hi = (q >> 4 & 0x0f0f0f0fu) | (h >> (2 * i + 1) & 0x01010101u) << 4,
                           b = lo | (hi & 0x07070707u) << 5;
            memcpy(g->qs + 256 * i + 32 * c + 4 * j, &b, 4);
            top |= (hi >> 3 & 0x03030303u) << 2 * i;
        }
        memcpy(g->qh + 32 * c + 4 * j, &top, 4);
    }
}

static void k5_block(const block_q5_Kx8 *g, int j, block_q5_K *dst) {
    dst->d = g->d[j], dst->dmin = g->dmin[j];
    ilv_words_back(dst->scales, g->scales, j, 3);
    for (int l = 0; l < 32; l++) {
        const int c = l / 4, m = l % 4, top = g->qh[32 * c + 4 * j + m];
        uint8_t h = 0;
        for (int i = 0; i < 4; i++) {
            const int b = g->qs[256 * i + 32 * c + 4 * j + m], lo = b & 31, hi = b >> 5 | (top >> 2 * i & 3) << 3;
            dst->qs[32 * i + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            h |= (uint8_t)((lo >> 4) << 2 * i | (hi >> 4) << (2 * i + 1));
        }
        dst->qh[l] = h;
    }
}

/* the 256 6-bit values of a plain super-block (ggml's order, dequantize_row_q6_K), and back */
static void q6_vals(const block_q6_K *b, uint8_t q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t lo = b->ql[64 * h + l], hi = b->ql[64 * h + l + 32], qh = b->qh[32 * h + l];
            uint8_t *v = q + 128 * h + l;
            v[0] = (lo & 15) | (qh & 3) << 4, v[32] = (hi & 15) | (qh >> 2 & 3) << 4;
            v[64] = (lo >> 4) | (qh >> 4 & 3) << 4, v[96] = (hi >> 4) | (qh >> 6 & 3) << 4;
        }
}

static void q6_put_vals(block_q6_K *b, const uint8_t q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *v = q + 128 * h + l;
            b->ql[64 * h + l] = (uint8_t)((v[0] & 15) | (v[64] & 15) << 4);
            b->ql[64 * h + l + 32] = (uint8_t)((v[32] & 15) | (v[96] & 15) << 4);
            b->qh[32 * h + l] = (uint8_t)(v[0] >> 4 | (v[32] >> 4) << 2 | (v[64] >> 4) << 4 | (v[96] >> 4) << 6);
        }
}

/* block j of an interleaved group from a plain block, and back (repack.h's layout) */
static void kx6_put(block_q6_Kx8 *g, int j, const block_q6_K *s) {
    uint8_t q[QK_K];
    q6_vals(s, q);
    g->d[j] = s->d;
    for (int b = 0; b < 8; b++) g->scales[16 * b + 2 * j] = s->scales[2 * b], g->scales[16 * b + 2 * j + 1] = s->scales[2 * b + 1];
    for (int sb = 0; sb < 16; sb++)
        for (int m = 0; m < 3; m++)
            for (int i = 0; i < 4; i++) {
                const uint8_t top = q[16 * sb + 12 + i] >> 2 * m & 3;
                g->qs[96 * sb + 32 * m + 4 * j + i] = (uint8_t)(q[16 * sb + 4 * m + i] | top << 6);
            }
}

static void kx6_block(const block_q6_Kx8 *g, int j, block_q6_K *dst) {
    uint8_t q[QK_K];
    dst->d = g->d[j];
    for (int b = 0; b < 8; b++) dst->scales[2 * b] = g->scales[16 * b + 2 * j], dst->scales[2 * b + 1] = g->scales[16 * b + 2 * j + 1];
    for (int sb = 0; sb < 16; sb++)
        for (int i = 0; i < 4; i++) {
            uint8_t last = 0;
            for (int m = 0; m < 3; m++) {
                const uint8_t c = g->qs[96 * sb + 32 * m + 4 * j + i];
                q[16 * sb + 4 * m + i] = c & 63;
                last |= (uint8_t)((c >> 6) << 2 * m);
            }
            q[16 * sb + 12 + i] = last;
        }
    q6_put_vals(dst, q);
}


/* the 5-bit values of a plain Q5_0 / Q5_1 block (qh, qs) into row j of a
 * group's qs / qh in repack.h's order, and back */
static void q5o_put(uint8_t *gqs, uint8_t *gqh, int j, const uint8_t *qh, const uint8_t *qs) {
    const uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int m = 0; m < 4; m++) gqh[4 * j + m] = 0;
    for (int k = 0; k < 4; k++)
        for (int m = 0; m < 4; m++) {
            const int v = 4 * k + m;
            const unsigned lo = (qs[v] & 15u) | (h >> v & 1u) << 4, hi = (unsigned)(qs[v] >> 4) | (h >> (16 + v) & 1u) << 4;
            gqs[32 * k + 4 * j + m] = (uint8_t)(lo | (hi & 7u) << 5);
            gqh[4 * j + m] |= (uint8_t)((hi >> 3) << 2 * k);
        }
}

static void q5o_get(const uint8_t *gqs, const uint8_t *gqh, int j, uint8_t *qh, uint8_t *qs) {
    uint32_t h = 0;
    for (int k = 0; k < 4; k++)
        for (int m = 0; m < 4; m++) {
            const int v = 4 * k + m;
            const unsigned b = gqs[32 * k + 4 * j + m], lo = b & 31u, hi = b >> 5 | (gqh[4 * j + m] >> 2 * k & 3u) << 3;
            qs[v] = (uint8_t)((lo & 15u) | (hi & 15u) << 4);
            h |= (uint32_t)(lo >> 4) << v | (uint32_t)(hi >> 4) << (16 + v);
        }
    for (int i = 0; i < 4; i++) qh[i] = (uint8_t)(h >> 8 * i);
}

static void q50_put(block_q5_0x8 *g, int j, const block_q5_0 *s) { g->d[j] = s->d, q5o_put(g->qs, g->qh, j, s->qh, s->qs); }
static void q50_get(const block_q5_0x8 *g, int j, block_q5_0 *d) { d->d = g->d[j], q5o_get(g->qs, g->qh, j, d->qh, d->qs); }
static void q51_put(block_q5_1x8 *g, int j, const block_q5_1 *s) {
    g->d[j] = s->d, g->m[j] = s->m, q5o_put(g->qs, g->qh, j, s->qh, s->qs);
}
static void q51_get(const block_q5_1x8 *g, int j, block_q5_1 *d) {
    d->d = g->d[j], d->m = g->m[j], q5o_get(g->qs, g->qh, j, d->qh, d->qs);
}
static void q41_put(block_q4_1x8 *g, int j, const block_q4_1 *s) {
    g->d[j] = s->d, g->m[j] = s->m;
    ilv_words(g->qs, s->qs, j, 4);
}
static void q41_get(const block_q4_1x8 *g, int j, block_q4_1 *dst) {
    dst->d = g->d[j], dst->m = g->m[j];
    ilv_words_back(dst->qs, g->qs, j, 4);
}

/* value v (0..255) of a plain Q3_K block as 0..7, and back */
static unsigned q3_val(const block_q3_K *s, int v) {
    const int n = v / 128, t = v % 128 / 32, l = v % 32;
    return (unsigned)(s->qs[32 * n + l] >> 2 * t & 3) | (unsigned)(s->hmask[l] >> (4 * n + t) & 1) << 2;
}

static void q3_set(block_q3_K *d, int v, unsigned q) {
    const int n = v / 128, t = v % 128 / 32, l = v % 32;
    d->qs[32 * n + l] = (uint8_t)((d->qs[32 * n + l] & ~(3u << 2 * t)) | (q & 3u) << 2 * t);
    d->hmask[l] = (uint8_t)((d->hmask[l] & ~(1u << (4 * n + t))) | (q >> 2 & 1u) << (4 * n + t));
}

/* repack.h's q3 order: the three bytes (k = 0..2) of position m of row j in
 * 32-value block a from its values q_i = q(32a + 4i + m) */
static void q3o_bytes(const unsigned *q, uint8_t *b) {
    b[0] = (uint8_t)(q[0] | q[1] << 3 | (q[6] & 3u) << 6);
    b[1] = (uint8_t)(q[2] | q[3] << 3 | (q[7] & 3u) << 6);
    b[2] = (uint8_t)(q[4] | q[5] << 3 | (q[6] >> 2) << 6 | (q[7] >> 2) << 7);
}

static void q3k_put(block_q3_Kx8 *g, int j, const block_q3_K *s) {
    g->d[j] = s->d;
    ilv_words(g->scales, s->scales, j, 3);
    for (int a = 0; a < 8; a++)
        for (int m = 0; m < 4; m++) {
            unsigned q[8];
            uint8_t b[3];
            for (int i = 0; i < 8; i++) q[i] = q3_val(s, 32 * a + 4 * i + m);
            q3o_bytes(q, b);
            for (int k = 0; k < 3; k++) g->q[96 * a + 32 * k + 4 * j + m] = b[k];
        }
}

static void q3k_get(const block_q3_Kx8 *g, int j, block_q3_K *d) {
    memset(d->qs, 0, sizeof d->qs), memset(d->hmask, 0, sizeof d->hmask); /* q3_set sets bits */
    d->d = g->d[j];
    ilv_words_back(d->scales, g->scales, j, 3);
    for (int a = 0; a < 8; a++)
        for (int m = 0; m < 4; m++) {
            const uint8_t *b = g->q + 96 * a + 4 * j + m;
            const unsigned b0 = b[0], b1 = b[32], b2 = b[64];
            const unsigned q[8] = {b0 & 7, b0 >> 3 & 7, b1 & 7, b1 >> 3 & 7, b2 & 7, b2 >> 3 & 7,
                                   (b0 >> 6) | (b2 >> 6 & 1) << 2, (b1 >> 6) | (b2 >> 7) << 2};
            for (int i = 0; i < 8; i++) q3_set(d, 32 * a + 4 * i + m, q[i]);
        }
}

static void q2k_put(block_q2_Kx8 *g, int j, const block_q2_K *s) {
    g->d[j] = s->d, g->dmin[j] = s->dmin;
    ilv_words(g->scales, s->scales, j, 4);
    ilv_words(g->qs, s->qs, j, 16);
}

static void q2k_get(const block_q2_Kx8 *g, int j, block_q2_K *d) {
    d->d = g->d[j], d->dmin = g->dmin[j];
    ilv_words_back(d->scales, g->scales, j, 4);
    ilv_words_back(d->qs, g->qs, j, 16);
}

/* IQ4_NL's blocks are Q4_0's bytes, moved as Q4_0's are (their own functions: no
 * block_iq4_nl read through a block_q4_0) */
static void nl_put(block_q4_0x8 *g, int j, const block_iq4_nl *s) {
    g->d[j] = s->d;
    ilv_words(g->qs, s->qs, j, 4);
}

static void nl_get(const block_q4_0x8 *g, int j, block_iq4_nl *dst) {
    dst->d = g->d[j];
    ilv_words_back(dst->qs, g->qs, j, 4);
}

/* IQ4_XS: */
static void xs_put(block_iq4_xsx8 *g, int j, const block_iq4_xs *s) {
    g->d[j] = s->d, g->scales_h[j] = s->scales_h;
    ilv_words(g->scales_l, s->scales_l, j, 1);
    ilv_words(g->qs, s->qs, j, 32);
}

static void xs_get(const block_iq4_xsx8 *g, int j, block_iq4_xs *d) {
    d->d = g->d[j], d->scales_h = g->scales_h[j];
    ilv_words_back(d->scales_l, g->scales_l, j, 1);
    ilv_words_back(d->qs, g->qs, j, 32);
}

/* ---------------------------------------------------------------- any of them */

/* an interleaved type: its ggml type, values and bytes per plain block, and
 * block j of an interleaved group (8 plain blocks' bytes) from a plain block
 * (put), and back (get) */
typedef struct ilv_type {
    int gg, qk;
    size_t pb;
    void (*put)(void *g, int j, const void *plain);
    void (*get)(const void *g, int j, void *plain);
} ilv_type;

/* inlined into each type's public functions (ILV_API), where t is a
 * constant: the block movers are then called directly, not through t */
#define ILV static inline __attribute__((always_inline))

/* one group: 8 plain rows of nb blocks (src) into nb interleaved ones (dst) */
ILV void pack_group(const ilv_type *t, void *dst, const void *src, int nb) {
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < 8; j++)
            t->put((char *)dst + 8 * t->pb * b, j, (const char *)src + t->pb * ((size_t)j * nb + b));
}

/* the whole groups packed, the rows % 8 last rows copied as they are */
ILV void ilv_pack(const ilv_type *t, void *dst, const void *src, int rows, int cols) {
    const int nb = cols / t->qk, G = rows / 8;
    const size_t gbytes = 8 * t->pb * (size_t)nb;
    for (int g = 0; g < G; g++) pack_group(t, (char *)dst + gbytes * g, (const char *)src + gbytes * g, nb);
    memcpy((char *)dst + gbytes * G, (const char *)src + gbytes * G, t->pb * (size_t)(rows - 8 * G) * nb);
}

/* in place: a group's bytes stay where they were (copied out, packed back) */
ILV int ilv_repack(const ilv_type *t, void *data, int rows, int cols) {
    const int nb = cols / t->qk, G = rows / 8;
    const size_t gbytes = 8 * t->pb * (size_t)nb;
    void *tmp = malloc(gbytes ? gbytes : 1);
    if (!tmp) return 0;
    for (int g = 0; g < G; g++) {
        char *p = (char *)data + gbytes * g;
        memcpy(tmp, p, gbytes);
        pack_group(t, p, tmp, nb);
    }
    free(tmp);
    return 1;
}

/* blocks [b0, b0 + n) of row r as plain blocks into dst, and (put) back */
ILV void ilv_get(const ilv_type *t, const void *W, int rows, int r, int nb, int b0, int n, void *dst) {
    if (r >= 8 * (rows / 8)) {
        memcpy(dst, (const char *)W + t->pb * ((size_t)r * nb + b0), t->pb * (size_t)n);
        return;
    }
    const char *g = (const char *)W + 8 * t->pb * ((size_t)(r / 8) * nb + b0);
    for (int b = 0; b < n; b++) t->get(g + 8 * t->pb * b, r % 8, (char *)dst + t->pb * b);
}

ILV void ilv_put(const ilv_type *t, void *W, int rows, int r, int nb, int b0, int n, const void *src) {
    if (r >= 8 * (rows / 8)) {
        memcpy((char *)W + t->pb * ((size_t)r * nb + b0), src, t->pb * (size_t)n);
        return;
    }
    char *g = (char *)W + 8 * t->pb * ((size_t)(r / 8) * nb + b0);
    for (int b = 0; b < n; b++) t->put(g + 8 * t->pb * b, r % 8, (const char *)src + t->pb * b);
}

/* 8192 values of a row at a time on the stack: 256 Q4_0 blocks or 32 Q4_K
 * super-blocks (4,608 bytes), 32 Q5_K (5,632) or 32 Q6_K (6,720) */
#define CHUNK_VALUES 8192
typedef union chunk_buf {
    block_q4_0 q4_0[CHUNK_VALUES / QK4_0];
    block_q4_K q4_k[CHUNK_VALUES / QK_K];
    block_q6_K q6_k[CHUNK_VALUES / QK_K];
    block_q5_K q5_k[CHUNK_VALUES / QK_K];
    block_q5_1 q5_1[CHUNK_VALUES / QK5_1];
    block_q3_K q3_k[CHUNK_VALUES / QK_K];
    block_q2_K q2_k[CHUNK_VALUES / QK_K];
    block_iq4_xs iq4_xs[CHUNK_VALUES / QK_K];
} chunk_buf;

/* W float32 quantised a chunk of a row at a time (the blocks are independent)
 * straight into their interleaved places: no copy of the matrix, nothing to
 * allocate, so nothing can fail */
ILV void ilv_from_f32(const ilv_type *t, const float *W, int rows, int cols, void *dst) {
    chunk_buf buf;
    const int nb = cols / t->qk, cb = CHUNK_VALUES / t->qk;
    for (int r = 0; r < rows; r++)
        for (int b0 = 0; b0 < nb; b0 += cb) {
            const int n = nb - b0 < cb ? nb - b0 : cb;
            gg_quantize(t->gg, W + (size_t)r * cols + (size_t)b0 * t->qk, &buf, (int64_t)n * t->qk);
            ilv_put(t, dst, rows, r, nb, b0, n, &buf);
        }
}

ILV void ilv_row_f32(const ilv_type *t, const void *W, int rows, int r, int cols, float *dst) {
    chunk_buf buf;
    const int nb = cols / t->qk, cb = CHUNK_VALUES / t->qk;
    for (int b0 = 0; b0 < nb; b0 += cb) {
        const int n = nb - b0 < cb ? nb - b0 : cb;
        ilv_get(t, W, rows, r, nb, b0, n, &buf);
        gg_dequantize(t->gg, &buf, dst + (size_t)b0 * t->qk, (int64_t)n * t->qk);
    }
}

/* the public names of each type (repack.h's ILV_DECL) */
#define ILV_API(pre, T, PLAIN)                                                                                   \
    void pre##_pack(void *dst, const void *src, int rows, int cols) { ilv_pack(&T, dst, src, rows, cols); }      \
    int pre##_repack(void *data, int rows, int cols) { return ilv_repack(&T, data, rows, cols); }              \
    void pre##_row(const void *W, int rows, int r, int cols, PLAIN *dst) {                                     \
        ilv_get(&T, W, rows, r, cols / T.qk, 0, cols / T.qk, dst);                                             \
    }                                                                                                          \
    void pre##_from_f32(const float *W, int rows, int cols, void *dst) { ilv_from_f32(&T, W, rows, cols, dst); } \
    void pre##_row_f32(const void *W, int rows, int r, int cols, float *dst) { ilv_row_f32(&T, W, rows, r, cols, dst); }

/* the block movers with the ilv_type signature */
static void q40_put_v(void *g, int j, const void *s) { q40_put(g, j, s); }
static void q40_get_v(const void *g, int j, void *d) { q40_get(g, j, d); }
static void kx8_put_v(void *g, int j, const void *s) { kx8_put(g, j, s); }
static void kx8_get_v(const void *g, int j, void *d) { kx8_block(g, j, d); }
static void kx6_put_v(void *g, int j, const void *s) { kx6_put(g, j, s); }
static void kx6_get_v(const void *g, int j, void *d) { kx6_block(g, j, d); }
static void k5_put_v(void *g, int j, const void *s) { k5_put(g, j, s); }
static void k5_get_v(const void *g, int j, void *d) { k5_block(g, j, d); }

static void q50_put_v(void *g, int j, const void *s) { q50_put(g, j, s); }
static void q50_get_v(const void *g, int j, void *d) { q50_get(g, j, d); }
static void q41_put_v(void *g, int j, const void *s) { q41_put(g, j, s); }
static void q41_get_v(const void *g, int j, void *d) { q41_get(g, j, d); }
static void q51_put_v(void *g, int j, const void *s) { q51_put(g, j, s); }
static void q51_get_v(const void *g, int j, void *d) { q51_get(g, j, d); }

static void q3k_put_v(void *g, int j, const void *s) { q3k_put(g, j, s); }
static void q3k_get_v(const void *g, int j, void *d) { q3k_get(g, j, d); }

static void q2k_put_v(void *g, int j, const void *s) { q2k_put(g, j, s); }
static void q2k_get_v(const void *g, int j, void *d) { q2k_get(g, j, d); }

static void nl_put_v(void *g, int j, const void *s) { nl_put(g, j, s); }
static void nl_get_v(const void *g, int j, void *d) { nl_get(g, j, d); }
static void xs_put_v(void *g, int j, const void *s) { xs_put(g, j, s); }
static void xs_get_v(const void *g, int j, void *d) { xs_get(g, j, d); }

static const ilv_type IQ4_NL_T = {GG_IQ4_NL, QK4_NL, sizeof(block_iq4_nl), nl_put_v, nl_get_v};
static const ilv_type IQ4_XS_T = {GG_IQ4_XS, QK_K, sizeof(block_iq4_xs), xs_put_v, xs_get_v};
static const ilv_type Q2_K_T = {GG_Q2_K, QK_K, sizeof(block_q2_K), q2k_put_v, q2k_get_v};
static const ilv_type Q3_K_T = {GG_Q3_K, QK_K, sizeof(block_q3_K), q3k_put_v, q3k_get_v};
static const ilv_type Q5_0_T = {GG_Q5_0, QK5_0, sizeof(block_q5_0), q50_put_v, q50_get_v};
static const ilv_type Q4_1_T = {GG_Q4_1, QK4_1, sizeof(block_q4_1), q41_put_v, q41_get_v};
static const ilv_type Q5_1_T = {GG_Q5_1, QK5_1, sizeof(block_q5_1), q51_put_v, q51_get_v};
static const ilv_type Q4_0_T = {GG_Q4_0, QK4_0, sizeof(block_q4_0), q40_put_v, q40_get_v};
static const ilv_type Q4_K_T = {GG_Q4_K, QK_K, sizeof(block_q4_K), kx8_put_v, kx8_get_v};
static const ilv_type Q6_K_T = {GG_Q6_K, QK_K, sizeof(block_q6_K), kx6_put_v, kx6_get_v};
static const ilv_type Q5_K_T = {GG_Q5_K, QK_K, sizeof(block_q5_K), k5_put_v, k5_get_v};
_Static_assert(sizeof(block_q4_0x8) == 8 * sizeof(block_q4_0), "a group is 8 blocks' bytes");
_Static_assert(sizeof(block_q4_Kx8) == 8 * sizeof(block_q4_K), "a group is 8 blocks' bytes");
_Static_assert(sizeof(block_q6_Kx8) == 8 * sizeof(block_q6_K), "a group is 8 blocks' bytes");
_Static_assert(sizeof(block_q5_Kx8) == 8 * sizeof(block_q5_K), "a group is 8 blocks' bytes");

ILV_API(q4_0x8, Q4_0_T, block_q4_0)
ILV_API(q4_kx8, Q4_K_T, block_q4_K)
ILV_API(q6_kx8, Q6_K_T, block_q6_K)
ILV_API(q5_kx8, Q5_K_T, block_q5_K)
ILV_API(q5_0x8, Q5_0_T, block_q5_0)
ILV_API(q4_1x8, Q4_1_T, block_q4_1)
ILV_API(q5_1x8, Q5_1_T, block_q5_1)
ILV_API(q3_kx8, Q3_K_T, block_q3_K)
ILV_API(q2_kx8, Q2_K_T, block_q2_K)
ILV_API(iq4_nlx8, IQ4_NL_T, block_iq4_nl)
ILV_API(iq4_xsx8, IQ4_XS_T, block_iq4_xs)
