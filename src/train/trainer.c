/*
 * trainer.c — see trainer.h. The whole model's training forward and backward
 * over a weighted batch, and the step around it. Shapes: N = B*T rows of the
 * current batch, C hidden, V vocab.
 */
#include "train/trainer.h"
#include "model/embed_head.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "kernels/ggml_types.h"
#include "kernels/rvec.h"
#include "model/config.h"
#include "model/model.h"
#include "model/moe_ep.h"
#include "model/norm.h"
#include "train/trainer_dp.h"
#include "train/trainer_ep.h"

/* ---------------------------------------------------------------- layout */

/* point: non-alias table entries get consecutive 64-byte aligned slots from
 * base; aliases (the MTP copies of embedding and head) share the main tensor */
size_t trainer_point(wt_entry *e, int n, float *base) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].alias) continue;
        if (base) *e[i].dst = base + off;
        off += (wt_numel(&e[i]) + 15) / 16 * 16;
    }
    for (int i = 0; i < n && base; i++)
        if (e[i].alias)
            for (int j = 0; j < n; j++)
                if (strcmp(e[j].name, e[i].alias) == 0) *e[i].dst = *e[j].dst;
    return off;
}

static void views(const dc_config *c, const model_w *w, tlayer *tl) {
    for (int l = 0; l < w->nlayers; l++) {
        const layer_w *lw = &w->layers[l];
        tlayer *v = &tl[l];
        v->mla = (mla_w){lw->q_a.data, lw->q_a_norm, lw->q_b.data, lw->q.data,
                         lw->kv_a.data, lw->kv_a_norm, lw->kv_b.data, lw->o.data};
        if (!lw->is_moe) {
            v->ffn = (ffn_w){lw->gate.data, lw->up.data, lw->down.data};
            continue;
        }
        v->moe.router = lw->router;
        v->moe.bias = lw->router_bias;
        for (int e = 0; e < c->n_routed_experts; e++)
            v->moe.experts[e] = (ffn_w){lw->exp_gate[e].data, lw->exp_up[e].data, lw->exp_down[e].data};
        v->moe.shared = (ffn_w){lw->sh_gate.data, lw->sh_up.data, lw->sh_down.data};
    }
}

static void block_point(block_act *a, bump *b, trainer *t, int l) {
    size_t N = t->N, C = t->cfg.hidden_size;
    a->x_in = BUMP(b, N * C, real), a->rstd1 = BUMP(b, N, real), a->xn1 = BUMP(b, N * C, real);
    mla_act_point(&a->mla, b, &t->md, t->B, t->T);
    a->x_mid = BUMP(b, N * C, real), a->rstd2 = BUMP(b, N, real), a->xn2 = BUMP(b, N * C, real);
    if (dc_config_is_moe_layer(&t->cfg, l)) {
        moe_act_point(&a->moe, b, &t->ed, t->B, t->T);
    } else {
        size_t I = t->cfg.intermediate_size;
        a->ffn = (ffn_act){BUMP(b, N * 2 * I, real), BUMP(b, N * I, real)};
    }
}

static void acts_point(trainer *t, bump *b) {
    size_t N = t->N, C = t->cfg.hidden_size, V = t->cfg.vocab_size;
    t->tok = BUMP(b, (size_t)t->B * (t->T + 1), int);
    for (int l = 0; l < t->L; l++) block_point(&t->ba[l], b, t, l);
    t->x_out = BUMP(b, N * C, real), t->rstd_f = BUMP(b, N, real), t->xf = BUMP(b, N * C, real);
    t->dxf = BUMP(b, N * C, real), t->logits = BUMP(b, N * V, real), t->mask = BUMP(b, N, real);
    t->inputs = BUMP(b, N, int), t->targets = BUMP(b, N, int), t->mt = BUMP(b, N, int);
    t->rowloss = BUMP(b, N, double);
    for (int k = 0; k < t->D; k++) {
        mtp_act *m = &t->ma[k];
        m->tok = BUMP(b, N, int), m->e = BUMP(b, N * C, real), m->e_rstd = BUMP(b, N, real);
        m->h_rstd = BUMP(b, N, real), m->cat = BUMP(b, N * 2 * C, real);
        m->out = BUMP(b, N * C, real), m->out_rstd = BUMP(b, N, real), m->outn = BUMP(b, N * C, real);
        m->dout = BUMP(b, N * C, real), m->doutn = BUMP(b, N * C, real), m->mask = BUMP(b, N, real);
        block_point(&m->blk, b, t, t->L + k);
    }
    size_t scr = mla_scratch_floats(&t->md, t->B, t->T);
    if (t->cfg.n_routed_experts) {
        size_t ms = moe_scratch_floats(&t->ed, t->B, t->T);
        scr = ms > scr ? ms : scr;
    }
    size_t fs = 3 * N * t->cfg.intermediate_size;
    scr = fs > scr ? fs : scr;
    size_t cs = N * 2 * C; /* dcat */
    scr = cs > scr ? cs : scr;
    t->dx = BUMP(b, N * C, real), t->dxn = BUMP(b, N * C, real), t->scratch = BUMP(b, scr, real);
    t->load = BUMP(b, (size_t)(t->L + t->D) * (t->cfg.n_routed_experts ? t->cfg.n_routed_experts : 1), int);
}

