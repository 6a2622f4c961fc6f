/* safetensors.c — see safetensors.h. */
#include "io/safetensors.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "io/json.h"

static const struct {
    const char *name;
    int size;
} DT[ST_NDTYPE] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},   [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},   [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(int d) { return d >= 0 && d < ST_NDTYPE ? DT[d].name : "?"; }
int st_dtype_size(int d) { return d >= 0 && d < ST_NDTYPE ? DT[d].size : 0; }
int st_dtype_parse(const char *s) {
    for (int i = 0; i < ST_NDTYPE; i++)
        if (strcmp(s, DT[i].name) == 0) return i;
    return -1;
}

int64_t st_numel(const st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int hash_rebuild(st_set *s, dc_err *err) {
    int cap = 64;
    while (cap < s->n * 2) cap *= 2;
    int *h = malloc(sizeof(int) * cap);
    if (!h) return err_set(err, DC_ENOMEM, "safetensors: out of memory for the tensor index");
    for (int i = 0; i < cap; i++) h[i] = -1;
    for (int i = 0; i < s->n; i++) {
        uint64_t j = fnv1a(s->tensors[i].name) & (cap - 1);
        while (h[j] >= 0) j = (j + 1) & (cap - 1);
        h[j] = i;
    }
    free(s->hash);
    s->hash = h;
    s->hcap = cap;
    return DC_OK;
}

const st_tensor *st_find(const st_set *s, const char *name) {
    if (!s->hash) return NULL;
    uint64_t j = fnv1a(name) & (s->hcap - 1);
    while (s->hash[j] >= 0) {
        const st_tensor *t = &s->tensors[s->hash[j]];
        if (strcmp(t->name, name) == 0) return t;
        j = (j + 1) & (s->hcap - 1);
    }
    return NULL;
}

typedef struct span {
    uint64_t b, e;
    int i;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b ? 1 : (x->e > y->e) - (x->e < y->e);
}

/* json_u64: a JSON number that is a non-negative integer below 2^53. */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int parse_header(st_set *s, int fi, const char *path, dc_err *err) {
    const mfile *f = &s->files[fi];
    if (f->size < 8)
        return err_set(err, DC_EFORMAT, "%s: truncated: %zu bytes, less than the 8-byte header length",
                       path, f->size);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | f->data[i];
    if (hn > f->size - 8)
        return err_set(err, DC_EFORMAT, "%s: header length %llu exceeds the file (%zu bytes)", path,
                       (unsigned long long)hn, f->size);
    const uint8_t *base = f->data + 8 + hn;
    uint64_t dsize = f->size - 8 - hn;
    cJSON *root;
    int prc = json_parse_ex((const char *)f->data + 8, hn, path, 1, 1, &root, err);
    if (prc) return prc;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(err, DC_EFORMAT, "%s: header is not a JSON object", path);
    }
    int rc = DC_OK, first = s->n, count = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, root) count++;
    if (s->n + count > s->cap) {
        int cap = s->n + count + 16;
        st_tensor *nt = realloc(s->tensors, sizeof *nt * cap);
        if (!nt) {
            cJSON_Delete(root);
            return err_set(err, DC_ENOMEM, "%s: out of memory for %d tensors", path, count);
        }
        s->tensors = nt;
        s->cap = cap;
    }
    cJSON_ArrayForEach(it, root) {
        const char *name = it->string;
        if (strcmp(name, "__metadata__") == 0) continue;
        if (!cJSON_IsObject(it)) {
            rc = err_set(err, DC_EFORMAT, "%s: tensor %s: entry is not an object", path, name);
            break;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        int dt = cJSON_IsString(jd) ? st_dtype_parse(jd->valuestring) : -1;
        if (dt < 0) {
            rc = err_set(err, DC_EFORMAT, "%s: tensor %s: unknown or missing dtype %s", path, name,
                         cJSON_IsString(jd) ? jd->valuestring : "(none)");
            break;
        }
        if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > ST_MAX_DIMS) {
            rc = err_set(err, DC_EFORMAT, "%s: tensor %s: missing shape or more than %d dims", path,
                         name, ST_MAX_DIMS);
            break;
        }
        if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2) {
            rc = err_set(err, DC_EFORMAT, "%s: tensor %s: data_offsets must be [begin, end]", path, name);
            break;
        }
        st_tensor *t = &s->tensors[s->n];
        memset(t, 0, sizeof *t);
        t->dtype = dt;
        t->file = fi;
        uint64_t numel = 1, b, e, v;
        int bad = 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, js) {
            if (!json_u64(d, &v) || (v && numel > UINT64_MAX / 8 / v)) bad = 1;
            else numel *= v;
            if (!bad) t->shape[t->ndim++] = (int64_t)v;
        }
        if (bad) {
            rc = err_set(err, DC_EFORMAT, "%s: tensor %s: bad shape", path, name);
            break;
        }
        if (!json_u64(cJSON_GetArrayItem(jo, 0), &b) || !json_u64(cJSON_GetArrayItem(jo, 1), &e) ||
            b > e) {
            rc = err_set(err, DC_EFORMAT, "%s: tensor %s: bad data_offsets", path, name);
            break;
        }
        if (e > dsize) {
            rc = err_set(err, DC_EFORMAT,
                         "%s: tensor %s: data ends at byte %llu but the file holds %llu data bytes "
                         "(truncated?)",
                         path, name, (unsigned long long)e, (unsigned long long)dsize);
            break;
        }
        if (numel * (uint64_t)DT[dt].size != e - b) {
            rc = err_set(err, DC_EFORMAT, "%s: tensor %s: %llu bytes for %llu elements of %s", path,
                         name, (unsigned long long)(e - b), (unsigned long long)numel, DT[dt].name);
            break;
        }
        t->name = strdup(name);
        if (!t->name) {
            rc = err_set(err, DC_ENOMEM, "%s: out of memory", path);
            break;
        }
        t->data = base + b;
        t->nbytes = e - b;
        s->n++;
    }
    cJSON_Delete(root);
    if (rc) return rc;
    /* no two tensors of this file may share bytes */
    int m = s->n - first;
    span *sp = malloc(sizeof *sp * (m ? m : 1));
    if (!sp) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < m; i++) {
        const st_tensor *t = &s->tensors[first + i];
        sp[i] = (span){(uint64_t)(t->data - base), (uint64_t)(t->data - base) + t->nbytes, first + i};
    }
    qsort(sp, m, sizeof *sp, span_cmp);
    uint64_t end = 0;
    int last = -1;
    for (int i = 0; i < m; i++) {
        if (sp[i].e == sp[i].b) continue; /* empty tensors own no bytes */
        if (last >= 0 && sp[i].b < end) {
            rc = err_set(err, DC_EFORMAT, "%s: tensors %s and %s overlap", path,
                         s->tensors[last].name, s->tensors[sp[i].i].name);
            break;
        }
        end = sp[i].e;
        last = sp[i].i;
    }
    free(sp);
    return rc;
}

