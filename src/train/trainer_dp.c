/*
 * trainer_dp.c — see trainer_dp.h and dist/dp.h. One process runs the same
 * code with dp_size 1: its micro-batch gradients are summed in the same
 * order, so N replicas reproduce it bit for bit:
 *   - micro-batch gradients: each from zero, added to the step's gradient
 *     in micro-batch order (dp_round);
 *   - figures (weighted loss, weight, MTP, aux of each micro-batch): one
 *     replica holds each micro-batch's, the others 0; summed over replicas
 *     (x + 0 = x exactly), then added in micro-batch order;
 *   - expert loads: integers, summed;
 *   - the gradient norm: the chunk sums of squares of grad_sumsq, each
 *     computed by the shard holding the chunk, added in chunk order.
 */
#include "train/trainer_dp.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
#include "dist/dp.h"

int trainer_dp_layout(trainer *t, int zero, dc_err *err) {
    const int P = t->dist.dp_size, me = t->dist.dp_rank;
    t->cut = calloc((size_t)P + 1, sizeof *t->cut);
    if (!t->cut) return err_set(err, DC_ENOMEM, "train: out of memory");
    dp_cuts(t->n, grad_chunk(t->n), P, t->cut);
    t->zero = zero && P > 1;
    t->lo = t->zero ? t->cut[me] : 0, t->hi = t->zero ? t->cut[me + 1] : t->n;
    return DC_OK;
}

size_t trainer_optim_bytes(const trainer *t) { return 2 * (t->hi - t->lo) * sizeof(float); }

int trainer_mb_mine(const trainer *t, int a) { return a % t->dist.dp_size == t->dist.dp_rank; }

/* direct: one process, one micro-batch: the gradient is the step's as it
 * stands (0 + g = g but for the sign of a zero, which no update sees), so no
 * second buffer is needed */
static int direct(const trainer *t, int A) { return t->dist.dp_size == 1 && A == 1; }

/* grad_buffers: gacc (zeroed) and recv, allocated once */
static int grad_buffers(trainer *t, dc_err *err) {
    const int P = t->dist.dp_size, me = t->dist.dp_rank;
    size_t len = t->cut[me + 1] - t->cut[me], most = 0;
    for (int r = 0; r < P; r++) most = t->cut[r + 1] - t->cut[r] > most ? t->cut[r + 1] - t->cut[r] : most;
    if (!t->gacc && !(t->gacc = malloc(sizeof(float) * (len ? len : 1))))
        return err_set(err, DC_ENOMEM, "train: out of memory for the step's gradient");
    if (P > 1 && !t->recv && !(t->recv = malloc(sizeof(float) * (size_t)P * (most ? most : 1))))
        return err_set(err, DC_ENOMEM, "train: out of memory for the gradient exchange");
    memset(t->gacc, 0, sizeof(float) * len);
    return DC_OK;
}

/* figure_buffer: mbf for A micro-batches' figures (zeroed) + the loads + the norm's chunks */
static int figure_buffer(trainer *t, int A, dc_err *err) {
    int E = t->cfg.n_routed_experts ? t->cfg.n_routed_experts : 1;
    size_t CH = grad_chunk(t->n), need = (size_t)A * 4 + (size_t)(t->L + t->D) * E + (t->n + CH - 1) / CH + 1;
    if ((size_t)t->mbcap < need) {
        double *p = realloc(t->mbf, sizeof(double) * need);
        if (!p) return err_set(err, DC_ENOMEM, "train: out of memory");
        t->mbf = p, t->mbcap = (int)need;
    }
    memset(t->mbf, 0, sizeof(double) * (size_t)A * 4);
    return DC_OK;
}

int trainer_backward(trainer *t, const tbatch *b, int a, int A, dc_err *err) {
    const int P = t->dist.dp_size;
    int rc = DC_OK;
    if (a == 0) {
        if ((rc = figure_buffer(t, A, err)) || (!direct(t, A) && (rc = grad_buffers(t, err)))) return rc;
        t->mb_used = 1;
    }
    if (trainer_mb_mine(t, a)) {
        memset(t->arena + t->n, 0, sizeof(float) * t->n);
        double keep[4] = {t->acc_wl, t->acc_w, t->acc_mtp, t->acc_aux};
        t->acc_wl = t->acc_w = t->acc_mtp = t->acc_aux = 0;
        rc = trainer_forward(t, b, 1, err);
        double *f = t->mbf + (size_t)a * 4;
        f[0] = t->acc_wl, f[1] = t->acc_w, f[2] = t->acc_mtp, f[3] = t->acc_aux;
        t->acc_wl = keep[0], t->acc_w = keep[1], t->acc_mtp = keep[2], t->acc_aux = keep[3];
        if (rc) return rc; /* a bad batch fails on every replica alike: the batches are the same everywhere */
    }
    t->nmb = a + 1;
    if (!direct(t, A) && (a % P == P - 1 || a == A - 1)) {
        double t0 = progress_now();
        rc = dp_round(&t->dist, a / P, A, t->arena + t->n, t->cut, t->gacc, t->recv, err);
        t->comm_s += progress_now() - t0;
    }
    return rc;
}

