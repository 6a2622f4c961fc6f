/*
 * cmd_chat.c — `deepc chat`: a conversation in the terminal (or through a
 * pipe: one user message per line on stdin, the answers on stdout).
 *
 * Each turn feeds only what is new to the cache (the KV cache of earlier
 * turns is kept): the template's text for the new user message, i.e.
 * render([user], generation prompt) less render([]) (the BOS), preceded by
 * the last answer's final token, which generation leaves unfed, and an EOS
 * when the answer was cut short (Ctrl-C, the token limit). The first turn
 * feeds the whole rendered prompt (BOS, system text, user turn).
 * Reasoning between <think> and </think> is printed dimmed (on a terminal) or
 * hidden. Ctrl-C stops the current answer; at the prompt it only clears the
 * line. /reset, /save FILE, /load FILE, /exit (or end of input). On a
 * terminal, when built with libedit (Debian's libedit-dev, found by
 * pkg-config), lines can be edited and earlier messages recalled.
 * Saving closes the open answer (feeds its last token and EOS); the MTP
 * cache then lags the main one, and later turns decode without MTP until
 * /reset (the output is the same either way).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/err.h"
#include "cli/cli.h"
#include "cli/infer_cli.h"
#ifdef DC_LIBEDIT
#include <editline/readline.h>
#endif

static const char *HELP =
    "usage: deepc chat -m DIR [--system TEXT] [--think show|hide] [--template v3|r1] [-n N]\n"
    "                  [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]\n"
    "                  [--seed S] [--mtp] [--dtype f32|bf16|q8] [--ctx N] [--attn MODE] [--kv-type T] [-t N]\n"
    "\n"
    "An interactive conversation with the model's chat template. One message per line;\n"
    "Ctrl-C stops the current answer. Commands: /reset (forget the conversation),\n"
    "/save FILE and /load FILE (the conversation's cache), /exit.\n"
    "\n"
    "  -m, --model DIR      checkpoint directory with tokenizer.json\n"
    "      --system TEXT    a system prompt\n"
    "      --think MODE     show (dimmed on a terminal; default) or hide the reasoning\n"
    "      --template NAME  v3 (default) or r1 (answers start inside <think>)\n"
    "  -n, --n-predict N    tokens per answer at most (default 1024)\n"
    "      --ctx N          KV cache positions for the whole conversation (default 4096)\n"
    "      --temp, --top-k, --top-p, --min-p, --repeat-penalty, --presence-penalty,\n"
    "      --frequency-penalty, --seed, --mtp, --dtype,\n"
    "      --attn, --kv-type, --tokenizer, -t   as for deepc generate\n";

static volatile int g_cancel;
static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
}

typedef struct chat {
    dc_session *s;
    dc_sampler *smp;
    dc_tokenizer *tok;
    streamer st;
    const char *system;
    int r1, hide, mtp, max_new, eos, think_open, think_close;
    int *ids, nids, cap; /* ids in the cache */
    int pending;          /* the last answer's final token, not yet in the cache; -1 none */
    int ngen, last;
} chat;

static int on_token(void *ctx, int tok) {
    chat *c = ctx;
    c->ngen++;
    c->last = tok;
    c->ids[c->nids++] = tok; /* room reserved before generation */
    if (tok == c->eos) return 1; /* EOS itself is not printed */
    if (tok == c->think_open) stream_style(&c->st, c->hide ? STREAM_HIDE : STREAM_DIM);
    stream_token(&c->st, tok);
    if (tok == c->think_close) stream_style(&c->st, STREAM_PLAIN);
    return 0;
}

