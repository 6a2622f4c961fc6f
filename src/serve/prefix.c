/*
 * prefix.c — the prefix cache: finished sequences kept in the engine with
 * the token ids their KV rows stand for (sv.h).
 *
 * A chat's next turn renders as the previous prompt + the answer + the new
 * user message, so its prompt starts with the ids a finished sequence holds.
 * The scheduler asks sv_prefix_match for the entry sharing the longest
 * prefix L with the new prompt, forks it (pages shared, not copied), cuts
 * the fork to L (at most the prompt less one token, whose logits are
 * needed) and prefills only the rest. Entries live until evicted: least
 * recently used first, when the cache is full or the engine needs their
 * sequences or pages. Matching is a linear scan: the cache holds a few
 * entries (--cache, default --parallel), each compared up to its length.
 */
#include <stdlib.h>
#include <string.h>
#include "serve/sv.h"

int sv_prefix_init(sv_prefix *p, int cap) {
    memset(p, 0, sizeof *p);
    p->cap = cap > 0 ? cap : 0;
    if (p->cap && !(p->e = calloc(p->cap, sizeof *p->e))) return -1;
    return 0;
}

static void drop(sv_prefix *p, dc_engine *e, int i) {
    dc_seq_free(e, p->e[i].seq);
    free(p->e[i].ids);
    p->e[i] = p->e[--p->n];
}

void sv_prefix_free(sv_prefix *p, dc_engine *e) {
    while (p->n) drop(p, e, p->n - 1);
    free(p->e);
    memset(p, 0, sizeof *p);
}

static int common(const int *a, int na, const int *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

int sv_prefix_match(sv_prefix *p, const int *ids, int n, int *len) {
    int best = -1, bl = 0;
    for (int i = 0; i < p->n; i++) {
        int l = common(p->e[i].ids, p->e[i].n, ids, n);
        if (l > bl) best = i, bl = l;
    }
    if (best >= 0) p->e[best].used = ++p->clock;
    *len = bl;
    return best;
}

int sv_prefix_evict(sv_prefix *p, dc_engine *e) {
    if (!p->n) return -1;
    int lru = 0;
    for (int i = 1; i < p->n; i++)
        if (p->e[i].used < p->e[lru].used) lru = i;
    drop(p, e, lru);
    return 0;
}

void sv_prefix_put(sv_prefix *p, dc_engine *e, int seq, const int *ids, int n) {
    int *copy = n > 0 && p->cap ? malloc(sizeof(int) * n) : NULL;
    if (!copy) { /* no room to remember it: give the sequence back */
        dc_seq_free(e, seq);
        return;
    }
    memcpy(copy, ids, sizeof(int) * n);
    for (int i = 0; i < p->n; i++) /* an entry this one extends is no longer needed */
        if (p->e[i].n <= n && common(p->e[i].ids, p->e[i].n, ids, n) == p->e[i].n) drop(p, e, i--);
    if (p->n == p->cap) sv_prefix_evict(p, e);
    p->e[p->n++] = (sv_prefix_entry){.seq = seq, .ids = copy, .n = n, .used = ++p->clock};
}
