/*
 * save_gguf.c — write a loaded DeepSeek model as a llama.cpp `deepseek2`
 * GGUF: the metadata convert_hf_to_gguf.py writes (DeepseekV2Model, with
 * head_count_kv 1 and the MLA key/value lengths), the tokenizer as
 * tokenizer.ggml.* (gpt2 byte-level BPE), the tensors named as in
 * llama-arch.cpp with kv_b split into k_b (transposed) and v_b, the routed
 * experts stacked into one 3-D tensor per projection, and the MTP modules
 * as blocks L.. with nextn.* tensors (deepseek2.nextn_predict_layers says
 * how many; llama.cpp's own converter drops them for V3).
 *
 * Types: norms, the selection bias and the router (ffn_gate_inp) are f32,
 * as llama.cpp keeps them; every other matrix takes the asked type, or
 * falls back when its row (ne[0]) is not a whole number of blocks: K-quants
 * to q8_0, then anything to f16 (llama.cpp's quantize falls back the same
 * way for such tensors), said on the log.
 */
#include <omp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
#include "io/gguf_write.h"
#include "kernels/ggml_types.h"
#include "model/gguf_model.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"

// ---------------------------------------------------------------- metadata

static uint32_t file_type(int t) { return (uint32_t)gg_file_type(t); }

static void put_config(gguf_writer *w, const dc_config *c, const gguf_save_opts *o) {
#define K(s) "deepseek2." s
    gw_str(w, "general.architecture", "deepseek2");
    gw_str(w, "general.name", o->name ? o->name : "deepc");
    gw_u32(w, "general.file_type", o->mix ? quant_mix_file_type(o->mix) : file_type(o->type));
    gw_u32(w, "general.quantization_version", 2);
    gw_u32(w, K("vocab_size"), (uint32_t)c->vocab_size);
    gw_u32(w, K("context_length"), (uint32_t)c->max_position_embeddings);
    gw_u32(w, K("embedding_length"), (uint32_t)c->hidden_size);
    gw_u32(w, K("feed_forward_length"), (uint32_t)c->intermediate_size);
    gw_u32(w, K("block_count"), (uint32_t)(c->num_hidden_layers + c->num_nextn_predict_layers));
    if (c->num_nextn_predict_layers) gw_u32(w, K("nextn_predict_layers"), (uint32_t)c->num_nextn_predict_layers);
    gw_u32(w, K("attention.head_count"), (uint32_t)c->num_attention_heads);
    gw_u32(w, K("attention.head_count_kv"), 1);
    gw_f32(w, K("rope.freq_base"), c->rope_theta);
    gw_f32(w, K("attention.layer_norm_rms_epsilon"), c->rms_norm_eps);
    gw_u32(w, K("leading_dense_block_count"), (uint32_t)c->first_k_dense_replace);
    if (c->q_lora_rank) gw_u32(w, K("attention.q_lora_rank"), (uint32_t)c->q_lora_rank);
    gw_u32(w, K("attention.kv_lora_rank"), (uint32_t)c->kv_lora_rank);
    gw_u32(w, K("attention.key_length"), (uint32_t)(c->kv_lora_rank + c->qk_rope_head_dim));
    gw_u32(w, K("attention.value_length"), (uint32_t)c->kv_lora_rank);
    gw_u32(w, K("attention.key_length_mla"), (uint32_t)(c->qk_nope_head_dim + c->qk_rope_head_dim));
    gw_u32(w, K("attention.value_length_mla"), (uint32_t)c->v_head_dim);
    if (c->n_routed_experts) {
        gw_u32(w, K("expert_used_count"), (uint32_t)c->num_experts_per_tok);
        gw_u32(w, K("expert_feed_forward_length"), (uint32_t)c->moe_intermediate_size);
        gw_u32(w, K("expert_count"), (uint32_t)c->n_routed_experts);
        gw_u32(w, K("expert_shared_count"), (uint32_t)c->n_shared_experts);
        gw_f32(w, K("expert_weights_scale"), c->routed_scaling_factor);
        gw_bool(w, K("expert_weights_norm"), c->norm_topk_prob);
        gw_u32(w, K("expert_gating_func"), c->scoring_func == DC_SCORE_SIGMOID ? 2 : 1);
        gw_u32(w, K("expert_group_count"), (uint32_t)c->n_group);
        gw_u32(w, K("expert_group_used_count"), (uint32_t)c->topk_group);
    }
    gw_u32(w, K("rope.dimension_count"), (uint32_t)c->qk_rope_head_dim);
    if (c->has_yarn) {
        gw_str(w, K("rope.scaling.type"), "yarn");
        gw_f32(w, K("rope.scaling.factor"), c->rope_factor);
        gw_u32(w, K("rope.scaling.original_context_length"), (uint32_t)c->rope_original_max_position_embeddings);
        gw_f32(w, K("rope.scaling.yarn_log_multiplier"), 0.1f * c->rope_mscale_all_dim);
        gw_f32(w, K("rope.scaling.yarn_beta_fast"), c->rope_beta_fast);
        gw_f32(w, K("rope.scaling.yarn_beta_slow"), c->rope_beta_slow);
    }
#undef K
}