void trainer_free(trainer *t) {
    if (!t) return;
    for (int l = 0; t->tp && l < t->L + t->D; l++) free(t->tp[l].moe.experts), free(t->tg[l].moe.experts);
    free(t->tp);
    free(t->tg);
    free(t->ba);
    free(t->ma);
    free(t->act_mem);
    free(t->arena);
    free(t->tab);
    free(t->cut), free(t->gacc), free(t->recv), free(t->mbf);
    /* the pointer structs own only their layer arrays, not the storage */
    t->P.arena = t->G.arena = NULL;
    weights_free(&t->P);
    weights_free(&t->G);
    rope_free(&t->rp);
    lin_ctx_free(&t->lin);
    trainer_ep_free(t);
    memset(t, 0, sizeof *t);
}

static uint64_t name_hash(uint64_t seed, const char *s) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* reserve_prec: t->lin in the run's precision, its scratch (linear.h) for the
 * widest linear layer at capacity, so that no step allocates: an activation
 * operand (N, d) and a weight (d, d) or second activation, d the widest
 * input or output of a linear layer */
static int reserve_prec(trainer *t, dc_err *err) {
    const dc_config *c = &t->cfg;
    int qk = c->qk_nope_head_dim + c->qk_rope_head_dim, S = c->n_shared_experts > 0 ? c->n_shared_experts : 1;
    int dims[] = {2 * c->hidden_size, c->q_lora_rank, c->num_attention_heads * qk, c->kv_lora_rank + c->qk_rope_head_dim,
                  c->num_attention_heads * (c->qk_nope_head_dim + c->v_head_dim), c->num_attention_heads * c->v_head_dim,
                  c->intermediate_size, c->moe_intermediate_size * S};
    size_t d = 0, N = (size_t)t->Bcap * t->Tcap;
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) d = dims[i] > 0 && (size_t)dims[i] > d ? (size_t)dims[i] : d;
    size_t a = N * d, bb = N * d > d * d ? N * d : d * d;
    if (lin_ctx_init(&t->lin, t->o.precision, a, bb))
        return err_set(err, DC_ENOMEM, "train: cannot allocate %.1f MB for the %s GEMMs' operands",
                       (a + bb) * 4.0 / 1e6, prec_name(t->o.precision));
    return DC_OK;
}

int trainer_init(trainer *t, const dc_config *cfg, const train_opts *o, const char *init_dir, uint64_t seed,
                 dc_err *err) {
    dist d;
    dist_single(&d);
    return trainer_init_dist(t, cfg, o, init_dir, seed, &d, 0, err);
}

