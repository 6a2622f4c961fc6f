/* repack.c — see repack.h: Q4_0, Q4_K and Q6_K rows interleaved 8 at a time, and back. */
#include "kernels/repack.h"
#include <stdlib.h>
#include <string.h>

/* block j of an interleaved group from a plain block, and back */
static void q40_put(block_q4_0x8 *g, int j, const block_q4_0 *s) {
    g->d[j] = s->d;
    for (int k = 0; k < 4; k++) memcpy(g->qs + 32 * k + 4 * j, s->qs + 4 * k, 4);
}

static void q40_get(const block_q4_0x8 *g, int j, block_q4_0 *dst) {
    dst->d = g->d[j];
    for (int k = 0; k < 4; k++) memcpy(dst->qs + 4 * k, g->qs + 32 * k + 4 * j, 4);
}

/* one group: 8 plain rows of nb blocks (src) into nb interleaved blocks (dst) */
static void pack_group(block_q4_0x8 *dst, const block_q4_0 *src, int nb) {
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < 8; j++) q40_put(dst + b, j, src + (size_t)j * nb + b);
}

void q4_0x8_pack(void *dst, const void *src, int rows, int cols) {
    const int nb = cols / QK4_0, G = rows / 8;
    const block_q4_0 *s = src;
    block_q4_0x8 *d = dst;
    for (int g = 0; g < G; g++) pack_group(d + (size_t)g * nb, s + (size_t)g * 8 * nb, nb);
    memcpy(d + (size_t)G * nb, s + (size_t)G * 8 * nb, sizeof(block_q4_0) * (size_t)(rows - 8 * G) * nb);
}

int q4_0x8_repack(void *data, int rows, int cols) {
    const int nb = cols / QK4_0, G = rows / 8;
    block_q4_0 *tmp = malloc(sizeof(block_q4_0) * 8 * (size_t)(nb ? nb : 1));
    if (!tmp) return 0;
    for (int g = 0; g < G; g++) { /* a group's bytes stay where they were: copy out, pack back */
        block_q4_0 *p = (block_q4_0 *)data + (size_t)g * 8 * nb;
        memcpy(tmp, p, sizeof(block_q4_0) * 8 * (size_t)nb);
        pack_group((block_q4_0x8 *)(void *)p, tmp, nb);
    }
    free(tmp);
    return 1;
}

/* blocks [b0, b0 + n) of row r as plain Q4_0 blocks into dst, and (put) back */
static void row_blocks(const void *W, int rows, int r, int nb, int b0, int n, void *dst) {
    block_q4_0 *d = dst;
    if (r >= 8 * (rows / 8)) {
        memcpy(d, (const block_q4_0 *)W + (size_t)r * nb + b0, sizeof(block_q4_0) * (size_t)n);
        return;
    }
    const block_q4_0x8 *g = (const block_q4_0x8 *)W + (size_t)(r / 8) * nb + b0;
    for (int b = 0; b < n; b++) q40_get(g + b, r % 8, d + b);
}

static void row_put(void *W, int rows, int r, int nb, int b0, int n, const void *src) {
    const block_q4_0 *s = src;
    if (r >= 8 * (rows / 8)) {
        memcpy((block_q4_0 *)W + (size_t)r * nb + b0, s, sizeof(block_q4_0) * (size_t)n);
        return;
    }
    block_q4_0x8 *g = (block_q4_0x8 *)W + (size_t)(r / 8) * nb + b0;
    for (int b = 0; b < n; b++) q40_put(g + b, r % 8, s + b);
}

void q4_0x8_row(const void *W, int rows, int r, int cols, block_q4_0 *dst) {
    row_blocks(W, rows, r, cols / QK4_0, 0, cols / QK4_0, dst);
}

/* ---------------------------------------------------------------- both */

/* a type's row walk: plain blocks of row r in and out of the interleaved
 * matrix, and its ggml quantiser */
typedef struct ilv_ops {
    int gg, qk; /* ggml type, values per block */
    void (*get)(const void *W, int rows, int r, int nb, int b0, int n, void *dst);
    void (*put)(void *W, int rows, int r, int nb, int b0, int n, const void *src);
} ilv_ops;

/* 8192 values of a row at a time on the stack: 256 Q4_0 blocks or 32 Q4_K
 * super-blocks (4,608 bytes), or 32 Q6_K super-blocks (6,720) */
#define CHUNK_VALUES 8192
typedef union chunk_buf {
    block_q4_0 q4_0[CHUNK_VALUES / QK4_0];
    block_q4_K q4_k[CHUNK_VALUES / QK_K];
    block_q6_K q6_k[CHUNK_VALUES / QK_K];
} chunk_buf;

/* W float32 quantised a chunk of a row at a time (the blocks are independent)
 * straight into their interleaved places: no copy of the matrix, nothing to
 * allocate, so nothing can fail */
