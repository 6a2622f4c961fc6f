/*
 * cmd_serve.c — `deepc serve`: an OpenAI-compatible HTTP server with a web
 * chat (src/serve/, docs/serve.md). Parses options, starts listening, loads
 * the model (while /health says 503), then serves until SIGINT/SIGTERM.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/err.h"
#include "cli/cli.h"
#include "cli/infer_cli.h"
#include "dist/dist.h"
#include "model/model.h"
#include "model/moe_ep.h"
#include "serve/serve.h"

static const char *HELP =
    "usage: deepc serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx N]\n"
    "                   [--api-key KEY] [-t N] [--dtype T] [--template auto|v3|r1] [--think split|inline]\n"
    "                   [--alias NAME] [--batch N] [--cache N] [--queue N] [--max-conn N]\n"
    "                   [--body-limit BYTES] [--tokenizer PATH] [--ignore-eos] [-v]\n"
    "\n"
    "Serves the model over HTTP with the OpenAI API (POST /v1/chat/completions,\n"
    "/v1/completions; GET /v1/models, /health, /metrics) and a web chat at /.\n"
    "Requests are batched continuously on one engine; a prompt that starts like an\n"
    "earlier conversation reuses its cache. SIGINT/SIGTERM stop accepting and finish\n"
    "the requests in flight (a second one cancels them); the exit status is 0.\n"
    "\n"
    "  -m, --model PATH       checkpoint directory (with tokenizer.json) or .gguf\n"
    "      --host ADDR        address to listen on (default 127.0.0.1: this machine only)\n"
    "      --port N           TCP port (default 8080; 0: any free one, printed)\n"
    "      --parallel N       sequences generated at once (default 4); more requests queue\n"
    "      --ctx N            positions per sequence: prompt + answer (default 4096)\n"
    "      --api-key KEY      require 'Authorization: Bearer KEY' (or $DEEPC_API_KEY)\n"
    "  -t, --threads N        engine threads (default: all cores)\n"
    "      --kv-type T        the latent KV cache's elements: bf16 (default, half the bytes) or f32\n"
    "      --dtype T          weights at run time: f32, bf16, f16, q8, q4_0, q4_1, q5_0, q5_1, q2_k,\n"
    "                         q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, fp8 (default: as loaded)\n"
    "      --template NAME    chat template: auto (from the model's, default), v3, r1\n"
    "      --think MODE       R1 reasoning: split into reasoning_content (default) or inline\n"
    "      --alias NAME       the model's name in the API (default: the path's base name)\n"
    "      --batch N          tokens per engine step at most (default 512)\n"
    "      --cache N          finished conversations kept for the prefix cache (default: --parallel)\n"
    "      --queue N          requests waiting at most; more get 503 (default 64)\n"
    "      --max-conn N       open connections at most (default 128)\n"
    "      --body-limit N     request body bytes at most; more get 413 (default 1048576)\n"
    "      --tokenizer PATH   a tokenizer.json or directory other than the model's\n"
    "      --ep N             under mpirun -np N: the routed experts split over the N ranks, each\n"
    "                         loading only its own; rank 0 serves (docs/distributed.md)\n"
    "      --ignore-eos       generate past the end-of-sequence token: every answer runs to its\n"
    "                         max_tokens (as llama-server's; for benchmarks and tests)\n"
    "  -v, --verbose          log each request to stderr\n";

typedef struct sopts {
    serve_opts so;
    const char *dtype, *tokp;
    long ep;
} sopts;

static int num(const char *opt, const char *arg, long lo, long hi, long *out) {
    if (cli_parse_int(arg, lo, hi, out)) return cli_usage_error("serve", "%s: bad value '%s' (%ld..%ld)", opt, arg, lo, hi);
    return 0;
}

static int parse_choice(int ch, const char *arg, sopts *o) {
    if (ch == 'Y') {
        if (!strcmp(arg, "auto")) o->so.chat_style = -1;
        else if (!strcmp(arg, "v3")) o->so.chat_style = DC_CHAT_V3;
        else if (!strcmp(arg, "r1")) o->so.chat_style = DC_CHAT_R1;
        else return cli_usage_error("serve", "--template must be auto, v3 or r1, not '%s'", arg);
        return 0;
    }
    if (!strcmp(arg, "split")) o->so.think_inline = 0;
    else if (!strcmp(arg, "inline")) o->so.think_inline = 1;
    else return cli_usage_error("serve", "--think must be split or inline, not '%s'", arg);
    return 0;
}

static int parse_num(int ch, const char *arg, sopts *o) {
    long v = 0;
    int rc = 0;
    switch (ch) {
    case 'p': rc = num("--port", arg, 0, 65535, &v), o->so.port = (int)v; break;
    case 'P': rc = num("--parallel", arg, 1, 4096, &v), o->so.parallel = (int)v; break;
    case 'c': rc = num("--ctx", arg, 2, 1 << 24, &v), o->so.ctx = (int)v; break;
    case 't': rc = num("-t", arg, 0, 4096, &v), o->so.threads = (int)v; break;
    case 'b': rc = num("--batch", arg, 1, 1 << 20, &v), o->so.batch = (int)v; break;
    case 'C': rc = num("--cache", arg, 0, 4096, &v), o->so.cache = (int)v; break;
    case 'q': rc = num("--queue", arg, 1, 1 << 20, &v), o->so.queue = (int)v; break;
    case 'x': rc = num("--max-conn", arg, 1, 1 << 16, &v), o->so.max_conn = (int)v; break;
    case 'L': rc = num("--body-limit", arg, 1024, 1L << 31, &v), o->so.body_limit = v; break;
    case 'X': rc = num("--ep", arg, 1, 65536, &o->ep); break;
    default: return cli_usage_error("serve", "bad option");
    }
    return rc;
}

static int parse(int argc, char **argv, sopts *o) {
    static const struct option LONG[] = {
        {"model", 1, 0, 'm'},   {"host", 1, 0, 'H'},    {"port", 1, 0, 'p'},     {"parallel", 1, 0, 'P'},
        {"ctx", 1, 0, 'c'},     {"api-key", 1, 0, 'k'}, {"threads", 1, 0, 't'},  {"dtype", 1, 0, 'd'},
        {"template", 1, 0, 'Y'}, {"think", 1, 0, 'K'},  {"alias", 1, 0, 'a'},    {"batch", 1, 0, 'b'},
        {"cache", 1, 0, 'C'},   {"queue", 1, 0, 'q'},   {"max-conn", 1, 0, 'x'}, {"body-limit", 1, 0, 'L'},
        {"tokenizer", 1, 0, 'z'}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'},   {"ep", 1, 0, 'X'},
        {"ignore-eos", 0, 0, 'E'}, {"kv-type", 1, 0, CLI_OPT_KV}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    serve_defaults(&o->so);
    o->so.api_key = getenv("DEEPC_API_KEY");
    int ch, rc;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:t:vh", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': o->so.model_path = optarg; break;
        case 'H': o->so.host = optarg; break;
        case 'k': o->so.api_key = optarg; break;
        case 'd': o->dtype = optarg; break;
        case 'a': o->so.model_id = optarg; break;
        case 'z': o->tokp = optarg; break;
        case 'v': o->so.verbose = 1; break;
        case 'E': o->so.ignore_eos = 1; break;
        case CLI_OPT_KV:
            if ((o->so.kv_type = cli_parse_kv_type(optarg)) < 0)
                return cli_usage_error("serve", "--kv-type must be bf16 or f32, not '%s'", optarg);
            break;
        case 'Y':
        case 'K':
            if ((rc = parse_choice(ch, optarg, o))) return rc;
            break;
        case 'h': fputs(HELP, stdout); return 1;
        default:
            if ((rc = parse_num(ch, optarg, o))) return rc;
        }
    }
    if (optind < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!o->so.model_path) return cli_usage_error("serve", "-m MODEL is required");
    if (o->so.api_key && !*o->so.api_key) o->so.api_key = NULL;
    if (o->so.batch < o->so.parallel) o->so.batch = o->so.parallel;
    return 0;
}

/* expert_owner: ranks 1.. of `--ep N`: load this rank's experts and serve
 * them to rank 0 (moe_ep.h) until its model is freed */
