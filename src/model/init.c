/*
 * init.c — write a randomly initialised DeepSeek checkpoint in the Hugging
 * Face layout, so tests and benchmarks have models without a download.
 *
 * Values: matrices, embeddings and the router ~ N(0, 0.02^2) (V3 §4.2 uses
 * 0.006 for the full model; 0.02 keeps tiny models' activations lively),
 * norms 1, the selection bias 0. Each tensor's stream is seeded from the seed
 * and its name, so a tensor's values never depend on the others; MTP copies
 * of the embedding and head are seeded by the main tensor's name and hold
 * the same values, as in the official checkpoints.
 *
 * dtype fp8 stores every WT_MAT matrix as float8 e4m3 with one float32
 * weight_scale_inv per 128x128 block (scale = block amax / 448), the rest as
 * bf16, and adds quantization_config to config.json, as the V3 release does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "kernels/dtype.h"
#include "kernels/fp8_block.h"
#include "model/config.h"
#include "model/weights.h"

enum { DT_F32, DT_BF16, DT_FP8, DT_F16 };

static uint64_t name_seed(uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *name; name++) h = (h ^ (uint8_t)*name) * 1099511628211ull;
    return h;
}

static void fill(const wt_entry *e, uint64_t seed, float *buf) {
    size_t n = wt_numel(e);
    if (e->kind == WT_NORM) {
        for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
        return;
    }
    if (e->kind == WT_BIAS) {
        memset(buf, 0, n * sizeof *buf);
        return;
    }
    rng r;
    rng_seed(&r, name_seed(seed, e->alias ? e->alias : e->name));
    for (size_t i = 0; i < n; i++) buf[i] = 0.02f * rng_normal(&r);
}

/* one stored tensor: an entry of the table, or the scale of an fp8 one */
typedef struct item {
    int entry;
    int is_scale;
} item;

static int is_fp8(int dt, const wt_entry *e) { return dt == DT_FP8 && e->kind == WT_MAT; }

/* the safetensors dtype a tensor is stored in: the selection bias stays
 * float32 as in the official release */
static int stored_dtype(int dt, const wt_entry *e) {
    if (is_fp8(dt, e)) return ST_F8_E4M3;
    return dt == DT_F32 || e->kind == WT_BIAS ? ST_F32 : dt == DT_F16 ? ST_F16 : ST_BF16;
}

static size_t stored_bytes(int dt, const wt_entry *e) {
    return wt_numel(e) * (size_t)st_dtype_size(stored_dtype(dt, e));
}

/* quantise buf (rows, cols) to e4m3 in q, block scales into sc (sr, scn):
 * fp8_block.h's official-layout quantiser, with an all-zero block's scale
 * written 1 (its codes are 0 either way) as init always has */
static void quant_fp8(const float *buf, int rows, int cols, int bm, int bn, uint8_t *q, float *sc) {
    const size_t ns = (size_t)((rows + bm - 1) / bm) * (size_t)((cols + bn - 1) / bn);
    fp8_quantize_official(buf, rows, cols, bm, bn, q, sc);
    for (size_t i = 0; i < ns; i++)
        if (sc[i] == 0) sc[i] = 1;
}

static int write_shard(const char *path, const wt_entry *e, const item *it, int n, int dt, const dc_config *c,
                       uint64_t seed, float *buf, uint8_t *out, libprog *pg, dc_err *err) {
    st_entry *se = calloc(n ? n : 1, sizeof *se);
    if (!se) return err_set(err, DC_ENOMEM, "init: out of memory");
    int bm = c->fp8_block_m, bn = c->fp8_block_n;
    for (int i = 0; i < n; i++) {
        const wt_entry *w = &e[it[i].entry];
        st_entry *s = &se[i];
        if (it[i].is_scale) {
            snprintf(s->name, sizeof s->name, "%s_scale_inv", w->name);
            s->dtype = ST_F32;
            s->ndim = 2;
            s->shape[0] = (w->rows + bm - 1) / bm;
            s->shape[1] = (w->cols + bn - 1) / bn;
        } else {
            snprintf(s->name, sizeof s->name, "%s", w->name);
            s->dtype = stored_dtype(dt, w);
            s->ndim = w->cols ? 2 : 1;
            s->shape[0] = w->rows;
            s->shape[1] = w->cols;
        }
    }
    st_writer wr;
    int rc = st_write_begin(&wr, path, se, n, err);
    for (int i = 0; i < n && !rc; i++) {
        const wt_entry *w = &e[it[i].entry];
        size_t numel = wt_numel(w);
        if (it[i].is_scale) continue; /* written right after its tensor */
        libprog_add(pg, (int64_t)stored_bytes(dt, w));
        fill(w, seed, buf);
        if (is_fp8(dt, w)) {
            float *sc = (float *)(out + numel);
            quant_fp8(buf, w->rows, w->cols, bm, bn, out, sc);
            rc = st_write_data(&wr, out, numel, err);
            if (!rc) rc = st_write_data(&wr, sc, st_entry_bytes(&se[i + 1]), err);
        } else if (se[i].dtype == ST_F32) {
            rc = st_write_data(&wr, buf, numel * 4, err);
        } else {
            uint16_t *h = (uint16_t *)out;
            if (se[i].dtype == ST_F16)
                for (size_t k = 0; k < numel; k++) h[k] = f32_to_f16(buf[k]);
            else
                for (size_t k = 0; k < numel; k++) h[k] = f32_to_bf16(buf[k]);
            rc = st_write_data(&wr, h, numel * 2, err);
        }
    }
    if (!rc) rc = st_write_end(&wr, err);
    else st_write_abort(&wr);
    free(se);
    return rc;
}