static void ilv_from_f32(const ilv_ops *o, const float *W, int rows, int cols, void *dst) {
    chunk_buf buf;
    const int nb = cols / o->qk, cb = CHUNK_VALUES / o->qk;
    for (int r = 0; r < rows; r++)
        for (int b0 = 0; b0 < nb; b0 += cb) {
            const int n = nb - b0 < cb ? nb - b0 : cb;
            gg_quantize(o->gg, W + (size_t)r * cols + (size_t)b0 * o->qk, &buf, (int64_t)n * o->qk);
            o->put(dst, rows, r, nb, b0, n, &buf);
        }
}

static void ilv_row_f32(const ilv_ops *o, const void *W, int rows, int r, int cols, float *dst) {
    chunk_buf buf;
    const int nb = cols / o->qk, cb = CHUNK_VALUES / o->qk;
    for (int b0 = 0; b0 < nb; b0 += cb) {
        const int n = nb - b0 < cb ? nb - b0 : cb;
        o->get(W, rows, r, nb, b0, n, &buf);
        gg_dequantize(o->gg, &buf, dst + (size_t)b0 * o->qk, (int64_t)n * o->qk);
    }
}

static const ilv_ops Q4_0_OPS = {GG_Q4_0, QK4_0, row_blocks, row_put};

void q4_0x8_from_f32(const float *W, int rows, int cols, void *dst) { ilv_from_f32(&Q4_0_OPS, W, rows, cols, dst); }

void q4_0x8_row_f32(const void *W, int rows, int r, int cols, float *dst) {
    ilv_row_f32(&Q4_0_OPS, W, rows, r, cols, dst);
}

/* ---------------------------------------------------------------- q4_K x8 */

/* block j of an interleaved group from a plain block, and back */
static void kx8_put(block_q4_Kx8 *g, int j, const block_q4_K *s) {
    g->d[j] = s->d, g->dmin[j] = s->dmin;
    for (int w = 0; w < 3; w++) memcpy(g->scales + 32 * w + 4 * j, s->scales + 4 * w, 4);
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 8; c++) memcpy(g->qs + 256 * i + 32 * c + 4 * j, s->qs + 32 * i + 4 * c, 4);
}

static void kx8_block(const block_q4_Kx8 *g, int j, block_q4_K *dst) {
    dst->d = g->d[j], dst->dmin = g->dmin[j];
    for (int w = 0; w < 3; w++) memcpy(dst->scales + 4 * w, g->scales + 32 * w + 4 * j, 4);
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 8; c++) memcpy(dst->qs + 32 * i + 4 * c, g->qs + 256 * i + 32 * c + 4 * j, 4);
}

void q4_kx8_gather(block_q4_Kx8 *dst, const block_q4_K *const src[8]) {
    for (int j = 0; j < 8; j++) kx8_put(dst, j, src[j]);
}

/* one group: 8 plain rows of nb super-blocks (src) into nb interleaved ones */
static void kx8_pack_group(block_q4_Kx8 *dst, const block_q4_K *src, int nb) {
    for (int b = 0; b < nb; b++) {
        const block_q4_K *rows[8];
        for (int j = 0; j < 8; j++) rows[j] = src + (size_t)j * nb + b;
        q4_kx8_gather(dst + b, rows);
    }
}

void q4_kx8_pack(void *dst, const void *src, int rows, int cols) {
    const int nb = cols / QK_K, G = rows / 8;
    const block_q4_K *s = src;
    block_q4_Kx8 *d = dst;
    for (int g = 0; g < G; g++) kx8_pack_group(d + (size_t)g * nb, s + (size_t)g * 8 * nb, nb);
    memcpy(d + (size_t)G * nb, s + (size_t)G * 8 * nb, sizeof(block_q4_K) * (size_t)(rows - 8 * G) * nb);
}

int q4_kx8_repack(void *data, int rows, int cols) {
    const int nb = cols / QK_K, G = rows / 8;
    block_q4_K *tmp = malloc(sizeof(block_q4_K) * 8 * (size_t)(nb ? nb : 1));
    if (!tmp) return 0;
    for (int g = 0; g < G; g++) {
        block_q4_K *p = (block_q4_K *)data + (size_t)g * 8 * nb;
        memcpy(tmp, p, sizeof(block_q4_K) * 8 * (size_t)nb);
        kx8_pack_group((block_q4_Kx8 *)(void *)p, tmp, nb);
    }
    free(tmp);
    return 1;
}

/* super-blocks [b0, b0 + n) of row r as plain blocks into dst, and (put) back */
static void kx8_row_blocks(const void *W, int rows, int r, int nb, int b0, int n, void *dst) {
    block_q4_K *d = dst;
    if (r >= 8 * (rows / 8)) {
        memcpy(d, (const block_q4_K *)W + (size_t)r * nb + b0, sizeof(block_q4_K) * (size_t)n);
        return;
    }
    const block_q4_Kx8 *g = (const block_q4_Kx8 *)W + (size_t)(r / 8) * nb + b0;
    for (int b = 0; b < n; b++) kx8_block(g + b, r % 8, d + b);
}

