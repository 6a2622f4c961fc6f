/*
 * convert_gguf.c — dc_convert_to_gguf / dc_convert_to_hf (deepc.h): a model
 * (HF directory, FP8 included, or GGUF) written as a deepseek2 GGUF of one
 * type or mix (save_gguf.c), streamed a tensor at a time (wt_source.h: the
 * memory of one tensor, not of the model), or a GGUF loaded as float32 and
 * written as an HF checkpoint (config.json, float32 model.safetensors,
 * tokenizer.json when the GGUF carries a tokenizer).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "base/progress.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "kernels/ggml_types.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model/model.h"
#include "model/wt_source.h"
#include "tokenizer/tokenizer.h"

/* source_tokenizer: the tokenizer and chat template that travel with src
 * (both NULL when it has none); *tmpl is malloc'd. */
static int source_tokenizer(const char *src, dc_tokenizer **tok, char **tmpl, dc_err *err) {
    *tok = NULL, *tmpl = NULL;
    char p[4096];
    if (path_is_gguf(src)) {
        gguf g;
        int rc = gguf_open(&g, src, err);
        if (rc) return rc;
        gguf_str s;
        if (gguf_find(&g, "tokenizer.chat_template") && !gguf_get_str(&g, "tokenizer.chat_template", &s, NULL))
            *tmpl = strndup(s.s, s.n);
        int has = gguf_find(&g, "tokenizer.ggml.tokens") != NULL;
        gguf_close(&g);
        return has ? dc_tokenizer_load(src, tok, err) : DC_OK;
    }
    if (path_join(p, sizeof p, src, "tokenizer.json", NULL) || !file_exists(p)) return DC_OK;
    int rc = dc_tokenizer_load(src, tok, err);
    cJSON *root;
    if (rc || path_join(p, sizeof p, src, "tokenizer_config.json", NULL) || !file_exists(p) ||
        json_read_file(p, &root, NULL))
        return rc;
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (cJSON_IsString(ct)) *tmpl = strdup(ct->valuestring);
    cJSON_Delete(root);
    return DC_OK;
}

/* explicit_tokenizer: a tokenizer the user names: a tokenizer.json file
 * (the chat template from tokenizer_config.json beside it), or a
 * directory or .gguf as a model's own */