int trainer_init_dist(trainer *t, const dc_config *cfg, const train_opts *o, const char *init_dir, uint64_t seed,
                      const dist *d, int zero, dc_err *err) {
    memset(t, 0, sizeof *t);
    if (zero && d->ep_size > 1) return err_set(err, DC_EARG, "train: --zero with --ep is not supported yet");
    t->cfg = *cfg;
    t->cfg.fp8_block_m = t->cfg.fp8_block_n = 0;
    t->o = *o;
    t->dist = *d;
    t->Bcap = t->B = o->B, t->Tcap = t->T = o->T, t->N = o->B * o->T;
    t->L = cfg->num_hidden_layers, t->D = cfg->num_nextn_predict_layers;
    int rc = dc_config_check(&t->cfg, err);
    if (!rc) rc = rope_init(&t->rp, &t->cfg, err);
    if (rc) return rc;
    if ((rc = weights_table(&t->cfg, &t->P, &t->tab, &t->ntab, err))) goto fail;
    wt_entry *gt;
    int ng;
    if ((rc = weights_table(&t->cfg, &t->G, &gt, &ng, err))) goto fail;
    if ((rc = trainer_ep_init(t, gt, &ng, err))) {
        free(gt);
        goto fail;
    }
    t->n = trainer_point(t->tab, t->ntab, NULL);
    if ((rc = trainer_dp_layout(t, zero, err))) {
        free(gt);
        goto fail;
    }
    /* params | grads (n floats each) | m | v (this rank's shard, float32 or bfloat16) */
    const int mb16 = t->o.bf16_moments != 0;
    size_t pg = 2 * t->n * sizeof(float), mvb = adam_mom_bytes(t->hi - t->lo, mb16), nb = pg + 2 * mvb;
    t->arena = aligned_alloc(64, (nb + 63) / 64 * 64);
    if (!t->arena) {
        free(gt);
        rc = err_set(err, DC_ENOMEM, "train: cannot allocate %.1f MB for parameters, gradients and moments",
                     nb / 1e6);
        goto fail;
    }
    memset(t->arena, 0, nb);
    t->mv = (adam_mom){(char *)t->arena + pg, (char *)t->arena + pg + mvb, mb16};
    trainer_point(t->tab, t->ntab, t->arena);
    trainer_point(gt, ng, t->arena + t->n);
    free(gt);
    int nl = t->L + t->D, E = cfg->n_routed_experts;
    t->tp = calloc(nl, sizeof *t->tp), t->tg = calloc(nl, sizeof *t->tg);
    t->ba = calloc(t->L ? t->L : 1, sizeof *t->ba), t->ma = calloc(t->D ? t->D : 1, sizeof *t->ma);
    if (!t->tp || !t->tg || !t->ba || !t->ma) goto oom;
    for (int l = 0; l < nl; l++) {
        t->tp[l].moe.experts = calloc(E ? E : 1, sizeof(ffn_w));
        t->tg[l].moe.experts = calloc(E ? E : 1, sizeof(ffn_w));
        if (!t->tp[l].moe.experts || !t->tg[l].moe.experts) goto oom;
    }
    views(&t->cfg, &t->P, t->tp);
    views(&t->cfg, &t->G, t->tg);
    for (int l = 0; l < nl; l++) t->tg[l].moe.bias = NULL; /* the bias is a buffer: no gradient */
    mla_dims_init(&t->md, &t->cfg, &t->rp, config_softmax_scale(&t->cfg));
    /* the balance loss of each micro-batch counts 1/accum, like its other losses */
    moe_dims_init(&t->ed, &t->cfg, o->aux_alpha / trainer_shares(t));
    t->ed.ep = t->ep ? t->dist.ep_size : 1;
    bump b = {0};
    acts_point(t, &b);
    t->act_mem = aligned_alloc(64, (b.off + 63) / 64 * 64);
    if (!t->act_mem) {
        rc = err_set(err, DC_ENOMEM, "train: cannot allocate %.1f MB of activations for batch %d x %d", b.off / 1e6,
                     t->B, t->T);
        goto fail;
    }
    memset(t->act_mem, 0, b.off);
    b = (bump){t->act_mem, 0};
    acts_point(t, &b);
    if (o->precision != PREC_F32 && (rc = reserve_prec(t, err))) goto fail;
    /* parameters */
    if (init_dir) {
        /* the checkpoint must have this config's shapes; the MTP copies of
         * the embedding and head are not read: training ties them */
        dc_config ic;
        if ((rc = dc_config_load(init_dir, &ic, err))) goto fail;
        if (ic.hidden_size != cfg->hidden_size || ic.vocab_size != cfg->vocab_size ||
            ic.num_hidden_layers != cfg->num_hidden_layers || ic.num_nextn_predict_layers != cfg->num_nextn_predict_layers) {
            rc = err_set(err, DC_ECONFIG, "%s: the checkpoint's shape differs from the training config", init_dir);
            goto fail;
        }
        if ((rc = weights_read(&t->cfg, init_dir, t->tab, t->ntab, err))) goto fail;
        return DC_OK;
    }
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (e->alias) continue;
        float *p = *e->dst;
        size_t n = wt_numel(e);
        if (e->kind == WT_NORM) {
            for (size_t j = 0; j < n; j++) p[j] = 1;
        } else if (e->kind == WT_BIAS) {
            memset(p, 0, n * sizeof *p);
        } else {
            rng r;
            rng_seed(&r, name_hash(seed, e->name));
            for (size_t j = 0; j < n; j++) p[j] = 0.02f * rng_normal(&r);
        }
    }
    return DC_OK;
