/*
 * weights.c — the tensor table of a DeepSeek config and the checkpoint loader.
 * See weights.h. Names are the Hugging Face ones of the official releases.
 */
#include "model/weights.h"
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "base/err.h"
#include "base/hugemem.h"
#include "base/progress.h"
#include "io/safetensors.h"
#include "model/gguf_model.h"
#include "kernels/dtype.h"
#include "kernels/fp8_block.h"
#include "kernels/ggml_types.h"

size_t wt_numel(const wt_entry *e) { return (size_t)e->rows * (e->cols ? (size_t)e->cols : 1); }

typedef struct tb {
    wt_entry *e;
    int n, cap;
    int oom;
} tb;

static wt_entry *add(tb *t, int kind, int layer, int expert, int rows, int cols, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static wt_entry *add(tb *t, int kind, int layer, int expert, int rows, int cols, const char *fmt, ...) {
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 256;
        wt_entry *ne = realloc(t->e, sizeof *ne * cap);
        if (!ne) {
            t->oom = 1;
            return NULL;
        }
        t->e = ne;
        t->cap = cap;
    }
    wt_entry *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->kind = kind;
    e->layer = layer;
    e->expert = expert;
    e->rows = rows;
    e->cols = cols;
    return e;
}

static void add_vec(tb *t, float **dst, int kind, int layer, int n, const char *name) {
    wt_entry *e = add(t, kind, layer, -1, n, 0, "%s", name);
    if (e) e->dst = dst;
}

static void add_mat(tb *t, mat *m, int kind, int layer, int expert, int rows, int cols, const char *name) {
    m->rows = rows;
    m->cols = cols;
    m->type = MAT_F32;
    wt_entry *e = add(t, kind, layer, expert, rows, cols, "%s", name);
    if (e) {
        e->m = m;
        e->dst = &m->data;
    }
}

static void add_block(tb *t, const dc_config *c, layer_w *lw, int i) {
    char p[32], nm[128];
    snprintf(p, sizeof p, "model.layers.%d.", i);
    int C = c->hidden_size, H = c->num_attention_heads, qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
#define N(s) (snprintf(nm, sizeof nm, "%s%s", p, s), nm)
    add_vec(t, &lw->attn_norm, WT_NORM, i, C, N("input_layernorm.weight"));
    if (c->q_lora_rank) {
        add_mat(t, &lw->q_a, WT_MAT, i, -1, c->q_lora_rank, C, N("self_attn.q_a_proj.weight"));
        add_vec(t, &lw->q_a_norm, WT_NORM, i, c->q_lora_rank, N("self_attn.q_a_layernorm.weight"));
        add_mat(t, &lw->q_b, WT_MAT, i, -1, H * qk, c->q_lora_rank, N("self_attn.q_b_proj.weight"));
    } else {
        add_mat(t, &lw->q, WT_MAT, i, -1, H * qk, C, N("self_attn.q_proj.weight"));
    }
    add_mat(t, &lw->kv_a, WT_MAT, i, -1, c->kv_lora_rank + c->qk_rope_head_dim, C,
            N("self_attn.kv_a_proj_with_mqa.weight"));
    add_vec(t, &lw->kv_a_norm, WT_NORM, i, c->kv_lora_rank, N("self_attn.kv_a_layernorm.weight"));
    add_mat(t, &lw->kv_b, WT_MAT, i, -1, H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank,
            N("self_attn.kv_b_proj.weight"));
    add_mat(t, &lw->o, WT_MAT, i, -1, C, H * c->v_head_dim, N("self_attn.o_proj.weight"));
    add_vec(t, &lw->ffn_norm, WT_NORM, i, C, N("post_attention_layernorm.weight"));
    lw->is_moe = dc_config_is_moe_layer(c, i);
    if (!lw->is_moe) {
        int I = c->intermediate_size;
        add_mat(t, &lw->gate, WT_MAT, i, -1, I, C, N("mlp.gate_proj.weight"));
        add_mat(t, &lw->up, WT_MAT, i, -1, I, C, N("mlp.up_proj.weight"));
        add_mat(t, &lw->down, WT_MAT, i, -1, C, I, N("mlp.down_proj.weight"));
    } else {
        int E = c->n_routed_experts, Im = c->moe_intermediate_size;
        wt_entry *e = add(t, WT_ROUTER, i, -1, E, C, "%smlp.gate.weight", p);
        if (e) e->dst = &lw->router;
        if (c->topk_method == DC_TOPK_NOAUX_TC)
            add_vec(t, &lw->router_bias, WT_BIAS, i, E, N("mlp.gate.e_score_correction_bias"));
        for (int x = 0; x < E; x++) {
            char en[64];
            snprintf(en, sizeof en, "mlp.experts.%d.gate_proj.weight", x);
            add_mat(t, &lw->exp_gate[x], WT_MAT, i, x, Im, C, N(en));
            snprintf(en, sizeof en, "mlp.experts.%d.up_proj.weight", x);
            add_mat(t, &lw->exp_up[x], WT_MAT, i, x, Im, C, N(en));
            snprintf(en, sizeof en, "mlp.experts.%d.down_proj.weight", x);
            add_mat(t, &lw->exp_down[x], WT_MAT, i, x, C, Im, N(en));
        }
        if (c->n_shared_experts) {
            int S = Im * c->n_shared_experts;
            add_mat(t, &lw->sh_gate, WT_MAT, i, -1, S, C, N("mlp.shared_experts.gate_proj.weight"));
            add_mat(t, &lw->sh_up, WT_MAT, i, -1, S, C, N("mlp.shared_experts.up_proj.weight"));
            add_mat(t, &lw->sh_down, WT_MAT, i, -1, C, S, N("mlp.shared_experts.down_proj.weight"));
        }
    }
#undef N
}

