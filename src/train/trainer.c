/*
 * trainer.c — see trainer.h. The whole model's training forward and backward,
 * AdamW and the bias update. Shapes: N = B*T rows, C hidden, V vocab.
 */
#include "train/trainer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "model/config.h"
#include "model/model.h"
#include "model/norm.h"

void train_opts_default(train_opts *o) {
    *o = (train_opts){.B = 8, .T = 256, .accum = 1, .lr = 3e-3f, .min_lr = 3e-4f, .warmup = 20, .steps = 200,
                      .sched = SCHED_COSINE, .wsd_decay = 0.2f, .wd = 0.1f, .clip = 1.0f, .beta1 = 0.9f,
                      .beta2 = 0.95f, .eps = 1e-8f, .mtp_lambda = 0.3f, .aux_alpha = 1e-4f, .bias_gamma = 1e-3f};
}

/* ---------------------------------------------------------------- layout */

/* point: non-alias table entries get consecutive 64-byte aligned slots from
 * base; aliases (the MTP copies of embedding and head) share the main tensor */
static size_t point(wt_entry *e, int n, float *base) {
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
        a->ffn = (ffn_act){BUMP(b, N * I, real), BUMP(b, N * I, real), BUMP(b, N * I, real)};
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
    /* the pointer structs own only their layer arrays, not the storage */
    t->P.arena = t->G.arena = NULL;
    weights_free(&t->P);
    weights_free(&t->G);
    rope_free(&t->rp);
    memset(t, 0, sizeof *t);
}

static uint64_t name_hash(uint64_t seed, const char *s) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

int trainer_init(trainer *t, const dc_config *cfg, const train_opts *o, const char *init_dir, uint64_t seed,
                 dc_err *err) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->cfg.fp8_block_m = t->cfg.fp8_block_n = 0;
    t->o = *o;
    t->B = o->B, t->T = o->T, t->N = o->B * o->T;
    t->L = cfg->num_hidden_layers, t->D = cfg->num_nextn_predict_layers;
    int rc = dc_config_check(&t->cfg, err);
    if (!rc) rc = rope_init(&t->rp, &t->cfg, err);
    if (rc) return rc;
    if ((rc = weights_table(&t->cfg, &t->P, &t->tab, &t->ntab, err))) goto fail;
    wt_entry *gt;
    int ng;
    if ((rc = weights_table(&t->cfg, &t->G, &gt, &ng, err))) goto fail;
    t->n = point(t->tab, t->ntab, NULL);
    t->arena = aligned_alloc(64, (4 * t->n * sizeof(float) + 63) / 64 * 64);
    if (!t->arena) {
        free(gt);
        rc = err_set(err, DC_ENOMEM, "train: cannot allocate %.1f MB for parameters, gradients and moments",
                     4.0 * t->n * 4 / 1e6);
        goto fail;
    }
    memset(t->arena, 0, 4 * t->n * sizeof(float));
    point(t->tab, t->ntab, t->arena);
    point(gt, ng, t->arena + t->n);
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
    moe_dims_init(&t->ed, &t->cfg, o->aux_alpha / (o->accum > 0 ? o->accum : 1));
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
    for (size_t i = 0; i < (size_t)N * C; i++) a->x_mid[i] += a->x_in[i];
    rmsnorm_train_fwd(a->xn2, a->rstd2, a->x_mid, lp->ffn_norm, N, C, eps);
    if (lp->is_moe) {
        moe_train_fwd(x_out, &a->moe, &v->moe, &t->ed, a->xn2, t->B, t->T);
        int E = t->cfg.n_routed_experts;
        for (int e = 0; e < E; e++) t->load[(size_t)l * E + e] += a->moe.cnt[e];
    } else {
        swiglu_train_fwd(x_out, &a->ffn, &v->ffn, a->xn2, N, C, t->cfg.intermediate_size);
    }
    for (size_t i = 0; i < (size_t)N * C; i++) x_out[i] += a->x_mid[i];
}

/* block_bwd: dx holds d(block output) on entry and d(block input) on return */
static void block_bwd(trainer *t, int l, block_act *a, real *dx) {
    const int N = t->N, C = t->cfg.hidden_size;
    const layer_w *lp = &t->P.layers[l], *lg = &t->G.layers[l];
    real *dxn = t->dxn;
    memset(dxn, 0, sizeof(real) * (size_t)N * C);
    if (lp->is_moe)
        moe_bwd(dxn, &t->tg[l].moe, dx, a->xn2, &a->moe, &t->tp[l].moe, &t->ed, t->B, t->T, t->scratch);
    else
        swiglu_bwd(dxn, &t->tg[l].ffn, dx, a->xn2, &a->ffn, &t->tp[l].ffn, N, C, t->cfg.intermediate_size,
                   t->scratch);
    rmsnorm_bwd(dx, lg->ffn_norm, dxn, a->x_mid, a->rstd2, lp->ffn_norm, N, C); /* x_out = x_mid + ffn(norm(x_mid)) */
    memset(dxn, 0, sizeof(real) * (size_t)N * C);
    mla_bwd(dxn, &t->tg[l].mla, dx, a->xn1, &a->mla, &t->tp[l].mla, &t->md, t->B, t->T, t->scratch);
    rmsnorm_bwd(dx, lg->attn_norm, dxn, a->x_in, a->rstd1, lp->attn_norm, N, C); /* x_mid = x_in + mla(norm(x_in)) */
}