/* put_tokenizer: tokens in byte-level form (added tokens literal), types
 * (1 normal, 3 control, 4 user-defined, 5 unused for holes and padding up
 * to vocab_size), merges in rank order, BOS/EOS, the chat template. */
static int put_tokenizer(gguf_writer *w, const dc_config *c, const gguf_save_opts *o, dc_err *err) {
    const dc_tokenizer *t = o->tok;
    const vocab *v = &t->v;
    int n = v->n > c->vocab_size ? v->n : c->vocab_size;
    char **s = calloc(n, sizeof *s);
    int32_t *ty = calloc(n, sizeof *ty);
    char **m = calloc(v->nmerges ? v->nmerges : 1, sizeof *m);
    int rc = s && ty && m ? DC_OK : err_set(err, DC_ENOMEM, "gguf: out of memory for the tokenizer");
    for (int i = 0; i < n && !rc; i++) {
        int attr = i < v->n ? v->attr[i] : TOK_NONE;
        size_t len = 0;
        const uint8_t *b = i < v->n ? vocab_bytes(v, i, &len) : NULL;
        s[i] = malloc(attr == TOK_NORMAL ? 2 * len + 1 : len + 32);
        if (!s[i]) { rc = err_set(err, DC_ENOMEM, "gguf: out of memory for the tokenizer"); break; }
        if (attr == TOK_NONE) snprintf(s[i], 32, "[PAD%d]", i), ty[i] = 5;
        else if (attr == TOK_NORMAL) s[i][bytelevel_encode(b, len, s[i])] = 0, ty[i] = 1;
        else memcpy(s[i], b, len), s[i][len] = 0, ty[i] = attr == TOK_SPECIAL ? 3 : 4;
    }
    for (uint64_t k = 0; k < v->merges.cap && !rc; k++) {
        uint64_t key = v->merges.keys[k], val = v->merges.vals[k];
        if (key == ~0ull) continue;
        int a = (int)(key >> 32), bb = (int)(uint32_t)key, rank = (int)(val >> 32);
        if (rank < 0 || rank >= v->nmerges || m[rank]) continue;
        size_t la, lb;
        const uint8_t *pa = vocab_bytes(v, a, &la), *pb = vocab_bytes(v, bb, &lb);
        m[rank] = malloc(2 * (la + lb) + 2);
        if (!m[rank]) { rc = err_set(err, DC_ENOMEM, "gguf: out of memory for the merges"); break; }
        size_t k1 = bytelevel_encode(pa, la, m[rank]);
        m[rank][k1] = ' ';
        m[rank][k1 + 1 + bytelevel_encode(pb, lb, m[rank] + k1 + 1)] = 0;
    }
    if (!rc) {
        int nm = 0;
        for (int i = 0; i < v->nmerges; i++)
            if (m[i]) m[nm++] = m[i];
        gw_str(w, "tokenizer.ggml.model", "gpt2");
        gw_str(w, "tokenizer.ggml.pre", t->pre.name[0] ? t->pre.name : "deepseek-v3");
        gw_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)s, NULL, (uint64_t)n);
        gw_arr_i32(w, "tokenizer.ggml.token_type", ty, (uint64_t)n);
        gw_arr_str(w, "tokenizer.ggml.merges", (const char *const *)m, NULL, (uint64_t)nm);
        gw_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(t->bos >= 0 ? t->bos : c->bos_token_id));
        gw_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(t->eos >= 0 ? t->eos : c->eos_token_id));
        gw_bool(w, "tokenizer.ggml.add_bos_token", 1);
        gw_bool(w, "tokenizer.ggml.add_eos_token", 0);
        if (o->chat_template) gw_str(w, "tokenizer.chat_template", o->chat_template);
    }
    for (int i = 0; s && i < n; i++) free(s[i]);
    for (int i = 0; m && i < v->nmerges; i++) free(m[i]);
    free(s), free(ty), free(m);
    return rc;
}