/* the ids of this turn: [pending [EOS]] + the template's text for the message */
static int turn_ids(chat *c, const char *msg, int **ids, int *n, dc_err *err) {
    dc_chat_msg m[2] = {{.role = "system", .content = c->system}, {.role = "user", .content = msg}};
    int first = c->nids == 0 && c->pending < 0, rc;
    const dc_chat_msg *mm = first && c->system ? m : m + 1;
    int nm = first && c->system ? 2 : 1;
    char *full = NULL, *base = NULL;
    int style = c->r1 ? DC_CHAT_R1 : DC_CHAT_V3;
    if ((rc = dc_chat_render(style, mm, nm, 1, &full, err))) return rc;
    if ((rc = dc_chat_render(style, NULL, 0, 0, &base, err))) {
        free(full);
        return rc;
    }
    const char *text = full;
    if (!first && strncmp(full, base, strlen(base)) == 0) text += strlen(base);
    size_t k = 0;
    int *enc = NULL;
    rc = dc_tokenizer_encode(c->tok, text, strlen(text), DC_TOK_SPECIAL, &enc, &k, err);
    free(full);
    free(base);
    if (rc) return rc;
    int head = c->pending >= 0 ? 1 + (c->pending != c->eos) : 0;
    int *v = malloc(sizeof(int) * (k + head + 1));
    if (!v) {
        free(enc);
        return err_set(err, DC_ENOMEM, "chat: out of memory");
    }
    if (head) v[0] = c->pending;
    if (head == 2) v[1] = c->eos;
    memcpy(v + head, enc, sizeof(int) * k);
    free(enc);
    *ids = v;
    *n = (int)k + head;
    return DC_OK;
}

static int reserve_ids(chat *c, int more) {
    if (c->nids + more <= c->cap) return 0;
    int cap = c->nids + more + 256;
    int *ni = realloc(c->ids, sizeof(int) * cap);
    if (!ni) return -1;
    c->ids = ni, c->cap = cap;
    return 0;
}

static int answer(chat *c, const char *msg, dc_err *err) {
    int *ids = NULL, n = 0;
    int rc = turn_ids(c, msg, &ids, &n, err);
    if (rc) return rc;
    /* the turn's n tokens, max_new - 1 fed answer tokens, then the last one
     * and EOS when the answer is closed: n + max_new + 1 positions */
    int room = dc_session_max_ctx(c->s) - dc_session_pos(c->s);
    if (n + 2 > room) {
        free(ids);
        return err_set(err, DC_EARG, "the conversation fills the context of %d positions (/reset, or a larger --ctx)",
                       dc_session_max_ctx(c->s));
    }
    int max_new = c->max_new < room - n - 1 ? c->max_new : room - n - 1;
    if (reserve_ids(c, n + max_new + 1)) {
        free(ids);
        return err_set(err, DC_ENOMEM, "chat: out of memory");
    }
    memcpy(c->ids + c->nids, ids, sizeof(int) * n);
    c->nids += n;
    stream_clear(&c->st);
    stream_style(&c->st, c->r1 ? (c->hide ? STREAM_HIDE : STREAM_DIM) : STREAM_PLAIN);
    c->ngen = 0;
    g_cancel = 0;
    dc_gen_opts go = {.max_new = max_new, .eos = c->eos, .mtp = c->mtp, .cb = on_token, .ctx = c, .cancel = &g_cancel};
    dc_gen_stats gs;
    rc = dc_generate(c->s, c->smp, ids, n, &go, &gs, err);
    free(ids);
    stream_finish(&c->st);
    stream_style(&c->st, STREAM_PLAIN);
    fputc('\n', stdout);
    fflush(stdout);
    if (rc) { /* the cache holds what it holds: start over */
        dc_session_reset(c->s);
        c->nids = 0, c->pending = -1;
        return rc;
    }
    /* the last generated token is not in the cache yet */
    c->pending = c->ngen ? c->last : -1;
    if (c->ngen) c->nids--;
    if (g_cancel && isatty(2)) fprintf(stderr, "[stopped]\n");
    if (isatty(2))
        fprintf(stderr, "\033[2m[%d tokens, %.1f tokens/s%s]\033[0m\n", gs.n_gen,
                gs.n_gen / (gs.decode_s > 0 ? gs.decode_s : 1e-9),
                gs.mtp_used ? "" : c->mtp ? ", MTP off: caches out of step" : "");
    return DC_OK;
}

