/* vocab.c — see vocab.h. Two open-addressing hash tables (linear probing,
 * load <= 1/2) and a byte trie; nothing here is specific to a file format. */
#include "tokenizer/vocab.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"

#define EMPTY UINT64_MAX

// ---------------------------------------------------------------- u64map
int u64map_init(u64map *m, uint64_t expect) {
    uint64_t cap = 16;
    while (cap < expect * 2) cap *= 2;
    m->keys = malloc(sizeof(uint64_t) * cap);
    m->vals = malloc(sizeof(uint64_t) * cap);
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals) {
        u64map_free(m);
        return DC_ENOMEM;
    }
    memset(m->keys, 0xff, sizeof(uint64_t) * cap);
    return DC_OK;
}

void u64map_free(u64map *m) {
    if (!m) return;
    free(m->keys);
    free(m->vals);
    m->keys = m->vals = NULL;
    m->cap = m->n = 0;
}

static int u64map_grow(u64map *m) {
    u64map nm;
    if (u64map_init(&nm, m->cap)) return DC_ENOMEM;
    for (uint64_t i = 0; i < m->cap; i++)
        if (m->keys[i] != EMPTY) u64map_put(&nm, m->keys[i], m->vals[i], 1);
    u64map_free(m);
    *m = nm;
    return DC_OK;
}

int u64map_put(u64map *m, uint64_t key, uint64_t val, int replace) {
    if ((m->n + 1) * 2 > m->cap && u64map_grow(m)) return DC_ENOMEM;
    uint64_t mask = m->cap - 1, i = hash_u64(key) & mask;
    while (m->keys[i] != EMPTY) {
        if (m->keys[i] == key) {
            if (replace) m->vals[i] = val;
            return 0;
        }
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return 1;
}

int u64map_get(const u64map *m, uint64_t key, uint64_t *val) {
    if (!m->cap) return 0;
    uint64_t mask = m->cap - 1, i = hash_u64(key) & mask;
    while (m->keys[i] != EMPTY) {
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return 1;
        }
        i = (i + 1) & mask;
    }
    return 0;
}

uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = hash_u64(h ^ w);
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return hash_u64(h ^ w ^ ((uint64_t)n << 56));
}

// ---------------------------------------------------------------- tokens
int vocab_init(vocab *v, int n, dc_err *err) {
    memset(v, 0, sizeof *v);
    if (n <= 0 || n > (1 << 30)) return err_set(err, DC_EFORMAT, "vocab: %d tokens is out of range", n);
    v->n = n;
    v->attr = calloc((size_t)n, 1);
    v->off = calloc((size_t)n, sizeof *v->off);
    v->len = calloc((size_t)n, sizeof *v->len);
    v->bcap = (size_t)n * 8;
    v->bytes = malloc(v->bcap);
    if (!v->attr || !v->off || !v->len || !v->bytes) {
        vocab_free(v);
        return err_set(err, DC_ENOMEM, "vocab: out of memory for %d tokens", n);
    }
    for (int i = 0; i < 256; i++) v->byte_id[i] = -1;
    return DC_OK;
}

void vocab_free(vocab *v) {
    if (!v) return;
    free(v->attr);
    free(v->off);
    free(v->len);
    free(v->bytes);
    free(v->map);
    u64map_free(&v->merges);
    u64map_free(&v->trie_edges);
    free(v->trie_id);
    memset(v, 0, sizeof *v);
}

int vocab_set(vocab *v, int id, const void *bytes, size_t n, int attr, dc_err *err) {
    if (id < 0 || id >= v->n) return err_set(err, DC_EFORMAT, "vocab: token id %d outside [0, %d)", id, v->n);
    if (n > (1u << 20)) return err_set(err, DC_EFORMAT, "vocab: token %d is %zu bytes long", id, n);
    if (v->nbytes + n > UINT32_MAX) return err_set(err, DC_EFORMAT, "vocab: more than 4 GiB of token text");
    if (v->nbytes + n > v->bcap) {
        size_t cap = v->bcap * 2 + n;
        uint8_t *nb = realloc(v->bytes, cap);
        if (!nb) return err_set(err, DC_ENOMEM, "vocab: out of memory for token text");
        v->bytes = nb;
        v->bcap = cap;
    }
    if (n) memcpy(v->bytes + v->nbytes, bytes, n);
    v->off[id] = (uint32_t)v->nbytes;
    v->len[id] = (uint32_t)n;
    v->nbytes += n;
    v->attr[id] = (uint8_t)attr;
    if ((int)n > v->max_len) v->max_len = (int)n;
    return DC_OK;
}

int vocab_find(const vocab *v, const void *bytes, size_t n) {
    if (!v->map) return -1;
    uint32_t mask = v->mapcap - 1, i = (uint32_t)hash_bytes(bytes, n) & mask;
    for (uint32_t e; (e = v->map[i]); i = (i + 1) & mask) {
        int id = (int)e - 1;
        if (v->len[id] == n && memcmp(v->bytes + v->off[id], bytes, n) == 0) return id;
    }
    return -1;
}

