/*
 * repack.h — Q4_0, Q4_K, Q5_K, Q6_K, Q5_0, Q4_1, Q5_1, Q3_K, Q2_K, IQ4_NL and
 * IQ4_XS matrices with 8 rows interleaved (MAT_Q4_0X8, MAT_Q4_KX8, MAT_Q5_KX8,
 * MAT_Q6_KX8, MAT_Q5_0X8, MAT_Q4_1X8, MAT_Q5_1X8, MAT_Q3_KX8, MAT_Q2_KX8,
 * MAT_IQ4_NLX8, MAT_IQ4_XSX8, wtype.h), made at load
 * from the GGUF layout (load_gguf.c, weights_convert) so the decode kernels keep one row per vector lane
 * (issue 15). Borrowed (mmapped) blocks stay plain; the plain kernels gather
 * 8 rows into the same lanes, so both layouts give the same bits.
 *
 * Why: a plain Q4_0 row dotted with 32 int8 activations ends each block with
 * a horizontal integer sum, a conversion and two float operations, and the
 * block's half scale broadcast: about as many vector operations as the
 * nibbles themselves, so the AVX2 kernel ran at the DRAM bound at best (17
 * GB/s a thread in L2 on Zen 3, the bound 18). With 8 rows interleaved 4 bytes
 * at a time, one 32-byte load holds 4 bytes (8 values) of each row; the
 * activations' 4 matching bytes broadcast to all lanes, maddubs sums them
 * into the row's own lane, and the conversion, the scale (8 halves, one
 * load) and the FMA serve 8 blocks at once.
 *
 * Layout of a (rows, cols) matrix, nb = cols / 32 blocks a row, G = rows / 8:
 *   group g < G: nb block_q4_0x8, block b holding block b of rows 8g..8g+7:
 *       d[j]               the half scale of row 8g + j
 *       qs[32k + 4j + m]   byte 4k + m of row 8g + j's qs (k, m = 0..3), i.e.
 *                          values 4k + m (low nibble) and 16 + 4k + m (high)
 *   then the rows % 8 last rows as plain block_q4_0 rows.
 * The same bytes as Q4_0 (18 per 32 values); the values and so the oracle
 * (matvec_ref.c: a row taken back out, then Q4_0's) are Q4_0's. The kernels
 * find the tail from the matrix's rows, which matvec.h's ldo gives them.
 * In L2 on Zen 3, 1 thread, T = 1: 38 GB/s (Q4_0 plain: 18); Q4_K 21 (16), 33-36
 * since its kernel turned its loops (matvec_avx2.c, q4k_super).
 * Q6_K (MAT_Q6_KX8, below) also takes a new bit order of its values, and
 * so does Q5_K (MAT_Q5_KX8, below): L2, 1 thread, T = 1: 25 GB/s (ggml's
 * order, the kernel before: 13.8).
 */
#ifndef DC_REPACK_H
#define DC_REPACK_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "kernels/ggml_types.h"

/* ilv_words: n 4-byte words of a plain block's field src as row j's in a
 * group's field dst (dst[32w + 4j + m] = src[4w + m], w < n): how every
 * layout below places the bytes it keeps as ggml has them; ilv_words_back:
 * the same words back out of the group into src's order */
static inline void ilv_words(uint8_t *dst, const uint8_t *src, int j, int n) {
    for (int w = 0; w < n; w++) memcpy(dst + 32 * w + 4 * j, src + 4 * w, 4);
}
static inline void ilv_words_back(uint8_t *dst, const uint8_t *src, int j, int n) {
    for (int w = 0; w < n; w++) memcpy(dst + 4 * w, src + 32 * w + 4 * j, 4);
}

typedef struct block_q4_0x8 {
    uint16_t d[8];     /* IEEE half scales of the 8 rows */
    uint8_t qs[128];   /* the rows' nibbles, 4 bytes of each row in turn */
} block_q4_0x8;
_Static_assert(sizeof(block_q4_0x8) == 8 * sizeof(block_q4_0), "8 Q4_0 blocks, no padding");

