/*
 * wtype.h — the weight types the model's matrices are stored in, as one
 * table (ggml's type traits): a row per type with its name, ggml id, block
 * size and bytes, its conversions from and to float32, its matvec kernel
 * per CPU level and, for the float types, its GEMM panel packer (gemm.h)
 * per CPU level. Code that depends on the type looks it up here; nothing
 * else switches over MAT_*.
 *
 *   type     block  bytes  layout of a row of cols values       activations
 *   f32          1      4  float32                               float32
 *   bf16         1      2  bfloat16                              float32
 *   q8           32     34  block_q8_0 (quant.h)                  q8_act
 *   q4_0         32     18  block_q4_0 (ggml_types.h)             q8_act
 *   q4_k        256    144  block_q4_K                            q8_act
 *   q6_k        256    210  block_q6_K                            q8_act
 *   f16          1      2  IEEE half                             float32
 *   q5_0         32     22  block_q5_0                            q8_act
 *   q5_k        256    176  block_q5_K                            q8_act
 *   fp8         128    132  block_fp8 (fp8_block.h): e4m3 + f32 scale   float32
 *   q4_0x8       32     18  Q4_0, 8 rows interleaved (repack.h)    q8_act
 *   q4_kx8      256    144  Q4_K, 8 rows interleaved (repack.h)    q8_act
 *   q6_kx8      256    210  Q6_K, 8 rows interleaved, its own bit order (repack.h)  q8_act
 *   q5_kx8      256    176  Q5_K, 8 rows interleaved (repack.h)    q8_act
 *   q4_1         32     20  block_q4_1                            q8_act
 *   q5_1         32     24  block_q5_1                            q8_act
 *   q5_0x8       32     22  Q5_0, 8 rows interleaved, its own bit order (repack.h)  q8_act
 *   q4_1x8       32     20  Q4_1, 8 rows interleaved (repack.h)    q8_act
 *   q5_1x8       32     24  Q5_1, 8 rows interleaved, its own bit order (repack.h)  q8_act
 *   q3_k        256    110  block_q3_K                            q8_act
 *   q3_kx8      256    110  Q3_K, 8 rows interleaved (repack.h)    q8_act
 *   q2_k        256     84  block_q2_K                            q8_act
 *   q2_kx8      256     84  Q2_K, 8 rows interleaved (repack.h)    q8_act
 *   iq4_nl       32     18  block_iq4_nl (codebook nibbles)       q8_act
 *   iq4_xs      256    136  block_iq4_xs                          q8_act
 *   iq4_nlx8     32     18  IQ4_NL, 8 rows interleaved (repack.h)  q8_act
 *   iq4_xsx8    256    136  IQ4_XS, 8 rows interleaved (repack.h)  q8_act
 * A (rows, cols) matrix is rows rows of cols / block blocks (cols must be a
 * whole number of blocks). The mv kernels: matvec.h's contract; mv[ISA_REF]
 * is the plain C oracle of the others. For the types added by issues 13/15
 * (f16, q5_0, q5_k, fp8, q4_0x8, q4_kx8, q6_kx8, q5_kx8) and for q4_0 / q4_k / q6_k / q5_k the AVX-512
 * entry is the AVX2 kernel (no AVX-512 variant yet; for q4_0 / q4_k / q6_k / q5_k on purpose: their plain
 * and interleaved kernels give the same bits, matvec_avx2.c). q4_0x8 / q4_kx8 / q6_kx8 / q5_kx8 are made at
 * load from a GGUF's Q4_0 / Q4_K / Q6_K / Q5_K matrices (repack.h): its rows are not contiguous, so row_f32
 * reads one (to_f32 / from_f32 are NULL) and from_f32_mat writes a matrix;
 * GGUF has no such type (gg -1). The packers: f32, bf16, f16, fp8
 * (quantised types keep their integer kernels at any T); AVX-512 runs the
 * AVX2 packers (f32 included, measured faster than OpenBLAS's sgemm: wtype.c).
 */
#ifndef DC_WTYPE_H
#define DC_WTYPE_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/gemm.h"
#include "kernels/matvec.h"