/* close the open answer so the cache stands alone: feed pending [+ EOS] */
static int close_answer(chat *c, dc_err *err) {
    if (c->pending < 0) return DC_OK;
    int v[2] = {c->pending, c->eos}, n = c->pending == c->eos ? 1 : 2;
    if (dc_session_pos(c->s) + n > dc_session_max_ctx(c->s))
        return err_set(err, DC_EARG, "the context is full (/reset, or a larger --ctx)");
    if (reserve_ids(c, n)) return err_set(err, DC_ENOMEM, "chat: out of memory");
    int rc = dc_forward(c->s, v, n, NULL, 0, err);
    if (rc) return rc;
    memcpy(c->ids + c->nids, v, sizeof(int) * n);
    c->nids += n;
    c->pending = -1;
    return DC_OK;
}

static int command(chat *c, const char *line, int *quit, dc_err *err) {
    const char *arg = strchr(line, ' ');
    while (arg && *arg == ' ') arg++;
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) {
        *quit = 1;
        return DC_OK;
    }
    if (!strcmp(line, "/reset")) {
        dc_session_reset(c->s);
        c->nids = 0, c->pending = -1;
        fprintf(stderr, "[conversation reset]\n");
        return DC_OK;
    }
    if (!strncmp(line, "/save", 5) && (line[5] == ' ' || !line[5])) {
        if (!arg || !*arg) return err_set(err, DC_EARG, "/save needs a file name");
        int rc = close_answer(c, err);
        if (!rc) rc = dc_session_save(c->s, c->ids, c->nids, arg, err);
        if (!rc) fprintf(stderr, "[saved %d positions to %s]\n", c->nids, arg);
        return rc;
    }
    if (!strncmp(line, "/load", 5) && (line[5] == ' ' || !line[5])) {
        if (!arg || !*arg) return err_set(err, DC_EARG, "/load needs a file name");
        int *ids, n;
        int rc = dc_session_load(c->s, arg, &ids, &n, err);
        if (rc) return rc;
        free(c->ids);
        c->ids = ids, c->nids = c->cap = n, c->pending = -1;
        fprintf(stderr, "[loaded %d positions from %s]\n", n, arg);
        return DC_OK;
    }
    return err_set(err, DC_EARG, "unknown command %s (/reset, /save FILE, /load FILE, /exit)", line);
}

typedef struct copts {
    const char *dir, *system, *dtype, *tokp;
    int think_hide, r1, mtp, attn, kv;
    long n, ctx, threads;
    dc_sampler_params sp;
} copts;

