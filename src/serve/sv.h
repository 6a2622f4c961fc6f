/*
 * sv.h — the inside of `deepc serve` (src/serve/): the types its files share.
 *
 * Threads. libmicrohttpd runs one thread per connection (http.c). Those
 * threads read and check a request (request.c: JSON, UTF-8, types, the
 * chat template, tokenisation, the context limit), then hand a job to the
 * queue (job.c) and wait on it. ONE engine thread (sched.c) owns the model's
 * dc_engine: it takes jobs off the queue, runs every sequence in flight in
 * one dc_engine_decode per step, and writes each job's output (SSE chunks or
 * the final JSON, oai.c) into the job's buffer, which the connection thread
 * sends. A job is reference counted (connection + engine); the last release
 * frees it. A client that goes away sets job->cancel; the engine frees its
 * sequences at the next step.
 *
 *   http.c     libmicrohttpd: routes, body limit, API key, streaming, disconnects
 *   request.c  OpenAI request bodies -> sv_req, or an OpenAI-shaped sv_error
 *   oai.c      OpenAI response bodies: completions, chunks, usage, errors, models
 *   think.c    R1 reasoning split: text up to </think> vs the answer, streaming
 *   job.c      jobs (the hand-over between threads) and the bounded queue
 *   sched.c    the engine thread: admission, batches, sampling, stop strings
 *   prefix.c   the prefix cache of finished conversations' sequences
 *   metrics.c  counters and the Prometheus text of /metrics
 *   page.c     the web chat (chat.html, compiled in)
 *   serve.c    start, load, run, stop (serve.h, for src/cli/cmd_serve.c)
 */
#ifndef DC_SV_H
#define DC_SV_H
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "deepc.h"
#include "serve/serve.h"

/* ---------------------------------------------------------------- buf.c */
/* A growable byte string, always NUL-terminated once anything was added. On
 * allocation failure it sets oom and drops further writes. */
