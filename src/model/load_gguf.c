/*
 * load_gguf.c — read a llama.cpp `deepseek2` GGUF into deepc: its metadata
 * into a dc_config, its tensors (any ggml type of kernels/ggml_types.h)
 * into the weights. See gguf_model.h.
 *
 * Storage: a matrix (attention projections, dense / shared / routed
 * experts, eh_proj, heads) stored in a type wtype.h has kernels for (Q8_0,
 * Q4_0, Q4_K, Q6_K, Q5_0, Q5_K, F16, BF16) is kept in that type (its blocks
 * copied into w->qarena, a mat of that type, see kernels/matmul.h) unless the
 * caller asks for float32; so is the split kv_b (attn_k_b, attn_v_b as
 * lw->k_b, lw->v_b, issue 15: the absorbed attention multiplies them as
 * stored; kv_b itself is then absent), and so are the token embeddings in
 * any type gg_dequantize reads (w->embed_type; embed_rows dequantises the
 * rows a batch needs: a q4_0 embedding of mini is 59 MB instead of 419 MB as
 * float32); everything else (F32 and the other quant types of matrices,
 * norms, router, bias, a fused attn_kv_b) is dequantised to float32 into
 * w->arena. Float32 loads (writers) fold k_b and v_b back into kv_b.
 * Copied Q4_0 / Q4_K / Q6_K / Q5_K / Q5_0 / Q4_1 / Q5_1 matrices then get their rows interleaved 8 at
 * a time (MAT_Q4_0X8 ..., wtype.h's mat_type_ilv, kernels/repack.h): the same values and bits, a
 * faster decode kernel (not the kept attn_k_b / attn_v_b: the attention
 * multiplies their heads' rows as views).
 *
 * Config keys (prefix deepseek2.): block_count (main + NextN layers),
 * nextn_predict_layers, leading_dense_block_count, embedding_length,
 * feed_forward_length, expert_feed_forward_length, attention.head_count,
 * attention.q_lora_rank (absent: plain attn_q), attention.kv_lora_rank,
 * attention.key_length_mla / value_length_mla (older files: key_length /
 * value_length), rope.dimension_count, rope.freq_base, rope.scaling.{type,
 * factor, original_context_length, yarn_log_multiplier (= 0.1 *
 * mscale_all_dim), yarn_beta_fast, yarn_beta_slow}, expert_count,
 * expert_used_count, expert_shared_count, expert_group_count,
 * expert_group_used_count, expert_gating_func (1 softmax, 2 sigmoid),
 * expert_weights_norm, expert_weights_scale, attention.layer_norm_rms_epsilon,
 * context_length, vocab_size (else token_embd's rows).
 * Deviation: GGUF keeps only mscale_all_dim; rope_scaling.mscale is taken
 * equal to it (true of every official DeepSeek config), as llama.cpp does.
 * topk_method: noaux_tc when exp_probs_b is present, group_limited_greedy
 * when expert_group_count > 1, else greedy.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/err.h"
#include "base/progress.h"
#include "kernels/ggml_types.h"
#include "base/hugemem.h"
#include "kernels/repack.h"
#include "model/gguf_model.h"

int path_is_gguf(const char *path) {
    size_t n = strlen(path);
    return n > 5 && strcmp(path + n - 5, ".gguf") == 0;
}

// ---------------------------------------------------------------- config

typedef struct kctx {
    const gguf *g;
    dc_err *err;
    int rc;
} kctx;

/* kint: deepseek2.KEY as an integer; required or def when absent */
static int kint(kctx *k, const char *key, int required, int def) {
    char full[128];
    snprintf(full, sizeof full, "deepseek2.%s", key);
    if (k->rc) return def;
    if (!gguf_find(k->g, full)) {
        if (required) k->rc = err_set(k->err, DC_ECONFIG, "%s: missing key %s", k->g->name, full);
        return def;
    }
    int64_t v;
    if ((k->rc = gguf_get_int(k->g, full, &v, k->err))) return def;
    if (v < 0 || v > (1 << 30)) {
        k->rc = err_set(k->err, DC_ECONFIG, "%s: key %s = %lld is out of range", k->g->name, full, (long long)v);
        return def;
    }
    return (int)v;
}

static float kflt(kctx *k, const char *key, float def) {
    char full[128];
    snprintf(full, sizeof full, "deepseek2.%s", key);
    const gguf_kv *kv = gguf_find(k->g, full);
    if (k->rc || !kv) return def;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64 && kv->type != GGUF_U32 && kv->type != GGUF_I32) {
        k->rc = err_set(k->err, DC_ECONFIG, "%s: key %s has type %s, want a number", k->g->name, full,
                        gguf_type_name(kv->type));
        return def;
    }
    double v = gguf_kv_float(kv, 0);
    if (!isfinite(v)) k->rc = err_set(k->err, DC_ECONFIG, "%s: key %s is not finite", k->g->name, full);
    return (float)v;
}

static int str_is(gguf_str s, const char *z) { return s.n == strlen(z) && memcmp(s.s, z, s.n) == 0; }

