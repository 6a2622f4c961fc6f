/*
 * quant.h — the weight storage types the matvec kernels read, and
 * conversions from float32.
 *
 *   bf16   the top 16 bits of a float32, rounded to nearest even.
 *   Q8_0   llama.cpp / GGUF's block (ggml-common.h): 32 int8 values q and one
 *          IEEE half scale d; value i = d * q[i]. d = amax / 127 over the
 *          block, q = round(x / d), so |q| <= 127.
 *
 * q8_act is the matvec kernels' form of the activations a quantised matrix
 * is multiplied with (llama.cpp's vec_dot_type for Q8_0 is Q8_0 too): each
 * token quantised per block of 32 with a float32 scale, plus derived arrays
 * some kernels read (the AVX-512 ones: d4, c4; the AVX2 ones: xp8, c16, ds). All
 * arrays live in one buffer of q8_act_bytes(T, cols), cols a multiple of 32.
 */
#ifndef DC_QUANT_H
#define DC_QUANT_H
#include <stddef.h>
#include <stdint.h>

#define QK8_0 32

typedef struct block_q8_0 {
    uint16_t d;          /* IEEE half scale */
    int8_t qs[QK8_0];    /* values / d */
} block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must be 34 bytes, as in GGUF");

/* q8_quantize_row: n floats (n % 32 == 0) into n/32 blocks. */
void q8_quantize_row(block_q8_0 *dst, const float *src, int n);
/* q8_dequantize_row: n/32 blocks into n floats. */
void q8_dequantize_row(float *dst, const block_q8_0 *src, int n);
/* bf16_from_f32_row / bf16_to_f32_row: n values, round to nearest even. */
void bf16_from_f32_row(uint16_t *dst, const float *src, size_t n);
void bf16_to_f32_row(float *dst, const uint16_t *src, size_t n);

typedef struct q8_act {
    int T, cols;
    int8_t *qs;   /* (T, cols) quantised values */
    float *d;     /* (T, cols/32) block scales */
    float *d4;    /* (T, cols/4) the scale of the block holding each group of 4 values */
    int32_t *c4;  /* (T, cols/4) -128 * the sum of each group of 4 quantised values */
    int16_t *xp8;  /* (T, cols/2) 8 times the sum of each pair of quantised values */
    int32_t *c16;  /* (T, cols/16) per 16 values, as two int16: 32 times the sum of
                    * values 4k, 4k+1 (low half) and of 4k+2, 4k+3 (high), k = 0..3
                    * (q6_k's lanes: the -32 of w = q - 32, matvec_avx2.c) */
    float *ds;    /* (T, cols/32) d times the sum of each block's quantised values */
} q8_act;

/* q8_act_bytes: the buffer q8_act_quantize needs for T tokens of cols. */
size_t q8_act_bytes(int T, int cols);
/* q8_act_quantize: x (T, cols) into a, whose arrays point into buf (64-byte
 * aligned, q8_act_bytes long, borrowed by a). The same as q8_act_point then
 * q8_act_fill(a, x, 0, T); each token is quantised on its own, so filling
 * ranges of tokens on several threads gives the same bytes. */
void q8_act_quantize(q8_act *a, void *buf, const float *x, int T, int cols);
void q8_act_point(q8_act *a, void *buf, int T, int cols);
/* q8_act_fill: tokens [t0, t1) of x (T, cols): the rows of x for them are x + t*cols. */
void q8_act_fill(q8_act *a, const float *x, int t0, int t1);
/* q8_act_view: tokens [t0, t0 + n) of a, as a q8_act of n tokens borrowing a's arrays. */
q8_act q8_act_view(const q8_act *a, int t0, int n);
#endif
