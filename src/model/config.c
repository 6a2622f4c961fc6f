/*
 * config.c — DeepSeek config.json: parse, check, presets, write, and the
 * parameter / cache counts of a config.
 *
 * Fields are named and defaulted as in the Hugging Face DeepSeek-V2/V3
 * configs. Fields that shape the model are required; a missing or
 * inconsistent one is an error naming it. V2 gates are softmax with
 * topk_method greedy or group_limited_greedy; V3 gates are sigmoid with
 * noaux_tc (a selection bias, group score = sum of the two best biased
 * scores in the group; V3 report §2.1.2).
 */
#include "model/config.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "model/gguf_model.h"
#include "io/json.h"

/* a config.json is a few kilobytes; anything past this is not one */
#define CONFIG_MAX_BYTES ((size_t)16 << 20)

/* ---------------------------------------------------------------- parsing */

typedef struct jctx {
    const cJSON *root;
    const char *where;
    dc_err *err;
    int rc;
} jctx;

static const cJSON *jget(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(j) ? NULL : j;
}

/* int field: required (def ignored) or optional with a default. null counts as missing. */
static int jint(jctx *c, const char *key, int required, int def) {
    if (c->rc) return def;
    const cJSON *j = jget(c->root, key);
    if (!j) {
        if (required) c->rc = err_set(c->err, DC_ECONFIG, "%s: missing field %s", c->where, key);
        return def;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 2e9) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: field %s must be an integer", c->where, key);
        return def;
    }
    return (int)j->valuedouble;
}

static float jnum_in(jctx *c, const cJSON *obj, const char *key, const char *ctx, int required, float def) {
    if (c->rc) return def;
    const cJSON *j = jget(obj, key);
    if (!j) {
        if (required) c->rc = err_set(c->err, DC_ECONFIG, "%s: missing field %s%s", c->where, ctx, key);
        return def;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: field %s%s must be a number", c->where, ctx, key);
        return def;
    }
    return (float)j->valuedouble;
}

static int jbool(jctx *c, const char *key, int def) {
    if (c->rc) return def;
    const cJSON *j = jget(c->root, key);
    if (!j) return def;
    if (!cJSON_IsBool(j)) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: field %s must be true or false", c->where, key);
        return def;
    }
    return cJSON_IsTrue(j);
}

/* string field matched against choices; returns the index. */
static int jenum(jctx *c, const char *key, const char *const *choices, int nchoice, int required, int def) {
    if (c->rc) return def;
    const cJSON *j = jget(c->root, key);
    if (!j) {
        if (required) c->rc = err_set(c->err, DC_ECONFIG, "%s: missing field %s", c->where, key);
        return def;
    }
    if (cJSON_IsString(j))
        for (int i = 0; i < nchoice; i++)
            if (strcmp(j->valuestring, choices[i]) == 0) return i;
    char list[160] = "";
    for (int i = 0; i < nchoice; i++) {
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
        if (i + 1 < nchoice) strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    c->rc = err_set(c->err, DC_ECONFIG, "%s: field %s is %s%s%s; expected one of: %s", c->where, key,
                    cJSON_IsString(j) ? "\"" : "", cJSON_IsString(j) ? j->valuestring : "not a string",
                    cJSON_IsString(j) ? "\"" : "", list);
    return def;
}

static void parse_rope_scaling(jctx *c, dc_config *cfg) {
    const cJSON *rs = jget(c->root, "rope_scaling");
    if (c->rc || !rs) return;
    if (!cJSON_IsObject(rs)) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: field rope_scaling must be an object or null", c->where);
        return;
    }
    const cJSON *ty = jget(rs, "type");
    if (!ty) ty = jget(rs, "rope_type");
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "yarn") != 0) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: field rope_scaling.type is %s; only \"yarn\" is supported",
                        c->where, cJSON_IsString(ty) ? ty->valuestring : "missing");
        return;
    }
    cfg->has_yarn = 1;
    cfg->rope_factor = jnum_in(c, rs, "factor", "rope_scaling.", 1, 1);
    float orig = jnum_in(c, rs, "original_max_position_embeddings", "rope_scaling.", 1, 4096);
    if (!c->rc && !(orig >= 1 && orig <= 1e9f)) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: field rope_scaling.original_max_position_embeddings must be in 1..1e9",
                        c->where);
        return;
    }
    cfg->rope_original_max_position_embeddings = (int)orig;
    cfg->rope_beta_fast = jnum_in(c, rs, "beta_fast", "rope_scaling.", 0, 32);
    cfg->rope_beta_slow = jnum_in(c, rs, "beta_slow", "rope_scaling.", 0, 1);
    cfg->rope_mscale = jnum_in(c, rs, "mscale", "rope_scaling.", 0, 1);
    cfg->rope_mscale_all_dim = jnum_in(c, rs, "mscale_all_dim", "rope_scaling.", 0, 0);
}

