/*
 * serve.h — `deepc serve`: an OpenAI-compatible HTTP server with a web chat
 * on the batched engine (docs/serve.md). What src/cli/cmd_serve.c calls:
 *
 *     serve_start(&opts, &srv, &err);     HTTP is up; /health says 503
 *     ... load the model and tokenizer ...
 *     serve_set_model(srv, m, tok, &err); an engine on m; /health says 200
 *     serve_run(srv, &err);               until SIGINT/SIGTERM (installed here)
 *     serve_free(srv);
 *
 * serve_free stops the HTTP side; the model and tokenizer stay the caller's
 * (they must outlive the server).
 */
#ifndef DC_SERVE_H
#define DC_SERVE_H
#include "deepc.h"

typedef struct serve_opts {
    const char *host;      /* address to bind, "127.0.0.1" by default */
    int port;              /* 0: any free port (serve_port tells which) */
    const char *api_key;   /* NULL: none asked */
    const char *model_id;  /* the name /v1/models gives; NULL: the model path's base name */
    const char *model_path;
    int parallel;          /* sequences generated at once (continuous batching) */
    int ctx;               /* positions per sequence */
    int batch;             /* tokens per engine step at most */
    int cache;             /* finished sequences kept for the prefix cache */
    int queue;             /* requests waiting at most (more get 503) */
    int max_conn;          /* open connections at most */
    int threads;           /* engine threads, <= 0: all cores */
    int kv_type;           /* DC_KV_BF16 (default) or DC_KV_F32: the latent cache's elements */
    long body_limit;       /* request bytes at most (413 beyond) */
    int chat_style;        /* -1: from the model's template; DC_CHAT_V3 or DC_CHAT_R1 */
    int think_inline;      /* keep R1 reasoning inside content */
    int verbose;           /* log every request to stderr */
    int ignore_eos;        /* every request as with "ignore_eos": run to max_tokens (benchmarks, tests) */
} serve_opts;

void serve_defaults(serve_opts *o);

typedef struct sv_server sv_server;
/* serve_start: bind and listen (HTTP answers 503 until a model is set). */
int serve_start(const serve_opts *o, sv_server **out, dc_err *err);
/* serve_port: the port bound (the one asked, or the one chosen for 0). */
int serve_port(const sv_server *s);
/* serve_ctx: positions per sequence (--ctx, at most the model's max_position_embeddings) */
int serve_ctx(const sv_server *s);
/* serve_set_model: borrow m and tok; make the engine; requests are served from now. */
int serve_set_model(sv_server *s, dc_model *m, const dc_tokenizer *tok, int chat_style, dc_err *err);
/* serve_run: install SIGINT/SIGTERM handlers and run the engine until one
 * arrives (a first stops accepting and lets accepted work finish, a second
 * cancels it). */
int serve_run(sv_server *s, dc_err *err);
/* serve_stop: what a signal does, from code (tests). */
void serve_stop(sv_server *s);
void serve_free(sv_server *s);

/* serve_detect_style: DC_CHAT_R1 when the chat template beside the model
 * (tokenizer_config.json, or a GGUF's tokenizer.chat_template) opens the
 * answer with "<think>", else DC_CHAT_V3. */
int serve_detect_style(const char *model_path);
#endif
