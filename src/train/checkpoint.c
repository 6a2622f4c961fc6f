/* checkpoint.c — see checkpoint.h. */
#include "train/checkpoint.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/config.h"

/* write_tensors: entries of the table whose storage sits at base + (dst - arena);
 * prefix names them ("" or "m." / "v."), skip_alias / skip_bias filter */
static int write_tensors(const trainer *t, const char *path, const float *base, const char *prefix, int optim,
                         dc_err *err) {
    st_entry *se = calloc(t->ntab, sizeof *se);
    const float **src = calloc(t->ntab, sizeof *src);
    if (!se || !src) {
        free(se), free(src);
        return err_set(err, DC_ENOMEM, "checkpoint: out of memory");
    }
    int n = 0;
    for (int i = 0; i < t->ntab; i++) {
        const wt_entry *e = &t->tab[i];
        if (optim && (e->alias || e->kind == WT_BIAS)) continue;
        snprintf(se[n].name, sizeof se[n].name, "%s%s", prefix, e->name);
        se[n].dtype = ST_F32;
        se[n].ndim = e->cols ? 2 : 1;
        se[n].shape[0] = e->rows, se[n].shape[1] = e->cols;
        src[n] = base + (*e->dst - t->arena);
        n++;
    }
    st_writer w;
    int rc = st_write_begin(&w, path, se, n, err);
    for (int i = 0; i < n && !rc; i++) rc = st_write_data(&w, src[i], st_entry_bytes(&se[i]), err);
    if (!rc) rc = st_write_end(&w, err);
    else st_write_abort(&w);
    free(se), free(src);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the step-* directories of run, sorted (oldest first); caller frees */
static char **list_steps(const char *run, int *n) {
    *n = 0;
    DIR *d = opendir(run);
    if (!d) return NULL;
    char **v = NULL;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "step-", 5) != 0) continue;
        if (*n == cap) {
            char **nv = realloc(v, sizeof *v * (cap = cap ? cap * 2 : 16));
            if (!nv) break;
            v = nv;
        }
        v[(*n)++] = strdup(de->d_name);
    }
    closedir(d);
    if (v) qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

int ckpt_save(const trainer *t, const cJSON *state, const char *run, const char *tokenizer, int keep, dc_err *err) {
    if (t->lo != 0 || t->hi != t->n)
        return err_set(err, DC_EARG, "checkpoint: a ZeRO-1 shard: gather the moments and use ckpt_save_mv");
    if (!t->mv.bf16) return ckpt_save_mv(t, t->mv.m, t->mv.v, state, run, tokenizer, keep, err);
    float *m = malloc(sizeof(float) * (t->n ? t->n : 1)), *v = malloc(sizeof(float) * (t->n ? t->n : 1));
    int rc = m && v ? DC_OK : err_set(err, DC_ENOMEM, "checkpoint: out of memory widening the bf16 moments");
    if (!rc) adam_mom_get(&t->mv, 0, t->n, m, v), rc = ckpt_save_mv(t, m, v, state, run, tokenizer, keep, err);
    free(m), free(v);
    return rc;
}

int ckpt_save_mv(const trainer *t, const float *mm, const float *vv, const cJSON *state, const char *run,
                 const char *tokenizer, int keep, dc_err *err) {
    char name[64], tmp[3200], fin[3200], p[4096];
    if (strlen(run) > 3000) return err_set(err, DC_EARG, "checkpoint: run directory path too long");
    snprintf(name, sizeof name, "step-%07lld", (long long)t->step);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", run, name);
    snprintf(fin, sizeof fin, "%s/%s", run, name);
    int rc = dir_remove_tree(tmp, err);
    if (!rc) rc = dir_make(tmp, err);
    if (rc) return rc;
    char *js = config_to_json(&t->cfg);
    if (!js) rc = err_set(err, DC_ENOMEM, "checkpoint: out of memory");
    if (!rc) snprintf(p, sizeof p, "%s/config.json", tmp), rc = file_write_atomic(p, js, strlen(js), err);
    free(js);
    if (!rc) snprintf(p, sizeof p, "%s/model.safetensors", tmp), rc = write_tensors(t, p, t->arena, "", 0, err);
    if (!rc) {
        /* m and v in one file */
        snprintf(p, sizeof p, "%s/optim-m.safetensors", tmp);
        rc = write_tensors(t, p, mm, "m.", 1, err);
        snprintf(p, sizeof p, "%s/optim-v.safetensors", tmp);
        if (!rc) rc = write_tensors(t, p, vv, "v.", 1, err);
    }
    if (!rc && tokenizer) {
        snprintf(p, sizeof p, "%s/tokenizer.json", tmp);
        rc = file_copy(tokenizer, p, err);
    }
    if (!rc && t->o.precision == PREC_FP8) rc = ckpt_write_fp8(t, tmp, tokenizer, err);
    if (!rc) {
        cJSON *j = state ? cJSON_Duplicate(state, 1) : cJSON_CreateObject();
        if (j) cJSON_DeleteItemFromObject(j, "step");
        if (j) cJSON_AddNumberToObject(j, "step", (double)t->step);
        char *s = j ? cJSON_Print(j) : NULL;
        cJSON_Delete(j);
        snprintf(p, sizeof p, "%s/trainer.json", tmp);
        rc = s ? file_write_atomic(p, s, strlen(s), err) : err_set(err, DC_ENOMEM, "out of memory");
        free(s);
    }
    /* into place: an older directory of the same step (a resumed run) is replaced */
    if (!rc) rc = dir_remove_tree(fin, err);
    if (!rc && rename(tmp, fin) != 0) rc = err_set(err, DC_EIO, "%s: cannot rename into place", fin);
    if (!rc) {
        fsync_dir(run);
        char line[80];
        int n = snprintf(line, sizeof line, "%s\n", name);
        snprintf(p, sizeof p, "%s/latest", run);
        rc = file_write_atomic(p, line, (size_t)n, err);
    }
    if (rc) {
        dc_err ignore;
        dir_remove_tree(tmp, &ignore);
        return rc;
    }
    /* keep the newest `keep` */
    int ns;
    char **steps = list_steps(run, &ns);
    for (int i = 0; i < ns; i++) {
        if (keep > 0 && i < ns - keep && strcmp(steps[i], name) != 0) {
            snprintf(p, sizeof p, "%s/%s", run, steps[i]);
            dc_err ignore;
            dir_remove_tree(p, &ignore);
        }
        free(steps[i]);
    }
    free(steps);
    return DC_OK;
}