int st_open_file(st_set *s, const char *path, dc_err *err) {
    mfile *nf = realloc(s->files, sizeof *nf * (s->nfiles + 1));
    if (!nf) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    s->files = nf;
    char **np = realloc(s->paths, sizeof *np * (s->nfiles + 1));
    if (!np) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    s->paths = np;
    int fi = s->nfiles;
    int rc = mfile_open(&s->files[fi], path, err);
    if (rc) return rc;
    s->paths[fi] = strdup(path);
    s->nfiles++;
    if (!s->paths[fi]) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    int before = s->n;
    if ((rc = parse_header(s, fi, path, err))) return rc;
    if ((rc = hash_rebuild(s, err))) return rc;
    /* a duplicate name shows up as a lookup that finds an earlier index */
    for (int i = before; i < s->n; i++)
        if (st_find(s, s->tensors[i].name) != &s->tensors[i])
            return err_set(err, DC_EFORMAT, "%s: tensor %s appears twice", path, s->tensors[i].name);
    return DC_OK;
}

void st_close(st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free((char *)s->tensors[i].name);
    for (int i = 0; i < s->nfiles; i++) {
        mfile_close(&s->files[i]);
        free(s->paths[i]);
    }
    free(s->tensors);
    free(s->files);
    free(s->paths);
    free(s->hash);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int st_open_dir(st_set *s, const char *dir, dc_err *err) {
    memset(s, 0, sizeof *s);
    char path[4096];
    int rc = path_join(path, sizeof path, dir, "model.safetensors.index.json", err);
    if (rc) return rc;
    if (!file_exists(path)) {
        if ((rc = path_join(path, sizeof path, dir, "model.safetensors", err))) return rc;
        if (!file_exists(path))
            return err_set(err, DC_ENOTFOUND,
                           "%s: neither model.safetensors nor model.safetensors.index.json", dir);
        rc = st_open_file(s, path, err);
        if (rc) st_close(s);
        return rc;
    }
    cJSON *root;
    if ((rc = json_read_file(path, &root, err))) return rc;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return err_set(err, DC_EFORMAT, "%s: not JSON with a weight_map object", path);
    }
    /* the distinct shard names, sorted, each opened once */
    int cnt = cJSON_GetArraySize(wm), nu = 0;
    const char **names = malloc(sizeof *names * (cnt ? cnt : 1));
    if (!names) {
        cJSON_Delete(root);
        return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/')) {
            rc = err_set(err, DC_EFORMAT, "%s: weight_map entry %s is not a plain file name", path, it->string);
            free(names);
            cJSON_Delete(root); /* after the message: it->string lives in root */
            return rc;
        }
        names[nu++] = it->valuestring;
    }
    qsort(names, nu, sizeof *names, cmp_str);
    for (int i = 0; i < nu && !rc; i++) {
        if (i && strcmp(names[i], names[i - 1]) == 0) continue;
        char shard[4096];
        if (!(rc = path_join(shard, sizeof shard, dir, names[i], err))) rc = st_open_file(s, shard, err);
    }
    /* every tensor the index names must be in the shard it names */
    cJSON_ArrayForEach(it, wm) {
        if (rc) break;
        const st_tensor *t = st_find(s, it->string);
        if (!t) {
            rc = err_set(err, DC_ENOTFOUND, "%s: tensor %s is listed for %s but not in it", path,
                         it->string, it->valuestring);
        } else {
            const char *p = s->paths[t->file], *slash = strrchr(p, '/');
            if (strcmp(slash ? slash + 1 : p, it->valuestring) != 0)
                rc = err_set(err, DC_EFORMAT, "%s: tensor %s is listed for %s but found in %s", path,
                             it->string, it->valuestring, p);
        }
    }
    free(names);
    cJSON_Delete(root);
    if (rc) st_close(s); /* the shards opened before the failure (st_close leaves s zeroed) */
    return rc;
}

