/*
 * emit.c — from a choice's logits to what its client sees (sched.h).
 *
 *   logits -> dc_sample (the choice's sampler, history = prompt + answer)
 *          -> EOS ends the answer (unshown), else dc_detok (bytes, UTF-8
 *             whole) -> dc_stop (a stop string ends the answer, unshown)
 *          -> R1: sv_think (reasoning_content | content), else content
 *          -> streamed: one chunk per choice per step that has text, then a
 *             chunk with finish_reason; else kept for the final answer.
 * Logprobs are those of the model's distribution (log-softmax of the raw
 * logits, before temperature and the other filters), as vLLM gives them;
 * top_logprobs are the k likeliest tokens there.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "serve/sched.h"

static void add_logprobs(sched *S, active *a, choice *c, const float *lg, int tok) {
    int V = S->vocab, k = a->j->req.top_logprobs, top[SV_MAX_TOP_LOGPROBS], nt = 0;
    float mx = -INFINITY, tl[SV_MAX_TOP_LOGPROBS];
    for (int v = 0; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)lg[v] - mx);
    float lse = mx + (float)log(sum);
    for (int v = 0; v < V && k > 0; v++) { /* insertion into the sorted top k */
        if (nt == k && lg[v] <= lg[top[nt - 1]]) continue;
        int i = nt < k ? nt++ : k - 1;
        while (i > 0 && lg[top[i - 1]] < lg[v]) top[i] = top[i - 1], i--;
        top[i] = v;
    }
    for (int i = 0; i < nt; i++) tl[i] = lg[top[i]] - lse;
    oai_logprobs_add(c->lp, a->j->req.kind, S->s->mi.tok, tok, lg[tok] - lse, top, tl, nt, c->text_off);
}

static void out_text(active *a, choice *c, const char *t, size_t n) {
    if (!n) return;
    c->text_off += (int)n;
    if (a->j->req.think) sv_think_push(&c->think, t, n, &c->out.reasoning, &c->out.content);
    else buf_add(&c->out.content, t, n);
}

/* route: detokenised bytes through the stop strings; 1 when one completed */
static int route(active *a, choice *c, const char *t, size_t n) {
    const char *o = t;
    size_t on = n;
    int hit = c->stop ? dc_stop_push(c->stop, t, n, &o, &on) : 0;
    out_text(a, c, o, on);
    return hit;
}

/* flush: the end of an answer: what the detokenizer, stop strings and think split held */
static void flush(active *a, choice *c, int stopped) {
    if (!stopped) {
        const char *t, *o;
        size_t n, on;
        dc_detok_flush(c->dt, &t, &n);
        if (n && route(a, c, t, n)) c->finish = DC_FINISH_STOP;
        else if (c->stop) {
            dc_stop_flush(c->stop, &o, &on);
            out_text(a, c, o, on);
        }
    }
    if (a->j->req.think) sv_think_flush(&c->think, &c->out.reasoning, &c->out.content);
}

static const char *finish_name(int f) { return f == DC_FINISH_LENGTH ? "length" : "stop"; }

/* stream_choice: this step's delta of c (and its end) as chunks */
static void stream_choice(active *a, choice *c) {
    const sv_meta *m = &a->j->meta;
    int index = (int)(c - a->c), kind = a->j->req.kind;
    void *lp = oai_logprobs_count(c->lp, kind) ? c->lp : NULL;
    if (c->out.content.n || c->out.reasoning.n || lp || !c->sent_first) {
        oai_chunk(&a->sse, m, index, !c->sent_first, c->out.content.s, c->out.content.n, c->out.reasoning.s,
                  c->out.reasoning.n, NULL, lp);
        c->sent_first = 1;
        if (lp) c->lp = oai_logprobs_new(kind); /* the chunk took the old one */
        buf_reset(&c->out.content);
        buf_reset(&c->out.reasoning);
    }
    if (c->finish) oai_chunk(&a->sse, m, index, 0, "", 0, NULL, 0, finish_name(c->finish), NULL);
}

int emit_sample(sched *S, active *a, choice *c, const float *logits) {
    const sv_req *r = &a->j->req;
    memcpy(S->scratch, logits, sizeof(float) * S->vocab);
    int tok = dc_sample(c->smp, S->scratch, c->hist, c->n_hist);
    c->hist[c->n_hist++] = tok; /* room for prompt + max_tokens */
    c->n_gen++;
    if (!a->got_first) {
        a->got_first = 1;
        sv_metrics_ttft(&S->s->met, sv_now() - a->j->t_queued);
    }
    if (r->logprobs && c->lp) add_logprobs(S, a, c, logits, tok);
    int stopped = 0;
    int eos = tok == S->eos && !r->ignore_eos && !S->s->o.ignore_eos;
    if (eos) c->finish = DC_FINISH_STOP;
    else {
        const char *t;
        size_t n;
        if (!dc_detok_push(c->dt, tok, &t, &n, NULL)) stopped = route(a, c, t, n);
        if (stopped) c->finish = DC_FINISH_STOP;
        else if (c->n_gen >= r->max_tokens) c->finish = DC_FINISH_LENGTH;
    }
    /* at the end-of-sequence token too, the text held back (a UTF-8 sequence
     * cut short: U+FFFD as decoders show it; a possible stop string's start)
     * is the answer's end, as generate prints it; after a stop string, nothing */
    if (c->finish) flush(a, c, stopped);
    else c->pending = tok;
    if (r->stream) stream_choice(a, c);
    return c->finish != 0;
}

/* finish_job: the last chunks or the whole answer, then the job leaves */
static void finish_job(sched *S, active *a) {
    sv_job *j = a->j;
    const sv_req *r = &j->req;
    sv_usage u = {0};
    for (int gi = 0; gi < a->ng; gi++) u.prompt += a->g[gi].p->n, u.cached += a->g[gi].cached;
    for (int i = 0; i < a->nc; i++) u.completion += a->c[i].n_gen;
    if (r->stream) {
        buf b = {0};
        if (r->include_usage) oai_usage_chunk(&b, &j->meta, &u);
        oai_done(&b);
        sv_job_finish(j, 200, b.s, b.n);
        buf_free(&b);
    } else {
        sv_choice_out *outs = calloc(a->nc, sizeof *outs);
        char *body = NULL;
        if (outs) {
            for (int i = 0; i < a->nc; i++) {
                outs[i] = a->c[i].out; /* shallow: the texts stay the choice's */
                outs[i].finish = finish_name(a->c[i].finish);
                outs[i].logprobs = a->c[i].lp;
                a->c[i].lp = NULL;
            }
            body = oai_final(&j->meta, outs, a->nc, &u);
            free(outs);
        }
        if (body) sv_job_finish(j, 200, body, strlen(body));
        else sv_job_error(j, 500, NULL, "out of memory");
        free(body);
    }
    release_seqs(S, a);
    unlink_active(S, a);
    sv_job_release(j);
    active_free(a);
}

void emit_step_end(sched *S, active *a) {
    if (a->sse.n) {
        sv_job_write(a->j, a->sse.s, a->sse.n);
        buf_reset(&a->sse);
    }
    for (int i = 0; i < a->nc; i++)
        if (!a->c[i].finish) return;
    finish_job(S, a);
}