oom:
    rc = err_set(err, DC_ENOMEM, "train: out of memory");
fail:
    trainer_free(t);
    return rc;
}

/* ---------------------------------------------------------------- forward / backward */

static void block_fwd(trainer *t, int l, block_act *a, real *x_out) {
    const int N = t->N, C = t->cfg.hidden_size;
    const float eps = t->cfg.rms_norm_eps;
    const layer_w *lp = &t->P.layers[l];
    tlayer *v = &t->tp[l];
    rmsnorm_train_fwd(a->xn1, a->rstd1, a->x_in, lp->attn_norm, N, C, eps);
    mla_train_fwd(a->x_mid, &a->mla, &v->mla, &t->md, a->xn1, t->B, t->T);
#pragma omp parallel for simd schedule(static) if ((size_t)N * C > 65536)
    for (size_t i = 0; i < (size_t)N * C; i++) a->x_mid[i] += a->x_in[i];
    rmsnorm_train_fwd(a->xn2, a->rstd2, a->x_mid, lp->ffn_norm, N, C, eps);
    if (lp->is_moe) {
        if (t->ep) moe_ep_train_fwd(t->ep, x_out, &a->moe, &v->moe, &t->ed, a->xn2, t->B, t->T);
        else moe_train_fwd(x_out, &a->moe, &v->moe, &t->ed, a->xn2, t->B, t->T);
        int E = t->cfg.n_routed_experts;
        for (int e = 0; e < E; e++) t->load[(size_t)l * E + e] += a->moe.cnt[e];
    } else {
        swiglu_train_fwd(&t->lin, x_out, &a->ffn, &v->ffn, a->xn2, N, C, t->cfg.intermediate_size);
    }
#pragma omp parallel for simd schedule(static) if ((size_t)N * C > 65536)
    for (size_t i = 0; i < (size_t)N * C; i++) x_out[i] += a->x_mid[i];
}

/* block_bwd: dx holds d(block output) on entry and d(block input) on return */
static void block_bwd(trainer *t, int l, block_act *a, real *dx) {
    const int N = t->N, C = t->cfg.hidden_size;
    const layer_w *lp = &t->P.layers[l], *lg = &t->G.layers[l];
    real *dxn = t->dxn;
    rv_zero(dxn, (size_t)N * C);
    if (lp->is_moe && t->ep)
        moe_ep_bwd(t->ep, dxn, &t->tg[l].moe, dx, a->xn2, &a->moe, &t->tp[l].moe, &t->ed, t->B, t->T, t->scratch);
    else if (lp->is_moe)
        moe_bwd(dxn, &t->tg[l].moe, dx, a->xn2, &a->moe, &t->tp[l].moe, &t->ed, t->B, t->T, t->scratch);
    else
        swiglu_bwd(&t->lin, dxn, &t->tg[l].ffn, dx, a->xn2, &a->ffn, &t->tp[l].ffn, N, C, t->cfg.intermediate_size,
                   t->scratch);
    rmsnorm_bwd(dx, lg->ffn_norm, dxn, a->x_mid, a->rstd2, lp->ffn_norm, N, C); /* x_out = x_mid + ffn(norm(x_mid)) */
    rv_zero(dxn, (size_t)N * C);
    mla_bwd(dxn, &t->tg[l].mla, dx, a->xn1, &a->mla, &t->tp[l].mla, &t->md, t->B, t->T, t->scratch);
    rmsnorm_bwd(dx, lg->attn_norm, dxn, a->x_in, a->rstd1, lp->attn_norm, N, C); /* x_mid = x_in + mla(norm(x_in)) */
}


