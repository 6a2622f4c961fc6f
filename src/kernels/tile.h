/*
 * tile.h — one register tile of a small product on strided operands: the
 * products of training's attention core (issue 15: per sequence and head
 * they are 64 x 256 x 48 and smaller, where OpenBLAS spent as long on its
 * call, packing and C-zeroing as on the FMAs, 25-55 GFLOP/s against its
 * 85 on big shapes). The operands are read in place, no packing:
 *
 *   c[i*ldc + j] = (acc ? c[i*ldc + j] : 0) + alpha * sum_{k < kc} A(i,k) B(k,j)
 *   A(i,k) = a[i*sai + k*sak]     (one scalar, broadcast)
 *   B(k,j) = b[k*sbk + j]         (nt consecutive floats per k)
 *   i < mt <= TILE_MR, j < nt <= TILE_NR, kc >= 0
 *
 * Each c[i][j] is fmaf over k ascending from zero, then times alpha, then
 * plus c when acc: tile_ref (the oracle), tile_avx2 (12 accumulators,
 * 6 x 16; nt < 16 by masked loads and stores, never touching b or c past
 * nt) and tile_avx512 (a zmm a row) agree to the bit. tile_get: the one
 * for this CPU (kern_get's ISA, so $DEEPC_ISA=ref picks the oracle).
 *
 * tile_pack: the B operand of a product over keys, transposed into panels
 * of TILE_NR keys: dst[p][off + k][jj] = src[(p TILE_NR + jj) ld + k] for
 * keys < T (zero past them), k < w; a panel is w_all columns deep (so
 * several sources fill one panel side by side). The same floats either way
 * (tile_pack_avx2: 8 x 8 transposes in registers).
 */
#ifndef DC_TILE_H
#define DC_TILE_H
#include <stddef.h>

#define TILE_MR 6
#define TILE_NR 16

typedef void (*tile_fn)(int mt, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk,
                        float *c, size_t ldc, float alpha, int acc);
void tile_ref(int mt, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk, float *c,
              size_t ldc, float alpha, int acc);
void tile_avx2(int mt, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk, float *c,
               size_t ldc, float alpha, int acc);
void tile_avx512(int mt, int nt, int kc, const float *a, size_t sai, size_t sak, const float *b, size_t sbk, float *c,
                 size_t ldc, float alpha, int acc);
tile_fn tile_get(void);

typedef void (*tile_pack_fn)(float *dst, int w_all, int off, const float *src, size_t ld, int T, int w);
void tile_pack_ref(float *dst, int w_all, int off, const float *src, size_t ld, int T, int w);
void tile_pack_avx2(float *dst, int w_all, int off, const float *src, size_t ld, int T, int w);
tile_pack_fn tile_pack_get(void);
#endif