static void yarn_config(kctx *k, dc_config *c) {
    char full[] = "deepseek2.rope.scaling.type";
    const gguf_kv *kv = gguf_find(k->g, full);
    if (k->rc || !kv) return;
    gguf_str s;
    if ((k->rc = gguf_get_str(k->g, full, &s, k->err))) return;
    if (str_is(s, "none")) return;
    if (!str_is(s, "yarn")) {
        k->rc = err_set(k->err, DC_ECONFIG, "%s: rope scaling %.*s is not supported (yarn only)", k->g->name,
                        (int)s.n, s.s);
        return;
    }
    c->has_yarn = 1;
    c->rope_factor = kflt(k, "rope.scaling.factor", 1);
    c->rope_original_max_position_embeddings = kint(k, "rope.scaling.original_context_length", 1, 4096);
    c->rope_beta_fast = kflt(k, "rope.scaling.yarn_beta_fast", 32);
    c->rope_beta_slow = kflt(k, "rope.scaling.yarn_beta_slow", 1);
    /* yarn_log_multiplier = 0.1 * mscale_all_dim; round through decimal so 0.1f gives 1 */
    double m = kflt(k, "rope.scaling.yarn_log_multiplier", 0) / 0.1;
    c->rope_mscale_all_dim = (float)(round(m * 1e6) / 1e6);
    c->rope_mscale = c->rope_mscale_all_dim;
}

static int vocab_rows(const gguf *g) {
    const gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    return t && t->n_dims == 2 && t->ne[1] < (1 << 30) ? (int)t->ne[1] : 0;
}

static int token_id(const gguf *g, const char *key, int def) {
    int64_t v;
    if (!gguf_find(g, key) || gguf_get_int(g, key, &v, NULL) || v < 0 || v > (1 << 30)) return def;
    return (int)v;
}

int gguf_config(const gguf *g, dc_config *c, dc_err *err) {
    memset(c, 0, sizeof *c);
    gguf_str arch;
    int rc = gguf_get_str(g, "general.architecture", &arch, err);
    if (rc) return rc;
    if (!str_is(arch, "deepseek2"))
        return err_set(err, DC_ECONFIG, "%s: architecture %.*s is not deepseek2", g->name, (int)arch.n, arch.s);
    kctx k = {g, err, DC_OK};
    int blocks = kint(&k, "block_count", 1, 0);
    c->num_nextn_predict_layers = kint(&k, "nextn_predict_layers", 0, 0);
    c->num_hidden_layers = blocks - c->num_nextn_predict_layers;
    c->hidden_size = kint(&k, "embedding_length", 1, 0);
    c->num_attention_heads = kint(&k, "attention.head_count", 1, 0);
    c->q_lora_rank = kint(&k, "attention.q_lora_rank", 0, 0);
    c->kv_lora_rank = kint(&k, "attention.kv_lora_rank", 1, 0);
    c->qk_rope_head_dim = kint(&k, "rope.dimension_count", 1, 0);
    int mla = gguf_find(g, "deepseek2.attention.key_length_mla") != NULL;
    int kl = kint(&k, mla ? "attention.key_length_mla" : "attention.key_length", 1, 0);
    c->qk_nope_head_dim = kl - c->qk_rope_head_dim;
    c->v_head_dim = kint(&k, mla ? "attention.value_length_mla" : "attention.value_length", 1, 0);
    c->n_routed_experts = kint(&k, "expert_count", 0, 0);
    int moe = c->n_routed_experts > 0;
    c->intermediate_size = kint(&k, "feed_forward_length", 0, 0);
    c->moe_intermediate_size = kint(&k, "expert_feed_forward_length", moe, 0);
    c->n_shared_experts = kint(&k, "expert_shared_count", 0, 0);
    c->num_experts_per_tok = kint(&k, "expert_used_count", moe, 0);
    c->first_k_dense_replace = kint(&k, "leading_dense_block_count", 0, 0);
    c->moe_layer_freq = 1;
    c->n_group = kint(&k, "expert_group_count", 0, 1);
    c->topk_group = kint(&k, "expert_group_used_count", 0, 1);
    if (c->n_group < 1) c->n_group = 1;
    if (c->topk_group < 1) c->topk_group = 1;
    int gating = kint(&k, "expert_gating_func", 0, 1);
    c->scoring_func = gating == 2 ? DC_SCORE_SIGMOID : DC_SCORE_SOFTMAX;
    c->norm_topk_prob = kint(&k, "expert_weights_norm", 0, 0);
    c->routed_scaling_factor = kflt(&k, "expert_weights_scale", 1);
    if (c->routed_scaling_factor <= 0) c->routed_scaling_factor = 1;
    c->rms_norm_eps = kflt(&k, "attention.layer_norm_rms_epsilon", 1e-6f);
    c->rope_theta = kflt(&k, "rope.freq_base", 10000);
    c->max_position_embeddings = kint(&k, "context_length", 0, 4096);
    yarn_config(&k, c);
    c->vocab_size = kint(&k, "vocab_size", 0, 0);
    if (k.rc) return k.rc;
    if (!c->vocab_size) c->vocab_size = vocab_rows(g);
    if (!c->vocab_size) {
        const gguf_kv *tk = gguf_find(g, "tokenizer.ggml.tokens");
        if (tk && tk->type == GGUF_ARR && tk->n < (1u << 30)) c->vocab_size = (int)tk->n;
    }
    if (gating != 1 && gating != 2)
        return err_set(err, DC_ECONFIG, "%s: expert_gating_func %d (1 softmax, 2 sigmoid)", g->name, gating);
    char bias[64];
    snprintf(bias, sizeof bias, "blk.%d.exp_probs_b.bias", c->first_k_dense_replace);
    int has_bias = gguf_find_tensor(g, bias) != NULL;
    c->topk_method = has_bias ? DC_TOPK_NOAUX_TC : c->n_group > 1 ? DC_TOPK_GROUP_LIMITED : DC_TOPK_GREEDY;
    c->is_v3 = has_bias || c->scoring_func == DC_SCORE_SIGMOID;
    c->bos_token_id = token_id(g, "tokenizer.ggml.bos_token_id", 0);
    c->eos_token_id = token_id(g, "tokenizer.ggml.eos_token_id", c->vocab_size > 1 ? 1 : 0);
    if (c->bos_token_id >= c->vocab_size) c->bos_token_id = 0;
    if (c->eos_token_id >= c->vocab_size) c->eos_token_id = 0;
    rc = dc_config_check(c, err);
    return rc ? err_prefix(err, "%s", g->name) : DC_OK;
}

