/*
 * model.c — the whole DeepSeek forward pass: embedding, decoder blocks
 * (RMSNorm, MLA, dense SwiGLU or DeepSeekMoE, residuals), final norm; the
 * MTP modules (V3 report §2.2).
 *
 *   x = embed(ids)                                   (T, C)
 *   per block: x += mla(norm(x)); x += ffn_or_moe(norm(x))
 *   hidden = norm(x); logits = hidden @ lm_head^T    (T, V)
 *
 * MTP module k = layer L+k, depth 1 (the one the official V3 weights have):
 *   h'_i = eh_proj([enorm(embed(t_{i+1})); hnorm(hidden_i)])
 *   logits_i = shared_head.head(shared_head.norm(block(h')_i)), predicting t_{i+2}
 * with hidden_i the main model's final-normed state, as vLLM and SGLang load
 * the official MTP weights. The MTP block has its own cache and positions.
 *
 * The forward runs a batch of tokens from any number of sequences
 * (tok_batch); the caches it reads and writes are views into the engine's
 * paged store (src/infer/engine.c), which owns sequences and sessions.
 */
#include "model/model.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "model/config.h"
#include "model/embed_head.h"
#include "model/gguf_model.h"
#include "model/moe_ep.h"
#include "model/norm.h"

/* ---------------------------------------------------------------- model */

int dc_model_load(const char *dir, dc_model **out, dc_err *err) { return model_load(dir, 0, out, err); }

static int load(const char *dir, int f32, const dist *d, dc_model **out, dc_err *err) {
    *out = NULL;
    dc_model *m = calloc(1, sizeof *m);
    if (!m) return err_set(err, DC_ENOMEM, "model: out of memory");
    int rc = dc_config_load(dir, &m->cfg, err);
    if (!rc && d && d->ep_size > 1) {
        m->ep = calloc(1, sizeof *m->ep);
        if (!m->ep) rc = err_set(err, DC_ENOMEM, "model: out of memory");
        else rc = moe_ep_init(m->ep, d, m->cfg.n_routed_experts, 0, 0, 0, err);
        if (!rc) m->w.ex0 = m->ep->e0, m->w.ex1 = m->ep->e0 + m->ep->El;
    }
    if (!rc) rc = rope_init(&m->rope, &m->cfg, err);
    if (!rc) rc = weights_load(&m->cfg, dir, !f32, &m->w, err);
    if (rc) {
        dc_model_free(m);
        return rc;
    }
    m->softmax_scale = config_softmax_scale(&m->cfg);
    *out = m;
    return DC_OK;
}

int model_load(const char *dir, int f32, dc_model **out, dc_err *err) { return load(dir, f32, NULL, out, err); }

int model_load_ep(const char *dir, const dist *d, dc_model **out, dc_err *err) { return load(dir, 0, d, out, err); }

void dc_model_free(dc_model *m) {
    if (!m) return;
    if (m->ep) {
        moe_ep_stop(m->ep);
        moe_ep_free(m->ep);
        free(m->ep);
    }
    weights_free(&m->w);
    rope_free(&m->rope);
    free(m);
}

const dc_config *dc_model_config(const dc_model *m) { return &m->cfg; }
size_t dc_model_weight_bytes(const dc_model *m) {
    return m->w.arena_floats * sizeof(float) + m->w.karena_bytes - m->w.released_bytes + m->w.qarena_bytes +
           m->w.kvb_bytes + m->w.map.size;
}

/* ---------------------------------------------------------------- scratch */

int kv_row_floats(const dc_config *c, int attn) {
    if (attn == DC_ATTN_NAIVE)
        return c->num_attention_heads * (c->qk_nope_head_dim + c->qk_rope_head_dim + c->v_head_dim);
    return c->kv_lora_rank + c->qk_rope_head_dim;
}

void scratch_free(scratch *s) {
    float **f[] = {&s->x, &s->xn, &s->y, &s->qa, &s->q, &s->kva, &s->kv, &s->att, &s->qabs, &s->lat, &s->scores,
                   &s->h1, &s->h3, &s->rlog, &s->wts, &s->tokw, &s->xe, &s->ye, &s->hidden, &s->cat, &s->sq, &s->ex, &s->kvw};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
    free(s->idx);
    free(s->tok);
    free(s->att_t);
    s->idx = s->tok = s->att_t = NULL;
    s->sq_cap = s->ex_cap = s->kvw_cap = 0;
    s->cap_T = s->cap_thr = s->max_len = 0;
}

/* alloc_line: bytes (at least one) on a 64-byte boundary, NULL on OOM;
 * scratch_alloc: n floats so.
 * Every activation buffer starts on a cache line so that the kernels' 512-bit
 * loads of x (rows of a multiple of 16 floats) never straddle two: malloc's
 * 16-byte alignment made each zmm load of x two, and the f16 matvec kernel at
 * 8 tokens ran at 94 GFLOP/s against 163 with x aligned (an expert's 512 x
 * 1024, one Zen 5 thread, the same kernel). */
