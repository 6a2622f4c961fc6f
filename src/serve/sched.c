/*
 * sched.c — the engine thread: continuous batching of requests (sv.h).
 *
 * One thread owns the dc_engine. Each step it
 *   1. admits waiting jobs while their sequences fit in --parallel (a job
 *      needs prompts * n; the oldest waits first, no overtaking);
 *   2. gathers ONE batch: the pending token of every running choice (one
 *      decode token each), then chunks of prompts still prefilling, up to
 *      --batch tokens in all (a long prompt takes several steps and never
 *      stalls the others' decoding);
 *   3. runs dc_engine_decode once: the weights are read once for all;
 *   4. samples each choice from its own logits with its own dc_sampler,
 *      pushes the token's text through a dc_detok (UTF-8 held back until
 *      whole), a dc_stop (stop strings held back until decided) and, for R1,
 *      the reasoning split (think.c), and writes SSE chunks or keeps the text
 *      for the final JSON.
 * A prompt's sequence starts as a fork of the prefix-cache entry sharing the
 * longest prefix with it (prefix.c), cut to that prefix, so only the rest is
 * prefilled. When a prompt is in, its n choices fork its sequence (pages
 * shared) and each samples its first token from the prompt's last logits.
 * A finished job's first choice goes into the prefix cache (its KV rows
 * hold prompt + answer less the last token, which is never fed); the other
 * choices are freed. A cancelled job (client gone, second signal) is dropped
 * at the top of the next step.
 *
 * Tokens equal `deepc generate`'s for the same prompt and sampler: the same
 * template and encoding (request.c), the sampler seeded with the request's
 * seed (choice i of a prompt: seed + i), the same history for the repeat
 * penalty (prompt + answer), EOS ends the answer unshown; logits come from
 * the engine, which gives each sequence what dc_forward gives it alone (see
 * engine.c for where batched arithmetic may round differently).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "serve/sched.h"

/* ---------------------------------------------------------------- sequences */

/* new_seq: an empty sequence, evicting prefix-cache entries while the engine is full */
static int new_seq(sched *S, dc_err *err) {
    for (;;) {
        int id = dc_seq_new(S->e, err);
        if (id >= 0 || id != DC_EFULL || sv_prefix_evict(&S->pc, S->e)) return id;
    }
}

static int fork_seq(sched *S, int src, dc_err *err) {
    for (;;) {
        int id = dc_seq_fork(S->e, src, err);
        if (id >= 0 || id != DC_EFULL || S->pc.n == 0) return id;
        /* evict another entry than src's */
        int keep = -1;
        for (int i = 0; i < S->pc.n; i++)
            if (S->pc.e[i].seq == src) keep = i;
        if (keep >= 0 && S->pc.n == 1) return id;
        if (keep >= 0) S->pc.e[keep].used = S->pc.clock + 1;
        sv_prefix_evict(&S->pc, S->e);
    }
}

/* group_start: the prompt's sequence: a fork of the longest cached prefix, or new */
static int group_start(sched *S, active *a, int gi, dc_err *err) {
    group *g = &a->g[gi];
    choice *c0 = &a->c[gi * a->j->req.n];
    int len, k = sv_prefix_match(&S->pc, g->p->ids, g->p->n, &len);
    int take = len < g->p->n - 1 ? len : g->p->n - 1;
    c0->seq = -1;
    if (k >= 0 && take > 0) {
        int id = dc_seq_fork(S->e, S->pc.e[k].seq, err);
        if (id >= 0 && !dc_seq_truncate(S->e, id, take, err)) {
            c0->seq = id;
            g->fed = g->cached = take;
        } else if (id >= 0) {
            dc_seq_free(S->e, id);
        }
    }
    if (c0->seq < 0) {
        g->fed = g->cached = 0;
        if ((c0->seq = new_seq(S, err)) < 0) return c0->seq;
    }
    atomic_fetch_add(&S->s->met.cached_tokens, g->cached);
    return DC_OK;
}

/* ---------------------------------------------------------------- jobs */