int gguf_config_load(const char *path, dc_config *cfg, dc_err *err) {
    gguf g;
    int rc = gguf_open(&g, path, err);
    if (!rc) rc = gguf_read_tensors(&g, err);
    if (!rc) rc = gguf_config(&g, cfg, err);
    gguf_close(&g);
    return rc;
}

// ---------------------------------------------------------------- names

/* HF suffix (after model.layers.N.) -> GGUF suffix (after blk.N.) */
static const char *const NAMES[][2] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_a_proj.weight", "attn_q_a.weight"},
    {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight"},
    {"self_attn.q_b_proj.weight", "attn_q_b.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight"},
    {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight"},
    {"self_attn.kv_b_proj.weight", "attn_kv_b.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias"},
    {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"},
    {"embed_tokens.weight", "nextn.embed_tokens.weight"},
    {"enorm.weight", "nextn.enorm.weight"},
    {"hnorm.weight", "nextn.hnorm.weight"},
    {"eh_proj.weight", "nextn.eh_proj.weight"},
    {"shared_head.norm.weight", "nextn.shared_head_norm.weight"},
    {"shared_head.head.weight", "nextn.shared_head_head.weight"},
};

/* gguf_name: the GGUF name of table entry e; for a routed expert the name of
 * the 3-D tensor holding all experts. 0 when e has no GGUF name. */
int gguf_name(const wt_entry *e, char *out, size_t cap) {
    if (strcmp(e->name, "model.embed_tokens.weight") == 0) return snprintf(out, cap, "token_embd.weight") > 0;
    if (strcmp(e->name, "model.norm.weight") == 0) return snprintf(out, cap, "output_norm.weight") > 0;
    if (strcmp(e->name, "lm_head.weight") == 0) return snprintf(out, cap, "output.weight") > 0;
    int l, pos = 0;
    if (sscanf(e->name, "model.layers.%d.%n", &l, &pos) != 1 || !pos) return 0;
    const char *suf = e->name + pos;
    if (e->expert >= 0) {
        const char *w = strstr(suf, "gate_proj") ? "gate" : strstr(suf, "up_proj") ? "up" : "down";
        return snprintf(out, cap, "blk.%d.ffn_%s_exps.weight", l, w) > 0;
    }
    for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++)
        if (strcmp(suf, NAMES[i][0]) == 0) return snprintf(out, cap, "blk.%d.%s", l, NAMES[i][1]) > 0;
    return 0;
}

// ---------------------------------------------------------------- reading

/* a source: the tensor and where in it entry e starts (expert slice / fused half) */
typedef struct src {
    const gguf_tensor *t;
    size_t off;        /* bytes into t->data */
    int kvb_split;     /* 1: kv_b folded from k_b (t) and v_b (t2), or kept as them */
    const gguf_tensor *t2;
    int kt2;           /* kept split: v_b's MAT_* type (k_b's is the entry's kept type) */
} src;

static int bad_shape(const gguf *g, const gguf_tensor *t, const char *want, dc_err *err) {
    char got[96] = "";
    for (int d = 0; d < t->n_dims; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    return err_set(err, DC_ESHAPE, "%s: tensor %.*s has ne [%s], the config needs [%s]", g->name, (int)t->name.n,
                   t->name.s, got, want);
}

static int dims_are(const gguf_tensor *t, int nd, int64_t a, int64_t b, int64_t c) {
    int64_t w[3] = {a, b, c};
    if (t->n_dims != nd) return 0;
    for (int d = 0; d < nd; d++)
        if (t->ne[d] != w[d]) return 0;
    return 1;
}

static int resolve_expert(const dc_config *c, const gguf *g, const wt_entry *e, const char *name, src *s,
                          dc_err *err) {
    int E = c->n_routed_experts;
    char want[64];
    s->t = gguf_find_tensor(g, name);
    int up = strstr(name, "_up_") != NULL, gate = strstr(name, "_gate_") != NULL;
    if (!s->t && (up || gate)) { /* fused gate_up: ne {C, 2*Im, E}, gate rows first */
        char fused[96];
        snprintf(fused, sizeof fused, "blk.%d.ffn_gate_up_exps.weight", e->layer);
        s->t = gguf_find_tensor(g, fused);
        if (!s->t) return err_set(err, DC_ENOTFOUND, "%s: tensor %s (or %s) is missing", g->name, name, fused);
        snprintf(want, sizeof want, "%d, %d, %d", e->cols, 2 * e->rows, E);
        if (!dims_are(s->t, 3, e->cols, 2 * (int64_t)e->rows, E)) return bad_shape(g, s->t, want, err);
        size_t rb = gg_row_bytes(s->t->type, e->cols);
        s->off = ((size_t)e->expert * 2 + up) * e->rows * rb;
        return DC_OK;
    }
    if (!s->t) return err_set(err, DC_ENOTFOUND, "%s: tensor %s is missing", g->name, name);
    snprintf(want, sizeof want, "%d, %d, %d", e->cols, e->rows, E);
    if (!dims_are(s->t, 3, e->cols, e->rows, E)) return bad_shape(g, s->t, want, err);
    s->off = (size_t)e->expert * e->rows * gg_row_bytes(s->t->type, e->cols);
    return DC_OK;
}

static int resolve_kvb(const dc_config *c, const gguf *g, const wt_entry *e, src *s, dc_err *err) {
    char kb[64], vb[64], want[64];
    int H = c->num_attention_heads, nope = c->qk_nope_head_dim, v = c->v_head_dim, kvl = c->kv_lora_rank;
    snprintf(kb, sizeof kb, "blk.%d.attn_k_b.weight", e->layer);
    snprintf(vb, sizeof vb, "blk.%d.attn_v_b.weight", e->layer);
    s->t = gguf_find_tensor(g, kb);
    s->t2 = gguf_find_tensor(g, vb);
    if (!s->t || !s->t2)
        return err_set(err, DC_ENOTFOUND, "%s: neither blk.%d.attn_kv_b nor both %s and %s are present", g->name,
                       e->layer, kb, vb);
    snprintf(want, sizeof want, "%d, %d, %d", nope, kvl, H);
    if (!dims_are(s->t, 3, nope, kvl, H)) return bad_shape(g, s->t, want, err);
    snprintf(want, sizeof want, "%d, %d, %d", kvl, v, H);
    if (!dims_are(s->t2, 3, kvl, v, H)) return bad_shape(g, s->t2, want, err);
    s->kvb_split = 1;
    return DC_OK;
}

/* resolve: find entry e's source in g; *s->t NULL for an absent alias */
static int resolve(const dc_config *c, const gguf *g, const wt_entry *e, src *s, dc_err *err) {
    char name[128], want[64];
    memset(s, 0, sizeof *s);
    if (!gguf_name(e, name, sizeof name)) return err_set(err, DC_ENOTFOUND, "%s: no GGUF name for %s", g->name, e->name);
    if (e->expert >= 0) return resolve_expert(c, g, e, name, s, err);
    s->t = gguf_find_tensor(g, name);
    if (!s->t && e->kind == WT_BIAS) { /* some writers call it exp_probs_b.weight */
        snprintf(name + strlen(name) - 4, 8, "weight");
        s->t = gguf_find_tensor(g, name);
    }
    if (!s->t && strstr(name, "attn_kv_b")) return resolve_kvb(c, g, e, s, err);
    if (!s->t) return e->alias ? DC_OK : err_set(err, DC_ENOTFOUND, "%s: tensor %s is missing", g->name, name);
    int ok = e->cols ? dims_are(s->t, 2, e->cols, e->rows, 1) : dims_are(s->t, 1, e->rows, 1, 1);
    if (e->cols) snprintf(want, sizeof want, "%d, %d", e->cols, e->rows);
    else snprintf(want, sizeof want, "%d", e->rows);
    return ok ? DC_OK : bad_shape(g, s->t, want, err);
}

/* fold k_b ne{nope, kvl, H} and v_b ne{kvl, v, H} back into kv_b (H*(nope+v), kvl) */
static int fold_kvb(const dc_config *c, const src *s, float *dst) {
    int H = c->num_attention_heads, nope = c->qk_nope_head_dim, v = c->v_head_dim, kvl = c->kv_lora_rank;
    float *kb = malloc(sizeof(float) * (size_t)H * kvl * nope), *vb = malloc(sizeof(float) * (size_t)H * v * kvl);
    if (!kb || !vb) {
        free(kb), free(vb);
        return DC_ENOMEM;
    }
    gg_dequantize(s->t->type, s->t->data, kb, (int64_t)H * kvl * nope);
    gg_dequantize(s->t2->type, s->t2->data, vb, (int64_t)H * v * kvl);
    for (int h = 0; h < H; h++) {
        float *o = dst + (size_t)h * (nope + v) * kvl;
        for (int d = 0; d < nope; d++)
            for (int x = 0; x < kvl; x++) o[(size_t)d * kvl + x] = kb[((size_t)h * kvl + x) * nope + d];
        memcpy(o + (size_t)nope * kvl, vb + (size_t)h * v * kvl, sizeof(float) * v * kvl);
    }
    free(kb), free(vb);
    return DC_OK;
}

static int read_one(const dc_config *c, const src *s, const wt_entry *e, float *dst) {
    if (s->kvb_split) return fold_kvb(c, s, dst);
    gg_dequantize(s->t->type, s->t->data + s->off, dst, (int64_t)wt_numel(e));
    return DC_OK;
}

/* read_all: resolve every entry, then dequantise in parallel */
static int read_all(const dc_config *c, const gguf *g, const wt_entry *e, int n, src *s, dc_err *err) {
    for (int i = 0; i < n; i++) {
        int rc = resolve(c, g, &e[i], &s[i], err);
        if (rc) return rc;
    }
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : bad)
    for (int i = 0; i < n; i++)
        if (s[i].t) bad |= read_one(c, &s[i], &e[i], *e[i].dst) != DC_OK;
    return bad ? err_set(err, DC_ENOMEM, "%s: out of memory while reading tensors", g->name) : DC_OK;
}

int gguf_read_entry(const dc_config *c, const gguf *g, const wt_entry *e, float *dst, int *present, dc_err *err) {
    src s;
    int rc = resolve(c, g, e, &s, err);
    *present = !rc && s.t;
    if (rc || !s.t || !dst) return rc;
    if (read_one(c, &s, e, dst)) return err_set(err, DC_ENOMEM, "%s: out of memory while reading %s", g->name, e->name);
    if (s.kvb_split) {
        mfile_release(&g->f, s.t->data, s.t->nbytes);
        mfile_release(&g->f, s.t2->data, s.t2->nbytes);
    } else mfile_release(&g->f, s.t->data + s.off, gg_row_bytes(s.t->type, e->cols ? e->cols : e->rows) *
                                                      (size_t)(e->cols ? e->rows : 1));
    return DC_OK;
}

int gguf_read_entries(const dc_config *c, const gguf *g, const wt_entry *e, int n, dc_err *err) {
    src *s = calloc(n ? n : 1, sizeof *s);
    if (!s) return err_set(err, DC_ENOMEM, "%s: out of memory", g->name);
    int rc = read_all(c, g, e, n, s, err);
    free(s);
    return rc;
}

#define ALIGN_FLOATS 16

/* KEPT_RAW: an embedding kept in its stored ggml type (s->t->type), read a
 * row at a time by embed_rows (embed_head.h), not a mat */
#define KEPT_RAW MAT_NTYPES

/* mat_kept: the MAT_* a tensor of (rows, cols) keeps as stored, or MAT_F32
 * when there are no kernels for its type or its rows are not whole blocks */
static int mat_kept(const gguf_tensor *t, int rows, int cols) {
    int k = mat_type_from_gg(t->type);
    if (k <= MAT_F32 || mat_type_bytes(k, rows, cols) != gg_row_bytes(t->type, cols) * rows) return MAT_F32;
    return k;
}

/* the layer a kv_b entry belongs to (its mat is that layer's kv_b) */
static layer_w *kvb_layer(const wt_entry *e) { return (layer_w *)(void *)((char *)e->m - offsetof(layer_w, kv_b)); }

/* split_dims: k_b as (H*kvl, nope) and v_b as (H*v, kvl) mats (weights.h) */
static void split_dims(const dc_config *c, mat *kb, mat *vb) {
    int H = c->num_attention_heads, kvl = c->kv_lora_rank;
    *kb = (mat){NULL, MAT_F32, H * kvl, c->qk_nope_head_dim};
    *vb = (mat){NULL, MAT_F32, H * c->v_head_dim, kvl};
}

/* kept_split: a split kv_b kept as stored: k_b's MAT_* type (v_b's into
 * s->kt2), or MAT_F32 when either piece is folded to float32 instead */
static int kept_split(const dc_config *c, src *s) {
    mat kb, vb;
    split_dims(c, &kb, &vb);
    int a = mat_kept(s->t, kb.rows, kb.cols), b = mat_kept(s->t2, vb.rows, vb.cols);
    if (a == MAT_F32 || b == MAT_F32) return MAT_F32;
    s->kt2 = b;
    return a;
}

/* kept_type: the MAT_* entry e keeps from source s (as stored), KEPT_RAW for
 * an embedding kept as stored, or MAT_F32 when it is dequantised */
static int kept_type(const dc_config *c, const wt_entry *e, src *s) {
    if (s->t && !s->kvb_split && e->gtype && s->t->type != GG_F32 && gg_can_dequantize(s->t->type) &&
        gg_row_bytes(s->t->type, e->cols))
        return KEPT_RAW;
    if (s->t && s->kvb_split) return kept_split(c, s);
    if (!s->t || !e->m || strstr(e->name, "kv_b_proj")) return MAT_F32; /* a fused kv_b: float32 */
    return mat_kept(s->t, e->rows, e->cols);
}

/* stored_bytes: the bytes of a kept entry as its source stores them (both
 * pieces of a kept split kv_b: their sizes are those of kv_b's numbers) */
static size_t stored_bytes(const wt_entry *e, const src *s) {
    if (s->kvb_split) return s->t->nbytes + s->t2->nbytes;
    return gg_row_bytes(s->t->type, e->cols) * e->rows;
}

/* src_bytes: the bytes entry e reads from its source (vectors too) */
static size_t src_bytes(const wt_entry *e, const src *s) {
    return e->cols ? stored_bytes(e, s) : gg_row_bytes(s->t->type, e->rows);
}

static size_t f32_floats(const wt_entry *e) { return (wt_numel(e) + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }
static size_t q_bytes(const wt_entry *e, const src *s) {
    if (s->kvb_split) return ((s->t->nbytes + 63) & ~(size_t)63) + ((s->t2->nbytes + 63) & ~(size_t)63);
    return (stored_bytes(e, s) + 63) & ~(size_t)63;
}

/* point_split: a kept split kv_b's k_b and v_b at p (in qarena: one after the
 * other, 64-byte aligned) or in the file's mapping when borrowed */
static void point_split(const dc_config *c, const wt_entry *e, const src *s, int kt, char *p, int borrow) {
    layer_w *lw = kvb_layer(e);
    split_dims(c, &lw->k_b, &lw->v_b);
    lw->k_b.type = kt, lw->v_b.type = s->kt2;
    lw->k_b.data = (float *)(void *)(borrow ? s->t->data : (uint8_t *)p);
    lw->v_b.data = (float *)(void *)(borrow ? s->t2->data : (uint8_t *)p + ((s->t->nbytes + 63) & ~(size_t)63));
    *e->dst = NULL; /* kv_b itself is absent (mla.c widens the pieces when it needs it) */
}

/* borrow_blocks: whether kept matrices are read straight from the file's
 * mapping instead of copied. Copying keeps decode weights resident (an idle
 * mapping is paged out here, BENCHMARKS.md); borrowing lets a model larger
 * than memory run (slowly). DEEPC_MMAP=1 forces it, DEEPC_MMAP=0 forbids it;
 * by default it is chosen when the kept bytes exceed 3/4 of physical memory. */
static int borrow_blocks(size_t bytes) {
    const char *env = getenv("DEEPC_MMAP");
    if (env && *env) return strcmp(env, "0") != 0;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 && (double)bytes > 0.75 * (double)pages * (double)psz;
}

/* copy_split: a kept split kv_b's two pieces to where point_split put them */
static void copy_split(const mfile *f, const wt_entry *e, const src *s) {
    const layer_w *lw = kvb_layer(e);
    mfile_copy_out(f, lw->k_b.data, s->t->data, s->t->nbytes);
    mfile_copy_out(f, lw->v_b.data, s->t2->data, s->t2->nbytes);
}

/* place: allocate the arenas and point every present entry into one (kept
 * matrices into qarena, or, when borrowed, into the file's mapping) */
static int place(const dc_config *c, model_w *w, const wt_entry *e, int n, const src *s, const int *kt,
                 const char *path, int borrow, dc_err *err) {
    size_t floats = 0, bytes = 0, kbytes[MAT_NTYPES] = {0};
    for (int i = 0; i < n; i++) {
        if (!s[i].t) continue;
        if (kt[i] == MAT_F32) floats += f32_floats(&e[i]);
        else if (kt[i] == KEPT_RAW) bytes += q_bytes(&e[i], &s[i]);
        else if (s[i].kvb_split) {
            bytes += q_bytes(&e[i], &s[i]);
            kbytes[kt[i]] += s[i].t->nbytes, kbytes[s[i].kt2] += s[i].t2->nbytes;
        } else bytes += q_bytes(&e[i], &s[i]), kbytes[kt[i]] += q_bytes(&e[i], &s[i]);
    }
    w->arena = huge_alloc(floats * sizeof(float) + 64);
    w->arena_floats = floats;
    if (bytes && !borrow) w->qarena = huge_alloc(bytes + 64), w->qarena_bytes = bytes; /* streamed by decode */
    if (!w->arena || (bytes && !borrow && !w->qarena))
        return err_set(err, DC_ENOMEM, "%s: cannot allocate %.2f GB for the weights", path, (floats * 4 + bytes) * 1e-9);
    size_t off = 0, qoff = 0;
    for (int i = 0; i < n; i++) {
        if (!s[i].t) continue;
        if (kt[i] == MAT_F32) {
            *e[i].dst = w->arena + off;
            off += f32_floats(&e[i]);
            continue;
        }
        char *p = (char *)w->qarena + qoff;
        qoff += q_bytes(&e[i], &s[i]);
        if (s[i].kvb_split) {
            point_split(c, &e[i], &s[i], kt[i], p, borrow);
            continue;
        }
        *e[i].dst = borrow ? (float *)(void *)(s[i].t->data + s[i].off) : (float *)(void *)p;
        if (kt[i] == KEPT_RAW) *e[i].gtype = s[i].t->type;
        else e[i].m->type = kt[i];
    }
    /* the model's type: the kept type holding the most bytes */
    w->dtype = MAT_F32;
    for (int t = 1; t < MAT_NTYPES; t++)
        if (kbytes[t] > kbytes[w->dtype]) w->dtype = t;
    w->kept = 0; /* matrices kept as stored (an embedding kept alone does not count: see model_dtype.c) */
    for (int t = 1; t < MAT_NTYPES; t++) w->kept |= kbytes[t] > 0;
    return DC_OK;
}

/* split_nonfinite: the first NaN / infinity of a kept split kv_b, counting
 * k_b's values then v_b's; -1 when none */
static int64_t split_nonfinite(const wt_entry *e, const src *s) {
    const layer_w *lw = kvb_layer(e);
    int64_t nk = (int64_t)lw->k_b.rows * lw->k_b.cols, nv = (int64_t)lw->v_b.rows * lw->v_b.cols;
    int64_t k = gg_first_nonfinite(s->t->type, lw->k_b.data, nk);
    if (k >= 0) return k;
    k = gg_first_nonfinite(s->t2->type, lw->v_b.data, nv);
    return k < 0 ? -1 : nk + k;
}

/* check_finite: every loaded value must be a number (issue 14): the f32
 * entries as read, the kept ones through their blocks (a NaN or infinite
 * block scale). Borrowed blocks are not scanned: that would page the whole
 * file in, which is what borrowing avoids. The first bad entry is named. */
static int check_finite(const wt_entry *e, int n, const src *s, const int *kt, int borrow, const char *path,
                        dc_err *err) {
    int first = n;
    int64_t at = -1;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
        if (!s[i].t || (kt[i] != MAT_F32 && borrow)) continue;
        int64_t k;
        if (kt[i] == MAT_F32) k = f32_first_nonfinite(*e[i].dst, (int64_t)wt_numel(&e[i]));
        else if (s[i].kvb_split) k = split_nonfinite(e + i, s + i);
        else k = gg_first_nonfinite(s[i].t->type, *e[i].dst, (int64_t)wt_numel(&e[i]));
        if (k < 0) continue;
#pragma omp critical
        if (i < first) first = i, at = k;
    }
    if (first == n) return DC_OK;
    const src *b = &s[first];
    const gguf_tensor *bt = b->t;
    const char *alt = b->kvb_split ? " (or attn_v_b)" : ""; /* folded: an element of kv_b */
    if (b->kvb_split && kt[first] != MAT_F32) { /* kept: the piece itself */
        const layer_w *lw = kvb_layer(&e[first]);
        int64_t nk = (int64_t)lw->k_b.rows * lw->k_b.cols;
        if (at >= nk) bt = b->t2, at -= nk;
        alt = "";
    }
    return err_set(err, DC_EFORMAT, "%s: tensor %.*s%s holds NaN or infinity at element %lld of %s: the file is corrupt",
                   path, (int)bt->name.n, bt->name.s, alt, (long long)at, e[first].name);
}

/* repack_piece: a kept k_b or v_b of a type with an interleaved layout (mat_type_ilv) interleaved
 * when each head's rows (per, which mla.c views as a matrix of their own)
 * are whole groups of 8: then no group straddles two heads and a head's rows
 * start at the byte they start at in the plain layout (issue 15: V2-Lite's
 * per-head products, 512 x 128 and 128 x 512, ran the plain Q4_0 kernel at
 * half its speed; a Q4_K_M file's Q4_K attn_v_b the plain Q4_K one) */
static void repack_piece(mat *W, int per) {
    if (per % 8) return;
    W->type = mat_repack(W->data, W->type, W->rows, W->cols);
}

/* repack: the matrices copied into qarena whose type has an interleaved layout get their rows
 * interleaved 8 at a time (kernels/repack.h, issue 15: the decode kernels
 * then keep one row per vector lane; the same bytes, the same values, the
 * same bits as the plain kernels). Borrowed blocks stay as stored (read-only
 * mapping); so does a matrix whose 8-row scratch cannot be allocated.
 * Aliases take the type after this. */
static void repack(const dc_config *c, const wt_entry *e, int n, const src *s, const int *kt) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
        if (s[i].t && s[i].kvb_split) { /* kept k_b / v_b: viewed per head */
            layer_w *lw = kvb_layer(&e[i]);
            repack_piece(&lw->k_b, c->kv_lora_rank), repack_piece(&lw->v_b, c->v_head_dim);
            continue;
        }
        if (!s[i].t || !e[i].m || !e[i].cols) continue;
        if (mat_type_ilv(kt[i]) != kt[i]) e[i].m->type = mat_repack(*e[i].dst, kt[i], e[i].rows, e[i].cols);
    }
}

