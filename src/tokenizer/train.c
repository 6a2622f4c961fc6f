/*
 * train.c — byte-level BPE training (dc_bpe_train, deepc.h).
 *
 * 1. Count words: every file is pre-tokenised with the same pre-tokenizer
 *    the result will use (deepseek-v3 unless told otherwise) and each
 *    distinct piece is counted once in a hash map. Everything after this
 *    works on distinct words, so memory is proportional to them, not to the
 *    corpus.
 * 2. Ids: the special tokens 0..S-1, then the 256 bytes in GPT-2's
 *    bytes_to_unicode order (as DeepSeek's vocab has them at 3..258).
 * 3. Merges (Sennrich et al. 2016, as HF's BpeTrainer does them): count
 *    every adjacent pair over the words (times the word's count), keep for
 *    each pair the list of words it occurs in, and a max-heap of
 *    (count, pair) with lazy deletion. Repeatedly take the most frequent pair
 *    (ties: the smaller pair of ids), give it a token (a new id, or the id of
 *    an equal string made by an earlier merge), and rewrite only the words on
 *    its list, updating just the pair counts next to each merge site (HF's
 *    Word::merge bookkeeping). Stops at vocab_size tokens or when the best
 *    pair occurs fewer than min_frequency times.
 * 4. The result goes through the ordinary vocab builder and is written with
 *    tok_save_json, so a trained file is exactly as loadable as DeepSeek's.
 */
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"

// ---------------------------------------------------------------- word counts
typedef struct wrec {
    uint64_t h;
    uint32_t off, len;
    int64_t count;
} wrec;

typedef struct wordmap {
    uint32_t *slot; /* index + 1 */
    uint32_t scap;
    wrec *w;
    size_t n, cap;
    uint8_t *bytes;
    size_t nb, bcap;
    int oom;
} wordmap;

static int wm_rehash(wordmap *m) {
    uint32_t cap = m->scap ? m->scap * 2 : 1 << 14;
    uint32_t *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < m->n; i++) {
        uint32_t j = (uint32_t)m->w[i].h & (cap - 1);
        while (s[j]) j = (j + 1) & (cap - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(m->slot);
    m->slot = s;
    m->scap = cap;
    return 0;
}

static int wm_add(void *ctx, const char *str, size_t n) {
    wordmap *m = ctx;
    const uint8_t *s = (const uint8_t *)str;
    uint64_t h = hash_bytes(s, n);
    if (m->scap) {
        for (uint32_t j = (uint32_t)h & (m->scap - 1), e; (e = m->slot[j]); j = (j + 1) & (m->scap - 1)) {
            wrec *r = &m->w[e - 1];
            if (r->h == h && r->len == n && memcmp(m->bytes + r->off, s, n) == 0) {
                r->count++;
                return 0;
            }
        }
    }
    if (m->n >= UINT32_MAX / 2 || m->nb + n > UINT32_MAX) return m->oom = 1, DC_ENOMEM;
    if ((m->n + 1) * 2 > m->scap && wm_rehash(m)) return m->oom = 1, DC_ENOMEM;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1 << 13;
        wrec *w = realloc(m->w, cap * sizeof *w);
        if (!w) return m->oom = 1, DC_ENOMEM;
        m->w = w, m->cap = cap;
    }
    if (m->nb + n > m->bcap) {
        size_t cap = m->bcap ? m->bcap * 2 : 1 << 16;
        while (cap < m->nb + n) cap *= 2;
        uint8_t *b = realloc(m->bytes, cap);
        if (!b) return m->oom = 1, DC_ENOMEM;
        m->bytes = b, m->bcap = cap;
    }
    memcpy(m->bytes + m->nb, s, n);
    m->w[m->n] = (wrec){h, (uint32_t)m->nb, (uint32_t)n, 1};
    m->nb += n;
    uint32_t j = (uint32_t)h & (m->scap - 1);
    while (m->slot[j]) j = (j + 1) & (m->scap - 1);
    m->slot[j] = (uint32_t)++m->n;
    return 0;
}

static void wm_free(wordmap *m) {
    free(m->slot);
    free(m->w);
    free(m->bytes);
    memset(m, 0, sizeof *m);
}

/* count_file: pre-tokenise one file into the word map (invalid UTF-8 bytes
 * become one-byte words, as in the encoder). */
