/*
 * loss.h — the per-position losses the trainer's head applies, each with its
 * gradient with respect to that position's logits. The trainer sums
 * w_n * l_n over positions n; the weights w carry every normalisation (a mean
 * over tokens, over sequences, over micro-batches), so a loss here is per
 * token and knows nothing of batches.
 *
 * One position: logits z (V), target y, p = softmax(z), lp = log p_y.
 *
 *   CE    l = -lp                                    dl/dz = p - onehot(y)
 *
 *   GRPO  (DeepSeekMath §4.1.2, R1 §2.2.1; DAPO's decoupled clip)
 *         r  = exp(lp - lp_old), A the advantage of the position's sequence
 *         l  = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta k3
 *         k3 = exp(lp_ref - lp) - (lp_ref - lp) - 1  (Schulman's estimator of KL(pi || pi_ref))
 *         dl/dlp = -r A (0 where the clipped branch is the minimum) + beta (1 - exp(lp_ref - lp))
 *         dl/dz  = dl/dlp (onehot(y) - p)
 *         lp_old absent (NULL): pi_old is the current policy without
 *         gradient, r = 1 (one update per rollout batch, mu = 1).
 *
 *   KD    (Hinton et al. 2015) the teacher's top-k logits zt_j at ids u_j,
 *         temperature tau: pt = softmax_j(zt / tau), q = softmax(z / tau)
 *         l = (1 - alpha) CE + alpha tau^2 sum_j pt_j (log pt_j - log q_{u_j})
 *         dl/dz = (1 - alpha)(p - onehot(y)) + alpha tau (q - sum_j pt_j onehot(u_j))
 *         (the KL over the teacher's top-k support, renormalised there).
 *
 * Per-position inputs and outputs are indexed like the trainer's positions:
 * n = b * T + i for the batch's B x T (i predicts tok[b][i+1]).
 */
#ifndef DC_LOSS_H
#define DC_LOSS_H
#include <stddef.h>
#include "kernels/linear.h"

enum { LOSS_CE = 0, LOSS_GRPO = 1, LOSS_KD = 2 };

typedef struct loss_spec {
    int kind;                   /* LOSS_* */
    /* GRPO, each (N) */
    const float *adv;           /* advantage A */
    const float *old_lp;        /* log pi_old(y), or NULL: the current policy (r = 1) */
    const float *ref_lp;        /* log pi_ref(y), or NULL when beta == 0 */
    float eps_low, eps_high, beta;
    /* KD */
    int kd_k;                   /* teacher entries per position */
    const int *kd_ids;          /* (N, kd_k) vocabulary ids */
    const float *kd_logits;     /* (N, kd_k) the teacher's logits there */
    float kd_temp, kd_alpha;
    /* outputs, each (N) or NULL, written for positions with weight != 0 */
    float *logp;                /* log pi(y) */
    float *entropy;             /* -sum p log p */
    float *kl;                  /* GRPO: k3 (also without beta, when ref_lp is given) */
    unsigned char *clipped;     /* GRPO: 1 where the clipped branch zeroes the gradient */
} loss_spec;

/* loss_row: the loss of position n (unweighted) from its logits z (V); with
 * grad, z is overwritten by w * dl/dz. s NULL means CE. */
double loss_row(const loss_spec *s, real *z, int V, int y, real w, size_t n, int grad);
#endif