/* ILV_DECL: the five functions of each interleaved type PRE (defined by
 * repack.c's ILV_API), PLAIN its plain block:
 *   PRE_pack      the plain matrix src (rows, cols) into dst (the same
 *                 bytes, a different buffer)
 *   PRE_repack    the same in place, through an 8-row scratch; 0 when that
 *                 cannot be allocated (the data is then untouched), 1 otherwise
 *   PRE_row       row r of the interleaved W (rows, cols) as a plain row
 *                 (cols / block size PLAIN blocks) into dst
 *   PRE_from_f32  W (rows, cols) float32 quantised (gg_quantize) straight
 *                 into its interleaved places in dst, 8192 values of a row at
 *                 a time (wtype.h's from_f32_mat; allocates nothing)
 *   PRE_row_f32   row r of W (rows, cols) as float32 (wtype.h's row_to_f32) */
#define ILV_DECL(PRE, PLAIN)                                                   \
    void PRE##_pack(void *dst, const void *src, int rows, int cols);           \
    int PRE##_repack(void *data, int rows, int cols);                          \
    void PRE##_row(const void *W, int rows, int r, int cols, PLAIN *dst);      \
    void PRE##_from_f32(const float *W, int rows, int cols, void *dst);        \
    void PRE##_row_f32(const void *W, int rows, int r, int cols, float *dst);

ILV_DECL(q4_0x8, block_q4_0)

/* Q4_K the same way (MAT_Q4_KX8), per super-block of 256 values:
 *   d[j], dmin[j]              row 8g + j's half scales
 *   scales[32w + 4j + b]       byte 4w + b of its 12 packed scale bytes
 *   qs[256i + 32c + 4j + m]    byte 32i + 4c + m of its qs (i, c: pair of
 *                              sub-blocks 2i / 2i + 1 in low / high nibbles,
 *                              4 of its 32 bytes)
 * then the rows % 8 last rows as plain block_q4_K rows. Plain rows (that tail,
 * borrowed blocks) are gathered 8 at a time into this layout by the AVX2
 * kernel (matvec_avx2.c, q4k_gather8), so both meet the same arithmetic. */
typedef struct block_q4_Kx8 {
    uint16_t d[8], dmin[8];
    uint8_t scales[96];
    uint8_t qs[1024];
} block_q4_Kx8;
_Static_assert(sizeof(block_q4_Kx8) == 8 * sizeof(block_q4_K), "8 Q4_K blocks, no padding");

ILV_DECL(q4_kx8, block_q4_K)

/* Q6_K (MAT_Q6_KX8) with its 6-bit values in a new bit order besides: per
 * super-block of 256 values (16 sub-blocks s of 16, value v = 16s + 4m + i,
 * m, i = 0..3, q = ggml's 6-bit value 0..63, w = d sc[s] (q - 32)):
 *   d[j]                       row 8g + j's half scale
 *   scales[16b + 2j + e]       its int8 scale of sub-block 2b + e (b = 0..7)
 *   qs[96s + 32m + 4j + i]     m = 0, 1, 2: q(16s + 4m + i) in bits 0-5,
 *                              bits 2m, 2m + 1 of q(16s + 12 + i) in bits 6-7
 * then the rows % 8 last rows as plain block_q6_K rows. So 32 bytes at
 * qs + 96s hold 4 values of each of the 8 rows (lane j: values 16s..16s+3)
 * with one AND (and the same for the next two 32), and the fourth 4
 * values of each row come out of the three vectors' top bits (3 AND-NOTs
 * by the same 0x3f, 3 shifts, 2 ORs): 11 vector operations for 16 values
 * of 8 rows, where ggml's order took 17 (the two halves of a byte at
 * different depths). In L2 on Zen 3, 1 thread, T = 1: 27-30 GB/s a group
 * at a time (the plain Q6_K kernel before this type: 19); 4 groups sharing
 * the activation broadcasts (matvec_avx2.c): 39-41 on 240 rows, 34-35 in
 * bench_matvec cache (234 rows, the last 2 plain); from memory 31-33 (the
 * one-stream kernel 24-26, the 1-thread probe 28-30); matmul 2816 x 1024,
 * T = 64: 16-19k tokens/s (8-12k). */
typedef struct block_q6_Kx8 {
    uint16_t d[8];
    int8_t scales[128];
    uint8_t qs[1536];
} block_q6_Kx8;
_Static_assert(sizeof(block_q6_Kx8) == 8 * sizeof(block_q6_K), "8 Q6_K blocks, no padding");