static void parse_quant(jctx *c, dc_config *cfg) {
    const cJSON *q = jget(c->root, "quantization_config");
    if (c->rc || !q) return;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
    if (!cJSON_IsString(m) || strcmp(m->valuestring, "fp8") != 0) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: quantization_config.quant_method is %s; only \"fp8\" is supported",
                        c->where, cJSON_IsString(m) ? m->valuestring : "missing");
        return;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(q, "fmt");
    if (f && (!cJSON_IsString(f) || strcmp(f->valuestring, "e4m3") != 0)) {
        c->rc = err_set(c->err, DC_ECONFIG, "%s: quantization_config.fmt must be \"e4m3\"", c->where);
        return;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(q, "weight_block_size");
    cfg->fp8_block_m = cfg->fp8_block_n = 128;
    if (b) {
        if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(b, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(b, 1)) || !(cJSON_GetArrayItem(b, 0)->valuedouble >= 1) ||
            !(cJSON_GetArrayItem(b, 1)->valuedouble >= 1) || cJSON_GetArrayItem(b, 0)->valuedouble > 65536 ||
            cJSON_GetArrayItem(b, 1)->valuedouble > 65536) {
            c->rc = err_set(c->err, DC_ECONFIG, "%s: quantization_config.weight_block_size must be [m, n] in 1..65536",
                            c->where);
            return;
        }
        cfg->fp8_block_m = (int)cJSON_GetArrayItem(b, 0)->valuedouble;
        cfg->fp8_block_n = (int)cJSON_GetArrayItem(b, 1)->valuedouble;
    }
}