static int choice_init(sched *S, const sv_req *r, choice *c, int index, const sv_prompt *p, dc_err *err) {
    c->seq = -1, c->pending = -1, c->batch_i = -1;
    dc_sampler_params sp = r->sp;
    sp.seed = r->sp.seed + (uint64_t)(index % r->n);
    int rc = dc_sampler_new(&sp, S->vocab, &c->smp, err);
    if (!rc) rc = dc_detok_new(S->s->mi.tok, 0, &c->dt, err);
    if (!rc && r->n_stops) rc = dc_stop_new((const char *const *)r->stops, r->n_stops, &c->stop, err);
    if (rc) return rc;
    sv_think_init(&c->think, r->think);
    if (!(c->hist = malloc(sizeof(int) * (size_t)(p->n + r->max_tokens)))) return err_set(err, DC_ENOMEM, "out of memory");
    memcpy(c->hist, p->ids, sizeof(int) * p->n);
    c->n_hist = p->n;
    if (r->logprobs) c->lp = oai_logprobs_new(r->kind);
    if (r->think) buf_str(&c->out.reasoning, ""); /* reasoning_content shows, even empty */
    if (r->echo && p->text) {
        buf_str(&c->out.content, p->text);
        c->text_off = (int)strlen(p->text);
    }
    return DC_OK;
}

static void choice_free(choice *c) {
    dc_sampler_free(c->smp);
    dc_detok_free(c->dt);
    dc_stop_free(c->stop);
    free(c->hist);
    buf_free(&c->out.content);
    buf_free(&c->out.reasoning);
    oai_logprobs_free(c->lp);
    oai_logprobs_free(c->out.logprobs);
}

void active_free(active *a) {
    if (!a) return;
    for (int i = 0; i < a->nc; i++) choice_free(&a->c[i]);
    buf_free(&a->sse);
    free(a->c);
    free(a->g);
    free(a);
}

static active *active_new(sched *S, sv_job *j, dc_err *err) {
    const sv_req *r = &j->req;
    active *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->j = j, a->ng = r->n_prompts, a->nc = r->n_prompts * r->n, a->need = a->nc;
    a->g = calloc(a->ng, sizeof *a->g);
    a->c = calloc(a->nc, sizeof *a->c);
    if (!a->g || !a->c) {
        active_free(a);
        return NULL;
    }
    for (int i = 0; i < a->nc; i++) a->c[i].seq = -1;
    for (int i = 0; i < a->nc; i++)
        if (choice_init(S, r, &a->c[i], i, &r->prompts[i / r->n], err)) {
            active_free(a);
            return NULL;
        }
    for (int gi = 0; gi < a->ng; gi++) a->g[gi].p = &r->prompts[gi], a->g[gi].last_i = -1;
    return a;
}

/* release_seqs: the first choice of each prompt into the prefix cache, the rest freed */
void release_seqs(sched *S, active *a) {
    int n = a->j->req.n;
    for (int i = 0; i < a->nc; i++) {
        choice *c = &a->c[i];
        if (c->seq < 0) continue;
        int len = dc_seq_len(S->e, c->seq);
        if (i % n == 0 && len > 0 && len <= c->n_hist) sv_prefix_put(&S->pc, S->e, c->seq, c->hist, len);
        else dc_seq_free(S->e, c->seq);
        c->seq = -1;
    }
    S->seqs_used -= a->need;
    a->need = 0;
}

