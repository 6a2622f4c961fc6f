/*
 * engine.c — the batch-first inference core (deepc.h, "engine"): sequences in
 * a paged KV store (kv_store.c), and one forward pass over a batch of tokens
 * from any of them.
 *
 * A call regroups the caller's tokens by sequence (stable: each sequence's
 * tokens keep their order and take its next positions), makes the positions
 * to be written writable (new pages, copies of pages shared with a fork),
 * runs the model once over all of them (model.c: every weight matrix is read
 * once for the whole batch; the MoE groups every token of every sequence by
 * expert) and computes the head only for the rows whose logits were asked.
 *
 * What a sequence gets does not depend on what else is in the batch, with one
 * exception in rounding: a float32 / bf16 matrix multiplies a batch of more
 * than a few rows with OpenBLAS's sgemm and fewer with deepc's matvec
 * kernels, which sum in another order (matmul.h). Quantised weights use the
 * same integer block dots for any batch, so their results are identical bit
 * for bit. Attention is per token (or per run of one sequence) and never
 * mixes sequences.
 *
 * Threads: each call runs on o.n_threads OpenMP threads of the calling thread
 * (restored on return); nothing process-wide is changed.
 */
#include "infer/engine.h"
#include "model/moe_ep.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "kernels/matmul.h"
#include "model/embed_head.h"

void dc_engine_defaults(dc_engine_opts *o) {
    *o = (dc_engine_opts){.max_seqs = 16, .n_pages = 0, .page_tokens = 16, .max_len = 4096, .max_batch = 512,
                          .attn = DC_ATTN_ABSORB, .kv_type = DC_KV_BF16, .n_threads = 0};
}

static int check_opts(const dc_config *c, dc_engine_opts *o, dc_err *err) {
    if (o->max_seqs < 1 || o->max_seqs > 1 << 16) return err_set(err, DC_EARG, "engine: max_seqs %d (1..65536)", o->max_seqs);
    if (o->page_tokens < 1 || o->page_tokens > 4096)
        return err_set(err, DC_EARG, "engine: page_tokens %d (1..4096)", o->page_tokens);
    if (o->max_len < 1) return err_set(err, DC_EARG, "engine: max_len %d must be >= 1", o->max_len);
    if (o->max_batch < 1) return err_set(err, DC_EARG, "engine: max_batch %d must be >= 1", o->max_batch);
    if (o->attn != DC_ATTN_NAIVE && o->attn != DC_ATTN_ABSORB)
        return err_set(err, DC_EARG, "engine: unknown attention mode %d", o->attn);
    if (o->kv_type != DC_KV_BF16 && o->kv_type != DC_KV_F32)
        return err_set(err, DC_EARG, "engine: unknown KV cache type %d (DC_KV_BF16, DC_KV_F32)", o->kv_type);
    if (o->attn == DC_ATTN_NAIVE) o->kv_type = DC_KV_F32; /* the naive cache is float32 (model.h kv_view) */
    (void)c;
    /* + one page: a fork writing into a shared, partly filled page copies it */
    int per_seq = (o->max_len + o->page_tokens - 1) / o->page_tokens + 1;
    if (o->n_pages <= 0) {
        long long n = (long long)per_seq * o->max_seqs;
        if (n > 1 << 30) return err_set(err, DC_EARG, "engine: %d sequences of %d positions are too many pages", o->max_seqs, o->max_len);
        o->n_pages = (int)n;
    }
    return DC_OK;
}