int weights_table(const dc_config *c, model_w *w, wt_entry **out, int *n, dc_err *err) {
    memset(w, 0, sizeof *w);
    *out = NULL;
    *n = 0;
    int L = c->num_hidden_layers, D = c->num_nextn_predict_layers, C = c->hidden_size, V = c->vocab_size;
    w->nlayers = L + D;
    w->layers = calloc(w->nlayers, sizeof *w->layers);
    if (!w->layers) return err_set(err, DC_ENOMEM, "weights: out of memory for %d layers", w->nlayers);
    for (int i = 0; i < w->nlayers; i++) {
        if (!dc_config_is_moe_layer(c, i)) continue;
        layer_w *lw = &w->layers[i];
        int E = c->n_routed_experts;
        lw->exp_gate = calloc(E, sizeof(mat));
        lw->exp_up = calloc(E, sizeof(mat));
        lw->exp_down = calloc(E, sizeof(mat));
        if (!lw->exp_gate || !lw->exp_up || !lw->exp_down) {
            weights_free(w);
            return err_set(err, DC_ENOMEM, "weights: out of memory for %d experts", E);
        }
    }
    tb t = {0};
    wt_entry *emb = add(&t, WT_EMBED, -1, -1, V, C, "model.embed_tokens.weight");
    if (emb) emb->dst = &w->embed, emb->gtype = &w->embed_type;
    for (int i = 0; i < L; i++) add_block(&t, c, &w->layers[i], i);
    add_vec(&t, &w->norm, WT_NORM, -1, C, "model.norm.weight");
    add_mat(&t, &w->head, WT_HEAD, -1, -1, V, C, "lm_head.weight");
    for (int k = 0; k < D; k++) {
        int i = L + k;
        layer_w *lw = &w->layers[i];
        wt_entry *e = add(&t, WT_EMBED, i, -1, V, C, "model.layers.%d.embed_tokens.weight", i);
        if (e) e->dst = &lw->embed, e->gtype = &lw->embed_type, e->alias = "model.embed_tokens.weight";
        char nm[96];
        snprintf(nm, sizeof nm, "model.layers.%d.enorm.weight", i);
        add_vec(&t, &lw->enorm, WT_NORM, i, C, nm);
        snprintf(nm, sizeof nm, "model.layers.%d.hnorm.weight", i);
        add_vec(&t, &lw->hnorm, WT_NORM, i, C, nm);
        snprintf(nm, sizeof nm, "model.layers.%d.eh_proj.weight", i);
        add_mat(&t, &lw->eh_proj, WT_MAT, i, -1, C, 2 * C, nm);
        add_block(&t, c, lw, i);
        snprintf(nm, sizeof nm, "model.layers.%d.shared_head.norm.weight", i);
        add_vec(&t, &lw->head_norm, WT_NORM, i, C, nm);
        snprintf(nm, sizeof nm, "model.layers.%d.shared_head.head.weight", i);
        add_mat(&t, &lw->head, WT_HEAD, i, -1, V, C, nm);
        if (!t.oom) t.e[t.n - 1].alias = "lm_head.weight";
    }
    if (t.oom) {
        free(t.e);
        weights_free(w);
        return err_set(err, DC_ENOMEM, "weights: out of memory for the tensor table");
    }
    *out = t.e;
    *n = t.n;
    return DC_OK;
}

