/* countdown.c — see countdown.h. */
#include "train/countdown.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct rat {
    int64_t n, d; /* d > 0, reduced */
} rat;

typedef struct parser {
    const char *s, *end;
    int depth, err;
    int *used, n_used, cap;
} parser;

static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a ? a : 1;
}

static rat reduce(int64_t n, int64_t d) {
    if (d < 0) n = -n, d = -d;
    int64_t g = gcd64(n, d);
    return (rat){n / g, d / g};
}

/* op: a op b exactly; sets *err on overflow or division by zero */
static rat op(rat a, rat b, char o, int *err) {
    int64_t x, y, z;
    int ovf = 0;
    if (o == '+' || o == '-') {
        if (o == '-') b.n = -b.n;
        ovf |= __builtin_mul_overflow(a.n, b.d, &x) | __builtin_mul_overflow(b.n, a.d, &y);
        ovf |= __builtin_add_overflow(x, y, &x) | __builtin_mul_overflow(a.d, b.d, &z);
    } else {
        if (o == '/') {
            if (b.n == 0) return *err = CD_DIVZERO, (rat){0, 1};
            int64_t t = b.n;
            b.n = b.d, b.d = t;
        }
        ovf |= __builtin_mul_overflow(a.n, b.n, &x) | __builtin_mul_overflow(a.d, b.d, &z);
    }
    if (ovf || z == INT64_MIN || x == INT64_MIN) return *err = CD_OVERFLOW, (rat){0, 1};
    return reduce(x, z);
}

