/*
 * cmd_tok_train.c — `deepc tokenizer-train`: train a byte-level BPE on text
 * files and write a tokenizer.json (src/tokenizer/train.c does the work;
 * this file parses options and draws the progress bar on stderr).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/progress.h"
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

/* bar: one base/progress line per stage of the trainer ("count", "merge") */
typedef struct bar {
    progress p;
    const char *stage;
} bar;

static void on_progress(void *ctx, const char *stage, long done, long total) {
    bar *b = ctx;
    if (!b->stage || strcmp(b->stage, stage) != 0) {
        if (b->stage) progress_end(&b->p);
        progress_start(&b->p, stage, total);
        b->stage = stage;
    }
    progress_update(&b->p, done, stage, NULL);
}

/* first_duplicate: a string that appears twice in v, or NULL */
static const char *first_duplicate(const char **v, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0) return v[i];
    return NULL;
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
            if (cli_parse_int(optarg, 1, 0x7fffffff, &minf)) rc = cli_usage_error("tokenizer-train", "--min-frequency: bad '%s'", optarg);
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
    const char *dup = NULL;
    if (split_special(special, &copy, &sp, &nsp)) {
        err_set(&err, DC_ENOMEM, "out of memory");
        rc = cli_error("tokenizer-train", &err);
    } else if ((dup = first_duplicate(sp, nsp))) {
        rc = cli_usage_error("tokenizer-train", "--special: \"%s\" is given twice", dup);
    } else {
        bar b = {{0}, NULL};
        double t0 = progress_now();
        dc_bpe_train_opts o = {(int)vocab, sp, nsp, (int)minf, pre, on_progress, &b};
        int bad = dc_bpe_train(files, nfiles, &o, out, &err);
        if (b.stage) progress_end(&b.p);
        if (bad) rc = cli_error("tokenizer-train", &err);
        else fprintf(stderr, "wrote %s in %.2f s\n", out, progress_now() - t0);
    }
    free(copy);
    free(sp);
    free(files);
    return rc;
}