static void *alloc_line(size_t bytes) { return aligned_alloc(64, ((bytes ? bytes : 1) + 63) & ~(size_t)63); }
static float *scratch_alloc(size_t n) { return alloc_line(sizeof(float) * n); }

int scratch_grow(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return 1;
    float *nb = scratch_alloc(n);
    if (!nb) return 0;
    if (*buf) memcpy(nb, *buf, sizeof(float) * *cap);
    free(*buf);
    *buf = nb, *cap = n;
    return 1;
}

/* the per-token buffers, freed and allocated anew for T tokens */
static int scratch_tokens(scratch *s, const dc_config *c, int T) {
    float **keep[] = {&s->scores, &s->sq, &s->ex, &s->kvw};
    float *kept[4];
    for (int i = 0; i < 4; i++) kept[i] = *keep[i], *keep[i] = NULL;
    size_t sq_cap = s->sq_cap, ex_cap = s->ex_cap, kvw_cap = s->kvw_cap;
    int cap_thr = s->cap_thr, max_len = s->max_len;
    scratch_free(s);
    for (int i = 0; i < 4; i++) *keep[i] = kept[i];
    s->sq_cap = sq_cap, s->ex_cap = ex_cap, s->kvw_cap = kvw_cap, s->cap_thr = cap_thr, s->max_len = max_len;
    size_t C = c->hidden_size, H = c->num_attention_heads, qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    size_t kvl = c->kv_lora_rank, I = c->intermediate_size, K = c->num_experts_per_tok;
    size_t Is = (size_t)c->moe_intermediate_size * (c->n_shared_experts > 1 ? c->n_shared_experts : 1);
    if (Is > I) I = Is;
    size_t E = c->n_routed_experts ? c->n_routed_experts : 1;
#define A(p, n) ((p) = alloc_line(sizeof *(p) * ((n) > 0 ? (size_t)(n) : 1)), ok &= (p) != NULL)
    int ok = 1;
    A(s->x, T * C), A(s->xn, T * C), A(s->y, T * C), A(s->qa, T * (c->q_lora_rank + 1));
    A(s->q, T * H * qk), A(s->kva, T * (kvl + c->qk_rope_head_dim));
    A(s->kv, T * H * (c->qk_nope_head_dim + c->v_head_dim)), A(s->att, T * H * c->v_head_dim);
    A(s->qabs, T * H * kvl), A(s->lat, T * H * kvl);
    A(s->h1, T * I), A(s->h3, T * I), A(s->rlog, T * E), A(s->idx, T * K), A(s->wts, T * K);
    A(s->tok, T), A(s->att_t, T), A(s->tokw, T), A(s->xe, T * C), A(s->ye, T * C), A(s->hidden, T * C), A(s->cat, T * 2 * C);
#undef A
    if (!ok) return 0;
    s->cap_T = T;
    return 1;
}

int scratch_reserve(scratch *s, const dc_config *c, int T, int max_len, dc_err *err) {
    int thr = omp_get_max_threads();
    if (thr > s->cap_thr || max_len > s->max_len) {
        int nt = thr > s->cap_thr ? thr : s->cap_thr, nl = max_len > s->max_len ? max_len : s->max_len;
        free(s->scores);
        s->scores = scratch_alloc((size_t)nt * scratch_score_floats(c, nl));
        s->cap_thr = s->scores ? nt : 0;
        s->max_len = s->scores ? nl : 0;
        if (!s->scores) return err_set(err, DC_ENOMEM, "forward: out of memory for attention scores");
    }
    if (T <= s->cap_T) return DC_OK;
    if (!scratch_tokens(s, c, T)) {
        scratch_free(s);
        return err_set(err, DC_ENOMEM, "forward: out of memory for %d tokens of activations", T);
    }
    return DC_OK;
}

/* ---------------------------------------------------------------- forward */

/* the view of one layer's rows in every page */
static kv_view layer_view(const kv_view *kv, int layer) {
    kv_view v = *kv;
    v.layer_off = (size_t)layer * kv->page_tokens * kv->row;
    return v;
}

void block_forward(const dc_model *m, scratch *s, const kv_view *kv, const tok_batch *b, int layer, float *x) {
    const dc_config *c = &m->cfg;
    const layer_w *lw = &m->w.layers[layer];
    const int C = c->hidden_size, T = b->T;
    const size_t n = (size_t)T * C;
    kv_view lv = layer_view(kv, layer);
    rmsnorm_forward(s->xn, x, lw->attn_norm, T, C, c->rms_norm_eps);
    mla_forward(m, s, lw, &lv, b, s->xn, s->y);
    for (size_t i = 0; i < n; i++) x[i] += s->y[i];
    rmsnorm_forward(s->xn, x, lw->ffn_norm, T, C, c->rms_norm_eps);
    if (lw->is_moe && m->ep) moe_ep_forward(m->ep, c, s, lw, layer, T, s->xn, s->y);
    else if (lw->is_moe) moe_forward(c, s, lw, T, s->xn, s->y);
    else ffn_forward(s, &lw->gate, &lw->up, &lw->down, T, s->xn, s->y);
    for (size_t i = 0; i < n; i++) x[i] += s->y[i];
}

