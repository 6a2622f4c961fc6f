/* bpe.c — see bpe.h. */
#include "tokenizer/bpe.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int ivec_reserve(ivec *v, size_t extra) {
    if (v->n + extra <= v->cap) return DC_OK;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->n + extra) cap *= 2;
    int *a = realloc(v->a, sizeof(int) * cap);
    if (!a) return DC_ENOMEM;
    v->a = a;
    v->cap = cap;
    return DC_OK;
}

void bpe_state_init(bpe_state *st) { memset(st, 0, sizeof *st); }

void bpe_state_free(bpe_state *st) {
    if (!st) return;
    free(st->ids);
    free(st->rank);
    free(st->res);
    free(st->prev);
    free(st->next);
    free(st->heap);
    free(st->slot);
    free(st->ent);
    free(st->kbuf);
    free(st->ibuf);
    memset(st, 0, sizeof *st);
}

static int work_reserve(bpe_state *st, size_t n) {
    if (n <= st->wcap) return DC_OK;
    size_t cap = st->wcap ? st->wcap : 256;
    while (cap < n) cap *= 2;
    int **arr[] = {&st->ids, &st->rank, &st->res, &st->prev, &st->next};
    for (size_t i = 0; i < sizeof arr / sizeof *arr; i++) {
        int *a = realloc(*arr[i], sizeof(int) * cap);
        if (!a) return DC_ENOMEM;
        *arr[i] = a;
    }
    st->wcap = cap;
    return DC_OK;
}

// ---------------------------------------------------------------- short words: flat array
static inline void pair_rank(const vocab *v, const int *ids, int i, int *rank, int *res) {
    if (!vocab_merge(v, ids[i], ids[i + 1], &rank[i], &res[i])) rank[i] = INT_MAX;
}

/* merge_flat: ids[0, m) in place; returns the new length. */
static int merge_flat(const vocab *v, bpe_state *st, int m) {
    int *ids = st->ids, *rank = st->rank, *res = st->res;
    for (int i = 0; i + 1 < m; i++) pair_rank(v, ids, i, rank, res);
    while (m > 1) {
        int best = INT_MAX, bi = -1;
        for (int i = 0; i + 1 < m; i++)
            if (rank[i] < best) best = rank[i], bi = i;
        if (bi < 0) break;
        ids[bi] = res[bi];
        memmove(ids + bi + 1, ids + bi + 2, sizeof(int) * (size_t)(m - bi - 2));
        memmove(rank + bi, rank + bi + 1, sizeof(int) * (size_t)(m - bi - 2));
        memmove(res + bi, res + bi + 1, sizeof(int) * (size_t)(m - bi - 2));
        m--;
        if (bi > 0) pair_rank(v, ids, bi - 1, rank, res);
        if (bi + 1 < m) pair_rank(v, ids, bi, rank, res);
    }
    return m;
}

// ---------------------------------------------------------------- long words: list + heap
typedef struct bpe_item item;

