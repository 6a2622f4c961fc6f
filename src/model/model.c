/*
 * model.c — the whole DeepSeek forward pass: embedding, decoder blocks
 * (RMSNorm, MLA, dense SwiGLU or DeepSeekMoE, residuals), final norm and
 * head; the MTP modules (V3 report §2.2); sessions with their KV caches.
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
 */
#include "model/model.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model/norm.h"

/* ---------------------------------------------------------------- model */

int dc_model_load(const char *dir, dc_model **out, dc_err *err) { return model_load(dir, 0, out, err); }

int model_load(const char *dir, int f32, dc_model **out, dc_err *err) {
    *out = NULL;
    dc_model *m = calloc(1, sizeof *m);
    if (!m) return err_set(err, DC_ENOMEM, "model: out of memory");
    int rc = dc_config_load(dir, &m->cfg, err);
    if (!rc) rc = rope_init(&m->rope, &m->cfg, err);
    if (!rc && f32 && path_is_gguf(dir)) rc = weights_load_gguf(&m->cfg, dir, 1, &m->w, err);
    else if (!rc) rc = weights_load(&m->cfg, dir, &m->w, err);
    if (rc) {
        dc_model_free(m);
        return rc;
    }
    m->softmax_scale = config_softmax_scale(&m->cfg);
    *out = m;
    return DC_OK;
}

void dc_model_free(dc_model *m) {
    if (!m) return;
    weights_free(&m->w);
    rope_free(&m->rope);
    free(m);
}

const dc_config *dc_model_config(const dc_model *m) { return &m->cfg; }
size_t dc_model_weight_bytes(const dc_model *m) {
    return m->w.arena_floats * sizeof(float) - m->w.released_bytes + m->w.qarena_bytes + m->w.map.size;
}

/* ---------------------------------------------------------------- session */

static void scratch_free(scratch *s) {
    float **f[] = {&s->x, &s->xn, &s->y, &s->qa, &s->q, &s->kva, &s->kv, &s->att, &s->qabs, &s->lat,
                   &s->scores, &s->h1, &s->h3, &s->rlog, &s->wts, &s->tokw, &s->xe, &s->ye, &s->hidden, &s->cat};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
    free(s->idx);
    free(s->tok);
    free(s->sq);
    s->idx = s->tok = NULL;
    s->sq = NULL;
    s->sq_cap = 0;
    s->cap_T = s->cap_thr = 0;
}

/* scratch_reserve: buffers for T tokens and the current thread count. The
 * activation buffers are reallocated only when T grows (so a pointer from
 * dc_session_hidden stays valid across calls of no more tokens), the
 * per-thread score rows only when the thread count grows. */
static int scratch_reserve(dc_session *ss, int T, dc_err *err) {
    scratch *s = &ss->s;
    int thr = omp_get_max_threads();
    if (thr > s->cap_thr) {
        free(s->scores);
        s->scores = malloc(sizeof(float) * (size_t)thr * ss->max_ctx);
        s->cap_thr = s->scores ? thr : 0;
        if (!s->scores) return err_set(err, DC_ENOMEM, "session: out of memory for attention scores");
    }
    if (T <= s->cap_T) return DC_OK;
    float *scores = s->scores;
    int cap_thr = s->cap_thr;
    s->scores = NULL;
    scratch_free(s);
    s->scores = scores;
    s->cap_thr = cap_thr;
    const dc_config *c = &ss->m->cfg;
    size_t C = c->hidden_size, H = c->num_attention_heads, qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    size_t kvl = c->kv_lora_rank, I = c->intermediate_size, K = c->num_experts_per_tok;
    size_t Is = (size_t)c->moe_intermediate_size * (c->n_shared_experts > 1 ? c->n_shared_experts : 1);
    if (Is > I) I = Is;
    size_t E = c->n_routed_experts ? c->n_routed_experts : 1;
#define A(p, n) ((p) = malloc(sizeof *(p) * ((n) > 0 ? (size_t)(n) : 1)), ok &= (p) != NULL)
    int ok = 1;
    A(s->x, T * C), A(s->xn, T * C), A(s->y, T * C), A(s->qa, T * (c->q_lora_rank + 1));
    A(s->q, T * H * qk), A(s->kva, T * (kvl + c->qk_rope_head_dim));
    A(s->kv, T * H * (c->qk_nope_head_dim + c->v_head_dim)), A(s->att, T * H * c->v_head_dim);
    A(s->qabs, T * H * kvl), A(s->lat, T * H * kvl);
    A(s->h1, T * I), A(s->h3, T * I), A(s->rlog, T * E), A(s->idx, T * K), A(s->wts, T * K);
    A(s->tok, T), A(s->tokw, T), A(s->xe, T * C), A(s->ye, T * C), A(s->hidden, T * C), A(s->cat, T * 2 * C);
#undef A
    if (!ok) {
        scratch_free(s);
        return err_set(err, DC_ENOMEM, "session: out of memory for %d tokens of activations", T);
    }
    s->cap_T = T;
    return DC_OK;
}