/* ce_head: logits = h @ head^T; returns sum_t mask_t * CE_t; with grad, the
 * head's gradient goes straight into dhead and dh (the head is the last op,
 * so its backward needs nothing later) */
static double ce_head(trainer *t, const real *h, const real *mask, const int *target, real *dh, int grad) {
    const int N = t->N, C = t->cfg.hidden_size, V = t->cfg.vocab_size;
    real *lg = t->logits;
    linear_fwd(lg, h, t->P.head.data, N, C, V);
    double *rowloss = t->rowloss; /* summed in order below: the loss does not depend on the threads */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        real *z = lg + (size_t)i * V;
        rowloss[i] = 0;
        if (mask[i] == 0) {
            for (int v = 0; v < V; v++) z[v] = 0;
            continue;
        }
        real mx = z[0];
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double sum = 0;
        for (int v = 0; v < V; v++) sum += rexp(z[v] - mx);
        double lse = mx + log(sum);
        rowloss[i] = mask[i] * (lse - z[target[i]]);
        if (grad) {
            real lf = (real)lse;
            for (int v = 0; v < V; v++) z[v] = rexp(z[v] - lf) * mask[i];
            z[target[i]] -= mask[i];
        }
    }
    if (grad) linear_bwd(dh, t->G.head.data, lg, h, t->P.head.data, N, C, V);
    double total = 0;
    for (int i = 0; i < N; i++) total += rowloss[i];
    return total;
}

static void embed_rows(real *x, const real *E, const int *ids, int N, int C) {
    for (int i = 0; i < N; i++) memcpy(x + (size_t)i * C, E + (size_t)ids[i] * C, sizeof(real) * C);
}

static void embed_bwd(real *dE, const real *dx, const int *ids, int N, int C) {
    for (int i = 0; i < N; i++) {
        real *d = dE + (size_t)ids[i] * C;
        const real *s = dx + (size_t)i * C;
        for (int c = 0; c < C; c++) d[c] += s[c];
    }
}

