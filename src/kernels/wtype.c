/* wtype.c — see wtype.h: the table and the lookups built on it. */
#include "kernels/wtype.h"
#include <string.h>
#include <strings.h>
#include "kernels/fp8_block.h"
#include "kernels/ggml_types.h"
#include "kernels/quant.h"
#include "kernels/repack.h"

/* ---------------------------------------------------------------- row conversions */

static void f32_to(const void *s, float *d, int64_t n) { memcpy(d, s, (size_t)n * sizeof(float)); }
static void f32_from(const float *s, void *d, int64_t n) { memcpy(d, s, (size_t)n * sizeof(float)); }
static void bf16_to(const void *s, float *d, int64_t n) { bf16_to_f32_row(d, s, (size_t)n); }
static void bf16_from(const float *s, void *d, int64_t n) { bf16_from_f32_row(d, s, (size_t)n); }
static void q8_to(const void *s, float *d, int64_t n) { q8_dequantize_row(d, s, (int)n); }
static void q8_from(const float *s, void *d, int64_t n) { q8_quantize_row(d, s, (int)n); }
static void fp8_mat(const float *s, int rows, int cols, void *d) { fp8_quantize_mat(s, rows, cols, d); }

/* the ggml block types through ggml_types.c's dequantisers / quantisers */
#define GG_ROWS(nm, GG)                                                                            \
    static void nm##_to(const void *s, float *d, int64_t n) { gg_dequantize(GG, s, d, n); }       \
    static void nm##_from(const float *s, void *d, int64_t n) { gg_quantize(GG, s, d, n); }
GG_ROWS(q4_0, GG_Q4_0)
GG_ROWS(q4_k, GG_Q4_K)
GG_ROWS(q6_k, GG_Q6_K)
GG_ROWS(f16, GG_F16)
GG_ROWS(q5_0, GG_Q5_0)
GG_ROWS(q5_k, GG_Q5_K)
GG_ROWS(q4_1, GG_Q4_1)
GG_ROWS(q5_1, GG_Q5_1)
GG_ROWS(q3_k, GG_Q3_K)
GG_ROWS(q2_k, GG_Q2_K)
GG_ROWS(iq4_nl, GG_IQ4_NL)
GG_ROWS(iq4_xs, GG_IQ4_XS)
#undef GG_ROWS

/* ---------------------------------------------------------------- the table */

#define MV3(t) {mv_##t##_ref, mv_##t##_avx2, mv_##t##_avx512}
#define MV2(t) {mv_##t##_ref, mv_##t##_avx2, mv_##t##_avx2} /* no AVX-512 variant: AVX2's */
/* gemm.h's packers (AVX-512 runs AVX2's, with gemm_avx512.c's wide kernel).
 * f32 on AVX-512 took OpenBLAS's sgemm until measured: on an Intel Xeon with
 * AMX (twelfth session), mini F32 prefill, paired rounds, gemm.h against
 * sgemm, 1 thread T = 64 208-252 / 157-211 tokens/s, T = 512 370-477 /
 * 322-437; 2 threads 472-492 / 398-406 and 855-861 / 774-778 */
#define PK(t) {gemm_pack_##t##_ref, gemm_pack_##t##_avx2, gemm_pack_##t##_avx2}
#define PK_F32 PK(f32)

/* f32 runs AVX2's matvec kernel on AVX-512 machines too (mv_f32_avx512: its
 * software prefetch 1 KB ahead, where AVX2 machines take 512 B): on a Zen 5 the
 * AVX-512 one (4 rows a quarter apart, 16 lanes) decoded mini F32 no faster
 * with one sequence (1 thread 38.3-40.1 tokens/s against 37.4-41.7, 2
 * threads 74.6-76.9 against 77.6-78.2) and slower with two or three (`deepc
 * bench --parallel`, 2 threads, four paired rounds: B = 2 52-76 against
 * 65-102 tokens/s, B = 3 61-83 against 77-138), though faster in L2.
 * gemm_t: f16 16 (its matvec kernel, rows_tile, beats gemm.h's pack + GEMM
 * up to there on an expert's 512 x 1024: L2, Zen 3, 1 thread T = 16 77 against
 * 72 GFLOP/s, 2 threads 142 / 118; bf16's AVX-512 matvec is unmeasured, so
 * bf16 stays at 8). With x on a cache line (model.c's scratch_alloc) the
 * AVX-512 matvec kernels of the 16-bit and 8-bit floats run 126-145 GFLOP/s at
 * T = 4..32 and gemm.h's wide kernel passes them from T = 24 (`bench_matvec
 * cross`, Zen 5, 1 thread, 512 x 1024: T = 8 / 12 / 16 / 24 bf16 137 / 139 /
 * 141 / 145 against 81 / 116 / 128 / 158; f16 132 / 127 / 130 / 142 against
 * 74 / 120 / 122 / 155; fp8 126 / 129 / 128 / 134 against 71 / 110 / 131 /
 * 148): fp8 takes 16 there. bf16 keeps float32's 8 so that a bf16 matrix
 * gives the bits of its float32 load at every T (test_model half_kept: a
 * bf16 checkpoint's leftover matrices after --dtype q8). */
