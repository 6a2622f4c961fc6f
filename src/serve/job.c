/*
 * job.c — the hand-over between a connection thread and the engine thread
 * (sv.h), and the bounded queue of jobs waiting for the engine.
 *
 * A job starts with two references, one per side. The engine appends bytes
 * to job->out and signals; the connection takes them out (so out holds only
 * what was not sent yet) and sends them. Whichever side lets go last frees
 * the job. The queue is FIFO with a fixed most-waiting count, so memory
 * stays bounded however many clients knock: beyond it a request is turned
 * away (503) before any work is done for it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "serve/sv.h"

sv_job *sv_job_new(sv_req *req, const sv_meta *meta) {
    sv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->refs = 2;
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->meta = *meta;
    j->status = 200;
    j->t_queued = sv_now();
    return j;
}

void sv_job_release(sv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    sv_req_free(&j->req);
    buf_free(&j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void sv_job_write(sv_job *j, const char *p, size_t n) {
    if (!n) return;
    pthread_mutex_lock(&j->mu);
    buf_add(&j->out, p, n);
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void sv_job_error(sv_job *j, int status, const char *code, const char *msg) {
    sv_error e;
    sv_fail(&e, status, status >= 500 ? "server_error" : "invalid_request_error", NULL, code, "%s", msg);
    char *body = oai_error_json(&e);
    buf b = {0};
    if (j->req.stream) buf_fmt(&b, "data: %s\n\n", body ? body : "{}");
    else buf_str(&b, body ? body : "{}");
    sv_job_finish(j, status, b.s, b.n);
    buf_free(&b);
    free(body);
}

void sv_job_finish(sv_job *j, int status, const char *body, size_t n) {
    pthread_mutex_lock(&j->mu);
    if (body) buf_add(&j->out, body, n);
    j->status = status;
    j->done = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void deadline(struct timespec *t, int ms) {
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) t->tv_sec++, t->tv_nsec -= 1000000000L;
}

long sv_job_take(sv_job *j, char *dst, size_t max, int ms) {
    struct timespec until;
    deadline(&until, ms);
    pthread_mutex_lock(&j->mu);
    while (!j->out.n && !j->done)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &until) == ETIMEDOUT) break;
    long k;
    if (j->out.n) {
        size_t m = j->out.n < max ? j->out.n : max;
        memcpy(dst, j->out.s, m);
        memmove(j->out.s, j->out.s + m, j->out.n - m);
        j->out.n -= m;
        j->out.s[j->out.n] = 0;
        k = (long)m;
    } else {
        k = j->done ? -1 : 0;
    }
    pthread_mutex_unlock(&j->mu);
    return k;
}

/* ---------------------------------------------------------------- queue */

int sv_queue_init(sv_queue *q, int max_depth) {
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->max_depth = max_depth;
    return 0;
}

void sv_queue_close(sv_queue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    sv_job *j = q->head;
    q->head = q->tail = NULL;
    q->depth = 0;
    pthread_mutex_unlock(&q->mu);
    for (sv_job *nx; j; j = nx) {
        nx = j->next;
        sv_job_error(j, 503, "shutting_down", "The server is shutting down.");
        sv_job_release(j);
    }
}

void sv_queue_free(sv_queue *q) {
    sv_queue_close(q);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    memset(q, 0, sizeof *q);
}

int sv_queue_push(sv_queue *q, sv_job *j) {
    pthread_mutex_lock(&q->mu);
    if (q->closed || q->depth >= q->max_depth) {
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    j->next = NULL;
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
    q->depth++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

sv_job *sv_queue_pop(sv_queue *q, int ms) {
    struct timespec until;
    deadline(&until, ms);
    pthread_mutex_lock(&q->mu);
    while (!q->head && ms > 0)
        if (pthread_cond_timedwait(&q->cv, &q->mu, &until) == ETIMEDOUT) break;
    sv_job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        q->depth--;
        j->next = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    return j;
}

int sv_queue_depth(sv_queue *q) {
    pthread_mutex_lock(&q->mu);
    int d = q->depth;
    pthread_mutex_unlock(&q->mu);
    return d;
}

void sv_queue_wake(sv_queue *q) {
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
