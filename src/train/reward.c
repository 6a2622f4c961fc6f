/* reward.c — see reward.h. */
#include "train/reward.h"
#include <string.h>

#define THINK_OPEN "<think>"
#define THINK_CLOSE "</think>"
#define TAG_OPEN "<answer>"
#define TAG_CLOSE "</answer>"
#define BOXED "\\boxed{"

/* find: the first occurrence of needle in [s, s+n), or NULL (bytes, no NUL needed) */
static const char *find(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    if (k == 0 || k > n) return NULL;
    return memmem(s, n, needle, k);
}

static int count(const char *s, size_t n, const char *needle) {
    int c = 0;
    size_t k = strlen(needle);
    for (const char *p = s; (p = find(p, n - (size_t)(p - s), needle)); p += k) c++;
    return c;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* copy_trim: [s, s+n) without surrounding white space into out */
static void copy_trim(const char *s, size_t n, char *out, size_t cap) {
    while (n && is_space(*s)) s++, n--;
    while (n && is_space(s[n - 1])) n--;
    if (n >= cap) n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* answer_region: the text the answer is taken from; 0 when there is none */
static int answer_region(const char *resp, size_t n, const answer_fmt *f, const char **a, size_t *an) {
    if (!f->think) {
        *a = resp, *an = n;
        return 1;
    }
    if (count(resp, n, THINK_CLOSE) != 1) return 0;
    const char *e = find(resp, n, THINK_CLOSE) + strlen(THINK_CLOSE);
    *a = e, *an = n - (size_t)(e - resp);
    return 1;
}

/* boxed: the content of the single \boxed{...} of [s, s+n), braces balanced */
static int boxed(const char *s, size_t n, const char **c, size_t *cn) {
    if (count(s, n, BOXED) != 1) return 0;
    const char *p = find(s, n, BOXED) + strlen(BOXED), *end = s + n;
    int depth = 1;
    for (const char *q = p; q < end; q++) {
        depth += *q == '{' ? 1 : *q == '}' ? -1 : 0;
        if (depth == 0) {
            *c = p, *cn = (size_t)(q - p);
            return 1;
        }
    }
    return 0;
}

static int tagged(const char *s, size_t n, const char **c, size_t *cn) {
    if (count(s, n, TAG_OPEN) != 1 || count(s, n, TAG_CLOSE) != 1) return 0;
    const char *o = find(s, n, TAG_OPEN) + strlen(TAG_OPEN), *e = find(s, n, TAG_CLOSE);
    if (e < o) return 0;
    *c = o, *cn = (size_t)(e - o);
    return 1;
}

/* number_at: the length of the number starting at s (sign, digits, commas,
 * fraction), 0 if none */
static size_t number_at(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    size_t d = i;
    while (i < n && (is_digit(s[i]) || (s[i] == ',' && i + 1 < n && is_digit(s[i + 1]) && i > d))) i++;
    if (i == d) return 0;
    if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1]))
        for (i++; i < n && is_digit(s[i]); i++) {}
    return i;
}

static int last_number(const char *s, size_t n, const char **c, size_t *cn) {
    int found = 0;
    for (size_t i = 0; i < n;) {
        int sign_ok = (s[i] == '-' || s[i] == '+') &&
                      (i == 0 || !(is_digit(s[i - 1]) || s[i - 1] == ')' || ((s[i - 1] | 32) >= 'a' && (s[i - 1] | 32) <= 'z')));
        size_t k = (is_digit(s[i]) || sign_ok) ? number_at(s + i, n - i) : 0;
        if (k) {
            *c = s + i, *cn = k, found = 1;
            i += k;
        } else {
            i++;
        }
    }
    return found;
}

int answer_extract(const char *resp, size_t n, const answer_fmt *f, char *out, size_t cap) {
    const char *a, *c;
    size_t an, cn;
    if (cap) out[0] = 0;
    if (!cap || !answer_region(resp, n, f, &a, &an)) return 0;
    int ok = f->mark == ANS_TAG ? tagged(a, an, &c, &cn) : f->mark == ANS_BOXED ? boxed(a, an, &c, &cn)
                                                                                : last_number(a, an, &c, &cn);
    if (ok) copy_trim(c, cn, out, cap);
    return ok;
}

int number_norm(const char *s, size_t n, char *out, size_t cap) {
    char t[4096];
    copy_trim(s, n, t, sizeof t);
    const char *p = t;
    size_t k = strlen(t);
    if (k && *p == '$') p++, k--;
    if (!k || number_at(p, k) != k || cap < 4) return 0;
    int neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    /* commas only between groups of three digits */
    const char *dot = strchr(p, '.'), *ie = dot ? dot : p + strlen(p);
    if (memchr(p, ',', (size_t)(ie - p))) {
        int run = 0, first = 1;
        for (const char *q = p; q < ie; q++) {
            if (*q == ',') {
                if ((first && (run < 1 || run > 3)) || (!first && run != 3)) return 0;
                first = 0, run = 0;
            } else {
                run++;
            }
        }
        if (run != 3) return 0;
    }
    size_t o = 0;
    if (neg) out[o++] = '-';
    const char *q = p;
    while (q < ie - 1 && (*q == '0' || *q == ',')) q++; /* leading zeros */
    for (; q < ie && o + 2 < cap; q++)
        if (*q != ',') out[o++] = *q;
    if (dot) {
        const char *fe = dot + strlen(dot);
        while (fe > dot + 1 && fe[-1] == '0') fe--;
        if (fe > dot + 1)
            for (const char *r = dot; r < fe && o + 1 < cap; r++) out[o++] = *r;
    }
    out[o] = 0;
    if (o >= cap - 2) return 0; /* too long to hold */
    if (!strcmp(out, "-0")) strcpy(out, "0");
    return 1;
}

int answer_equal(const char *a, const char *e) {
    char na[4096], ne[4096];
    if (number_norm(e, strlen(e), ne, sizeof ne)) return number_norm(a, strlen(a), na, sizeof na) && !strcmp(na, ne);
    copy_trim(e, strlen(e), ne, sizeof ne);
    copy_trim(a, strlen(a), na, sizeof na);
    return !strcmp(na, ne);
}

int reward_format(const char *resp, size_t n, const answer_fmt *f) {
    const char *a, *c;
    size_t an, cn;
    if (f->think) {
        if (count(resp, n, THINK_OPEN) > 1) return 0;
        const char *o = find(resp, n, THINK_OPEN), *e = find(resp, n, THINK_CLOSE);
        if (o && e && o > e) return 0;
    }
    if (!answer_region(resp, n, f, &a, &an)) return 0;
    if (f->mark == ANS_TAG) return tagged(a, an, &c, &cn);
    if (f->mark == ANS_BOXED) return boxed(a, an, &c, &cn);
    return last_number(a, an, &c, &cn);
}
