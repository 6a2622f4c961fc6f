/*
 * rope.h — decoupled rotary position embedding with YaRN scaling.
 *
 * DeepSeek applies RoPE only to the qk_rope_head_dim part of queries and the
 * one shared rope key (V2 paper §2.1.3). Pairs of adjacent dims (2i, 2i+1)
 * rotate by pos * inv_freq[i], inv_freq[i] = theta^(-2i/d), as the official
 * inference code does with complex numbers.
 *
 * YaRN (Peng et al. 2023), applied whenever rope_scaling is present:
 *   corr(n) = d * ln(L0 / (2 pi n)) / (2 ln theta)
 *   low = max(floor(corr(beta_fast)), 0), high = min(ceil(corr(beta_slow)), d-1)
 *   ramp_i = clamp((i - low) / (high - low), 0, 1)
 *   inv_freq_i = inv_freq_i / factor * ramp_i + inv_freq_i * (1 - ramp_i)
 * cos and sin are scaled by mscale(factor, mscale) / mscale(factor, mscale_all_dim),
 * and the softmax scale by mscale(factor, mscale_all_dim)^2 (config.c).
 */
#ifndef DC_ROPE_H
#define DC_ROPE_H
#include "deepc.h"
#include "kernels/linear.h"

typedef struct rope {
    int d;              /* qk_rope_head_dim */
    double *inv_freq;   /* (d/2), owned */
    double mscale;      /* multiplies cos and sin */
} rope;

int rope_init(rope *r, const dc_config *cfg, dc_err *err);
void rope_free(rope *r);
/* rope_apply: rotate n vectors of length d, `stride` floats apart, at position pos. */
void rope_apply(const rope *r, float *x, int n, int stride, int pos);
/* rope_train_table: cs (T, d), for position p and pair i the cos and sin of
 * rope_apply's rotation, on `real`: cs[p d + 2i] = cos, cs[p d + 2i + 1] =
 * sin (the trainer computes them once per step, not per token);
 * rope_train_cs: rotate as rope_apply does with one position's row of the
 * table; with inverse set it applies the transpose (rotation by -angle, same
 * scale), which is the backward of the forward. */
void rope_train_table(const rope *r, real *cs, int T);
void rope_train_cs(const real *cs, int d, real *x, int n, int stride, int inverse);
#endif