enum {
    MAT_F32 = 0, MAT_BF16 = 1, MAT_Q8_0 = 2, MAT_Q4_0 = 3, MAT_Q4_K = 4, MAT_Q6_K = 5,
    MAT_F16 = 6, MAT_Q5_0 = 7, MAT_Q5_K = 8, MAT_FP8 = 9, MAT_Q4_0X8 = 10, MAT_Q4_KX8 = 11,
    MAT_Q6_KX8 = 12, MAT_Q5_KX8 = 13, MAT_Q4_1 = 14, MAT_Q5_1 = 15, MAT_Q5_0X8 = 16, MAT_Q4_1X8 = 17,
    MAT_Q5_1X8 = 18, MAT_Q3_K = 19, MAT_Q3_KX8 = 20, MAT_Q2_K = 21, MAT_Q2_KX8 = 22, MAT_IQ4_NL = 23,
    MAT_IQ4_XS = 24, MAT_IQ4_NLX8 = 25, MAT_IQ4_XSX8 = 26,
    MAT_NTYPES = 27
};

enum { WT_ACT_F32 = 0, WT_ACT_Q8 = 1 };

typedef struct wtype {
    const char *name;   /* as --dtype spells it */
    int gg;             /* ggml type id (ggml_types.h GG_*), -1 when GGUF has none */
    int blck;           /* values per block */
    int size;           /* bytes per block */
    int act;            /* WT_ACT_*: what the kernels multiply the weights with */
    int gemm_t[ISA_N];  /* per ISA: matmul above this many tokens: pack (gemm.h), else OpenBLAS sgemm (f32); 0 never */
    /* n values (whole blocks) of src into float32 dst, and back (the
     * quantisers of this repo; NULL where deepc does not write the type) */
    void (*to_f32)(const void *src, float *dst, int64_t n);
    void (*from_f32)(const float *src, void *dst, int64_t n);
    /* a whole (rows, cols) matrix, when the type's scales span rows (fp8's
     * 128x128 blocks); NULL: row by row with from_f32 */
    void (*from_f32_mat)(const float *src, int rows, int cols, void *dst);
    /* row r of a whole (rows, cols) matrix W as float32, when rows are not
     * contiguous (q4_0x8); NULL: row r is at r * its bytes, through to_f32 */
    void (*row_f32)(const void *W, int rows, int r, int cols, float *dst);
    mv_fn mv[ISA_N];    /* ref, avx2, avx512 */
    /* gemm.h's panel packer per ISA for matmul above gemm_t; NULL: sgemm (f32 only) */
    gemm_pack_fn pack[ISA_N];
} wtype;

/* wtype_get: the row of type t (MAT_*), or NULL when t is not one. */
const wtype *wtype_get(int t);

/* mat_type_name: the name ("f32", "bf16", "q8", "q4_0", ...; "f32" for an
 * unknown id). mat_type_parse: the reverse (any case; "q8_0" too), -1 if unknown. */
const char *mat_type_name(int type);
int mat_type_parse(const char *s);
/* mat_type_gg: the ggml id of a MAT_* type (-1 for fp8). mat_type_from_gg:
 * the reverse, -1 for a ggml type no MAT_* holds. */
int mat_type_gg(int type);
int mat_type_from_gg(int gg);
/* mat_type_bytes: storage of a (rows, cols) matrix of type; 0 if cols does not fit the type. */
size_t mat_type_bytes(int type, int rows, int cols);

/* mat_type_ilv: the 8-row interleaved layout of type t (repack.h:
 * q4_0 -> q4_0x8, q4_k, q6_k, q5_k, q5_0, q4_1, q5_1, q3_k, q2_k, iq4_nl, iq4_xs the same way), or t
 * itself when it has none. mat_repack: a (rows, cols) matrix of type t at
 * data interleaved in place; the type it now has (t itself when t has no
 * interleaved layout or the 8-row scratch could not be allocated). */
int mat_type_ilv(int t);
int mat_repack(void *data, int t, int rows, int cols);

/* dtype_row_to_f32 / dtype_row_from_f32: n values (whole blocks) of type
 * (MAT_*) between its storage and float32 (from: 0 when the type has no
 * writer). The row functions the embedding and loaders share. */
void dtype_row_to_f32(int type, const void *src, float *dst, int64_t n);
int dtype_row_from_f32(int type, const float *src, void *dst, int64_t n);
#endif
