/*
 * cmd_generate.c — `deepc generate`: complete a prompt, streaming the text to
 * stdout as it is produced; figures on stderr at the end.
 *
 * The prompt is text (-p, through the model's tokenizer, wrapped in the chat
 * template as one user turn unless --raw) or token ids (--prompt-ids, fed as
 * given). Without a tokenizer the output is token ids.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "cli/cli.h"
#include "cli/generate_parallel.h"
#include "cli/infer_cli.h"
#include "base/file.h"
#include "dist/dist.h"
#include "model/model.h"
#include "model/moe_ep.h"

static const char *HELP =
    "usage: deepc generate -m DIR (-p TEXT | --prompt-ids 1,2,3) [-n N] [--temp T] [--top-k K]\n"
    "                      [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--stop STR]...\n"
    "                      [--raw] [--mtp] [--dtype f32|bf16|q8] [--ctx N] [--attn naive|absorb] [--kv-type bf16|f32] [-t N]\n"
    "\n"
    "Streams the completion of a prompt to stdout; prompt and generated token counts\n"
    "and speeds go to stderr at the end.\n"
    "\n"
    "  -m, --model DIR        checkpoint directory (config.json + safetensors [+ tokenizer.json])\n"
    "  -p, --prompt TEXT      the prompt, through the tokenizer; wrapped in the chat template\n"
    "                         as one user turn (--template v3|r1) unless --raw\n"
    "      --prompt-ids LIST  the prompt as comma-separated token ids, fed as given\n"
    "      --raw              -p TEXT as plain text to continue: BOS + TEXT, no template\n"
    "      --template NAME    v3 (default) or r1 (the answer starts inside <think>)\n"
    "  -n, --n-predict N      tokens to generate at most (default 128)\n"
    "      --temp T           temperature; 0 is greedy and deterministic (default 0.6)\n"
    "      --top-k K          keep the K likeliest tokens, 0 = all (default 40)\n"
    "      --top-p P          keep the likeliest tokens with mass P (default 0.95)\n"
    "      --min-p P          drop tokens below P times the likeliest (default 0.05)\n"
    "      --repeat-penalty R penalise the last 64 tokens' logits by R (default 1 = off)\n"
    "      --presence-penalty P, --frequency-penalty F   subtract P + F x count from the logit\n"
    "                         of each token in the last 64 (OpenAI's penalties; default 0)\n"
    "      --seed S           sampling seed: same seed, same text (default: random, printed)\n"
    "      --stop STR         stop when STR appears (not printed); may be repeated\n"
    "      --ignore-eos       do not stop at the end-of-sequence token\n"
    "      --mtp              speculative decoding with the model's MTP module (same output)\n"
    "      --dtype T          weights at run time: f32 (default), bf16, q8 (Q8_0)\n"
    "  -c, --ctx N            KV cache positions (default: prompt + n-predict)\n"
    "      --attn MODE        absorb (latent cache, default) or naive\n"
    CLI_KV_HELP
    "      --tokenizer PATH   a tokenizer.json or directory other than the model's\n"
    "  -t, --threads N        threads (default: all cores)\n"
    "      --ep N             under mpirun -np N: the routed experts split over the N ranks, each\n"
    "                         loading only its own; rank 0 generates (docs/distributed.md)\n";

#define MAX_STOPS 16

typedef struct opts {
    const char *dir, *prompt, *ids, *dtype, *tokp, *file, *prompts;
    long parallel;
    const char *stops[MAX_STOPS];
    int nstops, raw, mtp, attn, kv, ignore_eos, r1;
    long n, ctx, threads, ep;
    dc_sampler_params sp;
} opts;

static int parse(int argc, char **argv, opts *o) {
    static const struct option LONG[] = {
        {"model", 1, 0, 'm'},  {"prompt", 1, 0, 'p'},  {"prompt-ids", 1, 0, 'I'}, {"n-predict", 1, 0, 'n'},
        {"temp", 1, 0, 'T'},   {"top-k", 1, 0, 'k'},   {"top-p", 1, 0, 'P'},      {"min-p", 1, 0, 'M'},
        {"repeat-penalty", 1, 0, 'R'}, {"presence-penalty", 1, 0, CLI_OPT_PRESENCE},
        {"frequency-penalty", 1, 0, CLI_OPT_FREQUENCY}, {"seed", 1, 0, 's'}, {"stop", 1, 0, 'S'},  {"raw", 0, 0, 'r'},
        {"mtp", 0, 0, 'D'},    {"dtype", 1, 0, 'd'},   {"ctx", 1, 0, 'c'},        {"attn", 1, 0, 'a'},
        {"kv-type", 1, 0, CLI_OPT_KV}, {"threads", 1, 0, 't'}, {"tokenizer", 1, 0, 'z'}, {"ignore-eos", 0, 0, 'E'}, {"template", 1, 0, 'Y'},
        {"file", 1, 0, 'f'},   {"parallel", 1, 0, 'L'}, {"prompts", 1, 0, 'F'},  {"ep", 1, 0, 'X'},
        {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->n = 128;
    o->attn = DC_ATTN_ABSORB;
    dc_sampler_defaults(&o->sp);
    o->sp.seed = infer_random_seed(); /* printed at the end: --seed repeats the run */
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:p:n:t:f:c:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': o->dir = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'f': o->file = optarg; break;
        case 'F': o->prompts = optarg; break;
        case 'L':
            if (cli_parse_int(optarg, 1, 4096, &o->parallel))
                return cli_usage_error("generate", "--parallel: bad count '%s' (1..4096)", optarg);
            break;
        case 'I': o->ids = optarg; break;
        case 'X':
            if (cli_parse_int(optarg, 1, 65536, &o->ep)) return cli_usage_error("generate", "--ep: bad rank count '%s'", optarg);
            break;
        case 'r': o->raw = 1; break;
        case 'D': o->mtp = 1; break;
        case 'E': o->ignore_eos = 1; break;
        case 'd': o->dtype = optarg; break;
        case 'z': o->tokp = optarg; break;
        case 'n':
            if (cli_parse_int(optarg, 0, 1 << 30, &o->n)) return cli_usage_error("generate", "-n: bad count '%s'", optarg);
            break;
        case 'c':
            if (cli_parse_int(optarg, 1, 1 << 30, &o->ctx)) return cli_usage_error("generate", "--ctx: bad size '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &o->threads)) return cli_usage_error("generate", "-t: bad thread count '%s'", optarg);
            break;
        case 'S':
            if (o->nstops == MAX_STOPS) return cli_usage_error("generate", "at most %d --stop strings", MAX_STOPS);
            if (!*optarg) return cli_usage_error("generate", "--stop: empty string");
            o->stops[o->nstops++] = optarg;
            break;
        case 'a':
            if (!strcmp(optarg, "naive")) o->attn = DC_ATTN_NAIVE;
            else if (!strcmp(optarg, "absorb")) o->attn = DC_ATTN_ABSORB;
            else return cli_usage_error("generate", "--attn must be naive or absorb, not '%s'", optarg);
            break;
        case CLI_OPT_KV:
            if ((o->kv = cli_parse_kv_type(optarg)) < 0)
                return cli_usage_error("generate", "--kv-type must be bf16 or f32, not '%s'", optarg);
            break;
        case 'Y':
            if (!strcmp(optarg, "v3")) o->r1 = 0;
            else if (!strcmp(optarg, "r1")) o->r1 = 1;
            else return cli_usage_error("generate", "--template must be v3 or r1, not '%s'", optarg);
            break;
        case 'h': fputs(HELP, stdout); return 1;
        default: {
            int r = infer_sampling_opt("generate", ch, optarg, &o->sp);
            if (r != 1) return r ? r : cli_usage_error("generate", "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!o->dir) return cli_usage_error("generate", "-m DIR is required");
    if (o->prompts && !o->parallel) return cli_usage_error("generate", "--prompts FILE needs --parallel N");
    if ((o->prompt != NULL) + (o->ids != NULL) + (o->file != NULL) + (o->prompts != NULL) != 1)
        return cli_usage_error("generate", "give one of -p TEXT, -f FILE, --prompt-ids LIST or --prompts FILE");
    return 0;
}

/* the prompt's ids: given, or the text through the template and tokenizer */
static int prompt_ids(const opts *o, const dc_tokenizer *tok, int **ids, int *n, dc_err *err) {
    if (o->ids) return cli_parse_ids(o->ids, ids, n, err);
    if (o->file) {
        char *text = NULL;
        size_t len;
        int rc = file_read_all(o->file, &text, &len, err);
        if (!rc && !tok) rc = err_set(err, DC_ENOTFOUND, "%s: no tokenizer.json to encode -f FILE", o->dir);
        if (!rc && strlen(text) != len) rc = err_set(err, DC_EARG, "%s: the prompt file holds a NUL byte", o->file);
        if (!rc) rc = infer_encode_prompt(tok, text, o->raw, o->r1, ids, n, err);
        free(text);
        return rc;
    }
    if (!tok) return err_set(err, DC_ENOTFOUND, "%s: no tokenizer.json to encode -p TEXT (use --prompt-ids or --tokenizer)", o->dir);
    return infer_encode_prompt(tok, o->prompt, o->raw, o->r1, ids, n, err);
}

static int on_token(void *ctx, int tok) { return stream_token(ctx, tok); }

/* --prompts FILE: each non-empty line a prompt */
static int read_prompts(const opts *o, const dc_tokenizer *tok, gen_par *g, dc_err *err) {
    char *text = NULL;
    size_t len;
    int rc = file_read_all(o->prompts, &text, &len, err);
    if (rc) return rc;
    if (!tok) rc = err_set(err, DC_ENOTFOUND, "%s: no tokenizer to encode --prompts", o->dir);
    int cap = 0;
    for (char *save = NULL, *line = rc ? NULL : strtok_r(text, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
        if (!*line) continue;
        if (g->n_prompts == cap) {
            cap = cap ? 2 * cap : 16;
            int **p = realloc(g->prompts, sizeof *p * cap), *ni = p ? realloc(g->n_ids, sizeof *ni * cap) : NULL;
            if (p) g->prompts = p;
            if (ni) g->n_ids = ni;
            if (!p || !ni) rc = err_set(err, DC_ENOMEM, "out of memory");
            if (rc) break;
        }
        rc = infer_encode_prompt(tok, line, o->raw, o->r1, &g->prompts[g->n_prompts], &g->n_ids[g->n_prompts], err);
        if (!rc) g->n_prompts++;
    }
    if (!rc && !g->n_prompts) rc = err_set(err, DC_EARG, "%s: no prompts", o->prompts);
    free(text);
    return rc;
}

static int run_parallel(const opts *o, dc_model *m, const dc_tokenizer *tok, dc_err *err) {
    const dc_config *c = dc_model_config(m);
    gen_par g = {.parallel = (int)o->parallel, .max_new = (int)o->n, .mtp = o->mtp, .attn = o->attn, .kv = o->kv, .ctx = (int)o->ctx,
                 .sp = o->sp, .stops = o->stops, .nstops = o->nstops};
    g.eos = o->ignore_eos ? -1 : tok && dc_tokenizer_eos(tok) >= 0 ? dc_tokenizer_eos(tok) : c->eos_token_id;
    int rc;
    if (o->prompts) rc = read_prompts(o, tok, &g, err);
    else {
        g.prompts = malloc(sizeof *g.prompts), g.n_ids = malloc(sizeof *g.n_ids);
        rc = !g.prompts || !g.n_ids ? err_set(err, DC_ENOMEM, "out of memory") : prompt_ids(o, tok, g.prompts, g.n_ids, err);
        g.n_prompts = rc ? 0 : 1;
    }
    g.n = o->prompts ? g.n_prompts : (int)o->parallel;
    if (!rc && o->mtp && c->num_nextn_predict_layers < 1)
        rc = err_set(err, DC_EARG, "%s: --mtp: the model has no MTP module", o->dir);
    if (!rc) rc = generate_parallel(&g, m, tok, err);
    for (int i = 0; i < g.n_prompts; i++) free(g.prompts[i]);
    free(g.prompts), free(g.n_ids);
    return rc;
}

/* ep_report: each rank's share of the experts and its resident weights */
static void ep_report(const dist *d, const dc_model *m) {
    fprintf(stderr, "deepc generate: rank %d of %d: routed experts [%d, %d) of %d, resident weights %.2f MB\n",
            d->ep_rank, d->ep_size, m->ep->e0, m->ep->e0 + m->ep->El, m->ep->E, dc_model_weight_bytes(m) / 1e6);
}

int cmd_generate(int argc, char **argv) {
    opts o;
    int prc = parse(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : prc;
    cli_threads(o.threads);
    dc_err err = {0};
    dc_model *m = NULL;
    dc_tokenizer *tok = NULL;
    dc_session *s = NULL;
    dc_sampler *smp = NULL;
    streamer st = {0};
    int *ids = NULL, n = 0, rc;
    double load_s;
    dist d;
    dist_single(&d);
    if (o.ep > 1 && (rc = dist_init(&d, (int)o.ep, &err))) goto fail;
    if ((rc = infer_load_dist(o.dir, o.dtype, &d, &m, &load_s, &err))) goto fail;
    if (d.ep_size > 1) ep_report(&d, m);
    if (d.ep_rank > 0) { /* an expert owner: serve rank 0 until it is done */
        rc = moe_ep_follow(m->ep, m, &err);
        goto fail;
    }
    if ((rc = infer_tokenizer(o.tokp, o.dir, &tok, &err))) goto fail;
    const dc_config *c = dc_model_config(m);
    if (o.parallel) {
        rc = run_parallel(&o, m, tok, &err);
        goto fail;
    }
    if ((rc = prompt_ids(&o, tok, &ids, &n, &err))) goto fail;
    if (o.mtp && c->num_nextn_predict_layers < 1) {
        rc = err_set(&err, DC_EARG, "%s: --mtp: the model has no MTP module (num_nextn_predict_layers is 0)", o.dir);
        goto fail;
    }
    long ctx = o.ctx ? o.ctx : n + o.n + 2;
    if (ctx < n + 1) {
        rc = err_set(&err, DC_EARG, "--ctx %ld is smaller than the prompt's %d tokens", ctx, n);
        goto fail;
    }
    if ((rc = dc_session_new_kv(m, (int)ctx, o.attn, o.kv, &s, &err))) goto fail;
    if ((rc = dc_sampler_new(&o.sp, c->vocab_size, &smp, &err))) goto fail;
    if ((rc = stream_init(&st, tok, stdout, o.stops, o.nstops, &err))) goto fail;
    int eos = o.ignore_eos ? -1 : tok && dc_tokenizer_eos(tok) >= 0 ? dc_tokenizer_eos(tok) : c->eos_token_id;
    dc_gen_opts go = {.max_new = (int)o.n, .eos = eos, .mtp = o.mtp, .cb = on_token, .ctx = &st};
    dc_gen_stats gs;
    rc = dc_generate(s, smp, ids, n, &go, &gs, &err);
    stream_finish(&st);
    fputc('\n', stdout);
    if (fflush(stdout)) cli_note_write_error(errno); /* cli_finish reports it */
    if (rc) goto fail;
    fprintf(stderr, "deepc generate: %s weights (%.1f MB) loaded in %.2f s, %d threads, seed %llu\n",
            dc_model_dtype(m), dc_model_weight_bytes(m) / 1e6, load_s, cli_get_threads(),
            (unsigned long long)o.sp.seed);
    fprintf(stderr, "deepc generate: prompt %d tokens, prefill %.1f tokens/s; generated %d tokens, decode %.2f tokens/s\n",
            gs.n_prompt, gs.n_prompt / (gs.prefill_s > 0 ? gs.prefill_s : 1e-9), gs.n_gen,
            gs.n_gen / (gs.decode_s > 0 ? gs.decode_s : 1e-9));
    if (gs.ctx_full)
        fprintf(stderr, "deepc generate: the context of %ld positions is full: stopped after %d tokens (raise -c/--ctx)\n",
                ctx, gs.n_gen);
    if (o.mtp)
        fprintf(stderr, "deepc generate: mtp %d of %d drafts accepted (%.1f%%), %.2f tokens per verify step\n",
                gs.n_accept, gs.n_draft, gs.n_draft ? 100.0 * gs.n_accept / gs.n_draft : 0.0,
                gs.n_draft ? (double)(gs.n_gen - 1) / gs.n_draft : 0.0);
fail:
    if (rc) cli_error("generate", &err);
    stream_free(&st);
    free(ids);
    dc_sampler_free(smp);
    dc_session_free(s);
    dc_tokenizer_free(tok);
    if (m && m->ep && d.ep_rank == 0)
        fprintf(stderr, "deepc generate: expert parallel: %ld exchanges, %.1f kB sent by rank 0, %.1f ms in them\n",
                m->ep->exchanges, m->ep->bytes / 1e3, m->ep->secs * 1e3);
    dc_model_free(m); /* on rank 0 of an expert group: releases the others */
    dist_free(&d);
    return rc ? 1 : 0;
}
