/*
 * serve.c — the server's life (serve.h): listen, take a model, run, stop.
 *
 * The HTTP side starts before the model loads, so /health can say 503
 * ("loading") and then 200. The calling thread becomes the engine thread in
 * serve_run. Signals: the connection threads block SIGINT and SIGTERM (they
 * inherit the mask set around MHD_start_daemon), so the engine thread gets
 * them; the handler only counts them and the engine loop looks at the count
 * between steps: one stops accepting connections and lets accepted work
 * finish, two cancel that work too.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "base/file.h"
#include "io/gguf.h"
#include "io/json.h"
#include "serve/sv.h"

static volatile sig_atomic_t g_signals; /* the one process-wide flag a signal handler needs */

static void on_signal(int sig) {
    (void)sig;
    if (g_signals < 2) g_signals++;
}

void serve_defaults(serve_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 4;
    o->ctx = 4096;
    o->batch = 512;
    o->cache = -1;
    o->queue = 64;
    o->max_conn = 128;
    o->body_limit = 1L << 20;
    o->chat_style = -1;
}

int serve_start(const serve_opts *o, sv_server **out, dc_err *err) {
    *out = NULL;
    if (o->parallel < 1 || o->ctx < 2 || o->batch < 1 || o->queue < 1 || o->max_conn < 1 || o->body_limit < 1)
        return err_set(err, DC_EARG, "serve: --parallel, --ctx, --batch, --queue, --max-conn and the body limit must be "
                       "positive (%d, %d, %d, %d, %d, %ld)", o->parallel, o->ctx, o->batch, o->queue, o->max_conn, o->body_limit);
    sv_server *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, DC_ENOMEM, "serve: out of memory");
    s->o = *o;
    if (s->o.cache < 0) s->o.cache = s->o.parallel;
    s->listen_fd = -1;
    sv_queue_init(&s->q, s->o.queue);
    sv_metrics_init(&s->met);
    atomic_store(&s->state, SV_LOADING);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = sv_http_start(s, err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        serve_free(s);
        return rc;
    }
    *out = s;
    return DC_OK;
}

int serve_port(const sv_server *s) { return s->port; }
int serve_ctx(const sv_server *s) { return s->mi.ctx; }

/* model_name: the path's last component, less a .gguf suffix */
static void model_name(const char *path, char *out, size_t cap) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path ? path : "model");
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    const char *b = strrchr(tmp, '/');
    b = b ? b + 1 : tmp;
    snprintf(out, cap, "%s", b);
    n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".gguf")) out[n - 5] = 0;
}

int serve_set_model(sv_server *s, dc_model *m, const dc_tokenizer *tok, int chat_style, dc_err *err) {
    if (!m || !tok) return err_set(err, DC_EARG, "serve: a model and its tokenizer are needed");
    const dc_config *c = dc_model_config(m); /* a tokenizer larger than the vocabulary is allowed (a random model
                                                  on a real tokenizer); prompts with ids beyond it are refused */
    int ctx = s->o.ctx;
    if (c->max_position_embeddings > 0 && ctx > c->max_position_embeddings) ctx = c->max_position_embeddings;
    dc_engine_opts eo;
    dc_engine_defaults(&eo);
    eo.max_seqs = s->o.parallel + s->o.cache;
    eo.max_len = ctx;
    eo.max_batch = s->o.batch;
    eo.n_threads = s->o.threads;
    eo.kv_type = s->o.kv_type;
    int rc = dc_engine_new(m, &eo, &s->e, err);
    if (rc) return rc;
    sv_model_info *mi = &s->mi;
    mi->tok = tok;
    if (s->o.model_id) snprintf(mi->id, sizeof mi->id, "%s", s->o.model_id);
    else model_name(s->o.model_path, mi->id, sizeof mi->id);
    mi->chat_style = chat_style;
    mi->split_think = !s->o.think_inline;
    mi->vocab = c->vocab_size;
    mi->ctx = dc_engine_get_opts(s->e)->max_len;
    mi->max_n = s->o.parallel;
    mi->created = (long)time(NULL);
    s->m = m;
    atomic_store(&s->state, SV_READY);
    return DC_OK;
}

int serve_run(sv_server *s, dc_err *err) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    s->sig = &g_signals;
    return sv_sched_run(s, err);
}

void serve_stop(sv_server *s) {
    if (atomic_load(&s->stop_req) < 2) atomic_fetch_add(&s->stop_req, 1);
    sv_queue_wake(&s->q);
}

void serve_free(sv_server *s) {
    if (!s) return;
    sv_queue_close(&s->q); /* a job pushed after the engine's last look: 503 */
    sv_http_stop(s);       /* connection threads end once their jobs are answered */
    sv_queue_free(&s->q);
    dc_engine_free(s->e);
    sv_metrics_free(&s->met);
    free(s);
}

/* ---------------------------------------------------------------- the template */

static int r1_template(const char *t) { return t && strstr(t, "<｜Assistant｜><think>") != NULL; }

int serve_detect_style(const char *path) {
    size_t n = strlen(path);
    int r1 = 0;
    if (n > 5 && !strcmp(path + n - 5, ".gguf")) {
        gguf g;
        if (gguf_open(&g, path, NULL)) return DC_CHAT_V3;
        gguf_str st;
        if (gguf_find(&g, "tokenizer.chat_template") && !gguf_get_str(&g, "tokenizer.chat_template", &st, NULL)) {
            char *t = strndup(st.s, st.n);
            r1 = r1_template(t);
            free(t);
        }
        gguf_close(&g);
        return r1 ? DC_CHAT_R1 : DC_CHAT_V3;
    }
    char p[4096];
    cJSON *root;
    if (path_join(p, sizeof p, path, "tokenizer_config.json", NULL) || !file_exists(p) || json_read_file(p, &root, NULL))
        return DC_CHAT_V3;
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    r1 = cJSON_IsString(ct) && r1_template(ct->valuestring);
    cJSON_Delete(root);
    return r1 ? DC_CHAT_R1 : DC_CHAT_V3;
}