// ---------------------------------------------------------------- tensors

/* one output tensor: entry i (and, for experts, the E entries i + 3x; for
 * kv_b, part 1 = k_b, part 2 = v_b) */
typedef struct otensor {
    int entry, experts, part;
    int type;
    int64_t ne[3];
    int n_dims;
} otensor;

static int pick_type(int want, int64_t ne0, const char *name, const gguf_save_opts *o) {
    int t = want;
    if (t == GG_IQ4_XS && ne0 % QK_K && ne0 % QK4_NL == 0) t = GG_IQ4_NL; /* as llama-quantize does */
    if (gg_blck(t) > 1 && ne0 % gg_blck(t) && gg_blck(t) == 256) t = GG_Q8_0;
    if (gg_blck(t) > 1 && ne0 % gg_blck(t)) t = GG_F16;
    if (t != want) {
        if (o->stats) o->stats->n_fallback++;
        if (o->log) {
            char line[256];
            snprintf(line, sizeof line, "%s: rows of %lld do not fit %s blocks; stored as %s", name, (long long)ne0,
                     gg_type_name(want), gg_type_name(t));
            o->log(o->log_ctx, line);
        }
    }
    return t;
}

/* count one tensor of type t and bytes into the stats */
static void stats_add(dc_convert_stats *st, int t, uint64_t bytes) {
    if (!st) return;
    st->n_tensors++;
    const char *nm = gg_type_name(t);
    int i = 0;
    while (i < st->n_types && strcmp(st->types[i].type, nm) != 0) i++;
    if (i == st->n_types) {
        if (i == (int)(sizeof st->types / sizeof *st->types)) return;
        snprintf(st->types[i].type, sizeof st->types[i].type, "%s", nm);
        st->n_types++;
    }
    st->types[i].count++;
    st->types[i].bytes += bytes;
}

/* an alias entry sharing its main tensor's storage (a loaded model's absent
 * MTP copy); a streamed table has no storage and no such entries */
static int is_alias_copy(const wt_entry *e, int n, int i) {
    if (!e[i].alias || !*e[i].dst) return 0;
    for (int j = 0; j < n; j++)
        if (strcmp(e[j].name, e[i].alias) == 0) return *e[j].dst == *e[i].dst;
    return 0;
}

/* plan: the output tensors in file order, their names and types */
static int plan(const dc_config *c, const wt_entry *e, int n, const gguf_save_opts *o, gguf_writer *w,
                otensor *ot, int *not_, dc_err *err) {
    int k = 0, rc = DC_OK;
    for (int i = 0; i < n && !rc; i++) {
        const wt_entry *x = &e[i];
        if (x->expert > 0 || is_alias_copy(e, n, i)) continue;
        char name[128];
        if (!gguf_name(x, name, sizeof name)) return err_set(err, DC_EARG, "gguf: no GGUF name for %s", x->name);
        int mat = x->cols && x->kind != WT_ROUTER;
        int parts = strstr(name, "attn_kv_b") ? 2 : 1;
        for (int p = 1; p <= parts && !rc; p++) {
            otensor *t = &ot[k++];
            memset(t, 0, sizeof *t);
            t->entry = i, t->experts = x->expert == 0 ? c->n_routed_experts : 0, t->part = parts == 2 ? p : 0;
            if (t->part) {
                int H = c->num_attention_heads, kvl = c->kv_lora_rank;
                snprintf(strstr(name, "attn_"), 32, p == 1 ? "attn_k_b.weight" : "attn_v_b.weight");
                t->n_dims = 3;
                t->ne[0] = p == 1 ? c->qk_nope_head_dim : kvl;
                t->ne[1] = p == 1 ? kvl : c->v_head_dim;
                t->ne[2] = H;
            } else {
                t->n_dims = t->experts ? 3 : x->cols ? 2 : 1;
                t->ne[0] = x->cols ? x->cols : x->rows;
                t->ne[1] = x->cols ? x->rows : 1;
                t->ne[2] = t->experts ? t->experts : 1;
            }
            int want = o->mix ? quant_mix_type(o->mix, name, x->layer, c->num_hidden_layers) : o->type;
            t->type = mat ? pick_type(want, t->ne[0], name, o) : GG_F32;
            stats_add(o->stats, t->type, gg_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2]));
            rc = gw_tensor_add(w, name, t->type, t->n_dims, t->ne, err);
        }
    }
    *not_ = k;
    return rc;
}