#define GT(t) {t, t, t}
#define GT_AVX512_16 {8, 8, 16}
static const wtype TYPES[MAT_NTYPES] = {
    /*          name    gg        blck    size  act         gemm_t to_f32   from_f32   mat   row_f32   kernels  packers */
    [MAT_F32] = {"f32", GG_F32, 1, 4, WT_ACT_F32, GT(8), f32_to, f32_from, NULL, NULL, MV3(f32), PK_F32},
    [MAT_BF16] = {"bf16", GG_BF16, 1, 2, WT_ACT_F32, GT(8), bf16_to, bf16_from, NULL, NULL, MV3(bf16), PK(bf16)},
    [MAT_Q8_0] = {"q8", GG_Q8_0, QK8_0, 34, WT_ACT_Q8, GT(0), q8_to, q8_from, NULL, NULL, MV3(q8)},
    [MAT_Q4_0] = {"q4_0", GG_Q4_0, QK4_0, 18, WT_ACT_Q8, GT(0), q4_0_to, q4_0_from, NULL, NULL, MV2(q4_0)},
    [MAT_Q4_K] = {"q4_k", GG_Q4_K, QK_K, 144, WT_ACT_Q8, GT(0), q4_k_to, q4_k_from, NULL, NULL, MV2(q4_k)},
    [MAT_Q6_K] = {"q6_k", GG_Q6_K, QK_K, 210, WT_ACT_Q8, GT(0), q6_k_to, q6_k_from, NULL, NULL, MV2(q6_k)},
    [MAT_F16] = {"f16", GG_F16, 1, 2, WT_ACT_F32, GT(16), f16_to, f16_from, NULL, NULL, MV3(f16), PK(f16)},
    [MAT_Q5_0] = {"q5_0", GG_Q5_0, QK5_0, 22, WT_ACT_Q8, GT(0), q5_0_to, q5_0_from, NULL, NULL, MV2(q5_0)},
    [MAT_Q5_K] = {"q5_k", GG_Q5_K, QK_K, 176, WT_ACT_Q8, GT(0), q5_k_to, q5_k_from, NULL, NULL, MV2(q5_k)},
    [MAT_FP8] = {"fp8", -1, QK_FP8, sizeof(block_fp8), WT_ACT_F32, GT_AVX512_16, fp8_to_f32_row, fp8_from_f32_row, fp8_mat,
                 NULL, MV3(fp8), PK(fp8)},
    [MAT_Q4_0X8] = {"q4_0x8", -1, QK4_0, 18, WT_ACT_Q8, GT(0), NULL, NULL, q4_0x8_from_f32, q4_0x8_row_f32, MV3(q4_0x8)},
    [MAT_Q4_KX8] = {"q4_kx8", -1, QK_K, 144, WT_ACT_Q8, GT(0), NULL, NULL, q4_kx8_from_f32, q4_kx8_row_f32, MV3(q4_kx8)},
    [MAT_Q6_KX8] = {"q6_kx8", -1, QK_K, 210, WT_ACT_Q8, GT(0), NULL, NULL, q6_kx8_from_f32, q6_kx8_row_f32, MV3(q6_kx8)},
    [MAT_Q5_KX8] = {"q5_kx8", -1, QK_K, 176, WT_ACT_Q8, GT(0), NULL, NULL, q5_kx8_from_f32, q5_kx8_row_f32, MV3(q5_kx8)},
    [MAT_Q4_1] = {"q4_1", GG_Q4_1, QK4_1, 20, WT_ACT_Q8, GT(0), q4_1_to, q4_1_from, NULL, NULL, MV2(q4_1)},
    [MAT_Q5_1] = {"q5_1", GG_Q5_1, QK5_1, 24, WT_ACT_Q8, GT(0), q5_1_to, q5_1_from, NULL, NULL, MV2(q5_1)},
    [MAT_Q5_0X8] = {"q5_0x8", -1, QK5_0, 22, WT_ACT_Q8, GT(0), NULL, NULL, q5_0x8_from_f32, q5_0x8_row_f32, MV2(q5_0x8)},
    [MAT_Q4_1X8] = {"q4_1x8", -1, QK4_1, 20, WT_ACT_Q8, GT(0), NULL, NULL, q4_1x8_from_f32, q4_1x8_row_f32, MV2(q4_1x8)},
    [MAT_Q5_1X8] = {"q5_1x8", -1, QK5_1, 24, WT_ACT_Q8, GT(0), NULL, NULL, q5_1x8_from_f32, q5_1x8_row_f32, MV2(q5_1x8)},
    [MAT_Q3_K] = {"q3_k", GG_Q3_K, QK_K, 110, WT_ACT_Q8, GT(0), q3_k_to, q3_k_from, NULL, NULL, MV2(q3_k)},
    [MAT_Q3_KX8] = {"q3_kx8", -1, QK_K, 110, WT_ACT_Q8, GT(0), NULL, NULL, q3_kx8_from_f32, q3_kx8_row_f32, MV2(q3_kx8)},
    [MAT_Q2_K] = {"q2_k", GG_Q2_K, QK_K, 84, WT_ACT_Q8, GT(0), q2_k_to, q2_k_from, NULL, NULL, MV2(q2_k)},
    [MAT_Q2_KX8] = {"q2_kx8", -1, QK_K, 84, WT_ACT_Q8, GT(0), NULL, NULL, q2_kx8_from_f32, q2_kx8_row_f32, MV2(q2_kx8)},
    [MAT_IQ4_NL] = {"iq4_nl", GG_IQ4_NL, QK4_NL, 18, WT_ACT_Q8, GT(0), iq4_nl_to, iq4_nl_from, NULL, NULL, MV3(iq4_nl)},
    [MAT_IQ4_XS] = {"iq4_xs", GG_IQ4_XS, QK_K, 136, WT_ACT_Q8, GT(0), iq4_xs_to, iq4_xs_from, NULL, NULL, MV3(iq4_xs)},
    [MAT_IQ4_NLX8] = {"iq4_nlx8", -1, QK4_NL, 18, WT_ACT_Q8, GT(0), NULL, NULL, iq4_nlx8_from_f32, iq4_nlx8_row_f32,
                      MV3(iq4_nlx8)},
    [MAT_IQ4_XSX8] = {"iq4_xsx8", -1, QK_K, 136, WT_ACT_Q8, GT(0), NULL, NULL, iq4_xsx8_from_f32, iq4_xsx8_row_f32,
                      MV3(iq4_xsx8)},
};