int dc_engine_new(dc_model *m, const dc_engine_opts *opts, dc_engine **out, dc_err *err) {
    *out = NULL;
    dc_engine_opts o;
    if (opts) o = *opts;
    else dc_engine_defaults(&o);
    const dc_config *c = dc_model_config(m);
    int rc = check_opts(c, &o, err);
    if (rc) return rc;
    dc_engine *e = calloc(1, sizeof *e);
    if (!e) return err_set(err, DC_ENOMEM, "engine: out of memory");
    e->m = m, e->o = o;
    int nl = c->num_hidden_layers + c->num_nextn_predict_layers, row = kv_row_floats(c, o.attn);
    int bf16 = o.kv_type == DC_KV_BF16;
    rc = kv_store_init(&e->kv, o.n_pages, o.page_tokens, row, nl, bf16 ? 2 : 4, o.max_seqs, o.max_len, err);
    if (rc) {
        free(e);
        return rc;
    }
    e->view = (kv_view){e->kv.mem, e->kv.page_stride, 0, o.page_tokens, row, o.attn, bf16};
    size_t B = (size_t)o.max_batch;
#define A(p, n) ((p) = malloc(sizeof *(p) * (n)), ok &= (p) != NULL)
    int ok = 1;
    A(e->perm, B), A(e->inv, B), A(e->hinv, B), A(e->ids, B), A(e->pos, B), A(e->run0, B + 1), A(e->tp, B);
    A(e->lrow, B), A(e->cnt, (size_t)o.max_seqs), A(e->first, (size_t)o.max_seqs);
#undef A
    if (!ok) {
        dc_engine_free(e);
        return err_set(err, DC_ENOMEM, "engine: out of memory for a batch of %d", o.max_batch);
    }
    for (int i = 0; i < o.max_seqs; i++) e->cnt[i] = 0;
    /* per step: everything a token reads (dc_model_decode_bytes) but its K routed experts, plus each expert run */
    int moe_layers = 0, moe0 = -1;
    for (int l = 0; l < c->num_hidden_layers; l++)
        if (m->w.layers[l].is_moe) moe_layers++, moe0 = moe0 < 0 ? l : moe0;
    if (moe0 >= 0) {
        const layer_w *lw = &m->w.layers[moe0];
        e->expert_bytes = mat_bytes(&lw->exp_gate[0]) + mat_bytes(&lw->exp_up[0]) + mat_bytes(&lw->exp_down[0]);
    }
    e->base_bytes = dc_model_decode_bytes(m) - (size_t)moe_layers * c->num_experts_per_tok * e->expert_bytes;
    *out = e;
    return DC_OK;
}

void dc_engine_free(dc_engine *e) {
    if (!e) return;
    kv_store_free(&e->kv);
    scratch_free(&e->s);
    free(e->perm), free(e->inv), free(e->hinv), free(e->ids), free(e->pos), free(e->run0), free(e->tp);
    free(e->lrow), free(e->cnt), free(e->first), free(e->hbuf), free(e->logits);
    free(e);
}

dc_model *dc_engine_model(const dc_engine *e) { return e->m; }
const dc_engine_opts *dc_engine_get_opts(const dc_engine *e) { return &e->o; }

/* ---------------------------------------------------------------- sequences */

static int seq_ok(const dc_engine *e, int seq) { return seq >= 0 && seq < e->o.max_seqs && e->kv.seq[seq].alive; }

int dc_seq_new(dc_engine *e, dc_err *err) {
    int id = kv_seq_alloc(&e->kv);
    if (id < 0) return err_set(err, DC_EFULL, "engine: all %d sequence slots are in use", e->o.max_seqs);
    return id;
}

int dc_seq_fork(dc_engine *e, int src, dc_err *err) {
    if (!seq_ok(e, src)) return err_set(err, DC_EARG, "seq_fork: no sequence %d", src);
    int id = kv_seq_fork(&e->kv, src);
    if (id < 0) return err_set(err, DC_EFULL, "seq_fork: all %d sequence slots are in use", e->o.max_seqs);
    return id;
}

void dc_seq_free(dc_engine *e, int seq) {
    if (seq_ok(e, seq)) kv_seq_release(&e->kv, seq);
}

int dc_seq_truncate(dc_engine *e, int seq, int len, dc_err *err) {
    if (!seq_ok(e, seq)) return err_set(err, DC_EARG, "seq_truncate: no sequence %d", seq);
    if (len < 0 || len > e->kv.seq[seq].len)
        return err_set(err, DC_EARG, "seq_truncate: position %d is outside the %d cached of sequence %d", len,
                       e->kv.seq[seq].len, seq);
    kv_seq_truncate(&e->kv, seq, len);
    return DC_OK;
}

