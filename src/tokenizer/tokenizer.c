/* tokenizer.c — load dispatch, encode and decode. See tokenizer.h. */
#include "tokenizer/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "tokenizer/bytelevel.h"

// ---------------------------------------------------------------- lifecycle
static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int dc_tokenizer_load(const char *path, dc_tokenizer **out, dc_err *err) {
    *out = NULL;
    dc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, DC_ENOMEM, "tokenizer: out of memory");
    t->bos = t->eos = -1;
    int rc;
    char buf[4096];
    if (dir_exists(path)) {
        if ((rc = path_join(buf, sizeof buf, path, "tokenizer.json", err))) goto fail;
        if (!file_exists(buf)) {
            rc = err_set(err, DC_ENOTFOUND, "%s: no tokenizer.json in this directory", path);
            goto fail;
        }
        if ((rc = tok_load_json(t, buf, err))) goto fail;
        if ((rc = path_join(buf, sizeof buf, path, "tokenizer_config.json", err))) goto fail;
        if ((rc = tok_load_config(t, buf, err))) goto fail;
    } else if (ends_with(path, ".gguf")) {
        if ((rc = tok_load_gguf(t, path, err))) goto fail;
    } else {
        if ((rc = tok_load_json(t, path, err))) goto fail;
        /* a tokenizer_config.json next to the file */
        const char *slash = strrchr(path, '/');
        int dl = slash ? (int)(slash - path) : 1;
        if (snprintf(buf, sizeof buf, "%.*s/tokenizer_config.json", dl, slash ? path : ".") < (int)sizeof buf &&
            (rc = tok_load_config(t, buf, err)))
            goto fail;
    }
    *out = t;
    return DC_OK;
fail:
    dc_tokenizer_free(t);
    return rc;
}

void dc_tokenizer_free(dc_tokenizer *t) {
    if (!t) return;
    vocab_free(&t->v);
    pretok_free(&t->pre);
    free(t);
}

int dc_tokenizer_n_vocab(const dc_tokenizer *t) { return t->v.n; }
int dc_tokenizer_bos(const dc_tokenizer *t) { return t->bos; }
int dc_tokenizer_eos(const dc_tokenizer *t) { return t->eos; }
const char *dc_tokenizer_pre(const dc_tokenizer *t) { return t->pre.name; }

const char *dc_tokenizer_piece(const dc_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->v.n || t->v.attr[id] == TOK_NONE) return NULL;
    return (const char *)vocab_bytes(&t->v, id, len);
}

int dc_tokenizer_is_special(const dc_tokenizer *t, int id) {
    return id >= 0 && id < t->v.n && t->v.attr[id] == TOK_SPECIAL;
}

int dc_tokenizer_find(const dc_tokenizer *t, const char *text, size_t len) {
    size_t b, e;
    int id = vocab_next_added(&t->v, text, len, 0, 1, &b, &e);
    if (id >= 0 && b == 0 && e == len) return id;
    return vocab_find(&t->v, text, len);
}

// ---------------------------------------------------------------- encode
int tok_encoder_init(tok_encoder *e, const dc_tokenizer *t, dc_err *err) {
    memset(e, 0, sizeof *e);
    e->t = t;
    bpe_state_init(&e->bpe);
    return pretok_scratch_init(&e->sc, err);
}

void tok_encoder_free(tok_encoder *e) {
    if (!e) return;
    pretok_scratch_free(&e->sc);
    bpe_state_free(&e->bpe);
    free(e->out.a);
    memset(e, 0, sizeof *e);
}

static int emit_word(void *ctx, const char *s, size_t n) {
    tok_encoder *e = ctx;
    return bpe_word(&e->t->v, &e->bpe, (const uint8_t *)s, n, &e->out);
}

/* encode_plain: text with no added tokens in it. */
static int encode_plain(tok_encoder *e, const char *s, size_t n, dc_err *err) {
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_valid_len((const uint8_t *)s + i, n - i);
        if (k) {
            int rc = pretok_split(&e->t->pre, &e->sc, s + i, k, emit_word, e, err);
            if (rc == DC_ENOMEM) return err_set(err, DC_ENOMEM, "tokenizer: out of memory");
            if (rc) return rc;
            i += k;
        }
        if (i < n) { /* one byte that starts no valid sequence */
            int id = e->t->v.byte_id[(uint8_t)s[i]];
            if (id >= 0 && ivec_push(&e->out, id)) return err_set(err, DC_ENOMEM, "tokenizer: out of memory");
            i++;
        }
    }
    return DC_OK;
}

int tok_encode_append(tok_encoder *e, const char *text, size_t len, int flags, dc_err *err) {
    const vocab *v = &e->t->v;
    if ((flags & DC_TOK_BOS) && e->t->bos >= 0 && ivec_push(&e->out, e->t->bos))
        return err_set(err, DC_ENOMEM, "tokenizer: out of memory");
    size_t pos = 0;
    while (pos < len) {
        size_t b = len, end = len;
        int id = (flags & DC_TOK_PLAIN) ? -1 : vocab_next_added(v, text, len, pos, flags & DC_TOK_SPECIAL, &b, &end);
        if (id < 0) b = end = len;
        int rc = encode_plain(e, text + pos, b - pos, err);
        if (rc) return rc;
        if (id >= 0 && ivec_push(&e->out, id)) return err_set(err, DC_ENOMEM, "tokenizer: out of memory");
        pos = end;
    }
    return DC_OK;
}

int dc_tokenizer_encode(const dc_tokenizer *t, const char *text, size_t len, int flags, int **ids, size_t *n,
                        dc_err *err) {
    *ids = NULL;
    *n = 0;
    if (!text && len) return err_set(err, DC_EARG, "tokenizer: NULL text of %zu bytes", len);
    tok_encoder e;
    int rc = tok_encoder_init(&e, t, err);
    if (!rc) rc = tok_encode_append(&e, text ? text : "", len, flags, err);
    if (!rc && !e.out.a && ivec_reserve(&e.out, 1)) rc = err_set(err, DC_ENOMEM, "tokenizer: out of memory");
    if (!rc) {
        *ids = e.out.a;
        *n = e.out.n;
        e.out.a = NULL;
    }
    tok_encoder_free(&e);
    return rc;
}

// ---------------------------------------------------------------- decode
int dc_tokenizer_decode(const dc_tokenizer *t, const int *ids, size_t n, int flags, char **text, size_t *len,
                        dc_err *err) {
    *text = NULL;
    if (len) *len = 0;
    const vocab *v = &t->v;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n || v->attr[ids[i]] == TOK_NONE)
            return err_set(err, DC_EARG, "tokenizer: id %d at position %zu names no token (vocab %d)", ids[i], i, v->n);
        total += v->len[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out) return err_set(err, DC_ENOMEM, "tokenizer: out of memory for %zu bytes", total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if ((flags & DC_TOK_SKIP_SPECIAL) && v->attr[ids[i]] == TOK_SPECIAL) continue;
        memcpy(out + o, v->bytes + v->off[ids[i]], v->len[ids[i]]);
        o += v->len[ids[i]];
    }
    out[o] = 0;
    *text = out;
    if (len) *len = o;
    return DC_OK;
}