static int count_file(const pretok *p, pretok_scratch *sc, wordmap *m, const char *path, dc_err *err) {
    char *text;
    size_t n;
    int rc = file_read_all(path, &text, &n, err);
    if (rc) return rc;
    size_t i = 0;
    while (i < n && !rc) {
        size_t k = utf8_valid_len((const uint8_t *)text + i, n - i);
        if (k) rc = pretok_split(p, sc, text + i, k, wm_add, m, err);
        i += k;
        if (i < n && !rc) rc = wm_add(m, text + i++, 1);
    }
    free(text);
    if (m->oom) return err_set(err, DC_ENOMEM, "%s: out of memory counting words", path);
    return rc;
}

// ---------------------------------------------------------------- trainer state
typedef struct ilist {
    int *a;
    int n, cap;
} ilist;

typedef struct hitem {
    int64_t count;
    int a, b, p;
} hitem;

typedef struct trainer {
    /* words */
    int nw;
    int32_t *sym;
    uint32_t *woff, *wlen;
    int64_t *wcount;
    int *wstamp;
    /* pairs */
    u64map pidx;
    int64_t *pcount;
    int32_t *pa, *pb;
    ilist *pwords;
    int *pstamp;
    int np, pcap;
    int *touched;
    int ntouched, tcap;
    hitem *heap;
    size_t hn, hcap;
    /* tokens: bytes of every id, and bytes -> id (by hash, checked) */
    uint8_t *tb;
    size_t tbn, tbcap;
    uint32_t *toff, *tlen;
    int ntok;
    u64map tmap;
    int32_t *merge_a, *merge_b; /* (nmerges) */
    int nmerges;
    int stamp;
    int oom;
} trainer;