ILV_DECL(q6_kx8, block_q6_K)

/* Q5_K (MAT_Q5_KX8) in Q4_K's places with its bits regrouped: per
 * super-block of 256 values (q_s(l) = ggml's 5-bit value l = 0..31 of
 * sub-block s, w = d sc_s q - dmin m_s):
 *   d[j], dmin[j], scales[...]  as block_q4_Kx8
 *   qs[256i + 32c + 4j + m]     of row 8g + j, l = 4c + m (i = 0..3, c =
 *                               0..7): q_2i(l) in bits 0-4, bits 0-2 of
 *                               q_2i+1(l) in bits 5-7
 *   qh[32c + 4j + m]            bits 3-4 of q_2i+1(l) in bits 2i, 2i + 1
 * then the rows % 8 last rows as plain block_q5_K rows. So 32 bytes at qs +
 * 256i + 32c hold 4 values of sub-block 2i of each row (one AND) and, with
 * qh + 32c, 4 of sub-block 2i + 1 (a shift and an AND of each, an OR): 6
 * vector operations for the two, where ggml's order takes 9 (a nibble and
 * a fifth bit each). Lossless: q5_kx8_row gives a plain row back byte for
 * byte. The plain rows' kernel gathers 8 plain super-blocks into this
 * struct in another form, Q4_K's places for qs and ggml's qh bytes 4 at a
 * time (qh[32c + 4j + m] = row j's qh[4c + m]), with ggml's bits as they
 * are (dword transposes), and takes the same integers out of it. */
typedef struct block_q5_Kx8 {
    uint16_t d[8], dmin[8];
    uint8_t scales[96];
    uint8_t qh[256];
    uint8_t qs[1024];
} block_q5_Kx8;
_Static_assert(sizeof(block_q5_Kx8) == 8 * sizeof(block_q5_K), "8 Q5_K blocks, no padding");

ILV_DECL(q5_kx8, block_q5_K)
/* Q5_0, Q4_1 and Q5_1 (MAT_Q5_0X8, MAT_Q4_1X8, MAT_Q5_1X8), ggml's other
 * blocks of 32 (w = d (q - 16), d q + m, d q + m; q 5, 4, 5 bits), per block:
 *   d[j] (and m[j])     row 8g + j's half scale (and half min)
 *   q4_1: qs as Q4_0's (byte 4k + m of row j's qs at qs[32k + 4j + m])
 *   q5_0, q5_1 in a new bit order (q = ggml's 5-bit value 0..31 of row j,
 *   k, m = 0..3):
 *     qs[32k + 4j + m]  q(4k + m) in bits 0-4, bits 0-2 of q(16 + 4k + m)
 *                       in bits 5-7
 *     qh[4j + m]        bits 3-4 of q(16 + 4k + m) in bits 2k, 2k + 1
 * then the rows % 8 last rows as plain rows. So 32 bytes at qs + 32k give 4
 * values of each row whole (one AND) and 4 more with qh (a shift and an AND
 * of each, an OR): 6 vector operations for 8 values of 8 rows, where a
 * nibble and a fifth bit each take 8 (matvec_legacy_avx2.c). Lossless:
 * PRE_row gives the plain row back byte for byte. */
typedef struct block_q5_0x8 {
    uint16_t d[8];
    uint8_t qh[32];
    uint8_t qs[128];
} block_q5_0x8;
typedef struct block_q4_1x8 {
    uint16_t d[8], m[8];
    uint8_t qs[128];
} block_q4_1x8;
typedef struct block_q5_1x8 {
    uint16_t d[8], m[8];
    uint8_t qh[32];
    uint8_t qs[128];
} block_q5_1x8;
_Static_assert(sizeof(block_q5_0x8) == 8 * sizeof(block_q5_0), "8 Q5_0 blocks, no padding");
_Static_assert(sizeof(block_q4_1x8) == 8 * sizeof(block_q4_1), "8 Q4_1 blocks, no padding");
_Static_assert(sizeof(block_q5_1x8) == 8 * sizeof(block_q5_1), "8 Q5_1 blocks, no padding");

