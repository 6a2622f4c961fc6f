/*
 * generate_batch.c — dc_generate_batch: many sequences sampled together on
 * one engine, continuous batching at the token level.
 *
 * Each step builds one batch: the next token of every decoding sequence (two
 * with MTP: the token and its draft, verified together as in generate.c),
 * then prompt chunks of sequences still prefilling, up to the engine's batch
 * size; one dc_engine_decode runs them all, so each weight is read once per
 * step for every sequence in flight. Each sequence samples with its own
 * sampler in the same order as dc_generate alone, so its tokens are the same
 * (engine.c says where the arithmetic can differ by batch).
 *
 * A sequence waits until a slot is free and the KV store can hold its whole
 * prompt + max_new (pages reserved up front, so no running sequence ever
 * meets a full store). Entries that share an earlier entry's prompt
 * (share_prompt_of) are forked from it once its prefill is done: they take
 * no pages for the prompt and sample their first token from its last logits.
 * A primary that finishes first keeps its sequence until its last sharer is
 * forked (the last one takes the sequence over).
 *
 * MTP (V3 report §2.2): after the main pass, the MTP module takes each
 * sequence's new positions with their hidden states and next tokens in a
 * second batched pass, whose last logits give the next draft (its argmax).
 */
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
#include "deepc.h"
#include "kernels/matmul.h"

enum { ST_WAIT, ST_PREFILL, ST_DECODE, ST_DONE };

typedef struct gseq {
    int st, seq, fed;     /* state, engine sequence (-1: none), prompt tokens fed */
    const int *prompt;
    int n_prompt, share;  /* share: the entry whose prompt this one forks, or -1 */
    int cur, draft;       /* sampled and not yet fed; MTP draft (-1: none) */
    int *hist, nh;        /* prompt + generated (repeat penalty) */
    int sharers;          /* entries still waiting to fork this one's prompt */
    float *first;         /* (V + C) the prompt's last logits and hidden state, kept for sharers */
    int pages;            /* pages reserved */
    int b0, nb;           /* this step's tokens in the batch */
} gseq;

typedef struct gb {
    dc_engine *e;
    dc_gen_seq *q;
    gseq *g;
    int n, V, C, P, max_len, max_batch, mtp;
    const dc_gen_batch_opts *o;
    dc_gen_stats *st;
    int *tok, *sq, *mtok, *msq; /* (max_batch) the main and MTP batches */
    unsigned char *want;
    float *mh;                  /* (max_batch, C) MTP inputs */
    float *lg;                  /* (V) a copy to sample from */
    int nm;                     /* rows in the MTP batch */
    int free_pages, free_slots;
} gb;

static int pages_for(const gb *b, int positions) {
    if (positions > b->max_len) positions = b->max_len;
    return (positions + b->P - 1) / b->P + 1; /* + one copied when a shared page is written */
}

/* sample entry i from logits l and record the token; 1 when it has finished */
static int take(gb *b, int i, const float *l) {
    gseq *g = &b->g[i];
    dc_gen_seq *q = &b->q[i];
    memcpy(b->lg, l, sizeof(float) * b->V);
    int t = dc_sample(q->smp, b->lg, g->hist, g->nh);
    g->hist[g->nh++] = t;
    q->out[q->n_out++] = t;
    b->st->n_gen++;
    g->cur = t;
    if ((b->o->cb && b->o->cb(b->o->ctx, i, t)) || t == b->o->eos) q->finish = DC_FINISH_STOP;
    else if (q->n_out >= q->max_new) q->finish = DC_FINISH_LENGTH;
    else if (b->o->cancel && *b->o->cancel) q->finish = DC_FINISH_CANCEL;
    else if (dc_seq_len(b->e, g->seq) + 1 > b->max_len) q->finish = DC_FINISH_LENGTH; /* no room to feed it */
    return q->finish != DC_FINISH_NONE;
}

/* give back entry i's sequence and pages (kept while sharers wait for its prompt) */
static void release(gb *b, int i) {
    gseq *g = &b->g[i];
    if (g->sharers || g->seq < 0) return;
    dc_seq_free(b->e, g->seq);
    g->seq = -1;
    b->free_slots++;
    b->free_pages += g->pages;
    g->pages = 0;
    free(g->first);
    g->first = NULL;
}