static int grow_arr(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int hitem_before(const hitem *x, const hitem *y) {
    if (x->count != y->count) return x->count > y->count;
    return x->a != y->a ? x->a < y->a : x->b < y->b;
}

static void heap_push(trainer *t, hitem x) {
    if (t->hn == t->hcap) {
        size_t cap = t->hcap ? t->hcap * 2 : 4096;
        hitem *h = realloc(t->heap, cap * sizeof *h);
        if (!h) {
            t->oom = 1;
            return;
        }
        t->heap = h, t->hcap = cap;
    }
    size_t i = t->hn++;
    while (i > 0 && hitem_before(&x, &t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = x;
}

static hitem heap_pop(trainer *t) {
    hitem top = t->heap[0], x = t->heap[--t->hn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->hn) break;
        if (c + 1 < t->hn && hitem_before(&t->heap[c + 1], &t->heap[c])) c++;
        if (!hitem_before(&t->heap[c], &x)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->hn) t->heap[i] = x;
    return top;
}

/* pairs_reserve: room for need pairs in every per-pair array. */
static int pairs_reserve(trainer *t, int need) {
    if (need <= t->pcap) return 0;
    int cap = t->pcap ? t->pcap * 2 : 1 << 14;
    while (cap < need) cap *= 2;
    void *a = realloc(t->pcount, sizeof *t->pcount * (size_t)cap);
    if (a) t->pcount = a;
    void *b = realloc(t->pa, sizeof *t->pa * (size_t)cap);
    if (b) t->pa = b;
    void *c = realloc(t->pb, sizeof *t->pb * (size_t)cap);
    if (c) t->pb = c;
    void *d = realloc(t->pwords, sizeof *t->pwords * (size_t)cap);
    if (d) t->pwords = d;
    void *e = realloc(t->pstamp, sizeof *t->pstamp * (size_t)cap);
    if (e) t->pstamp = e;
    if (!a || !b || !c || !d || !e) return -1;
    t->pcap = cap;
    return 0;
}

/* pair_add: count[x, y] += d; with d > 0 also note word w on its list and
 * mark it touched (to be pushed on the heap after this merge). */
static void pair_add(trainer *t, int x, int y, int64_t d, int w) {
    uint64_t key = (uint64_t)(uint32_t)x << 32 | (uint32_t)y, v;
    int p;
    if (u64map_get(&t->pidx, key, &v)) {
        p = (int)v;
    } else {
        p = t->np;
        if (pairs_reserve(t, p + 1) || u64map_put(&t->pidx, key, (uint64_t)p, 0) < 0) {
            t->oom = 1;
            return;
        }
        t->pcount[p] = 0, t->pa[p] = x, t->pb[p] = y, t->pwords[p] = (ilist){0}, t->pstamp[p] = -1;
        t->np++;
    }
    t->pcount[p] += d;
    if (d <= 0) return;
    ilist *l = &t->pwords[p];
    if (!l->n || l->a[l->n - 1] != w) {
        if (l->n == l->cap) { /* most pairs occur in few words: start small */
            int cap = l->cap ? l->cap * 2 : 2;
            int *a = realloc(l->a, sizeof(int) * (size_t)cap);
            if (!a) {
                t->oom = 1;
                return;
            }
            l->a = a, l->cap = cap;
        }
        l->a[l->n++] = w;
    }
    if (t->pstamp[p] != t->stamp) {
        t->pstamp[p] = t->stamp;
        if (grow_arr((void **)&t->touched, &t->tcap, t->ntouched + 1, sizeof(int))) {
            t->oom = 1;
            return;
        }
        t->touched[t->ntouched++] = p;
    }
}

// ---------------------------------------------------------------- tokens
static int tok_new(trainer *t, const uint8_t *s, size_t n) {
    int tc = t->ntok;
    if (t->tbn + n > t->tbcap) {
        size_t c = t->tbcap ? t->tbcap * 2 : 1 << 16;
        while (c < t->tbn + n) c *= 2;
        uint8_t *b = realloc(t->tb, c);
        if (!b) return -1;
        t->tb = b, t->tbcap = c;
    }
    memcpy(t->tb + t->tbn, s, n);
    t->toff[tc] = (uint32_t)t->tbn;
    t->tlen[tc] = (uint32_t)n;
    t->tbn += n;
    t->ntok++;
    return tc;
}

/* tok_lookup: the id of string s (probing hash, hash+1, ...), or -1 and
 * *key the free key to insert it under. */
static int tok_lookup(const trainer *t, const uint8_t *s, size_t n, uint64_t *key) {
    uint64_t h = hash_bytes(s, n), v;
    if (h == UINT64_MAX) h = 0;
    while (u64map_get(&t->tmap, h, &v)) {
        int id = (int)v;
        if (t->tlen[id] == n && memcmp(t->tb + t->toff[id], s, n) == 0) return id;
        h = h + 1 == UINT64_MAX ? 0 : h + 1;
    }
    *key = h;
    return -1;
}

static int tok_intern(trainer *t, const uint8_t *s, size_t n) {
    uint64_t key = 0;
    int id = tok_lookup(t, s, n, &key);
    if (id >= 0) return id;
    id = tok_new(t, s, n);
    if (id < 0 || u64map_put(&t->tmap, key, (uint64_t)id, 0) < 0) return -1;
    return id;
}

// ---------------------------------------------------------------- setup
static int setup(trainer *t, const wordmap *m, const dc_bpe_train_opts *o, dc_err *err) {
    int S = o->n_special, V = o->vocab_size;
    t->toff = malloc(sizeof *t->toff * (size_t)V);
    t->tlen = malloc(sizeof *t->tlen * (size_t)V);
    t->merge_a = malloc(sizeof *t->merge_a * (size_t)V);
    t->merge_b = malloc(sizeof *t->merge_b * (size_t)V);
    if (!t->toff || !t->tlen || !t->merge_a || !t->merge_b || u64map_init(&t->tmap, (uint64_t)V) ||
        u64map_init(&t->pidx, 1 << 16))
        return err_set(err, DC_ENOMEM, "bpe-train: out of memory");
    for (int i = 0; i < S; i++) { /* specials are not BPE strings: not in tmap */
        if (tok_new(t, (const uint8_t *)o->special[i], strlen(o->special[i])) < 0)
            return err_set(err, DC_ENOMEM, "bpe-train: out of memory");
    }
    int byte_tok[256];
    for (int pass = 0; pass < 2; pass++) /* printable bytes first: bytes_to_unicode order */
        for (int b = 0; b < 256; b++) {
            int printable = bytelevel_cp((uint8_t)b) == (uint32_t)b;
            if (printable != (pass == 0)) continue;
            uint8_t c = (uint8_t)b;
            if ((byte_tok[b] = tok_intern(t, &c, 1)) < 0) return err_set(err, DC_ENOMEM, "bpe-train: out of memory");
        }
    size_t total = 0;
    for (size_t i = 0; i < m->n; i++) total += m->w[i].len;
    t->nw = (int)m->n;
    t->sym = malloc(sizeof *t->sym * (total ? total : 1));
    t->woff = malloc(sizeof *t->woff * (m->n + 1));
    t->wlen = malloc(sizeof *t->wlen * (m->n + 1));
    t->wcount = malloc(sizeof *t->wcount * (m->n + 1));
    t->wstamp = malloc(sizeof *t->wstamp * (m->n + 1));
    if (!t->sym || !t->woff || !t->wlen || !t->wcount || !t->wstamp)
        return err_set(err, DC_ENOMEM, "bpe-train: out of memory for %zu words", m->n);
    size_t o_ = 0;
    t->stamp = -1;
    for (int w = 0; w < t->nw; w++) {
        const wrec *r = &m->w[w];
        t->woff[w] = (uint32_t)o_, t->wlen[w] = r->len, t->wcount[w] = r->count, t->wstamp[w] = -1;
        for (uint32_t i = 0; i < r->len; i++) t->sym[o_ + i] = byte_tok[m->bytes[r->off + i]];
        for (uint32_t i = 0; i + 1 < r->len; i++) pair_add(t, t->sym[o_ + i], t->sym[o_ + i + 1], r->count, w);
        o_ += r->len;
    }
    if (t->oom) return err_set(err, DC_ENOMEM, "bpe-train: out of memory counting pairs");
    for (int p = 0; p < t->np; p++)
        if (t->pcount[p] > 0) heap_push(t, (hitem){t->pcount[p], t->pa[p], t->pb[p], p});
    t->ntouched = 0;
    return t->oom ? err_set(err, DC_ENOMEM, "bpe-train: out of memory") : DC_OK;
}

// ---------------------------------------------------------------- merging
static void merge_word(trainer *t, int w, int a, int b, int c) {
    int32_t *s = t->sym + t->woff[w];
    uint32_t n = t->wlen[w], r = 0, j = 0;
    int64_t wc = t->wcount[w];
    while (r < n) {
        if (r + 1 < n && s[r] == a && s[r + 1] == b) {
            if (j > 0) pair_add(t, s[j - 1], a, -wc, w), pair_add(t, s[j - 1], c, wc, w);
            if (r + 2 < n) pair_add(t, b, s[r + 2], -wc, w), pair_add(t, c, s[r + 2], wc, w);
            pair_add(t, a, b, -wc, w);
            s[j++] = c;
            r += 2;
        } else {
            s[j++] = s[r++];
        }
    }
    t->wlen[w] = j;
}

/* merge_one: make the token of pair p and rewrite the words it occurs in. */
static int merge_one(trainer *t, int p) {
    int a = t->pa[p], b = t->pb[p];
    size_t la = t->tlen[a], lb = t->tlen[b];
    uint8_t *buf = malloc(la + lb);
    if (!buf) return -1;
    memcpy(buf, t->tb + t->toff[a], la);
    memcpy(buf + la, t->tb + t->toff[b], lb);
    int c = tok_intern(t, buf, la + lb);
    free(buf);
    if (c < 0) return -1;
    t->merge_a[t->nmerges] = a, t->merge_b[t->nmerges] = b, t->nmerges++;
    t->stamp++;
    ilist words = t->pwords[p];
    t->pwords[p] = (ilist){0}; /* (a, b) contains no c: its list gains nothing while we walk it */
    for (int k = 0; k < words.n; k++) {
        int w = words.a[k];
        if (t->wstamp[w] == t->stamp) continue;
        t->wstamp[w] = t->stamp;
        merge_word(t, w, a, b, c);
    }
    free(words.a);
    t->pcount[p] = 0;
    for (int k = 0; k < t->ntouched; k++) {
        int q = t->touched[k];
        if (t->pcount[q] > 0) heap_push(t, (hitem){t->pcount[q], t->pa[q], t->pb[q], q});
    }
    t->ntouched = 0;
    return t->oom ? -1 : 0;
}

static int run_merges(trainer *t, const dc_bpe_train_opts *o, dc_err *err) {
    long total = o->vocab_size - t->ntok, every = total / 200 + 1;
    int minf = o->min_frequency > 1 ? o->min_frequency : 1;
    while (t->ntok < o->vocab_size && t->hn) {
        hitem top = heap_pop(t);
        int64_t cur = t->pcount[top.p];
        if (cur != top.count) { /* stale: counts only ever fall for old pairs */
            if (cur > 0) heap_push(t, (hitem){cur, top.a, top.b, top.p});
            continue;
        }
        if (cur < minf) break;
        if (merge_one(t, top.p)) return err_set(err, DC_ENOMEM, "bpe-train: out of memory at merge %d", t->nmerges);
        if (o->progress && t->nmerges % every == 0)
            o->progress(o->progress_ctx, "merge", (long)t->nmerges, total);
    }
    if (o->progress) o->progress(o->progress_ctx, "merge", (long)t->nmerges, (long)t->nmerges);
    return DC_OK;
}

static void trainer_free(trainer *t) {
    free(t->sym), free(t->woff), free(t->wlen), free(t->wcount), free(t->wstamp);
    u64map_free(&t->pidx);
    if (t->pwords)
        for (int p = 0; p < t->np; p++) free(t->pwords[p].a);
    free(t->pcount), free(t->pa), free(t->pb), free(t->pwords), free(t->pstamp), free(t->touched), free(t->heap);
    free(t->tb), free(t->toff), free(t->tlen);
    u64map_free(&t->tmap);
    free(t->merge_a), free(t->merge_b);
}

// ---------------------------------------------------------------- result
static int build_result(const trainer *t, const dc_bpe_train_opts *o, dc_tokenizer *tk, dc_err *err) {
    int rc = vocab_init(&tk->v, t->ntok, err);
    for (int id = 0; id < t->ntok && !rc; id++)
        rc = vocab_set(&tk->v, id, t->tb + t->toff[id], t->tlen[id], id < o->n_special ? TOK_SPECIAL : TOK_NORMAL, err);
    if (!rc) rc = vocab_build_map(&tk->v, err);
    if (!rc) rc = vocab_build_added(&tk->v, err);
    for (int k = 0; k < t->nmerges && !rc; k++) rc = vocab_add_merge(&tk->v, t->merge_a[k], t->merge_b[k], err);
    tk->bos = o->n_special > 0 ? 0 : -1;
    tk->eos = o->n_special > 1 ? 1 : -1;
    return rc;
}

static int check_opts(const dc_bpe_train_opts *o, int nfiles, dc_err *err) {
    if (nfiles <= 0) return err_set(err, DC_EARG, "bpe-train: no training files");
    if (o->n_special < 0 || (o->n_special && !o->special)) return err_set(err, DC_EARG, "bpe-train: bad special tokens");
    if (o->vocab_size < o->n_special + 256 || o->vocab_size > (1 << 24))
        return err_set(err, DC_EARG, "bpe-train: vocab size %d must be in [%d, %d] (specials + 256 bytes + merges)",
                       o->vocab_size, o->n_special + 256, 1 << 24);
    for (int i = 0; i < o->n_special; i++)
        if (!o->special[i] || !o->special[i][0]) return err_set(err, DC_EARG, "bpe-train: special token %d is empty", i);
    return DC_OK;
}

int dc_bpe_train(const char *const *files, int nfiles, const dc_bpe_train_opts *o, const char *out_path,
                 dc_err *err) {
    int rc = check_opts(o, nfiles, err);
    if (rc) return rc;
    dc_tokenizer *tk = calloc(1, sizeof *tk);
    wordmap m = {0};
    trainer t = {0};
    pretok_scratch sc = {0};
    if (!tk) return err_set(err, DC_ENOMEM, "bpe-train: out of memory");
    if ((rc = pretok_init(&tk->pre, err)) || (rc = pretok_named(&tk->pre, o->pre ? o->pre : "deepseek-v3", err)) ||
        (rc = pretok_scratch_init(&sc, err)))
        goto done;
    for (int i = 0; i < nfiles && !rc; i++) {
        rc = count_file(&tk->pre, &sc, &m, files[i], err);
        if (o->progress) o->progress(o->progress_ctx, "count", i + 1, nfiles);
    }
    if (rc || (rc = setup(&t, &m, o, err))) goto done;
    wm_free(&m); /* the words live on as symbols in t */
    if ((rc = run_merges(&t, o, err)) || (rc = build_result(&t, o, tk, err))) goto done;
    rc = tok_save_json(tk, out_path, err);
done:
    pretok_scratch_free(&sc);
    wm_free(&m);
    trainer_free(&t);
    dc_tokenizer_free(tk);
    return rc;
}
