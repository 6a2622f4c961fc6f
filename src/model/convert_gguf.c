/*
 * convert_gguf.c — dc_convert_to_gguf / dc_convert_to_hf (deepc.h): a model
 * (HF directory, FP8 included, or GGUF) loaded as float32, then written as a
 * deepseek2 GGUF of one type (save_gguf.c), or as an HF checkpoint
 * (config.json, float32 model.safetensors, tokenizer.json when the GGUF
 * carries a tokenizer).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "kernels/ggml_types.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model/model.h"
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

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

int dc_convert_to_gguf(const char *src, const char *out, const dc_convert_opts *o, dc_err *err) {
    int type = o && o->type ? gg_type_parse(o->type) : GG_F16;
    if (type < 0 || !gg_can_quantize(type) || type == GG_Q8_K)
        return err_set(err, DC_EARG, "convert: unknown GGUF type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
                       "q5_1, q2_k, q3_k, q4_k, q5_k, q6_k)", o->type);
    dc_model *m = NULL;
    dc_tokenizer *tok = NULL;
    char *tmpl = NULL;
    wt_entry *e = NULL;
    int n = 0;
    int rc = model_load(src, 1, &m, err); /* writers read weights as float32 */
    if (!rc) rc = source_tokenizer(src, &tok, &tmpl, err);
    if (!rc) rc = model_entries(&m->cfg, &m->w, &e, &n, err);
    if (!rc) {
        gguf_save_opts so = {type, tok, tmpl, base_name(src), o ? o->log : NULL, o ? o->log_ctx : NULL};
        rc = gguf_save(&m->cfg, e, n, &so, out, err);
    }
    free(e);
    free(tmpl);
    dc_tokenizer_free(tok);
    dc_model_free(m);
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
        return err_set(err, DC_ENOMEM, "convert: out of memory");
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
    for (int j = 0; j < k && !rc; j++) rc = st_write_data(&w, *e[idx[j]].dst, st_entry_bytes(&se[j]), err);
    if (!rc) rc = st_write_end(&w, err);
    else st_write_abort(&w);
    free(se), free(idx);
    return rc;
}

int dc_convert_to_hf(const char *src, const char *out, dc_err *err) {
    if (!path_is_gguf(src)) return err_set(err, DC_EARG, "convert: %s: --to hf reads a .gguf file", src);
    dc_model *m = NULL;
    dc_tokenizer *tok = NULL;
    char *tmpl = NULL, *json = NULL, p[4096];
    wt_entry *e = NULL;
    int n = 0;
    int rc = model_load(src, 1, &m, err); /* writers read weights as float32 */
    if (!rc) rc = source_tokenizer(src, &tok, &tmpl, err);
    if (!rc) rc = model_entries(&m->cfg, &m->w, &e, &n, err);
    if (!rc) rc = dir_make(out, err);
    if (!rc && !(json = config_to_json(&m->cfg))) rc = err_set(err, DC_ENOMEM, "convert: out of memory");
    if (!rc) rc = path_join(p, sizeof p, out, "config.json", err);
    if (!rc) rc = file_write_atomic(p, json, strlen(json), err);
    if (!rc) rc = path_join(p, sizeof p, out, "model.safetensors", err);
    if (!rc) rc = write_safetensors(e, n, p, err);
    if (!rc && tok) rc = path_join(p, sizeof p, out, "tokenizer.json", err);
    if (!rc && tok) rc = tok_save_json(tok, p, err);
    free(json);
    free(e);
    free(tmpl);
    dc_tokenizer_free(tok);
    dc_model_free(m);
    return rc;
}
