/* loss.c — see loss.h. Softmax sums in double; the logits stay `real`.
 * The exponentials over the vocabulary are kernels/vexp.h's vectorised ones
 * (rvec.h); cross-entropy takes them once per logit (ce_row). */
#include "train/loss.h"
#include <math.h>
#include "kernels/rvec.h"

/* log-sum-exp of z (V) / tau */
static double lse_of(const real *z, int V, double tau) {
    real mx = rv_max(z, V);
    double sum = 0;
    if (tau == 1.0)
        sum = rv_exp_shift_sum(NULL, z, mx, V);
    else
        for (int v = 0; v < V; v++) sum += exp((z[v] - mx) / tau);
    return mx / tau + log(sum);
}

static double entropy_of(const real *z, int V, double lse) {
    double s = 0;
    for (int v = 0; v < V; v++) {
        double p = exp(z[v] - lse);
        s += p * (z[v] - lse);
    }
    return -s;
}

/* z <- g * (p - onehot(y)) for the softmax p of z: the gradient of g * (-lp) */
static void grad_ce(real *z, int V, int y, double lse, real g) {
    rv_exp_shift_scale(z, z, (real)lse, g, V);
    z[y] -= g;
}

/* ce_row: cross-entropy of one row in three passes over z: the max, then
 * e = e^(z - max) kept in z (with grad) while summing; the gradient is then
 * e w / sum - w onehot(y), one multiply per logit */
static double ce_row(const loss_spec *s, real *z, int V, int y, real w, size_t n, int grad) {
    real zy = z[y], mx = rv_max(z, V);
    double sum = rv_exp_shift_sum(grad ? z : NULL, z, mx, V), lse = mx + log(sum);
    if (s && s->logp) s->logp[n] = (float)(zy - lse);
    if (grad) {
        real k = (real)(w / sum);
#pragma omp simd
        for (int v = 0; v < V; v++) z[v] *= k;
        z[y] -= w;
    }
    return lse - zy;
}

static double grpo_row(const loss_spec *s, real *z, int V, int y, real w, size_t n, double lse, int grad) {
    double lp = z[y] - lse, r = s->old_lp ? exp(lp - s->old_lp[n]) : 1.0, A = s->adv[n];
    double lo = 1 - s->eps_low, hi = 1 + s->eps_high, rc = r < lo ? lo : r > hi ? hi : r;
    int clipped = r * A > rc * A; /* the minimum is the clipped (constant) branch */
    double l = -(clipped ? rc * A : r * A), dlp = clipped ? 0 : -r * A, k3 = 0;
    if (s->ref_lp) {
        double d = s->ref_lp[n] - lp;
        k3 = exp(d) - d - 1;
        l += s->beta * k3;
        dlp += s->beta * (1 - exp(d));
    }
    if (s->kl) s->kl[n] = (float)k3;
    if (s->clipped) s->clipped[n] = (unsigned char)clipped;
    /* dl/dz = dlp (onehot - p) = grad_ce with g = -dlp */
    if (grad) grad_ce(z, V, y, lse, (real)(-dlp * w));
    return l;
}

static double kd_row(const loss_spec *s, real *z, int V, int y, real w, size_t n, double lse, int grad) {
    const int k = s->kd_k;
    const int *u = s->kd_ids + n * k;
    const float *zt = s->kd_logits + n * k;
    const double tau = s->kd_temp, a = s->kd_alpha;
    double mt = zt[0];
    for (int j = 1; j < k; j++) mt = zt[j] > mt ? zt[j] : mt;
    double st = 0;
    for (int j = 0; j < k; j++) st += exp((zt[j] - mt) / tau);
    double lset = mt / tau + log(st), lseq = lse_of(z, V, tau), kl = 0;
    for (int j = 0; j < k; j++) {
        double lpt = zt[j] / tau - lset;
        kl += exp(lpt) * (lpt - (z[u[j]] / tau - lseq));
    }
    double l = (1 - a) * (lse - z[y]) + a * tau * tau * kl;
    if (grad) {
        for (int v = 0; v < V; v++) {
            double p = exp(z[v] - lse), q = exp(z[v] / tau - lseq);
            z[v] = (real)(w * ((1 - a) * p + a * tau * q));
        }
        z[y] -= (real)(w * (1 - a));
        for (int j = 0; j < k; j++) z[u[j]] -= (real)(w * a * tau * exp(zt[j] / tau - lset));
    }
    return l;
}

double loss_row(const loss_spec *s, real *z, int V, int y, real w, size_t n, int grad) {
    if (!s || (s->kind == LOSS_CE && !s->entropy)) return ce_row(s, z, V, y, w, n, grad);
    double lse = lse_of(z, V, 1.0);
    if (s && s->logp) s->logp[n] = (float)(z[y] - lse);
    if (s && s->entropy) s->entropy[n] = (float)entropy_of(z, V, lse);
    if (!s || s->kind == LOSS_CE) {
        double l = lse - z[y];
        if (grad) grad_ce(z, V, y, lse, w);
        return l;
    }
    if (s->kind == LOSS_GRPO) return grpo_row(s, z, V, y, w, n, lse, grad);
    return kd_row(s, z, V, y, w, n, lse, grad);
}