int weights_write_random(const dc_config *cfg_in, const char *dir, uint64_t seed, const char *dtype,
                         size_t shard_bytes, dc_err *err) {
    dc_config c = *cfg_in;
    int dt = !strcmp(dtype, "f32")    ? DT_F32
             : !strcmp(dtype, "bf16") ? DT_BF16
             : !strcmp(dtype, "f16")  ? DT_F16
             : !strcmp(dtype, "fp8")  ? DT_FP8
                                      : -1;
    if (dt < 0) return err_set(err, DC_EARG, "init: dtype \"%s\" is not one of f32, bf16, f16, fp8", dtype);
    if (dt == DT_FP8) {
        if (!c.fp8_block_m) c.fp8_block_m = c.fp8_block_n = 128;
    } else {
        c.fp8_block_m = c.fp8_block_n = 0;
    }
    int rc = dc_config_check(&c, err);
    if (rc) return rc;
    if ((rc = dir_make(dir, err))) return rc;
    model_w w;
    wt_entry *e;
    int n;
    if ((rc = weights_table(&c, &w, &e, &n, err))) return rc;
    item *it = malloc(sizeof *it * 2 * n);
    size_t maxn = 0, total = 0;
    int ni = 0;
    for (int i = 0; i < n && it; i++) {
        size_t numel = wt_numel(&e[i]);
        if (numel > maxn) maxn = numel;
        it[ni++] = (item){i, 0};
        total += stored_bytes(dt, &e[i]);
        if (is_fp8(dt, &e[i])) it[ni++] = (item){i, 1};
    }
    float *buf = malloc(maxn * sizeof(float));
    uint8_t *out = malloc(maxn * sizeof(float) + 4 * (maxn / 64 + 64)); /* fp8 bytes + scales, or bf16 */
    if (!it || !buf || !out) {
        rc = err_set(err, DC_ENOMEM, "init: out of memory for a %zu-element tensor", maxn);
        goto done;
    }
    char path[4096];
    libprog pg;
    libprog_start(&pg, "init", (int64_t)total);
    /* a checkpoint of the other layout left in dir would shadow this one */
    if (!path_join(path, sizeof path, dir, total <= shard_bytes ? "model.safetensors.index.json" : "model.safetensors",
                   err) &&
        file_exists(path))
        remove(path);
    if (total <= shard_bytes) {
        if (!(rc = path_join(path, sizeof path, dir, "model.safetensors", err)))
            rc = write_shard(path, e, it, ni, dt, &c, seed, buf, out, &pg, err);
    } else {
        /* cut into shards of at most shard_bytes (a tensor never splits) */
        int nshard = 0, start = 0;
        size_t acc = 0;
        int *cut = malloc(sizeof(int) * (ni + 1));
        if (!cut) {
            rc = err_set(err, DC_ENOMEM, "init: out of memory");
            goto done;
        }
        for (int i = 0; i < ni; i++) {
            const wt_entry *w = &e[it[i].entry];
            size_t b = it[i].is_scale ? 0 : stored_bytes(dt, w);
            if (acc && acc + b > shard_bytes && !it[i].is_scale) {
                cut[nshard++] = i;
                acc = 0;
            }
            acc += b;
        }
        cut[nshard++] = ni;
        char *idx = NULL;
        size_t cap = 1 << 16, len = 0;
        idx = malloc(cap);
        len += snprintf(idx, cap, "{\n  \"metadata\": {\"total_size\": %zu},\n  \"weight_map\": {\n", total);
        for (int s = 0; s < nshard && !rc; s++) {
            char fname[64];
            snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, nshard);
            if ((rc = path_join(path, sizeof path, dir, fname, err))) break;
            rc = write_shard(path, e, it + start, cut[s] - start, dt, &c, seed, buf, out, &pg, err);
            for (int i = start; i < cut[s] && !rc; i++) {
                if (len + 256 > cap) {
                    char *ni2 = realloc(idx, cap *= 2);
                    if (!ni2) {
                        rc = err_set(err, DC_ENOMEM, "init: out of memory");
                        break;
                    }
                    idx = ni2;
                }
                len += snprintf(idx + len, cap - len, "%s    \"%s%s\": \"%s\"", len && i ? ",\n" : "",
                                e[it[i].entry].name, it[i].is_scale ? "_scale_inv" : "", fname);
            }
            start = cut[s];
        }
        if (!rc) {
            len += snprintf(idx + len, cap - len, "\n  }\n}\n");
            if (!(rc = path_join(path, sizeof path, dir, "model.safetensors.index.json", err)))
                rc = file_write_atomic(path, idx, len, err);
        }
        free(idx);
        free(cut);
    }
    if (!rc) {
        char *js = config_to_json(&c);
        if (!js) rc = err_set(err, DC_ENOMEM, "init: out of memory");
        else if (!(rc = path_join(path, sizeof path, dir, "config.json", err)))
            rc = file_write_atomic(path, js, strlen(js), err);
        free(js);
    }
    if (!rc) libprog_end(&pg);
done:
    free(it);
    free(buf);
    free(out);
    free(e);
    weights_free(&w);
    return rc;
}
