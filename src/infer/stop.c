/*
 * stop.c — stop strings over streamed text (deepc.h, dc_stop): the text so
 * far is kept; after each push, a completed stop string ends the stream, and
 * of the rest only what cannot be the start of a stop string is released
 * (the longest tail of the text that a stop string begins with is held back).
 */
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "deepc.h"

struct dc_stop {
    char **stops;
    int n;
    size_t maxlen;
    char *text;          /* everything pushed, NUL-terminated */
    size_t len, cap;
    size_t released;     /* bytes of text already given out */
    int stopped;
};

int dc_stop_new(const char *const *stops, int n, dc_stop **out, dc_err *err) {
    *out = NULL;
    if (n < 0) return err_set(err, DC_EARG, "stop: %d stop strings", n);
    dc_stop *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, DC_ENOMEM, "stop: out of memory");
    s->stops = calloc(n ? n : 1, sizeof *s->stops);
    s->cap = 256;
    s->text = malloc(s->cap);
    if (!s->stops || !s->text) {
        dc_stop_free(s);
        return err_set(err, DC_ENOMEM, "stop: out of memory");
    }
    s->text[0] = 0;
    for (int i = 0; i < n; i++) {
        if (!stops[i] || !*stops[i]) {
            dc_stop_free(s);
            return err_set(err, DC_EARG, "stop: stop string %d is empty", i);
        }
        if (!(s->stops[i] = strdup(stops[i]))) {
            dc_stop_free(s);
            return err_set(err, DC_ENOMEM, "stop: out of memory");
        }
        s->n = i + 1;
        size_t l = strlen(stops[i]);
        if (l > s->maxlen) s->maxlen = l;
    }
    *out = s;
    return DC_OK;
}

void dc_stop_free(dc_stop *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->stops[i]);
    free(s->stops);
    free(s->text);
    free(s);
}

void dc_stop_reset(dc_stop *s) {
    s->len = s->released = 0;
    s->text[0] = 0;
    s->stopped = 0;
}

/* the earliest stop string found starting at or after byte `from`, or NULL
 * (memmem: the text may hold NUL bytes) */
static const char *find_stop(const dc_stop *s, size_t from) {
    const char *best = NULL;
    for (int i = 0; i < s->n; i++) {
        const char *hit = memmem(s->text + from, s->len - from, s->stops[i], strlen(s->stops[i]));
        if (hit && (!best || hit < best)) best = hit;
    }
    return best;
}

/* the longest unreleased tail of the text that some stop string starts with */
static size_t held_back(const dc_stop *s) {
    size_t most = s->len - s->released;
    if (s->maxlen && most > s->maxlen - 1) most = s->maxlen - 1;
    for (size_t k = most; k > 0; k--)
        for (int i = 0; i < s->n; i++)
            if (strlen(s->stops[i]) > k && !memcmp(s->text + s->len - k, s->stops[i], k)) return k;
    return 0;
}

static void release(dc_stop *s, size_t upto, const char **out, size_t *out_len) {
    *out = s->text + s->released;
    *out_len = upto > s->released ? upto - s->released : 0;
    if (upto > s->released) s->released = upto;
}

int dc_stop_push(dc_stop *s, const char *text, size_t len, const char **out, size_t *out_len) {
    *out = s->text + s->released, *out_len = 0;
    if (s->stopped) return 1;
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap * 2 > s->len + len + 1 ? s->cap * 2 : s->len + len + 1;
        char *nt = realloc(s->text, cap);
        if (!nt) { /* keep going without stop detection for this piece: release it as it is */
            *out = text, *out_len = len;
            return 0;
        }
        s->text = nt, s->cap = cap;
    }
    size_t from = s->len;
    memcpy(s->text + s->len, text, len);
    s->len += len;
    s->text[s->len] = 0;
    /* a stop string may start up to maxlen-1 bytes before the new text */
    size_t scan = from >= s->maxlen ? from - s->maxlen + 1 : 0;
    if (scan < s->released) scan = s->released;
    const char *hit = s->n ? find_stop(s, scan) : NULL;
    if (hit) {
        release(s, (size_t)(hit - s->text), out, out_len);
        s->stopped = 1;
        return 1;
    }
    release(s, s->len - held_back(s), out, out_len);
    return 0;
}

void dc_stop_flush(dc_stop *s, const char **out, size_t *out_len) {
    if (s->stopped) {
        *out = s->text + s->released, *out_len = 0;
        return;
    }
    release(s, s->len, out, out_len);
}
