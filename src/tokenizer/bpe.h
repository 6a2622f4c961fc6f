/*
 * bpe.h — byte-level BPE on one pre-tokenised word, by merge rank.
 *
 * A word starts as one symbol per byte (the byte's token). Repeatedly the
 * adjacent pair with the lowest merge rank is merged, the leftmost first
 * among equal ranks (Sennrich et al. 2016; HF tokenizers' BPE::merge_word),
 * until no adjacent pair has a merge. Words up to BPE_SHORT bytes use a flat
 * array (O(n^2) moves of a few bytes, fastest for real words); longer ones a
 * linked list and a min-heap of (rank, position), O(n log n), so a megabyte
 * of one character is not quadratic.
 *
 * bpe_state is one thread's scratch and word cache (word bytes -> ids); it
 * is cleared whenever it reaches BPE_CACHE_MAX entries, so memory stays
 * bounded on any input.
 */
#ifndef DC_BPE_H
#define DC_BPE_H
#include <stddef.h>
#include <stdint.h>
#include "tokenizer/vocab.h"

#define BPE_SHORT 48
#define BPE_CACHE_MAX (1 << 16)
#define BPE_CACHE_WORD 128 /* longer words are not cached */

typedef struct ivec {
    int *a;
    size_t n, cap;
} ivec;
int ivec_reserve(ivec *v, size_t extra);
static inline int ivec_push(ivec *v, int x) {
    if (v->n == v->cap && ivec_reserve(v, 1)) return DC_ENOMEM;
    v->a[v->n++] = x;
    return DC_OK;
}

typedef struct bpe_entry {
    uint64_t h;
    uint32_t koff, klen; /* key bytes in kbuf */
    uint32_t ioff, nids; /* ids in ibuf */
} bpe_entry;

typedef struct bpe_state {
    /* scratch for one word */
    int *ids, *rank, *res, *prev, *next;
    struct bpe_item { int rank, left, right; } *heap;
    size_t wcap, hcap;
    /* cache */
    uint32_t *slot;  /* entry index + 1, 0 empty */
    uint32_t scap;
    bpe_entry *ent;
    uint32_t nent, ecap;
    uint8_t *kbuf;
    size_t kn, kcap;
    int *ibuf;
    size_t in, icap;
    uint64_t hits, misses;
} bpe_state;

void bpe_state_init(bpe_state *st);
void bpe_state_free(bpe_state *st);
/* bpe_word: append the ids of word s[0, n) to out. DC_ENOMEM on failure. */
int bpe_word(const vocab *v, bpe_state *st, const uint8_t *s, size_t n, ivec *out);
#endif