static int explicit_tokenizer(const char *path, dc_tokenizer **tok, char **tmpl, dc_err *err) {
    *tok = NULL, *tmpl = NULL;
    if (dir_exists(path) || path_is_gguf(path)) {
        int rc = source_tokenizer(path, tok, tmpl, err);
        if (!rc && !*tok) rc = err_set(err, DC_ENOTFOUND, "%s: no tokenizer in it", path);
        return rc;
    }
    int rc = dc_tokenizer_load(path, tok, err);
    if (rc) return rc;
    char d[4096], p[4096];
    snprintf(d, sizeof d, "%s", path);
    char *sl = strrchr(d, '/');
    if (sl) *sl = 0;
    cJSON *root;
    if (!path_join(p, sizeof p, sl ? d : ".", "tokenizer_config.json", NULL) && file_exists(p) &&
        !json_read_file(p, &root, NULL)) {
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
        if (cJSON_IsString(ct)) *tmpl = strdup(ct->valuestring);
        cJSON_Delete(root);
    }
    return DC_OK;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

/* parse_type: o->type as a single GGUF type or a mixed preset */
static int parse_type(const dc_convert_opts *o, int *type, int *mix, dc_err *err) {
    const char *name = o && o->type ? o->type : "f16";
    *mix = quant_mix_parse(name);
    *type = *mix ? quant_mix_base(*mix) : gg_type_parse(name);
    if (*type < 0 || !gg_can_quantize(*type) || *type == GG_Q8_K)
        return err_set(err, DC_EARG, "unknown GGUF type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, "
                       "q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, or a mix: q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m)", name);
    return DC_OK;
}

/* requant_guard: a GGUF whose matrices are already quantised loses accuracy
 * a second time when quantised again (as llama-quantize, refused unless
 * allowed); f32/f16/bf16 sources are fine */
static int requant_guard(const char *src, int allow, dc_err *err) {
    if (!path_is_gguf(src) || allow) return DC_OK;
    gguf g;
    int rc = gguf_open(&g, src, err);
    if (!rc) rc = gguf_read_tensors(&g, err);
    int q = -1;
    for (uint64_t i = 0; !rc && i < g.n_tensors; i++) {
        int t = g.tensors[i].type;
        if (t != GG_F32 && t != GG_F16 && t != GG_BF16) q = t;
    }
    gguf_close(&g);
    if (rc || q < 0) return rc;
    return err_set(err, DC_EARG, "%s is already quantised (%s): quantising it again adds a second rounding error; "
                   "start from the f32/f16/bf16 model, or give --allow-requantize", src, gg_type_name(q));
}

static void say(const dc_convert_opts *o, const char *line) {
    if (o && o->log) o->log(o->log_ctx, line);
}

static int read_source(void *ctx, const wt_entry *e, float *dst, dc_err *err) { return wt_source_read(ctx, e, dst, err); }

int dc_convert_to_gguf(const char *src, const char *out, const dc_convert_opts *o, dc_err *err) {
    int type, mix;
    int rc = parse_type(o, &type, &mix, err);
    if (rc) return rc;
    if ((rc = requant_guard(src, o && o->allow_requantize, err))) return rc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    file_sweep_stale(slash ? (dir[0] ? dir : "/") : "."); /* temporaries of a conversion killed here before */
    dc_config cfg;
    model_w w = {0};
    wt_source ws = {0};
    dc_tokenizer *tok = NULL;
    char *tmpl = NULL;
    wt_entry *e = NULL;
    int n = 0;
    if (o && o->stats) memset(o->stats, 0, sizeof *o->stats);
    /* streamed: the table from the config, each tensor read from src as float32 as it is written */
    rc = dc_config_load(src, &cfg, err);
    if (!rc) rc = wt_source_open(&ws, &cfg, src, err);
    if (!rc) rc = weights_table(&cfg, &w, &e, &n, err);
    if (!rc) rc = wt_source_plan(&ws, e, &n, err);
    if (!rc) rc = o && o->tokenizer ? explicit_tokenizer(o->tokenizer, &tok, &tmpl, err) : source_tokenizer(src, &tok, &tmpl, err);
    if (!rc && tok && dc_tokenizer_n_vocab(tok) > cfg.vocab_size)
        rc = err_set(err, DC_ECONFIG, "the tokenizer has %d ids, more than the model's vocab_size %d",
                     dc_tokenizer_n_vocab(tok), cfg.vocab_size);
    if (!rc && !tok) {
        char line[4400];
        snprintf(line, sizeof line, "%s has no tokenizer: %s will load in deepc only (llama.cpp requires "
                 "tokenizer.ggml.model); give --tokenizer FILE to include one", src, out);
        say(o, line);
    }
    if (!rc) {
        gguf_save_opts so = {type, mix, o ? o->stats : NULL, tok, tmpl, base_name(src), o ? o->log : NULL,
                             o ? o->log_ctx : NULL, read_source, &ws};
        rc = gguf_save(&cfg, e, n, &so, out, err);
    }
    free(e);
    free(tmpl);
    dc_tokenizer_free(tok);
    weights_free(&w);
    wt_source_close(&ws);
    return rc;
}

static int alias_copy(const wt_entry *e, int n, int i) {
    if (!e[i].alias) return 0;
    for (int j = 0; j < n; j++)
        if (strcmp(e[j].name, e[i].alias) == 0) return *e[j].dst == *e[i].dst;
    return 0;
}

static int write_safetensors(const wt_entry *e, int n, const char *path, dc_err *err) {
    st_entry *se = calloc(n ? n : 1, sizeof *se);
    int *idx = calloc(n ? n : 1, sizeof *idx), k = 0;
    if (!se || !idx) {
        free(se), free(idx);
        return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) {
        if (alias_copy(e, n, i)) continue;
        st_entry *s = &se[k];
        snprintf(s->name, sizeof s->name, "%s", e[i].name);
        s->dtype = ST_F32;
        s->ndim = e[i].cols ? 2 : 1;
        s->shape[0] = e[i].rows;
        s->shape[1] = e[i].cols;
        idx[k++] = i;
    }
    st_writer w;
    int rc = st_write_begin(&w, path, se, k, err);
    libprog pg;
    libprog_start(&pg, "write", k);
    for (int j = 0; j < k && !rc; j++) {
        rc = st_write_data(&w, *e[idx[j]].dst, st_entry_bytes(&se[j]), err);
        libprog_add(&pg, 1);
    }
    if (!rc) rc = st_write_end(&w, err);
    if (!rc) libprog_end(&pg);
    else st_write_abort(&w);
    free(se), free(idx);
    return rc;
}

int dc_convert_to_hf(const char *src, const char *out, int force, dc_err *err) {
    if (!path_is_gguf(src)) return err_set(err, DC_EARG, "%s: --to hf reads a .gguf file", src);
    int rc = dir_check_target(out, force, err); /* refuse before the work, not after */
    if (rc) return rc;
    dc_model *m = NULL;
    dc_tokenizer *tok = NULL;
    char *tmpl = NULL, *json = NULL, p[4096], tmp[4096];
    wt_entry *e = NULL;
    int n = 0;
    rc = dir_make_beside(out, tmp, sizeof tmp, err);
    if (!rc) rc = model_load(src, 1, &m, err); /* writers read weights as float32 */
    if (!rc) rc = source_tokenizer(src, &tok, &tmpl, err);
    if (!rc) rc = model_entries(&m->cfg, &m->w, &e, &n, err);
    if (!rc && !(json = config_to_json(&m->cfg))) rc = err_set(err, DC_ENOMEM, "%s: out of memory", out);
    if (!rc) rc = path_join(p, sizeof p, tmp, "config.json", err);
    if (!rc) rc = file_write_atomic(p, json, strlen(json), err);
    if (!rc) rc = path_join(p, sizeof p, tmp, "model.safetensors", err);
    if (!rc) rc = write_safetensors(e, n, p, err);
    if (!rc && tok) rc = path_join(p, sizeof p, tmp, "tokenizer.json", err);
    if (!rc && tok) rc = tok_save_json(tok, p, err);
    if (!rc) rc = dir_commit(tmp, out, force, err);
    else if (tmp[0]) {
        dc_err ignore;
        dir_remove_tree(tmp, &ignore);
    }
    free(json);
    free(e);
    free(tmpl);
    dc_tokenizer_free(tok);
    dc_model_free(m);
    return rc;
}