/* ---------------------------------------------------------------- writing */

size_t st_entry_bytes(const st_entry *e) {
    size_t n = (size_t)st_dtype_size(e->dtype);
    for (int i = 0; i < e->ndim; i++) n *= (size_t)e->shape[i];
    return n;
}

int st_write_begin(st_writer *w, const char *path, const st_entry *e, int n, dc_err *err) {
    memset(w, 0, sizeof *w);
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, e[i].name);
        cJSON_AddStringToObject(t, "dtype", st_dtype_name(e[i].dtype));
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < e[i].ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e[i].shape[d]));
        size_t nb = st_entry_bytes(&e[i]);
        cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!js) return err_set(err, DC_ENOMEM, "%s: out of memory for the header", path);
    size_t hn = strlen(js), pad = (8 - (hn % 8)) % 8;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((hn + pad) >> (8 * i));
    int rc = afile_open(&w->a, path, err);
    if (!rc) rc = afile_write(&w->a, len, 8, err);
    if (!rc) rc = afile_write(&w->a, js, hn, err);
    if (!rc) rc = afile_write(&w->a, "        ", pad, err);
    free(js);
    if (rc) {
        afile_abort(&w->a);
        return rc;
    }
    w->expect = off;
    return DC_OK;
}

int st_write_data(st_writer *w, const void *data, size_t nbytes, dc_err *err) {
    if (w->written + nbytes > w->expect)
        return err_set(err, DC_EARG, "%s: %zu bytes written past the %zu the header declares", w->a.path,
                       w->written + nbytes, w->expect);
    w->written += nbytes;
    return afile_write(&w->a, data, nbytes, err);
}

int st_write_end(st_writer *w, dc_err *err) {
    if (w->written != w->expect) {
        afile_abort(&w->a);
        return err_set(err, DC_EARG, "%s: %zu data bytes written, header declares %zu", w->a.path,
                       w->written, w->expect);
    }
    return afile_commit(&w->a, err);
}

void st_write_abort(st_writer *w) { afile_abort(&w->a); }
