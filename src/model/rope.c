/* rope.c — see rope.h. Angles are computed in double so long positions keep
 * their precision. */
#include "model/rope.h"
#include <math.h>
#include <stdlib.h>
#include "base/err.h"
#include "model/config.h"

int rope_init(rope *r, const dc_config *c, dc_err *err) {
    int d = c->qk_rope_head_dim;
    r->d = d;
    r->mscale = 1.0;
    r->inv_freq = malloc(sizeof(double) * (d / 2));
    if (!r->inv_freq) return err_set(err, DC_ENOMEM, "rope: out of memory");
    double base = c->rope_theta;
    for (int i = 0; i < d / 2; i++) r->inv_freq[i] = 1.0 / pow(base, (2.0 * i) / d);
    if (!c->has_yarn) return DC_OK;
    double L0 = c->rope_original_max_position_embeddings, f = c->rope_factor;
#define CORR(n) (d * log(L0 / ((n) * 2.0 * M_PI)) / (2.0 * log(base)))
    double low = floor(CORR(c->rope_beta_fast)), high = ceil(CORR(c->rope_beta_slow));
#undef CORR
    if (low < 0) low = 0;
    if (high > d - 1) high = d - 1;
    if (low == high) high += 0.001;
    for (int i = 0; i < d / 2; i++) {
        double ramp = (i - low) / (high - low);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        r->inv_freq[i] = r->inv_freq[i] / f * ramp + r->inv_freq[i] * (1 - ramp);
    }
    r->mscale = (double)config_yarn_get_mscale(c->rope_factor, c->rope_mscale) /
                (double)config_yarn_get_mscale(c->rope_factor, c->rope_mscale_all_dim);
    return DC_OK;
}

void rope_free(rope *r) {
    if (r) {
        free(r->inv_freq);
        r->inv_freq = NULL;
    }
}

void rope_apply(const rope *r, float *x, int n, int stride, int pos) {
    for (int i = 0; i < r->d / 2; i++) {
        double a = pos * r->inv_freq[i];
        float c = (float)(cos(a) * r->mscale), s = (float)(sin(a) * r->mscale);
        for (int k = 0; k < n; k++) {
            float *p = x + (size_t)k * stride + 2 * i;
            float x0 = p[0], x1 = p[1];
            p[0] = x0 * c - x1 * s;
            p[1] = x0 * s + x1 * c;
        }
    }
}

void rope_train_table(const rope *r, real *cs, int T) {
    for (int p = 0; p < T; p++)
        for (int i = 0; i < r->d / 2; i++) {
            double a = p * r->inv_freq[i];
            cs[(size_t)p * r->d + 2 * i] = (real)(cos(a) * r->mscale);
            cs[(size_t)p * r->d + 2 * i + 1] = (real)(sin(a) * r->mscale);
        }
}

void rope_train_cs(const real *cs, int d, real *x, int n, int stride, int inverse) {
    for (int i = 0; i < d / 2; i++) {
        real c = cs[2 * i], s = inverse ? -cs[2 * i + 1] : cs[2 * i + 1];
        for (int k = 0; k < n; k++) {
            real *p = x + (size_t)k * stride + 2 * i;
            real x0 = p[0], x1 = p[1];
            p[0] = x0 * c - x1 * s;
            p[1] = x0 * s + x1 * c;
        }
    }
}
