/*
 * http.c — the HTTP side of `deepc serve`, on libmicrohttpd (sv.h).
 *
 * Why libmicrohttpd: a small, long-kept C library from Debian made for
 * embedding an HTTP/1.1 server (chunked responses for SSE, keep-alive, body
 * streaming, connection limits, timeouts), with nothing else attached.
 *
 * Threads: one per connection (MHD_USE_THREAD_PER_CONNECTION), so a
 * connection may block while it waits for the engine: a non-streamed request
 * waits in the access handler for the whole answer; a streamed one returns
 * a chunked response whose reader blocks until the engine has written more.
 * While either waits it polls the socket for a hang-up (POLLRDHUP) every
 * 100 ms; a client that went away cancels its job, which frees its
 * sequences at the engine's next step.
 *
 * Limits: bodies beyond opts.body_limit are read and dropped (not stored)
 * and answered 413, so the client sees the error rather than a reset;
 * beyond 64 times the limit the connection is closed. Connections are capped
 * (max_conn), idle ones time out, and the queue of waiting jobs is bounded.
 *
 * Routes: GET / (the web chat), /health (200, or 503 while loading),
 * /metrics, /v1/models[/ID]; POST /v1/chat/completions, /v1/completions;
 * OPTIONS for CORS preflight. With --api-key, everything but / and /health
 * needs "Authorization: Bearer KEY".
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "base/err.h"
#include "serve/sv.h"

typedef struct conn {
    sv_server *s;
    struct MHD_Connection *c;
    buf body;
    size_t seen;   /* body bytes received, kept or not */
    int too_big;
    int status;    /* what was answered, for the log */
    double t0;
} conn;

typedef struct stream_ctx {
    sv_job *j;
    struct MHD_Connection *c;
} stream_ctx;

/* client_gone: the peer closed or reset the connection */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void common_headers(struct MHD_Response *r, const char *type) {
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
}

static void count(conn *cn, int status) {
    cn->status = status;
    int cls = status / 100;
    if (cls >= 2 && cls <= 5) atomic_fetch_add(&cn->s->met.http[cls], 1);
}