static void finish(gb *b, int i) {
    if (b->q[i].finish == DC_FINISH_NONE) b->q[i].finish = DC_FINISH_LENGTH;
    b->g[i].st = ST_DONE;
    release(b, i);
}

/* queue one MTP position of entry i: hidden state h, the token after it */
static void mtp_add(gb *b, int i, const float *h, int next) {
    b->mtok[b->nm] = next, b->msq[b->nm] = b->g[i].seq;
    memcpy(b->mh + (size_t)b->nm * b->C, h, sizeof(float) * b->C);
    b->nm++;
}

/* a sharer takes the prompt of its primary p: fork (or take over the
 * sequence when p is done and this is its last sharer), back to the prompt,
 * first token from p's saved logits */
static int admit_sharer(gb *b, int i, dc_err *err) {
    gseq *g = &b->g[i], *p = &b->g[g->share];
    int n = p->n_prompt, rc = DC_OK;
    if (p->st == ST_DONE && p->sharers == 1) {
        g->seq = p->seq, p->seq = -1;
        g->pages = p->pages, p->pages = 0;
        int need = pages_for(b, n + b->q[i].max_new + 1); /* its own limit may be larger than p's */
        if (need > g->pages) b->free_pages -= need - g->pages, g->pages = need;
        g->first = p->first, p->first = NULL;
    } else {
        if ((g->seq = dc_seq_fork(b->e, p->seq, err)) < 0) return g->seq;
        b->free_slots--;
        g->first = malloc(sizeof(float) * (b->V + b->C));
        if (!g->first) return err_set(err, DC_ENOMEM, "generate_batch: out of memory");
        memcpy(g->first, p->first, sizeof(float) * (b->V + b->C));
    }
    b->free_pages -= g->pages ? 0 : (g->pages = pages_for(b, b->q[i].max_new + 2));
    p->sharers--;
    if (p->st == ST_DONE) release(b, g->share);
    rc = dc_seq_truncate(b->e, g->seq, n, err);
    if (!rc && b->mtp) rc = dc_seq_truncate_mtp(b->e, g->seq, n - 1, err);
    if (rc) return rc;
    g->fed = n, g->st = ST_DECODE;
    if (take(b, i, g->first)) finish(b, i);
    else if (b->mtp) mtp_add(b, i, g->first + b->V, g->cur);
    free(g->first);
    g->first = NULL;
    return DC_OK;
}

/* start waiting entries while slots and pages allow */
static int admit(gb *b, dc_err *err) {
    for (int i = 0; i < b->n; i++) {
        gseq *g = &b->g[i];
        if (g->st != ST_WAIT) continue;
        if (g->share >= 0) {
            gseq *p = &b->g[g->share];
            if (!p->first) continue; /* its prompt is not ready */
            int take_over = p->st == ST_DONE && p->sharers == 1;
            int more = pages_for(b, p->n_prompt + b->q[i].max_new + 1) - p->pages;
            if (take_over && b->free_pages < more) continue;
            if (!take_over && (!b->free_slots || b->free_pages < pages_for(b, b->q[i].max_new + 2))) continue;
            int rc = admit_sharer(b, i, err);
            if (rc) return rc;
            continue;
        }
        int need = pages_for(b, g->n_prompt + b->q[i].max_new + 1);
        if (!b->free_slots || b->free_pages < need) continue;
        if ((g->seq = dc_seq_new(b->e, err)) < 0) return g->seq;
        b->free_slots--, b->free_pages -= (g->pages = need);
        g->st = ST_PREFILL;
    }
    return DC_OK;
}

/* the main batch: decoding entries first (a token, or a token and its
 * draft), then prompt chunks in the room left; returns its size */