int weights_load_gguf(const dc_config *c, const char *path, int f32, model_w *w, dc_err *err) {
    wt_entry *e = NULL;
    int n = 0, *kt = NULL;
    src *s = NULL;
    gguf g;
    int rc = gguf_open(&g, path, err);
    if (!rc) rc = gguf_read_tensors(&g, err);
    int ex0 = w->ex0, ex1 = w->ex1; /* weights_table clears w */
    if (!rc) rc = weights_table(c, w, &e, &n, err);
    if (!rc) n = weights_keep_experts(e, n, ex0, ex1), w->ex0 = ex0, w->ex1 = ex1;
    if (!rc && (!(s = calloc(n ? n : 1, sizeof *s)) || !(kt = calloc(n ? n : 1, sizeof *kt))))
        rc = err_set(err, DC_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < n && !rc; i++) {
        rc = resolve(c, &g, &e[i], &s[i], err);
        kt[i] = f32 ? MAT_F32 : kept_type(c, &e[i], &s[i]);
    }
    size_t kept_bytes = 0;
    for (int i = 0; i < n && !rc; i++)
        if (s[i].t && kt[i] != MAT_F32) kept_bytes += stored_bytes(&e[i], &s[i]);
    int borrow = !rc && kept_bytes && borrow_blocks(kept_bytes);
    if (!rc) rc = place(c, w, e, n, s, kt, path, borrow, err);
    int bad = 0, ndone = 0;
    libprog pg;
    libprog_start(&pg, "load", n);
#pragma omp parallel for schedule(dynamic, 1) reduction(| : bad) if (!rc)
    for (int i = 0; i < n; i++) {
        if (rc || !s[i].t) continue;
        if (kt[i] == MAT_F32) bad |= read_one(c, &s[i], &e[i], *e[i].dst) != DC_OK;
        else if (!borrow && s[i].kvb_split) copy_split(&g.f, &e[i], &s[i]);
        else if (!borrow) mfile_copy_out(&g.f, *e[i].dst, s[i].t->data + s[i].off, stored_bytes(&e[i], &s[i]));
        if (!borrow && !s[i].kvb_split) mfile_release(&g.f, s[i].t->data + s[i].off, src_bytes(&e[i], &s[i]));
        int d;
#pragma omp atomic capture
        d = ++ndone;
        if (omp_get_thread_num() == 0) libprog_add(&pg, d - pg.done); /* the calling thread reports */
    }
    if (!rc && !bad) libprog_end(&pg);
    if (!rc && borrow) { /* the model keeps the mapping its matrices point into */
        w->map = g.f;
        memset(&g.f, 0, sizeof g.f);
    }
    if (!rc && bad) rc = err_set(err, DC_ENOMEM, "%s: out of memory while reading tensors", path);
    if (!rc) rc = check_finite(e, n, s, kt, borrow, path, err);
    if (!rc && !borrow) repack(c, e, n, s, kt);
    /* aliases point at the main tensor they share (and take its type) */
    for (int i = 0; i < n && !rc; i++) {
        if (s[i].t) continue;
        for (int j = 0; j < n; j++)
            if (strcmp(e[j].name, e[i].alias) == 0) {
                *e[i].dst = *e[j].dst;
                if (e[i].m && e[j].m) e[i].m->type = e[j].m->type;
                if (e[i].gtype && e[j].gtype) *e[i].gtype = *e[j].gtype;
            }
    }
    free(kt);
    free(s);
    free(e);
    gguf_close(&g);
    if (rc) weights_free(w);
    return rc;
}

