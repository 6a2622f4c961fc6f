/*
 * bf16_pack.h — float32 operands rounded to bfloat16 (nearest even, as
 * linear.c's rounding) and packed for the BF16 GEMM kernels (gemm_bf16.h):
 * the AVX512_BF16 kernel of gemm_bf16.c and the AMX kernel of gemm_amx.c.
 *
 * Two layouts. The "pair" layout (vdpbf16ps' operand and AMX's B tile):
 * panels of w columns of op(X), per pair p of K (k = 2p, 2p + 1) the w
 * columns' dwords (bf16 of k = 2p in the low half), panel i at dst + i w
 * Pst dwords, where Pst >= pairs(K) is the panel's pair count: pairs past K
 * are zero. The "row" layout (AMX's A tile): panels of 32 rows of op(X), per
 * block of 32 along K two 16-row tiles of 16 x 32 bf16 (64 bytes a row, k
 * in order), 2 KB a block; rows past n and k past K zero.
 *
 * op(X) is X (n, K) row-major with stride ld ("rows"), or X (K, n) read down
 * its columns ("cols"). Column-read operands are packed a few pairs at a
 * time across all panels (block c of col_blocks), so X is read along its
 * rows; callers share the blocks (or panels) over threads. AVX-512 BF16
 * code: callers run it only where gemm_bf16_ok().
 */
#ifndef DC_BF16_PACK_H
#define DC_BF16_PACK_H
#include <stddef.h>
#include <stdint.h>

static inline size_t bf16_pairs(int K) { return (size_t)(K + 1) / 2; }
/* the row layout's blocks along K (32 each, the last zero-padded) and the
 * dwords of one block of a 32-row panel (two 16 x 32 bf16 tiles) */
static inline int bf16_tile_blocks(int K) { return (K + 31) / 32; }
enum { BF16_TILE_BLOCK = 512 };

/* pair layout, op(X) read down X's columns: block c of pack_col_blocks(Pst) */
enum { BF16_PB = 8 }; /* pairs a block */
static inline int bf16_col_blocks(size_t Pst) { return (int)((Pst + BF16_PB - 1) / BF16_PB); }
void bf16_pack_cols(uint32_t *dst, const float *X, int ld, int n, int K, int w, size_t Pst, int c);
/* pair layout, op(X) = X (n, K): the panel of rows [i0, i0 + w), w <= 32 */
void bf16_pack_rows(uint32_t *dst, const float *X, int ld, int n, int K, int i0, int w, size_t Pst);

/* row layout (AMX A; dst 64-byte aligned): KB = ceil(K / 32) blocks a panel, 512 dwords each
 * (row r of the panel at dword 16 r of a block). From X (n, K) rows: panel
 * i (rows [32 i, 32 i + 32)) at dst. From X (K, n) read down its columns:
 * block b of every panel (panel i at dst + i KB 512). */
void bf16_pack_tiles_rows(uint32_t *dst, const float *X, int ld, int n, int K, int i);
void bf16_pack_tiles_cols(uint32_t *dst, const float *X, int ld, int n, int K, int b);
#endif