/* head_loss: logits = h @ head^T (in BF16 in bf16 / fp8 runs: linear.h); returns sum_n w_n l_n over the positions
 * with w_n != 0 (the others' rows are zeroed); with grad, the head's gradient
 * goes straight into dhead and dh (the head is the last op, so its backward
 * needs nothing later) */
static double head_loss(trainer *t, const real *h, const real *w, const int *target, const loss_spec *ls, real *dh,
                        int grad) {
    const int N = t->N, C = t->cfg.hidden_size, V = t->cfg.vocab_size;
    real *lg = t->logits;
    lin_head_fwd_f(&t->lin, lg, h, t->P.head.data, N, C, V);
    double *rowloss = t->rowloss; /* summed in order below: the loss does not depend on the threads */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        real *z = lg + (size_t)i * V;
        rowloss[i] = 0;
        if (w[i] == 0) {
            memset(z, 0, sizeof(real) * V);
            continue;
        }
        rowloss[i] = w[i] * loss_row(ls, z, V, target[i], w[i], (size_t)i, grad);
    }
    if (grad) lin_head_bwd_f(&t->lin, dh, t->G.head.data, lg, h, t->P.head.data, N, C, V);
    double total = 0;
    for (int i = 0; i < N; i++) total += rowloss[i];
    return total;
}

/* the rows of dx into the embedding's gradient, in token order for every
 * column (threads take blocks of 64 columns: the same bits on any count) */
static void embed_bwd(real *dE, const real *dx, const int *ids, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > 65536)
    for (int c0 = 0; c0 < C; c0 += 64) {
        const int c1 = c0 + 64 < C ? c0 + 64 : C;
        for (int i = 0; i < N; i++) {
            real *d = dE + (size_t)ids[i] * C;
            const real *s = dx + (size_t)i * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) d[c] += s[c];
        }
    }
}

static int check_batch(const trainer *t, const tbatch *b, dc_err *err) {
    if (b->B < 1 || b->T < 1 || b->B > t->Bcap || b->T > t->Tcap)
        return err_set(err, DC_EARG, "train: a batch of %d x %d positions exceeds the trainer's %d x %d", b->B, b->T,
                       t->Bcap, t->Tcap);
    const int V = t->cfg.vocab_size;
    for (int r = 0; r < b->B; r++)
        for (int i = 0; i <= b->T; i++) {
            int id = b->tok[(size_t)r * (b->T + 1) + i];
            if (id < 0 || id >= V)
                return err_set(err, DC_EARG, "train: token id %d (row %d, position %d) is outside the vocabulary (0..%d)",
                               id, r, i, V - 1);
        }
    return DC_OK;
}

/* main_weights: the main loss's weights into t->mask; returns their sum */
static double main_weights(trainer *t, const tbatch *b) {
    const double acc = trainer_shares(t);
    if (!b->w) {
        for (int i = 0; i < t->N; i++) t->mask[i] = (real)(1.0 / t->N / acc);
        return 1.0 / acc;
    }
    double s = 0;
    for (int i = 0; i < t->N; i++) s += (t->mask[i] = b->w[i]);
    return s;
}

/* mtp_weights: depth k's weights (trainer.h) into m->mask and targets into
 * mt; returns 0 when no position has a target */
static int mtp_weights(trainer *t, const tbatch *b, int k, mtp_act *m, int *mt, double wsum) {
    const int B = t->B, T = t->T, D = t->D;
    const double lam = t->o.mtp_lambda, acc = trainer_shares(t);
    double wk = 0;
    int valid = B * (T - k > 0 ? T - k : 0);
    if (b->w)
        for (int r = 0; r < B; r++)
            for (int i = 0; i + k + 1 <= T; i++) wk += b->w[r * T + i + k];
    for (int r = 0; r < B; r++)
        for (int i = 0; i < T; i++) {
            int j = i + k < T ? i + k : T, n = r * T + i, has = i + k + 1 <= T;
            m->tok[n] = b->tok[r * (T + 1) + j];
            mt[n] = has ? b->tok[r * (T + 1) + i + k + 1] : 0;
            if (!b->w) m->mask[n] = has && valid ? (real)(lam / D / valid / acc) : 0;
            else m->mask[n] = has && wk > 0 ? (real)(lam / D * b->w[r * T + i + k] * wsum / wk) : 0;
        }
    return b->w ? wk > 0 : valid > 0;
}