typedef struct buf {
    char *s;
    size_t n, cap;
    int oom;
} buf;
void buf_add(buf *b, const void *p, size_t n);
void buf_str(buf *b, const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void buf_fmt(buf *b, const char *fmt, ...);
void buf_reset(buf *b); /* length 0, memory kept */
void buf_free(buf *b);
/* utf8_valid: the length of the longest valid UTF-8 prefix of s[0,n) (n when
 * all of it is valid; overlong forms, surrogates and > U+10FFFF are invalid). */
size_t utf8_valid(const char *s, size_t n);
/* utf8_lossy: s[0,n) with each invalid byte replaced by U+FFFD. */
void utf8_lossy(buf *out, const char *s, size_t n);

/* ---------------------------------------------------------------- request.c */
enum { SV_CHAT = 0, SV_COMPLETION = 1 };
#define SV_MAX_STOPS 16
#define SV_MAX_TOP_LOGPROBS 20

/* sv_error: what the client is told, as {"error": {message, type, param, code}}. */
typedef struct sv_error {
    int status;        /* HTTP status */
    char message[512];
    char type[40];     /* invalid_request_error, authentication_error, server_error, ... */
    char param[64];    /* "" -> null */
    char code[48];     /* "" -> null */
} sv_error;
#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
int sv_fail(sv_error *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...);

typedef struct sv_prompt {
    int *ids;  /* (n) owned */
    int n;
    char *text; /* the prompt's text for completions' echo (owned; NULL for chat) */
} sv_prompt;

/* sv_req: a checked request. Choices are numbered prompt * n + j. */
typedef struct sv_req {
    int kind;            /* SV_CHAT, SV_COMPLETION */
    int stream, include_usage;
    int n;               /* choices per prompt */
    int n_prompts;
    sv_prompt *prompts;  /* (n_prompts) owned */
    int max_tokens;      /* per choice */
    dc_sampler_params sp;
    int seeded;          /* seed given by the client */
    char *stops[SV_MAX_STOPS]; /* owned */
    int n_stops;
    int logprobs;        /* give each sampled token's logprob */
    int top_logprobs;    /* and this many alternatives */
    int echo;            /* completions: the prompt's text before each choice */
    int ignore_eos;      /* llama.cpp's extension: generate past the end-of-sequence token */
    int think;           /* the prompt ends inside <think>: split reasoning_content off */
} sv_req;

/* What requests are checked against: fixed once the model is loaded. */
typedef struct sv_model_info {
    const dc_tokenizer *tok; /* borrowed */
    char id[128];            /* the name clients give as "model" */
    int chat_style;          /* DC_CHAT_V3 or DC_CHAT_R1 */
    int split_think;         /* R1 reasoning to reasoning_content (else inline) */
    int vocab;
    int ctx;                 /* positions per sequence */
    int max_n;               /* n * prompts at most (the --parallel sequences) */
    long created;
} sv_model_info;

/* sv_parse: body[0,len) of POST /v1/chat/completions (kind SV_CHAT) or
 * /v1/completions into *r (sv_req_free it). Returns 0, or -1 with *e filled
 * (HTTP 4xx). */
int sv_parse(int kind, const char *body, size_t len, const sv_model_info *mi, sv_req *r, sv_error *e);
void sv_req_free(sv_req *r);

/* ---------------------------------------------------------------- think.c */
/* Streaming split of R1 output: bytes before "</think>" are reasoning, those
 * after it (leading newlines dropped) the answer. A tail that could be the
 * start of "</think>" is held back until the next push. */
typedef struct sv_think {
    int in_think;   /* 1 until "</think>" has passed */
    int after;      /* just after it: newlines still being dropped */
    char hold[8];
    size_t n_hold;
} sv_think;
void sv_think_init(sv_think *t, int in_think);
/* sv_think_push: text[0,n) -> appended to reasoning / content. */
void sv_think_push(sv_think *t, const char *text, size_t n, buf *reasoning, buf *content);
/* sv_think_flush: what was held back, at the end of the answer. */
void sv_think_flush(sv_think *t, buf *reasoning, buf *content);

/* ---------------------------------------------------------------- oai.c */
typedef struct sv_usage {
    int prompt, completion, cached; /* cached: prompt tokens taken from the prefix cache */
} sv_usage;
/* sv_meta: what every response of one request repeats. */
typedef struct sv_meta {
    int kind;
    char id[48];        /* chatcmpl-... / cmpl-... */
    long created;
    const char *model;  /* borrowed */
} sv_meta;
/* A choice's finished result, for a non-streamed answer. */
typedef struct sv_choice_out {
    buf content, reasoning;
    const char *finish;       /* "stop", "length" */
    void *logprobs;           /* cJSON array (chat: content entries; completions: see oai.c) or NULL */
} sv_choice_out;

char *oai_error_json(const sv_error *e);          /* malloc'd */
char *oai_models_json(const sv_model_info *mi);   /* malloc'd; GET /v1/models */
char *oai_model_json(const sv_model_info *mi);    /* GET /v1/models/{id} */
/* oai_chunk: one SSE event "data: {...}\n\n" appended to out: a chat delta
 * (role on the first, content and/or reasoning_content) or a completion's
 * text; finish NULL while running; logprobs (cJSON, consumed) or NULL. */
void oai_chunk(buf *out, const sv_meta *m, int index, int first, const char *content, size_t n_content,
               const char *reasoning, size_t n_reasoning, const char *finish, void *logprobs);
/* oai_usage_chunk: the last event when stream_options.include_usage: empty choices, usage. */
void oai_usage_chunk(buf *out, const sv_meta *m, const sv_usage *u);
void oai_done(buf *out); /* "data: [DONE]\n\n" */
/* oai_final: the whole non-streamed body (choices consumed: logprobs freed). */
char *oai_final(const sv_meta *m, sv_choice_out *ch, int n, const sv_usage *u);
/* Logprobs of one token: chat entries {token, logprob, bytes, top_logprobs}
 * appended to arr (a cJSON array); completions fill the four parallel arrays
 * of obj ({tokens, token_logprobs, top_logprobs, text_offset}). */
void *oai_logprobs_new(int kind);
void oai_logprobs_add(void *lp, int kind, const dc_tokenizer *tok, int id, float logprob, const int *top_ids,
                      const float *top_lps, int k, int text_offset);
int oai_logprobs_count(const void *lp, int kind);
void oai_logprobs_free(void *lp);

/* ---------------------------------------------------------------- job.c */
typedef struct sv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;            /* under mu */
    sv_req req;          /* owned; read-only once queued */
    sv_meta meta;
    buf out;             /* bytes for the client not yet taken (under mu) */
    int status;          /* HTTP status of out when not streamed */
    int done;            /* nothing more will be written (under mu) */
    atomic_int cancel;   /* the client went away, or the server is stopping */
    double t_queued;
    struct sv_job *next; /* queue link */
} sv_job;

/* sv_job_new: refs 2 (the connection and the engine); takes over *req. */
sv_job *sv_job_new(sv_req *req, const sv_meta *meta);
void sv_job_release(sv_job *j);
/* engine side */
void sv_job_write(sv_job *j, const char *p, size_t n);
void sv_job_finish(sv_job *j, int status, const char *body, size_t n);
/* sv_job_error: finish with an OpenAI error body (an SSE event when streamed) */
void sv_job_error(sv_job *j, int status, const char *code, const char *msg);
/* connection side: wait up to ms for bytes or the end; move at most max bytes
 * into dst. Returns the bytes moved, 0 on timeout, -1 when done and empty. */
