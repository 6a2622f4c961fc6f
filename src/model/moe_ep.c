/*
 * moe_ep.c — see moe_ep.h. Expert parallelism over DIST_EP: the training
 * layer (dispatch, experts on their owners, combine; the backward along the
 * swapped routes) and the inference layer (owners' outputs exchanged, summed
 * in expert order on every rank).
 */
#include "model/moe_ep.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "model/model.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int moe_ep_init(moe_ep *x, const dist *d, int E, int K, int C, size_t N, dc_err *err) {
    memset(x, 0, sizeof *x);
    x->d = *d;
    int P = d->ep_size;
    if (E < 1) return err_set(err, DC_EARG, "expert parallel: --ep %d needs a model with routed experts", P);
    if (P < 1 || E % P != 0)
        return err_set(err, DC_EARG, "expert parallel: ep %d must divide n_routed_experts %d", P, E);
    x->E = E, x->El = E / P, x->e0 = d->ep_rank * x->El;
    x->sc = calloc(4 * (size_t)P, sizeof(size_t));
    x->cap_rows = N * (size_t)K * P;
    x->yr = x->cap_rows ? malloc(sizeof(real) * x->cap_rows * C) : NULL;
    if (!x->sc || (x->cap_rows && !x->yr)) {
        moe_ep_free(x);
        return err_set(err, DC_ENOMEM, "expert parallel: out of memory for %zu rows of %d", x->cap_rows, C);
    }
    x->sd = x->sc + P, x->rc_ = x->sd + P, x->rd = x->rc_ + P;
    return DC_OK;
}

void moe_ep_free(moe_ep *x) {
    if (!x) return;
    free(x->sc);
    free(x->yr);
    free(x->ibuf);
    free(x->itok);
    free(x->gbuf);
    free(x->vbuf);
    memset(x, 0, sizeof *x);
}

/* xchg: one alltoallv with the counts in sc/sd/rc_/rd, or with them swapped
 * (the reverse route); skipped after a failure */
static void xchg(moe_ep *x, const void *send, void *recv, int reverse) {
    if (x->rc) return;
    int P = x->d.ep_size;
    const size_t *sc = reverse ? x->rc_ : x->sc, *sd = reverse ? x->rd : x->sd;
    const size_t *rc = reverse ? x->sc : x->rc_, *rd = reverse ? x->sd : x->rd;
    for (int r = 0; r < P; r++)
        if (r != x->d.ep_rank) x->bytes += sc[r];
    double t0 = now_s();
    x->rc = dist_alltoallv(&x->d, DIST_EP, send, sc, sd, recv, rc, rd, &x->err);
    x->secs += now_s() - t0;
    x->exchanges++;
}

/* ---------------------------------------------------------------- training */

/* plan: the byte counts of the row exchange of one layer from this rank's
 * slot offsets (sends) and the counts received (a->rcnt); returns rows received */
static size_t plan(moe_ep *x, const moe_act *a, int C) {
    const int P = x->d.ep_size, El = x->El;
    const size_t row = sizeof(real) * C;
    size_t R = 0;
    for (int r = 0; r < P; r++) {
        x->sc[r] = (size_t)(a->off[(r + 1) * El] - a->off[r * El]) * row;
        x->sd[r] = (size_t)a->off[r * El] * row;
        size_t n = 0;
        for (int j = 0; j < El; j++) n += a->rcnt[r * El + j];
        x->rc_[r] = n * row, x->rd[r] = R * row;
        R += n;
    }
    return R;
}

static void send_counts(moe_ep *x, const moe_act *a) {
    const int P = x->d.ep_size, El = x->El;
    for (int r = 0; r < P; r++) {
        x->sc[r] = x->rc_[r] = sizeof(int) * El;
        x->sd[r] = x->rd[r] = sizeof(int) * El * (size_t)r;
    }
    xchg(x, a->cnt, a->rcnt, 0);
    if (x->rc) memset(a->rcnt, 0, sizeof(int) * x->E);
}

static ffn_act act_rows(const ffn_act *a, size_t row, int width) {
    size_t o = row * width;
    return (ffn_act){a->h + 2 * o, a->a + o};
}

