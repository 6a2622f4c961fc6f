/*
 * ckpt_fp8.c — the FP8 export of a checkpoint of an FP8 run: DIR/fp8/ in the
 * layout of DeepSeek-V3's official release, so that DeepSeek's own code (and
 * every deepc command) loads the model as trained.
 *
 *   config.json        the model's config plus quantization_config
 *                      {"quant_method": "fp8", "fmt": "e4m3",
 *                       "weight_block_size": [128, 128], "activation_scheme": "dynamic"}
 *   model.safetensors  every linear weight trained in FP8 (the blocks'
 *                      attention projections and dense / expert / shared FFN
 *                      matrices: WT_MAT but the MTP eh_proj, see kernels/linear.h)
 *                      as F8_E4M3 codes with "<name>_scale_inv" F32
 *                      (ceil(rows/128), ceil(cols/128)): w ~ f32(code) * scale_inv
 *                      of its 128x128 block (kernels/fp8.h, nearest even);
 *                      the router's e_score_correction_bias F32; the rest BF16,
 *                      as in the release
 *   tokenizer.json     when the run has one
 * The f32 master weights stay in DIR/model.safetensors: --resume reads those,
 * so a resumed FP8 run continues exactly; fp8/ is written, never read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "io/safetensors.h"
#include "kernels/dtype.h"
#include "kernels/fp8.h"
#include "model/config.h"
#include "train/checkpoint.h"

/* ckpt_fp8_tensor: 1 when the table entry is stored as FP8 blocks */
int ckpt_fp8_tensor(const wt_entry *e) { return e->kind == WT_MAT && e->cols && !strstr(e->name, "eh_proj"); }

static int ceil128(int n) { return (n + FP8_TILE - 1) / FP8_TILE; }

/* entries: the header of model.safetensors (n entries into se, source table index into src) */
static int entries(const trainer *t, st_entry *se, int *src) {
    int n = 0;
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        int fp8 = ckpt_fp8_tensor(e);
        snprintf(se[n].name, sizeof se[n].name, "%s", e->name);
        se[n].dtype = fp8 ? ST_F8_E4M3 : e->kind == WT_BIAS ? ST_F32 : ST_BF16;
        se[n].ndim = e->cols ? 2 : 1;
        se[n].shape[0] = e->rows, se[n].shape[1] = e->cols;
        src[n++] = i;
        if (!fp8) continue;
        snprintf(se[n].name, sizeof se[n].name, "%s_scale_inv", e->name);
        se[n].dtype = ST_F32, se[n].ndim = 2;
        se[n].shape[0] = ceil128(e->rows), se[n].shape[1] = ceil128(e->cols);
        src[n++] = -1; /* the scales of the entry before */
    }
    return n;
}

static int write_model(const trainer *t, const char *path, dc_err *err) {
    size_t most = 1, most_sc = 1; /* the largest tensor, the most scales */
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        size_t ns = ckpt_fp8_tensor(e) ? (size_t)ceil128(e->rows) * ceil128(e->cols) : 0;
        most = wt_numel(e) > most ? wt_numel(e) : most, most_sc = ns > most_sc ? ns : most_sc;
    }
    st_entry *se = calloc(2 * (size_t)t->ntab, sizeof *se);
    int *src = calloc(2 * (size_t)t->ntab, sizeof *src);
    void *buf = malloc(most * 4);
    float *sc = malloc(most_sc * sizeof *sc);
    int rc = !se || !src || !buf || !sc ? err_set(err, DC_ENOMEM, "%s: out of memory", path) : DC_OK;
    int n = rc ? 0 : entries(t, se, src);
    st_writer w;
    if (!rc) rc = st_write_begin(&w, path, se, n, err);
    for (int k = 0; k < n && !rc; k++) {
        if (src[k] < 0) { /* scales computed with the codes just written */
            rc = st_write_data(&w, sc, st_entry_bytes(&se[k]), err);
            continue;
        }
        const wt_entry *e = &t->tab[src[k]];
        const float *x = *e->dst;
        size_t ne = wt_numel(e);
        if (se[k].dtype == ST_F8_E4M3) fp8_quant_blocks(buf, sc, x, e->rows, e->cols);
        else if (se[k].dtype == ST_BF16)
            for (size_t j = 0; j < ne; j++) ((uint16_t *)buf)[j] = f32_to_bf16(x[j]);
        else memcpy(buf, x, ne * 4);
        rc = st_write_data(&w, buf, st_entry_bytes(&se[k]), err);
    }
    if (!rc && n) rc = st_write_end(&w, err);
    else if (n) st_write_abort(&w);
    free(se), free(src), free(buf), free(sc);
    return rc;
}

int ckpt_write_fp8(const trainer *t, const char *dir, const char *tokenizer, dc_err *err) {
    char d[4200], p[4300];
    snprintf(d, sizeof d, "%s/fp8", dir);
    int rc = dir_make(d, err);
    if (rc) return rc;
    dc_config c = t->cfg;
    c.fp8_block_m = c.fp8_block_n = FP8_TILE;
    char *js = config_to_json(&c);
    if (!js) return err_set(err, DC_ENOMEM, "%s: out of memory", d);
    snprintf(p, sizeof p, "%s/config.json", d);
    rc = file_write_atomic(p, js, strlen(js), err);
    free(js);
    if (!rc) snprintf(p, sizeof p, "%s/model.safetensors", d), rc = write_model(t, p, err);
    if (!rc && tokenizer) snprintf(p, sizeof p, "%s/tokenizer.json", d), rc = file_copy(tokenizer, p, err);
    return rc;
}