static int build(gb *b) {
    int n = 0;
    for (int i = 0; i < b->n; i++) {
        gseq *g = &b->g[i];
        g->nb = 0;
        if (g->st != ST_DECODE) continue;
        int two = g->draft >= 0 && dc_seq_len(b->e, g->seq) + 2 <= b->max_len;
        if (n + 1 + two > b->max_batch) continue; /* no room this step: it waits for the next */
        g->b0 = n;
        b->tok[n] = g->cur, b->sq[n] = g->seq, b->want[n] = 1, n++;
        if (two) b->tok[n] = g->draft, b->sq[n] = g->seq, b->want[n] = 1, n++;
        g->nb = n - g->b0;
    }
    for (int i = 0; i < b->n && n < b->max_batch; i++) {
        gseq *g = &b->g[i];
        if (g->st != ST_PREFILL) continue;
        int k = g->n_prompt - g->fed, room = b->max_batch - n;
        if (b->o->prefill_chunk > 0 && k > b->o->prefill_chunk) k = b->o->prefill_chunk;
        if (k > room) k = room;
        g->b0 = n, g->nb = k;
        for (int j = 0; j < k; j++, n++)
            b->tok[n] = g->prompt[g->fed + j], b->sq[n] = g->seq, b->want[n] = g->fed + j == g->n_prompt - 1;
    }
    return n;
}

/* after the main pass: a prefilling entry's chunk */
static int after_prefill(gb *b, int i, dc_err *err) {
    gseq *g = &b->g[i];
    int last = g->fed + g->nb == g->n_prompt;
    if (b->mtp) /* every position but the prompt's last has its next token now */
        for (int j = 0; j < g->nb - last; j++)
            mtp_add(b, i, dc_engine_hidden(b->e, g->b0 + j), g->prompt[g->fed + j + 1]);
    g->fed += g->nb;
    if (!last) return DC_OK;
    const float *l = dc_engine_logits(b->e, g->b0 + g->nb - 1), *h = dc_engine_hidden(b->e, g->b0 + g->nb - 1);
    if (g->sharers) {
        if (!(g->first = malloc(sizeof(float) * (b->V + b->C))))
            return err_set(err, DC_ENOMEM, "generate_batch: out of memory");
        memcpy(g->first, l, sizeof(float) * b->V);
        memcpy(g->first + b->V, h, sizeof(float) * b->C);
    }
    g->st = ST_DECODE;
    if (b->q[i].max_new < 1 || take(b, i, l)) finish(b, i);
    else if (b->mtp) mtp_add(b, i, h, g->cur);
    return DC_OK;
}

/* after the main pass: a decoding entry's token (and draft) */
static int after_decode(gb *b, int i, dc_err *err) {
    gseq *g = &b->g[i];
    const float *h0 = dc_engine_hidden(b->e, g->b0);
    int d = g->nb == 2 ? g->draft : -1;
    if (take(b, i, dc_engine_logits(b->e, g->b0))) {
        finish(b, i);
        return DC_OK;
    }
    int x0 = g->cur;
    if (d < 0) {
        if (b->mtp) mtp_add(b, i, h0, x0);
        return DC_OK;
    }
    b->st->n_draft++;
    if (x0 == d) { /* accepted: the draft's position stays and its logits give one more token */
        b->st->n_accept++;
        int stop = take(b, i, dc_engine_logits(b->e, g->b0 + 1));
        if (stop) {
            finish(b, i);
            return DC_OK;
        }
        mtp_add(b, i, h0, x0);
        mtp_add(b, i, dc_engine_hidden(b->e, g->b0 + 1), g->cur);
        return DC_OK;
    }
    int rc = dc_seq_truncate(b->e, g->seq, dc_seq_len(b->e, g->seq) - 1, err); /* drop the draft's position */
    if (!rc) mtp_add(b, i, h0, x0);
    return rc;
}

/* one MTP call over queued rows k0..k0+n-1; drafts from each sequence's last row */
static int mtp_chunk(gb *b, int k0, int n, dc_err *err) {
    dc_batch mb = {n, b->mtok + k0, b->msq + k0, NULL};
    int rc = dc_engine_decode_mtp(b->e, &mb, b->mh + (size_t)k0 * b->C, err);
    for (int k = 0; !rc && k < n; k++) {
        const float *l = dc_engine_logits(b->e, k);
        if (!l) continue;
        for (int i = 0; i < b->n; i++)
            if (b->g[i].st == ST_DECODE && b->g[i].seq == b->msq[k0 + k]) {
                int d = b->o->draft ? b->o->draft(b->o->ctx, i, l, b->q[i].n_out) : argmax_f32(l, b->V);
                b->g[i].draft = d >= 0 && d < b->V ? d : 0;
            }
    }
    return rc;
}