ILV_DECL(q5_0x8, block_q5_0)
ILV_DECL(q4_1x8, block_q4_1)
ILV_DECL(q5_1x8, block_q5_1)
/* Q3_K (MAT_Q3_KX8) with its 3-bit values in a new bit order (w = d (sc_s -
 * 32) (q - 4) per 16 values, q = ggml's 2 bits of qs and 1 of hmask, 0..7):
 *   d[j]                   row 8g + j's half scale
 *   scales[32w + 4j + b]   byte 4w + b of its 12 packed scale bytes
 *   q[96a + 32k + 4j + m]  per 32 values a (k = 0..2, m = 0..3; q_i = q(32a
 *                          + 4i + m)): q_2k in bits 0-2, q_2k+1 in bits 3-5,
 *                          bits 6-7: k = 0 q_6 & 3, k = 1 q_7 & 3, k = 2
 *                          q_6 >> 2 in bit 6, q_7 >> 2 in bit 7
 * then the rows % 8 last rows as plain block_q3_K rows. So 96 bytes give 4
 * values of each row 8 times (32 values of each) in 19 vector operations
 * (an AND, or a shift and an AND, for six; two shifts, two ANDs and an OR
 * for the last two) where ggml's order takes 40 (a shift and an AND of each
 * of qs and hmask, an OR); the 8 rows' 16 scales come out of three vectors
 * (matvec_lowk_avx2.c). Lossless: q3_kx8_row gives the plain row back byte
 * for byte. */
typedef struct block_q3_Kx8 {
    uint16_t d[8];
    uint8_t scales[96];
    uint8_t q[768];
} block_q3_Kx8;
_Static_assert(sizeof(block_q3_Kx8) == 8 * sizeof(block_q3_K), "8 Q3_K blocks, no padding");

ILV_DECL(q3_kx8, block_q3_K)
/* Q2_K (MAT_Q2_KX8) the same way (w = d sc_s q - dmin m_s per 16 values, q
 * 0..3 in qs, sc | m << 4 in scales):
 *   d[j], dmin[j]          row 8g + j's half scale and half min scale
 *   scales[32w + 4j + b]   its scales byte 4w + b (w = 0..3)
 *   qs[32c + 4j + m]       byte 4c + m of its qs (c = 0..15)
 * then the rows % 8 last rows as plain block_q2_K rows. */
typedef struct block_q2_Kx8 {
    uint16_t d[8], dmin[8];
    uint8_t scales[128];
    uint8_t qs[512];
} block_q2_Kx8;
_Static_assert(sizeof(block_q2_Kx8) == 8 * sizeof(block_q2_K), "8 Q2_K blocks, no padding");

ILV_DECL(q2_kx8, block_q2_K)
/* IQ4_NL (MAT_IQ4_NLX8): Q4_0's bytes exactly (block_q4_0x8), its nibbles
 * codebook indices. IQ4_XS (MAT_IQ4_XSX8), per super-block of 256 values
 * (8 sub-blocks s of 32, w = d (ls_s - 32) IQ4_VALUES[q], ggml_types.h):
 *   d[j], scales_h[j]      row 8g + j's half scale and high scale bits
 *   scales_l[4j + b]       its scales_l byte b (one word a row)
 *   qs[128s + 32k + 4j + m]  byte 16s + 4k + m of its qs: values 32s + 4k +
 *                          m (low nibble) and 32s + 16 + 4k + m (high)
 * then the rows % 8 last rows as plain block_iq4_xs rows. So sub-block s of
 * the 8 rows is 4 vectors laid out as a Q4_0x8 block's, and lane j of one
 * load of scales_l (of scales_h widened) holds row j's scale bits. */
typedef struct block_iq4_xsx8 {
    uint16_t d[8], scales_h[8];
    uint8_t scales_l[32];
    uint8_t qs[1024];
} block_iq4_xsx8;
_Static_assert(sizeof(block_iq4_xsx8) == 8 * sizeof(block_iq4_xs), "8 IQ4_XS blocks, no padding");
_Static_assert(sizeof(block_iq4_nl) == sizeof(block_q4_0), "IQ4_NL blocks are Q4_0's bytes");

ILV_DECL(iq4_nlx8, block_iq4_nl)
ILV_DECL(iq4_xsx8, block_iq4_xs)
#endif
