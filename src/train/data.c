/* data.c — see data.h. */
#include "train/data.h"
#include <cjson/cJSON.h>
#include <glob.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "base/progress.h"
#include "io/json.h"

int data_write_shard(const char *path, const uint32_t *ids, size_t n, int vocab, dc_err *err) {
    uint8_t h[24];
    memcpy(h, DATA_MAGIC, 8);
    uint32_t ver = 1, v = (uint32_t)vocab;
    uint64_t cnt = n;
    memcpy(h + 8, &ver, 4), memcpy(h + 12, &v, 4), memcpy(h + 16, &cnt, 8);
    afile a;
    int rc = afile_open(&a, path, err);
    if (!rc) rc = afile_write(&a, h, sizeof h, err);
    if (!rc) rc = afile_write(&a, ids, n * 4, err);
    if (rc) {
        afile_abort(&a);
        return rc;
    }
    return afile_commit(&a, err);
}

void data_free(data_split *d) {
    if (d) free(d->ids), d->ids = NULL, d->n = 0;
}

int data_load(data_split *d, const char *dir, const char *split, dc_err *err) {
    memset(d, 0, sizeof *d);
    char pat[4096];
    snprintf(pat, sizeof pat, "%s/%s-*.bin", dir, split);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0) return err_set(err, DC_ENOTFOUND, "%s: no %s-*.bin shards", dir, split);
    int rc = DC_OK;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) {
        const char *p = g.gl_pathv[i];
        mfile f;
        if ((rc = mfile_open(&f, p, err))) break;
        uint32_t ver = 0, v = 0;
        uint64_t cnt = 0;
        if (f.size < 24 || memcmp(f.data, DATA_MAGIC, 8) != 0) {
            rc = err_set(err, DC_EFORMAT, "%s: not a deepc token shard (bad magic)", p);
        } else {
            memcpy(&ver, f.data + 8, 4), memcpy(&v, f.data + 12, 4), memcpy(&cnt, f.data + 16, 8);
            if (ver != 1) rc = err_set(err, DC_EFORMAT, "%s: shard version %u, expected 1", p, ver);
            else if (v == 0 || v > (1u << 30))
                rc = err_set(err, DC_EFORMAT, "%s: vocab size %u in the header is not in 1..2^30", p, v);
            else if (cnt != (f.size - 24) / 4 || (f.size - 24) % 4)
                rc = err_set(err, DC_EFORMAT, "%s: header says %llu tokens, the file holds %zu bytes of them (truncated?)",
                             p, (unsigned long long)cnt, f.size - 24);
            else if (d->vocab && (int)v != d->vocab)
                rc = err_set(err, DC_EFORMAT, "%s: vocab size %u differs from the other shards' %d", p, v, d->vocab);
        }
        if (!rc) {
            uint32_t *nid = realloc(d->ids, (d->n + cnt) * 4 + 4);
            if (!nid) rc = err_set(err, DC_ENOMEM, "%s: out of memory for %llu tokens", p, (unsigned long long)cnt);
            else {
                d->ids = nid;
                memcpy(d->ids + d->n, f.data + 24, cnt * 4);
                for (uint64_t k = 0; k < cnt && !rc; k++)
                    if (d->ids[d->n + k] >= v)
                        rc = err_set(err, DC_EFORMAT, "%s: token %llu is id %u, outside the vocab of %u", p,
                                     (unsigned long long)k, d->ids[d->n + k], v);
                d->n += cnt;
                d->vocab = (int)v;
            }
        }
        mfile_close(&f);
    }
    globfree(&g);
    if (rc) data_free(d);
    return rc;
}

void data_next(void *loader, int *tokens) {
    data_loader *l = loader;
    size_t span = l->d->n - (size_t)l->T; /* windows of T+1 start in [0, n - T - 1] */
    for (int b = 0; b < l->B; b++) {
        size_t off = (size_t)(rng_u64(&l->r) % span);
        for (int i = 0; i <= l->T; i++) tokens[(size_t)b * (l->T + 1) + i] = (int)l->d->ids[off + i];
    }
}