int dc_seq_truncate_mtp(dc_engine *e, int seq, int len, dc_err *err) {
    if (!seq_ok(e, seq)) return err_set(err, DC_EARG, "seq_truncate_mtp: no sequence %d", seq);
    if (len < 0 || len > e->kv.seq[seq].mtp_len)
        return err_set(err, DC_EARG, "seq_truncate_mtp: position %d is outside the %d MTP positions of sequence %d",
                       len, e->kv.seq[seq].mtp_len, seq);
    e->kv.seq[seq].mtp_len = len;
    return DC_OK;
}

int dc_seq_len(const dc_engine *e, int seq) { return seq_ok(e, seq) ? e->kv.seq[seq].len : -1; }
int dc_seq_mtp_len(const dc_engine *e, int seq) { return seq_ok(e, seq) ? e->kv.seq[seq].mtp_len : -1; }

void dc_engine_kv_stats(const dc_engine *e, dc_kv_stats *st) {
    memset(st, 0, sizeof *st);
    st->n_pages = e->kv.n_pages, st->page_tokens = e->kv.page_tokens;
    st->pages_used = kv_pages_used(&e->kv);
    st->bytes_per_page = (size_t)e->kv.esize * e->kv.page_stride;
    st->bytes_per_token = st->bytes_per_page / e->kv.page_tokens;
    for (int i = 0; i < e->o.max_seqs; i++)
        if (e->kv.seq[i].alive) st->n_seqs++, st->positions += e->kv.seq[i].len;
}

int engine_seq_set(dc_engine *e, int seq, int len, int mtp_len, dc_err *err) {
    if (!seq_ok(e, seq) || len < 0 || mtp_len < 0 || mtp_len > len || len > e->o.max_len)
        return err_set(err, DC_EARG, "engine: %d positions (%d MTP) do not fit sequence %d of at most %d", len,
                       mtp_len, seq, e->o.max_len);
    kv_seq_truncate(&e->kv, seq, 0);
    if (kv_pages_needed(&e->kv, seq, 0, len) > e->kv.n_free)
        return err_set(err, DC_EFULL, "engine: no room in the KV store for %d positions", len);
    kv_prepare_write(&e->kv, seq, 0, len);
    e->kv.seq[seq].len = len, e->kv.seq[seq].mtp_len = mtp_len;
    return DC_OK;
}

void *engine_row(const dc_engine *e, int seq, int l, int j) {
    kv_view v = e->view;
    v.layer_off = (size_t)l * v.page_tokens * v.row;
    return kv_at(&v, e->kv.seq[seq].pages, j);
}

/* ---------------------------------------------------------------- batches */

/* check b and regroup it by sequence into perm/inv/ids/pos/run0/tp, taking
 * positions from each sequence's main (mtp 0) or MTP (mtp 1) length; make
 * them writable. Nothing changes on error. Returns the run count or < 0. */
