/* cmd_prepare.c — `deepc prepare`: tokenise text into training shards. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"
#include "train/data.h"

static const char *HELP =
    "usage: deepc prepare --tokenizer FILE --data FILE... --out DIR [--val-frac F] [--field NAME] [-t N]\n"
    "\n"
    "Tokenises plain-text files (each one document) or JSONL files (*.jsonl, one\n"
    "document per line in the string field NAME, default \"text\") in parallel into\n"
    "DIR/train-00000.bin and DIR/val-00000.bin (uint32 ids with a header; documents\n"
    "end with EOS), and copies the tokenizer beside them. The last F (default 0.05)\n"
    "of the tokens are the validation split.\n";

int cmd_prepare(int argc, char **argv) {
    static const struct option LONG[] = {{"tokenizer", 1, 0, 'k'}, {"data", 1, 0, 'd'}, {"out", 1, 0, 'o'},
                                         {"val-frac", 1, 0, 'v'},  {"field", 1, 0, 'f'}, {"threads", 1, 0, 't'},
                                         {"help", 0, 0, 'h'},      {0, 0, 0, 0}};
    prepare_opts o = {0};
    o.val_frac = 0.05f;
    o.files = calloc(argc, sizeof *o.files);
    long threads = 0;
    int ch, in_data = 0;
    optind = 0;
    /* --data takes one or more files: the arguments after it up to the next option */
    while ((ch = getopt_long(argc, argv, "-o:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (!in_data) {
                free(o.files);
                return cli_usage_error("prepare", "unexpected argument '%s'", optarg);
            }
            o.files[o.nfiles++] = optarg;
            continue;
        case 'k': o.tokenizer = optarg; break;
        case 'd': o.files[o.nfiles++] = optarg, in_data = 1; continue;
        case 'o': o.out = optarg; break;
        case 'f': o.field = optarg; break;
        case 'v': {
            char *e;
            o.val_frac = strtof(optarg, &e);
            if (*e || !(o.val_frac >= 0 && o.val_frac < 1)) {
                free(o.files);
                return cli_usage_error("prepare", "--val-frac must be in [0, 1), not '%s'", optarg);
            }
            break;
        }
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &threads)) {
                free(o.files);
                return cli_usage_error("prepare", "-t: bad thread count '%s'", optarg);
            }
            break;
        case 'h': free(o.files), fputs(HELP, stdout); return 0;
        default: free(o.files); return cli_usage_error("prepare", "bad option");
        }
        in_data = 0;
    }
    if (!o.tokenizer || !o.nfiles || !o.out) {
        free(o.files);
        return cli_usage_error("prepare", "--tokenizer, --data and --out are required");
    }
    cli_threads(threads);
    dc_err err = {0};
    size_t nt = 0, nv = 0;
    int rc = data_prepare(&o, &nt, &nv, &err);
    free(o.files);
    if (rc) return cli_error("prepare", &err);
    printf("wrote %s: %zu training and %zu validation tokens\n", o.out, nt, nv);
    return 0;
}