void data_window(const data_split *d, int T, int64_t i, int64_t count, int *out) {
    size_t last = d->n - (size_t)T - 1;
    size_t off = count > 1 ? (size_t)((double)last * i / (count - 1)) : 0;
    for (int k = 0; k <= T; k++) out[k] = (int)d->ids[off + k];
}

/* ---------------------------------------------------------------- prepare */

typedef struct piece {
    const char *text;  /* borrowed from the file buffer, or owned (JSONL) */
    size_t len;
    int owned, eos;    /* eos: a document ends after this piece */
    int *ids;
    size_t n;
} piece;

typedef struct plist {
    piece *p;
    size_t n, cap;
} plist;

static int push(plist *l, piece pc) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        piece *np = realloc(l->p, sizeof *np * cap);
        if (!np) return -1;
        l->p = np, l->cap = cap;
    }
    l->p[l->n++] = pc;
    return 0;
}

static int is_jsonl(const char *path) {
    size_t n = strlen(path);
    return n > 6 && strcmp(path + n - 6, ".jsonl") == 0;
}

/* plain text: chunks of about 256 KB, cut after a newline that a
 * non-space character follows, so no run of whitespace is split */
static int split_text(plist *l, const char *s, size_t n) {
    size_t start = 0;
    while (start < n) {
        size_t end = start + (1 << 18);
        if (end >= n) end = n;
        else {
            while (end < n && !(s[end - 1] == '\n' && s[end] != '\n' && s[end] != ' ' && s[end] != '\r' && s[end] != '\t'))
                end++;
        }
        if (push(l, (piece){s + start, end - start, 0, end == n, NULL, 0})) return -1;
        start = end;
    }
    return 0;
}

int data_jsonl_each(const char *s, size_t n, const char *field, const char *path,
                    int (*fn)(void *ctx, const char *text, size_t len), void *ctx, dc_err *err) {
    size_t line = 0, i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        line++;
        size_t k = i;
        while (k < e && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
        if (k < e) {
            /* as Python's json.loads reads the line: the last "text" wins, nothing may
             * follow the object, and a \u0000 (which would cut the text) is refused */
            cJSON *j;
            int rc = json_parse_at(s + i, e - i, path, (int)line, &j, err);
            if (rc) return rc;
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, field);
            if (!cJSON_IsString(f)) {
                cJSON_Delete(j);
                return err_set(err, DC_EFORMAT, "%s:%zu: not a JSON object with a string field \"%s\"", path, line, field);
            }
            rc = fn(ctx, f->valuestring, strlen(f->valuestring));
            cJSON_Delete(j);
            if (rc) return err_set(err, DC_ENOMEM, "out of memory");
        }
        i = e + 1;
    }
    return DC_OK;
}

/* one JSONL text as an owned piece that ends a document */
static int push_text(void *ctx, const char *text, size_t len) {
    char *t = malloc(len + 1);
    if (!t) return -1;
    memcpy(t, text, len);
    t[len] = 0;
    if (push(ctx, (piece){t, len, 1, 1, NULL, 0})) return free(t), -1;
    return 0;
}

static int split_jsonl(plist *l, const char *s, size_t n, const char *field, const char *path, dc_err *err) {
    return data_jsonl_each(s, n, field, path, push_text, l, err);
}