// ---------------------------------------------------------------- rebasing a table onto loaded weights

/* rebase: p points into the fresh table's weights t (the struct or a layer);
 * the same place in w. Experts live in separate arrays: model_entries maps them. */
static void *rebase(const model_w *t, model_w *w, void *p) {
    char *q = p;
    if (q >= (const char *)t && q < (const char *)(t + 1)) return (char *)w + (q - (const char *)t);
    for (int l = 0; l < t->nlayers; l++) {
        const layer_w *a = &t->layers[l];
        if (q >= (const char *)a && q < (const char *)(a + 1)) return (char *)&w->layers[l] + (q - (const char *)a);
    }
    return NULL;
}

int model_entries(const dc_config *c, model_w *w, wt_entry **out, int *n, dc_err *err) {
    model_w t;
    int rc = weights_table(c, &t, out, n, err);
    if (rc) return rc;
    int E = c->n_routed_experts;
    for (int i = 0; i < *n && !rc; i++) {
        wt_entry *e = &(*out)[i];
        void *nd = NULL, *nm = NULL;
        if (e->expert >= 0) {
            layer_w *a = &t.layers[e->layer], *b = &w->layers[e->layer];
            mat *src = e->m;
            mat *bm = src >= a->exp_gate && src < a->exp_gate + E ? b->exp_gate + (src - a->exp_gate)
                      : src >= a->exp_up && src < a->exp_up + E  ? b->exp_up + (src - a->exp_up)
                                                                 : b->exp_down + (src - a->exp_down);
            nm = bm;
            nd = &bm->data;
        } else {
            nd = rebase(&t, w, e->dst);
            nm = e->m ? rebase(&t, w, e->m) : NULL;
        }
        if (!nd) rc = err_set(err, DC_EARG, "model_entries: cannot place %s", e->name);
        e->dst = nd;
        e->m = nm;
        if (e->gtype) e->gtype = rebase(&t, w, e->gtype);
    }
    weights_free(&t);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}
