/*
 * matvec_iq4_avx2.c — the matvec.h kernels with AVX2 for the IQ4 codebook
 * types (ggml_types.h): iq4_nl (blocks of 32, w = d IQ4_VALUES[q]) and
 * iq4_xs (super-blocks of 256, w = d (ls - 32) IQ4_VALUES[q] per 32),
 * plain and with 8 rows interleaved (iq4_nlx8, iq4_xsx8: repack.h).
 *
 * One ROW per vector lane, as matvec_avx2.c's q4_0: chunk k of a sub-block
 * of 32 values (4 values 4k + m and 4 values 16 + 4k + m of each of 8 rows)
 * as two nibble vectors lo, hi. A byte shuffle of the codebook turns each
 * into its values w (int8, -127..113), one of the codebook's magnitudes into
 * |w|, and maddubs(|w|, sign(x, w)) = w x a pair (x the token's 4 matching
 * activation bytes broadcast to all lanes). A pair's sum fits int16 (2 x 127
 * x 127), two pairs' may not, so each goes to int32 at once, by madd with
 * ones (iq4_nl) or with the rows' sub-block scales ls - 32 as two int16 a
 * lane (iq4_xs): isum of row j, exact, in lane j. Then per lane (dx the
 * activations' scale per 32, q8_act):
 *   iq4_nl   acc += (dx isum) dw                        (mul, FMA)
 *   iq4_xs   a = sum over the 8 sub-blocks of dx isum   (mul, 7 FMA)
 *            acc += a dw per super-block                (FMA)
 * Plain rows (the rows % 8 last rows of an interleaved matrix, a borrowed
 * mapping) are gathered 8 at a time: their qs transposed 4 bytes at a time
 * into the same vectors, their scales into the same lanes. The same
 * integers and float operations per lane in the same order either way, so a
 * (row, token)'s bits depend on neither the layout, nor T, nor its place
 * among the tokens, nor r0/r1.
 * AVX-512 machines (cpu.h's level has AVX512_VNNI) take vpdpbusd on 256-bit
 * vectors instead: the codebook values + 128 as unsigned bytes times the
 * activations, 4 products summed straight into an int32 lane, the sum
 * started from -128 sum(x) (q8_act.c4's groups of 4 added), then times the
 * iq4_xs scale (mullo): per chunk and token 2 operations where AVX2 takes 8,
 * and the same integers, then the same float operations, so the same bits.
 * One token: 4 groups of the interleaved layout a quarter of [r0, r1) apart
 * (four weight streams), else one group x up to 4 tokens; plain rows: 8 rows
 * an eighth apart for one token, else 8 adjacent rows. The kernels
 * themselves are matvec_iq4.h, included once per variant.
 */
#pragma GCC target("avx2,fma,f16c")
#include <stdint.h>
#include <string.h>
#include "kernels/ggml_types.h"
#include "kernels/matvec.h"
#include "kernels/repack.h"
#include "kernels/simd_common.h"
#include "kernels/lanes_avx2.h"

/* 16 bytes at each of p[0..7] + off transposed 4 bytes at a time: q[k]
 * lane j = bytes 4k..4k+3 of p[j] + off (repack.h's interleaved chunk k) */
INL void gather_chunks(__m256i *q, const uint8_t *const *p, size_t off) {
    __m256i y[4];
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        y[j] = _mm256_loadu2_m128i((const __m128i *)(p[j + 4] + off), (const __m128i *)(p[j] + off));
    const __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpackhi_epi32(y[0], y[1]),
                  t2 = _mm256_unpacklo_epi32(y[2], y[3]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
    /* lanes 0-3 of y[] are rows 0-3, the upper 128 bits rows 4-7: lane order 0, 1, 2, 3 | 4, 5, 6, 7 */
    q[0] = _mm256_unpacklo_epi64(t0, t2), q[1] = _mm256_unpackhi_epi64(t0, t2);
    q[2] = _mm256_unpacklo_epi64(t1, t3), q[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* block b's sums s32[t] into acc[t]: acc += (dx isum) dw */
INL void nl_acc(__m256 *acc, const __m256i *s32, __m256 dw, const q8_act *x, int nb, int b, int t0, int NT) {
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        const __m256 dx = _mm256_broadcast_ss(x->d + (size_t)(t0 + t) * nb + b);
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s32[t]), dx), dw, acc[t]);
    }
}

/* the tile functions over tokens 4 at a time (NT a constant in each call) */
#define BY_TOKENS(T, CALL)                                                                                         \
    for (int t0 = 0; t0 < (T); t0 += 4) switch ((T) - t0 < 4 ? (T) - t0 : 4) {                                    \
        case 4: CALL(t0, 4); break;                                                                                \
        case 3: CALL(t0, 3); break;                                                                                \
        case 2: CALL(t0, 2); break;                                                                                \
        default: CALL(t0, 1); break;                                                                               \
        }

/* the AVX2 kernels (mv_iq4_nl_avx2, ...) */
#define IQ4_VNNI 0
#define IQ4_TGT
#define IQ4_SFX _avx2
#include "kernels/matvec_iq4.h"
#undef IQ4_VNNI
#undef IQ4_TGT
#undef IQ4_SFX

/* the AVX-512 machines' (mv_iq4_nl_avx512, ...) */
#define IQ4_VNNI 1
#define IQ4_TGT __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define IQ4_SFX _avx512
#include "kernels/matvec_iq4.h"
#undef IQ4_VNNI
#undef IQ4_TGT
#undef IQ4_SFX