/* mtp_fwd: module k's forward from hprev; returns its weighted loss */
static double mtp_fwd(trainer *t, int k, const real *hprev, int grad) {
    const int N = t->N, C = t->cfg.hidden_size, L = t->L;
    const float eps = t->cfg.rms_norm_eps;
    mtp_act *m = &t->ma[k - 1];
    const layer_w *lp = &t->P.layers[L + k - 1];
    embed_rows(m->e, t->P.embed, GG_F32, m->tok, N, C);
    mtp_input(m->blk.x_in, m->cat, m->e_rstd, m->h_rstd, m->e, hprev, lp->enorm, lp->hnorm, &lp->eh_proj, N, C, eps);
    block_fwd(t, L + k - 1, &m->blk, m->out);
    rmsnorm_train_fwd(m->outn, m->out_rstd, m->out, lp->head_norm, N, C, eps);
    rv_zero(m->doutn, (size_t)N * C);
    return head_loss(t, m->outn, m->mask, t->mt, NULL, m->doutn, grad);
}

/* mtp_bwd: module k's backward; its state gradient arrives in m->dout (from
 * depth k+1) and m->doutn (from the head), and leaves into the previous
 * depth's dout (or dxf) */
static void mtp_bwd(trainer *t, int k, int depths) {
    const int N = t->N, C = t->cfg.hidden_size, L = t->L;
    mtp_act *m = &t->ma[k - 1];
    const layer_w *lp = &t->P.layers[L + k - 1], *lg = &t->G.layers[L + k - 1];
    real *dout = t->dx;
    if (k < depths) memcpy(dout, m->dout, sizeof(real) * (size_t)N * C);
    else rv_zero(dout, (size_t)N * C);
    rmsnorm_bwd(dout, lg->head_norm, m->doutn, m->out, m->out_rstd, lp->head_norm, N, C);
    block_bwd(t, L + k - 1, &m->blk, dout);
    real *dcat = t->scratch;
    rv_zero(dcat, (size_t)N * 2 * C);
    linear_bwd_hp(dcat, lg->eh_proj.data, dout, m->cat, lp->eh_proj.data, N, 2 * C, C);
    real *dhprev = k > 1 ? t->ma[k - 2].dout : t->dxf;
    const real *hp = k > 1 ? t->ma[k - 2].out : t->xf;
    if (k > 1) rv_zero(dhprev, (size_t)N * C);
    real *de = t->dxn;
    rv_zero(de, (size_t)N * C);
    rmsnorm_dw(lg->enorm, dcat, (size_t)2 * C, m->e, (size_t)C, m->e_rstd, N, C);
    rmsnorm_dw(lg->hnorm, dcat + C, (size_t)2 * C, hp, (size_t)C, m->h_rstd, N, C);
#pragma omp parallel for schedule(static) if ((size_t)N * C > 65536)
    for (int n = 0; n < N; n++) {
        rmsnorm_row_bwd(de + (size_t)n * C, dcat + (size_t)n * 2 * C, m->e + (size_t)n * C, m->e_rstd[n], lp->enorm, C);
        rmsnorm_row_bwd(dhprev + (size_t)n * C, dcat + (size_t)n * 2 * C + C, hp + (size_t)n * C, m->h_rstd[n],
                        lp->hnorm, C);
    }
    embed_bwd(t->G.embed, de, m->tok, N, C);
}

