/*
 * generate.c — the token loop of deepc.h's dc_generate, plain and with MTP
 * speculative decoding.
 *
 * Plain: prefill the prompt (one batched forward), then sample, feed, repeat.
 *
 * MTP (V3 report §2.2: the MTP module predicts the token after next; at
 * inference it is a free draft model). With the cache holding P positions
 * and `cur` sampled but not yet fed:
 *   draft d      = argmax of the MTP module's logits after (h_{P-1}, cur)
 *   verify       dc_forward([cur, d]) at P, P+1: logits L0, L1 in one step
 *                (decode is memory-bound: two tokens read the weights once)
 *   x0           = sample(L0); if x0 == d the draft is accepted and
 *   x1           = sample(L1) comes for free; else position P+1 is dropped
 *                (dc_session_truncate) and x0 is the next `cur`.
 * The MTP cache then takes the positions the main cache kept, with their
 * hidden states and next tokens, and drafts again. Every main-model logit is
 * computed with the same bits as in plain decoding (the matvec kernels do not
 * depend on the batch, see matvec.h) and the sampler draws once per emitted
 * token in the same order, so the output is identical to plain decoding for
 * greedy and seeded sampling alike; accepting a one-hot draft exactly when
 * the main sample equals it is the speculative-sampling rule for a
 * deterministic draft (Leviathan et al. 2023).
 *
 * Invariant on return: every emitted token but the last is in the cache, and
 * the MTP cache (when used) holds as many positions as the main one.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/matmul.h"
#include "base/progress.h"
#include "base/err.h"
#include "deepc.h"

typedef struct gen {
    dc_session *s;
    dc_sampler *smp;
    const dc_gen_opts *o;
    dc_gen_stats *st;
    int V;
    float *logits; /* (2, V) */
    float *mlog;   /* (V) MTP logits */
    int *hist;     /* prompt + generated */
    int nh;
} gen;

/* emit: record and report one new token; 1 when generation must stop */
static int emit(gen *g, int tok) {
    g->hist[g->nh++] = tok;
    g->st->n_gen++;
    int stop = g->o->cb && g->o->cb(g->o->ctx, tok);
    stop |= tok == g->o->eos;
    stop |= g->st->n_gen >= g->o->max_new;
    stop |= g->o->cancel && *g->o->cancel;
    return stop;
}

/* plain decoding from logits row 0 (those of the last fed position) */
static int gen_plain(gen *g, dc_err *err) {
    for (;;) {
        int tok = dc_sample(g->smp, g->logits, g->hist, g->nh);
        if (emit(g, tok)) return DC_OK;
        if (dc_session_pos(g->s) + 1 > dc_session_max_ctx(g->s)) { /* context full */
            g->st->ctx_full = 1;
            return DC_OK;
        }
        int rc = dc_forward(g->s, &tok, 1, g->logits, 1, err);
        if (rc) return rc;
    }
}

/* MTP decoding after a prefill of prompt (n tokens) whose last logits are in row 0 */
static int gen_mtp(gen *g, const int *prompt, int n, dc_err *err) {
    dc_session *s = g->s;
    const int V = g->V;
    int cur = dc_sample(g->smp, g->logits, g->hist, g->nh), stop = emit(g, cur), rc;
    /* the MTP cache takes the prompt's positions: (h_i, token i+1) */
    int *next = malloc(sizeof(int) * n);
    if (!next) return err_set(err, DC_ENOMEM, "generate: out of memory");
    memcpy(next, prompt + 1, sizeof(int) * (n - 1));
    next[n - 1] = cur;
    rc = dc_forward_mtp_last(s, dc_session_hidden(s), next, n, stop ? NULL : g->mlog, err);
    free(next);
    while (!rc && !stop) {
        int P = dc_session_pos(s);
        if (P + 2 > dc_session_max_ctx(s)) { /* no room to verify two: finish plainly */
            if (P + 1 > dc_session_max_ctx(s)) {
                g->st->ctx_full = 1;
                return DC_OK;
            }
            if ((rc = dc_forward(s, &cur, 1, g->logits, 1, err))) return rc;
            return gen_plain(g, err);
        }
        int d = g->o->draft ? g->o->draft(g->o->ctx, g->mlog, g->st->n_gen) : argmax_f32(g->mlog, V);
        if (d < 0 || d >= V) d = 0;
        int pair[2] = {cur, d};
        if ((rc = dc_forward(s, pair, 2, g->logits, 0, err))) return rc;
        g->st->n_draft++;
        int x0 = dc_sample(g->smp, g->logits, g->hist, g->nh), ok = x0 == pair[1];
        g->st->n_accept += ok;
        stop = emit(g, x0);
        if (ok && !stop) { /* both positions stay; the second's logits give one more token */
            int x1 = dc_sample(g->smp, g->logits + V, g->hist, g->nh);
            stop = emit(g, x1);
            int nx[2] = {x0, x1};
            rc = dc_forward_mtp_last(s, dc_session_hidden(s), nx, 2, stop ? NULL : g->mlog, err);
            cur = x1;
        } else { /* keep only cur's position; x0 is not fed yet */
            if ((rc = dc_session_truncate(s, P + 1, err))) return rc;
            rc = dc_forward_mtp_last(s, dc_session_hidden(s), &x0, 1, stop ? NULL : g->mlog, err);
            cur = x0;
        }
    }
    return rc;
}

int dc_generate(dc_session *s, dc_sampler *smp, const int *prompt, int n, const dc_gen_opts *o, dc_gen_stats *st,
                dc_err *err) {
    dc_gen_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    if (n < 1) return err_set(err, DC_EARG, "generate: the prompt is empty");
    const dc_config *c = dc_model_config(dc_session_model(s));
    gen g = {.s = s, .smp = smp, .o = o, .st = st, .V = c->vocab_size};
    int use_mtp = o->mtp && c->num_nextn_predict_layers > 0 && dc_session_mtp_pos(s) == dc_session_pos(s);
    int max_new = o->max_new > 0 ? o->max_new : 0;
    g.logits = malloc(sizeof(float) * 2 * g.V);
    g.mlog = malloc(sizeof(float) * g.V);
    g.hist = malloc(sizeof(int) * ((size_t)n + max_new + 2));
    int rc = !g.logits || !g.mlog || !g.hist ? err_set(err, DC_ENOMEM, "generate: out of memory") : DC_OK;
    if (!rc) rc = dc_session_reserve(s, n > 2 ? n : 2, err);
    if (!rc) {
        memcpy(g.hist, prompt, sizeof(int) * n);
        g.nh = n;
        st->n_prompt = n;
        st->mtp_used = use_mtp;
        double t0 = progress_now();
        rc = dc_forward(s, prompt, n, g.logits, 1, err);
        double t1 = progress_now();
        st->prefill_s = t1 - t0;
        if (!rc && max_new > 0) rc = use_mtp ? gen_mtp(&g, prompt, n, err) : gen_plain(&g, err);
        st->decode_s = progress_now() - t1;
    }
    free(g.logits);
    free(g.mlog);
    free(g.hist);
    return rc;
}