static void skip(parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static rat expr(parser *p);

static rat factor(parser *p) {
    skip(p);
    if (p->err) return (rat){0, 1};
    if (p->s < p->end && *p->s == '(') {
        if (++p->depth > MAX_DEPTH) return p->err = CD_SYNTAX, (rat){0, 1};
        p->s++;
        rat v = expr(p);
        skip(p);
        if (p->s >= p->end || *p->s != ')') return p->err = p->err ? p->err : CD_SYNTAX, (rat){0, 1};
        p->s++;
        p->depth--;
        return v;
    }
    int64_t v = 0;
    int digits = 0;
    while (p->s < p->end && *p->s >= '0' && *p->s <= '9' && digits < 10) v = v * 10 + (*p->s++ - '0'), digits++;
    if (!digits || digits > 9) return p->err = CD_SYNTAX, (rat){0, 1};
    if (p->n_used >= p->cap) return p->err = CD_TOO_MANY, (rat){0, 1};
    p->used[p->n_used++] = (int)v;
    return (rat){v, 1};
}

static rat term(parser *p) {
    rat v = factor(p);
    for (;;) {
        skip(p);
        if (p->err || p->s >= p->end || (*p->s != '*' && *p->s != '/')) return v;
        char o = *p->s++;
        rat r = factor(p);
        if (!p->err) v = op(v, r, o, &p->err);
    }
}

static rat expr(parser *p) {
    rat v = term(p);
    for (;;) {
        skip(p);
        if (p->err || p->s >= p->end || (*p->s != '+' && *p->s != '-')) return v;
        char o = *p->s++;
        rat r = term(p);
        if (!p->err) v = op(v, r, o, &p->err);
    }
}

int cd_eval(const char *s, size_t n, int64_t *num, int64_t *den, int *used, int *n_used, int cap) {
    parser p = {s, s + n, 0, 0, used, 0, cap};
    rat v = expr(&p);
    skip(&p);
    if (!p.err && p.s != p.end) p.err = CD_SYNTAX;
    *n_used = p.n_used;
    if (p.err) return p.err;
    *num = v.n, *den = v.d;
    return CD_OK;
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

int cd_check(const char *eq, size_t n, const int *nums, int k, long target) {
    const char *e = memchr(eq, '=', n);
    size_t ln = e ? (size_t)(e - eq) : n;
    if (e) { /* the right side: nothing, or the target */
        int64_t rn, rd;
        int ru[2], nru;
        const char *r = e + 1;
        size_t rl = n - ln - 1, i = 0;
        while (i < rl && (r[i] == ' ' || r[i] == '\n')) i++;
        if (i < rl && (cd_eval(r, rl, &rn, &rd, ru, &nru, 2) || rd != 1 || rn != target || nru != 1)) return 0;
    }
    int used[16], nu;
    int64_t num, den;
    if (k > 16 || cd_eval(eq, ln, &num, &den, used, &nu, 16) != CD_OK) return 0;
    if (den != 1 || num != target || nu != k) return 0;
    int a[16], b[16];
    memcpy(a, used, sizeof(int) * k), memcpy(b, nums, sizeof(int) * k);
    qsort(a, k, sizeof(int), cmp_int), qsort(b, k, sizeof(int), cmp_int);
    return memcmp(a, b, sizeof(int) * k) == 0;
}

void cd_generate(rng *r, int k, int *nums, int *target, char *solution, size_t cap) {
    if (k < 2) k = 2;
    if (k > 6) k = 6;
    for (int tries = 0;; tries++) {
        long val[6];
        char ex[6][256];
        for (int i = 0; i < k; i++) nums[i] = 1 + (int)(rng_u64(r) % 100), val[i] = nums[i], snprintf(ex[i], 256, "%d", nums[i]);
        int m = k, ok = 1;
        while (m > 1 && ok) {
            int i = (int)(rng_u64(r) % m), j = (int)(rng_u64(r) % (m - 1));
            if (j >= i) j++;
            const char ops[] = "+-*/";
            char o = ops[rng_u64(r) % 4];
            long a = val[i], b = val[j], v = o == '+' ? a + b : o == '-' ? a - b : o == '*' ? a * b : (b && a % b == 0 ? a / b : -1);
            ok = v > 0 && v < 100000;
            char t[256];
            snprintf(t, sizeof t, "(%s %c %s)", ex[i], o, ex[j]);
            val[i] = v, memcpy(ex[i], t, sizeof t);
            val[j] = val[m - 1], memcpy(ex[j], ex[m - 1], sizeof ex[j]);
            m--;
        }
        if ((!ok || val[0] > 999) && tries < 10000) continue;
        *target = (int)val[0];
        size_t len = strlen(ex[0]);
        if (ex[0][0] == '(' && len > 2) ex[0][len - 1] = 0, snprintf(solution, cap, "%s", ex[0] + 1); /* outer parentheses */
        else snprintf(solution, cap, "%s", ex[0]);
        return;
    }
}

/* solve: exhaustive search over pairs, exact rationals */
static int solve(rat *v, char (*ex)[128], int m, long target, char *out, size_t cap) {
    if (m == 1) {
        if (v[0].d != 1 || v[0].n != target) return 0;
        snprintf(out, cap, "%s", ex[0]);
        return 1;
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            if (i == j) continue;
            for (const char *o = "+-*/"; *o; o++) {
                if ((*o == '+' || *o == '*') && j < i) continue; /* commutative: once */
                int err = 0;
                rat r = op(v[i], v[j], *o, &err);
                if (err) continue;
                rat nv[6];
                char nex[6][128];
                int k = 0;
                for (int q = 0; q < m; q++)
                    if (q != i && q != j) nv[k] = v[q], memcpy(nex[k], ex[q], 128), k++;
                nv[k] = r;
                snprintf(nex[k], 128, "(%s %c %s)", ex[i], *o, ex[j]);
                if (solve(nv, nex, k + 1, target, out, cap)) return 1;
            }
        }
    return 0;
}

int cd_solve(const int *nums, int k, long target, char *out, size_t cap) {
    if (k < 1 || k > 6) return 0;
    rat v[6];
    char ex[6][128];
    for (int i = 0; i < k; i++) v[i] = (rat){nums[i], 1}, snprintf(ex[i], 128, "%d", nums[i]);
    if (!solve(v, ex, k, target, out, cap)) return 0;
    size_t len = strlen(out);
    if (out[0] == '(' && len > 2) memmove(out, out + 1, len - 2), out[len - 2] = 0;
    return 1;
}
