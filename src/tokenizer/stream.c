/*
 * stream.c — dc_detok, the streaming decoder (see deepc.h).
 *
 * A byte-level token can end in the middle of a UTF-8 character (a Chinese
 * character is often two tokens), so printing each token's bytes as they
 * come would show broken characters. After each push, the bytes that form
 * complete characters are released and a trailing sequence that is valid so
 * far but incomplete (at most 3 bytes) is held back. Bytes that can never be
 * valid UTF-8 are released unchanged, so the concatenation of everything
 * released is exactly the decode of all ids.
 */
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"

struct dc_detok {
    const dc_tokenizer *t;
    int flags;
    char *buf;      /* (cap) held bytes, then the new token's */
    size_t n, cap;  /* n: bytes held back from earlier pushes */
    size_t out_n;   /* bytes released by the last call, at buf[0, out_n) */
};

int dc_detok_new(const dc_tokenizer *t, int flags, dc_detok **out, dc_err *err) {
    *out = NULL;
    dc_detok *d = calloc(1, sizeof *d);
    if (!d) return err_set(err, DC_ENOMEM, "detok: out of memory");
    d->t = t;
    d->flags = flags;
    d->cap = (size_t)t->v.max_len + 8;
    d->buf = malloc(d->cap);
    if (!d->buf) {
        free(d);
        return err_set(err, DC_ENOMEM, "detok: out of memory");
    }
    *out = d;
    return DC_OK;
}

void dc_detok_free(dc_detok *d) {
    if (!d) return;
    free(d->buf);
    free(d);
}

/* incomplete_tail: how many bytes at the end of s[0, n) are the start of a
 * UTF-8 character that is valid so far and not finished (0..3). */
static size_t incomplete_tail(const uint8_t *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t c = s[n - back];
        if ((c & 0xc0) == 0x80) continue; /* a continuation byte: look further back */
        int k = utf8_seq_len(c);
        if (k <= (int)back) return 0; /* complete, or not a lead byte at all */
        if (back == 1) return 1;       /* any lead byte can still be completed */
        /* held only if what is there could still become valid (overlongs,
         * surrogates and > U+10FFFF show in the second byte) */
        uint8_t probe[4] = {0x80, 0x80, 0x80, 0x80};
        memcpy(probe, s + n - back, back);
        return utf8_valid_len(probe, (size_t)k) == (size_t)k ? back : 0;
    }
    return 0;
}

int dc_detok_push(dc_detok *d, int id, const char **text, size_t *len, dc_err *err) {
    const vocab *v = &d->t->v;
    *text = d->buf;
    *len = 0;
    /* drop what the previous call released */
    memmove(d->buf, d->buf + d->out_n, d->n);
    d->out_n = 0;
    if (id < 0 || id >= v->n || v->attr[id] == TOK_NONE)
        return err_set(err, DC_EARG, "detok: id %d names no token (vocab %d)", id, v->n);
    if (!((d->flags & DC_TOK_SKIP_SPECIAL) && v->attr[id] == TOK_SPECIAL)) {
        size_t k;
        const uint8_t *p = vocab_bytes(v, id, &k);
        memcpy(d->buf + d->n, p, k); /* cap >= 3 held + the longest token */
        d->n += k;
    }
    size_t hold = incomplete_tail((const uint8_t *)d->buf, d->n);
    d->out_n = d->n - hold;
    d->n = hold;
    *len = d->out_n;
    return DC_OK;
}

void dc_detok_flush(dc_detok *d, const char **text, size_t *len) {
    memmove(d->buf, d->buf + d->out_n, d->n);
    d->out_n = d->n;
    d->n = 0;
    *text = d->buf;
    *len = d->out_n;
}