static int parse(int argc, char **argv, copts *o) {
    static const struct option LONG[] = {
        {"model", 1, 0, 'm'}, {"system", 1, 0, 'y'}, {"think", 1, 0, 'K'}, {"template", 1, 0, 'Y'},
        {"n-predict", 1, 0, 'n'}, {"temp", 1, 0, 'T'}, {"top-k", 1, 0, 'k'}, {"top-p", 1, 0, 'P'},
        {"min-p", 1, 0, 'M'}, {"repeat-penalty", 1, 0, 'R'},
        {"presence-penalty", 1, 0, CLI_OPT_PRESENCE}, {"frequency-penalty", 1, 0, CLI_OPT_FREQUENCY}, {"seed", 1, 0, 's'}, {"mtp", 0, 0, 'D'},
        {"dtype", 1, 0, 'd'}, {"ctx", 1, 0, 'c'}, {"attn", 1, 0, 'a'}, {"kv-type", 1, 0, CLI_OPT_KV}, {"threads", 1, 0, 't'},
        {"tokenizer", 1, 0, 'z'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->n = 1024;
    o->ctx = 4096;
    o->attn = DC_ATTN_ABSORB;
    dc_sampler_defaults(&o->sp);
    o->sp.seed = infer_random_seed(); /* printed at the start: --seed repeats the sampling */
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:n:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': o->dir = optarg; break;
        case 'y': o->system = optarg; break;
        case 'D': o->mtp = 1; break;
        case 'd': o->dtype = optarg; break;
        case 'z': o->tokp = optarg; break;
        case 'K':
            if (!strcmp(optarg, "show")) o->think_hide = 0;
            else if (!strcmp(optarg, "hide")) o->think_hide = 1;
            else return cli_usage_error("chat", "--think must be show or hide, not '%s'", optarg);
            break;
        case 'Y':
            if (!strcmp(optarg, "v3")) o->r1 = 0;
            else if (!strcmp(optarg, "r1")) o->r1 = 1;
            else return cli_usage_error("chat", "--template must be v3 or r1, not '%s'", optarg);
            break;
        case 'n':
            if (cli_parse_int(optarg, 1, 1 << 30, &o->n)) return cli_usage_error("chat", "-n: bad count '%s'", optarg);
            break;
        case 'c':
            if (cli_parse_int(optarg, 16, 1 << 30, &o->ctx)) return cli_usage_error("chat", "--ctx: bad size '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &o->threads)) return cli_usage_error("chat", "-t: bad thread count '%s'", optarg);
            break;
        case 'a':
            if (!strcmp(optarg, "naive")) o->attn = DC_ATTN_NAIVE;
            else if (!strcmp(optarg, "absorb")) o->attn = DC_ATTN_ABSORB;
            else return cli_usage_error("chat", "--attn must be naive or absorb, not '%s'", optarg);
            break;
        case CLI_OPT_KV:
            if ((o->kv = cli_parse_kv_type(optarg)) < 0)
                return cli_usage_error("chat", "--kv-type must be bf16 or f32, not '%s'", optarg);
            break;
        case 'h': fputs(HELP, stdout); return 1;
        default: {
            int r = infer_sampling_opt("chat", ch, optarg, &o->sp);
            if (r != 1) return r ? r : cli_usage_error("chat", "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error("chat", "unexpected argument '%s'", argv[optind]);
    if (!o->dir) return cli_usage_error("chat", "-m DIR is required");
    return 0;
}

static int find_tok(const dc_tokenizer *t, const char *s) { return dc_tokenizer_find(t, s, strlen(s)); }

/* hello: one line naming the model, its size and context (and the seed that
 * repeats the conversation's sampling); a warning when the tokenizer has no
 * chat role tokens, so the template's turn markers are plain text to it */
static const char *count(double v, char *b, size_t n) {
    const char *u = v >= 1e9 ? "B" : v >= 1e6 ? "M" : "K";
    snprintf(b, n, "%.2f%s", v / (v >= 1e9 ? 1e9 : v >= 1e6 ? 1e6 : 1e3), u);
    return b;
}

static void hello(const copts *o, const dc_model *m, const dc_tokenizer *t, long ctx) {
    dc_counts k;
    dc_config_counts(dc_model_config(m), &k);
    char a[32], b[32];
    fprintf(stderr, "deepc chat: %s: %s parameters (%s active per token), %s weights %.1f MB, context %ld, seed %llu\n",
            o->dir, count((double)(k.params_total + k.params_mtp), a, sizeof a), count((double)k.params_active, b, sizeof b),
            dc_model_dtype(m), dc_model_weight_bytes(m) / 1e6, ctx, (unsigned long long)o->sp.seed);
    if (find_tok(t, "<｜User｜>") < 0 || find_tok(t, "<｜Assistant｜>") < 0)
        fprintf(stderr, "deepc chat: warning: the tokenizer has no <｜User｜> / <｜Assistant｜> tokens: this model was "
                        "not trained to chat, and the template's turn markers are plain text to it\n");
}

/* read_line: the next message. On a terminal, with libedit (DC_LIBEDIT),
 * the line can be edited and earlier ones recalled (arrows, Ctrl-R); else
 * a plain getline. -1 at end of input, -2 when Ctrl-C interrupted it. */
static ssize_t read_line(char **line, size_t *cap, int tty) {
    errno = 0;
#ifdef DC_LIBEDIT
    if (tty) {
        char *l = readline("> ");
        if (!l) return g_cancel || errno == EINTR ? -2 : -1;
        size_t k = strlen(l);
        if (k + 1 > *cap) {
            char *nl = realloc(*line, k + 1);
            if (!nl) return free(l), -1;
            *line = nl, *cap = k + 1;
        }
        memcpy(*line, l, k + 1);
        if (k && l[0] != '/') add_history(l);
        free(l);
        return (ssize_t)k;
    }
#endif
    if (tty) fputs("> ", stderr);
    ssize_t k = getline(line, cap, stdin);
    if (k < 0 && errno == EINTR) {
        clearerr(stdin);
        return -2;
    }
    return k < 0 ? -1 : k;
}

/* the read-answer loop; returns on /exit, end of input or an error from the model */
static void loop(chat *c) {
    char *line = NULL;
    size_t cap = 0;
    int tty = isatty(0), quit = 0;
#ifdef DC_LIBEDIT
    rl_catch_signals = 0; /* Ctrl-C is ours: it stops an answer, at the prompt it clears the line */
    rl_outstream = stderr;  /* the prompt and echo beside the other messages, the answers alone on stdout */
    rl_readline_name = "deepc";
    using_history();
#endif
    if (tty) fprintf(stderr, "deepc chat: Ctrl-C stops an answer; /reset /save FILE /load FILE /exit%s\n",
#ifdef DC_LIBEDIT
                     "; arrows edit and recall"
#else
                     ""
#endif
    );
    while (!quit) {
        g_cancel = 0;
        ssize_t k = read_line(&line, &cap, tty);
        if (k == -2) { /* Ctrl-C at the prompt */
            fputc('\n', stderr);
            continue;
        }
        if (k < 0) break;
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
        if (!k) continue;
        dc_err err = {0};
        int rc = line[0] == '/' ? command(c, line, &quit, &err) : answer(c, line, &err);
        if (rc) fprintf(stderr, "deepc chat: %s\n", err.msg);
    }
    free(line);
}

int cmd_chat(int argc, char **argv) {
    copts o;
    int prc = parse(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : prc;
    cli_threads(o.threads);
    dc_err err = {0};
    dc_model *m = NULL;
    chat c = {.pending = -1, .system = o.system, .r1 = o.r1, .hide = o.think_hide, .mtp = o.mtp, .max_new = (int)o.n};
    int rc;
    if ((rc = infer_load(o.dir, o.dtype, &m, NULL, &err))) goto fail;
    if ((rc = infer_tokenizer(o.tokp, o.dir, &c.tok, &err))) goto fail;
    if (!c.tok) {
        rc = err_set(&err, DC_ENOTFOUND, "%s: chat needs a tokenizer.json (or --tokenizer)", o.dir);
        goto fail;
    }
    const dc_config *cfg = dc_model_config(m);
    long ctx = o.ctx < cfg->max_position_embeddings || !cfg->max_position_embeddings ? o.ctx : cfg->max_position_embeddings;
    if ((rc = dc_session_new_kv(m, (int)ctx, o.attn, o.kv, &c.s, &err))) goto fail;
    if ((rc = dc_sampler_new(&o.sp, cfg->vocab_size, &c.smp, &err))) goto fail;
    if ((rc = stream_init(&c.st, c.tok, stdout, NULL, 0, &err))) goto fail;
    c.st.color = isatty(1);
    c.eos = dc_tokenizer_eos(c.tok) >= 0 ? dc_tokenizer_eos(c.tok) : cfg->eos_token_id;
    c.think_open = find_tok(c.tok, "<think>");
    c.think_close = find_tok(c.tok, "</think>");
    hello(&o, m, c.tok, ctx);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: a read at the prompt returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    loop(&c);
fail:
    if (rc) cli_error("chat", &err);
    stream_free(&c.st);
    free(c.ids);
    dc_sampler_free(c.smp);
    dc_session_free(c.s);
    dc_tokenizer_free(c.tok);
    dc_model_free(m);
    return rc ? 1 : 0;
}