void unlink_active(sched *S, active *a) {
    for (active **p = &S->run; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    atomic_fetch_sub(&S->s->met.running, 1);
}

/* job_fail: end a job with an error (before or after it started streaming) */
void job_fail(sched *S, active *a, int status, const char *msg) {
    sv_job_error(a->j, status, NULL, msg);
    release_seqs(S, a);
    unlink_active(S, a);
    sv_job_release(a->j);
    active_free(a);
}

static int admit(sched *S, sv_job *j) {
    dc_err err = {0};
    int need = j->req.n_prompts * j->req.n;
    if (S->seqs_used + need > S->s->o.parallel) return 0;
    active *a = active_new(S, j, &err);
    int rc = a ? DC_OK : DC_ENOMEM;
    S->seqs_used += need;
    if (a) {
        a->next = S->run, S->run = a;
        atomic_fetch_add(&S->s->met.running, 1);
        atomic_fetch_add(&S->s->met.requests, 1);
        for (int gi = 0; gi < a->ng && !rc; gi++) {
            atomic_fetch_add(&S->s->met.prompt_tokens, a->g[gi].p->n);
            rc = group_start(S, a, gi, &err);
        }
        if (rc) job_fail(S, a, 500, err.msg);
        return 1;
    }
    S->seqs_used -= need;
    sv_job_error(j, 500, NULL, err.msg[0] ? err.msg : "out of memory");
    sv_job_release(j);
    return 1;
}

/* admit_waiting: take jobs off the queue while they fit; ms: wait for one when idle */
static void admit_waiting(sched *S, int ms) {
    for (;;) {
        if (!S->waiting) S->waiting = sv_queue_pop(&S->s->q, S->run ? 0 : ms);
        if (!S->waiting) return;
        if (atomic_load(&S->waiting->cancel)) {
            sv_job_finish(S->waiting, 499, NULL, 0);
            sv_job_release(S->waiting);
            atomic_fetch_add(&S->s->met.cancelled, 1);
            S->waiting = NULL;
            continue;
        }
        if (!admit(S, S->waiting)) return;
        S->waiting = NULL;
        ms = 0;
    }
}


/* ---------------------------------------------------------------- one step */

static int room(sched *S, int n) {
    if (n <= S->cap) return 0;
    int cap = n + 64;
    int *t = realloc(S->tok, sizeof(int) * cap), *q = t ? realloc(S->seq, sizeof(int) * cap) : NULL;
    if (t) S->tok = t;
    if (q) S->seq = q;
    unsigned char *w = q ? realloc(S->want, cap) : NULL;
    if (w) S->want = w;
    if (!w) return -1;
    S->cap = cap;
    return 0;
}

static void add(sched *S, int *n, int tok, int seq, int want) {
    S->tok[*n] = tok, S->seq[*n] = seq, S->want[*n] = (unsigned char)want;
    (*n)++;
}

/* build_batch: decode tokens of running choices, then prompt chunks; the batch size */
static int build_batch(sched *S) {
    int n = 0, budget = S->s->o.batch;
    for (active *a = S->run; a; a = a->next)
        for (int i = 0; i < a->nc; i++) {
            choice *c = &a->c[i];
            c->batch_i = -1;
            if (c->finish || c->pending < 0 || room(S, n + 1)) continue;
            c->batch_i = n;
            add(S, &n, c->pending, c->seq, 1);
            c->pending = -1;
        }
    budget -= n;
    for (active *a = S->run; a; a = a->next)
        for (int gi = 0; gi < a->ng; gi++) {
            group *g = &a->g[gi];
            g->last_i = -1;
            int left = g->p->n - g->fed, k = left < budget ? left : budget;
            if (k <= 0 || room(S, n + k)) continue;
            int seq = a->c[gi * a->j->req.n].seq;
            for (int t = 0; t < k; t++) add(S, &n, g->p->ids[g->fed + t], seq, g->fed + t == g->p->n - 1);
            if (g->fed + k == g->p->n) g->last_i = n - 1;
            g->fed += k;
            budget -= k;
        }
    return n;
}

/* prompt_done: the prompt is in: fork its n choices and sample each one's first
 * token. Returns the tokens sampled, or -1 when the job failed (and is gone). */
static int prompt_done(sched *S, active *a, int gi) {
    int n = a->j->req.n;
    const float *lg = dc_engine_logits(S->e, a->g[gi].last_i);
    choice *c0 = &a->c[gi * n];
    dc_err err = {0};
    for (int k = 1; k < n; k++) {
        choice *c = &a->c[gi * n + k];
        if ((c->seq = fork_seq(S, c0->seq, &err)) < 0) {
            job_fail(S, a, 500, err.msg);
            return -1;
        }
    }
    for (int k = 0; k < n && lg; k++) emit_sample(S, a, &a->c[gi * n + k], lg);
    return lg ? n : 0;
}

/* after_decode: sample every choice that has logits this step, then flush each
 * job; returns the tokens sampled */
static int after_decode(sched *S) {
    int made = 0;
    for (active *a = S->run, *nx; a; a = nx) {
        nx = a->next;
        for (int i = 0; i < a->nc; i++) {
            choice *c = &a->c[i];
            if (c->batch_i < 0 || c->finish) continue;
            const float *lg = dc_engine_logits(S->e, c->batch_i);
            if (lg) emit_sample(S, a, c, lg), made++;
        }
        for (int gi = 0; gi < a->ng; gi++) {
            if (a->g[gi].last_i < 0) continue;
            int k = prompt_done(S, a, gi);
            if (k < 0) break;
            made += k;
        }
    }
    for (active *a = S->run, *nx; a; a = nx) {
        nx = a->next;
        emit_step_end(S, a);
    }
    return made;
}

/* fail_all: the engine refused a step twice; every job in flight ends with 500 */
static void fail_all(sched *S, const char *msg) {
    while (S->run) job_fail(S, S->run, 500, msg);
}

static void step(sched *S) {
    int n = build_batch(S);
    if (!n) return;
    dc_batch b = {.n = n, .token = S->tok, .seq = S->seq, .logits = S->want};
    dc_err err = {0};
    int rc = dc_engine_decode(S->e, &b, &err);
    while (rc == DC_EFULL && !sv_prefix_evict(&S->pc, S->e)) rc = dc_engine_decode(S->e, &b, &err);
    if (rc) {
        char msg[300];
        snprintf(msg, sizeof msg, "the engine failed: %s", err.msg);
        fprintf(stderr, "deepc serve: %s\n", msg);
        fail_all(S, msg);
        return;
    }
    int made = after_decode(S);
    sv_metrics_step(&S->s->met, sv_now(), n, made);
}

/* reap: jobs whose client went away (or that a second signal ends: their
 * clients get an error, as an SSE event when streaming) leave */
static void reap(sched *S) {
    for (active *a = S->run, *nx; a; a = nx) {
        nx = a->next;
        int gone = atomic_load(&a->j->cancel);
        if (!gone && S->stop_level < 2) continue;
        release_seqs(S, a);
        unlink_active(S, a);
        if (gone) sv_job_finish(a->j, 499, NULL, 0); /* nobody listens */
        else sv_job_error(a->j, 503, "shutting_down", "The server is shutting down; the answer was cut short.");
        sv_job_release(a->j);
        atomic_fetch_add(&S->s->met.cancelled, 1);
        active_free(a);
    }
}

/* signals: 1 stop accepting (quiesce; the rest is answered), 2 cancel everything */
static void check_stop(sched *S) {
    sv_server *s = S->s;
    int lvl = *s->sig > atomic_load(&s->stop_req) ? *s->sig : atomic_load(&s->stop_req);
    if (lvl <= S->stop_level) return;
    S->stop_level = lvl;
    atomic_store(&s->state, SV_STOPPING);
    sv_http_quiesce(s);
    fprintf(stderr, "deepc serve: %s\n", lvl >= 2 ? "stopping now: cancelling the requests in flight"
                                                  : "stopping: finishing the requests in flight (again to cancel them)");
    if (lvl < 2) return;
    if (S->waiting) atomic_store(&S->waiting->cancel, 1);
    sv_queue_close(&s->q);
}

static void kv_metrics(sched *S) {
    dc_kv_stats st;
    dc_engine_kv_stats(S->e, &st);
    atomic_store(&S->s->met.kv_pages_used, st.pages_used);
    atomic_store(&S->s->met.kv_pages, st.n_pages);
    atomic_store(&S->s->met.seqs_cached, S->pc.n);
}

int sv_sched_run(sv_server *s, dc_err *err) {
    sched S = {.s = s, .e = s->e, .vocab = s->mi.vocab};
    S.eos = dc_tokenizer_eos(s->mi.tok) >= 0 ? dc_tokenizer_eos(s->mi.tok) : dc_model_config(s->m)->eos_token_id;
    if (sv_prefix_init(&S.pc, s->o.cache) || !(S.scratch = malloc(sizeof(float) * S.vocab)))
        return err_set(err, DC_ENOMEM, "serve: out of memory");
    for (;;) {
        check_stop(&S);
        reap(&S);
        if (S.stop_level < 2 || S.waiting) admit_waiting(&S, 100);
        if (!S.run && !S.waiting && S.stop_level >= 1 && !sv_queue_depth(&s->q)) break;
        step(&S);
        kv_metrics(&S);
    }
    sv_prefix_free(&S.pc, S.e);
    free(S.tok);
    free(S.seq);
    free(S.want);
    free(S.scratch);
    return DC_OK;
}