/* the MTP pass over the queued positions, in calls of at most max_batch rows
 * (a sequence's rows keep their order): each entry's next draft */
static int mtp_pass(gb *b, dc_err *err) {
    int rc = DC_OK;
    for (int k0 = 0; k0 < b->nm && !rc; k0 += b->max_batch) {
        int n = b->nm - k0 < b->max_batch ? b->nm - k0 : b->max_batch;
        rc = mtp_chunk(b, k0, n, err);
    }
    b->nm = 0;
    return rc;
}

static int step(gb *b, int *busy, dc_err *err) {
    int rc = admit(b, err);
    if (rc) return rc;
    int n = build(b), prefill = 0;
    *busy = n > 0 || b->nm > 0;
    if (!n) return mtp_pass(b, err);
    for (int i = 0; i < b->n; i++) prefill |= b->g[i].st == ST_PREFILL && b->g[i].nb;
    double t0 = progress_now();
    dc_batch mb = {n, b->tok, b->sq, b->want};
    if ((rc = dc_engine_decode(b->e, &mb, err))) return rc;
    for (int i = 0; i < b->n && !rc; i++) {
        gseq *g = &b->g[i];
        if (!g->nb) continue;
        rc = g->st == ST_PREFILL ? after_prefill(b, i, err) : after_decode(b, i, err);
        g->nb = 0, g->draft = -1; /* the MTP pass below drafts anew */
    }
    if (!rc && b->mtp) rc = mtp_pass(b, err);
    double dt = progress_now() - t0;
    if (prefill) b->st->prefill_s += dt;
    else b->st->decode_s += dt;
    return rc;
}

static int check(const dc_engine *e, const dc_gen_seq *q, int n, dc_err *err) {
    const dc_config *c = dc_model_config(dc_engine_model(e));
    for (int i = 0; i < n; i++) {
        int sh = q[i].share_prompt_of;
        if (!q[i].smp || q[i].max_new < 0 || (q[i].max_new > 0 && !q[i].out))
            return err_set(err, DC_EARG, "generate_batch: sequence %d needs a sampler, max_new >= 0 and an output buffer", i);
        if (sh >= 0 && (sh >= i || q[sh].share_prompt_of >= 0))
            return err_set(err, DC_EARG, "generate_batch: sequence %d shares the prompt of %d, which is not an earlier "
                           "entry with a prompt of its own", i, sh);
        if (sh >= 0) continue;
        if (!q[i].prompt || q[i].n_prompt < 1) return err_set(err, DC_EARG, "generate_batch: sequence %d has an empty prompt", i);
        if (q[i].n_prompt >= dc_engine_get_opts(e)->max_len)
            return err_set(err, DC_EARG, "generate_batch: sequence %d: a prompt of %d tokens leaves no room in a context of %d",
                           i, q[i].n_prompt, dc_engine_get_opts(e)->max_len);
        for (int t = 0; t < q[i].n_prompt; t++)
            if (q[i].prompt[t] < 0 || q[i].prompt[t] >= c->vocab_size)
                return err_set(err, DC_EARG, "generate_batch: sequence %d: token id %d at %d is outside the vocabulary (0..%d)",
                               i, q[i].prompt[t], t, c->vocab_size - 1);
    }
    return DC_OK;
}