int config_parse(const char *text, size_t n, const char *where, dc_config *cfg, dc_err *err) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root;
    int prc = json_parse(text, n, where, &root, err);
    if (prc) return prc;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(err, DC_EFORMAT, "%s: not a JSON object", where);
    }
    jctx c = {root, where, err, DC_OK};
    static const char *const TYPES[] = {"deepseek_v2", "deepseek_v3"};
    static const char *const SCORE[] = {"softmax", "sigmoid"};
    static const char *const TOPK[] = {"greedy", "group_limited_greedy", "noaux_tc"};
    static const char *const ACT[] = {"silu"};
    cfg->is_v3 = jenum(&c, "model_type", TYPES, 2, 1, 1);
    jenum(&c, "hidden_act", ACT, 1, 0, 0);
    cfg->vocab_size = jint(&c, "vocab_size", 1, 0);
    cfg->hidden_size = jint(&c, "hidden_size", 1, 0);
    cfg->intermediate_size = jint(&c, "intermediate_size", 1, 0);
    cfg->num_hidden_layers = jint(&c, "num_hidden_layers", 1, 0);
    cfg->num_nextn_predict_layers = jint(&c, "num_nextn_predict_layers", 0, 0);
    cfg->num_attention_heads = jint(&c, "num_attention_heads", 1, 0);
    cfg->q_lora_rank = jint(&c, "q_lora_rank", 0, 0);
    cfg->kv_lora_rank = jint(&c, "kv_lora_rank", 1, 0);
    cfg->qk_nope_head_dim = jint(&c, "qk_nope_head_dim", 1, 0);
    cfg->qk_rope_head_dim = jint(&c, "qk_rope_head_dim", 1, 0);
    cfg->v_head_dim = jint(&c, "v_head_dim", 1, 0);
    cfg->n_routed_experts = jint(&c, "n_routed_experts", 0, 0);
    int moe = cfg->n_routed_experts > 0;
    cfg->moe_intermediate_size = jint(&c, "moe_intermediate_size", moe, 0);
    cfg->n_shared_experts = jint(&c, "n_shared_experts", moe, 0);
    cfg->num_experts_per_tok = jint(&c, "num_experts_per_tok", moe, 0);
    cfg->first_k_dense_replace = jint(&c, "first_k_dense_replace", 0, 0);
    cfg->moe_layer_freq = jint(&c, "moe_layer_freq", 0, 1);
    cfg->n_group = jint(&c, "n_group", 0, 1);
    cfg->topk_group = jint(&c, "topk_group", 0, 1);
    cfg->topk_method = jenum(&c, "topk_method", TOPK, 3, moe, DC_TOPK_GREEDY);
    cfg->scoring_func = jenum(&c, "scoring_func", SCORE, 2, moe, DC_SCORE_SOFTMAX);
    cfg->norm_topk_prob = jbool(&c, "norm_topk_prob", 0);
    cfg->routed_scaling_factor = jnum_in(&c, root, "routed_scaling_factor", "", 0, 1.0f);
    cfg->rms_norm_eps = jnum_in(&c, root, "rms_norm_eps", "", 0, 1e-6f);
    cfg->rope_theta = jnum_in(&c, root, "rope_theta", "", 0, 10000.0f);
    cfg->max_position_embeddings = jint(&c, "max_position_embeddings", 0, 4096);
    cfg->tie_word_embeddings = jbool(&c, "tie_word_embeddings", 0);
    cfg->bos_token_id = jint(&c, "bos_token_id", 0, 0);
    cfg->eos_token_id = jint(&c, "eos_token_id", 0, 1);
    parse_rope_scaling(&c, cfg);
    parse_quant(&c, cfg);
    cJSON_Delete(root);
    if (c.rc) return c.rc;
    return dc_config_check(cfg, err) ? err_prefix(err, "%s", where) : DC_OK;
}

int dc_config_load(const char *path, dc_config *cfg, dc_err *err) {
    if (path_is_gguf(path)) return gguf_config_load(path, cfg, err); /* load_gguf.c */
    char buf[4096];
    const char *file = path;
    if (dir_exists(path)) {
        int rc = path_join(buf, sizeof buf, path, "config.json", err);
        if (rc) return rc;
        file = buf;
    }
    char *txt;
    size_t n;
    int rc = file_read_max(file, CONFIG_MAX_BYTES, &txt, &n, err);
    if (rc) return rc;
    rc = config_parse(txt, n, file, cfg, err);
    free(txt);
    return rc;
}

/* ---------------------------------------------------------------- checks */

#define NEED(cond, ...)                                    \
    do {                                                   \
        if (!(cond)) return err_set(err, DC_ECONFIG, __VA_ARGS__); \
    } while (0)