long sv_job_take(sv_job *j, char *dst, size_t max, int ms);

typedef struct sv_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sv_job *head, *tail;
    int depth, max_depth;
    int closed;          /* pushes fail from now on */
} sv_queue;
int sv_queue_init(sv_queue *q, int max_depth);
/* sv_queue_close: refuse pushes from now on; jobs waiting get 503. */
void sv_queue_close(sv_queue *q);
void sv_queue_free(sv_queue *q); /* closes it first */
/* sv_queue_push: 0, or -1 when closed or max_depth jobs wait already. */
int sv_queue_push(sv_queue *q, sv_job *j);
/* sv_queue_pop: the oldest job, waiting up to ms when there is none (0: no wait). */
sv_job *sv_queue_pop(sv_queue *q, int ms);
int sv_queue_depth(sv_queue *q);
void sv_queue_wake(sv_queue *q);

/* ---------------------------------------------------------------- metrics.c */
typedef struct sv_metrics {
    atomic_long http[6];          /* responses by status class: [2] 2xx, [4] 4xx, [5] 5xx */
    atomic_long requests;         /* completions accepted by the queue */
    atomic_long prompt_tokens, gen_tokens, cached_tokens, cancelled;
    atomic_long steps, step_tokens;  /* engine steps, tokens they ran (prefill + decode) */
    atomic_int running, queued;   /* jobs in the engine / waiting */
    atomic_int kv_pages_used, kv_pages, seqs_cached;
    /* generation speed over the last seconds: a ring of (time, tokens) per step */
    pthread_mutex_t mu;
    double ring_t[64];
    long ring_n[64];
    int ring_i;
    double ttft_sum;              /* seconds from queue to first token, summed */
    long ttft_count;
    double started;
} sv_metrics;
void sv_metrics_init(sv_metrics *m);
void sv_metrics_free(sv_metrics *m);
/* sv_metrics_step: an engine step ran batch tokens and generated tokens */
void sv_metrics_step(sv_metrics *m, double now, int batch, int tokens);
void sv_metrics_ttft(sv_metrics *m, double secs);
char *sv_metrics_text(sv_metrics *m, double now);          /* malloc'd Prometheus text */

/* ---------------------------------------------------------------- page.c */
const char *sv_page(size_t *len); /* the web chat, static */

/* ---------------------------------------------------------------- prefix.c */
/* Finished sequences kept with the ids they hold, so a request whose prompt
 * starts the same way forks one and prefills only the rest. */
typedef struct sv_prefix_entry {
    int seq;       /* engine sequence id */
    int *ids;      /* (n) the tokens in its cache, owned */
    int n;
    uint64_t used; /* last use, for LRU */
} sv_prefix_entry;
typedef struct sv_prefix {
    sv_prefix_entry *e;
    int n, cap;
    uint64_t clock;
} sv_prefix;
int sv_prefix_init(sv_prefix *p, int cap);
void sv_prefix_free(sv_prefix *p, dc_engine *e);
/* sv_prefix_match: the entry sharing the longest prefix with ids[0,n) and
 * that length (0 and -1 when none shares anything). */
int sv_prefix_match(sv_prefix *p, const int *ids, int n, int *len);
/* sv_prefix_put: keep seq holding ids[0,n) (copied); takes seq over. An entry
 * that is a prefix of it is replaced; the least recently used one goes when
 * full. */
void sv_prefix_put(sv_prefix *p, dc_engine *e, int seq, const int *ids, int n);
/* sv_prefix_evict: free the least recently used entry; 0, or -1 when empty. */
int sv_prefix_evict(sv_prefix *p, dc_engine *e);

/* ---------------------------------------------------------------- the server */
enum { SV_LOADING = 0, SV_READY = 1, SV_STOPPING = 2 };

struct sv_server {
    serve_opts o;
    struct MHD_Daemon *d;
    int port;
    int listen_fd;         /* after quiescing: the listening socket, closed at the end */
    atomic_int state;
    volatile sig_atomic_t *sig; /* signals seen (serve.c's handler counts them) */
    atomic_int stop_req;   /* serve_stop calls: 1 stop accepting, 2 cancel what runs */
    sv_queue q;
    sv_metrics met;
    atomic_long next_id;
    /* set once before state becomes SV_READY, read-only afterwards */
    sv_model_info mi;
    dc_model *m;           /* borrowed from the caller of serve_set_model */
    dc_engine *e;          /* the engine thread's */
};

/* http.c */
int sv_http_start(sv_server *s, dc_err *err);
void sv_http_quiesce(sv_server *s);
void sv_http_stop(sv_server *s);

/* sched.c: the engine loop; returns when the server stops and no work is left. */
int sv_sched_run(sv_server *s, dc_err *err);

double sv_now(void); /* seconds, monotonic */
#endif