static int setup(gb *b, dc_err *err) {
    const dc_engine_opts *eo = dc_engine_get_opts(b->e);
    dc_kv_stats ks;
    dc_engine_kv_stats(b->e, &ks);
    b->P = ks.page_tokens, b->max_len = eo->max_len, b->max_batch = eo->max_batch;
    b->free_pages = ks.n_pages - ks.pages_used, b->free_slots = eo->max_seqs - ks.n_seqs;
    size_t B = (size_t)b->max_batch, M = B + (size_t)eo->max_seqs; /* MTP rows: the batch's and admitted sharers' */
    b->g = calloc(b->n, sizeof *b->g);
    b->tok = malloc(sizeof(int) * B), b->sq = malloc(sizeof(int) * B), b->want = malloc(B);
    b->mtok = malloc(sizeof(int) * M), b->msq = malloc(sizeof(int) * M);
    b->mh = malloc(sizeof(float) * M * b->C), b->lg = malloc(sizeof(float) * b->V);
    if (!b->g || !b->tok || !b->sq || !b->want || !b->mtok || !b->msq || !b->mh || !b->lg)
        return err_set(err, DC_ENOMEM, "generate_batch: out of memory");
    for (int i = 0; i < b->n; i++) {
        dc_gen_seq *q = &b->q[i];
        gseq *g = &b->g[i];
        /* one slot cannot hold a prompt for its sharers: they prefill it again */
        g->share = eo->max_seqs > 1 ? q->share_prompt_of : -1;
        int src = q->share_prompt_of >= 0 ? q->share_prompt_of : i;
        g->prompt = b->q[src].prompt, g->n_prompt = b->q[src].n_prompt;
        g->seq = g->draft = -1;
        if (g->share >= 0) b->g[g->share].sharers++;
        if (!(g->hist = malloc(sizeof(int) * ((size_t)g->n_prompt + q->max_new + 1))))
            return err_set(err, DC_ENOMEM, "generate_batch: out of memory");
        memcpy(g->hist, g->prompt, sizeof(int) * g->n_prompt);
        g->nh = g->n_prompt;
        q->n_out = 0, q->finish = DC_FINISH_NONE;
        int need = g->share >= 0 ? pages_for(b, q->max_new + 2) : pages_for(b, g->n_prompt + q->max_new + 1);
        if (need > ks.n_pages)
            return err_set(err, DC_EFULL, "generate_batch: sequence %d needs %d KV pages, the store has %d", i, need,
                           ks.n_pages);
    }
    if (!b->free_slots) return err_set(err, DC_EFULL, "generate_batch: every sequence slot of the engine is in use");
    return DC_OK;
}

static void teardown(gb *b) {
    if (b->g)
        for (int i = 0; i < b->n; i++) {
            if (b->g[i].seq >= 0) dc_seq_free(b->e, b->g[i].seq);
            free(b->g[i].hist);
            free(b->g[i].first);
        }
    free(b->g), free(b->tok), free(b->sq), free(b->want), free(b->mtok), free(b->msq), free(b->mh), free(b->lg);
}

int dc_generate_batch(dc_engine *e, dc_gen_seq *seqs, int n, const dc_gen_batch_opts *o, dc_gen_stats *st,
                      dc_err *err) {
    dc_gen_stats dummy;
    dc_gen_batch_opts dflt = {.eos = -1};
    if (!st) st = &dummy;
    if (!o) o = &dflt;
    memset(st, 0, sizeof *st);
    if (n < 0 || (n > 0 && !seqs)) return err_set(err, DC_EARG, "generate_batch: %d sequences", n);
    int rc = check(e, seqs, n, err);
    if (rc || !n) return rc;
    const dc_config *c = dc_model_config(dc_engine_model(e));
    gb b = {.e = e, .q = seqs, .n = n, .V = c->vocab_size, .C = c->hidden_size, .o = o, .st = st};
    b.mtp = o->mtp && c->num_nextn_predict_layers > 0;
    st->mtp_used = b.mtp;
    rc = setup(&b, err);
    for (int busy = 1; !rc && busy;) {
        rc = step(&b, &busy, err);
        int waiting = 0;
        for (int i = 0; i < n; i++) waiting |= b.g[i].st == ST_WAIT;
        if (!rc && !busy && waiting)
            rc = err_set(err, DC_EFULL, "generate_batch: sequences wait for room that never comes (KV store or slots)");
    }
    for (int i = 0; i < n; i++) st->n_prompt += b.g ? b.g[i].fed * (b.g[i].share < 0) : 0;
    teardown(&b);
    return rc;
}