int dc_config_check(const dc_config *c, dc_err *err) {
    /* ranges wide enough for any real model, narrow enough that no size product overflows */
    NEED(c->vocab_size > 0 && c->vocab_size <= (1 << 24), "vocab_size must be in 1..2^24 (is %d)", c->vocab_size);
    NEED(c->hidden_size > 0 && c->hidden_size <= (1 << 17), "hidden_size must be in 1..2^17 (is %d)", c->hidden_size);
    NEED(c->num_hidden_layers > 0 && c->num_hidden_layers <= 4096, "num_hidden_layers must be in 1..4096 (is %d)",
         c->num_hidden_layers);
    NEED(c->num_nextn_predict_layers >= 0 && c->num_nextn_predict_layers <= 64,
         "num_nextn_predict_layers must be in 0..64 (is %d)", c->num_nextn_predict_layers);
    NEED(c->max_position_embeddings > 0, "max_position_embeddings must be > 0 (is %d)", c->max_position_embeddings);
    NEED(c->intermediate_size >= 0 && c->intermediate_size <= (1 << 20), "intermediate_size must be in 0..2^20");
    NEED(c->moe_intermediate_size >= 0 && c->moe_intermediate_size <= (1 << 20), "moe_intermediate_size must be in 0..2^20");
    NEED(c->n_routed_experts >= 0 && c->n_routed_experts <= 65536, "n_routed_experts must be in 0..65536");
    NEED(c->n_shared_experts <= 1024, "n_shared_experts must be <= 1024");
    NEED(c->num_attention_heads <= 4096 && c->q_lora_rank <= (1 << 20) && c->kv_lora_rank <= (1 << 20) &&
             c->qk_nope_head_dim <= 65536 && c->qk_rope_head_dim <= 65536 && c->v_head_dim <= 65536,
         "attention sizes out of range (heads <= 4096, ranks <= 2^20, head dims <= 65536)");
    NEED(c->num_attention_heads > 0, "num_attention_heads must be > 0 (is %d)", c->num_attention_heads);
    NEED(c->q_lora_rank >= 0, "q_lora_rank must be null or > 0 (is %d)", c->q_lora_rank);
    NEED(c->kv_lora_rank > 0, "kv_lora_rank must be > 0 (is %d)", c->kv_lora_rank);
    NEED(c->qk_nope_head_dim > 0, "qk_nope_head_dim must be > 0 (is %d)", c->qk_nope_head_dim);
    NEED(c->qk_rope_head_dim > 0 && c->qk_rope_head_dim % 2 == 0,
         "qk_rope_head_dim must be even and > 0 (is %d)", c->qk_rope_head_dim);
    NEED(c->v_head_dim > 0, "v_head_dim must be > 0 (is %d)", c->v_head_dim);
    NEED(c->first_k_dense_replace >= 0, "first_k_dense_replace must be >= 0");
    NEED(c->moe_layer_freq >= 1, "moe_layer_freq must be >= 1 (is %d)", c->moe_layer_freq);
    NEED(c->rms_norm_eps > 0, "rms_norm_eps must be > 0");
    NEED(c->rope_theta > 1, "rope_theta must be > 1");
    NEED(c->bos_token_id >= 0 && c->bos_token_id < c->vocab_size, "bos_token_id %d outside vocab_size %d",
         c->bos_token_id, c->vocab_size);
    NEED(c->eos_token_id >= 0 && c->eos_token_id < c->vocab_size, "eos_token_id %d outside vocab_size %d",
         c->eos_token_id, c->vocab_size);
    NEED(!c->tie_word_embeddings, "tie_word_embeddings: tied embeddings are not a DeepSeek layout");
    int dense = 0;
    for (int i = 0; i < c->num_hidden_layers + c->num_nextn_predict_layers; i++)
        dense += !dc_config_is_moe_layer(c, i);
    NEED(!dense || c->intermediate_size > 0, "intermediate_size must be > 0 for the dense layers (is %d)",
         c->intermediate_size);
    if (c->n_routed_experts > 0) {
        int E = c->n_routed_experts;
        NEED(c->moe_intermediate_size > 0, "moe_intermediate_size must be > 0 (is %d)", c->moe_intermediate_size);
        NEED(c->n_shared_experts >= 0, "n_shared_experts must be >= 0");
        NEED(c->num_experts_per_tok >= 1 && c->num_experts_per_tok <= E,
             "num_experts_per_tok %d must be in 1..n_routed_experts (%d)", c->num_experts_per_tok, E);
        NEED(c->n_group >= 1 && E % c->n_group == 0, "n_group %d must divide n_routed_experts %d", c->n_group, E);
        NEED(c->topk_group >= 1 && c->topk_group <= c->n_group, "topk_group %d must be in 1..n_group (%d)",
             c->topk_group, c->n_group);
        if (c->topk_method != DC_TOPK_GREEDY && c->n_group > 1) {
            NEED(c->num_experts_per_tok <= c->topk_group * (E / c->n_group),
                 "num_experts_per_tok %d exceeds the %d experts of topk_group %d groups", c->num_experts_per_tok,
                 c->topk_group * (E / c->n_group), c->topk_group);
            NEED(c->topk_method != DC_TOPK_NOAUX_TC || E / c->n_group >= 2,
                 "topk_method noaux_tc needs at least 2 experts per group (n_routed_experts %d, n_group %d)", E,
                 c->n_group);
        }
        NEED(c->routed_scaling_factor > 0, "routed_scaling_factor must be > 0");
    }
    if (c->has_yarn) {
        NEED(c->rope_factor >= 1, "rope_scaling.factor must be >= 1 (is %g)", c->rope_factor);
        NEED(c->rope_original_max_position_embeddings > 0, "rope_scaling.original_max_position_embeddings must be > 0");
        NEED(c->rope_beta_fast > 0 && c->rope_beta_slow > 0, "rope_scaling.beta_fast and beta_slow must be > 0");
    }
    NEED(c->fp8_block_m >= 0 && c->fp8_block_n >= 0, "quantization_config.weight_block_size must be > 0");
    /* sizes that index arrays must not overflow int arithmetic */
    NEED((int64_t)c->num_attention_heads * (c->qk_nope_head_dim + c->qk_rope_head_dim + c->v_head_dim) < (1 << 30),
         "num_attention_heads * head dims too large");
    return DC_OK;
}

