/*
 * trainer_ep.c — see trainer_ep.h.
 */
#include "train/trainer_ep.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "model/moe_ep.h"

#define EP_CHUNK ((size_t)1 << 20) /* floats gathered per call when summing gradients */

double trainer_shares(const trainer *t) {
    double acc = t->o.accum > 0 ? t->o.accum : 1;
    return t->ep ? acc * t->dist.ep_size : acc;
}

/* keep: the entries this rank holds (shared ones, its own experts) */
static int keep(const moe_ep *x, wt_entry *e, int n) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (e[i].expert < 0 || moe_ep_owns(x, e[i].expert)) e[m++] = e[i];
    return m;
}

int trainer_ep_init(trainer *t, wt_entry *gt, int *ng, dc_err *err) {
    if (t->dist.ep_size <= 1) return DC_OK;
    if (t->cfg.n_routed_experts <= 0)
        return err_set(err, DC_EARG, "train: --ep %d needs a model with routed experts", t->dist.ep_size);
    t->ep = calloc(1, sizeof *t->ep);
    if (!t->ep) return err_set(err, DC_ENOMEM, "train: out of memory");
    int rc = moe_ep_init(t->ep, &t->dist, t->cfg.n_routed_experts, t->cfg.num_experts_per_tok, t->cfg.hidden_size,
                         (size_t)t->Bcap * t->Tcap, err);
    if (rc) {
        free(t->ep);
        t->ep = NULL;
        return rc;
    }
    t->ntab = keep(t->ep, t->tab, t->ntab);
    *ng = keep(t->ep, gt, *ng);
    /* the step's sum buffers: nothing is allocated in a step */
    size_t most = 1, nload = (size_t)(t->L + t->D) * t->cfg.n_routed_experts;
    for (int i = 0; i < t->ntab; i++)
        if (wt_numel(&t->tab[i]) > most) most = wt_numel(&t->tab[i]);
    t->ep->gbuf = malloc(sizeof(float) * (most < EP_CHUNK ? most : EP_CHUNK) * t->dist.ep_size);
    t->ep->vbuf = malloc(sizeof(double) * (4 + nload));
    if (!t->ep->gbuf || !t->ep->vbuf) {
        trainer_ep_free(t);
        return err_set(err, DC_ENOMEM, "train: out of memory for the expert group's sums");
    }
    return DC_OK;
}

void trainer_ep_free(trainer *t) {
    if (!t->ep) return;
    moe_ep_free(t->ep);
    free(t->ep);
    t->ep = NULL;
}

static int shared_entry(const wt_entry *e) { return !e->alias && e->expert < 0 && e->kind != WT_BIAS; }

/* sum_grads: each shared tensor's gradient summed over the EP ranks in rank
 * order, the same sum on every rank */
static int sum_grads(trainer *t, float *all, dc_err *err) {
    const int P = t->dist.ep_size;
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (!shared_entry(e)) continue;
        float *g = t->arena + t->n + (*e->dst - t->arena);
        size_t n = wt_numel(e);
        for (size_t o = 0; o < n; o += EP_CHUNK) {
            size_t m = n - o < EP_CHUNK ? n - o : EP_CHUNK;
            int rc = dist_allgather(&t->dist, DIST_EP, g + o, all, m * sizeof(float), err);
            if (rc) return rc;
            for (size_t j = 0; j < m; j++) {
                float s = all[j];
                for (int r = 1; r < P; r++) s += all[(size_t)r * m + j];
                g[o + j] = s;
            }
        }
    }
    return DC_OK;
}

void trainer_ep_sync(trainer *t) {
    moe_ep *x = t->ep;
    if (x->rc) return;
    const int E = t->cfg.n_routed_experts, nl = t->L + t->D;
    size_t nload = (size_t)nl * E;
    double *v = x->vbuf;
    v[0] = t->acc_wl, v[1] = t->acc_w, v[2] = t->acc_mtp, v[3] = t->acc_aux;
    for (size_t i = 0; i < nload; i++) v[4 + i] = t->load[i];
    if ((x->rc = dist_sum_f64(&t->dist, DIST_EP, v, 4 + nload, &x->err))) return;
    t->acc_wl = v[0], t->acc_w = v[1], t->acc_mtp = v[2], t->acc_aux = v[3];
    for (size_t i = 0; i < nload; i++) t->load[i] = (int)v[4 + i];
    x->rc = sum_grads(t, x->gbuf, &x->err);
}

double trainer_ep_sumsq(const trainer *t) {
    double sh = 0, own = 0;
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (e->alias) continue;
        double q = grad_sumsq(t->arena + t->n + (*e->dst - t->arena), wt_numel(e));
        if (e->expert < 0) sh += q;
        else own += q;
    }
    dc_err err;
    if (t->ep->rc || dist_sum_f64(&t->dist, DIST_EP, &own, 1, &err)) return 0.0 / 0.0;
    return sh + own;
}