#ifndef DC_ONE_OFF
#define DC_ONE_OFF 0
#endif
int model_one_off = DC_ONE_OFF;
long model_one_runs;

/* one_ok: whether blocks [l0, l1) can run b in one region (one token, an
 * absorbed cache, no expert ranks, every FFN and MoE of a kind that can) */
static int one_ok(const dc_model *m, const kv_view *kv, const tok_batch *b, int l0, int l1) {
    if (model_one_off || b->T != 1 || m->ep || kv->attn == DC_ATTN_NAIVE) return 0;
    for (int l = l0; l < l1; l++) {
        const layer_w *lw = &m->w.layers[l];
        if (lw->is_moe ? !moe_one_fits(&m->cfg, lw) : !ffn_one_fits(&lw->gate, &lw->up)) return 0;
    }
    return 1;
}

/* blocks_one: block_forward of blocks [l0, l1) for one token in ONE parallel
 * region (model.h: *_one_team): per block, thread 0's norm, the attention's
 * phases, thread 0's residual and norm, the FFN's or MoE's phases, thread
 * 0's residual; a team_sync after each sublayer. 1 when done; 0 when a
 * phase could not get memory (the caller runs the blocks the usual way: the
 * residual stream starts again from the embedding and the cache rows written
 * are written again with the same values). */
static int blocks_one(const dc_model *m, scratch *s, const kv_view *kv, const tok_batch *b, int l0, int l1, float *x) {
    const dc_config *c = &m->cfg;
    const int C = c->hidden_size;
    const float eps = c->rms_norm_eps;
    one_share sh;
    team_bar bar;
    team_bar_init(&bar);
    int done = 1;
#pragma omp parallel
    {
        team t = team_of(&bar);
        for (int l = l0; l < l1; l++) {
            const layer_w *lw = &m->w.layers[l];
            kv_view lv = layer_view(kv, l);
            if (t.i == 0) rmsnorm_forward(s->xn, x, lw->attn_norm, 1, C, eps);
            int r = mla_one_team(&t, &sh, m, s, lw, &lv, b, s->xn, s->y);
            team_sync(&t);
            if (r && t.i == 0) {
                for (int k = 0; k < C; k++) x[k] += s->y[k];
                rmsnorm_forward(s->xn, x, lw->ffn_norm, 1, C, eps);
            }
            if (r) r = lw->is_moe ? moe_one_team(&t, &sh, c, s, lw, s->xn, s->y)
                                  : ffn_one_team(&t, &sh, s, &lw->gate, &lw->up, &lw->down, s->xn, s->y);
            team_sync(&t);
            if (!r) { /* every thread alike */
                if (t.i == 0) done = 0;
                break;
            }
            if (t.i == 0)
                for (int k = 0; k < C; k++) x[k] += s->y[k];
        }
    }
    if (done) __atomic_add_fetch(&model_one_runs, 1, __ATOMIC_RELAXED);
    return done;
}

void model_forward(const dc_model *m, scratch *s, const kv_view *kv, const tok_batch *b, const int *ids) {
    const dc_config *c = &m->cfg;
    const int C = c->hidden_size, L = c->num_hidden_layers;
    s->experts_run = 0;
    embed_rows(s->x, m->w.embed, m->w.embed_type, ids, b->T, C);
    if (!one_ok(m, kv, b, 0, L) || !blocks_one(m, s, kv, b, 0, L, s->x)) {
        s->experts_run = 0;
        embed_rows(s->x, m->w.embed, m->w.embed_type, ids, b->T, C);
        for (int l = 0; l < L; l++) block_forward(m, s, kv, b, l, s->x);
    }
    rmsnorm_forward(s->hidden, s->x, m->w.norm, b->T, C, c->rms_norm_eps);
}

void model_mtp_forward(const dc_model *m, scratch *s, const kv_view *kv, const tok_batch *b, const int *next_ids,
                       const float *hidden) {
    const dc_config *c = &m->cfg;
    const int C = c->hidden_size, L = c->num_hidden_layers, n = b->T;
    const layer_w *lw = &m->w.layers[L];
    /* hidden may alias s->hidden, which nothing below writes; the norms go to cat first */
    embed_rows(s->x, lw->embed, lw->embed_type, next_ids, n, C);
    mtp_input(s->x, s->cat, NULL, NULL, s->x, hidden, lw->enorm, lw->hnorm, &lw->eh_proj, n, C, c->rms_norm_eps);
    const int one = one_ok(m, kv, b, L, L + 1);
    if (!one || !blocks_one(m, s, kv, b, L, L + 1, s->x)) {
        if (one) { /* blocks_one gave up part-way: the block's input again */
            embed_rows(s->x, lw->embed, lw->embed_type, next_ids, n, C);
            mtp_input(s->x, s->cat, NULL, NULL, s->x, hidden, lw->enorm, lw->hnorm, &lw->eh_proj, n, C, c->rms_norm_eps);
        }
        block_forward(m, s, kv, b, L, s->x);
    }
    rmsnorm_forward(s->xn, s->x, lw->head_norm, n, C, c->rms_norm_eps);
}
