/* kv_store.c — see kv_store.h. */
#include "infer/kv_store.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"

int kv_store_init(kv_store *k, int n_pages, int page_tokens, int row, int nl, int esize, int max_seqs, int max_len,
                  dc_err *err) {
    memset(k, 0, sizeof *k);
    k->n_pages = n_pages, k->page_tokens = page_tokens, k->row = row, k->nl = nl, k->esize = esize;
    k->max_seqs = max_seqs, k->max_len = max_len;
    k->page_stride = (size_t)nl * page_tokens * row;
    int per_seq = max_len / page_tokens + 1;
    /* the store is malloc'd, not touched: the OS commits pages as they are first written */
    k->mem = malloc((size_t)esize * k->page_stride * n_pages);
    k->ref = calloc(n_pages, sizeof *k->ref);
    k->free_pg = malloc(sizeof *k->free_pg * n_pages);
    k->seq = calloc(max_seqs, sizeof *k->seq);
    int ok = k->mem && k->ref && k->free_pg && k->seq;
    for (int i = 0; ok && i < max_seqs; i++) ok = (k->seq[i].pages = malloc(sizeof(int) * per_seq)) != NULL;
    if (!ok) {
        double mb = (double)esize * (double)k->page_stride * n_pages / 1e6;
        kv_store_free(k);
        return err_set(err, DC_ENOMEM, "engine: cannot allocate a KV store of %d pages (%.1f MB)", n_pages, mb);
    }
    for (int i = 0; i < n_pages; i++) k->free_pg[i] = n_pages - 1 - i;
    k->n_free = n_pages;
    return DC_OK;
}

void kv_store_free(kv_store *k) {
    if (k->seq)
        for (int i = 0; i < k->max_seqs; i++) free(k->seq[i].pages);
    free(k->seq);
    free(k->mem);
    free(k->ref);
    free(k->free_pg);
    memset(k, 0, sizeof *k);
}

static int page_take(kv_store *k) {
    int p = k->free_pg[--k->n_free];
    k->ref[p] = 1;
    return p;
}

static void page_drop(kv_store *k, int p) {
    if (--k->ref[p] == 0) k->free_pg[k->n_free++] = p;
}

int kv_seq_alloc(kv_store *k) {
    for (int i = 0; i < k->max_seqs; i++)
        if (!k->seq[i].alive) {
            kv_seq *s = &k->seq[i];
            s->alive = 1, s->len = s->mtp_len = s->npages = 0;
            return i;
        }
    return -1;
}

void kv_seq_release(kv_store *k, int id) {
    kv_seq *s = &k->seq[id];
    for (int i = 0; i < s->npages; i++) page_drop(k, s->pages[i]);
    s->alive = 0, s->len = s->mtp_len = s->npages = 0;
}

int kv_seq_fork(kv_store *k, int src) {
    int id = kv_seq_alloc(k);
    if (id < 0) return -1;
    kv_seq *a = &k->seq[src], *b = &k->seq[id];
    b->len = a->len, b->mtp_len = a->mtp_len, b->npages = a->npages;
    for (int i = 0; i < a->npages; i++) k->ref[b->pages[i] = a->pages[i]]++;
    return id;
}

void kv_seq_truncate(kv_store *k, int id, int len) {
    kv_seq *s = &k->seq[id];
    int keep = (len + k->page_tokens - 1) / k->page_tokens;
    while (s->npages > keep) page_drop(k, s->pages[--s->npages]);
    s->len = len;
    if (s->mtp_len > len) s->mtp_len = len;
}

int kv_pages_needed(const kv_store *k, int id, int from, int to) {
    if (to <= from) return 0;
    const kv_seq *s = &k->seq[id];
    int p0 = from / k->page_tokens, p1 = (to - 1) / k->page_tokens, n = 0;
    for (int p = p0; p <= p1; p++) n += p >= s->npages || k->ref[s->pages[p]] > 1;
    return n;
}

void kv_prepare_write(kv_store *k, int id, int from, int to) {
    if (to <= from) return;
    kv_seq *s = &k->seq[id];
    int p0 = from / k->page_tokens, p1 = (to - 1) / k->page_tokens;
    for (int p = p0; p <= p1; p++) {
        if (p >= s->npages) {
            s->pages[s->npages++] = page_take(k);
        } else if (k->ref[s->pages[p]] > 1) { /* shared with a fork: copy before writing */
            int np = page_take(k);
            size_t pb = (size_t)k->esize * k->page_stride;
            memcpy((char *)k->mem + (size_t)np * pb, (char *)k->mem + (size_t)s->pages[p] * pb, pb);
            page_drop(k, s->pages[p]);
            s->pages[p] = np;
        }
    }
}

int kv_pages_used(const kv_store *k) { return k->n_pages - k->n_free; }