int trainer_forward(trainer *t, const tbatch *b, int grad, dc_err *err) {
    int rc = check_batch(t, b, err);
    if (rc) return rc;
    t->B = b->B, t->T = b->T, t->N = b->B * b->T;
    t->md.lin = t->ed.lin = &t->lin; /* linear.h's GEMMs; set per call: the trainer may have moved */
    const int B = t->B, T = t->T, N = t->N, C = t->cfg.hidden_size, L = t->L;
    const double acc = trainer_shares(t);
    int *inputs = t->inputs, *targets = t->targets;
    for (int r = 0; r < B; r++)
        for (int i = 0; i < T; i++)
            inputs[r * T + i] = b->tok[r * (T + 1) + i], targets[r * T + i] = b->tok[r * (T + 1) + i + 1];
    /* main model */
    embed_rows(t->ba[0].x_in, t->P.embed, GG_F32, inputs, N, C);
    for (int l = 0; l < L; l++) block_fwd(t, l, &t->ba[l], l + 1 < L ? t->ba[l + 1].x_in : t->x_out);
    rmsnorm_train_fwd(t->xf, t->rstd_f, t->x_out, t->P.norm, N, C, t->cfg.rms_norm_eps);
    double wsum = main_weights(t, b);
    rv_zero(t->dxf, (size_t)N * C);
    double wl = head_loss(t, t->xf, t->mask, targets, b->loss, t->dxf, grad);
    t->loss = wsum > 0 ? wl / wsum : 0;
    /* MTP modules: depth k reads tok[b][min(i+k, T)] and predicts tok[b][i+k+1] */
    int depths = t->o.mtp_lambda > 0 && !(b->loss && b->loss->kind == LOSS_GRPO) ? t->D : 0;
    t->mtp_loss = 0;
    const real *hprev = t->xf;
    for (int k = 1; k <= depths; k++) {
        int has = mtp_weights(t, b, k, &t->ma[k - 1], t->mt, wsum);
        double lk = mtp_fwd(t, k, hprev, grad);
        t->mtp_loss += has && wsum > 0 ? lk / (t->o.mtp_lambda * wsum) : 0;
        hprev = t->ma[k - 1].out;
    }
    t->aux_loss = 0;
    for (int l = 0; l < L + depths; l++)
        if (t->P.layers[l].is_moe) t->aux_loss += (l < L ? t->ba[l].moe.aux : t->ma[l - L].blk.moe.aux) * acc;
    if (t->ep && t->ep->rc) return err_set(err, t->ep->rc, "%s", t->ep->err.msg);
    if (!grad) return DC_OK;
    t->acc_wl += wl, t->acc_w += wsum, t->acc_mtp += t->mtp_loss * wsum, t->acc_aux += t->aux_loss * wsum;
    /* backward: MTP modules last to first, then the main model */
    for (int k = depths; k >= 1; k--) mtp_bwd(t, k, depths);
    real *dx = t->dx;
    rv_zero(dx, (size_t)N * C);
    rmsnorm_bwd(dx, t->G.norm, t->dxf, t->x_out, t->rstd_f, t->P.norm, N, C);
    for (int l = L - 1; l >= 0; l--) block_bwd(t, l, &t->ba[l], dx);
    embed_bwd(t->G.embed, dx, inputs, N, C);
    if (t->ep && t->ep->rc) return err_set(err, t->ep->rc, "%s", t->ep->err.msg);
    return DC_OK;
}

/* ---------------------------------------------------------------- the step */

float trainer_lr(const train_opts *o, int64_t s) { return sched_lr(o, s); }

double trainer_imbalance(const trainer *t, int l) {
    if (!t->P.layers[l].is_moe) return 0;
    int E = t->cfg.n_routed_experts, mx = 0;
    double sum = 0;
    for (int e = 0; e < E; e++) {
        int v = t->load[(size_t)l * E + e];
        mx = v > mx ? v : mx;
        sum += v;
    }
    return sum > 0 ? mx / (sum / E) : 0;
}

void trainer_zero_grad(trainer *t) {
    int E = t->cfg.n_routed_experts;
    rv_zero(t->arena + t->n, t->n);
    t->mb_used = 0, t->nmb = 0;
    memset(t->load, 0, sizeof(int) * (size_t)(t->L + t->D) * (E ? E : 1));
    t->acc_wl = t->acc_w = t->acc_mtp = t->acc_aux = 0;
}