int ckpt_latest(const char *run, char *dir, size_t cap, dc_err *err) {
    char p[4096], *txt;
    size_t n;
    snprintf(p, sizeof p, "%s/latest", run);
    if (file_read_all(p, &txt, &n, NULL) == DC_OK) {
        while (n && (txt[n - 1] == '\n' || txt[n - 1] == ' ')) txt[--n] = 0;
        snprintf(p, sizeof p, "%s/%s/trainer.json", run, txt);
        int ok = strncmp(txt, "step-", 5) == 0 && !strchr(txt, '/') && file_exists(p);
        if (ok) snprintf(dir, cap, "%s/%s", run, txt);
        free(txt);
        if (ok) return DC_OK;
    }
    /* no usable pointer: the newest complete step directory */
    int ns;
    char **steps = list_steps(run, &ns);
    int found = 0;
    for (int i = ns - 1; i >= 0; i--) {
        snprintf(p, sizeof p, "%s/%s/trainer.json", run, steps[i]);
        if (!found && file_exists(p)) snprintf(dir, cap, "%s/%s", run, steps[i]), found = 1;
    }
    for (int i = 0; i < ns; i++) free(steps[i]);
    free(steps);
    return found ? DC_OK : err_set(err, DC_ENOTFOUND, "%s: no checkpoint to resume from", run);
}

static int read_tensors(trainer *t, const char *path, float *base, const char *prefix, dc_err *err) {
    st_set s = {0};
    int rc = st_open_file(&s, path, err);
    for (int i = 0; i < t->ntab && !rc; i++) {
        const wt_entry *e = &t->tab[i];
        if (e->alias || e->kind == WT_BIAS) continue;
        char nm[200];
        snprintf(nm, sizeof nm, "%s%s", prefix, e->name);
        const st_tensor *x = st_find(&s, nm);
        if (!x) rc = err_set(err, DC_ENOTFOUND, "%s: tensor %s is missing", path, nm);
        else if (x->dtype != ST_F32 || x->nbytes != wt_numel(e) * 4)
            rc = err_set(err, DC_ESHAPE, "%s: tensor %s is not F32 of %zu numbers", path, nm, wt_numel(e));
        else memcpy(base + (*e->dst - t->arena), x->data, x->nbytes);
    }
    st_close(&s);
    return rc;
}

int ckpt_state(const char *dir, cJSON **state, dc_err *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s/trainer.json", dir);
    cJSON *j = NULL;
    int rc = json_read_file(p, &j, err);
    if (rc) return rc;
    const cJSON *st = cJSON_GetObjectItem(j, "step");
    double sv = cJSON_IsNumber(st) ? st->valuedouble : -1;
    if (!cJSON_IsObject(j) || !(sv >= 0 && sv <= 9007199254740992.0 && sv == floor(sv))) {
        cJSON_Delete(j);
        return err_set(err, DC_EFORMAT, "%s: not a trainer state: \"step\" must be a whole number >= 0", p);
    }
    *state = j;
    return DC_OK;
}

int ckpt_load(trainer *t, const char *dir, cJSON **state, dc_err *err) {
    char p[4096];
    cJSON *j = NULL;
    int rc = ckpt_state(dir, &j, err);
    if (!rc) rc = weights_read(&t->cfg, dir, t->tab, t->ntab, err);
    /* the moments (float32 in the files): straight into place, or (a ZeRO-1
     * shard, bf16 moments) through whole buffers */
    const int direct = t->lo == 0 && t->hi == t->n && !t->mv.bf16;
    float *mf = direct ? t->mv.m : calloc(t->n, sizeof(float)), *vf = direct ? t->mv.v : calloc(t->n, sizeof(float));
    if (!rc && (!mf || !vf)) rc = err_set(err, DC_ENOMEM, "%s: out of memory reading the optimiser state", dir);
    snprintf(p, sizeof p, "%s/optim-m.safetensors", dir);
    if (!rc) rc = read_tensors(t, p, mf, "m.", err);
    snprintf(p, sizeof p, "%s/optim-v.safetensors", dir);
    if (!rc) rc = read_tensors(t, p, vf, "v.", err);
    if (!direct) {
        if (!rc) adam_mom_put(&t->mv, 0, t->hi - t->lo, mf + t->lo, vf + t->lo);
        free(mf), free(vf);
    }
    if (rc) {
        cJSON_Delete(j);
        return rc;
    }
    t->step = (int64_t)cJSON_GetObjectItem(j, "step")->valuedouble;
    if (state) *state = j;
    else cJSON_Delete(j);
    return DC_OK;
}