int dc_session_new(dc_model *m, int max_ctx, int attn, dc_session **out, dc_err *err) {
    *out = NULL;
    if (max_ctx < 1) return err_set(err, DC_EARG, "session: context size %d must be >= 1", max_ctx);
    if (attn != DC_ATTN_NAIVE && attn != DC_ATTN_ABSORB) return err_set(err, DC_EARG, "session: unknown attention mode %d", attn);
    const dc_config *c = &m->cfg;
    dc_session *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, DC_ENOMEM, "session: out of memory");
    s->m = m;
    s->max_ctx = max_ctx;
    s->attn = attn;
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers;
    size_t H = c->num_attention_heads, qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    size_t per = attn == DC_ATTN_NAIVE ? H * (qk + c->v_head_dim) : (size_t)c->kv_lora_rank + c->qk_rope_head_dim;
    s->kv = calloc(nl, sizeof *s->kv);
    s->kv_mem = malloc(sizeof(float) * per * max_ctx * nl);
    if (!s->kv || !s->kv_mem) {
        dc_session_free(s);
        return err_set(err, DC_ENOMEM, "session: cannot allocate %.1f MB of KV cache for %d positions",
                       sizeof(float) * per * max_ctx * nl / 1e6, max_ctx);
    }
    for (int l = 0; l < nl; l++) {
        float *b = s->kv_mem + per * max_ctx * l;
        if (attn == DC_ATTN_NAIVE) {
            s->kv[l].k = b;
            s->kv[l].v = b + H * qk * max_ctx;
        } else {
            s->kv[l].ckv = b;
            s->kv[l].kpe = b + (size_t)c->kv_lora_rank * max_ctx;
        }
    }
    int rc = scratch_reserve(s, 1, err);
    if (rc) {
        dc_session_free(s);
        return rc;
    }
    *out = s;
    return DC_OK;
}

void dc_session_free(dc_session *s) {
    if (!s) return;
    scratch_free(&s->s);
    free(s->kv);
    free(s->kv_mem);
    free(s);
}

void dc_session_reset(dc_session *s) { s->pos = s->mtp_pos = s->hidden_T = 0; }
int dc_session_pos(const dc_session *s) { return s->pos; }
const float *dc_session_hidden(const dc_session *s) { return s->s.hidden; }

/* ---------------------------------------------------------------- forward */

void block_forward(dc_session *ss, int layer, kv_layer *kv, int pos, int T, float *x) {
    const dc_config *c = &ss->m->cfg;
    const layer_w *lw = &ss->m->w.layers[layer];
    scratch *s = &ss->s;
    const int C = c->hidden_size;
    const size_t n = (size_t)T * C;
    rmsnorm_forward(s->xn, x, lw->attn_norm, T, C, c->rms_norm_eps);
    mla_forward(ss, lw, kv, pos, T, s->xn, s->y);
    for (size_t i = 0; i < n; i++) x[i] += s->y[i];
    rmsnorm_forward(s->xn, x, lw->ffn_norm, T, C, c->rms_norm_eps);
    if (lw->is_moe) moe_forward(ss, lw, T, s->xn, s->y);
    else ffn_forward(s, &lw->gate, &lw->up, &lw->down, T, s->xn, s->y);
    for (size_t i = 0; i < n; i++) x[i] += s->y[i];
}

