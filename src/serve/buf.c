/*
 * buf.c — growable byte strings and UTF-8 checks for the server (sv.h).
 *
 * UTF-8 (RFC 3629): 1 byte 0xxxxxxx; 2 bytes C2..DF + 1 continuation; 3 bytes
 * E0 A0..BF | E1..EC 80..BF | ED 80..9F (no surrogates) | EE..EF 80..BF, + 1;
 * 4 bytes F0 90..BF | F1..F3 80..BF | F4 80..8F, + 2. Anything else is invalid.
 * Invalid text is shown with one U+FFFD per maximal subpart (a valid start of
 * a sequence cut short, or one stray byte), as browsers and Node decode it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "serve/sv.h"

static int grow(buf *b, size_t need) {
    if (b->oom) return -1;
    if (b->n + need + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + need + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = 1;
        return -1;
    }
    b->s = s, b->cap = cap;
    return 0;
}

void buf_add(buf *b, const void *p, size_t n) {
    if (grow(b, n)) return;
    if (n) memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

void buf_fmt(buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        buf_add(b, tmp, (size_t)k);
        return;
    }
    if (grow(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void buf_reset(buf *b) {
    b->n = 0;
    if (b->s) b->s[0] = 0;
}

void buf_free(buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* seq_len: bytes of the valid UTF-8 sequence at s (n bytes left), 0 if it is
 * not one; *part: the bytes of its longest valid start (the "maximal subpart"
 * that Unicode §3.9 and the WHATWG decoder replace by one U+FFFD), >= 1 */
static size_t seq_len(const unsigned char *s, size_t n, size_t *part) {
    unsigned c = s[0];
    *part = 1;
    if (c < 0x80) return 1;
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    for (size_t i = 1; i < k; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) return 0;
        *part = i + 1;
        lo = 0x80, hi = 0xBF;
    }
    return k;
}

size_t utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, part;
    while (i < n) {
        size_t k = seq_len(u + i, n - i, &part);
        if (!k) return i;
        i += k;
    }
    return n;
}

void utf8_lossy(buf *out, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, part;
    while (i < n) {
        size_t k = seq_len(u + i, n - i, &part);
        if (k) buf_add(out, s + i, k), i += k;
        else buf_str(out, "\xEF\xBF\xBD"), i += part;
    }
}

double sv_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