int data_prepare(const prepare_opts *o, size_t *ntrain, size_t *nval, dc_err *err) {
    dc_tokenizer *tk = NULL;
    int rc = dir_make(o->out, err); /* a bad --out fails before the work, not after */
    if (!rc) rc = dc_tokenizer_load(o->tokenizer, &tk, err);
    if (rc) return rc;
    int eos = dc_tokenizer_eos(tk), vocab = dc_tokenizer_n_vocab(tk);
    char **bufs = calloc(o->nfiles, sizeof *bufs);
    plist l = {0};
    size_t total_bytes = 0;
    if (!bufs) rc = err_set(err, DC_ENOMEM, "out of memory");
    for (int f = 0; f < o->nfiles && !rc; f++) {
        size_t n;
        if ((rc = file_read_all(o->files[f], &bufs[f], &n, err))) break;
        total_bytes += n;
        if (is_jsonl(o->files[f])) rc = split_jsonl(&l, bufs[f], n, o->field ? o->field : "text", o->files[f], err);
        else if (split_text(&l, bufs[f], n)) rc = err_set(err, DC_ENOMEM, "out of memory");
    }
    if (!rc && l.n == 0) rc = err_set(err, DC_EARG, "prepare: the input files hold no text");
    /* tokenise the pieces in parallel; each keeps its own ids, joined in order */
    progress pb;
    if (!rc && !o->quiet) progress_start(&pb, "tokenise", (int64_t)total_bytes);
    size_t done = 0;
    int bad = 0;
    dc_err perr = {0};
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < (rc ? 0 : l.n); i++) {
        dc_err e2 = {0};
        size_t n;
        if (dc_tokenizer_encode(tk, l.p[i].text, l.p[i].len, 0, &l.p[i].ids, &n, &e2)) {
#pragma omp critical
            bad = 1, perr = e2;
            continue;
        }
        l.p[i].n = n;
#pragma omp atomic
        done += l.p[i].len;
        if (omp_get_thread_num() == 0 && !o->quiet) progress_update(&pb, (int64_t)done, "B", NULL);
    }
    if (!rc && bad) rc = perr.code ? (*err = perr, perr.code) : DC_EFORMAT;
    if (!rc && !o->quiet) progress_update(&pb, (int64_t)total_bytes, "B", NULL), progress_end(&pb);
    /* join: EOS after each document */
    size_t ntok = 0;
    for (size_t i = 0; i < l.n && !rc; i++) ntok += l.p[i].n + (l.p[i].eos && eos >= 0);
    uint32_t *all = rc ? NULL : malloc(ntok * 4 + 4);
    if (!rc && !all) rc = err_set(err, DC_ENOMEM, "out of memory for %zu tokens", ntok);
    size_t k = 0;
    for (size_t i = 0; i < l.n && !rc; i++) {
        for (size_t j = 0; j < l.p[i].n; j++) all[k++] = (uint32_t)l.p[i].ids[j];
        if (l.p[i].eos && eos >= 0) all[k++] = (uint32_t)eos;
    }
    /* the last val_frac of the stream is validation */
    size_t nv = (size_t)(k * (o->val_frac > 0 ? o->val_frac : 0)), nt = k - nv;
    char path[4096];
    /* shards of an earlier prepare in out would join this data */
    for (int sp = 0; sp < 2 && !rc; sp++) {
        char pat[4200];
        snprintf(pat, sizeof pat, "%s/%s-*.bin", o->out, sp ? "val" : "train");
        glob_t g;
        if (glob(pat, 0, NULL, &g) == 0)
            for (size_t i = 0; i < g.gl_pathc; i++) remove(g.gl_pathv[i]);
        globfree(&g);
    }
    if (!rc && (rc = path_join(path, sizeof path, o->out, "train-00000.bin", err)) == 0)
        rc = data_write_shard(path, all, nt, vocab, err);
    if (!rc && nv && (rc = path_join(path, sizeof path, o->out, "val-00000.bin", err)) == 0)
        rc = data_write_shard(path, all + nt, nv, vocab, err);
    if (!rc) {
        char src[4096];
        if (dir_exists(o->tokenizer)) rc = path_join(src, sizeof src, o->tokenizer, "tokenizer.json", err);
        else snprintf(src, sizeof src, "%s", o->tokenizer);
        if (!rc && !(rc = path_join(path, sizeof path, o->out, "tokenizer.json", err))) rc = file_copy(src, path, err);
    }
    if (ntrain) *ntrain = nt;
    if (nval) *nval = nv;
    for (size_t i = 0; i < l.n; i++) {
        free(l.p[i].ids);
        if (l.p[i].owned) free((char *)l.p[i].text);
    }
    free(l.p);
    for (int f = 0; bufs && f < o->nfiles; f++) free(bufs[f]);
    free(bufs);
    free(all);
    dc_tokenizer_free(tk);
    return rc;
}