static int batch_plan(dc_engine *e, const dc_batch *b, int mtp, tok_batch *tb, dc_err *err) {
    const dc_config *c = dc_model_config(e->m);
    if (!b || b->n < 1) return err_set(err, DC_EARG, "decode: empty batch");
    if (b->n > e->o.max_batch)
        return err_set(err, DC_EARG, "decode: %d tokens exceed the engine's batch of %d", b->n, e->o.max_batch);
    int nrun = 0, rc = DC_OK;
    for (int i = 0; i < b->n; i++) {
        int s = b->seq[i], t = b->token[i];
        if (!seq_ok(e, s)) {
            rc = err_set(err, DC_EARG, "decode: batch token %d names sequence %d, which does not exist", i, s);
            break;
        }
        if (t < 0 || t >= c->vocab_size) {
            rc = err_set(err, DC_EARG, "decode: token id %d at batch index %d is outside the vocabulary (0..%d)", t,
                         i, c->vocab_size - 1);
            break;
        }
        if (e->cnt[s]++ == 0) e->first[nrun++] = s;
    }
    int need = 0;
    for (int r = 0; r < nrun && !rc; r++) {
        int s = e->first[r], from = mtp ? e->kv.seq[s].mtp_len : e->kv.seq[s].len, to = from + e->cnt[s];
        if (to > e->o.max_len)
            rc = err_set(err, DC_EARG, "decode: sequence %d: %d cached + %d new positions exceed the context of %d",
                         s, from, e->cnt[s], e->o.max_len);
        else need += kv_pages_needed(&e->kv, s, from, to);
    }
    if (!rc && need > e->kv.n_free)
        rc = err_set(err, DC_EFULL, "decode: the KV store is full: the batch needs %d more pages, %d of %d are free",
                     need, e->kv.n_free, e->kv.n_pages);
    if (rc) {
        for (int i = 0; i < b->n; i++)
            if (b->seq[i] >= 0 && b->seq[i] < e->o.max_seqs) e->cnt[b->seq[i]] = 0;
        return rc;
    }
    /* runs in order of first appearance; within a run the caller's order */
    int k = 0;
    for (int r = 0; r < nrun; r++) {
        int s = e->first[r], from = mtp ? e->kv.seq[s].mtp_len : e->kv.seq[s].len;
        kv_prepare_write(&e->kv, s, from, from + e->cnt[s]);
        e->run0[r] = k;
        for (int i = 0; i < b->n; i++)
            if (b->seq[i] == s) {
                e->perm[k] = i, e->inv[i] = k, e->ids[k] = b->token[i];
                e->pos[k] = from++, e->tp[k] = e->kv.seq[s].pages;
                k++;
            }
        e->cnt[s] = 0;
    }
    e->run0[nrun] = k;
    e->nrun = nrun;
    *tb = (tok_batch){b->n, e->pos, e->tp, nrun, e->run0};
    return nrun;
}

/* the head over the asked rows of normed states h (forward order) */
static int batch_logits(dc_engine *e, const dc_batch *b, const float *h, const mat *head, dc_err *err) {
    const dc_config *c = dc_model_config(e->m);
    const int C = c->hidden_size, V = c->vocab_size;
    int rows = 0;
    if (b->logits)
        for (int i = 0; i < b->n; i++) e->lrow[i] = b->logits[i] ? rows++ : -1;
    else { /* each sequence's last token: the end of its run */
        for (int i = 0; i < b->n; i++) e->lrow[i] = -1;
        for (int r = 0; r < e->nrun; r++) e->lrow[e->perm[e->run0[r + 1] - 1]] = 0;
        for (int i = 0; i < b->n; i++)
            if (e->lrow[i] == 0) e->lrow[i] = rows++;
    }
    e->last_n = b->n;
    if (!rows) return DC_OK;
    if (!scratch_grow(&e->logits, &e->logits_cap, (size_t)rows * V))
        return err_set(err, DC_ENOMEM, "decode: out of memory for %d rows of logits", rows);
    float *g = e->s.xe; /* (T, C) free after the forward */
    for (int i = 0; i < b->n; i++)
        if (e->lrow[i] >= 0) memcpy(g + (size_t)e->lrow[i] * C, h + (size_t)e->inv[i] * C, sizeof(float) * C);
    head_logits(e->logits, g, head, rows);
    return DC_OK;
}

/* run f with the engine's thread count on the calling thread */
static int threads_enter(const dc_engine *e) {
    int old = omp_get_max_threads();
    if (e->o.n_threads > 0) omp_set_num_threads(e->o.n_threads);
    return old;
}

int engine_reserve(dc_engine *e, int n, dc_err *err) {
    int old = threads_enter(e);
    int rc = scratch_reserve(&e->s, dc_model_config(e->m), n, e->o.max_len, err);
    if (!rc) rc = mla_reserve(e->m, &e->s, e->o.attn, err);
    omp_set_num_threads(old);
    return rc;
}

