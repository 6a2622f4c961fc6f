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
static int sum_grads(trainer *t, float *grads, float *all, dc_err *err) {
    const int P = t->dist.ep_size;
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (!shared_entry(e)) continue;
        float *g = grads + (*e->dst - t->arena);
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

void trainer_ep_sync(trainer *t, float *grads) {
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
    x->rc = sum_grads(t, grads, x->gbuf, &x->err);
}

double trainer_ep_sumsq(const trainer *t, const float *grads) {
    double sh = 0, own = 0;
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (e->alias) continue;
        double q = grad_sumsq(grads + (*e->dst - t->arena), wt_numel(e));
        if (e->expert < 0) sh += q;
        else own += q;
    }
    dc_err err;
    if (t->ep->rc || dist_sum_f64(&t->dist, DIST_EP, &own, 1, &err)) return 0.0 / 0.0;
    return sh + own;
}

/* ---------------------------------------------------------------- the whole model on rank 0 */


static int owner(const trainer *t, int expert) { return expert < 0 ? 0 : expert / t->ep->El; }

/* expert_floats: floats of rank r's routed experts (params, or m, or v) */
static size_t expert_floats(const wt_entry *e, int n, const trainer *t, int r) {
    size_t s = 0;
    for (int i = 0; i < n; i++)
        if (!e[i].alias && e[i].expert >= 0 && owner(t, e[i].expert) == r) s += wt_numel(&e[i]);
    return s;
}

/* part k of tensor e of t's arena as float32 into dst (0 parameters, 2 m,
 * 3 v: the moments widened from their storage) */
static void part_get(const trainer *t, const wt_entry *e, int part, float *dst) {
    size_t off = (size_t)(*e->dst - t->arena), n = wt_numel(e);
    if (part == 0) memcpy(dst, t->arena + off, n * sizeof(float));
    else adam_mom_get(&t->mv, off, n, part == 2 ? dst : NULL, part == 3 ? dst : NULL);
}

/* pack: this rank's experts' params, m, v (arena parts 0, 2, 3) in table order */
static void pack(const trainer *t, float *buf) {
    size_t o = 0;
    for (int part = 0; part < 4; part += part ? 1 : 2)
        for (int i = 0; i < t->ntab; i++) {
            const wt_entry *e = &t->tab[i];
            if (e->alias || e->expert < 0) continue;
            part_get(t, e, part, buf + o);
            o += wt_numel(e);
        }
}

/* fill: rank 0's own tensors from t, the others' experts from recv (full's
 * moments are float32 at arena parts 2 and 3) */
static void fill(trainer *full, const trainer *t, const float *recv, const size_t *at) {
    const int P = t->dist.ep_size;
    size_t sizes[P];
    for (int r = 0; r < P; r++) sizes[r] = expert_floats(full->tab, full->ntab, t, r);
    for (int part = 0; part < 4; part += part ? 1 : 2) {
        size_t o[P];
        for (int r = 0; r < P; r++) o[r] = at[r] + (part ? part - 1 : 0) * sizes[r];
        for (int i = 0, j = 0; i < full->ntab; i++) {
            const wt_entry *e = &full->tab[i];
            size_t n = wt_numel(e);
            float *dst = full->arena + part * full->n + (*e->dst - full->arena);
            int r = owner(t, e->expert);
            if (r == 0) {
                while (strcmp(t->tab[j].name, e->name) != 0) j++; /* t->tab: the same order, others' experts left out */
                if (!e->alias) part_get(t, &t->tab[j], part, dst);
            } else if (!e->alias) {
                memcpy(dst, recv + o[r], n * sizeof(float));
                o[r] += n;
            }
        }
    }
}

int trainer_ep_full(const trainer *t, trainer *full, dc_err *err) {
    memset(full, 0, sizeof *full);
    const int P = t->dist.ep_size, me = t->dist.ep_rank;
    moe_ep *x = t->ep;
    size_t mine = 3 * expert_floats(t->tab, t->ntab, t, me), total = 0, at[P];
    int rc = DC_OK;
    if (me == 0) {
        full->cfg = t->cfg, full->o = t->o, full->dist = t->dist, full->step = t->step;
        full->L = t->L, full->D = t->D;
        if ((rc = weights_table(&full->cfg, &full->P, &full->tab, &full->ntab, err))) return rc;
        full->n = trainer_point(full->tab, full->ntab, NULL);
        full->arena = calloc(4 * full->n, sizeof(float));
        if (!full->arena) rc = err_set(err, DC_ENOMEM, "train: out of memory gathering the experts");
        else trainer_point(full->tab, full->ntab, full->arena);
        full->lo = 0, full->hi = full->n;
        full->mv = (adam_mom){full->arena + 2 * full->n, full->arena + 3 * full->n, 0};
        for (int r = 0; r < P; r++) at[r] = total, total += r ? 3 * expert_floats(full->tab, full->ntab, t, r) : 0;
    }
    float *send = malloc(sizeof(float) * (mine ? mine : 1)), *recv = malloc(sizeof(float) * (total ? total : 1));
    if (!rc && (!send || !recv)) rc = err_set(err, DC_ENOMEM, "train: out of memory gathering the experts");
    /* every rank takes part, even after a local failure: the others wait in the exchange */
    if (send) pack(t, send);
    for (int r = 0; r < P; r++) {
        x->sc[r] = me && r == 0 ? mine * sizeof(float) : 0, x->sd[r] = 0;
        x->rc_[r] = me == 0 && r ? (r + 1 < P ? at[r + 1] : total) * sizeof(float) - at[r] * sizeof(float) : 0;
        x->rd[r] = me == 0 ? at[r] * sizeof(float) : 0;
    }
    int xr = dist_alltoallv(&t->dist, DIST_EP, send, x->sc, x->sd, recv, x->rc_, x->rd, rc ? &(dc_err){0} : err);
    if (!rc) rc = xr;
    if (!rc && me == 0) fill(full, t, recv, at);
    free(send), free(recv);
    if (rc) trainer_ep_full_free(full);
    return rc;
}

void trainer_ep_full_free(trainer *full) {
    free(full->tab);
    free(full->arena);
    full->P.arena = NULL;
    weights_free(&full->P);
    memset(full, 0, sizeof *full);
}