void moe_ep_train_fwd(moe_ep *x, real *y, moe_act *a, const moe_w *p, const moe_dims *d, const real *in, int B,
                      int T) {
    const int C = d->C, P = x->d.ep_size, El = x->El;
    moe_train_route(a, p, d, in, B * T);
    send_counts(x, a);
    plan(x, a, C);
    xchg(x, a->xe, a->xr, 0); /* dispatch */
    size_t o = 0;
    for (int r = 0; r < P; r++)
        for (int j = 0; j < El; j++) {
            int n = a->rcnt[r * El + j];
            if (!n) continue;
            ffn_act sub = act_rows(&a->ex, o, d->Im);
            swiglu_train_fwd(d->lin, x->yr + o * C, &sub, &p->experts[x->e0 + j], a->xr + o * C, n, C, d->Im);
            o += n;
        }
    xchg(x, x->yr, a->ye, 1); /* combine */
    if (x->rc) memset(a->ye, 0, sizeof(real) * (size_t)a->off[d->E] * C);
    moe_train_combine(y, a, p, d, in, B, T);
}

void moe_ep_bwd(moe_ep *x, real *dx, const moe_w *g, const real *dy, const real *in, const moe_act *a,
                const moe_w *p, const moe_dims *d, int B, int T, real *scratch) {
    const int N = B * T, C = d->C, P = x->d.ep_size, El = x->El;
    moe_bwd_scr s = moe_bwd_split(d, N, scratch);
    moe_bwd_out(dx, g, dy, in, a, p, d, N, &s);
    size_t R = plan(x, a, C);
    xchg(x, s.dye, s.dyr, 0); /* the outputs' gradients go where the rows were dispatched */
    memset(s.dxr, 0, sizeof(real) * R * C);
    size_t o = 0;
    for (int r = 0; r < P; r++)
        for (int j = 0; j < El; j++) {
            int n = a->rcnt[r * El + j];
            if (!n) continue;
            ffn_act sub = act_rows(&a->ex, o, d->Im);
            int e = x->e0 + j;
            swiglu_bwd(d->lin, s.dxr + o * C, &g->experts[e], s.dyr + o * C, a->xr + o * C, &sub, &p->experts[e], n, C,
                       d->Im, s.ffs);
            o += n;
        }
    xchg(x, s.dxr, s.dxe, 1); /* and the inputs' gradients come back along the combine route */
    moe_bwd_gate(dx, g, in, a, p, d, B, T, &s);
}

/* ---------------------------------------------------------------- inference
 *
 * Rank 0 of the group (the leader) runs the model; at each MoE layer it
 * broadcasts a header [op, layer, cnt[E]] and sends every owner the rows
 * of the tokens that chose its experts, in expert order, tokens in order;
 * the owners (followers, in moe_ep_follow) send back the outputs in the same
 * order, and the leader sums every routed output in expert order. */

enum { EPI_LAYER = 1, EPI_STOP = 2 };

static int reserve(moe_ep *x, size_t rows, int C) {
    if (rows <= x->icap) return 1;
    float *b = malloc(sizeof(float) * 2 * rows * C);
    int *t = malloc(sizeof(int) * (rows + 3 + (size_t)x->E));
    if (!b || !t) {
        free(b), free(t);
        return 0;
    }
    free(x->ibuf), free(x->itok);
    x->ibuf = b, x->itok = t, x->icap = rows;
    return 1;
}

/* ffn_rows: experts [e0, e1) over their rows of xs (cnt[e] each, in order), into ys */
static void ffn_rows(scratch *s, const layer_w *lw, const int *cnt, int e0, int e1, int C, const float *xs, float *ys) {
    size_t o = 0;
    for (int e = e0; e < e1; e++) {
        if (!cnt[e]) continue;
        s->experts_run++;
        ffn_forward(s, &lw->exp_gate[e], &lw->exp_up[e], &lw->exp_down[e], cnt[e], xs + o * C, ys + o * C);
        o += cnt[e];
    }
}

/* rows_plan: byte counts of the leader's exchange with every owner: rows of
 * owner r start at the first row of expert r*El; `to` 1: leader -> owners */
static size_t rows_plan(moe_ep *x, const int *cnt, int C, int to) {
    const int P = x->d.ep_size, me = x->d.ep_rank;
    size_t row = sizeof(float) * C, at = 0, mine = 0;
    for (int r = 0; r < P; r++) {
        size_t n = 0;
        for (int e = r * x->El; e < (r + 1) * x->El; e++) n += cnt[e];
        if (r == me) mine = n;
        size_t leader_side = r == 0 ? 0 : n * row; /* the leader keeps its own rows */
        if (me == 0) x->sc[r] = to ? leader_side : 0, x->rc_[r] = to ? 0 : leader_side;
        x->sd[r] = x->rd[r] = at * row;
        at += n;
    }
    if (me != 0) {
        for (int r = 0; r < P; r++) x->sc[r] = x->rc_[r] = x->sd[r] = x->rd[r] = 0;
        if (to) x->rc_[0] = mine * row;
        else x->sc[0] = mine * row;
    }
    return me == 0 ? at : mine;
}

