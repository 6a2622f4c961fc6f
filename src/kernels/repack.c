/* repack.c — see repack.h: Q4_0 and Q4_K rows interleaved 8 at a time, and back. */
#include "kernels/repack.h"
#include <stdlib.h>
#include <string.h>

/* one group: 8 plain rows of nb blocks (src) into nb interleaved blocks (dst) */
static void pack_group(block_q4_0x8 *dst, const block_q4_0 *src, int nb) {
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < 8; j++) {
            const block_q4_0 *s = src + (size_t)j * nb + b;
            dst[b].d[j] = s->d;
            for (int k = 0; k < 4; k++) memcpy(dst[b].qs + 32 * k + 4 * j, s->qs + 4 * k, 4);
        }
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

/* blocks [b0, b0 + n) of row r as plain Q4_0 blocks into dst */
static void row_blocks(const void *W, int rows, int r, int nb, int b0, int n, block_q4_0 *dst) {
    if (r >= 8 * (rows / 8)) {
        memcpy(dst, (const block_q4_0 *)W + (size_t)r * nb + b0, sizeof(block_q4_0) * (size_t)n);
        return;
    }
    const block_q4_0x8 *g = (const block_q4_0x8 *)W + (size_t)(r / 8) * nb + b0;
    const int j = r % 8;
    for (int b = 0; b < n; b++) {
        dst[b].d = g[b].d[j];
        for (int k = 0; k < 4; k++) memcpy(dst[b].qs + 4 * k, g[b].qs + 32 * k + 4 * j, 4);
    }
}

void q4_0x8_row(const void *W, int rows, int r, int cols, block_q4_0 *dst) {
    row_blocks(W, rows, r, cols / QK4_0, 0, cols / QK4_0, dst);
}

void q4_0x8_from_f32(const float *W, int rows, int cols, void *dst) {
    const size_t rb = gg_row_bytes(GG_Q4_0, cols);
    char *tmp = malloc(rb * (size_t)rows + 1);
    if (!tmp) { /* no memory for the plain copy: quantise row by row into place, leave it plain */
        for (int r = 0; r < rows; r++) gg_quantize(GG_Q4_0, W + (size_t)r * cols, (char *)dst + r * rb, cols);
        q4_0x8_repack(dst, rows, cols);
        return;
    }
    for (int r = 0; r < rows; r++) gg_quantize(GG_Q4_0, W + (size_t)r * cols, tmp + r * rb, cols);
    q4_0x8_pack(dst, tmp, rows, cols);
    free(tmp);
}

void q4_0x8_row_f32(const void *W, int rows, int r, int cols, float *dst) {
    block_q4_0 blk[256]; /* 8192 values at a time: a bounded stack */
    const int nb = cols / QK4_0;
    for (int b0 = 0; b0 < nb; b0 += 256) {
        const int n = nb - b0 < 256 ? nb - b0 : 256;
        row_blocks(W, rows, r, nb, b0, n, blk);
        gg_dequantize(GG_Q4_0, blk, dst + (size_t)b0 * QK4_0, (int64_t)n * QK4_0);
    }
}

/* ---------------------------------------------------------------- q4_K x8 */

void q4_kx8_gather(block_q4_Kx8 *dst, const block_q4_K *const src[8]) {
    for (int j = 0; j < 8; j++) {
        const block_q4_K *s = src[j];
        dst->d[j] = s->d, dst->dmin[j] = s->dmin;
        for (int w = 0; w < 3; w++) memcpy(dst->scales + 32 * w + 4 * j, s->scales + 4 * w, 4);
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 8; c++) memcpy(dst->qs + 256 * i + 32 * c + 4 * j, s->qs + 32 * i + 4 * c, 4);
    }
}

/* block j of an interleaved group back as a plain block */
static void kx8_block(const block_q4_Kx8 *g, int j, block_q4_K *dst) {
    dst->d = g->d[j], dst->dmin = g->dmin[j];
    for (int w = 0; w < 3; w++) memcpy(dst->scales + 4 * w, g->scales + 32 * w + 4 * j, 4);
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 8; c++) memcpy(dst->qs + 32 * i + 4 * c, g->qs + 256 * i + 32 * c + 4 * j, 4);
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

/* super-blocks [b0, b0 + n) of row r as plain blocks into dst */
static void kx8_row_blocks(const void *W, int rows, int r, int nb, int b0, int n, block_q4_K *dst) {
    if (r >= 8 * (rows / 8)) {
        memcpy(dst, (const block_q4_K *)W + (size_t)r * nb + b0, sizeof(block_q4_K) * (size_t)n);
        return;
    }
    const block_q4_Kx8 *g = (const block_q4_Kx8 *)W + (size_t)(r / 8) * nb + b0;
    for (int b = 0; b < n; b++) kx8_block(g + b, r % 8, dst + b);
}

void q4_kx8_row(const void *W, int rows, int r, int cols, block_q4_K *dst) {
    kx8_row_blocks(W, rows, r, cols / QK_K, 0, cols / QK_K, dst);
}

void q4_kx8_from_f32(const float *W, int rows, int cols, void *dst) {
    const size_t rb = gg_row_bytes(GG_Q4_K, cols);
    char *tmp = malloc(rb * (size_t)rows + 1);
    if (!tmp) {
        for (int r = 0; r < rows; r++) gg_quantize(GG_Q4_K, W + (size_t)r * cols, (char *)dst + r * rb, cols);
        q4_kx8_repack(dst, rows, cols);
        return;
    }
    for (int r = 0; r < rows; r++) gg_quantize(GG_Q4_K, W + (size_t)r * cols, tmp + r * rb, cols);
    q4_kx8_pack(dst, tmp, rows, cols);
    free(tmp);
}

void q4_kx8_row_f32(const void *W, int rows, int r, int cols, float *dst) {
    block_q4_K blk[32]; /* 8192 values at a time: a bounded stack */
    const int nb = cols / QK_K;
    for (int b0 = 0; b0 < nb; b0 += 32) {
        const int n = nb - b0 < 32 ? nb - b0 : 32;
        kx8_row_blocks(W, rows, r, nb, b0, n, blk);
        gg_dequantize(GG_Q4_K, blk, dst + (size_t)b0 * QK_K, (int64_t)n * QK_K);
    }
}
