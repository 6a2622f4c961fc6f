/*
 * cmd_logits.c — `deepc logits`: the forward pass over given token ids,
 * writing float32 little-endian logits (T, vocab), one row per position.
 * Others check deepc through this command: its interface is kept stable.
 *
 * With --mtp the rows are the first MTP module's: row i predicts token i+2
 * from the main model's hidden state at i and token i+1; the last row uses
 * the main model's greedy (argmax) next token as token T, as speculative
 * decoding does.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/progress.h"
#include "base/err.h"
#include "base/file.h"
#include "cli/cli.h"

static const char *HELP =
    "usage: deepc logits -m DIR --ids 1,2,3 [--out FILE] [--attn naive|absorb] [--kv-type bf16|f32] [--mtp]\n"
    "                    [--decode-from K] [-t N]\n"
    "\n"
    "Runs the model over the token ids and writes float32 little-endian logits of\n"
    "shape [T, vocab], one row per position, to FILE (atomically). Without --out,\n"
    "prints each position's top tokens instead.\n"
    "\n"
    "  -m, --model DIR     checkpoint directory (config.json + safetensors)\n"
    "      --ids LIST      comma-separated token ids\n"
    "  -o, --out FILE      where the logits go\n"
    "      --attn MODE     naive (per-head K/V cache) or absorb (latent cache; default)\n"
    "      --kv-type T     the latent cache's elements: bf16 (default) or f32\n"
    "      --mtp           the MTP head's logits: row i predicts token i+2 from the hidden\n"
    "                      state at i and token i+1 (the last row uses the greedy token)\n"
    "      --decode-from K prefill the first K tokens, then decode the rest one by one\n"
    "                      (same logits; checks the KV cache). Default: one prefill\n"
    "  -t, --threads N     threads (default: all cores)\n";

int cmd_logits(int argc, char **argv) {
    static const struct option LONG[] = {{"model", 1, 0, 'm'}, {"ids", 1, 0, 'i'},    {"out", 1, 0, 'o'},
                                         {"attn", 1, 0, 'a'},  {"mtp", 0, 0, 'M'},    {"threads", 1, 0, 't'},
                                         {"decode-from", 1, 0, 'd'}, {"kv-type", 1, 0, CLI_OPT_KV}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = NULL, *ids_s = NULL, *out = NULL;
    int attn = DC_ATTN_ABSORB, mtp = 0, kv = DC_KV_BF16;
    long threads = 0, decode_from = -1;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:o:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': dir = optarg; break;
        case 'i': ids_s = optarg; break;
        case 'o': out = optarg; break;
        case 'M': mtp = 1; break;
        case 'a':
            if (strcmp(optarg, "naive") == 0) attn = DC_ATTN_NAIVE;
            else if (strcmp(optarg, "absorb") == 0) attn = DC_ATTN_ABSORB;
            else return cli_usage_error("logits", "--attn must be naive or absorb, not '%s'", optarg);
            break;
        case CLI_OPT_KV:
            if ((kv = cli_parse_kv_type(optarg)) < 0)
                return cli_usage_error("logits", "--kv-type must be bf16 or f32, not '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &threads)) return cli_usage_error("logits", "-t: bad thread count '%s'", optarg);
            break;
        case 'd':
            if (cli_parse_int(optarg, 1, 1 << 30, &decode_from)) return cli_usage_error("logits", "--decode-from: bad count '%s'", optarg);
            break;
        case 'h': fputs(HELP, stdout); return 0;
        default: return cli_usage_error("logits", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("logits", "unexpected argument '%s'", argv[optind]);
    if (!dir || !ids_s) return cli_usage_error("logits", "-m DIR and --ids are required");
    cli_threads(threads);

    dc_err err = {0};
    int *ids = NULL, T = 0, rc;
    dc_model *m = NULL;
    dc_session *s = NULL;
    float *logits = NULL, *mlog = NULL;
    if ((rc = cli_parse_ids(ids_s, &ids, &T, &err))) goto fail;
    double t0 = progress_now();
    if ((rc = dc_model_load(dir, &m, &err))) goto fail;
    double t1 = progress_now();
    const dc_config *c = dc_model_config(m);
    const int V = c->vocab_size;
    if (mtp && c->num_nextn_predict_layers < 1) {
        rc = err_set(&err, DC_EARG, "%s: --mtp: the model has no MTP module (num_nextn_predict_layers is 0)", dir);
        goto fail;
    }
    if ((rc = dc_session_new_kv(m, T, attn, kv, &s, &err))) goto fail;
    logits = malloc(sizeof(float) * (size_t)T * V);
    if (!logits) {
        rc = err_set(&err, DC_ENOMEM, "out of memory for %d x %d logits", T, V);
        goto fail;
    }
    int k0 = decode_from > 0 && decode_from < T ? (int)decode_from : T;
    if ((rc = dc_forward(s, ids, k0, logits, 0, &err))) goto fail;
    float *hid = NULL;
    if (mtp) {
        hid = malloc(sizeof(float) * (size_t)T * c->hidden_size);
        if (!hid) {
            rc = err_set(&err, DC_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(hid, dc_session_hidden(s), sizeof(float) * (size_t)k0 * c->hidden_size);
    }
    for (int t = k0; t < T; t++) {
        if ((rc = dc_forward(s, ids + t, 1, logits + (size_t)t * V, 0, &err))) break;
        if (hid) memcpy(hid + (size_t)t * c->hidden_size, dc_session_hidden(s), sizeof(float) * c->hidden_size);
    }
    if (!rc && mtp) {
        /* next tokens: ids[1..T-1], then the greedy token after the last position */
        int *next = malloc(sizeof(int) * T);
        mlog = malloc(sizeof(float) * (size_t)T * V);
        if (!next || !mlog) rc = err_set(&err, DC_ENOMEM, "out of memory");
        else {
            for (int t = 0; t + 1 < T; t++) next[t] = ids[t + 1];
            next[T - 1] = dc_argmax(logits + (size_t)(T - 1) * V, V);
            if (k0 == T) rc = dc_forward_mtp(s, hid, next, T, mlog, &err);
            else {
                rc = dc_forward_mtp(s, hid, next, k0, mlog, &err);
                for (int t = k0; t < T && !rc; t++)
                    rc = dc_forward_mtp(s, hid + (size_t)t * c->hidden_size, next + t, 1, mlog + (size_t)t * V, &err);
            }
        }
        free(next);
    }
    free(hid);
    if (rc) goto fail;
    double t2 = progress_now();
    fprintf(stderr, "deepc logits: loaded %.1f MB of weights in %.2f s; %d positions in %.3f s (%.1f tokens/s, %d threads)\n",
            dc_model_weight_bytes(m) / 1e6, t1 - t0, T, t2 - t1, T / (t2 - t1), cli_get_threads());
    const float *res = mtp ? mlog : logits;
    if (out) {
        if ((rc = file_write_atomic(out, res, sizeof(float) * (size_t)T * V, &err))) goto fail;
    } else {
        for (int t = 0; t < T; t++) {
            const float *r = res + (size_t)t * V;
            int a = dc_argmax(r, V);
            printf("pos %d  id %d  -> argmax %d (%.4f)\n", t, ids[t], a, r[a]);
        }
    }
fail:
    if (rc) cli_error("logits", &err);
    free(ids);
    free(logits);
    free(mlog);
    dc_session_free(s);
    dc_model_free(m);
    return rc ? 1 : 0;
}