/* rows of float32 (rows, cols) into dst in type, rows in parallel */
static void quant_rows(int type, const float *src, int64_t rows, int64_t cols, uint8_t *dst) {
    size_t rb = gg_row_bytes(type, cols);
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) gg_quantize(type, src + r * cols, dst + r * rb, cols);
}

/* k_b (H, kvl, nope) or v_b (H, v, kvl) out of kv_b (H*(nope+v), kvl) */
static void split_kvb(const dc_config *c, const float *kvb, int part, float *out) {
    int H = c->num_attention_heads, nope = c->qk_nope_head_dim, v = c->v_head_dim, kvl = c->kv_lora_rank;
    for (int h = 0; h < H; h++) {
        const float *hb = kvb + (size_t)h * (nope + v) * kvl;
        if (part == 1)
            for (int x = 0; x < kvl; x++)
                for (int d = 0; d < nope; d++) out[((size_t)h * kvl + x) * nope + d] = hb[(size_t)d * kvl + x];
        else memcpy(out + (size_t)h * v * kvl, hb + (size_t)nope * kvl, sizeof(float) * v * kvl);
    }
}

/* values: entry y as float32: read into in by o->read, or a loaded model's storage */
static int values(const gguf_save_opts *o, const wt_entry *y, float *in, const float **out, dc_err *err) {
    *out = o->read ? in : *y->dst;
    return o->read ? o->read(o->read_ctx, y, in, err) : DC_OK;
}

static int write_tensor(const dc_config *c, const wt_entry *e, const otensor *t, const gguf_save_opts *o,
                        gguf_writer *w, dc_err *err) {
    const wt_entry *x = &e[t->entry];
    int64_t rows = t->ne[1] * (t->part ? t->ne[2] : 1), cols = t->ne[0];
    size_t rb = gg_row_bytes(t->type, cols);
    uint8_t *buf = malloc(rb * (size_t)rows + 1);
    float *tmp = t->part ? malloc(sizeof(float) * rows * cols) : NULL;
    float *in = o->read ? malloc(sizeof(float) * wt_numel(x)) : NULL; /* one expert's, or kv_b's */
    const float *v = NULL;
    int rc = buf && (!t->part || tmp) && (!o->read || in) ? DC_OK
                                                          : err_set(err, DC_ENOMEM, "gguf: out of memory for %s", x->name);
    if (!rc && t->part && !(rc = values(o, x, in, &v, err))) {
        split_kvb(c, v, t->part, tmp);
        quant_rows(t->type, tmp, rows, cols, buf);
        rc = gw_data(w, buf, rb * rows, err);
    }
    for (int ex = 0; !rc && !t->part && ex < (t->experts ? t->experts : 1); ex++) {
        const wt_entry *y = &e[t->entry + 3 * ex];
        if (t->experts && (y->layer != x->layer || y->expert != ex)) {
            rc = err_set(err, DC_EARG, "gguf: experts of %s are not in table order", x->name);
            break;
        }
        if ((rc = values(o, y, in, &v, err))) break;
        quant_rows(t->type, v, rows, cols, buf);
        rc = gw_data(w, buf, rb * rows, err);
    }
    free(buf), free(tmp), free(in);
    return rc;
}

int gguf_save(const dc_config *c, const wt_entry *e, int n, const gguf_save_opts *o, const char *path, dc_err *err) {
    if (!gg_can_quantize(o->type) || o->type == GG_Q8_K)
        return err_set(err, DC_EARG, "gguf: cannot write type %s", gg_type_name(o->type));
    gguf_writer w;
    gw_init(&w);
    put_config(&w, c, o);
    otensor *ot = calloc((size_t)n * 2 + 1, sizeof *ot);
    int nt = 0;
    int rc = ot ? DC_OK : err_set(err, DC_ENOMEM, "gguf: out of memory");
    if (!rc && o->tok) rc = put_tokenizer(&w, c, o, err);
    if (!rc) rc = plan(c, e, n, o, &w, ot, &nt, err);
    if (!rc) rc = gw_begin(&w, path, err);
    libprog pg;
    libprog_start(&pg, "write", nt);
    for (int i = 0; i < nt && !rc; i++) {
        rc = write_tensor(c, e, &ot[i], o, &w, err);
        libprog_add(&pg, 1);
    }
    if (!rc) rc = gw_end(&w, err);
    if (!rc) libprog_end(&pg);
    gw_free(&w);
    free(ot);
    struct stat st;
    if (!rc && o->stats) {
        o->stats->has_tokenizer = o->tok != NULL;
        if (stat(path, &st) == 0) o->stats->file_bytes = (uint64_t)st.st_size;
    }
    return rc;
}