static void kx8_row_put(void *W, int rows, int r, int nb, int b0, int n, const void *src) {
    const block_q4_K *s = src;
    if (r >= 8 * (rows / 8)) {
        memcpy((block_q4_K *)W + (size_t)r * nb + b0, s, sizeof(block_q4_K) * (size_t)n);
        return;
    }
    block_q4_Kx8 *g = (block_q4_Kx8 *)W + (size_t)(r / 8) * nb + b0;
    for (int b = 0; b < n; b++) kx8_put(g + b, r % 8, s + b);
}

void q4_kx8_row(const void *W, int rows, int r, int cols, block_q4_K *dst) {
    kx8_row_blocks(W, rows, r, cols / QK_K, 0, cols / QK_K, dst);
}

static const ilv_ops Q4_K_OPS = {GG_Q4_K, QK_K, kx8_row_blocks, kx8_row_put};

void q4_kx8_from_f32(const float *W, int rows, int cols, void *dst) { ilv_from_f32(&Q4_K_OPS, W, rows, cols, dst); }

void q4_kx8_row_f32(const void *W, int rows, int r, int cols, float *dst) {
    ilv_row_f32(&Q4_K_OPS, W, rows, r, cols, dst);
}

/* ---------------------------------------------------------------- q6_K x8 */

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

/* one group: 8 plain rows of nb super-blocks (src) into nb interleaved ones */
static void kx6_pack_group(block_q6_Kx8 *dst, const block_q6_K *src, int nb) {
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < 8; j++) kx6_put(dst + b, j, src + (size_t)j * nb + b);
}

void q6_kx8_pack(void *dst, const void *src, int rows, int cols) {
    const int nb = cols / QK_K, G = rows / 8;
    const block_q6_K *s = src;
    block_q6_Kx8 *d = dst;
    for (int g = 0; g < G; g++) kx6_pack_group(d + (size_t)g * nb, s + (size_t)g * 8 * nb, nb);
    memcpy(d + (size_t)G * nb, s + (size_t)G * 8 * nb, sizeof(block_q6_K) * (size_t)(rows - 8 * G) * nb);
}

int q6_kx8_repack(void *data, int rows, int cols) {
    const int nb = cols / QK_K, G = rows / 8;
    block_q6_K *tmp = malloc(sizeof(block_q6_K) * 8 * (size_t)(nb ? nb : 1));
    if (!tmp) return 0;
    for (int g = 0; g < G; g++) {
        block_q6_K *p = (block_q6_K *)data + (size_t)g * 8 * nb;
        memcpy(tmp, p, sizeof(block_q6_K) * 8 * (size_t)nb);
        kx6_pack_group((block_q6_Kx8 *)(void *)p, tmp, nb);
    }
    free(tmp);
    return 1;
}

/* super-blocks [b0, b0 + n) of row r as plain blocks into dst, and (put) back */
static void kx6_row_blocks(const void *W, int rows, int r, int nb, int b0, int n, void *dst) {
    block_q6_K *d = dst;
    if (r >= 8 * (rows / 8)) {
        memcpy(d, (const block_q6_K *)W + (size_t)r * nb + b0, sizeof(block_q6_K) * (size_t)n);
        return;
    }
    const block_q6_Kx8 *g = (const block_q6_Kx8 *)W + (size_t)(r / 8) * nb + b0;
    for (int b = 0; b < n; b++) kx6_block(g + b, r % 8, d + b);
}

static void kx6_row_put(void *W, int rows, int r, int nb, int b0, int n, const void *src) {
    const block_q6_K *s = src;
    if (r >= 8 * (rows / 8)) {
        memcpy((block_q6_K *)W + (size_t)r * nb + b0, s, sizeof(block_q6_K) * (size_t)n);
        return;
    }
    block_q6_Kx8 *g = (block_q6_Kx8 *)W + (size_t)(r / 8) * nb + b0;
    for (int b = 0; b < n; b++) kx6_put(g + b, r % 8, s + b);
}

void q6_kx8_row(const void *W, int rows, int r, int cols, block_q6_K *dst) {
    kx6_row_blocks(W, rows, r, cols / QK_K, 0, cols / QK_K, dst);
}

static const ilv_ops Q6_K_OPS = {GG_Q6_K, QK_K, kx6_row_blocks, kx6_row_put};

void q6_kx8_from_f32(const float *W, int rows, int cols, void *dst) { ilv_from_f32(&Q6_K_OPS, W, rows, cols, dst); }

void q6_kx8_row_f32(const void *W, int rows, int r, int cols, float *dst) {
    ilv_row_f32(&Q6_K_OPS, W, rows, r, cols, dst);
}