static int check_ids(const dc_session *s, const int *ids, int n, int pos, dc_err *err) {
    const dc_config *c = &s->m->cfg;
    if (n < 1) return err_set(err, DC_EARG, "forward: no tokens");
    if (pos + n > s->max_ctx)
        return err_set(err, DC_EARG, "forward: %d cached + %d new positions exceed the context of %d", pos, n,
                       s->max_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return err_set(err, DC_EARG, "forward: token id %d at index %d is outside the vocabulary (0..%d)", ids[i],
                           i, c->vocab_size - 1);
    return DC_OK;
}

static void embed_rows(float *x, const float *table, const int *ids, int n, int C) {
    for (int i = 0; i < n; i++) memcpy(x + (size_t)i * C, table + (size_t)ids[i] * C, sizeof(float) * C);
}

/* head: logits (n or 1, V) from normed h (n, C) */
static void head(float *logits, const mat *W, const float *h, int n, int C, int last_only) {
    if (last_only) matmul(logits, h + (size_t)(n - 1) * C, W, 1);
    else matmul(logits, h, W, n);
}

int dc_forward(dc_session *ss, const int *ids, int n, float *logits, int last_only, dc_err *err) {
    const dc_model *m = ss->m;
    const dc_config *c = &m->cfg;
    int rc = check_ids(ss, ids, n, ss->pos, err);
    if (!rc) rc = scratch_reserve(ss, n, err);
    if (rc) return rc;
    const int C = c->hidden_size;
    scratch *s = &ss->s;
    embed_rows(s->x, m->w.embed, ids, n, C);
    for (int l = 0; l < c->num_hidden_layers; l++) block_forward(ss, l, &ss->kv[l], ss->pos, n, s->x);
    rmsnorm_forward(s->hidden, s->x, m->w.norm, n, C, c->rms_norm_eps);
    if (logits) head(logits, &m->w.head, s->hidden, n, C, last_only);
    ss->pos += n;
    ss->hidden_T = n;
    return DC_OK;
}

int dc_forward_mtp(dc_session *ss, const float *hidden, const int *next_ids, int n, float *logits, dc_err *err) {
    const dc_model *m = ss->m;
    const dc_config *c = &m->cfg;
    if (c->num_nextn_predict_layers < 1) return err_set(err, DC_EARG, "forward_mtp: the model has no MTP module");
    int rc = check_ids(ss, next_ids, n, ss->mtp_pos, err);
    if (!rc) rc = scratch_reserve(ss, n, err);
    if (rc) return rc;
    const int C = c->hidden_size, L = c->num_hidden_layers;
    const layer_w *lw = &m->w.layers[L];
    scratch *s = &ss->s;
    /* inputs may alias s->hidden, which the block below overwrites: norm them first */
    embed_rows(s->x, lw->embed, next_ids, n, C);
    rmsnorm_forward(s->x, s->x, lw->enorm, n, C, c->rms_norm_eps);
    for (int t = 0; t < n; t++) {
        memcpy(s->cat + (size_t)t * 2 * C, s->x + (size_t)t * C, sizeof(float) * C);
        rmsnorm_forward(s->cat + (size_t)t * 2 * C + C, hidden + (size_t)t * C, lw->hnorm, 1, C, c->rms_norm_eps);
    }
    matmul(s->x, s->cat, &lw->eh_proj, n); /* (n, C) */
    block_forward(ss, L, &ss->kv[L], ss->mtp_pos, n, s->x);
    rmsnorm_forward(s->xn, s->x, lw->head_norm, n, C, c->rms_norm_eps);
    if (logits) head(logits, &lw->head, s->xn, n, C, 0);
    ss->mtp_pos += n;
    return DC_OK;
}

/* ---------------------------------------------------------------- inference helpers */

int dc_session_truncate(dc_session *s, int pos, dc_err *err) {
    if (pos < 0 || pos > s->pos)
        return err_set(err, DC_EARG, "session_truncate: position %d is outside the %d cached", pos, s->pos);
    s->pos = pos;
    if (s->mtp_pos > pos) s->mtp_pos = pos;
    s->hidden_T = 0;
    return DC_OK;
}

int dc_session_reserve(dc_session *s, int n, dc_err *err) {
    if (n < 1) return err_set(err, DC_EARG, "session_reserve: %d tokens", n);
    return scratch_reserve(s, n, err);
}

int dc_session_max_ctx(const dc_session *s) { return s->max_ctx; }
int dc_session_mtp_pos(const dc_session *s) { return s->mtp_pos; }

int dc_forward_mtp_last(dc_session *ss, const float *hidden, const int *next_ids, int n, float *logits, dc_err *err) {
    int rc = dc_forward_mtp(ss, hidden, next_ids, n, NULL, err);
    if (rc || !logits) return rc;
    const dc_config *c = &ss->m->cfg;
    /* dc_forward_mtp left shared_head.norm of every row in xn */
    matmul(logits, ss->s.xn + (size_t)(n - 1) * c->hidden_size, &ss->m->w.layers[c->num_hidden_layers].head, 1);
    return DC_OK;
}
dc_model *dc_session_model(const dc_session *s) { return s->m; }