void weights_free(model_w *w) {
    if (!w) return;
    for (int i = 0; w->layers && i < w->nlayers; i++) {
        free(w->layers[i].exp_gate);
        free(w->layers[i].exp_up);
        free(w->layers[i].exp_down);
    }
    free(w->layers);
    free(w->arena);
    free(w->qarena);
    free(w->karena);
    free(w->kvb_arena);
    mfile_close(&w->map);
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- loading */

/* check_shape: the checkpoint tensor t has the shape the config gives e */
static int check_shape(const st_set *s, const st_tensor *t, const wt_entry *e, dc_err *err) {
    const char *file = s->paths[t->file];
    int want_nd = e->cols ? 2 : 1;
    int shape_ok = t->ndim == want_nd && t->shape[0] == e->rows && (!e->cols || t->shape[1] == e->cols);
    if (!shape_ok) {
        char got[96] = "", want[48];
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (e->cols) snprintf(want, sizeof want, "%d, %d", e->rows, e->cols);
        else snprintf(want, sizeof want, "%d", e->rows);
        return err_set(err, DC_ESHAPE, "%s: tensor %s has shape [%s], the config needs [%s]", file, e->name, got,
                       want);
    }
    return DC_OK;
}

/* fp8_scales: the weight_scale_inv of F8_E4M3 tensor t (entry e), checked:
 * one float32 (or bf16) per (bm, bn) block, V3 §3.3; *bm, *bn from the config */
static int fp8_scales(const dc_config *c, const st_set *s, const st_tensor *t, const wt_entry *e,
                      const st_tensor **out, int *bm_, int *bn_, dc_err *err) {
    const char *file = s->paths[t->file];
    char sname[192];
    snprintf(sname, sizeof sname, "%s_scale_inv", e->name);
    const st_tensor *sc = st_find(s, sname);
    if (!e->cols) return err_set(err, DC_EDTYPE, "%s: tensor %s is F8_E4M3 but not a matrix", file, e->name);
    if (!sc) return err_set(err, DC_ENOTFOUND, "%s: tensor %s is F8_E4M3 but %s is missing", file, e->name, sname);
    int bm = c->fp8_block_m ? c->fp8_block_m : 128, bn = c->fp8_block_n ? c->fp8_block_n : 128;
    int64_t sr = (e->rows + bm - 1) / bm, sc_ = (e->cols + bn - 1) / bn;
    if (sc->ndim != 2 || sc->shape[0] != sr || sc->shape[1] != sc_)
        return err_set(err, DC_ESHAPE, "%s: tensor %s must have shape [%lld, %lld] for %dx%d blocks of %s",
                       s->paths[sc->file], sname, (long long)sr, (long long)sc_, bm, bn, e->name);
    if (sc->dtype != ST_F32 && sc->dtype != ST_BF16)
        return err_set(err, DC_EDTYPE, "%s: tensor %s has dtype %s; expected F32", s->paths[sc->file], sname,
                       st_dtype_name(sc->dtype));
    *out = sc, *bm_ = bm, *bn_ = bn;
    return DC_OK;
}

/* scales_f32: a checked scale tensor as float32 */
static void scales_f32(const st_tensor *sc, float *dst) {
    size_t n = (size_t)sc->shape[0] * (size_t)sc->shape[1];
    for (size_t i = 0; i < n; i++)
        dst[i] = sc->dtype == ST_F32 ? ((const float *)sc->data)[i] : bf16_to_f32(((const uint16_t *)sc->data)[i]);
}

/* keeps_fp8: whether entry e, stored as t, stays FP8 in memory (MAT_FP8):
 * a matrix the model multiplies through matmul or the matvec kernels (kv_b
 * too: the absorbed attention takes its rows per head, mla.c), 128-wide
 * column blocks and whole blocks a row */
static int keeps_fp8(const dc_config *c, const st_tensor *t, const wt_entry *e) {
    int bm = c->fp8_block_m ? c->fp8_block_m : 128, bn = c->fp8_block_n ? c->fp8_block_n : 128;
    return t->dtype == ST_F8_E4M3 && e->m && e->kind == WT_MAT && fp8_keeps(e->cols, bm, bn);
}

/* keep_fp8: tensor t of entry e into dst (mat_type_bytes(MAT_FP8) bytes) as
 * rows of FP8 blocks, its codes and scales unchanged; a NaN code or a
 * non-finite scale is a corrupt file (issue 14) */
static int keep_fp8(const dc_config *c, const st_set *s, const st_tensor *t, const wt_entry *e, void *dst,
                    dc_err *err) {
    const st_tensor *sc;
    int bm, bn, rc = check_shape(s, t, e, err);
    if (!rc) rc = fp8_scales(c, s, t, e, &sc, &bm, &bn, err);
    if (rc) return rc;
    const uint8_t *q = t->data;
    size_t n = wt_numel(e), bad = n;
    for (size_t i = 0; i < n && bad == n; i++) bad = (q[i] & 0x7f) == 0x7f ? i : n;
    if (bad < n)
        return err_set(err, DC_EFORMAT, "%s: tensor %s holds NaN at element %zu (row %zu): the checkpoint is corrupt",
                       s->paths[t->file], e->name, bad, bad / (size_t)e->cols);
    size_t ns = (size_t)sc->shape[0] * (size_t)sc->shape[1];
    float *scale = malloc(sizeof(float) * ns);
    if (!scale) return err_set(err, DC_ENOMEM, "%s: out of memory for the scales of %s", s->paths[t->file], e->name);
    scales_f32(sc, scale);
    int64_t nf = f32_first_nonfinite(scale, (int64_t)ns);
    if (nf < 0) fp8_from_official(q, scale, 0, e->rows, e->cols, bm, dst);
    free(scale);
    if (nf >= 0)
        return err_set(err, DC_EFORMAT, "%s: the scale of tensor %s holds NaN or infinity at block %lld: the "
                       "checkpoint is corrupt", s->paths[sc->file], e->name, (long long)nf);
    return DC_OK;
}

/* keeps_half: with keep (inference), a BF16 or F16 matrix, head or token
 * embedding stays as stored (MAT_BF16 / MAT_F16, GG_BF16 / GG_F16): the
 * kernels read them as they are (issue 15: a BF16 checkpoint widened to
 * float32 took twice its bytes in memory and in every decoded token; V3
 * keeps its head and embeddings in BF16 beside the FP8 matrices). Other
 * BF16 tensors (norms, router) are small and read as float32. KEEP_* or 0. */
enum { KEEP_FP8 = 1, KEEP_BF16 = 2, KEEP_F16 = 3 };
static int keeps_half(const st_tensor *t, const wt_entry *e) {
    if ((t->dtype != ST_BF16 && t->dtype != ST_F16) || !e->cols) return 0;
    if (!((e->kind == WT_MAT || e->kind == WT_HEAD) && e->m) && !(e->kind == WT_EMBED && e->gtype)) return 0;
    return t->dtype == ST_BF16 ? KEEP_BF16 : KEEP_F16;
}

/* keep_half: tensor t of entry e into dst as it is stored (bf16 or f16
 * codes of type), its file pages dropped as copied; a NaN or an infinity is
 * a corrupt file, as for the widened tensors (dequant) */
static int keep_half(const st_set *s, const st_tensor *t, const wt_entry *e, int type, void *dst, dc_err *err) {
    int rc = check_shape(s, t, e, err);
    if (rc) return rc;
    const size_t n = wt_numel(e);
    mfile_copy_out(&s->files[t->file], dst, t->data, n * 2); /* the file's offset need not be even */
    const int64_t bad = gg_first_nonfinite(wtype_get(type)->gg, dst, (int64_t)n);
    if (bad >= 0) {
        float v;
        gg_dequantize(wtype_get(type)->gg, (const uint16_t *)dst + bad, &v, 1);
        return err_set(err, DC_EFORMAT, "%s: tensor %s holds %s at element %lld (row %lld): the checkpoint is corrupt",
                       s->paths[t->file], e->name, isnan(v) ? "NaN" : "an infinity", (long long)bad,
                       (long long)(bad / e->cols));
    }
    return DC_OK;
}

/* dequant_raw: one checkpoint tensor into float32 dst, checked against e. */
static int dequant_raw(const dc_config *c, const st_set *s, const st_tensor *t, const wt_entry *e, float *dst,
                       dc_err *err) {
    const char *file = s->paths[t->file];
    int rc = check_shape(s, t, e, err);
    if (rc) return rc;
    size_t n = wt_numel(e);
    switch (t->dtype) {
    case ST_F32: memcpy(dst, t->data, n * 4); return DC_OK;
    case ST_BF16: {
        const uint16_t *src = (const uint16_t *)t->data;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
        return DC_OK;
    }
    case ST_F16: {
        const uint16_t *src = (const uint16_t *)t->data;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(src[i]);
        return DC_OK;
    }
    case ST_F8_E4M3: break;
    default:
        return err_set(err, DC_EDTYPE, "%s: tensor %s has dtype %s; expected F32, BF16, F16 or F8_E4M3", file,
                       e->name, st_dtype_name(t->dtype));
    }
    const st_tensor *sc;
    int bm, bn;
    if ((rc = fp8_scales(c, s, t, e, &sc, &bm, &bn, err))) return rc;
    float *scale = malloc(sizeof(float) * (size_t)sc->shape[0] * (size_t)sc->shape[1]);
    if (!scale) return err_set(err, DC_ENOMEM, "%s: out of memory for the scales of %s", file, e->name);
    scales_f32(sc, scale);
    fp8_dequantize_official(t->data, scale, e->rows, e->cols, bm, bn, dst);
    free(scale);
    return DC_OK;
}

/* dequant: dequant_raw, then every value must be a number: one NaN or
 * infinity in a weight poisons every logit after it (issue 14) */
static int dequant(const dc_config *c, const st_set *s, const st_tensor *t, const wt_entry *e, float *dst,
                   dc_err *err) {
    int rc = dequant_raw(c, s, t, e, dst, err);
    if (rc) return rc;
    int64_t bad = f32_first_nonfinite(dst, (int64_t)wt_numel(e));
    if (bad < 0) return DC_OK;
    return err_set(err, DC_EFORMAT, "%s: tensor %s holds %s at element %lld (row %lld): the checkpoint is corrupt",
                   s->paths[t->file], e->name, isnan(dst[bad]) ? "NaN" : "an infinity", (long long)bad,
                   (long long)(e->cols ? bad / e->cols : 0));
}

#define ALIGN_FLOATS 16 /* 64 bytes */

int weights_keep_experts(wt_entry *e, int n, int ex0, int ex1) {
    if (ex1 <= 0) return n;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (e[i].expert < 0 || (e[i].expert >= ex0 && e[i].expert < ex1)) e[m++] = e[i];
    return m;
}

static int kept_type(int kt) { return kt == KEEP_FP8 ? MAT_FP8 : kt == KEEP_BF16 ? MAT_BF16 : MAT_F16; }

/* the arenas: float32 for every present entry not kept (kt 0), qarena for
 * the kept ones (KEEP_*); each entry's storage pointer set. w->dtype: FP8
 * when a matrix is kept FP8, else the half type holding the most bytes of
 * kept matrices (a head or embedding kept alone does not count: the model's
 * matrices are float32, and `--dtype` converts them as ever) */
static int place(model_w *w, const wt_entry *e, int n, const st_tensor **src, const char *kt, const char *dir,
                 dc_err *err) {
    size_t total = 0, qbytes = 0, tb[MAT_NTYPES] = {0};
    for (int i = 0; i < n; i++) {
        if (!src[i]) continue;
        if (kt[i]) {
            const size_t b = mat_type_bytes(kept_type(kt[i]), e[i].rows, e[i].cols);
            qbytes += (b + 63) & ~(size_t)63;
            if (e[i].kind == WT_MAT) tb[kept_type(kt[i])] += b;
        } else total += (wt_numel(&e[i]) + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    }
    w->arena = huge_alloc(total * sizeof(float) + 64);
    w->arena_floats = total;
    if (qbytes) w->qarena = huge_alloc(qbytes + 64), w->qarena_bytes = qbytes;
    if (!w->arena || (qbytes && !w->qarena))
        return err_set(err, DC_ENOMEM, "%s: cannot allocate %.2f GB for the weights", dir, (total * 4.0 + qbytes) / 1e9);
    size_t off = 0, qoff = 0;
    for (int i = 0; i < n; i++) {
        if (!src[i]) continue;
        if (kt[i]) {
            const int type = kept_type(kt[i]);
            *e[i].dst = (float *)(void *)((char *)w->qarena + qoff);
            if (e[i].m) e[i].m->type = type;
            if (e[i].gtype) *e[i].gtype = wtype_get(type)->gg;
            qoff += (mat_type_bytes(type, e[i].rows, e[i].cols) + 63) & ~(size_t)63;
        } else {
            *e[i].dst = w->arena + off;
            off += (wt_numel(&e[i]) + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
        }
    }
    w->kept = qbytes > 0;
    w->dtype = tb[MAT_FP8] ? MAT_FP8 : tb[MAT_BF16] || tb[MAT_F16] ? (tb[MAT_F16] > tb[MAT_BF16] ? MAT_F16 : MAT_BF16) : MAT_F32;
    return DC_OK;
}

int weights_load(const dc_config *c, const char *dir, int keep, model_w *w, dc_err *err) {
    if (path_is_gguf(dir)) return weights_load_gguf(c, dir, !keep, w, err); /* load_gguf.c: matrices kept as stored */
    wt_entry *e;
    int n, ex0 = w->ex0, ex1 = w->ex1;
    int rc = weights_table(c, w, &e, &n, err);
    if (rc) return rc;
    n = weights_keep_experts(e, n, ex0, ex1);
    w->ex0 = ex0, w->ex1 = ex1;
    st_set s;
    const st_tensor **src = NULL;
    char *kt = NULL;
    if ((rc = st_open_dir(&s, dir, err))) goto done;
    /* resolve each entry: present in the checkpoint, or an alias of a main tensor */
    src = calloc(n, sizeof *src), kt = calloc(n, 1);
    if (!src || !kt) {
        rc = err_set(err, DC_ENOMEM, "weights: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        src[i] = st_find(&s, e[i].name);
        if (!src[i] && !e[i].alias) {
            rc = err_set(err, DC_ENOTFOUND, "%s: tensor %s is missing from the checkpoint", dir, e[i].name);
            break;
        }
        /* shapes before the allocation: a config that does not match the
         * weights is a shape error, not "cannot allocate 140 GB" */
        if (src[i] && (rc = check_shape(&s, src[i], &e[i], err))) break;
        kt[i] = keep && src[i] && keeps_fp8(c, src[i], &e[i]) ? KEEP_FP8 : 0;
    }
    for (int i = 0; i < n && !rc && keep; i++)
        if (src[i] && !kt[i]) kt[i] = (char)keeps_half(src[i], &e[i]);
    if (!rc) rc = place(w, e, n, src, kt, dir, err);
    libprog pg;
    libprog_start(&pg, "load", n);
    for (int i = 0; i < n && !rc; i++) {
        libprog_add(&pg, 1);
        if (!src[i]) continue;
        if (kt[i] && kt[i] != KEEP_FP8) { /* its pages dropped as it is copied */
            rc = keep_half(&s, src[i], &e[i], kept_type(kt[i]), *e[i].dst, err);
            continue;
        }
        rc = kt[i] ? keep_fp8(c, &s, src[i], &e[i], *e[i].dst, err) : dequant(c, &s, src[i], &e[i], *e[i].dst, err);
        /* the file's pages of a tensor read are dropped from the resident set, so
         * the mapping and the weights are not resident together (a BF16 mini
         * peaked at 2.59 GB for 1.32 GB of weights) */
        mfile_release(&s.files[src[i]->file], src[i]->data, src[i]->nbytes);
    }
    if (!rc) libprog_end(&pg);
    /* aliases point at the main tensor they share (and take its type) */
    for (int i = 0; i < n && !rc; i++) {
        if (src[i]) continue;
        for (int j = 0; j < n; j++)
            if (strcmp(e[j].name, e[i].alias) == 0) {
                *e[i].dst = *e[j].dst;
                if (e[i].m && e[j].m) e[i].m->type = e[j].m->type;
                if (e[i].gtype && e[j].gtype) *e[i].gtype = *e[j].gtype;
            }
    }
done:
    free(src);
    free(kt);
    st_close(&s);
    free(e);
    if (rc) weights_free(w);
    return rc;
}

/* ---------------------------------------------------------------- conversion */

/* the mats of one layer that weights_convert stores in the new type; out
 * holds 15 + 3E (k_b and v_b where a GGUF kept them) */
static int layer_mats(layer_w *lw, int E, mat **out) {
    int n = 0;
    mat *m[] = {&lw->q_a, &lw->q_b, &lw->q, &lw->kv_a, &lw->o, &lw->gate, &lw->up, &lw->down,
                &lw->sh_gate, &lw->sh_up, &lw->sh_down, &lw->eh_proj, &lw->head, &lw->k_b, &lw->v_b};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (m[i]->data) out[n++] = m[i];
    for (int e = 0; lw->exp_gate && e < E; e++) {
        if (!lw->exp_gate[e].data) continue; /* another rank's expert (moe_ep.h) */
        out[n++] = &lw->exp_gate[e];
        out[n++] = &lw->exp_up[e];
        out[n++] = &lw->exp_down[e];
    }
    return n;
}

/* give back the whole pages inside [p, p + n) */
static size_t release_pages(void *p, size_t n) {
    const uintptr_t pg = 4096;
    uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), b = ((uintptr_t)p + n) & ~(pg - 1);
    if (b <= a || madvise((void *)a, b - a, MADV_DONTNEED)) return 0;
    return b - a;
}

/* kvb_split_bytes: k_b (H*kvl, nope) and v_b (H*v, kvl) in type, each
 * 64-byte aligned; 0 when their rows are not whole blocks of it */
static size_t kvb_split_bytes(const dc_config *c, int type) {
    int H = c->num_attention_heads, nope = c->qk_nope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
    size_t k = mat_type_bytes(type, H * kvl, nope), v = mat_type_bytes(type, H * vd, kvl);
    return k && v ? ((k + 63) & ~(size_t)63) + ((v + 63) & ~(size_t)63) : 0;
}

/* the float kinds weights_convert and weights_split_kvb take a matrix from */
static int widens(int type) { return type == MAT_F32 || type == MAT_BF16 || type == MAT_F16; }

/* m as float32: its own data when it is float32, else widened into *buf
 * (grown to *cap floats as needed); NULL when *buf cannot grow */
static const float *as_f32(const mat *m, float **buf, size_t *cap) {
    if (m->type == MAT_F32) return m->data;
    const size_t n = (size_t)m->rows * m->cols;
    if (n > *cap) {
        free(*buf);
        *buf = malloc(sizeof(float) * n);
        *cap = *buf ? n : 0;
        if (!*buf) return NULL;
    }
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int r = 0; r < m->rows; r++) mat_row_f32(m, r, *buf + (size_t)r * m->cols);
    return *buf;
}

/* kvb_split: a layer's kv_b (float32, or kept bf16 / f16) into k_b (W_uk_h^T,
 * head after head) and v_b (W_uv_h) of type at dst (kvb_split_bytes); kv_b's
 * pages given back and its data NULL (weights.h). 0 when the float32 staging
 * cannot be had. */
static int kvb_split(const dc_config *c, model_w *w, layer_w *lw, int type, char *dst) {
    const int H = c->num_attention_heads, nope = c->qk_nope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
    float *kt = malloc(sizeof(float) * (size_t)H * kvl * nope), *vr = malloc(sizeof(float) * (size_t)H * vd * kvl);
    float *wide = NULL;
    size_t cap = 0;
    const float *kvb = kt && vr ? as_f32(&lw->kv_b, &wide, &cap) : NULL;
    if (!kvb) {
        free(kt), free(vr), free(wide);
        return 0;
    }
    for (int h = 0; h < H; h++) {
        const float *wh = kvb + (size_t)h * (nope + vd) * kvl; /* [W_uk_h (nope, kvl); W_uv_h (v, kvl)] */
        for (int l = 0; l < kvl; l++)
            for (int d = 0; d < nope; d++) kt[((size_t)h * kvl + l) * nope + d] = wh[(size_t)d * kvl + l];
        memcpy(vr + (size_t)h * vd * kvl, wh + (size_t)nope * kvl, sizeof(float) * vd * kvl);
    }
    mat fk = {kt, MAT_F32, H * kvl, nope}, fv = {vr, MAT_F32, H * vd, kvl};
    size_t kb = (mat_type_bytes(type, fk.rows, fk.cols) + 63) & ~(size_t)63;
    mat_convert(&fk, type, dst);
    mat_convert(&fv, type, dst + kb);
    lw->k_b = (mat){(float *)(void *)dst, type, fk.rows, fk.cols};
    lw->v_b = (mat){(float *)(void *)(dst + kb), type, fv.rows, fv.cols};
    w->released_bytes += release_pages(lw->kv_b.data, mat_bytes(&lw->kv_b));
    lw->kv_b.data = NULL;
    free(kt), free(vr), free(wide);
    return 1;
}

int weights_split_kvb(const dc_config *c, model_w *w, int type, dc_err *err) {
    size_t b = kvb_split_bytes(c, type);
    int n = 0;
    for (int l = 0; l < w->nlayers; l++) n += w->layers[l].kv_b.data && widens(w->layers[l].kv_b.type);
    if (!b || !n || w->kvb_arena) return DC_OK; /* rows not whole blocks of type: kv_b stays float32 */
    w->kvb_arena = aligned_alloc(64, (size_t)n * b);
    if (!w->kvb_arena)
        return err_set(err, DC_ENOMEM, "weights_split_kvb: cannot allocate %.2f MB", (double)n * b * 1e-6);
    w->kvb_bytes = (size_t)n * b;
    char *dst = w->kvb_arena;
    for (int l = 0; l < w->nlayers; l++) {
        layer_w *lw = &w->layers[l];
        if (!lw->kv_b.data || !widens(lw->kv_b.type)) continue;
        if (!kvb_split(c, w, lw, type, dst))
            return err_set(err, DC_ENOMEM, "weights_split_kvb: out of memory splitting kv_b of layer %d", l);
        dst += b;
    }
    return DC_OK;
}

int weights_convertible(const dc_config *c, const model_w *w) {
    if (!w->kept) return !w->karena && w->dtype == MAT_F32 && !w->qarena;
    if (w->map.size || !widens(w->head.type)) return 0;
    for (int l = 0; l < w->nlayers; l++) {
        mat *m[15 + 3 * (size_t)c->n_routed_experts];
        const int n = layer_mats(&w->layers[l], c->n_routed_experts, m);
        for (int i = 0; i < n; i++)
            if (!widens(m[i]->type)) return 0;
    }
    return 1;
}

int weights_convert(const dc_config *c, model_w *w, int type, dc_err *err) {
    if (type == MAT_F32) return DC_OK;
    if (type <= MAT_F32 || type >= MAT_NTYPES) return err_set(err, DC_EARG, "weights_convert: unknown type %d", type);
    if (!weights_convertible(c, w))
        return err_set(err, DC_EARG, w->kept ? "weights_convert: the %s matrices kept as stored are not requantised"
                                             : "weights_convert: weights are already converted (%s)",
                       mat_type_name(w->dtype));
    const int E = c->n_routed_experts;
    size_t cap = 1 + (size_t)w->nlayers * (15 + 3 * (size_t)E);
    mat **list = malloc(sizeof *list * cap);
    if (!list) return err_set(err, DC_ENOMEM, "weights_convert: out of memory");
    int n = 0;
    list[n++] = &w->head;
    for (int i = 0; i < w->nlayers; i++) n += layer_mats(&w->layers[i], E, list + n);
    /* aliases (an MTP head sharing lm_head) are converted once: only heads alias */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int alias = i > 0 && list[i]->data == w->head.data;
        size_t b = mat_type_bytes(type, list[i]->rows, list[i]->cols);
        if (!alias && b) total += (b + 63) & ~(size_t)63;
    }
    void *q = huge_alloc(total + 64);
    if (!q) {
        free(list);
        return err_set(err, DC_ENOMEM, "weights_convert: cannot allocate %.2f GB for %s weights", total / 1e9,
                       mat_type_name(type));
    }
    if (w->kept) w->karena = w->qarena, w->karena_bytes = w->qarena_bytes, w->kept = 0;
    w->qarena = q, w->qarena_bytes = total;
    float *old_head = w->head.data, *wide = NULL;
    size_t wcap = 0;
    char *dst = w->qarena;
    int rc = DC_OK;
    for (int i = 0; i < n && !rc; i++) {
        mat *m = list[i];
        size_t b = mat_type_bytes(type, m->rows, m->cols);
        if (!b) continue; /* e.g. cols not a multiple of 32 for Q8_0: stays as it is */
        if (i > 0 && m->data == old_head) {
            *m = w->head;
            continue;
        }
        const float *f = as_f32(m, &wide, &wcap);
        if (!f) {
            rc = err_set(err, DC_ENOMEM, "weights_convert: out of memory widening a %d x %d matrix", m->rows, m->cols);
            break;
        }
        /* Q4_0, Q4_K, Q6_K, ... with their rows interleaved 8 at a time (kernels/repack.h: the decode kernels' layout) */
        const int t = mat_type_ilv(type);
        const mat fm = {(float *)f, MAT_F32, m->rows, m->cols};
        mat_convert(&fm, t, dst);
        w->released_bytes += release_pages(m->data, mat_bytes(m));
        m->data = (float *)(void *)dst;
        m->type = t;
        dst += (b + 63) & ~(size_t)63;
    }
    free(wide);
    free(list);
    if (rc) return rc; /* each matrix converted or as it was: the model still runs */
    w->dtype = type;
    return weights_split_kvb(c, w, type, err); /* kv_b as the absorbed attention's pieces (mla.c) */
}

int weights_read_entry(const dc_config *c, const st_set *s, const char *dir, const wt_entry *e, float *dst,
                       int *present, dc_err *err) {
    const st_tensor *t = st_find(s, e->name);
    *present = t != NULL;
    if (!t) return e->alias ? DC_OK : err_set(err, DC_ENOTFOUND, "%s: tensor %s is missing from the checkpoint", dir, e->name);
    int rc = check_shape(s, t, e, err);
    if (rc || !dst) return rc;
    rc = dequant(c, s, t, e, dst, err);
    mfile_release(&s->files[t->file], t->data, t->nbytes); /* read once: its pages go back */
    return rc;
}

int weights_read(const dc_config *c, const char *dir, const wt_entry *e, int n, dc_err *err) {
    st_set s;
    int rc = st_open_dir(&s, dir, err);
    for (int i = 0; i < n && !rc; i++) {
        if (e[i].alias) continue;
        const st_tensor *t = st_find(&s, e[i].name);
        if (!t) rc = err_set(err, DC_ENOTFOUND, "%s: tensor %s is missing from the checkpoint", dir, e[i].name);
        else rc = dequant(c, &s, t, &e[i], *e[i].dst, err);
    }
    st_close(&s);
    return rc;
}
