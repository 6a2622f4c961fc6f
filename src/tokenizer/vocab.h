/*
 * vocab.h — the token table of a byte-level BPE tokenizer: each id's raw
 * bytes, a bytes -> id map, the merge table (pair of ids -> rank and result),
 * and a byte trie over the added tokens for matching them inside text.
 *
 * Tokens are stored as the raw bytes they stand for (a tokenizer.json or GGUF
 * vocab stores them in GPT-2's byte-to-unicode form; the loaders undo that),
 * so BPE, decode and the trainer all work on bytes. An added token (special
 * or not) is stored as its literal text.
 *
 * Building: vocab_init(n) -> vocab_set(id, ...) for every id in any order ->
 * vocab_add_merge(a, b) in rank order -> vocab_finish. After vocab_finish
 * the table is read-only and safe to share between threads.
 */
#ifndef DC_VOCAB_H
#define DC_VOCAB_H
#include <stddef.h>
#include <stdint.h>
#include "deepc.h"

enum {
    TOK_NONE = 0,    /* a hole: no token has this id */
    TOK_NORMAL = 1,  /* a BPE token (may come out of merges) */
    TOK_ADDED = 2,   /* an added token that is not special (e.g. <think>) */
    TOK_SPECIAL = 3, /* an added special token (e.g. BOS) */
};

/* u64map: open addressing from u64 keys to u64 values; ~0 marks empty. */
typedef struct u64map {
    uint64_t *keys, *vals;
    uint64_t cap; /* power of two */
    uint64_t n;
} u64map;

int u64map_init(u64map *m, uint64_t expect);
void u64map_free(u64map *m);
/* u64map_put: insert or (when replace) overwrite; 1 when the key was new, 0
 * when it was there, DC_ENOMEM on failure. */
int u64map_put(u64map *m, uint64_t key, uint64_t val, int replace);
/* u64map_get: 1 and *val when present. */
int u64map_get(const u64map *m, uint64_t key, uint64_t *val);

static inline uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}
/* hash_bytes: a fast 64-bit hash of a short byte string. */
uint64_t hash_bytes(const void *p, size_t n);

typedef struct vocab {
    int n;              /* ids 0..n-1 */
    uint8_t *attr;      /* (n) TOK_* */
    uint32_t *off;      /* (n) offset of each token's bytes in bytes[] */
    uint32_t *len;      /* (n) */
    uint8_t *bytes;     /* every token's raw bytes, owned */
    size_t nbytes, bcap;
    uint32_t *map;      /* open addressing over TOK_NORMAL ids by bytes: id+1, 0 empty */
    uint32_t mapcap;
    u64map merges;      /* (a << 32 | b) -> (rank << 32 | result id) */
    int nmerges;
    int byte_id[256];   /* the token of each single byte, -1 when absent */
    int max_len;        /* longest token in bytes */
    /* added tokens: a byte trie, node 0 the root; edges in trie_edges
     * ((node << 8 | byte) -> child), each node's token id (or -1) in trie_id */
    u64map trie_edges;
    int *trie_id;
    int trie_n, trie_cap;
    uint8_t added_first[256]; /* bytes an added token can start with */
    int n_added;
} vocab;

int vocab_init(vocab *v, int n, dc_err *err);
void vocab_free(vocab *v);
/* vocab_set: give id its raw bytes and TOK_* kind (an id set twice keeps the
 * last; bytes are copied). */
int vocab_set(vocab *v, int id, const void *bytes, size_t n, int attr, dc_err *err);
/* vocab_build_map: index the TOK_NORMAL ids by bytes (the first id wins when
 * two share bytes) and fill byte_id. Call after every vocab_set. */
int vocab_build_map(vocab *v, dc_err *err);
/* vocab_find: the TOK_NORMAL id with these bytes, -1 when none. */
int vocab_find(const vocab *v, const void *bytes, size_t n);
/* vocab_add_merge: append merge (a, b) with the next rank; its result is the
 * token whose bytes are a's then b's. A pair seen before takes the new rank
 * (as HF's map built from the list does). Needs vocab_build_map first. */
int vocab_add_merge(vocab *v, int a, int b, dc_err *err);
/* vocab_merge: 1 and rank/result of pair (a, b) when it merges. */
static inline int vocab_merge(const vocab *v, int a, int b, int *rank, int *result) {
    uint64_t val;
    if (!u64map_get(&v->merges, (uint64_t)(uint32_t)a << 32 | (uint32_t)b, &val)) return 0;
    *rank = (int)(val >> 32);
    *result = (int)(uint32_t)val;
    return 1;
}
/* vocab_build_added: the trie over every TOK_ADDED / TOK_SPECIAL id. */
int vocab_build_added(vocab *v, dc_err *err);
/* vocab_next_added: the leftmost-longest added token in s[from, n) (TOK_ADDED
 * ones always, TOK_SPECIAL ones only when with_special): returns its id and
 * sets *b, *e (byte span), or -1 when there is none. */
int vocab_next_added(const vocab *v, const char *s, size_t n, size_t from, int with_special, size_t *b, size_t *e);
static inline const uint8_t *vocab_bytes(const vocab *v, int id, size_t *n) {
    *n = v->len[id];
    return v->bytes + v->off[id];
}
#endif