int vocab_build_map(vocab *v, dc_err *err) {
    uint32_t cap = 16;
    while (cap < (uint32_t)v->n * 2) cap *= 2;
    free(v->map);
    v->map = calloc(cap, sizeof *v->map);
    if (!v->map) return err_set(err, DC_ENOMEM, "vocab: out of memory for the token map");
    v->mapcap = cap;
    for (int id = 0; id < v->n; id++) {
        if (v->attr[id] != TOK_NORMAL || vocab_find(v, v->bytes + v->off[id], v->len[id]) >= 0) continue;
        uint32_t i = (uint32_t)hash_bytes(v->bytes + v->off[id], v->len[id]) & (cap - 1);
        while (v->map[i]) i = (i + 1) & (cap - 1);
        v->map[i] = (uint32_t)id + 1;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        v->byte_id[b] = vocab_find(v, &c, 1);
    }
    return DC_OK;
}

// ---------------------------------------------------------------- merges
int vocab_add_merge(vocab *v, int a, int b, dc_err *err) {
    if (!v->merges.cap && u64map_init(&v->merges, (uint64_t)v->n))
        return err_set(err, DC_ENOMEM, "vocab: out of memory for merges");
    size_t la = v->len[a], lb = v->len[b];
    uint8_t stackbuf[256], *buf = la + lb <= sizeof stackbuf ? stackbuf : malloc(la + lb);
    if (!buf) return err_set(err, DC_ENOMEM, "vocab: out of memory");
    memcpy(buf, v->bytes + v->off[a], la);
    memcpy(buf + la, v->bytes + v->off[b], lb);
    int r = vocab_find(v, buf, la + lb);
    if (buf != stackbuf) free(buf);
    if (r < 0)
        return err_set(err, DC_EFORMAT, "vocab: merge %d (%d + %d) makes a token that is not in the vocab",
                       v->nmerges, a, b);
    int rc = u64map_put(&v->merges, (uint64_t)(uint32_t)a << 32 | (uint32_t)b,
                        (uint64_t)(uint32_t)v->nmerges << 32 | (uint32_t)r, 1);
    if (rc < 0) return err_set(err, DC_ENOMEM, "vocab: out of memory for merges");
    v->nmerges++;
    return DC_OK;
}

// ---------------------------------------------------------------- added tokens
static int trie_node(vocab *v) {
    if (v->trie_n == v->trie_cap) {
        int cap = v->trie_cap ? v->trie_cap * 2 : 1024;
        int *n = realloc(v->trie_id, sizeof(int) * cap);
        if (!n) return -1;
        v->trie_id = n;
        v->trie_cap = cap;
    }
    v->trie_id[v->trie_n] = -1;
    return v->trie_n++;
}

int vocab_build_added(vocab *v, dc_err *err) {
    u64map_free(&v->trie_edges);
    free(v->trie_id);
    v->trie_id = NULL;
    v->trie_n = v->trie_cap = 0;
    v->n_added = 0;
    memset(v->added_first, 0, sizeof v->added_first);
    if (u64map_init(&v->trie_edges, 1024) || trie_node(v) < 0)
        return err_set(err, DC_ENOMEM, "vocab: out of memory for added tokens");
    for (int id = 0; id < v->n; id++) {
        if (v->attr[id] != TOK_ADDED && v->attr[id] != TOK_SPECIAL) continue;
        if (!v->len[id]) continue;
        const uint8_t *s = v->bytes + v->off[id];
        int node = 0;
        for (uint32_t k = 0; k < v->len[id]; k++) {
            uint64_t key = (uint64_t)node << 8 | s[k], child;
            if (!u64map_get(&v->trie_edges, key, &child)) {
                int c = trie_node(v);
                if (c < 0 || u64map_put(&v->trie_edges, key, (uint64_t)c, 0) < 0)
                    return err_set(err, DC_ENOMEM, "vocab: out of memory for added tokens");
                child = (uint64_t)c;
            }
            node = (int)child;
        }
        if (v->trie_id[node] < 0) v->trie_id[node] = id; /* two ids with one text: the first wins */
        v->added_first[s[0]] = 1;
        v->n_added++;
    }
    return DC_OK;
}

int vocab_next_added(const vocab *v, const char *s, size_t n, size_t from, int with_special, size_t *b, size_t *e) {
    if (!v->n_added) return -1;
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = from; i < n; i++) {
        if (!v->added_first[u[i]]) continue;
        int node = 0, best = -1;
        size_t best_end = 0;
        for (size_t k = i; k < n; k++) {
            uint64_t child;
            if (!u64map_get(&v->trie_edges, (uint64_t)node << 8 | u[k], &child)) break;
            node = (int)child;
            int id = v->trie_id[node];
            if (id >= 0 && (with_special || v->attr[id] != TOK_SPECIAL)) best = id, best_end = k + 1;
        }
        if (best >= 0) {
            *b = i;
            *e = best_end;
            return best;
        }
    }
    return -1;
}
