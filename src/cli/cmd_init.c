/* cmd_init.c — `deepc init`: a randomly initialised checkpoint in the Hugging
 * Face layout (config.json + safetensors [+ tokenizer.json]).
 *
 * The model is written into a directory beside DIR and renamed into place:
 * an existing DIR that is not empty is refused unless --force, which
 * replaces it in one step (issue 14, defect 8). With --tokenizer, a preset's
 * vocab_size grows to hold every id of the tokenizer (rounded up to a
 * multiple of 128, as DeepSeek's own 129,280 is) and BOS/EOS come from it; a
 * --config whose vocab_size is too small is refused (defect 16). */
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
    "usage: deepc init --preset NAME | --config FILE --out DIR [--seed N] [--dtype f32|bf16|f16|fp8]\n"
    "                  [--tokenizer FILE] [--layers N] [--shard-mb N]\n"
    "\n"
    "Writes a randomly initialised DeepSeek model to DIR in the Hugging Face layout.\n"
    "  --preset NAME     tiny, small, mini, train-bench, v2-lite, v3\n"
    "  --config FILE     a config.json instead of a preset\n"
    "  --seed N          random seed (default 1)\n"
    "  --dtype T         f32 (default), bf16, f16, or fp8 (e4m3 with 128x128 block scales, as V3)\n"
    "  --tokenizer FILE  copy this tokenizer.json (and a tokenizer_config.json beside it) into DIR\n"
    "  --layers N        keep only the first N decoder layers (e.g. a slice of v3)\n"
    "  --shard-mb N      split into safetensors shards of at most N MB (default 4096)\n"
    "  --force           replace DIR when it exists and is not empty\n"
    "  -t, --threads N   threads (default: all cores)\n";

/* fit_tokenizer: the vocabulary must hold every id of the tokenizer; a
 * preset grows to it, a given config must already */
static int fit_tokenizer(dc_config *c, const char *path, int grow, dc_err *err) {
    dc_tokenizer *t = NULL;
    int rc = dc_tokenizer_load(path, &t, err);
    if (rc) return rc;
    int n = dc_tokenizer_n_vocab(t), bos = dc_tokenizer_bos(t), eos = dc_tokenizer_eos(t);
    dc_tokenizer_free(t);
    if (n > c->vocab_size && !grow)
        return err_set(err, DC_ECONFIG, "%s has %d token ids, more than the config's vocab_size %d: raise vocab_size to "
                       "at least %d", path, n, c->vocab_size, n);
    if (n > c->vocab_size) {
        int v = (n + 127) / 128 * 128;
        fprintf(stderr, "deepc init: vocab_size %d -> %d to hold the %d ids of %s\n", c->vocab_size, v, n, path);
        c->vocab_size = v;
    }
    if (bos >= 0) c->bos_token_id = bos;
    if (eos >= 0) c->eos_token_id = eos;
    return dc_config_check(c, err);
}

/* copy_tokenizer: tokenizer.json (and a tokenizer_config.json beside it) into dir */
static int copy_tokenizer(const char *tok, const char *dir, dc_err *err) {
    char dst[4096], side[4096], tmp[4096], file[4096];
    int rc = DC_OK;
    if (dir_exists(tok)) rc = path_join(file, sizeof file, tok, "tokenizer.json", err); /* a model directory */
    else snprintf(file, sizeof file, "%s", tok);
    if (!rc) rc = path_join(dst, sizeof dst, dir, "tokenizer.json", err);
    if (!rc) rc = file_copy(file, dst, err);
    snprintf(tmp, sizeof tmp, "%s", file);
    if (!rc && !path_join(side, sizeof side, dirname(tmp), "tokenizer_config.json", NULL) && file_exists(side)) {
        if (!(rc = path_join(dst, sizeof dst, dir, "tokenizer_config.json", err))) rc = file_copy(side, dst, err);
    }
    return rc;
}

int cmd_init(int argc, char **argv) {
    static const struct option LONG[] = {{"preset", 1, 0, 'p'}, {"config", 1, 0, 'c'},  {"out", 1, 0, 'o'},
                                         {"seed", 1, 0, 's'},   {"dtype", 1, 0, 'd'},   {"tokenizer", 1, 0, 'k'},
                                         {"layers", 1, 0, 'l'}, {"shard-mb", 1, 0, 'S'}, {"threads", 1, 0, 't'},
                                         {"help", 0, 0, 'h'},   {"force", 0, 0, 'F'},    {0, 0, 0, 0}};
    const char *preset = NULL, *config = NULL, *out = NULL, *dtype = "f32", *tok = NULL;
    long seed = 1, layers = 0, shard_mb = 4096, thr = 0;
    int ch, force = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "o:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'p': preset = optarg; break;
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'd': dtype = optarg; break;
        case 'k': tok = optarg; break;
        case 'F': force = 1; break;
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
    cli_threads(thr);
    dc_config c;
    dc_err err = {0};
    if (preset ? dc_config_preset(preset, &c, &err) : dc_config_load(config, &c, &err)) return cli_error("init", &err);
    if (layers) {
        c.num_hidden_layers = (int)layers;
        if (c.first_k_dense_replace > c.num_hidden_layers) c.first_k_dense_replace = c.num_hidden_layers;
    }
    if (dir_check_target(out, force, &err)) return cli_error("init", &err);
    if (tok && fit_tokenizer(&c, tok, !config, &err)) return cli_error("init", &err);
    cli_remove_temps_on_signal();
    char tmp[4096];
    int rc = dir_make_beside(out, tmp, sizeof tmp, &err);
    if (!rc) rc = weights_write_random(&c, tmp, (uint64_t)seed, dtype, (size_t)shard_mb << 20, &err);
    if (!rc && tok) rc = copy_tokenizer(tok, tmp, &err);
    if (!rc) rc = dir_commit(tmp, out, force, &err);
    else if (tmp[0]) {
        dc_err ignore;
        dir_remove_tree(tmp, &ignore);
    }
    if (rc) return cli_error("init", &err);
    dc_counts k;
    dc_config_counts(&c, &k);
    printf("wrote %s: %lld parameters (+%lld MTP), dtype %s, vocab %d\n", out, (long long)k.params_total,
           (long long)k.params_mtp, dtype, c.vocab_size);
    return 0;
}