void trainer_forward(trainer *t, const int *tokens, int grad) {
    const int B = t->B, T = t->T, N = t->N, C = t->cfg.hidden_size, L = t->L, D = t->D;
    const float eps = t->cfg.rms_norm_eps, acc = (float)(t->o.accum > 0 ? t->o.accum : 1);
    int *inputs = t->inputs, *targets = t->targets;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++) inputs[b * T + i] = tokens[b * (T + 1) + i], targets[b * T + i] = tokens[b * (T + 1) + i + 1];
    /* main model */
    embed_rows(t->ba[0].x_in, t->P.embed, inputs, N, C);
    for (int l = 0; l < L; l++) block_fwd(t, l, &t->ba[l], l + 1 < L ? t->ba[l + 1].x_in : t->x_out);
    rmsnorm_train_fwd(t->xf, t->rstd_f, t->x_out, t->P.norm, N, C, eps);
    for (int i = 0; i < N; i++) t->mask[i] = (real)(1.0 / N / acc);
    memset(t->dxf, 0, sizeof(real) * (size_t)N * C);
    t->loss = ce_head(t, t->xf, t->mask, targets, t->dxf, grad) * acc;
    /* MTP modules: depth k reads tok[b][min(i+k, T)] and predicts tok[b][i+k+1] */
    t->mtp_loss = 0;
    const real *hprev = t->xf;
    for (int k = 1; k <= D; k++) {
        mtp_act *m = &t->ma[k - 1];
        const layer_w *lp = &t->P.layers[L + k - 1];
        int *mt = t->mt, valid = B * (T - k > 0 ? T - k : 0);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                int j = i + k < T ? i + k : T, n = b * T + i;
                m->tok[n] = tokens[b * (T + 1) + j];
                mt[n] = i + k + 1 <= T ? tokens[b * (T + 1) + i + k + 1] : 0;
                m->mask[n] = i + k + 1 <= T && valid ? (real)(t->o.mtp_lambda / D / valid / acc) : 0;
            }
        embed_rows(m->e, t->P.embed, m->tok, N, C);
        for (int n = 0; n < N; n++) {
            rmsnorm_train_fwd(m->cat + (size_t)n * 2 * C, m->e_rstd + n, m->e + (size_t)n * C, lp->enorm, 1, C, eps);
            rmsnorm_train_fwd(m->cat + (size_t)n * 2 * C + C, m->h_rstd + n, hprev + (size_t)n * C, lp->hnorm, 1, C, eps);
        }
        linear_fwd(m->blk.x_in, m->cat, lp->eh_proj.data, N, 2 * C, C);
        block_fwd(t, L + k - 1, &m->blk, m->out);
        rmsnorm_train_fwd(m->outn, m->out_rstd, m->out, lp->head_norm, N, C, eps);
        memset(m->doutn, 0, sizeof(real) * (size_t)N * C);
        double lk = ce_head(t, m->outn, m->mask, mt, m->doutn, grad);
        t->mtp_loss += valid ? lk * acc / t->o.mtp_lambda : 0;
        hprev = m->out;
    }
    t->aux_loss = 0;
    for (int l = 0; l < L + D; l++)
        if (t->P.layers[l].is_moe) t->aux_loss += (l < L ? t->ba[l].moe.aux : t->ma[l - L].blk.moe.aux) * acc;
    if (!grad) return;
    /* backward: MTP modules last to first, then the main model */
    for (int k = D; k >= 1; k--) {
        mtp_act *m = &t->ma[k - 1];
        const layer_w *lp = &t->P.layers[L + k - 1], *lg = &t->G.layers[L + k - 1];
        real *dout = t->dx;
        if (k < D) memcpy(dout, m->dout, sizeof(real) * (size_t)N * C);
        else memset(dout, 0, sizeof(real) * (size_t)N * C);
        rmsnorm_bwd(dout, lg->head_norm, m->doutn, m->out, m->out_rstd, lp->head_norm, N, C);
        block_bwd(t, L + k - 1, &m->blk, dout);
        real *dcat = t->scratch;
        memset(dcat, 0, sizeof(real) * (size_t)N * 2 * C);
        linear_bwd(dcat, lg->eh_proj.data, dout, m->cat, lp->eh_proj.data, N, 2 * C, C);
        real *dhprev = k > 1 ? t->ma[k - 2].dout : t->dxf;
        const real *hp = k > 1 ? t->ma[k - 2].out : t->xf;
        if (k > 1) memset(dhprev, 0, sizeof(real) * (size_t)N * C);
        real *de = t->dxn;
        memset(de, 0, sizeof(real) * (size_t)N * C);
        for (int n = 0; n < N; n++) {
            rmsnorm_bwd(de + (size_t)n * C, lg->enorm, dcat + (size_t)n * 2 * C, m->e + (size_t)n * C, m->e_rstd + n,
                        lp->enorm, 1, C);
            rmsnorm_bwd(dhprev + (size_t)n * C, lg->hnorm, dcat + (size_t)n * 2 * C + C, hp + (size_t)n * C,
                        m->h_rstd + n, lp->hnorm, 1, C);
        }
        embed_bwd(t->G.embed, de, m->tok, N, C);
    }
    real *dx = t->dx;
    memset(dx, 0, sizeof(real) * (size_t)N * C);
    rmsnorm_bwd(dx, t->G.norm, t->dxf, t->x_out, t->rstd_f, t->P.norm, N, C);
    for (int l = L - 1; l >= 0; l--) block_bwd(t, l, &t->ba[l], dx);
    embed_bwd(t->G.embed, dx, inputs, N, C);
}

/* ---------------------------------------------------------------- optimiser */

float trainer_lr(const train_opts *o, int64_t s) {
    if (s < o->warmup) return o->lr * (float)(s + 1) / (float)o->warmup;
    if (o->sched == SCHED_CONST || o->steps <= o->warmup) return o->lr;
    double p = (double)(s - o->warmup) / (double)(o->steps - o->warmup);
    if (p > 1) p = 1;
    if (o->sched == SCHED_COSINE) return (float)(o->min_lr + 0.5 * (o->lr - o->min_lr) * (1 + cos(M_PI * p)));
    /* WSD: stable at the peak, then linear decay over the last wsd_decay of the steps */
    double start = 1.0 - o->wsd_decay;
    if (p <= start) return o->lr;
    return (float)(o->lr + (o->min_lr - o->lr) * (p - start) / o->wsd_decay);
}

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

/* sum of squares of n floats in fixed chunks, added in order: the same bits
 * for the same thread count and data */
