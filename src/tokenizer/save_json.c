/*
 * save_json.c — write a byte-level BPE as a Hugging Face tokenizer.json, in
 * the shape of DeepSeek-V3's own file: added_tokens, no normalizer, the
 * pre-tokenizer as a Sequence of Split(Isolated) regexes then ByteLevel
 * (use_regex false), ByteLevel decoder, model BPE with vocab and merges as
 * "a b" strings (the form every tokenizers version reads; a byte-level token
 * never contains a space). Written through a temporary file and renamed into
 * place (base/file.h afile).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"

typedef struct jw {
    afile f;
    char buf[1 << 16];
    size_t n;
    int rc;
    dc_err *err;
} jw;

static void jw_raw(jw *w, const char *s, size_t k) {
    if (w->rc) return;
    if (w->n + k > sizeof w->buf) {
        w->rc = afile_write(&w->f, w->buf, w->n, w->err);
        w->n = 0;
        if (w->rc) return;
        if (k > sizeof w->buf) {
            w->rc = afile_write(&w->f, s, k, w->err);
            return;
        }
    }
    memcpy(w->buf + w->n, s, k);
    w->n += k;
}

static void jw_s(jw *w, const char *s) { jw_raw(w, s, strlen(s)); }

/* jw_str: a JSON string literal of UTF-8 text s[0, n). */
static void jw_str(jw *w, const char *s, size_t n) {
    jw_raw(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        jw_raw(w, s + run, i - run);
        char esc[8];
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n') snprintf(esc, sizeof esc, "\\n");
        else if (c == '\r') snprintf(esc, sizeof esc, "\\r");
        else if (c == '\t') snprintf(esc, sizeof esc, "\\t");
        else snprintf(esc, sizeof esc, "\\u%04x", c);
        jw_s(w, esc);
        run = i + 1;
    }
    jw_raw(w, s + run, n - run);
    jw_raw(w, "\"", 1);
}

/* jw_token: a token's bytes in byte-level form. */
static void jw_token(jw *w, const vocab *v, int id) {
    size_t n;
    const uint8_t *b = vocab_bytes(v, id, &n);
    char stackbuf[512], *s = n * 2 <= sizeof stackbuf ? stackbuf : malloc(n * 2);
    if (!s) {
        w->rc = err_set(w->err, DC_ENOMEM, "tokenizer.json: out of memory");
        return;
    }
    jw_str(w, s, bytelevel_encode(b, n, s));
    if (s != stackbuf) free(s);
}

static void write_added(jw *w, const vocab *v) {
    jw_s(w, "  \"added_tokens\": [");
    int first = 1;
    for (int id = 0; id < v->n; id++) {
        if (v->attr[id] != TOK_SPECIAL && v->attr[id] != TOK_ADDED) continue;
        char head[64];
        snprintf(head, sizeof head, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", id);
        jw_s(w, head);
        size_t n;
        const uint8_t *b = vocab_bytes(v, id, &n);
        jw_str(w, (const char *)b, n);
        jw_s(w, v->attr[id] == TOK_SPECIAL
                    ? ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
                    : ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": true, \"special\": false}");
        first = 0;
    }
    jw_s(w, "\n  ],\n");
}

static void write_pretok(jw *w, const pretok *p) {
    jw_s(w, "  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [");
    for (int i = 0; i < p->n; i++) {
        jw_s(w, "\n    {\"type\": \"Split\", \"pattern\": {\"Regex\": ");
        jw_str(w, p->src[i], strlen(p->src[i]));
        jw_s(w, "}, \"behavior\": \"Isolated\", \"invert\": false},");
    }
    jw_s(w, "\n    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}\n"
            "  ]},\n  \"post_processor\": null,\n"
            "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n");
}

/* merges_by_rank: (nmerges) pairs (a << 32 | b) in rank order, malloc'd. */
static uint64_t *merges_by_rank(const vocab *v) {
    uint64_t *m = malloc(((size_t)v->nmerges + 1) * sizeof *m);
    if (!m) return NULL;
    memset(m, 0xff, ((size_t)v->nmerges + 1) * sizeof *m); /* a rank a later duplicate took over stays empty */
    for (uint64_t i = 0; i < v->merges.cap; i++) {
        if (v->merges.keys[i] == UINT64_MAX) continue;
        uint64_t rank = v->merges.vals[i] >> 32;
        if (rank < (uint64_t)v->nmerges) m[rank] = v->merges.keys[i];
    }
    return m;
}

static void write_model(jw *w, const vocab *v) {
    jw_s(w, "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null, "
            "\"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false,\n    \"vocab\": {");
    int first = 1;
    for (int id = 0; id < v->n; id++) {
        if (v->attr[id] != TOK_NORMAL) continue;
        jw_s(w, first ? "\n      " : ",\n      ");
        jw_token(w, v, id);
        char num[32];
        snprintf(num, sizeof num, ": %d", id);
        jw_s(w, num);
        first = 0;
    }
    jw_s(w, "\n    },\n    \"merges\": [");
    uint64_t *m = merges_by_rank(v);
    if (!m) {
        w->rc = err_set(w->err, DC_ENOMEM, "tokenizer.json: out of memory");
        return;
    }
    int nw = 0;
    for (int r = 0; r < v->nmerges; r++) {
        if (m[r] == UINT64_MAX) continue;
        int a = (int)(m[r] >> 32), b = (int)(uint32_t)m[r];
        size_t la, lb;
        const uint8_t *pa = vocab_bytes(v, a, &la), *pb = vocab_bytes(v, b, &lb);
        char *s = malloc(2 * (la + lb) + 1);
        if (!s) {
            w->rc = err_set(w->err, DC_ENOMEM, "tokenizer.json: out of memory");
            break;
        }
        size_t k = bytelevel_encode(pa, la, s);
        s[k++] = ' ';
        k += bytelevel_encode(pb, lb, s + k);
        jw_s(w, nw++ ? ",\n      " : "\n      ");
        jw_str(w, s, k);
        free(s);
    }
    free(m);
    jw_s(w, "\n    ]\n  }\n}\n");
}

int tok_save_json(const dc_tokenizer *t, const char *path, dc_err *err) {
    jw *w = calloc(1, sizeof *w);
    if (!w) return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    w->err = err;
    int rc = afile_open(&w->f, path, err);
    if (rc) {
        free(w);
        return rc;
    }
    jw_s(w, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
    write_added(w, &t->v);
    write_pretok(w, &t->pre);
    write_model(w, &t->v);
    if (!w->rc && w->n) w->rc = afile_write(&w->f, w->buf, w->n, err);
    if (w->rc) afile_abort(&w->f);
    else w->rc = afile_commit(&w->f, err);
    rc = w->rc;
    free(w);
    return rc;
}
