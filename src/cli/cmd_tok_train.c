/*
 * cmd_tok_train.c — `deepc tokenizer-train`: train a byte-level BPE on text
 * files and write a tokenizer.json (src/tokenizer/train.c does the work;
 * this file parses options and draws the progress bar on stderr).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/err.h"
#include "cli/cli.h"

static const char *HELP =
    "usage: deepc tokenizer-train --data FILE [FILE...] --vocab-size N --out tokenizer.json\n"
    "                             [--special TOKENS] [--min-frequency K] [--pre NAME]\n"
    "\n"
    "Trains a byte-level BPE with DeepSeek-V3's pre-tokenizer and writes a tokenizer.json\n"
    "that deepc and the Hugging Face tokenizers library load.\n"
    "\n"
    "  --data FILE...       training text (UTF-8; --data may be repeated, and any further\n"
    "                       arguments are files too)\n"
    "  --vocab-size N       total tokens: specials + 256 bytes + merges\n"
    "  --out FILE           where the tokenizer.json goes (written atomically)\n"
    "  --special TOKENS     comma-separated special tokens, ids 0.. in order (default:\n"
    "                       <｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>; '' for none)\n"
    "  --min-frequency K    stop when the most frequent pair occurs fewer than K times (2)\n"
    "  --pre NAME           pre-tokenizer: deepseek-v3 (default), deepseek-llm,\n"
    "                       deepseek-coder, gpt-2\n";

typedef struct bar {
    double t0, last;
    int tty;
} bar;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(void *ctx, const char *stage, long done, long total) {
    bar *b = ctx;
    double t = now(), el = t - b->t0;
    int final = done >= total;
    if (!final && t - b->last < 0.1) return;
    if (!b->tty && !final) return;
    b->last = t;
    char cells[31];
    int fill = total > 0 ? (int)(30.0 * (double)done / (double)total) : 30;
    for (int i = 0; i < 30; i++) cells[i] = i < fill ? '#' : '.';
    cells[30] = 0;
    double rate = el > 0 ? (double)done / el : 0, eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "%s%-6s [%s] %3.0f%% %ld/%ld  %.0f/s  %.1fs  ETA %.1fs%s", b->tty ? "\r" : "", stage, cells,
            total > 0 ? 100.0 * (double)done / (double)total : 100.0, done, total, rate, el, eta, final ? "\n" : "");
    fflush(stderr);
}

/* split_special: "a,b,c" -> a malloc'd array of pointers into a copy. */
static int split_special(const char *s, char **copy, const char ***out, int *n) {
    *copy = strdup(s);
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *out = malloc(sizeof **out * (size_t)cap);
    *n = 0;
    if (!*copy || !*out) return -1;
    if (!**copy) return 0;
    for (char *tok = strtok(*copy, ","); tok; tok = strtok(NULL, ",")) (*out)[(*n)++] = tok;
    return 0;
}

int cmd_tokenizer_train(int argc, char **argv) {
    static const struct option LONG[] = {{"data", 1, 0, 'd'},          {"vocab-size", 1, 0, 'v'}, {"out", 1, 0, 'o'},
                                         {"special", 1, 0, 's'},       {"min-frequency", 1, 0, 'f'},
                                         {"pre", 1, 0, 'p'},           {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    const char *out = NULL, *special = "<｜begin▁of▁sentence｜>,<｜end▁of▁sentence｜>", *pre = "deepseek-v3";
    long vocab = 0, minf = 2;
    int nfiles = 0, ch, rc = 0;
    if (!files) return 1;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "o:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'd': files[nfiles++] = optarg; break;
        case 'v':
            if (cli_parse_int(optarg, 257, 1 << 24, &vocab)) rc = cli_usage_error("tokenizer-train", "--vocab-size: bad '%s'", optarg);
            break;
        case 'o': out = optarg; break;
        case 's': special = optarg; break;
        case 'f':
            if (cli_parse_int(optarg, 1, 1L << 40, &minf)) rc = cli_usage_error("tokenizer-train", "--min-frequency: bad '%s'", optarg);
            break;
        case 'p': pre = optarg; break;
        case 'h': fputs(HELP, stdout); free(files); return 0;
        default: rc = cli_usage_error("tokenizer-train", "bad option");
        }
        if (rc) break;
    }
    while (!rc && optind < argc) files[nfiles++] = argv[optind++];
    if (!rc && (!nfiles || !vocab || !out)) rc = cli_usage_error("tokenizer-train", "--data, --vocab-size and --out are required");
    if (rc) {
        free(files);
        return rc;
    }
    char *copy = NULL;
    const char **sp = NULL;
    int nsp = 0;
    dc_err err = {0};
    if (split_special(special, &copy, &sp, &nsp)) {
        err_set(&err, DC_ENOMEM, "out of memory");
        rc = cli_error("tokenizer-train", &err);
    } else {
        bar b = {now(), 0, isatty(2)};
        dc_bpe_train_opts o = {(int)vocab, sp, nsp, (int)minf, pre, progress, &b};
        if (dc_bpe_train(files, nfiles, &o, out, &err)) rc = cli_error("tokenizer-train", &err);
        else fprintf(stderr, "wrote %s in %.2f s\n", out, now() - b.t0);
    }
    free(copy);
    free(sp);
    free(files);
    return rc;
}