int dc_engine_decode(dc_engine *e, const dc_batch *b, dc_err *err) {
    tok_batch tb;
    e->last_n = 0;
    /* scratch for the batch; a batch past max_batch is refused below before any use */
    int rc = engine_reserve(e, b && b->n > 0 && b->n <= e->o.max_batch ? b->n : 1, err);
    if (rc) return rc;
    rc = batch_plan(e, b, 0, &tb, err);
    if (rc < 0) return rc;
    int old = threads_enter(e);
    model_forward(e->m, &e->s, &e->view, &tb, e->ids);
    if (e->m->ep && e->m->ep->rc) { /* an expert owner failed: moe_ep.h */
        omp_set_num_threads(old);
        return err_set(err, e->m->ep->rc, "%s", e->m->ep->err.msg);
    }
    for (int r = 0; r < tb.nrun; r++) {
        kv_seq *s = &e->kv.seq[e->first[r]];
        s->len += tb.run0[r + 1] - tb.run0[r];
    }
    memcpy(e->hinv, e->inv, sizeof(int) * b->n);
    e->last_bytes = e->base_bytes + (size_t)e->s.experts_run * e->expert_bytes;
    e->hidden_n = b->n;
    rc = batch_logits(e, b, e->s.hidden, &e->m->w.head, err);
    omp_set_num_threads(old);
    return rc;
}

int dc_engine_decode_mtp(dc_engine *e, const dc_batch *b, const float *hidden, dc_err *err) {
    const dc_config *c = dc_model_config(e->m);
    e->last_n = 0;
    if (c->num_nextn_predict_layers < 1) return err_set(err, DC_EARG, "decode_mtp: the model has no MTP module");
    if (b && b->n > 0 && !hidden) return err_set(err, DC_EARG, "decode_mtp: no hidden states given");
    const int C = c->hidden_size, n = b && b->n > 0 && b->n <= e->o.max_batch ? b->n : 1;
    /* hidden may point into the scratch that engine_reserve may reallocate:
     * copy it first (rows n..2n-1), then into forward order (rows 0..n-1) */
    if (!scratch_grow(&e->hbuf, &e->hbuf_cap, (size_t)2 * n * C))
        return err_set(err, DC_ENOMEM, "decode_mtp: out of memory");
    if (b && b->n > 0) memcpy(e->hbuf + (size_t)n * C, hidden, sizeof(float) * n * C);
    int rc = engine_reserve(e, n, err);
    if (rc) return rc;
    tok_batch tb;
    rc = batch_plan(e, b, 1, &tb, err);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++)
        memcpy(e->hbuf + (size_t)e->inv[i] * C, e->hbuf + (size_t)(n + i) * C, sizeof(float) * C);
    int old = threads_enter(e);
    model_mtp_forward(e->m, &e->s, &e->view, &tb, e->ids, e->hbuf);
    if (e->m->ep && e->m->ep->rc) {
        omp_set_num_threads(old);
        return err_set(err, e->m->ep->rc, "%s", e->m->ep->err.msg);
    }
    for (int r = 0; r < tb.nrun; r++) {
        kv_seq *s = &e->kv.seq[e->first[r]];
        s->mtp_len += tb.run0[r + 1] - tb.run0[r];
    }
    rc = batch_logits(e, b, e->s.xn, &e->m->w.layers[c->num_hidden_layers].head, err);
    omp_set_num_threads(old);
    return rc;
}

size_t dc_engine_last_bytes(const dc_engine *e) { return e->last_bytes; }

const float *dc_engine_logits(const dc_engine *e, int i) {
    if (i < 0 || i >= e->last_n || e->lrow[i] < 0) return NULL;
    return e->logits + (size_t)e->lrow[i] * dc_model_config(e->m)->vocab_size;
}

const float *dc_engine_hidden(const dc_engine *e, int i) {
    if (i < 0 || i >= e->hidden_n) return NULL;
    return e->s.hidden + (size_t)e->hinv[i] * dc_model_config(e->m)->hidden_size;
}