/* reply: body (malloc'd, taken over, may be NULL for an empty body) */
static enum MHD_Result reply(conn *cn, int status, const char *type, char *body) {
    size_t n = body ? strlen(body) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(n, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                                                : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    common_headers(r, type);
    enum MHD_Result ok = MHD_queue_response(cn->c, status, r);
    MHD_destroy_response(r);
    count(cn, status);
    return ok;
}

static enum MHD_Result reply_json(conn *cn, int status, char *json) {
    if (!json) return reply(cn, 500, "text/plain", strdup("out of memory"));
    return reply(cn, status, "application/json", json);
}

static enum MHD_Result reply_error(conn *cn, const sv_error *e) { return reply_json(cn, e->status, oai_error_json(e)); }

#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
static enum MHD_Result fail(conn *cn, int status, const char *type, const char *param, const char *code,
                            const char *fmt, ...) {
    sv_error e;
    va_list ap;
    va_start(ap, fmt);
    sv_fail(&e, status, type, param, code, "%s", "");
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return reply_error(cn, &e);
}

/* ---------------------------------------------------------------- auth, state */

static int key_matches(const char *got, const char *want) {
    size_t a = strlen(got), b = strlen(want);
    unsigned char d = a != b;
    for (size_t i = 0; i < b; i++) d |= (unsigned char)(i < a ? got[i] : 0) ^ (unsigned char)want[i];
    return d == 0;
}

/* authorized: 1, or 0 after answering 401 */
static int authorized(conn *cn) {
    const char *key = cn->s->o.api_key;
    if (!key) return 1;
    const char *h = MHD_lookup_connection_value(cn->c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) {
        fail(cn, 401, "invalid_request_error", NULL, "missing_api_key",
             "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.");
        return 0;
    }
    if (!key_matches(h + 7, key)) {
        fail(cn, 401, "invalid_request_error", NULL, "invalid_api_key", "Incorrect API key provided.");
        return 0;
    }
    return 1;
}

/* ready: 1, or 0 after answering 503 (loading, or shutting down) */
static int ready(conn *cn) {
    int st = atomic_load(&cn->s->state);
    if (st == SV_READY) return 1;
    fail(cn, 503, "server_error", NULL, st == SV_LOADING ? "model_loading" : "shutting_down",
         st == SV_LOADING ? "The model is still loading; try again shortly (GET /health says 200 when ready)."
                          : "The server is shutting down.");
    return 0;
}

/* ---------------------------------------------------------------- completions */

static ssize_t stream_read(void *cls, uint64_t pos, char *b, size_t max) {
    (void)pos;
    stream_ctx *x = cls;
    for (;;) {
        long k = sv_job_take(x->j, b, max, 100);
        if (k > 0) return (ssize_t)k;
        if (k < 0) return MHD_CONTENT_READER_END_OF_STREAM;
        if (client_gone(x->c)) {
            atomic_store(&x->j->cancel, 1);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls) {
    stream_ctx *x = cls;
    atomic_store(&x->j->cancel, 1); /* a no-op when the job is done; else the client left */
    sv_job_release(x->j);
    free(x);
}

static enum MHD_Result reply_stream(conn *cn, sv_job *j) {
    stream_ctx *x = malloc(sizeof *x);
    struct MHD_Response *r = x ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, x, stream_free)
                               : NULL;
    if (!r) {
        free(x);
        atomic_store(&j->cancel, 1);
        sv_job_release(j);
        return MHD_NO;
    }
    x->j = j, x->c = cn->c;
    common_headers(r, "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(cn->c, 200, r);
    MHD_destroy_response(r);
    count(cn, 200);
    return ok;
}

/* reply_wait: a non-streamed answer: wait for the whole body */
static enum MHD_Result reply_wait(conn *cn, sv_job *j) {
    buf b = {0};
    char tmp[16384];
    for (;;) {
        long k = sv_job_take(j, tmp, sizeof tmp, 100);
        if (k > 0) buf_add(&b, tmp, (size_t)k);
        if (k < 0) break;
        if (!k && client_gone(cn->c)) {
            atomic_store(&j->cancel, 1);
            sv_job_release(j);
            buf_free(&b);
            cn->status = 499;
            return MHD_NO;
        }
    }
    int status = j->status; /* done: the engine writes no more */
    sv_job_release(j);
    if (b.oom) {
        buf_free(&b);
        return reply(cn, 500, "text/plain", strdup("out of memory"));
    }
    return reply_json(cn, status, b.s ? b.s : strdup("{}"));
}

/* unseeded: a seed for a request that gave none (splitmix64 of the clock and its number) */
static uint64_t unseeded(long id) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t z = ((uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec) ^ ((uint64_t)id << 40);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static enum MHD_Result completion(conn *cn, int kind) {
    sv_server *s = cn->s;
    if (!authorized(cn) || !ready(cn)) return MHD_YES;
    if (cn->too_big)
        return fail(cn, 413, "invalid_request_error", NULL, "request_too_large",
                    "The request body of %zu bytes exceeds this server's limit of %ld bytes.", cn->seen, s->o.body_limit);
    sv_req r;
    sv_error e;
    if (sv_parse(kind, cn->body.s ? cn->body.s : "", cn->body.n, &s->mi, &r, &e)) return reply_error(cn, &e);
    buf_free(&cn->body);
    long id = atomic_fetch_add(&s->next_id, 1);
    if (!r.seeded) r.sp.seed = unseeded(id); /* each unseeded request draws differently */
    sv_meta meta = {.kind = kind, .created = (long)time(NULL), .model = s->mi.id};
    snprintf(meta.id, sizeof meta.id, "%s-%lx%06ld", kind == SV_CHAT ? "chatcmpl" : "cmpl", (long)meta.created, id);
    sv_job *j = sv_job_new(&r, &meta);
    if (!j) {
        sv_req_free(&r);
        return fail(cn, 500, "server_error", NULL, NULL, "out of memory");
    }
    if (sv_queue_push(&s->q, j)) {
        sv_job_release(j);
        sv_job_release(j);
        return fail(cn, 503, "server_error", NULL, "server_overloaded",
                    "%d requests are waiting already; try again shortly.", s->o.queue);
    }
    return j->req.stream ? reply_stream(cn, j) : reply_wait(cn, j);
}

/* ---------------------------------------------------------------- routes */

static enum MHD_Result models(conn *cn, const char *url) {
    sv_server *s = cn->s;
    if (!authorized(cn) || !ready(cn)) return MHD_YES;
    if (!strcmp(url, "/v1/models")) return reply_json(cn, 200, oai_models_json(&s->mi));
    const char *id = url + strlen("/v1/models/");
    if (!strcmp(id, s->mi.id)) return reply_json(cn, 200, oai_model_json(&s->mi));
    return fail(cn, 404, "invalid_request_error", "model", "model_not_found", "The model `%.100s` does not exist.", id);
}

static enum MHD_Result health(conn *cn) {
    int st = atomic_load(&cn->s->state);
    if (st == SV_READY) return reply_json(cn, 200, strdup("{\"status\":\"ok\"}"));
    return reply_json(cn, 503, strdup(st == SV_LOADING ? "{\"status\":\"loading\"}" : "{\"status\":\"stopping\"}"));
}

static enum MHD_Result metrics(conn *cn) {
    if (!authorized(cn)) return MHD_YES;
    sv_server *s = cn->s;
    atomic_store(&s->met.queued, sv_queue_depth(&s->q));
    return reply(cn, 200, "text/plain; version=0.0.4", sv_metrics_text(&s->met, sv_now()));
}

static enum MHD_Result page(conn *cn) {
    size_t n;
    const char *p = sv_page(&n);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    common_headers(r, "text/html; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ok = MHD_queue_response(cn->c, 200, r);
    MHD_destroy_response(r);
    count(cn, 200);
    return ok;
}

static enum MHD_Result preflight(conn *cn) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    enum MHD_Result ok = MHD_queue_response(cn->c, 204, r);
    MHD_destroy_response(r);
    count(cn, 204);
    return ok;
}

static enum MHD_Result route(conn *cn, const char *url, const char *method) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(method, "OPTIONS")) return preflight(cn);
    int is_post_path = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/completions");
    int is_get_path = !strcmp(url, "/") || !strcmp(url, "/index.html") || !strcmp(url, "/health") ||
                      !strcmp(url, "/metrics") || !strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11);
    if (post && is_post_path) return completion(cn, strcmp(url, "/v1/completions") ? SV_CHAT : SV_COMPLETION);
    if (get && is_get_path) {
        if (!strcmp(url, "/health")) return health(cn);
        if (!strcmp(url, "/metrics")) return metrics(cn);
        if (!strncmp(url, "/v1/models", 10)) return models(cn, url);
        return page(cn);
    }
    if (is_post_path || is_get_path)
        return fail(cn, 405, "invalid_request_error", NULL, "method_not_allowed", "%.16s is not allowed on %.200s.",
                    method, url);
    return fail(cn, 404, "invalid_request_error", NULL, "unknown_url", "Unknown request URL: %.16s %.200s.", method, url);
}

/* ---------------------------------------------------------------- MHD callbacks */

static void body_chunk(conn *cn, const char *data, size_t n) {
    long limit = cn->s->o.body_limit;
    cn->seen += n;
    if (cn->too_big) return;
    if (cn->seen > (size_t)limit) {
        cn->too_big = 1;
        buf_free(&cn->body);
        return;
    }
    buf_add(&cn->body, data, n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **ptr) {
    (void)version;
    conn *cn = *ptr;
    if (!cn) {
        if (!(cn = calloc(1, sizeof *cn))) return MHD_NO;
        cn->s = cls, cn->c = c, cn->t0 = sv_now();
        *ptr = cn;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtod(cl, NULL) > (double)cn->s->o.body_limit) cn->too_big = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        body_chunk(cn, upload, *upload_size);
        *upload_size = 0;
        /* reading and dropping is for a polite 413; a flood gets the door */
        return cn->seen > 64 * (size_t)cn->s->o.body_limit ? MHD_NO : MHD_YES;
    }
    return route(cn, url, method);
}

static void on_done(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode why) {
    (void)c;
    sv_server *s = cls;
    conn *cn = *ptr;
    if (!cn) return;
    if (s->o.verbose) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char host[64] = "?";
        if (ci && ci->client_addr)
            getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                                 : sizeof(struct sockaddr_in),
                        host, sizeof host, NULL, 0, NI_NUMERICHOST);
        fprintf(stderr, "deepc serve: %s %d %.1f ms%s\n", host, cn->status, (sv_now() - cn->t0) * 1e3,
                why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    }
    buf_free(&cn->body);
    free(cn);
    *ptr = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    sv_server *s = cls;
    if (!s->o.verbose) return;
    fprintf(stderr, "deepc serve: libmicrohttpd: ");
    vfprintf(stderr, fmt, ap);
}

int sv_http_start(sv_server *s, dc_err *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    int g = getaddrinfo(s->o.host, port, &hints, &ai);
    if (g) return err_set(err, DC_EARG, "serve: cannot use the address '%s': %s", s->o.host, gai_strerror(g));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, (uint16_t)s->o.port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_conn,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, s,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) return err_set(err, DC_EIO, "serve: cannot listen on %s:%d (in use, or not an address of this machine)",
                              s->o.host, s->o.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return DC_OK;
}

/* sv_http_quiesce: accept no new connections; the listening socket is ours
 * to close, after MHD_stop_daemon (a connection thread may still look at it) */
void sv_http_quiesce(sv_server *s) {
    if (s->d && s->listen_fd < 0) s->listen_fd = MHD_quiesce_daemon(s->d);
}

void sv_http_stop(sv_server *s) {
    if (s->d) MHD_stop_daemon(s->d);
    s->d = NULL;
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
}