static int expert_owner(const sopts *o, const dist *d, dc_err *err) {
    dc_model *m = NULL;
    int rc = infer_load_dist(o->so.model_path, o->dtype, d, &m, NULL, err);
    if (!rc) {
        fprintf(stderr, "deepc serve: rank %d of %d: routed experts [%d, %d), resident weights %.2f MB\n", d->ep_rank,
                d->ep_size, m->ep->e0, m->ep->e0 + m->ep->El, dc_model_weight_bytes(m) / 1e6);
        rc = moe_ep_follow(m->ep, m, err);
    }
    dc_model_free(m);
    return rc;
}

int cmd_serve(int argc, char **argv) {
    sopts o;
    int prc = parse(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : prc;
    cli_threads(o.so.threads);
    dc_err err = {0};
    sv_server *srv = NULL;
    dc_model *m = NULL;
    dc_tokenizer *tok = NULL;
    double load_s = 0;
    dist d;
    dist_single(&d);
    int rc = o.ep > 1 ? dist_init(&d, (int)o.ep, &err) : DC_OK;
    if (!rc && d.ep_rank > 0) {
        rc = expert_owner(&o, &d, &err);
        goto done;
    }
    if (!rc) rc = serve_start(&o.so, &srv, &err);
    if (rc) goto done;
    const char *h = o.so.host, *lb = strchr(h, ':') ? "[" : "", *rb = *lb ? "]" : ""; /* IPv6 in brackets */
    fprintf(stderr, "deepc serve: listening on http://%s%s%s:%d/ (loading %s)\n", lb, h, rb, serve_port(srv), o.so.model_path);
    const char *delay = getenv("DEEPC_SERVE_TEST_LOAD_DELAY_MS"); /* tests: a slow load, to see /health say 503 */
    if (delay) usleep((useconds_t)atoi(delay) * 1000);
    if ((rc = infer_load_dist(o.so.model_path, o.dtype, &d, &m, &load_s, &err))) goto done;
    if ((rc = infer_tokenizer(o.tokp, o.so.model_path, &tok, &err))) goto done;
    if (!tok) {
        rc = err_set(&err, DC_ENOTFOUND, "%s: serving needs a tokenizer (tokenizer.json beside the model, or --tokenizer)",
                     o.so.model_path);
        goto done;
    }
    int style = o.so.chat_style >= 0 ? o.so.chat_style : serve_detect_style(o.so.model_path);
    if ((rc = serve_set_model(srv, m, tok, style, &err))) goto done;
    fprintf(stderr, "deepc serve: ready in %.1f s: %s weights, %d threads, %d parallel, ctx %d, template %s%s; "
            "web chat at http://%s%s%s:%d/\n", load_s, dc_model_dtype(m), cli_get_threads(), o.so.parallel, serve_ctx(srv),
            style == DC_CHAT_R1 ? "r1" : "v3", o.so.api_key ? ", API key required" : "", lb, h, rb, serve_port(srv));
    rc = serve_run(srv, &err);
    if (!rc) fprintf(stderr, "deepc serve: stopped\n");
done:
    if (rc) cli_error("serve", &err);
    serve_free(srv);
    dc_tokenizer_free(tok);
    dc_model_free(m); /* on rank 0 of an expert group: releases the others */
    dist_free(&d);
    return rc ? 1 : 0;
}