int dc_config_is_moe_layer(const dc_config *c, int i) {
    return c->n_routed_experts > 0 && i >= c->first_k_dense_replace && i % c->moe_layer_freq == 0;
}

/* ---------------------------------------------------------------- YaRN */

double config_yarn_get_mscale(double factor, double mscale) {
    return factor <= 1 ? 1.0 : 0.1 * mscale * log(factor) + 1.0;
}

float config_softmax_scale(const dc_config *c) {
    double s = 1.0 / sqrt((double)(c->qk_nope_head_dim + c->qk_rope_head_dim));
    if (c->has_yarn) {
        double m = config_yarn_get_mscale(c->rope_factor, c->rope_mscale_all_dim);
        s *= m * m;
    }
    return (float)s;
}

/* ---------------------------------------------------------------- counts */

void dc_config_counts(const dc_config *c, dc_counts *o) {
    memset(o, 0, sizeof *o);
    int64_t C = c->hidden_size, H = c->num_attention_heads, V = c->vocab_size;
    int64_t qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    int64_t attn = (c->q_lora_rank ? C * c->q_lora_rank + c->q_lora_rank + (int64_t)c->q_lora_rank * H * qk
                                   : C * H * qk) +
                   C * (c->kv_lora_rank + c->qk_rope_head_dim) + c->kv_lora_rank +
                   (int64_t)c->kv_lora_rank * H * (c->qk_nope_head_dim + c->v_head_dim) + H * c->v_head_dim * C +
                   2 * C; /* the two norms */
    int64_t dense = 3 * C * c->intermediate_size;
    int64_t expert = 3 * C * c->moe_intermediate_size;
    int64_t E = c->n_routed_experts;
    int64_t gate = E * C + (c->topk_method == DC_TOPK_NOAUX_TC ? E : 0);
    int64_t moe_total = gate + (E + c->n_shared_experts) * expert;
    int64_t moe_active = gate + (c->num_experts_per_tok + c->n_shared_experts) * expert;
    o->params_embedding = V * C;
    o->params_total = 2 * V * C + C; /* embedding, head, final norm */
    o->params_active = V * C + C;    /* head and final norm; one embedding row is not counted */
    for (int i = 0; i < c->num_hidden_layers; i++) {
        int moe = dc_config_is_moe_layer(c, i);
        o->params_total += attn + (moe ? moe_total : dense);
        o->params_active += attn + (moe ? moe_active : dense);
    }
    for (int k = 0; k < c->num_nextn_predict_layers; k++) {
        int moe = dc_config_is_moe_layer(c, c->num_hidden_layers + k);
        /* embed_tokens, enorm, hnorm, eh_proj, block, shared_head.norm, shared_head.head */
        o->params_mtp += 2 * V * C + 3 * C + 2 * C * C + attn + (moe ? moe_total : dense);
    }
    int64_t L = c->num_hidden_layers;
    o->kv_naive_per_token = L * H * (qk + c->v_head_dim);
    o->kv_absorb_per_token = L * (c->kv_lora_rank + c->qk_rope_head_dim);
}