/* the plain types with an interleaved layout (repack.h) */
static const struct {
    int plain, ilv;
    int (*repack)(void *data, int rows, int cols);
} ILV[] = {
    {MAT_Q4_0, MAT_Q4_0X8, q4_0x8_repack}, {MAT_Q4_K, MAT_Q4_KX8, q4_kx8_repack},
    {MAT_Q6_K, MAT_Q6_KX8, q6_kx8_repack}, {MAT_Q5_K, MAT_Q5_KX8, q5_kx8_repack},
    {MAT_Q5_0, MAT_Q5_0X8, q5_0x8_repack}, {MAT_Q4_1, MAT_Q4_1X8, q4_1x8_repack},
    {MAT_Q5_1, MAT_Q5_1X8, q5_1x8_repack}, {MAT_Q3_K, MAT_Q3_KX8, q3_kx8_repack},
    {MAT_Q2_K, MAT_Q2_KX8, q2_kx8_repack}, {MAT_IQ4_NL, MAT_IQ4_NLX8, iq4_nlx8_repack},
    {MAT_IQ4_XS, MAT_IQ4_XSX8, iq4_xsx8_repack},
};

int mat_type_ilv(int t) {
    for (size_t i = 0; i < sizeof ILV / sizeof ILV[0]; i++)
        if (ILV[i].plain == t) return ILV[i].ilv;
    return t;
}

int mat_repack(void *data, int t, int rows, int cols) {
    for (size_t i = 0; i < sizeof ILV / sizeof ILV[0]; i++)
        if (ILV[i].plain == t) return ILV[i].repack(data, rows, cols) ? ILV[i].ilv : t;
    return t;
}

const wtype *wtype_get(int t) { return t >= 0 && t < MAT_NTYPES ? &TYPES[t] : NULL; }

const char *mat_type_name(int t) { return wtype_get(t) ? TYPES[t].name : "f32"; }

int mat_type_parse(const char *s) {
    if (!strcasecmp(s, "q8_0")) return MAT_Q8_0;
    for (int t = 0; t < MAT_NTYPES; t++)
        if (!strcasecmp(s, TYPES[t].name)) return t;
    return -1;
}

int mat_type_gg(int t) { return wtype_get(t) ? TYPES[t].gg : GG_F32; }

int mat_type_from_gg(int gg) {
    for (int t = 0; t < MAT_NTYPES; t++)
        if (TYPES[t].gg == gg && gg >= 0) return t;
    return -1;
}

size_t mat_type_bytes(int t, int rows, int cols) {
    const wtype *w = wtype_get(t);
    if (!w || rows < 0 || cols < 0 || cols % w->blck) return 0;
    return (size_t)rows * (size_t)(cols / w->blck) * (size_t)w->size;
}

void dtype_row_to_f32(int t, const void *src, float *dst, int64_t n) {
    const wtype *w = wtype_get(t);
    if (w && w->to_f32) w->to_f32(src, dst, n);
}

int dtype_row_from_f32(int t, const float *src, void *dst, int64_t n) {
    const wtype *w = wtype_get(t);
    if (!w || !w->from_f32) return 0;
    w->from_f32(src, dst, n);
    return 1;
}