/* the figures and the loads summed over the replicas, then the figures in order */
static int figures(trainer *t) {
    const int P = t->dist.dp_size, E = t->cfg.n_routed_experts ? t->cfg.n_routed_experts : 1;
    const size_t nl = (size_t)(t->L + t->D) * E, nf = (size_t)t->nmb * 4;
    double *f = t->mbf, *ld = t->mbf + nf;
    int rc = DC_OK;
    if (P > 1) {
        for (size_t i = 0; i < nl; i++) ld[i] = t->load[i];
        rc = dist_sum_f64(&t->dist, DIST_DP, f, nf + nl, &t->derr);
        for (size_t i = 0; i < nl && !rc; i++) t->load[i] = (int)ld[i];
    }
    t->acc_wl = t->acc_w = t->acc_mtp = t->acc_aux = 0;
    for (int a = 0; a < t->nmb; a++)
        t->acc_wl += f[a * 4], t->acc_w += f[a * 4 + 1], t->acc_mtp += f[a * 4 + 2], t->acc_aux += f[a * 4 + 3];
    return rc;
}

int trainer_dp_reduce(trainer *t, double *ss) {
    const int P = t->dist.dp_size, me = t->dist.dp_rank;
    float *G = t->arena + t->n;
    if (!t->mb_used || direct(t, t->nmb)) { /* trainer_forward's own accumulation, or one micro-batch: one process */
        if (P > 1) return err_set(&t->derr, DC_EARG, "train: several replicas step with trainer_backward");
        if (t->mb_used) figures(t);
        *ss = grad_sumsq(G, t->n);
        return DC_OK;
    }
    double t0 = progress_now();
    int rc = figures(t);
    if (!rc && P > 1 && !t->zero) { /* plain data parallel: every replica the whole gradient */
        rc = dp_allgather(&t->dist, t->cut, t->gacc, G, &t->derr);
        *ss = grad_sumsq(G, t->n);
    } else if (!rc) {
        size_t CH = grad_chunk(t->n), nc = (t->n + CH - 1) / CH;
        double *part = t->mbf + (size_t)t->nmb * 4; /* after the figures (the loads are done) */
        memset(part, 0, sizeof(double) * nc);
        grad_sumsq_parts(t->gacc, t->cut[me], t->cut[me + 1], CH, part);
        if (P > 1) rc = dist_sum_f64(&t->dist, DIST_DP, part, nc, &t->derr);
        *ss = 0;
        for (size_t c = 0; c < nc; c++) *ss += part[c];
    }
    t->comm_s += progress_now() - t0;
    return rc;
}

int trainer_dp_adamw(trainer *t, float scale) {
    const int P = t->dist.dp_size;
    float *G = t->arena + t->n;
    const float *g = !t->mb_used || direct(t, t->nmb) || (P > 1 && !t->zero) ? G + t->lo : t->gacc;
    adamw_update_range(t->tab, t->ntab, t->arena, t->arena, g, t->mv, t->lo, t->hi, &t->o, t->step, t->lr_now,
                       scale);
    if (!t->zero) return DC_OK;
    double t0 = progress_now();
    int rc = dp_allgather(&t->dist, t->cut, NULL, t->arena, &t->derr);
    t->comm_s += progress_now() - t0;
    return rc;
}

int trainer_dp_gather_optim(trainer *t, float **m, float **v, dc_err *err) {
    *m = malloc(sizeof(float) * t->n), *v = malloc(sizeof(float) * t->n);
    if (!*m || !*v) {
        free(*m), free(*v), *m = *v = NULL;
        return err_set(err, DC_ENOMEM, "checkpoint: out of memory gathering the optimiser state");
    }
    if (!t->zero) {
        adam_mom_get(&t->mv, 0, t->n, *m, *v);
        return DC_OK;
    }
    /* this replica's shard widened into its place in the whole arrays, then the others' gathered */
    const size_t lo = t->lo, sh = t->hi - t->lo;
    adam_mom_get(&t->mv, 0, sh, *m + lo, *v + lo);
    int rc = dp_allgather(&t->dist, t->cut, NULL, *m, err);
    if (!rc) rc = dp_allgather(&t->dist, t->cut, NULL, *v, err);
    return rc;
}