/* ---------------------------------------------------------------- presets */

/* Shapes: tiny for tests, small for the demo, and mini / train-bench /
 * v2-lite / v3 exactly as ../shared/BENCHMARKS.md and the official configs. */
static void preset_v3_gate(dc_config *c) {
    c->topk_method = DC_TOPK_NOAUX_TC;
    c->scoring_func = DC_SCORE_SIGMOID;
    c->norm_topk_prob = 1;
    c->routed_scaling_factor = 2.5f;
    c->is_v3 = 1;
}

int dc_config_preset(const char *name, dc_config *c, dc_err *err) {
    memset(c, 0, sizeof *c);
    c->moe_layer_freq = 1;
    c->rms_norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->bos_token_id = 0;
    c->eos_token_id = 1;
    if (strcmp(name, "tiny") == 0) {
        *c = (dc_config){.vocab_size = 512, .hidden_size = 64, .intermediate_size = 128,
                         .moe_intermediate_size = 32, .num_hidden_layers = 3, .num_nextn_predict_layers = 1,
                         .num_attention_heads = 4, .q_lora_rank = 32, .kv_lora_rank = 32, .qk_nope_head_dim = 16,
                         .qk_rope_head_dim = 8, .v_head_dim = 16, .n_routed_experts = 8, .n_shared_experts = 1,
                         .num_experts_per_tok = 2, .first_k_dense_replace = 1, .moe_layer_freq = 1, .n_group = 4,
                         .topk_group = 2, .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f,
                         .max_position_embeddings = 1024, .has_yarn = 1, .rope_factor = 4,
                         .rope_original_max_position_embeddings = 256, .rope_beta_fast = 32, .rope_beta_slow = 1,
                         .rope_mscale = 1, .rope_mscale_all_dim = 1, .bos_token_id = 0, .eos_token_id = 1};
        preset_v3_gate(c);
    } else if (strcmp(name, "small") == 0) {
        *c = (dc_config){.vocab_size = 4096, .hidden_size = 256, .intermediate_size = 768,
                         .moe_intermediate_size = 192, .num_hidden_layers = 6, .num_nextn_predict_layers = 1,
                         .num_attention_heads = 4, .q_lora_rank = 128, .kv_lora_rank = 64, .qk_nope_head_dim = 32,
                         .qk_rope_head_dim = 16, .v_head_dim = 32, .n_routed_experts = 16, .n_shared_experts = 1,
                         .num_experts_per_tok = 2, .first_k_dense_replace = 1, .moe_layer_freq = 1, .n_group = 4,
                         .topk_group = 2, .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f,
                         .max_position_embeddings = 2048, .bos_token_id = 0, .eos_token_id = 1};
        preset_v3_gate(c);
    } else if (strcmp(name, "mini") == 0) {
        *c = (dc_config){.vocab_size = 102400, .hidden_size = 1024, .intermediate_size = 2816,
                         .moe_intermediate_size = 512, .num_hidden_layers = 8, .num_attention_heads = 16,
                         .q_lora_rank = 384, .kv_lora_rank = 256, .qk_nope_head_dim = 64, .qk_rope_head_dim = 32,
                         .v_head_dim = 64, .n_routed_experts = 32, .n_shared_experts = 1, .num_experts_per_tok = 4,
                         .first_k_dense_replace = 1, .moe_layer_freq = 1, .n_group = 8, .topk_group = 4,
                         .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f, .max_position_embeddings = 4096,
                         .bos_token_id = 100000, .eos_token_id = 100001};
        preset_v3_gate(c);
    } else if (strcmp(name, "train-bench") == 0) {
        *c = (dc_config){.vocab_size = 4096, .hidden_size = 256, .intermediate_size = 1024,
                         .moe_intermediate_size = 256, .num_hidden_layers = 4, .num_attention_heads = 8,
                         .q_lora_rank = 128, .kv_lora_rank = 64, .qk_nope_head_dim = 32, .qk_rope_head_dim = 16,
                         .v_head_dim = 32, .n_routed_experts = 16, .n_shared_experts = 1, .num_experts_per_tok = 2,
                         .first_k_dense_replace = 1, .moe_layer_freq = 1, .n_group = 4, .topk_group = 2,
                         .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f, .max_position_embeddings = 1024,
                         .bos_token_id = 0, .eos_token_id = 1};
        preset_v3_gate(c);
    } else if (strcmp(name, "v2-lite") == 0) {
        *c = (dc_config){.vocab_size = 102400, .hidden_size = 2048, .intermediate_size = 10944,
                         .moe_intermediate_size = 1408, .num_hidden_layers = 27, .num_attention_heads = 16,
                         .q_lora_rank = 0, .kv_lora_rank = 512, .qk_nope_head_dim = 128, .qk_rope_head_dim = 64,
                         .v_head_dim = 128, .n_routed_experts = 64, .n_shared_experts = 2, .num_experts_per_tok = 6,
                         .first_k_dense_replace = 1, .moe_layer_freq = 1, .n_group = 1, .topk_group = 1,
                         .topk_method = DC_TOPK_GREEDY, .scoring_func = DC_SCORE_SOFTMAX, .norm_topk_prob = 0,
                         .routed_scaling_factor = 1.0f, .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f,
                         .max_position_embeddings = 163840, .has_yarn = 1, .rope_factor = 40,
                         .rope_original_max_position_embeddings = 4096, .rope_beta_fast = 32, .rope_beta_slow = 1,
                         .rope_mscale = 0.707f, .rope_mscale_all_dim = 0.707f, .bos_token_id = 100000,
                         .eos_token_id = 100001};
    } else if (strcmp(name, "v3") == 0) {
        *c = (dc_config){.vocab_size = 129280, .hidden_size = 7168, .intermediate_size = 18432,
                         .moe_intermediate_size = 2048, .num_hidden_layers = 61, .num_nextn_predict_layers = 1,
                         .num_attention_heads = 128, .q_lora_rank = 1536, .kv_lora_rank = 512,
                         .qk_nope_head_dim = 128, .qk_rope_head_dim = 64, .v_head_dim = 128,
                         .n_routed_experts = 256, .n_shared_experts = 1, .num_experts_per_tok = 8,
                         .first_k_dense_replace = 3, .moe_layer_freq = 1, .n_group = 8, .topk_group = 4,
                         .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f, .max_position_embeddings = 163840,
                         .has_yarn = 1, .rope_factor = 40, .rope_original_max_position_embeddings = 4096,
                         .rope_beta_fast = 32, .rope_beta_slow = 1, .rope_mscale = 1, .rope_mscale_all_dim = 1,
                         .bos_token_id = 0, .eos_token_id = 1};
        preset_v3_gate(c);
    } else {
        return err_set(err, DC_EARG, "unknown preset \"%s\" (tiny, small, mini, train-bench, v2-lite, v3)", name);
    }
    return dc_config_check(c, err);
}