static double sumsq(const float *g, size_t n) {
    size_t CH = n / 4096 + 1; /* at most ~4096 chunks: part[] stays small on the stack */
    if (CH < (1 << 16)) CH = 1 << 16;
    size_t nc = (n + CH - 1) / CH;
    double part[nc ? nc : 1];
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nc; c++) {
        double s = 0;
        for (size_t i = c * CH; i < n && i < (c + 1) * CH; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    return s;
}

int trainer_step(trainer *t, void (*next_batch)(void *ctx, int *tokens), void *ctx) {
    const train_opts *o = &t->o;
    const int acc = o->accum > 0 ? o->accum : 1, L = t->L, D = t->D, E = t->cfg.n_routed_experts;
    float *grads = t->arena + t->n, *m = t->arena + 2 * t->n, *v = t->arena + 3 * t->n;
    memset(grads, 0, sizeof(float) * t->n);
    memset(t->load, 0, sizeof(int) * (size_t)(L + D) * (E ? E : 1));
    double loss = 0, mtp = 0, aux = 0;
    for (int a = 0; a < acc; a++) {
        next_batch(ctx, t->tok); /* the micro-batch buffer is in the arena: no allocation in a step */
        trainer_forward(t, t->tok, 1);
        loss += t->loss / acc, mtp += t->mtp_loss / acc, aux += t->aux_loss / acc;
    }
    t->loss = loss, t->mtp_loss = mtp, t->aux_loss = aux;
    t->grad_norm = sqrt(sumsq(grads, t->n));
    t->lr_now = trainer_lr(o, t->step);
    t->skipped = !isfinite(loss) || !isfinite(t->grad_norm) ? 1 : t->explode_above > 0 && loss > t->explode_above ? 2 : 0;
    if (t->skipped) {
        t->step++;
        return DC_OK;
    }
    float scale = 1;
    if (o->clip > 0) scale = (float)fmin(1.0, o->clip / (t->grad_norm + 1e-6)); /* as torch clip_grad_norm_ */
    /* AdamW (Loshchilov & Hutter), as torch.optim.AdamW: decay first, then the Adam step */
    const int64_t st = t->step + 1;
    const double bc1 = 1 - pow(o->beta1, (double)st), bc2 = 1 - pow(o->beta2, (double)st);
    const float lr = t->lr_now, step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (e->alias || e->kind == WT_BIAS) continue;
        size_t off = (size_t)(*e->dst - t->arena), n = wt_numel(e);
        float *p = t->arena + off, *g = grads + off, *mm = m + off, *vv = v + off;
        float decay = e->kind == WT_NORM ? 1.0f : 1.0f - lr * o->wd;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t j = 0; j < n; j++) {
            float gj = g[j] * scale;
            mm[j] = o->beta1 * mm[j] + (1 - o->beta1) * gj;
            vv[j] = o->beta2 * vv[j] + (1 - o->beta2) * gj * gj;
            p[j] = p[j] * decay - step_size * mm[j] / (sqrtf(vv[j]) / bc2s + o->eps);
        }
    }
    /* aux-loss-free balancing (V3 §2.1.2): b_i += gamma * sign(mean load - load_i) */
    if (o->bias_gamma > 0)
        for (int l = 0; l < L + D; l++) {
            float *bias = t->P.layers[l].router_bias;
            if (!bias) continue;
            const int *ld = t->load + (size_t)l * E;
            double mean = 0;
            for (int e = 0; e < E; e++) mean += ld[e];
            mean /= E;
            for (int e = 0; e < E; e++) bias[e] += o->bias_gamma * (float)((mean > ld[e]) - (mean < ld[e]));
        }
    t->step++;
    return DC_OK;
}

/* ---------------------------------------------------------------- sampling */

int trainer_sample(trainer *t, const int *prompt, int np, int n, int *out, dc_err *err) {
    dc_model m;
    memset(&m, 0, sizeof m);
    m.cfg = t->cfg;
    m.w = t->P; /* borrowed: the trainer keeps owning the storage */
    m.rope = t->rp;
    m.softmax_scale = config_softmax_scale(&t->cfg);
    dc_session *s;
    int rc = dc_session_new(&m, np + n, DC_ATTN_ABSORB, &s, err);
    if (rc) return rc;
    float *logits = malloc(sizeof(float) * t->cfg.vocab_size);
    if (!logits) {
        dc_session_free(s);
        return err_set(err, DC_ENOMEM, "sample: out of memory");
    }
    rc = dc_forward(s, prompt, np, logits, 1, err);
    for (int i = 0; i < n && !rc; i++) {
        int best = argmax_f32(logits, t->cfg.vocab_size);
        out[i] = best;
        if (i + 1 < n) rc = dc_forward(s, &best, 1, logits, 1, err);
    }
    free(logits);
    dc_session_free(s);
    return rc;
}