void moe_ep_forward(moe_ep *x, const dc_config *c, scratch *s, const layer_w *lw, int layer, int T, const float *xn,
                    float *out) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok, C = c->hidden_size;
    moe_route(c, lw, T, xn, s->rlog, s->idx, s->wts);
    if (c->n_shared_experts) ffn_forward(s, &lw->sh_gate, &lw->sh_up, &lw->sh_down, T, xn, out);
    else memset(out, 0, sizeof(float) * (size_t)T * C);
    size_t NK = (size_t)T * K;
    if (x->rc) return;
    if (!reserve(x, NK, C)) {
        x->rc = err_set(&x->err, DC_ENOMEM, "expert parallel: out of memory for %zu rows", NK);
        return;
    }
    int *h = x->itok, *cnt = h + 2;
    h[0] = EPI_LAYER, h[1] = layer;
    memset(cnt, 0, sizeof(int) * E);
    for (size_t i = 0; i < NK; i++) cnt[s->idx[i]]++;
    /* every routed row in expert order, tokens in order */
    float *xs = x->ibuf, *ys = x->ibuf + NK * C;
    size_t n = 0;
    for (int e = 0; e < E; e++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                if (s->idx[t * K + k] == e) memcpy(xs + n++ * C, xn + (size_t)t * C, sizeof(float) * C);
    double t0 = now_s();
    if ((x->rc = dist_bcast(&x->d, DIST_EP, h, sizeof(int) * (2 + (size_t)E), 0, &x->err))) return;
    x->secs += now_s() - t0;
    x->bytes += sizeof(int) * (2 + (size_t)E) * (x->d.ep_size - 1);
    rows_plan(x, cnt, C, 1);
    xchg(x, xs, NULL, 0); /* dispatch: the owners' rows */
    ffn_rows(s, lw, cnt, 0, x->El, C, xs, ys);
    rows_plan(x, cnt, C, 0);
    xchg(x, NULL, ys, 0); /* combine: the owners' outputs, in place */
    if (x->rc) return;
    const float *y = ys;
    for (int e = 0; e < E; e++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                if (s->idx[t * K + k] == e) {
                    float w = s->wts[t * K + k], *o = out + (size_t)t * C;
                    for (int d = 0; d < C; d++) o[d] += w * y[d];
                    y += C;
                }
}

int moe_ep_follow(moe_ep *x, const dc_model *m, dc_err *err) {
    const dc_config *c = &m->cfg;
    const int E = c->n_routed_experts, C = c->hidden_size;
    scratch s = {0};
    int rc = DC_OK, h[2 + E];
    while (!rc) {
        if ((rc = dist_bcast(&x->d, DIST_EP, h, sizeof h, 0, err)) || h[0] != EPI_LAYER) break;
        const int *cnt = h + 2, l = h[1];
        if (l < 0 || l >= m->w.nlayers || !m->w.layers[l].is_moe) {
            rc = err_set(err, DC_EFORMAT, "expert parallel: the leader named layer %d, not a MoE layer", l);
            break;
        }
        size_t n = 0, most = 1;
        for (int e = x->e0; e < x->e0 + x->El; e++) n += cnt[e], most = (size_t)cnt[e] > most ? (size_t)cnt[e] : most;
        if (!reserve(x, n, C) || (rc = scratch_reserve(&s, c, (int)most, 1, err))) {
            if (!rc) rc = err_set(err, DC_ENOMEM, "expert parallel: out of memory for %zu rows", n);
            break;
        }
        float *xs = x->ibuf, *ys = x->ibuf + x->icap * C;
        rows_plan(x, cnt, C, 1);
        xchg(x, NULL, xs, 0);
        ffn_rows(&s, &m->w.layers[l], cnt, x->e0, x->e0 + x->El, C, xs, ys);
        rows_plan(x, cnt, C, 0);
        xchg(x, ys, NULL, 0);
        if (x->rc) rc = err_set(err, x->rc, "%s", x->err.msg);
    }
    scratch_free(&s);
    return rc;
}

void moe_ep_stop(moe_ep *x) {
    if (x->d.ep_rank != 0 || x->rc || !x->E) return;
    int h[2 + x->E];
    memset(h, 0, sizeof h);
    h[0] = EPI_STOP;
    dc_err err;
    dist_bcast(&x->d, DIST_EP, h, sizeof h, 0, &err);
}
