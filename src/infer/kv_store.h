/*
 * kv_store.h — the engine's paged KV store: fixed-size pages of cache rows
 * shared by many sequences, with reference counts so that a fork shares its
 * source's pages and copies one only when either side writes into it
 * (copy on write, as vLLM's block tables do).
 *
 * A page holds page_tokens positions of EVERY cached layer (L main layers,
 * then the MTP modules): layer l's rows start at l * page_tokens * row
 * elements into the page (model.h kv_view), so copying a page copies one
 * span. An element is a float32 or a bfloat16 (esize 4 or 2 bytes). A sequence is a page table: position j lives in pages[j / P].
 * Positions past a sequence's length are garbage and never read.
 */
#ifndef DC_KV_STORE_H
#define DC_KV_STORE_H
#include <stddef.h>
#include "deepc.h"

typedef struct kv_seq {
    int alive;
    int len, mtp_len;  /* positions held by the main and MTP caches; pages cover the larger */
    int npages;
    int *pages;        /* (max_len / P + 1) the page of each block of P positions */
} kv_seq;

typedef struct kv_store {
    void *mem;           /* (n_pages, page_stride) elements of esize bytes, owned */
    size_t page_stride;  /* elements per page: nl * page_tokens * row */
    int esize;           /* bytes per element: 4 float32, 2 bfloat16 */
    int n_pages, page_tokens, row, nl;
    int *ref;            /* (n_pages) sequences holding each page; 0: free */
    int *free_pg, n_free;/* stack of free pages (lowest on top, so memory in use stays compact) */
    kv_seq *seq;         /* (max_seqs) */
    int max_seqs, max_len;
} kv_store;

int kv_store_init(kv_store *k, int n_pages, int page_tokens, int row, int nl, int esize, int max_seqs, int max_len,
                  dc_err *err);
void kv_store_free(kv_store *k);
/* kv_seq_alloc: a free sequence slot, emptied; -1 when all are alive. */
int kv_seq_alloc(kv_store *k);
/* kv_seq_release: give back the sequence's pages and its slot. */
void kv_seq_release(kv_store *k, int id);
/* kv_seq_fork: a new sequence sharing src's pages and lengths; -1 when no slot. */
int kv_seq_fork(kv_store *k, int src);
/* kv_seq_truncate: keep positions < len (both caches); pages past them are released. */
void kv_seq_truncate(kv_store *k, int id, int len);
/* kv_pages_needed: pages that making positions [from, to) of sequence id
 * writable would take from the free list (new pages, copies of shared ones). */
int kv_pages_needed(const kv_store *k, int id, int from, int to);
/* kv_prepare_write: make positions [from, to) writable (call only when
 * kv_pages_needed pages are free). */
void kv_prepare_write(kv_store *k, int id, int from, int to);
/* kv_pages_used: pages held by at least one sequence. */
int kv_pages_used(const kv_store *k);
#endif
