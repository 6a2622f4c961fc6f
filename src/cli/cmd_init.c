/* cmd_init.c — `deepc init`: a randomly initialised checkpoint in the Hugging
 * Face layout (config.json + safetensors [+ tokenizer.json]). */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/file.h"
#include "cli/cli.h"
#include "model/weights.h"

static const char *HELP =
    "usage: deepc init --preset NAME | --config FILE --out DIR [--seed N] [--dtype f32|bf16|fp8]\n"
    "                  [--tokenizer FILE] [--layers N] [--shard-mb N]\n"
    "\n"
    "Writes a randomly initialised DeepSeek model to DIR in the Hugging Face layout.\n"
    "  --preset NAME     tiny, small, mini, train-bench, v2-lite, v3\n"
    "  --config FILE     a config.json instead of a preset\n"
    "  --seed N          random seed (default 1)\n"
    "  --dtype T         f32 (default), bf16, or fp8 (e4m3 with 128x128 block scales, as V3)\n"
    "  --tokenizer FILE  copy this tokenizer.json (and a tokenizer_config.json beside it) into DIR\n"
    "  --layers N        keep only the first N decoder layers (e.g. a slice of v3)\n"
    "  --shard-mb N      split into safetensors shards of at most N MB (default 4096)\n";

int cmd_init(int argc, char **argv) {
    static const struct option LONG[] = {{"preset", 1, 0, 'p'}, {"config", 1, 0, 'c'},  {"out", 1, 0, 'o'},
                                         {"seed", 1, 0, 's'},   {"dtype", 1, 0, 'd'},   {"tokenizer", 1, 0, 'k'},
                                         {"layers", 1, 0, 'l'}, {"shard-mb", 1, 0, 'S'}, {"threads", 1, 0, 't'},
                                         {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    const char *preset = NULL, *config = NULL, *out = NULL, *dtype = "f32", *tok = NULL;
    long seed = 1, layers = 0, shard_mb = 4096, thr;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "o:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'p': preset = optarg; break;
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'd': dtype = optarg; break;
        case 'k': tok = optarg; break;
        case 's':
            if (cli_parse_int(optarg, 0, 0x7fffffffffffffffL, &seed)) return cli_usage_error("init", "--seed: bad number '%s'", optarg);
            break;
        case 'l':
            if (cli_parse_int(optarg, 1, 1 << 20, &layers)) return cli_usage_error("init", "--layers: bad count '%s'", optarg);
            break;
        case 'S':
            if (cli_parse_int(optarg, 1, 1 << 30, &shard_mb)) return cli_usage_error("init", "--shard-mb: bad size '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &thr)) return cli_usage_error("init", "-t: bad thread count '%s'", optarg);
            break;
        case 'h': fputs(HELP, stdout); return 0;
        default: return cli_usage_error("init", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
    if (!preset == !config) return cli_usage_error("init", "give exactly one of --preset NAME or --config FILE");
    if (!out) return cli_usage_error("init", "--out DIR is required");
    dc_config c;
    dc_err err = {0};
    if (preset ? dc_config_preset(preset, &c, &err) : dc_config_load(config, &c, &err)) return cli_error("init", &err);
    if (layers) {
        c.num_hidden_layers = (int)layers;
        if (c.first_k_dense_replace > c.num_hidden_layers) c.first_k_dense_replace = c.num_hidden_layers;
    }
    if (tok && !file_exists(tok)) {
        err_set(&err, DC_EIO, "%s: no such tokenizer file", tok);
        return cli_error("init", &err);
    }
    if (weights_write_random(&c, out, (uint64_t)seed, dtype, (size_t)shard_mb << 20, &err)) return cli_error("init", &err);
    if (tok) {
        char dst[4096], side[4096], tmp[4096];
        if (path_join(dst, sizeof dst, out, "tokenizer.json", &err) || file_copy(tok, dst, &err))
            return cli_error("init", &err);
        snprintf(tmp, sizeof tmp, "%s", tok);
        if (!path_join(side, sizeof side, dirname(tmp), "tokenizer_config.json", &err) && file_exists(side)) {
            if (path_join(dst, sizeof dst, out, "tokenizer_config.json", &err) || file_copy(side, dst, &err))
                return cli_error("init", &err);
        }
    }
    dc_counts k;
    dc_config_counts(&c, &k);
    printf("wrote %s: %lld parameters (+%lld MTP), dtype %s\n", out, (long long)k.params_total, (long long)k.params_mtp,
           dtype);
    return 0;
}
