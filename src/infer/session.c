/*
 * session.c — dc_session, one sequence on an engine of its own: the simple
 * API of deepc.h for a single conversation (generate, chat, logits, tests),
 * with the same numbers as that sequence run in a batch of others.
 */
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "infer/engine.h"

struct dc_session {
    dc_engine *e;
    int seq;
    int *seqv;            /* (cap) the sequence id, repeated for dc_batch */
    unsigned char *want;  /* (cap) all ones */
    unsigned char *none;  /* (cap) all zeros */
    int cap;
};

int dc_session_new(dc_model *m, int max_ctx, int attn, dc_session **out, dc_err *err) {
    return dc_session_new_kv(m, max_ctx, attn, DC_KV_BF16, out, err);
}

int dc_session_new_kv(dc_model *m, int max_ctx, int attn, int kv_type, dc_session **out, dc_err *err) {
    *out = NULL;
    if (max_ctx < 1) return err_set(err, DC_EARG, "session: context size %d must be >= 1", max_ctx);
    if (attn != DC_ATTN_NAIVE && attn != DC_ATTN_ABSORB) return err_set(err, DC_EARG, "session: unknown attention mode %d", attn);
    dc_session *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, DC_ENOMEM, "session: out of memory");
    dc_engine_opts o;
    dc_engine_defaults(&o);
    o.max_seqs = 1, o.max_len = max_ctx, o.max_batch = max_ctx, o.attn = attn, o.n_pages = 0, o.kv_type = kv_type;
    int rc = dc_engine_new(m, &o, &s->e, err);
    if (!rc) rc = (s->seq = dc_seq_new(s->e, err)) < 0 ? s->seq : DC_OK;
    if (!rc) rc = engine_reserve(s->e, 1, err);
    if (rc) {
        dc_session_free(s);
        return rc;
    }
    *out = s;
    return DC_OK;
}

void dc_session_free(dc_session *s) {
    if (!s) return;
    dc_engine_free(s->e);
    free(s->seqv);
    free(s->want);
    free(s->none);
    free(s);
}

dc_engine *session_engine(const dc_session *s) { return s->e; }

void dc_session_reset(dc_session *s) { kv_seq_truncate(&s->e->kv, s->seq, 0); }
int dc_session_pos(const dc_session *s) { return dc_seq_len(s->e, s->seq); }
int dc_session_mtp_pos(const dc_session *s) { return dc_seq_mtp_len(s->e, s->seq); }
int dc_session_max_ctx(const dc_session *s) { return s->e->o.max_len; }
dc_model *dc_session_model(const dc_session *s) { return s->e->m; }
const float *dc_session_hidden(const dc_session *s) { return s->e->s.hidden; }

int dc_session_truncate(dc_session *s, int pos, dc_err *err) {
    int rc = dc_seq_truncate(s->e, s->seq, pos, err);
    if (rc) err_set(err, DC_EARG, "session_truncate: position %d is outside the %d cached", pos, dc_session_pos(s));
    return rc;
}

int dc_session_reserve(dc_session *s, int n, dc_err *err) {
    if (n < 1) return err_set(err, DC_EARG, "session_reserve: %d tokens", n);
    return engine_reserve(s->e, n, err);
}

enum { LOG_NONE, LOG_LAST, LOG_ALL };

/* a batch of n tokens of the session's sequence, asking for no, the last or all logits */
static int session_batch(dc_session *s, const int *ids, int n, int mode, dc_batch *b, dc_err *err) {
    if (n < 1) return err_set(err, DC_EARG, "forward: no tokens");
    if (n > s->cap) {
        int *sv = realloc(s->seqv, sizeof(int) * n);
        if (sv) s->seqv = sv;
        unsigned char *w = realloc(s->want, n);
        if (w) s->want = w;
        unsigned char *z = realloc(s->none, n);
        if (z) s->none = z;
        if (!sv || !w || !z) return err_set(err, DC_ENOMEM, "forward: out of memory");
        for (int i = s->cap; i < n; i++) s->seqv[i] = s->seq, s->want[i] = 1, s->none[i] = 0;
        s->cap = n;
    }
    *b = (dc_batch){n, ids, s->seqv, mode == LOG_ALL ? s->want : mode == LOG_NONE ? s->none : NULL};
    return DC_OK;
}

/* the logits rows of the last call into out: all n, or the last one */
static void copy_logits(const dc_session *s, float *out, int n, int all) {
    const size_t V = dc_model_config(s->e->m)->vocab_size;
    for (int i = all ? 0 : n - 1, r = 0; i < n; i++, r++) memcpy(out + r * V, dc_engine_logits(s->e, i), sizeof(float) * V);
}

int dc_forward(dc_session *s, const int *ids, int n, float *logits, int last_only, dc_err *err) {
    dc_batch b;
    int all = logits && !last_only;
    int rc = session_batch(s, ids, n, !logits ? LOG_NONE : all ? LOG_ALL : LOG_LAST, &b, err);
    if (!rc) rc = dc_engine_decode(s->e, &b, err);
    if (!rc && logits) copy_logits(s, logits, n, all);
    return rc;
}

/* the MTP module over n positions, writing all or only the last row of logits */
static int forward_mtp(dc_session *s, const float *hidden, const int *next_ids, int n, float *logits, int all,
                       dc_err *err) {
    dc_batch b;
    int rc = session_batch(s, next_ids, n, !logits ? LOG_NONE : all ? LOG_ALL : LOG_LAST, &b, err);
    if (!rc) rc = dc_engine_decode_mtp(s->e, &b, hidden, err);
    if (!rc && logits) copy_logits(s, logits, n, all);
    return rc;
}

int dc_forward_mtp(dc_session *s, const float *hidden, const int *next_ids, int n, float *logits, dc_err *err) {
    return forward_mtp(s, hidden, next_ids, n, logits, 1, err);
}

int dc_forward_mtp_last(dc_session *s, const float *hidden, const int *next_ids, int n, float *logits, dc_err *err) {
    return forward_mtp(s, hidden, next_ids, n, logits, 0, err);
}
int session_seq(const dc_session *s) { return s->seq; }