/* ---------------------------------------------------------------- writing */

/* fd: a float as the short decimal it was written as (1e-6f -> 1e-06, not
 * 9.99999997e-07), so config.json reads as people write it. */
static double fd(float x) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", x);
    return strtod(b, NULL);
}

char *config_to_json(const dc_config *c) {
    cJSON *r = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(c->is_v3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"));
    cJSON_AddStringToObject(r, "model_type", c->is_v3 ? "deepseek_v3" : "deepseek_v2");
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(r, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(r, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(r, "moe_intermediate_size", c->moe_intermediate_size);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(r, "num_nextn_predict_layers", c->num_nextn_predict_layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(r, "n_shared_experts", c->n_shared_experts);
    if (c->n_routed_experts) cJSON_AddNumberToObject(r, "n_routed_experts", c->n_routed_experts);
    else cJSON_AddNullToObject(r, "n_routed_experts");
    cJSON_AddNumberToObject(r, "routed_scaling_factor", fd(c->routed_scaling_factor));
    cJSON_AddNumberToObject(r, "kv_lora_rank", c->kv_lora_rank);
    if (c->q_lora_rank) cJSON_AddNumberToObject(r, "q_lora_rank", c->q_lora_rank);
    else cJSON_AddNullToObject(r, "q_lora_rank");
    cJSON_AddNumberToObject(r, "qk_rope_head_dim", c->qk_rope_head_dim);
    cJSON_AddNumberToObject(r, "v_head_dim", c->v_head_dim);
    cJSON_AddNumberToObject(r, "qk_nope_head_dim", c->qk_nope_head_dim);
    static const char *const TOPK[] = {"greedy", "group_limited_greedy", "noaux_tc"};
    cJSON_AddStringToObject(r, "topk_method", TOPK[c->topk_method]);
    cJSON_AddNumberToObject(r, "n_group", c->n_group);
    cJSON_AddNumberToObject(r, "topk_group", c->topk_group);
    cJSON_AddNumberToObject(r, "num_experts_per_tok", c->num_experts_per_tok);
    cJSON_AddNumberToObject(r, "moe_layer_freq", c->moe_layer_freq);
    cJSON_AddNumberToObject(r, "first_k_dense_replace", c->first_k_dense_replace);
    cJSON_AddBoolToObject(r, "norm_topk_prob", c->norm_topk_prob);
    cJSON_AddStringToObject(r, "scoring_func", c->scoring_func == DC_SCORE_SIGMOID ? "sigmoid" : "softmax");
    cJSON_AddStringToObject(r, "hidden_act", "silu");
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(r, "rms_norm_eps", fd(c->rms_norm_eps));
    cJSON_AddNumberToObject(r, "rope_theta", fd(c->rope_theta));
    if (c->has_yarn) {
        cJSON *rs = cJSON_AddObjectToObject(r, "rope_scaling");
        cJSON_AddStringToObject(rs, "type", "yarn");
        cJSON_AddNumberToObject(rs, "factor", fd(c->rope_factor));
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_original_max_position_embeddings);
        cJSON_AddNumberToObject(rs, "beta_fast", fd(c->rope_beta_fast));
        cJSON_AddNumberToObject(rs, "beta_slow", fd(c->rope_beta_slow));
        cJSON_AddNumberToObject(rs, "mscale", fd(c->rope_mscale));
        cJSON_AddNumberToObject(rs, "mscale_all_dim", fd(c->rope_mscale_all_dim));
    } else {
        cJSON_AddNullToObject(r, "rope_scaling");
    }
    cJSON_AddBoolToObject(r, "attention_bias", 0);
    cJSON_AddBoolToObject(r, "tie_word_embeddings", 0);
    cJSON_AddNumberToObject(r, "bos_token_id", c->bos_token_id);
    cJSON_AddNumberToObject(r, "eos_token_id", c->eos_token_id);
    cJSON_AddStringToObject(r, "torch_dtype", c->fp8_block_m ? "bfloat16" : "float32");
    if (c->fp8_block_m) {
        cJSON *q = cJSON_AddObjectToObject(r, "quantization_config");
        cJSON_AddStringToObject(q, "activation_scheme", "dynamic");
        cJSON_AddStringToObject(q, "fmt", "e4m3");
        cJSON_AddStringToObject(q, "quant_method", "fp8");
        cJSON *b = cJSON_AddArrayToObject(q, "weight_block_size");
        cJSON_AddItemToArray(b, cJSON_CreateNumber(c->fp8_block_m));
        cJSON_AddItemToArray(b, cJSON_CreateNumber(c->fp8_block_n));
    }
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    return s;
}