int trainer_update(trainer *t) {
    const train_opts *o = &t->o;
    const int E = t->cfg.n_routed_experts;
    double ss;
    int rc = trainer_dp_reduce(t, &ss);
    if (rc) return rc;
    /* the step's whole gradient: where trainer_dp_adamw reads it (ZeRO-1 is refused with --ep) */
    float *g = !t->mb_used || (t->dist.dp_size == 1 && t->nmb == 1) || t->dist.dp_size > 1 ? t->arena + t->n : t->gacc;
    if (t->ep) trainer_ep_sync(t, g); /* after the replicas' sums: the expert group's (trainer_ep.c) */
    double w = t->acc_w;
    t->loss = w > 0 ? t->acc_wl / w : 0, t->mtp_loss = w > 0 ? t->acc_mtp / w : 0, t->aux_loss = w > 0 ? t->acc_aux / w : 0;
    t->grad_norm = sqrt(t->ep ? trainer_ep_sumsq(t, g) : ss);
    t->lr_now = sched_lr(o, t->step);
    t->skipped = t->ep && t->ep->rc                                   ? 3
                 : !isfinite(t->loss) || !isfinite(t->grad_norm)        ? 1
                 : t->explode_above > 0 && t->loss > t->explode_above ? 2
                                                                       : 0;
    if (!t->skipped) {
        float scale = 1;
        if (o->clip > 0) scale = (float)fmin(1.0, o->clip / (t->grad_norm + 1e-6)); /* as torch clip_grad_norm_ */
        if ((rc = trainer_dp_adamw(t, scale))) return rc;
        for (int l = 0; o->bias_gamma > 0 && l < t->L + t->D; l++)
            if (t->P.layers[l].router_bias) router_bias_update(t->P.layers[l].router_bias, t->load + (size_t)l * E, E, o->bias_gamma);
    }
    t->step++;
    return DC_OK;
}

int trainer_step(trainer *t, void (*next_batch)(void *ctx, int *tokens), void *ctx) {
    const int acc = t->o.accum > 0 ? t->o.accum : 1;
    trainer_zero_grad(t);
    for (int a = 0; a < acc; a++) {
        /* every replica draws every micro-batch (the same data order on any
         * rank count) and computes its own */
        next_batch(ctx, t->tok); /* the micro-batch buffer is in the arena: no allocation in a step */
        tbatch b = {t->Bcap, t->Tcap, t->tok, NULL, NULL};
        int rc = trainer_backward(t, &b, a, acc, &t->derr);
        if (rc) return rc;
    }
    return trainer_update(t);
}

/* ---------------------------------------------------------------- the inference view */

int trainer_model(trainer *t, dc_model **out, dc_err *err) {
    *out = NULL;
    if (t->ep) /* this rank holds only its experts; sampling would need the others (moe_ep_follow) */
        return err_set(err, DC_EARG, "train: sampling from an expert-parallel trainer (--ep %d) is not supported",
                       t->dist.ep_size);
    dc_model *m = calloc(1, sizeof *m);
    if (!m) return err_set(err, DC_ENOMEM, "train: out of memory");
    m->cfg = t->cfg;
    m->w = t->P; /* borrowed: the trainer keeps owning the storage */
    m->rope = t->rp;
    m->softmax_scale = config_softmax_scale(&t->cfg);
    *out = m;
    return DC_OK;
}

void trainer_model_free(dc_model *m) { free(m); }

int trainer_sample(trainer *t, const int *prompt, int np, int n, int *out, dc_err *err) {
    dc_model *m = NULL;
    dc_session *s = NULL;
    int rc = trainer_model(t, &m, err);
    if (!rc) rc = dc_session_new_kv(m, np + n, DC_ATTN_ABSORB, DC_KV_F32, &s, err); /* training keeps float32 */
    float *logits = rc ? NULL : malloc(sizeof(float) * t->cfg.vocab_size);
    if (!rc && !logits) rc = err_set(err, DC_ENOMEM, "sample: out of memory");
    if (!rc) rc = dc_forward(s, prompt, np, logits, 1, err);
    for (int i = 0; i < n && !rc; i++) {
        int best = argmax_f32(logits, t->cfg.vocab_size);
        out[i] = best;
        if (i + 1 < n) rc = dc_forward(s, &best, 1, logits, 1, err);
    }
    free(logits);
    dc_session_free(s);
    trainer_model_free(m);
    return rc;
}