static inline int item_less(const item *a, const item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(item *h, size_t *n, item x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!item_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static item heap_pop(item *h, size_t *n) {
    item top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && item_less(&h[c + 1], &h[c])) c++;
        if (!item_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = x;
    return top;
}

static void try_pair(const vocab *v, bpe_state *st, size_t *hn, int l, int r) {
    int rank, res;
    if (l < 0 || r < 0 || !vocab_merge(v, st->ids[l], st->ids[r], &rank, &res)) return;
    heap_push(st->heap, hn, (item){rank, l, r});
}

/* merge_heap: ids[0, m) as a linked list; compacts the survivors into ids and
 * returns their count. The heap never holds more than m + 2 * merges <= 3m. */
static int merge_heap(const vocab *v, bpe_state *st, int m) {
    size_t need = (size_t)m * 3 + 4, hn = 0;
    if (need > st->hcap) {
        item *h = realloc(st->heap, sizeof(item) * need);
        if (!h) return -1;
        st->heap = h;
        st->hcap = need;
    }
    int *ids = st->ids, *prev = st->prev, *next = st->next;
    for (int i = 0; i < m; i++) prev[i] = i - 1, next[i] = i + 1 < m ? i + 1 : -1;
    for (int i = 0; i + 1 < m; i++) try_pair(v, st, &hn, i, i + 1);
    while (hn) {
        item it = heap_pop(st->heap, &hn);
        int l = it.left, r = it.right, rank, res;
        if (ids[l] < 0 || ids[r] < 0 || next[l] != r) continue;
        if (!vocab_merge(v, ids[l], ids[r], &rank, &res) || rank != it.rank) continue;
        ids[l] = res;
        ids[r] = -1;
        next[l] = next[r];
        if (next[r] >= 0) prev[next[r]] = l;
        try_pair(v, st, &hn, prev[l], l);
        try_pair(v, st, &hn, l, next[l]);
    }
    int k = 0;
    for (int i = 0; i >= 0; i = next[i]) ids[k++] = ids[i];
    return k;
}

// ---------------------------------------------------------------- cache
static bpe_entry *cache_find(bpe_state *st, uint64_t h, const uint8_t *s, size_t n) {
    if (!st->slot) return NULL;
    uint32_t mask = st->scap - 1;
    for (uint32_t i = (uint32_t)h & mask, e; (e = st->slot[i]); i = (i + 1) & mask) {
        bpe_entry *x = &st->ent[e - 1];
        if (x->h == h && x->klen == n && memcmp(st->kbuf + x->koff, s, n) == 0) return x;
    }
    return NULL;
}

static void cache_clear(bpe_state *st) {
    if (st->slot) memset(st->slot, 0, sizeof(uint32_t) * st->scap);
    st->nent = 0;
    st->kn = st->in = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int cache_rehash(bpe_state *st, uint32_t scap) {
    uint32_t *slot = calloc(scap, sizeof *slot);
    if (!slot) return -1;
    for (uint32_t e = 0; e < st->nent; e++) {
        uint32_t i = (uint32_t)st->ent[e].h & (scap - 1);
        while (slot[i]) i = (i + 1) & (scap - 1);
        slot[i] = e + 1;
    }
    free(st->slot);
    st->slot = slot;
    st->scap = scap;
    return 0;
}

/* cache_add: best effort; a failed allocation only means no caching. */
static void cache_add(bpe_state *st, uint64_t h, const uint8_t *s, size_t n, const int *ids, size_t k) {
    if (st->nent >= BPE_CACHE_MAX) cache_clear(st);
    if ((st->nent + 1) * 2 > st->scap && cache_rehash(st, st->scap ? st->scap * 2 : 1024)) return;
    size_t ecap = st->ecap;
    if (grow((void **)&st->ent, &ecap, st->nent + 1, sizeof(bpe_entry))) return;
    st->ecap = (uint32_t)ecap;
    if (grow((void **)&st->kbuf, &st->kcap, st->kn + n, 1) || grow((void **)&st->ibuf, &st->icap, st->in + k, sizeof(int)))
        return;
    bpe_entry *x = &st->ent[st->nent];
    *x = (bpe_entry){h, (uint32_t)st->kn, (uint32_t)n, (uint32_t)st->in, (uint32_t)k};
    memcpy(st->kbuf + st->kn, s, n);
    memcpy(st->ibuf + st->in, ids, sizeof(int) * k);
    st->kn += n;
    st->in += k;
    uint32_t i = (uint32_t)h & (st->scap - 1);
    while (st->slot[i]) i = (i + 1) & (st->scap - 1);
    st->slot[i] = ++st->nent;
}

// ---------------------------------------------------------------- one word
int bpe_word(const vocab *v, bpe_state *st, const uint8_t *s, size_t n, ivec *out) {
    if (n == 1) return v->byte_id[s[0]] >= 0 ? ivec_push(out, v->byte_id[s[0]]) : DC_OK;
    int cacheable = n <= BPE_CACHE_WORD;
    uint64_t h = 0;
    if (cacheable) {
        h = hash_bytes(s, n);
        bpe_entry *x = cache_find(st, h, s, n);
        if (x) {
            st->hits++;
            if (ivec_reserve(out, x->nids)) return DC_ENOMEM;
            memcpy(out->a + out->n, st->ibuf + x->ioff, sizeof(int) * x->nids);
            out->n += x->nids;
            return DC_OK;
        }
        st->misses++;
    }
    if (n > INT_MAX / 4 || work_reserve(st, n)) return DC_ENOMEM;
    int m = 0;
    for (size_t i = 0; i < n; i++)
        if (v->byte_id[s[i]] >= 0) st->ids[m++] = v->byte_id[s[i]]; /* a byte without a token is dropped */
    if (m == 0) return DC_OK;
    m = m <= BPE_SHORT ? merge_flat(v, st, m) : merge_heap(v, st, m);
    if (m < 0) return DC_ENOMEM;
    if (ivec_reserve(out, (size_t)m)) return DC_ENOMEM;
    memcpy(out->a + out->n, st->ids, sizeof(int) * (size_t)m);
    out->n += (size_t)m;
    if (cacheable) cache_add(st, h, s, n, st->ids, (size_t)m);
    return DC_OK;
}
